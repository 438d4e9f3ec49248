"""The minibatch estimator (N/M) sum is unbiased for the full-data bound; bad input is refused."""

import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import vaelib

tfd = tfp.distributions


def test_minibatch_estimator_is_unbiased_for_the_full_data_bound():
    model = vaelib.LinearGaussianModel.random(latent_dim=2, data_dim=4, noise_std=0.5, seed=5)
    data = model.sample_data(60, seed=6)
    # The encoder is the exact posterior, so the full-data bound is sum_i log p(x_i), known exactly.
    full_data_bound = model.log_marginal(data).numpy().sum()
    rng = np.random.default_rng(7)
    # one graph, traced once: each call draws a fresh minibatch's estimate from its own seed
    estimate = tf.function(lambda batch, seed: vaelib.minibatch_elbo(model, batch, dataset_size=60, seed=seed))
    estimates = np.array(
        [estimate(data[rng.choice(60, size=10, replace=False)], tf.constant([i, 0])).numpy() for i in range(600)]
    )
    stderr = estimates.std(ddof=1) / np.sqrt(len(estimates))
    # Mean of 600 independent estimates: |z| < 4 fails with probability ~6e-5 if unbiased.
    assert abs(estimates.mean() - full_data_bound) < 4 * stderr
    # and the minibatch spread is real (this is an estimator, not the full sum in disguise)
    assert estimates.std() > 1.0


def test_minibatch_scale_is_n_over_m(binary_batch):
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    per_example = vaelib.elbo(model, binary_batch, seed=1).numpy()
    scaled = vaelib.minibatch_elbo(model, binary_batch, dataset_size=1000, seed=1).numpy()
    np.testing.assert_allclose(scaled, 1000 / 16 * per_example.sum(), rtol=1e-5)


def test_elbo_terms_add_up(binary_batch):
    model = vaelib.VAE.mlp(latent_dim=3, hidden_units=(8,))
    terms = vaelib.elbo_terms(model, model.check_data(binary_batch), num_samples=3, seed=2)
    np.testing.assert_allclose(terms["elbo"], terms["reconstruction"] - terms["kl"], rtol=1e-6)
    assert all(v.shape == (16,) for v in terms.values())
    assert np.all(terms["kl"].numpy() >= 0)


@pytest.mark.parametrize(
    "x, error, match",
    [
        (np.zeros((4, 28, 27), np.float32), ValueError, "shape"),
        (np.zeros((28, 28), np.float32), ValueError, "shape"),
        (np.zeros((4, 28, 28), np.uint8), TypeError, "float"),
        (np.full((4, 28, 28), 2.0, np.float32), ValueError, r"\[0, 1\]"),
        (np.full((4, 28, 28), np.nan, np.float32), ValueError, "NaN"),
        (np.full((4, 28, 28), np.inf, np.float32), ValueError, "NaN or infinite"),
        (np.zeros((0, 28, 28), np.float32), ValueError, "empty"),
    ],
)
def test_bounds_refuse_bad_data(x, error, match):
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    for bound in (vaelib.elbo, lambda m, x: vaelib.iwae_bound(m, x, 2), vaelib.log_likelihood):
        with pytest.raises(error, match=match):
            bound(model, x)


def test_bounds_refuse_bad_sizes(binary_batch):
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    with pytest.raises(ValueError, match="num_samples"):
        vaelib.elbo(model, binary_batch, num_samples=0)
    with pytest.raises(ValueError, match="kl"):
        vaelib.elbo(model, binary_batch, kl="exact")
    with pytest.raises(ValueError, match="dataset_size"):
        vaelib.minibatch_elbo(model, binary_batch, dataset_size=10)
    with pytest.raises(ValueError, match="num_samples"):
        vaelib.iwae_bound(model, binary_batch, num_samples=0)
    with pytest.raises(ValueError, match="batch_size"):
        vaelib.log_likelihood(model, binary_batch, num_samples=5, batch_size=0)


def test_every_estimator_validates_its_options():
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    x = np.zeros((3, 28, 28), np.float32)
    with pytest.raises(ValueError, match="kl"):
        vaelib.elbo_terms(model, x, kl="bogus")  # no longer falls back to Monte Carlo
    for estimator in (vaelib.elbo_terms, vaelib.elbo):
        with pytest.raises(ValueError, match="num_samples"):
            estimator(model, x, num_samples=0)  # no longer a NaN
    with pytest.raises(ValueError, match="num_samples"):
        vaelib.bound.log_weights(model, x, 0)


def test_an_autoencoder_has_no_bound():
    autoencoder = vaelib.Autoencoder.mlp(latent_dim=2, hidden_units=(8,))
    x = np.zeros((3, 28, 28), np.float32)
    for name, call in {
        "variational bound": lambda: vaelib.elbo(autoencoder, x),
        "importance-weighted bound": lambda: vaelib.iwae_bound(autoencoder, x, 5),
        "importance-sampled log-likelihood": lambda: vaelib.log_likelihood(autoencoder, x, num_samples=5),
    }.items():
        with pytest.raises(TypeError, match=f"the {name} needs a distribution q.z.x.*point mass"):
            call()


def test_grey_levels_under_a_bernoulli_model_warn_and_name_the_binarisers():
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(8,))
    grey = np.full((3, 28, 28), 0.4, np.float32)
    for call in (
        lambda x: vaelib.elbo(model, x),
        lambda x: vaelib.iwae_bound(model, x, 2),
        lambda x: vaelib.minibatch_elbo(model, x, dataset_size=10),
        lambda x: vaelib.log_likelihood(model, x, num_samples=2),
    ):
        with pytest.warns(vaelib.bound.GreyLevelWarning, match="fixed_binarize.*dynamic_binarize"):
            call(grey)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # binary data: no warning
            call(vaelib.fixed_binarize(grey))


def test_estimators_called_eagerly_compute_what_they_compute_uncompiled(binary_batch, monkeypatch):
    """Called eagerly on a Keras model, elbo_terms and iwae_bound run compiled: the same numbers and gradients.

    The reference is the same estimator run op by op (compilation switched off), with the same stateless
    seed, so both draw the same z: they differ only in the order of float32 sums (a relative 1e-5 is some
    hundred roundings). The Monte Carlo KL is a difference, log q(z|x) - log p(z), of terms of a few nats
    that can nearly cancel: its rounding is relative to those terms, so it may also differ by 1e-5 of a nat
    (some hundred roundings of a 3-nat term), however small the difference is.
    """
    import tensorflow as tf

    from vaelib import bound

    model = vaelib.VAE.mlp(latent_dim=3, hidden_units=(8,))
    x = model.check_data(binary_batch)
    seed = tf.constant([4, 5])

    def terms_and_gradients(kl):
        with tf.GradientTape() as tape:
            terms = bound.elbo_terms(model, x, num_samples=3, kl=kl, seed=seed)
            mean = tf.reduce_mean(terms["elbo"])
        return terms, tape.gradient(mean, model.trainable_variables)

    compiled = {kl: terms_and_gradients(kl) for kl in ("analytic", "mc")}
    compiled_iwae = vaelib.iwae_bound(model, x, 7, seed=seed)
    assert bound._COMPILED[model]  # the compiled path ran
    with monkeypatch.context() as patch:
        patch.setattr(bound, "_runs_compiled", lambda model: False)
        by_ops = {kl: terms_and_gradients(kl) for kl in ("analytic", "mc")}
        by_ops_iwae = vaelib.iwae_bound(model, x, 7, seed=seed)
    for kl in ("analytic", "mc"):
        for name in ("elbo", "kl", "reconstruction"):
            np.testing.assert_allclose(compiled[kl][0][name], by_ops[kl][0][name], rtol=1e-5, atol=1e-5)
        for a, b in zip(compiled[kl][1], by_ops[kl][1]):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(compiled_iwae, by_ops_iwae, rtol=1e-5)
    # the compiled path sees the weights as they are now, not as they were when it was traced
    before = vaelib.elbo(model, x, seed=1).numpy()
    for v in model.trainable_variables:
        v.assign(v * 0.5)
    after = vaelib.elbo(model, x, seed=1).numpy()
    with monkeypatch.context() as patch:
        patch.setattr(bound, "_runs_compiled", lambda model: False)
        by_ops_after = vaelib.elbo(model, x, seed=1).numpy()
    np.testing.assert_allclose(after, by_ops_after, rtol=1e-5)
    assert not np.allclose(before, after)
    # and fresh draws without a seed
    assert not np.allclose(vaelib.elbo(model, x), vaelib.elbo(model, x))


def test_log_likelihood_decodes_in_slices_the_draws_of_log_weights(binary_batch, monkeypatch):
    """Slicing the decoding changes nothing but speed: the same z as log_weights, the same estimate.

    With k no larger than one call's samples, log_likelihood's single call draws from the seed folded
    with 0, exactly as vaelib.bound.log_weights would; 1e-5 relative allows for the order of float32 sums.
    """
    import math

    import tensorflow as tf

    from vaelib import bound, evaluation

    model = vaelib.VAE.mlp(latent_dim=3, hidden_units=(8,))
    x = model.check_data(binary_batch)
    n, k = int(x.shape[0]), 7
    chunk_seed = tf.random.experimental.stateless_fold_in(vaelib._checks.stateless_seed(3), 0)
    by_hand = tf.reduce_logsumexp(bound.log_weights(model, x, k, chunk_seed), axis=0) - math.log(k)
    monkeypatch.setattr(evaluation, "DECODES_PER_SLICE", 2 * n)  # slices of 2 draws: 2, 2, 2 and 1
    sliced = vaelib.log_likelihood(model, x, num_samples=k, batch_size=n, seed=3)
    np.testing.assert_allclose(sliced, by_hand.numpy(), rtol=1e-5)


def test_rate_and_distortion_split_the_bound_and_the_rate_splits_over_coordinates():
    model = vaelib.VAE.mlp(data_shape=(6,), latent_dim=3, hidden_units=(8,))
    x = (np.random.default_rng(0).random((25, 6)) < 0.5).astype(np.float32)
    measured = vaelib.rate_and_distortion(model, x, batch_size=10, seed=4)
    # the same draws as elbo_terms batch by batch (seeds 4, 14, 24)
    terms = [vaelib.elbo_terms(model, model.check_data(x[i : i + 10]), seed=4 + i) for i in (0, 10, 20)]
    np.testing.assert_allclose(measured["rate"], np.mean(np.concatenate([t["kl"] for t in terms])), rtol=1e-6)
    reconstruction = np.mean(np.concatenate([t["reconstruction"] for t in terms]))
    np.testing.assert_allclose(measured["distortion"], -reconstruction, rtol=1e-6)
    assert measured["bound"] == -(measured["rate"] + measured["distortion"])
    # per coordinate, against TFP's KL of each one-dimensional factor from the N(0, 1) prior
    q = model.encode(x)
    per_dim = tfd.kl_divergence(tfd.Normal(q.mean(), q.stddev()), tfd.Normal(0.0, 1.0)).numpy().mean(axis=0)
    np.testing.assert_allclose(measured["rate_per_dim"], per_dim, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(measured["rate_per_dim"].sum(), measured["rate"], rtol=1e-5)
    with pytest.raises(ValueError, match="empty"):
        vaelib.rate_and_distortion(model, x[:0])


def test_paired_difference_has_the_standard_error_of_its_repeats():
    """Over 2,000 repeats of 'two models on the same 400 images' (per-image values correlated 0.95, as two
    models' log-likelihoods of one image are), the stated standard error matches the spread of the mean
    differences within 5% (the spread of 2,000 draws is known to 1.6%), and is far below what treating the
    two means as independent would claim."""
    rng = np.random.default_rng(0)
    hardness = rng.normal(size=(2000, 400)) * 10.0  # what makes an image hard, shared by both models
    a = -90.0 + hardness + rng.normal(size=(2000, 400)) * 1.0
    b = -91.0 + hardness + rng.normal(size=(2000, 400)) * 2.0
    results = np.array([vaelib.paired_difference(ai, bi) for ai, bi in zip(a, b)])
    means, stderrs = results[:, 0], results[:, 1]
    assert abs(means.mean() - 1.0) < 4 * means.std() / np.sqrt(2000)  # unbiased for the true difference, 1
    assert abs(stderrs.mean() / means.std() - 1) < 0.05
    naive = np.sqrt(a.var(axis=1, ddof=1) / 400 + b.var(axis=1, ddof=1) / 400).mean()
    assert naive > 4 * stderrs.mean()
    with pytest.raises(ValueError, match="same images"):
        vaelib.paired_difference(a[0], b[0][:-1])
    with pytest.raises(ValueError, match="finite"):
        vaelib.paired_difference([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2"):
        vaelib.paired_difference([1.0], [2.0])


def test_mean_and_stderr_is_the_mean_and_the_sample_deviation_over_root_n():
    """Against the closed form, in float64 for float32 estimates (paired_difference, whose standard error the
    test above checks against repeats, is it applied to the per-image differences); bad input is refused."""
    rng = np.random.default_rng(1)
    values = (-140.0 + 50.0 * rng.normal(size=400)).astype(np.float32)
    exact = values.astype(np.float64)
    mean, stderr = vaelib.mean_and_stderr(values)
    assert mean == pytest.approx(exact.sum() / 400, rel=1e-12)
    assert stderr == pytest.approx(np.sqrt(((exact - exact.mean()) ** 2).sum() / 399 / 400), rel=1e-12)
    other = values[::-1].copy()
    assert vaelib.paired_difference(values, other) == vaelib.mean_and_stderr(exact - other.astype(np.float64))
    with pytest.raises(ValueError, match="at least 2"):
        vaelib.mean_and_stderr([1.0])
    with pytest.raises(ValueError, match="1-D"):
        vaelib.mean_and_stderr(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="finite"):
        vaelib.mean_and_stderr([1.0, np.inf])
