"""Training under tf.distribute.MirroredStrategy over two CPU devices matches one device.

TensorFlow fixes its devices at start-up, so each configuration runs in a fresh interpreter.
"""

import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
devices = int(sys.argv[1])
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import vaelib

keras.utils.set_random_seed(0)
pattern = np.linspace(0.02, 0.98, 28 * 28, dtype="float32").reshape(1, 28, 28)
x = vaelib.fixed_binarize(np.repeat(pattern, 400, axis=0))  # a learnable pixel-probability pattern
strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(devices)])
with strategy.scope():
    model = vaelib.VAE.mlp(latent_dim=2, hidden_units=(32,))
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(0, 0.05, w.shape).astype("float32") for w in model.get_weights()])
    # many samples of z per point so the Monte Carlo noise is far below the tolerance
    model.compile(optimizer=keras.optimizers.SGD(0.003), objective=vaelib.ELBO(num_samples=200))
history = model.fit(x, batch_size=100, epochs=3, shuffle=False, verbose=0).history
evaluation = model.evaluate(x, batch_size=100, verbose=0, return_dict=True)
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "history": history, "evaluation": evaluation}))
"""


def run(devices):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(devices)], capture_output=True, text=True, env=env,
                         timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_devices_give_the_same_loss_as_one():
    one, two = run(1), run(2)
    assert one["replicas"] == 1 and two["replicas"] == 2
    # Same weights, data and SGD steps: only the draws of z differ between the two runs. With L = 200
    # their effect on the per-example loss is ~1e-3 nat, so 0.1 nat is a generous tolerance, while
    # gradients summed instead of averaged over the replicas move the losses by 0.3 to 3 nats.
    for key in ("loss", "elbo", "kl", "reconstruction"):
        for a, b in zip(one["history"][key], two["history"][key]):
            assert a == pytest.approx(b, abs=0.1), (key, one["history"], two["history"])
        assert one["evaluation"][key] == pytest.approx(two["evaluation"][key], abs=0.1)
    assert one["history"]["loss"][-1] < one["history"]["loss"][0] - 1.0  # it did train
