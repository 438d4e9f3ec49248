"""Command line: ``python -m vaelib train RUN_DIR ...`` and ``python -m vaelib evaluate RUN_DIR``.

``train`` runs :func:`vaelib.train` on MNIST: it writes ``RUN_DIR/config.json`` (the options, the
model and a fingerprint of the data), checkpoints every epoch, ``history.csv`` and the final
``model.keras``; run the same command again and it resumes from the last checkpoint, exactly as if it had
not stopped. Only ``--epochs``, ``--data-dir`` and ``--verbose`` may change when a run is resumed. The model
is the paper's MLP or the small conv model with the likelihood asked for, or any vaelib model saved as a
``.keras`` file (``--model my_vae.keras``: your own networks, trained with the command's options). The data
are prepared as the likelihood needs them: binarised for a Bernoulli, grey levels otherwise.
``evaluate`` reports the test-set bound and the importance-sampled log-likelihood of any run's model, and
writes ``RUN_DIR/evaluation.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vaelib._files import write_json_atomically

CONFIG_FILE = "config.json"
# options that may change when a run is resumed (the rest must match the run's config.json)
RESUMABLE = ("epochs", "data_dir", "verbose")


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from err
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from err
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _model_option(text: str) -> str:
    if text in ("mlp", "conv") or text.endswith(".keras"):
        return text
    raise argparse.ArgumentTypeError(f"expected 'mlp', 'conv' or a .keras file, got {text!r}")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from err
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show an option's default in its help, unless there is none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None:
            return action.help or ""
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vaelib",
        description="Train and evaluate variational auto-encoders on MNIST (Kingma & Welling 2013).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser(
        "train",
        help="train a VAE on MNIST (resumes if RUN_DIR has a checkpoint)",
        description="Train a VAE on binarised MNIST. Checkpoints every epoch into RUN_DIR; rerunning the same "
        "command resumes from the last checkpoint (raise --epochs to train longer).",
        formatter_class=_HelpFormatter,
    )
    train.add_argument("run_dir", metavar="RUN_DIR", help="folder for config, checkpoints, history and the model")
    train.add_argument(
        "--model",
        type=_model_option,
        default="mlp",
        help="'mlp' or 'conv' (the book's networks), or a .keras file of a vaelib model with your own networks",
    )
    train.add_argument(
        "--likelihood",
        choices=("bernoulli", "continuous_bernoulli", "gaussian"),
        default="bernoulli",
        help="the decoder's likelihood (mlp and conv; a .keras model has its own)",
    )
    train.add_argument("--latent-dim", type=_positive_int, default=20, help="dimension N_z of z")
    train.add_argument(
        "--hidden", type=_int_list, default=[500], help="hidden layer widths, comma-separated (e.g. 200,200)"
    )
    train.add_argument("--activation", default="tanh", help="hidden activation of the MLP")
    train.add_argument("--epochs", type=_positive_int, default=10, help="total epochs (resumed epochs count)")
    train.add_argument("--batch-size", type=_positive_int, default=100, help="minibatch size M")
    train.add_argument(
        "--optimizer",
        choices=("adam", "averaged_adam", "adagrad", "sgd"),
        default="adam",
        help="optimizer; averaged_adam: Adam keeping a moving average of the weights, which the run ends on "
        "(vaelib.AveragedAdam; VAE.compile()'s default, with --learning-rate 3e-3)",
    )
    train.add_argument("--learning-rate", type=_positive_float, default=1e-3, help="step size")
    train.add_argument(
        "--objective", choices=("elbo", "iwae"), default="elbo", help="the bound trained on (iwae: k = --num-samples)"
    )
    train.add_argument("--num-samples", type=_positive_int, default=1, help="samples L (or k) of z per data point")
    train.add_argument("--kl", choices=("analytic", "mc", "stl"), default="analytic", help="the KL term's estimator")
    train.add_argument("--beta", type=float, default=1.0, help="weight of the KL term (1 = the bound)")
    train.add_argument(
        "--binarize",
        choices=("default", "dynamic", "fixed", "none"),
        default="default",
        help="binarisation of the training images (default: dynamic for a Bernoulli likelihood, none otherwise)",
    )
    train.add_argument(
        "--train-size", type=_positive_int, default=None, help="use only the first N training images (default: all)"
    )
    train.add_argument(
        "--test-size", type=_positive_int, default=None, help="use only the first N test images (default: all)"
    )
    train.add_argument("--seed", type=int, default=0, help="random seed")
    train.add_argument(
        "--data-dir", default=None, help="folder with mnist.npz (if not given: $VAELIB_DATA, then the Keras cache)"
    )
    train.add_argument(
        "--verbose", type=int, choices=(0, 1, 2), default=1, help="0 silent, 1 progress bar, 2 a line per epoch"
    )

    evaluate = sub.add_parser(
        "evaluate",
        help="test ELBO and importance-sampled log-likelihood of a trained run",
        description="Evaluate RUN_DIR/model.keras on the MNIST test set, binarised once with a fixed seed: "
        "the bound (ELBO) and the importance-sampled log p(x) with --samples samples per image.",
        formatter_class=_HelpFormatter,
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by 'train'")
    evaluate.add_argument("--samples", type=_positive_int, default=5000, help="importance samples k per image")
    evaluate.add_argument("--batch-size", type=_positive_int, default=100, help="test images per chunk")
    evaluate.add_argument(
        "--test-size", type=_positive_int, default=None, help="use only the first N test images (default: all)"
    )
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the binarisation and of the samples")
    evaluate.add_argument(
        "--data-dir", default=None, help="folder with mnist.npz (if not given: $VAELIB_DATA, then the Keras cache)"
    )
    return parser


def _config_of(args: argparse.Namespace) -> dict[str, Any]:
    """The options that define the run (those that may change on resume left out)."""
    return {k: v for k, v in vars(args).items() if k not in ("command", "run_dir", *RESUMABLE)}


def _optimizer(name: str, learning_rate: float) -> Any:
    import keras

    from vaelib.optimizers import AveragedAdam

    classes = {
        "adam": keras.optimizers.Adam,
        "averaged_adam": AveragedAdam,
        "adagrad": keras.optimizers.Adagrad,
        "sgd": keras.optimizers.SGD,
    }
    return classes[name](learning_rate=learning_rate)


def _model(args: argparse.Namespace) -> Any:
    """The model to train: the book's networks with the likelihood asked for, or a saved vaelib model."""
    import keras

    import vaelib  # registers vaelib's classes for loading

    if args.model == "mlp":
        return vaelib.VAE.mlp(
            latent_dim=args.latent_dim, hidden_units=args.hidden, activation=args.activation, likelihood=args.likelihood
        )
    if args.model == "conv":
        return vaelib.VAE.conv(latent_dim=args.latent_dim, hidden_units=args.hidden, likelihood=args.likelihood)
    path = Path(args.model)
    if not path.is_file():
        raise FileNotFoundError(f"--model {path}: no such file (a .keras file saved with model.save)")
    model = keras.models.load_model(path, compile=False)
    if not isinstance(model, vaelib.VAE):
        raise TypeError(f"--model {path} holds a {type(model).__name__}, not a vaelib.VAE")
    return model


def _test_data(model: Any, x_test: Any, seed: int) -> Any:
    """The test images as the model's likelihood needs them: binarised once (seed ``seed``) for a Bernoulli."""
    from vaelib.data import fixed_binarize

    return fixed_binarize(x_test, seed) if model.likelihood.binarization else x_test


def run_train(args: argparse.Namespace) -> int:
    import keras

    import vaelib
    from vaelib.data import load_mnist, make_dataset
    from vaelib.training import train

    keras.utils.set_random_seed(args.seed)
    (x_train, _), (x_test, _) = load_mnist(args.data_dir)
    x_train, x_test = x_train[: args.train_size], x_test[: args.test_size]
    model = _model(args)
    if args.objective == "iwae":
        if args.kl != "analytic" or args.beta != 1.0:
            raise ValueError("--objective iwae is the importance-weighted bound itself: it takes no --kl or --beta")
        objective = vaelib.IWAE(args.num_samples)
    else:
        objective = vaelib.ELBO(args.num_samples, args.kl, args.beta)
    model.compile(optimizer=_optimizer(args.optimizer, args.learning_rate), objective=objective)
    binarize = None if args.binarize == "none" else args.binarize
    test_ds = make_dataset(_test_data(model, x_test, args.seed), model, args.batch_size, binarize=None, shuffle=False)
    start = time.perf_counter()
    history = train(
        model,
        x_train,
        args.epochs,
        args.run_dir,
        validation_data=test_ds,
        verbose=args.verbose,
        batch_size=args.batch_size,
        binarize=binarize,
        seed=args.seed,
        config={"options": _config_of(args)},
    )
    final = {k: v[-1] for k, v in history.items()}
    print(
        f"trained to epoch {len(history.get('elbo', []))} in {time.perf_counter() - start:.1f} s this session: "
        f"train ELBO {final.get('elbo', float('nan')):.2f}, test ELBO {final.get('val_elbo', float('nan')):.2f} "
        f"nats per example; model saved to {Path(args.run_dir) / 'model.keras'}"
    )
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    model_path = run_dir / "model.keras"
    if not model_path.exists():
        raise FileNotFoundError(f"{model_path} not found: run 'python -m vaelib train {run_dir}' first")

    import keras
    import numpy as np

    import vaelib
    from vaelib.bound import elbo
    from vaelib.data import load_mnist
    from vaelib.evaluation import log_likelihood, mean_and_stderr

    model = keras.models.load_model(model_path)
    if not isinstance(model, vaelib.VAE):
        raise TypeError(f"{model_path} holds a {type(model).__name__}: the bounds need a vaelib.VAE")
    _, (x_test, _) = load_mnist(args.data_dir)
    x = _test_data(model, x_test[: args.test_size], args.seed)
    start = time.perf_counter()
    bound = np.concatenate(
        [elbo(model, x[i : i + args.batch_size], seed=args.seed).numpy() for i in range(0, len(x), args.batch_size)]
    )
    log_px = log_likelihood(model, x, num_samples=args.samples, batch_size=args.batch_size, seed=args.seed)
    result = {
        "test_images": len(x),
        "binarization": f"fixed, seed {args.seed}" if model.likelihood.binarization else "none (grey levels)",
        "likelihood": type(model.likelihood).__name__,
        "test_elbo": float(bound.mean()),
        "test_log_likelihood": float(log_px.mean()),
        "log_likelihood_stderr": mean_and_stderr(log_px)[1] if len(x) > 1 else None,
        "importance_samples": args.samples,
        "seconds": time.perf_counter() - start,
    }
    write_json_atomically(run_dir / "evaluation.json", result)
    print(
        f"test ELBO {result['test_elbo']:.2f} nats, log p(x) ~ {result['test_log_likelihood']:.2f} nats "
        f"(k = {args.samples}, {len(x)} images) -> {run_dir / 'evaluation.json'}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_train(args) if args.command == "train" else run_evaluate(args)
    except (ValueError, TypeError, FileNotFoundError) as err:  # a bad option, model or data: say which
        print(f"error: {err}", file=sys.stderr)
        return 2
