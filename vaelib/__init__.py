"""vaelib: the variational auto-encoder of Kingma & Welling (2013) in Keras 3 and TensorFlow Probability.

``import vaelib`` loads the model, the bounds, the data and the run engine. Two parts load only when
imported: :mod:`vaelib.plotting` (the book's figures, with matplotlib) and :mod:`vaelib.paper` (the paper's
experiments and baselines: wake-sleep, Monte Carlo EM, the runs behind the book's results).

Where each idea of the book lives:

* :mod:`vaelib.model` — the VAE, a Keras 3 model composing an encoder, a decoder, a likelihood and a prior;
* :mod:`vaelib.likelihoods` — :math:`p(x|z)`: Bernoulli, continuous Bernoulli, Gaussian;
* :mod:`vaelib.objectives` — what training maximises: the ELBO, the IWAE bound;
* :mod:`vaelib.optimizers` — the default optimizer: Adam with a moving average of the weights;
* :mod:`vaelib.networks` — the paper's MLPs and a small conv network, for :meth:`VAE.mlp` and :meth:`VAE.conv`;
* :mod:`vaelib.bound` — the lower bound :math:`\\mathcal{L}_B`, its minibatch estimator, the IWAE bound;
* :mod:`vaelib.kl` — the KL term in closed form and by Monte Carlo;
* :mod:`vaelib.gradients` — score-function and reparameterisation gradients;
* :mod:`vaelib.autoencoder` — the deterministic autoencoder it grew from;
* :mod:`vaelib.linear_gaussian` — a model with an exact posterior;
* :mod:`vaelib.evaluation` — importance-sampled log-likelihood, and the paper's HMC estimator;
* :mod:`vaelib.hmc` — Hamiltonian Monte Carlo on the exact posterior;
* :mod:`vaelib.training` — the run engine: resumable training, exactly as if never interrupted;
* :mod:`vaelib.data`, :mod:`vaelib.cli` — data and the command line.

Conventions, the same in every function:

* **Seeds.** Whatever draws random numbers takes ``seed``: ``None`` for fresh randomness, an int in
  :math:`[0, 2^{31})` for the same numbers every time, or (where TensorFlow draws) a shape-``[2]`` integer
  tensor, a stateless seed. Estimators — ``elbo``, ``elbo_terms``, ``minibatch_elbo``, ``iwae_bound``,
  ``log_likelihood``, ``hmc_log_likelihood``, ``monte_carlo_kl``, ``reparameterized_sample``,
  ``dynamic_binarize``, ``VAE.sample`` — default to ``None``; what defines a data set or a run —
  ``fixed_binarize``, ``make_dataset``, ``make_stream``, ``train``, the experiments of :mod:`vaelib.paper` —
  defaults to ``0``. A bad seed is a ``TypeError`` or ``ValueError``.
* **Return types.** What can be differentiated returns a ``tf.Tensor`` (the bounds, their terms,
  ``dynamic_binarize``); what is computed in chunks or prepares data returns a NumPy array
  (``log_likelihood``, ``hmc_log_likelihood``, ``fixed_binarize``, ``load_mnist``, ``VAE.sample``,
  ``reconstruct``).
* **Names.** ``data_shape`` is the shape of one data point, ``latent_dim`` is :math:`N_z`, ``num_samples`` is
  :math:`L` (or :math:`k`), ``batch_size`` is :math:`M`.
* **Models.** :class:`~vaelib.VAE` and :class:`~vaelib.Autoencoder` are siblings over
  :class:`~vaelib.EncoderDecoder`; the bounds need a model whose ``encode`` is a distribution
  :math:`q(z|x)` and refuse an autoencoder with a ``TypeError``.
"""

from vaelib import likelihoods, objectives
from vaelib.autoencoder import Autoencoder
from vaelib.bound import elbo, elbo_terms, iwae_bound, minibatch_elbo
from vaelib.data import dynamic_binarize, fixed_binarize, load_mnist, make_dataset, make_stream
from vaelib.evaluation import (
    hmc_log_likelihood,
    log_likelihood,
    mean_and_stderr,
    paired_difference,
    rate_and_distortion,
)
from vaelib.gradients import gradient_moments, reparameterization_gradient, score_function_gradient
from vaelib.kl import diagonal_gaussian, gaussian_kl, monte_carlo_kl, reparameterized_sample
from vaelib.linear_gaussian import LinearGaussianModel, ProbabilisticPCA, best_diagonal_gaussian
from vaelib.model import VAE, EncoderDecoder
from vaelib.notebook import full_build_text, glue, show_source
from vaelib.objectives import ELBO, IWAE
from vaelib.optimizers import AveragedAdam
from vaelib.quick import quick_mode
from vaelib.training import train

__all__ = [
    "VAE",
    "Autoencoder",
    "EncoderDecoder",
    "likelihoods",
    "objectives",
    "ELBO",
    "IWAE",
    "AveragedAdam",
    "elbo",
    "elbo_terms",
    "minibatch_elbo",
    "iwae_bound",
    "gaussian_kl",
    "monte_carlo_kl",
    "diagonal_gaussian",
    "reparameterized_sample",
    "gradient_moments",
    "reparameterization_gradient",
    "score_function_gradient",
    "log_likelihood",
    "hmc_log_likelihood",
    "rate_and_distortion",
    "mean_and_stderr",
    "paired_difference",
    "LinearGaussianModel",
    "ProbabilisticPCA",
    "best_diagonal_gaussian",
    "load_mnist",
    "make_dataset",
    "make_stream",
    "dynamic_binarize",
    "fixed_binarize",
    "train",
    "quick_mode",
    "glue",
    "full_build_text",
    "show_source",
]

__version__ = "0.11.0"
