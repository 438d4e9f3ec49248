"""vaelib: the variational auto-encoder of Kingma & Welling (2013) in Keras 3 and TensorFlow Probability.

Where each idea of the book lives:

* :mod:`vaelib.bound` — the lower bound :math:`\\mathcal{L}_B`, its minibatch estimator, the IWAE bound;
* :mod:`vaelib.kl` — the KL term in closed form and by Monte Carlo;
* :mod:`vaelib.gradients` — score-function and reparameterisation gradients;
* :mod:`vaelib.model`, :mod:`vaelib.networks` — the VAE (Keras 3 model) and its networks;
* :mod:`vaelib.distributions` — the decoder's Bernoulli, with a fused log-probability;
* :mod:`vaelib.autoencoder` — the deterministic autoencoder it grew from;
* :mod:`vaelib.linear_gaussian` — a model with an exact posterior;
* :mod:`vaelib.evaluation` — importance-sampled log-likelihood;
* :mod:`vaelib.reproduce` — the paper's experiments, resumable, and where their results are;
* :mod:`vaelib.data`, :mod:`vaelib.training`, :mod:`vaelib.plotting`, :mod:`vaelib.cli` — the rest.
"""

from vaelib import reproduce
from vaelib.autoencoder import Autoencoder
from vaelib.bound import elbo, elbo_terms, iwae_bound, minibatch_elbo
from vaelib.data import dynamic_binarize, fixed_binarize, load_mnist, make_dataset
from vaelib.distributions import LogitBernoulli
from vaelib.evaluation import log_likelihood
from vaelib.gradients import gradient_moments, reparameterization_gradient, score_function_gradient
from vaelib.kl import diagonal_gaussian, gaussian_kl, monte_carlo_kl
from vaelib.linear_gaussian import LinearGaussianModel
from vaelib.model import VAE
from vaelib.notebook import glue, show_source
from vaelib.plotting import (
    image_grid,
    interpolation_figure,
    latent_manifold,
    latent_scatter,
    reconstruction_figure,
    training_curves,
)
from vaelib.quick import quick_mode
from vaelib.training import train

__all__ = [
    "VAE",
    "Autoencoder",
    "glue",
    "LinearGaussianModel",
    "LogitBernoulli",
    "diagonal_gaussian",
    "dynamic_binarize",
    "elbo",
    "elbo_terms",
    "fixed_binarize",
    "gaussian_kl",
    "gradient_moments",
    "image_grid",
    "interpolation_figure",
    "iwae_bound",
    "latent_manifold",
    "latent_scatter",
    "load_mnist",
    "log_likelihood",
    "make_dataset",
    "minibatch_elbo",
    "monte_carlo_kl",
    "quick_mode",
    "reconstruction_figure",
    "reparameterization_gradient",
    "reproduce",
    "score_function_gradient",
    "show_source",
    "train",
    "training_curves",
]

__version__ = "0.1.0"
