"""Every plotting helper returns a Figure with what it promises: images, labelled axes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import vaelib  # noqa: E402
from vaelib import plotting  # noqa: E402


@pytest.fixture
def model2d():
    return vaelib.VAE.mlp(latent_dim=2, hidden_units=(16,))


def test_image_grid(binary_batch):
    fig = plotting.image_grid(binary_batch[:7], ncols=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 9
    assert sum(bool(ax.images) for ax in fig.axes) == 7
    plt.close(fig)


def test_reconstructions_and_interpolation(model2d, binary_batch):
    fig = plotting.reconstruction_figure(model2d, binary_batch, n=5)
    assert len(fig.axes) == 10 and fig.axes[0].get_ylabel() == "input" and fig.axes[5].get_ylabel() == "reconstruction"
    fig2 = plotting.interpolation_figure(model2d, binary_batch[0], binary_batch[1], steps=6)
    assert len(fig2.axes) == 6
    plt.close("all")


def test_latent_manifold_uses_the_inverse_gaussian_cdf(model2d):
    fig = plotting.latent_manifold(model2d, n=5)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "$z_1$" and ax.get_ylabel() == "$z_2$"
    left, right, _, _ = ax.images[0].get_extent()
    assert left == pytest.approx(-1.6449, abs=1e-3) and right == pytest.approx(1.6449, abs=1e-3)  # Phi^-1(0.95)
    assert ax.images[0].get_array().shape == (5 * 28, 5 * 28)
    with pytest.raises(ValueError, match="latent_dim=2"):
        plotting.latent_manifold(vaelib.VAE.mlp(latent_dim=3, hidden_units=(8,)))
    plt.close("all")


def test_latent_scatter(model2d, binary_batch):
    fig = plotting.latent_scatter(model2d, binary_batch, np.arange(16) % 10)
    assert fig.axes[0].get_xlabel() and fig.axes[0].get_ylabel()
    fig3 = plotting.latent_scatter(vaelib.VAE.mlp(latent_dim=4, hidden_units=(8,)), binary_batch, np.arange(16) % 10)
    assert "principal component" in fig3.axes[0].get_xlabel()
    with pytest.raises(ValueError, match="labels"):
        plotting.latent_scatter(model2d, binary_batch, np.arange(3))
    plt.close("all")


def test_training_curves():
    fig = plotting.training_curves({"elbo": [-200, -150], "val_elbo": [-190, -160]})
    ax = fig.axes[0]
    assert ax.get_ylabel() == "nats per example" and len(ax.lines) == 2
    with pytest.raises(ValueError, match="no kl"):
        plotting.training_curves({"elbo": [1.0]}, metrics=("kl",))
    plt.close("all")


def test_latent_manifold_on_a_linear_grid():
    model = vaelib.Autoencoder.mlp(latent_dim=2, hidden_units=(8,))
    fig = plotting.latent_manifold(model, n=4, limits=(-3.0, 5.0))
    left, right, _, _ = fig.axes[0].images[0].get_extent()
    assert (left, right) == (-3.0, 5.0)
    with pytest.raises(ValueError, match="limits"):
        plotting.latent_manifold(model, limits=(1.0, 1.0))
    plt.close("all")


def test_manifold_grid_places_z2_upwards(model2d):
    grid, values = plotting.manifold_grid(model2d, n=4)
    assert grid.shape == (4, 4, 28, 28) and values.shape == (4,)
    # row 0 is the top of the plot: the largest z_2; column 0 the smallest z_1
    top_left = model2d.decode(np.array([[values[0], values[-1]]], np.float32)).mean().numpy()[0]
    np.testing.assert_allclose(grid[0, 0], top_left, atol=1e-6)
    fig = plotting.manifold_figure(grid, values)
    assert fig.axes[0].images[0].get_array().shape == (4 * 28, 4 * 28)
    with pytest.raises(ValueError, match="grid"):
        plotting.manifold_figure(grid[:3], values)
    plt.close("all")


def test_image_panels_accepts_uint8_and_floats(binary_batch):
    fig = plotting.image_panels({"a": binary_batch[:6], "b": (binary_batch[:4] * 255).astype(np.uint8)}, ncols=3)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    assert fig.axes[0].images[0].get_array().shape == (2 * 29 - 1, 3 * 29 - 1)
    assert fig.axes[1].images[0].get_array().max() <= 1.0
    with pytest.raises(ValueError, match="at least one"):
        plotting.image_panels({})
    plt.close("all")


def test_aevb_fig2_figure_has_a_log_panel_per_latent_dim():
    rows = [
        {"n_z": n, "samples": s, "train_bound": -100.0 - n, "test_bound": -101.0 - n}
        for n in (3, 20)
        for s in (10_000, 100_000)
    ]
    fig = plotting.aevb_fig2_figure(rows)
    assert len(fig.axes) == 2 and all(ax.get_xscale() == "log" for ax in fig.axes)
    assert fig.axes[0].get_ylabel() == "lower bound per datapoint (nats)"
    assert fig.axes[0].get_xlabel() == "training samples evaluated" and len(fig.axes[0].lines) == 2
    with pytest.raises(ValueError, match="test_bound"):
        plotting.aevb_fig2_figure([{"n_z": 3, "samples": 1, "train_bound": 1.0}])
    plt.close("all")


def test_aevb_fig2_figure_draws_wake_sleep_beside_aevb():
    rows = [
        {"method": m, "n_z": n, "samples": s, "train_bound": -100.0 - n, "test_bound": -101.0 - n}
        for m in ("aevb", "wake_sleep")
        for n in (3, 20)
        for s in (10_000, 100_000)
    ]
    fig = plotting.aevb_fig2_figure(rows)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["AEVB, train", "AEVB, test", "wake-sleep, train", "wake-sleep, test"]
    assert fig.axes[0].lines[0].get_color() != fig.axes[0].lines[2].get_color()
    with pytest.raises(ValueError, match="unknown method.*mcem"):
        plotting.aevb_fig2_figure([dict(rows[0], method="mcem")])
    plt.close("all")


def test_aevb_fig3_figure_has_a_panel_per_training_set_size_and_a_colour_per_method():
    rows = [
        {"method": m, "n_train": n, "samples": s, "train_marginal_ll": -120.0, "test_marginal_ll": -125.0}
        for m in ("aevb", "wake_sleep", "mcem")
        for n in (1000, 50_000)
        for s in (10_000, 100_000)
        if not (m == "mcem" and n == 50_000)  # MCEM runs on the small training set only
    ]
    fig = plotting.aevb_fig3_figure(rows)
    titles = [r"MNIST, $N_{\mathrm{train}} = 1,000$", r"MNIST, $N_{\mathrm{train}} = 50,000$"]
    assert [ax.get_title() for ax in fig.axes] == titles
    assert fig.axes[0].get_ylabel() == "marginal log-likelihood (nats)" and fig.axes[0].get_xscale() == "log"
    assert [line.get_label() for line in fig.axes[1].lines] == [
        "AEVB, train", "AEVB, test", "wake-sleep, train", "wake-sleep, test"
    ]  # fmt: skip
    assert len({line.get_color() for line in fig.axes[0].lines}) == 3
    with pytest.raises(ValueError, match="test_marginal_ll"):
        plotting.aevb_fig3_figure([{"method": "mcem", "n_train": 1000, "samples": 1, "train_marginal_ll": 1.0}])
    plt.close("all")


def test_equal_budget_figure_draws_each_objective_against_passes_and_against_time():
    rows = [
        {"objective": o, "epoch": e, "train_seconds": e * s, "k": k, "test_log_likelihood": -90 + e / 10, "stderr": 0.2}
        for o, s in (("elbo", 4.0), ("iwae50", 60.0))
        for e in (1, 3, 10)
        for k in (1, 5000)
    ]
    fig = plotting.equal_budget_figure(rows, k=5000, labels={"elbo": "ELBO"})
    passes, minutes = fig.axes
    assert passes.get_xlabel() == "passes through the training set"
    assert minutes.get_xlabel() == "training time (minutes)"
    assert "5000" in passes.get_ylabel() and passes.get_xscale() == minutes.get_xscale() == "log"
    assert passes.get_legend_handles_labels()[1] == ["ELBO", "trained with iwae50"]
    iwae50_line = minutes.containers[1].lines[0]
    np.testing.assert_allclose(iwae50_line.get_xdata(), [1.0, 3.0, 10.0])  # a minute per pass
    with pytest.raises(ValueError, match="no rows with k = 50"):
        plotting.equal_budget_figure(rows, k=50)
    plt.close("all")


def test_bound_vs_k_and_rate_distortion_figures():
    table = {"objective": np.array(["elbo"] * 3), "k": np.array([1, 50, 5000]), "test_log_likelihood": [-92, -90, -89]}
    fig = plotting.bound_vs_k_figure(table, published={"elbo": -86.76})
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "$k$" in ax.get_xlabel() and ax.get_ylabel()
    assert len(ax.lines) == 2  # our curve and the published marker
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["trained with elbo", "elbo, Burda et al. (2016)"]
    fig = plotting.bound_vs_k_figure(
        table, published={"elbo": -86.76}, labels={"elbo": "ELBO, 60 min"}, published_label="published, 3,280 passes"
    )
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["ELBO, 60 min", "elbo, published, 3,280 passes"]  # budgets can be stated in the legend
    fig = plotting.rate_distortion_figure({"beta": [0.5, 1, 4], "rate": [30, 25, 10], "distortion": [70, 75, 95]})
    assert "rate" in fig.axes[0].get_xlabel() and "distortion" in fig.axes[0].get_ylabel()
    with pytest.raises(ValueError, match="empty"):
        plotting.rate_distortion_figure({"beta": [], "rate": [], "distortion": []})
    plt.close("all")


def test_grid_smoothness_measures_how_alike_neighbours_are():
    rng = np.random.default_rng(0)
    u = np.linspace(0, 1, 10)
    smooth = np.broadcast_to((u[:, None] + u[None, :])[:, :, None, None], (10, 10, 4, 4))  # a ramp
    shuffled = rng.permutation(smooth.reshape(100, 4, 4)).reshape(10, 10, 4, 4)
    noise = rng.random((10, 10, 4, 4))
    assert plotting.grid_smoothness(smooth) < 0.1
    assert plotting.grid_smoothness(shuffled) > 0.6  # the same images, neighbours at random
    # independent images: neighbours are exactly as alike as any pair, in expectation (400 pairs: +-0.1)
    assert abs(plotting.grid_smoothness(noise) - 1) < 0.1
    with pytest.raises(ValueError, match="the same"):
        plotting.grid_smoothness(np.ones((3, 3, 2, 2)))
    with pytest.raises(ValueError, match="shape"):
        plotting.grid_smoothness(np.ones((3, 4, 2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        plotting.grid_smoothness(np.full((2, 2, 1, 1), np.nan))
