"""vaelib: the variational auto-encoder of Kingma & Welling (2013) in Keras 3 and TensorFlow Probability.

Where each idea of the book lives:

* :mod:`vaelib.bound` — the lower bound :math:`\\mathcal{L}_B`, its minibatch estimator, the IWAE bound;
* :mod:`vaelib.kl` — the KL term in closed form and by Monte Carlo;
* :mod:`vaelib.gradients` — score-function and reparameterisation gradients;
* :mod:`vaelib.model`, :mod:`vaelib.networks` — the VAE (Keras 3 model) and its networks;
* :mod:`vaelib.distributions` — the decoder's Bernoulli, with a fused log-probability;
* :mod:`vaelib.autoencoder` — the deterministic autoencoder it grew from;
* :mod:`vaelib.linear_gaussian` — a model with an exact posterior;
* :mod:`vaelib.wake_sleep`, :mod:`vaelib.mcem` — the paper's baselines: wake-sleep and Monte Carlo EM;
* :mod:`vaelib.evaluation` — importance-sampled log-likelihood, and the paper's HMC estimator;
* :mod:`vaelib.hmc` — Hamiltonian Monte Carlo on the exact posterior;
* :mod:`vaelib.reproduce` — the paper's experiments, resumable, and where their results are;
* :mod:`vaelib.training` — the run engine: resumable training, exactly as if never interrupted;
* :mod:`vaelib.data`, :mod:`vaelib.plotting`, :mod:`vaelib.cli` — the rest.

Conventions, the same in every function:

* **Seeds.** Whatever draws random numbers takes ``seed``: ``None`` for fresh randomness, an int in
  :math:`[0, 2^{31})` for the same numbers every time, or (where TensorFlow draws) a shape-``[2]`` integer
  tensor, a stateless seed. Estimators — ``elbo``, ``elbo_terms``, ``minibatch_elbo``, ``iwae_bound``,
  ``log_likelihood``, ``hmc_log_likelihood``, ``monte_carlo_kl``, ``dynamic_binarize``, ``VAE.sample`` —
  default to ``None``; what defines a data set or a run — ``fixed_binarize``, ``make_dataset``,
  ``make_stream``, ``train``, the experiments of :mod:`vaelib.reproduce` — defaults to ``0``. A bad seed
  is a ``TypeError`` or ``ValueError``.
* **Return types.** What can be differentiated returns a ``tf.Tensor`` (the bounds, their terms,
  ``dynamic_binarize``); what is computed in chunks or prepares data returns a NumPy array
  (``log_likelihood``, ``hmc_log_likelihood``, ``fixed_binarize``, ``load_mnist``, ``VAE.sample``,
  ``reconstruct``).
* **Names.** ``data_shape`` is the shape of one data point (``VAE``, ``VAE.mlp``, ``VAE.conv``,
  ``build_encoder``, ``build_decoder``), ``latent_dim`` is :math:`N_z`, ``num_samples`` is :math:`L`
  (or :math:`k`), ``batch_size`` is :math:`M`.
* **Models.** :class:`~vaelib.model.VAE` and :class:`~vaelib.autoencoder.Autoencoder` are siblings over
  :class:`~vaelib.model.EncoderDecoder`; the bounds need a model whose ``encode`` is a distribution
  :math:`q(z|x)` and refuse an autoencoder with a ``TypeError``.
"""

from vaelib import reproduce
from vaelib.autoencoder import Autoencoder
from vaelib.bound import elbo, elbo_terms, iwae_bound, minibatch_elbo
from vaelib.data import dynamic_binarize, fixed_binarize, load_mnist, make_dataset
from vaelib.distributions import LogitBernoulli
from vaelib.evaluation import (
    hmc_log_likelihood,
    log_likelihood,
    mean_and_stderr,
    paired_difference,
    rate_and_distortion,
)
from vaelib.gradients import gradient_moments, reparameterization_gradient, score_function_gradient
from vaelib.kl import diagonal_gaussian, gaussian_kl, monte_carlo_kl, reparameterized_sample
from vaelib.linear_gaussian import LinearGaussianModel, ProbabilisticPCA
from vaelib.mcem import MonteCarloEM
from vaelib.model import VAE, EncoderDecoder
from vaelib.notebook import full_build_text, glue, show_source
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
    "EncoderDecoder",
    "glue",
    "full_build_text",
    "LinearGaussianModel",
    "ProbabilisticPCA",
    "MonteCarloEM",
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
    "hmc_log_likelihood",
    "make_dataset",
    "minibatch_elbo",
    "monte_carlo_kl",
    "mean_and_stderr",
    "paired_difference",
    "rate_and_distortion",
    "reparameterized_sample",
    "quick_mode",
    "reconstruction_figure",
    "reparameterization_gradient",
    "reproduce",
    "score_function_gradient",
    "show_source",
    "train",
    "training_curves",
]

__version__ = "0.8.0"
