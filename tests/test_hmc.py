"""HMC on the exact posterior, and the paper's marginal-likelihood estimator built on it."""

import keras
import numpy as np
import pytest

import vaelib
from vaelib.evaluation import hmc_log_likelihood
from vaelib.hmc import sample_posterior


@pytest.fixture(scope="module")
def linear_gaussian():
    model = vaelib.LinearGaussianModel.random(latent_dim=2, data_dim=5, noise_std=0.7, seed=1)
    return model, model.sample_data(20, seed=3)


def test_hmc_draws_the_exact_posterior_of_a_linear_gaussian_model(linear_gaussian):
    """20 chains of 500 draws, standardised by the exact posterior, pool to mean 0 and standard deviation 1.

    The draws are correlated (an effective sample size of some hundreds per chain), so the pooled mean and
    standard deviation of 10,000 draws sit within a few hundredths of 0 and 1; 0.1 leaves room. The step
    size adapts so that the acceptance rate is near the target of 0.9.
    """
    model, x = linear_gaussian
    drawn = sample_posterior(model, x, 500, num_burnin=300, target_accept=0.9, seed=0)
    exact = model.posterior(x)
    scale = np.sqrt(np.diagonal(exact.covariance().numpy(), axis1=1, axis2=2))
    standardised = (drawn.samples.numpy() - exact.mean().numpy()) / scale
    assert drawn.samples.shape == (500, 20, 2) and drawn.step_size.shape == (20, 1)
    np.testing.assert_allclose(standardised.mean(axis=(0, 1)), 0.0, atol=0.1)
    np.testing.assert_allclose(standardised.std(axis=(0, 1)), 1.0, atol=0.1)
    assert 0.8 < float(np.mean(drawn.acceptance)) < 0.97


def test_posterior_sampling_compiles_once_per_model_and_settings_and_forgets_the_model(linear_gaussian):
    """Estimating in batches must not trace the chains' loop again for every batch; a runner must not keep
    its model alive."""
    import gc

    from vaelib import hmc

    model, x = linear_gaussian
    first = sample_posterior(model, x[:10], 20, num_burnin=10, seed=0)
    again = sample_posterior(model, x[10:], 20, num_burnin=10, seed=0)  # another batch, the same shape
    run = hmc._chain_runner(model, 20, 10, 10, 0.9)
    assert run.experimental_get_tracing_count() == 1
    assert not np.allclose(first.samples.numpy(), again.samples.numpy())  # each batch its own posterior
    np.testing.assert_array_equal(first.samples.numpy(), sample_posterior(model, x[:10], 20, 10, seed=0).samples)
    other = vaelib.LinearGaussianModel.random(latent_dim=2, data_dim=5, noise_std=0.7, seed=2)
    sample_posterior(other, x[:10], 20, num_burnin=10, seed=0)
    assert other in hmc._RUNNERS
    gc.collect()  # models of earlier tests, unreachable but not yet collected, must not be counted below
    held = len(hmc._RUNNERS)
    del other
    gc.collect()
    assert len(hmc._RUNNERS) == held - 1


def test_hmc_log_likelihood_agrees_with_the_exact_evidence(linear_gaussian):
    """The estimator against log p(x) in closed form: over 200 such estimates (4 seeds, 50 points) the
    largest error was 0.035 nats and the root-mean-square 0.009, so 0.15 and 0.03 are generous bounds."""
    model, x = linear_gaussian
    estimate = hmc_log_likelihood(model, x, num_samples=500, num_burnin=300, seed=0)
    error = estimate - model.log_marginal(x).numpy()
    assert np.abs(error).max() < 0.15 and np.sqrt(np.mean(error**2)) < 0.03, error


@pytest.mark.slow
def test_hmc_log_likelihood_agrees_with_iwae_5000_on_a_trained_vae(mnist):
    """On a VAE with two latent dimensions the IWAE bound with k = 5000 is within a few hundredths of a nat of
    log p(x); the HMC estimator must land there too (it used no encoder), and not below the bound on average:
    the per-image differences seen were at most 0.14 nats, their mean 0.02-0.03."""
    (x_train, _), (x_test, _) = mnist
    keras.utils.set_random_seed(0)
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(64,))
    model.compile(seed=0, jit_compile=True)  # the model the tolerances below were measured on
    model.fit(vaelib.fixed_binarize(x_train[:2000], 0), batch_size=100, epochs=5, verbose=0)
    x = vaelib.fixed_binarize(x_test[:20], 0)
    difference = hmc_log_likelihood(model, x, num_samples=500, num_burnin=300, seed=0) - vaelib.log_likelihood(
        model, x, num_samples=5000, seed=1
    )
    assert np.abs(difference).max() < 0.4 and -0.05 < difference.mean() < 0.1, difference


def test_hmc_refuses_bad_options(linear_gaussian):
    model, x = linear_gaussian
    for bad in (1.5, 0.0, float("nan")):
        with pytest.raises(ValueError, match=r"target_accept must be in \(0, 1\)"):
            sample_posterior(model, x, 10, target_accept=bad)
    with pytest.raises(TypeError, match="target_accept must be a number"):
        sample_posterior(model, x, 10, target_accept="0.9")
    with pytest.raises(ValueError, match="num_burnin"):
        sample_posterior(model, x, 10, num_burnin=-1)
    with pytest.raises(ValueError, match="initial_z must have shape"):
        sample_posterior(model, x, 10, initial_z=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="initial_step_size"):
        sample_posterior(model, x, 10, initial_step_size=0.0)
    with pytest.raises(ValueError, match="num_samples"):
        hmc_log_likelihood(model, x, num_samples=1)
    with pytest.raises(ValueError, match="NaN"):
        hmc_log_likelihood(model, np.full((2, 5), np.nan))


def test_marginal_likelihoods_in_batches_do_not_depend_on_the_images_that_follow(linear_gaussian):
    """Figure 3's estimates per image: the batch starting at image i is seeded with seed + i, so the first
    images' estimates are the same whether 7 or 20 images are measured (the curves' 100 evaluation images are
    the first 100 of the final models' 1,000), and the mean is their mean."""
    from vaelib.paper import marginal_likelihoods, mean_marginal_likelihood

    model, x = linear_gaussian
    kwargs = {"num_samples": 20, "num_burnin": 10, "seed": 3, "batch_size": 7}
    every = marginal_likelihoods(model, x, **kwargs)
    assert every.shape == (20,) and np.isfinite(every).all()
    np.testing.assert_array_equal(marginal_likelihoods(model, x[:7], **kwargs), every[:7])
    np.testing.assert_array_equal(every[7:14], hmc_log_likelihood(model, x[7:14], 20, 10, seed=3 + 7))
    assert mean_marginal_likelihood(model, x, **kwargs) == pytest.approx(float(np.mean(every, dtype=np.float64)))
    with pytest.raises(ValueError, match="empty"):
        marginal_likelihoods(model, x[:0])
    with pytest.raises(ValueError, match="batch_size"):
        marginal_likelihoods(model, x, batch_size=0)
