"""The paper's experiments and baselines, loaded only when imported: ``import vaelib.paper``.

* :mod:`vaelib.paper.experiments` — AEVB's Figures 2 and 3, the IWAE paper's reference model, the
  :math:`\\beta` sweep, and where their committed results are; every run resumable on
  :class:`vaelib.training.Run`;
* :mod:`vaelib.paper.wake_sleep` — the wake-sleep algorithm, an objective for ``VAE.compile``;
* :mod:`vaelib.paper.mcem` — Monte Carlo EM, a Keras model that trains a VAE's decoder.

The scripts in ``experiments/`` run them with the full budgets and write ``results/``; the chapters run
them with tiny budgets in quick mode, so the same code runs in every build.
"""

from vaelib.paper.experiments import (
    ADAGRAD_STEP_SIZES,
    ESTIMATOR_BURNIN,
    FIG2_LATENT_DIMS,
    FIG2_METHODS,
    FIG3_METHODS,
    FIG3_TRAIN_SIZES,
    aevb_curve,
    beta_sweep,
    burda_learning_rate,
    choose_step_size,
    cosine_learning_rate,
    evaluation_points,
    fig2_run_folder,
    figure3_curve,
    figure3_model,
    marginal_likelihoods,
    mean_bound,
    mean_marginal_likelihood,
    paper_model,
    reference_model,
    results_file,
    results_url,
    train_for,
)
from vaelib.paper.mcem import MonteCarloEM
from vaelib.paper.wake_sleep import WakeSleep, wake_sleep_terms

__all__ = [
    "WakeSleep",
    "wake_sleep_terms",
    "MonteCarloEM",
    "paper_model",
    "fig2_run_folder",
    "evaluation_points",
    "mean_bound",
    "choose_step_size",
    "aevb_curve",
    "figure3_model",
    "figure3_curve",
    "marginal_likelihoods",
    "mean_marginal_likelihood",
    "burda_learning_rate",
    "cosine_learning_rate",
    "reference_model",
    "train_for",
    "beta_sweep",
    "results_file",
    "results_url",
    "FIG2_LATENT_DIMS",
    "FIG2_METHODS",
    "ADAGRAD_STEP_SIZES",
    "FIG3_METHODS",
    "FIG3_TRAIN_SIZES",
    "ESTIMATOR_BURNIN",
]
