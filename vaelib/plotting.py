"""Figures for the book: each function draws one kind of plot and returns the matplotlib Figure.

Axes carry labels with units (nats for bounds). Images are shown as grey levels in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from vaelib._checks import check_positive_int

__all__ = [
    "image_grid",
    "image_panels",
    "reconstruction_figure",
    "latent_manifold",
    "manifold_grid",
    "manifold_figure",
    "grid_smoothness",
    "latent_scatter",
    "interpolation_figure",
    "training_curves",
    "aevb_fig2_figure",
    "aevb_fig3_figure",
    "bound_vs_k_figure",
    "equal_budget_figure",
    "rate_distortion_figure",
]


def _images(images: Any) -> np.ndarray:
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3 or len(arr) == 0:
        raise ValueError(f"images must have shape (N, H, W) with N >= 1, got {arr.shape}")
    return arr


def image_grid(images: Any, ncols: int = 10, title: str | None = None, scale: float = 1.0) -> Figure:
    """Show ``images`` (shape ``(N, H, W)``) in a grid with ``ncols`` columns."""
    images = _images(images)
    ncols = min(check_positive_int(ncols, "ncols"), len(images))
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(scale * ncols, scale * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image in zip(axes.flat, images):
        ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
    if title:
        fig.suptitle(title)
    return fig


def image_panels(panels: Mapping[str, Any], ncols: int = 10) -> Figure:
    """Several sets of images side by side, each a grid of ``ncols`` columns under its title.

    ``panels`` maps a title to images of shape ``(N, H, W)`` in [0, 1] (or uint8, read as 0..255).
    """
    if not panels:
        raise ValueError("panels must hold at least one set of images")
    sets = {}
    for title, images in panels.items():
        arr = np.asarray(images)
        sets[title] = _images(arr / 255.0 if arr.dtype == np.uint8 else arr)
    ncols = check_positive_int(ncols, "ncols")
    grids = []
    for images in sets.values():
        rows = -(-len(images) // ncols)
        h, w = images.shape[1:]
        canvas = np.ones((rows * (h + 1) - 1, ncols * (w + 1) - 1), dtype=np.float32)
        for i, image in enumerate(images):
            r, c = divmod(i, ncols)
            canvas[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = image
        grids.append(canvas)
    fig, axes = plt.subplots(1, len(grids), figsize=(3.2 * len(grids), 3.4), squeeze=False)
    for ax, title, canvas in zip(axes[0], sets, grids):
        ax.imshow(canvas, cmap="gray", vmin=0.0, vmax=1.0)
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    return fig


def _stacked_rows(rows: Sequence[np.ndarray], row_labels: Sequence[str], title: str | None) -> Figure:
    ncols = len(rows[0])
    fig, axes = plt.subplots(len(rows), ncols, figsize=(ncols, len(rows) * 1.1), squeeze=False)
    for r, (row, label) in enumerate(zip(rows, row_labels)):
        for c in range(ncols):
            ax = axes[r, c]
            ax.imshow(row[c], cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label)
    if title:
        fig.suptitle(title)
    return fig


def reconstruction_figure(model: Any, x: Any, n: int = 10) -> Figure:
    """Inputs (top row) beside their reconstructions :math:`\\mathbb{E}[x | z = \\mu(x)]` (bottom row)."""
    x = _images(x)[: check_positive_int(n, "n")]
    return _stacked_rows([x, _images(model.reconstruct(x))], ["input", "reconstruction"], None)


def manifold_grid(
    model: Any,
    n: int = 20,
    quantile_range: tuple[float, float] = (0.05, 0.95),
    limits: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Decoder means over an ``n`` x ``n`` grid of 2-D latent points: images ``(n, n, H, W)`` and the grid values.

    Linearly spaced points of the unit square are mapped through the inverse Gaussian CDF
    :math:`\\Phi^{-1}`, so the grid covers the prior :math:`\\mathcal{N}(0, I)` evenly in probability.
    With ``limits=(lo, hi)`` the grid is linear over :math:`[lo, hi]^2` instead (for a model without a
    prior, such as :class:`~vaelib.Autoencoder`). Row ``i``, column ``j`` is the point
    ``(values[j], values[n - 1 - i])``, so :math:`z_2` grows upwards as in a plot.
    """
    if model.latent_dim != 2:
        raise ValueError(f"the latent manifold needs a model with latent_dim=2, got {model.latent_dim}")
    n = check_positive_int(n, "n")
    if limits is not None:
        if not limits[0] < limits[1]:
            raise ValueError(f"limits must be (lo, hi) with lo < hi, got {limits}")
        values = np.linspace(limits[0], limits[1], n)
    else:
        lo, hi = quantile_range
        if not 0 < lo < hi < 1:
            raise ValueError(f"quantile_range must satisfy 0 < lo < hi < 1, got {quantile_range}")
        values = np.array([NormalDist().inv_cdf(p) for p in np.linspace(lo, hi, n)])
    z1, z2 = np.meshgrid(values, values[::-1])
    z = np.stack([z1.ravel(), z2.ravel()], axis=-1).astype(np.float32)
    images = _images(model.decode(z).mean().numpy())
    return images.reshape(n, n, *images.shape[1:]), values


def manifold_figure(grid: Any, values: Any) -> Figure:
    """Draw a grid from :func:`manifold_grid` as one image, with the latent coordinates on the axes."""
    grid = np.asarray(grid, dtype=np.float32)
    values = np.asarray(values, dtype=np.float64)
    if grid.ndim != 4 or grid.shape[0] != grid.shape[1] or len(values) != grid.shape[0]:
        raise ValueError(f"grid must have shape (n, n, H, W) with n = len(values), got {grid.shape} and {len(values)}")
    n, _, h, w = grid.shape
    canvas = grid.transpose(0, 2, 1, 3).reshape(n * h, n * w)
    fig, ax = plt.subplots(figsize=(7, 7))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, extent=(values[0], values[-1], values[0], values[-1]))
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    return fig


def grid_smoothness(grid: Any) -> float:
    r"""How alike neighbouring images of a manifold grid are, relative to any two of its images.

    For a grid of shape ``(n, n, H, W)`` (as :func:`manifold_grid` returns), the mean squared difference
    between horizontally or vertically adjacent images, divided by the mean squared difference between
    two different images of the grid, :math:`\frac{2 n^2}{n^2 - 1}\sum_{\text{pixels}} \operatorname{Var}`.
    Near 0: the decoded images change slowly across the latent space; 1: neighbours are no more alike
    than two images picked at random.
    """
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 4 or grid.shape[0] != grid.shape[1] or grid.shape[0] < 2:
        raise ValueError(f"grid must have shape (n, n, H, W) with n >= 2, got {grid.shape}")
    if not np.isfinite(grid).all():
        raise ValueError("grid holds NaN or infinite values")
    images = grid.reshape(-1, grid.shape[2] * grid.shape[3])
    count = len(images)
    any_pair = 2 * count / (count - 1) * images.var(axis=0).sum()
    if any_pair == 0:
        raise ValueError("all images of the grid are the same: their similarity is undefined")
    steps = [np.diff(grid, axis=0), np.diff(grid, axis=1)]
    neighbours = np.mean(np.concatenate([np.sum(d**2, axis=(2, 3)).ravel() for d in steps]))
    return float(neighbours / any_pair)


def latent_manifold(
    model: Any,
    n: int = 20,
    quantile_range: tuple[float, float] = (0.05, 0.95),
    limits: tuple[float, float] | None = None,
) -> Figure:
    """The learned 2-D manifold (the paper's Fig. 4): :func:`manifold_grid` drawn by :func:`manifold_figure`."""
    return manifold_figure(*manifold_grid(model, n, quantile_range, limits))


def _first_two(mean: np.ndarray) -> tuple[np.ndarray, tuple[str, str]]:
    if mean.shape[1] == 2:
        return mean, ("$\\mathbb{E}[z_1 \\mid x]$", "$\\mathbb{E}[z_2 \\mid x]$")
    centred = mean - mean.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T, (
        "principal component 1 of $\\mathbb{E}[z \\mid x]$",
        "principal component 2 of $\\mathbb{E}[z \\mid x]$",
    )


def latent_scatter(model: Any, x: Any, labels: Any, ax: plt.Axes | None = None) -> Figure:
    """Encoder means :math:`\\mathbb{E}[z \\mid x]` (the codes, for an autoencoder) coloured by label.

    For ``latent_dim > 2`` it shows the top two principal components of the means.
    """
    mean = model.encode(x).mean().numpy()
    labels = np.asarray(labels)
    if labels.shape != (len(mean),):
        raise ValueError(f"labels must have shape ({len(mean)},), got {labels.shape}")
    points, (xlabel, ylabel) = _first_two(mean)
    fig = ax.figure if ax is not None else plt.figure(figsize=(6, 5))
    ax = ax if ax is not None else fig.add_subplot()
    sc = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=4, alpha=0.7)
    fig.colorbar(sc, ax=ax, label="label")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig


def interpolation_figure(model: Any, x_a: Any, x_b: Any, steps: int = 10) -> Figure:
    """Decode evenly spaced points on the line between the encoder means of ``x_a`` and ``x_b``."""
    steps = check_positive_int(steps, "steps")
    if steps < 2:
        raise ValueError("steps must be at least 2")
    mu = model.encode(np.stack([np.asarray(x_a), np.asarray(x_b)]).astype(np.float32)).mean().numpy()
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    images = _images(model.decode((1 - t) * mu[0] + t * mu[1]).mean().numpy())
    return _stacked_rows([images], ["decoded"], None)


def training_curves(
    history: Mapping[str, Sequence[float]] | Any,
    metrics: Sequence[str] = ("elbo",),
    xlabel: str = "epoch",
    ylabel: str = "nats per example",
) -> Figure:
    """Train (and validation, ``val_``-prefixed) curves of ``metrics`` from a Keras History or a dict."""
    history = getattr(history, "history", history)
    missing = [m for m in metrics if m not in history]
    if missing:
        raise ValueError(f"history has no {', '.join(missing)}; it has {', '.join(history)}")
    fig, ax = plt.subplots(figsize=(6, 4))
    for metric in metrics:
        epochs = np.arange(1, len(history[metric]) + 1)
        ax.plot(epochs, history[metric], label=f"train {metric}")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], label=f"test {metric}", linestyle="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    return fig


def _columns(rows: Any, names: Sequence[str], optional: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Columns ``names`` (and those of ``optional`` it has) of a table: a list of dicts, a dict of lists or a frame."""
    wanted = (*names, *optional)
    if isinstance(rows, Mapping):
        table = {n: np.asarray(rows[n]) for n in wanted if n in rows}
    else:
        rows = list(rows)
        table = {n: np.asarray([r[n] for r in rows]) for n in wanted if rows and n in rows[0]}
    missing = [n for n in names if n not in table]
    if missing:
        raise ValueError(f"the table has no column {', '.join(missing)}")
    if not len(table[names[0]]):
        raise ValueError("the table is empty")
    return table


METHOD_NAMES = {"aevb": "AEVB", "wake_sleep": "wake-sleep", "mcem": "MCEM"}  # as the legends name them
METHOD_COLOURS = {"aevb": "C0", "wake_sleep": "C3", "mcem": "C2"}


def _curves_by_method(
    rows: Any, panel: str, title: str, train: str, test: str, ylabel: str, methods: Sequence[str]
) -> Figure:
    """One log-x panel per value of column ``panel``, a colour per method (train solid, test dashed)."""
    t = _columns(rows, (panel, "samples", train, test), optional=("method",))
    given = t["method"].astype(str) if "method" in t else np.full(len(t[panel]), "aevb")
    unknown = sorted(set(given.tolist()) - set(methods))
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; expected {', '.join(methods)}")
    values = sorted(set(t[panel].astype(int).tolist()))
    fig, axes = plt.subplots(1, len(values), figsize=(3.2 * len(values), 3.4), sharey=True, squeeze=False)
    for ax, value in zip(axes[0], values):
        for method in methods:
            keep = (t[panel].astype(int) == value) & (given == method)
            if not keep.any():
                continue
            order = np.argsort(t["samples"][keep])
            samples = t["samples"][keep][order].astype(float)
            name, colour = METHOD_NAMES[method], METHOD_COLOURS[method]
            ax.plot(samples, t[train][keep][order].astype(float), label=f"{name}, train", color=colour)
            ax.plot(samples, t[test][keep][order].astype(float), label=f"{name}, test", color=colour, linestyle="--")
        ax.set_xscale("log")
        ax.set_title(title.format(value))
        ax.set_xlabel("training samples evaluated")
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][0].legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig


def aevb_fig2_figure(rows: Any) -> Figure:
    """AEVB Figure 2: train and test lower bound per datapoint against training samples, a panel per :math:`N_z`.

    ``rows`` has columns ``n_z``, ``samples``, ``train_bound``, ``test_bound`` and, optionally, ``method``
    (``aevb`` or ``wake_sleep``, as ``results/aevb_fig2.csv``): one colour per method, train solid, test
    dashed. Without ``method`` every row is AEVB's.
    """
    return _curves_by_method(
        rows, "n_z", "MNIST, $N_z = {}$", "train_bound", "test_bound", "lower bound per datapoint (nats)",
        ("aevb", "wake_sleep"),
    )  # fmt: skip


def aevb_fig3_figure(rows: Any) -> Figure:
    r"""AEVB Figure 3: estimated marginal log-likelihood against training samples, a panel per :math:`N_{\text{train}}`.

    ``rows`` has columns ``method`` (``aevb``, ``wake_sleep`` or ``mcem``), ``n_train``, ``samples``,
    ``train_marginal_ll`` and ``test_marginal_ll`` (as ``results/aevb_fig3.csv``), the estimates in nats per
    datapoint: one colour per method, train solid, test dashed.
    """
    return _curves_by_method(
        rows, "n_train", "MNIST, $N_{{\\mathrm{{train}}}} = {:,}$", "train_marginal_ll", "test_marginal_ll",
        "marginal log-likelihood (nats)", ("aevb", "wake_sleep", "mcem"),
    )  # fmt: skip


def bound_vs_k_figure(
    rows: Any,
    published: Mapping[str, float] | None = None,
    labels: Mapping[str, str] | None = None,
    published_label: str = "Burda et al. (2016)",
) -> Figure:
    r"""The importance-weighted bound :math:`\mathcal{L}^{\mathrm{IW}}_k` against :math:`k`, one line per objective.

    ``rows`` has columns ``objective``, ``k``, ``test_log_likelihood`` (as ``results/reference.csv``);
    ``published`` maps an objective to a published :math:`k = 5000` figure, drawn as a marker at 5000.
    ``labels`` maps an objective to its legend entry (say, with its training budget), and
    ``published_label`` follows the objective's name in the published markers' entries (say, with theirs).
    """
    labels = dict(labels or {})
    t = _columns(rows, ("objective", "k", "test_log_likelihood"))
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, objective in enumerate(dict.fromkeys(t["objective"].tolist())):
        keep = t["objective"] == objective
        order = np.argsort(t["k"][keep].astype(float))
        ax.plot(
            t["k"][keep][order].astype(float),
            t["test_log_likelihood"][keep][order].astype(float),
            "o-",
            color=f"C{i}",
            label=labels.get(objective, f"trained with {objective}"),
        )
        if published and objective in published:
            ax.plot(
                [5000],
                [published[objective]],
                marker="*",
                markersize=12,
                color=f"C{i}",
                linestyle="none",
                label=f"{objective}, {published_label}",
            )
    ax.set_xscale("log")
    ax.set_xlabel("importance samples $k$")
    ax.set_ylabel(r"$\mathcal{L}^{\mathrm{IW}}_k$, test set (nats per image)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def equal_budget_figure(rows: Any, k: int, labels: Mapping[str, str] | None = None) -> Figure:
    r"""Objectives compared along their runs: :math:`\mathcal{L}^{\mathrm{IW}}_k` against passes and against time.

    ``rows`` has columns ``objective``, ``epoch``, ``train_seconds``, ``k``, ``test_log_likelihood`` and
    ``stderr`` (as ``results/equal_budget_snapshots.csv``); the rows of ``k`` are drawn, a line per
    objective with error bars of two standard errors, in two panels: against passes through the training
    set (equal passes are read off vertically) and against training minutes (equal time). ``labels`` maps
    an objective to its legend entry.
    """
    k = check_positive_int(k, "k")
    labels = dict(labels or {})
    t = _columns(rows, ("objective", "epoch", "train_seconds", "k", "test_log_likelihood", "stderr"))
    at_k = t["k"].astype(int) == k
    if not at_k.any():
        raise ValueError(f"the table has no rows with k = {k}; it has k = {sorted(set(t['k'].astype(int).tolist()))}")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for i, objective in enumerate(dict.fromkeys(t["objective"][at_k].tolist())):
        keep = at_k & (t["objective"] == objective)
        order = np.argsort(t["epoch"][keep].astype(float))
        value = t["test_log_likelihood"][keep][order].astype(float)
        error = 2 * t["stderr"][keep][order].astype(float)
        passes, minutes = t["epoch"][keep][order].astype(float), t["train_seconds"][keep][order].astype(float) / 60
        for ax, x in zip(axes, (passes, minutes)):
            ax.errorbar(x, value, yerr=error, fmt="o-", capsize=3, color=f"C{i}",
                        label=labels.get(objective, f"trained with {objective}"))  # fmt: skip
    for ax, xlabel in zip(axes, ("passes through the training set", "training time (minutes)")):
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel(rf"$\mathcal{{L}}^{{\mathrm{{IW}}}}_{{{k}}}$, test images (nats per image)")
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    return fig


def rate_distortion_figure(rows: Any) -> Figure:
    r"""Distortion :math:`-\mathbb{E}_q[\log p(x|z)]` against rate :math:`\mathrm{KL}(q(z|x)\|p(z))`, a point per β.

    ``rows`` has columns ``beta``, ``rate``, ``distortion`` (as ``results/beta_sweep.csv``). Dotted lines
    are the points with equal :math:`\mathcal{L}_B = -(\text{rate} + \text{distortion})`.
    """
    t = _columns(rows, ("beta", "rate", "distortion"))
    rate, distortion = t["rate"].astype(float), t["distortion"].astype(float)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(rate, distortion, "o-", color="C0")
    for b, r, d in zip(t["beta"], rate, distortion):
        ax.annotate(rf"$\beta = {float(b):g}$", (r, d), textcoords="offset points", xytext=(6, 4))
    best = float(np.min(rate + distortion))
    span = np.linspace(0, float(rate.max()) * 1.1, 50)
    for offset in (0, 10, 20):
        ax.plot(span, best + offset - span, ":", color="grey", linewidth=0.8)
    ax.set_xlim(0, float(rate.max()) * 1.1)
    ax.set_ylim(float(distortion.min()) - 5, float(distortion.max()) + 5)
    ax.set_xlabel("rate: KL$(q(z|x) \\| p(z))$ (nats)")
    ax.set_ylabel(r"distortion: $-\mathbb{E}_q[\log p(x|z)]$ (nats)")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig
