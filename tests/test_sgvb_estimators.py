"""The paper's SGVB estimators A (kl="mc") and B (kl="analytic") and the path-derivative estimator (kl="stl").

The truths are independent of the estimators: the linear-Gaussian model's exact posterior and its bound in
closed form (LinearGaussianModel.exact_elbo, differentiated by TensorFlow).
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import vaelib

tfd = tfp.distributions


def test_stl_has_the_values_of_estimator_a(binary_batch):
    model = vaelib.VAE.mlp(latent_dim=3, hidden_units=(8,))
    for of, x in ((model, binary_batch), (vaelib.LinearGaussianModel.random(seed=1), None)):
        x = of.sample_data(6, seed=2) if x is None else x
        a = vaelib.elbo(of, x, num_samples=4, kl="mc", seed=3).numpy()
        stl = vaelib.elbo(of, x, num_samples=4, kl="stl", seed=3).numpy()
        np.testing.assert_array_equal(stl, a)


def _gradients(model, x, q_parameters, make_q, kl, seed):
    """Gradient of the summed per-example estimates with respect to q's parameters."""
    with tf.GradientTape() as tape:
        tape.watch(q_parameters)
        value = tf.reduce_sum(vaelib.elbo(model, x, kl=kl, seed=seed, posterior=make_q(*q_parameters)))
    return [g.numpy() for g in tape.gradient(value, q_parameters)]


def test_stl_gradient_is_zero_at_the_exact_posterior_and_the_others_are_not():
    # A full-covariance posterior (random W): at q = p(z|x), log p(x, z) - log q(z|x) = log p(x) for every z,
    # so the path derivative (d/dz of that difference, times dz/dphi) is zero draw by draw.
    model = vaelib.LinearGaussianModel.random(latent_dim=3, data_dim=6, noise_std=0.4, seed=4)
    x = model.sample_data(5, seed=5)
    posterior = model.posterior(x)
    parameters = [posterior.loc, posterior.scale.to_dense()]

    def make_q(loc, scale_tril):
        return tfd.MultivariateNormalTriL(loc=loc, scale_tril=scale_tril)

    for seed in range(3):
        stl = _gradients(model, x, parameters, make_q, "stl", seed)
        assert max(np.abs(g).max() for g in stl) < 1e-10, stl  # float64 rounding
        for kl in ("mc", "analytic"):
            noisy = _gradients(model, x, parameters, make_q, kl, seed)
            assert max(np.abs(g).max() for g in noisy) > 1e-2, (kl, noisy)


@pytest.mark.parametrize("kl", ["analytic", "mc", "stl"])
def test_every_estimator_is_unbiased_for_the_gradient_of_the_exact_bound(kl):
    # A diagonal q away from the posterior; the truth is the gradient of the closed-form bound.
    model = vaelib.LinearGaussianModel.random(latent_dim=2, data_dim=4, noise_std=0.5, seed=6)
    x = model.sample_data(1, seed=7)
    mean, log_var = tf.constant([[0.3, -0.8]], tf.float64), tf.constant([[-1.0, 0.5]], tf.float64)
    with tf.GradientTape() as tape:
        tape.watch([mean, log_var])
        exact = model.exact_elbo(x, vaelib.diagonal_gaussian(mean, log_var))
    truth = np.concatenate([g.numpy().ravel() for g in tape.gradient(exact, [mean, log_var])])
    # 4,000 independent single-draw estimates at once: the batch holds 4,000 copies of (x, mean, log_var)
    repeats = 4000
    tiled = [tf.repeat(v, repeats, axis=0) for v in (mean, log_var)]
    draws = _gradients(model, np.repeat(x, repeats, axis=0), tiled, vaelib.diagonal_gaussian, kl, 8)
    draws = np.concatenate(draws, axis=1)  # (repeats, 4): d/dmu, d/dlog_var
    stderr = draws.std(axis=0, ddof=1) / np.sqrt(repeats)
    # four means of 4,000 draws, close to normal: |z| > 4 has probability about 2.5e-4 if unbiased
    assert np.all(np.abs(draws.mean(axis=0) - truth) < 4 * stderr), (draws.mean(axis=0), truth, stderr)


def test_every_estimator_trains_and_a_bad_option_is_refused_everywhere(binary_batch):
    from vaelib import cli

    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    x = tf.constant(binary_batch)
    values = {}
    for kl in vaelib.bound.KL_METHODS:
        loss, _ = vaelib.ELBO(kl=kl)(model, x, tf.constant([5, 6]))
        values[kl] = float(loss)
    assert values["stl"] == values["mc"] != values["analytic"]  # STL changes the gradient, not the value
    for kl in vaelib.bound.KL_METHODS:  # the command line offers each of them
        assert cli.build_parser().parse_args(["train", "runs/x", "--kl", kl]).kl == kl
    with pytest.raises(ValueError, match="kl must be one of 'analytic', 'mc', 'stl'"):
        vaelib.elbo(model, binary_batch, kl="path")
    with pytest.raises(ValueError, match="kl must be one of 'analytic', 'mc', 'stl'"):
        vaelib.ELBO(kl="path")


def _diagonal_posterior_model():
    """A linear-Gaussian model whose posterior is diagonal (W has orthogonal columns), and one data point."""
    rng = np.random.default_rng(0)
    columns = np.linalg.qr(rng.standard_normal((5, 2)))[0]
    model = vaelib.LinearGaussianModel(columns * [2.0, 1.0], rng.standard_normal(5), noise_std=0.5)
    x = model.sample_data(3, seed=1)
    posterior = model.posterior(x)
    covariance = posterior.covariance().numpy()
    assert np.abs(covariance[:, 0, 1]).max() < 1e-12  # the construction: a diagonal posterior
    return model, x, posterior.mean(), tf.sqrt(tf.linalg.diag_part(posterior.covariance()))


@pytest.mark.parametrize(
    "make_q",
    [
        lambda loc, scale: tfd.MultivariateNormalDiag(loc=loc, scale_diag=scale),
        lambda loc, scale: tfd.Independent(tfd.Normal(loc=loc, scale=scale), reinterpreted_batch_ndims=1),
    ],
    ids=["MultivariateNormalDiag", "Independent(Normal)"],
)
def test_stl_gradient_is_zero_at_the_exact_posterior_for_diagonal_families(make_q):
    # The Independent(Normal) case holds its tensors inside a nested distribution: unless the stop reaches
    # them, kl="stl" would silently give estimator A's gradient, which is not zero (checked below).
    model, x, loc, scale = _diagonal_posterior_model()
    for seed in range(3):
        stl = _gradients(model, x, [loc, scale], make_q, "stl", seed)
        assert max(np.abs(g).max() for g in stl) < 1e-10, stl  # float64 rounding
        a = _gradients(model, x, [loc, scale], make_q, "mc", seed)
        assert max(np.abs(g).max() for g in a) > 1e-2, a


def test_stl_refuses_a_q_whose_parameters_it_cannot_hold_fixed():
    model, x, loc, scale = _diagonal_posterior_model()
    q = tfd.MultivariateNormalLinearOperator(loc=loc, scale=tf.linalg.LinearOperatorDiag(scale))
    with pytest.raises(TypeError, match="kl=\"stl\".*MultivariateNormalLinearOperator.*'scale'.*LinearOperatorDiag"):
        vaelib.elbo(model, x, kl="stl", posterior=q)
    vaelib.elbo(model, x, kl="mc", posterior=q)  # the other estimators do not need to
