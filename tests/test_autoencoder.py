"""The deterministic autoencoder of chapter 1, and the notebook helper."""

import keras
import numpy as np
import pytest

import vaelib


def test_autoencoder_encodes_each_input_to_one_point(binary_batch):
    model = vaelib.Autoencoder.mlp(latent_dim=2, hidden_units=(16,))
    q = model.encode(binary_batch)
    assert q.batch_shape == (16,) and q.event_shape == (2,)
    np.testing.assert_array_equal(q.sample(seed=1).numpy(), q.sample(seed=2).numpy())  # no noise
    np.testing.assert_array_equal(q.mean().numpy(), model.encoder(binary_batch).numpy())
    with pytest.raises(TypeError, match="no encoder variance"):
        model.encoder_outputs(binary_batch)


def test_autoencoder_training_lowers_the_reconstruction_loss(mnist, tmp_path):
    (x_train, _), _ = mnist
    x = vaelib.fixed_binarize(x_train[:2000])
    model = vaelib.Autoencoder.mlp(latent_dim=2, hidden_units=(64,))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    before = model.evaluate(x, verbose=0, return_dict=True)
    history = model.fit(x, batch_size=100, epochs=3, verbose=0).history
    after = model.evaluate(x, verbose=0, return_dict=True)
    assert set(history) == {"loss", "reconstruction"}
    # from ~543 nats (logits near 0) to well under 300 after 60 steps; noise here is far below 50 nats
    assert after["loss"] < before["loss"] - 200
    assert after["loss"] == pytest.approx(-after["reconstruction"], rel=1e-5)
    model.save(tmp_path / "ae.keras")
    loaded = keras.models.load_model(tmp_path / "ae.keras")
    np.testing.assert_allclose(loaded.reconstruct(x[:5]), model.reconstruct(x[:5]), atol=1e-6)


@pytest.mark.parametrize("objective", ["elbo", vaelib.IWAE(5), vaelib.ELBO(beta=2.0)])
def test_autoencoder_refuses_the_objectives_of_the_bound(objective):
    model = vaelib.Autoencoder.mlp(latent_dim=2, hidden_units=(16,))
    with pytest.raises(TypeError, match="takes no objective"):
        model.compile(optimizer="adam", objective=objective)


def test_glue_prints_outside_a_book_build(capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_myst_nb(name, *args, **kwargs):
        if name == "myst_nb":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_myst_nb)
    vaelib.glue("answer", np.float64(42.5))
    assert capsys.readouterr().out == "answer = 42.5\n"  # a plain number, not np.float64(42.5)
    vaelib.glue("hidden_in_the_book", 3, display=False)  # the prose's role is raw here: show the value
    assert capsys.readouterr().out == "hidden_in_the_book = 3\n"


def test_full_build_text_formats_the_value_and_quotes_a_dash_in_quick_mode(monkeypatch):
    monkeypatch.setenv("VAELIB_QUICK", "0")
    monkeypatch.delenv("CI", raising=False)
    assert vaelib.full_build_text(np.float32(0.0123), ".3f") == "0.012"
    monkeypatch.setenv("VAELIB_QUICK", "1")
    assert vaelib.full_build_text(0.0123, ".3f") == "–"


def test_show_source_is_the_code_that_runs():
    shown = vaelib.notebook.show_source(vaelib.VAE.encode, vaelib.elbo_terms).data
    assert shown.startswith("```python\ndef encode(self, x") and shown.endswith("\n```")
    assert "def elbo_terms(" in shown and "reparameterized_sample(q, num_samples" in shown  # the bound's own lines
    with pytest.raises(TypeError, match="at least one"):
        vaelib.notebook.show_source()
    with pytest.raises(TypeError, match="functions, methods or classes"):
        vaelib.notebook.show_source(42)
