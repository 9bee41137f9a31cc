"""Every method trains end to end, and the weight-level compaction is exact."""
import numpy as np
import pytest

import dsp_tf
from agents.config import RunConfig
from agents.inference import load_actor
from agents.training import train
from dsp_tf import keras
from dsp_tf.weight_pruning import MagnitudePruner
from helpers import mlp

METHODS = ["ppo", "small", "dsp", "ssl", "sgs", "dropout", "l1", "pops"]
TINY_ENVS = {
    "CartPole-v1": dict(num_envs=4, rollout_steps=128, num_env_steps=3072, prune_begin=512, prune_end=2048,
                        prune_frequency=512, minibatch_size=128, reg_strength=1e-4),
    "Hopper-v4": dict(num_envs=1, rollout_steps=512, num_env_steps=2048, prune_begin=512, prune_end=1536,
                      prune_frequency=512, minibatch_size=64, num_epochs=2, min_neurons_per_layer=2,
                      reg_strength=1e-5),
}


@pytest.mark.parametrize("env", list(TINY_ENVS))
@pytest.mark.parametrize("method", METHODS)
def test_method_trains_end_to_end(tmp_path, env, method):
    layers = [8, 8] if method == "small" else [32, 32]
    cfg = RunConfig(env=env, method=method, seed=1, root_dir=str(tmp_path / "run"), actor_layers=layers,
                    critic_layers=[32, 32], eval_episodes=1, checkpoint_interval=100_000,
                    final_sparsity=0.9, **TINY_ENVS[env])
    summary = train(cfg)
    dense, compact = summary["dense"], summary["compact"]
    if method in ("ppo", "small"):
        assert compact == dense
    elif method == "sgs":
        # 90% of input features go (at least one stays); hidden neurons are untouched.
        assert compact["neurons"] == dense["neurons"] and compact["weights"] < dense["weights"]
    elif method in ("l1", "pops"):
        # 90% of weights pruned per layer; only neurons left without weights disappear.
        assert compact["weights"] <= 0.11 * dense["weights"] + 1
    else:
        assert compact["neurons"] <= 0.1 * dense["neurons"] + 1
    # The compact actor computes exactly what the full-size pruned actor computes.
    small, _ = load_actor(cfg.root_dir, "compact")
    full, _ = load_actor(cfg.root_dir, "dense")
    x = np.random.default_rng(0).normal(size=(64, full.inputs[0].shape[-1])).astype(np.float32)
    np.testing.assert_allclose(small.predict(x, verbose=0), full.predict(x, verbose=0), atol=1e-5)


def test_magnitude_pruner_prunes_each_layer_by_magnitude_and_compacts_exactly():
    model = mlp(sizes=(6, 24, 24, 3), activation="tanh")
    before = [l.kernel.numpy().copy() for l in model.layers]
    pruner = MagnitudePruner(model, dsp_tf.DynamicPruningSchedule(0.0, 0.9, 0, 10, 5),
                             dsp_tf.WeightL1Regularizer(1e-3))
    assert not pruner.update_masks(3)
    assert pruner.update_masks(10)
    for k0, dense in zip(before, pruner.dense_equivalent().layers):
        k = dense.kernel.numpy()
        kept = k != 0
        assert kept.mean() == pytest.approx(0.1, abs=0.02)
        # the survivors are the largest-magnitude weights of the layer
        assert np.abs(k0[kept]).min() >= np.abs(k0[~kept]).max()
    np.testing.assert_allclose(pruner.regularization().numpy(),
                               1e-3 * sum(np.abs(l.kernel.numpy()).sum() for l in pruner.dense_layers), rtol=1e-5)
    x = np.random.default_rng(1).normal(size=(128, 6)).astype(np.float32)
    compact = pruner.compact()
    np.testing.assert_allclose(compact(x).numpy(), pruner.model(x, training=False).numpy(), atol=1e-5)


def test_compact_unstructured_folds_neurons_without_inputs_into_the_next_bias():
    keras.utils.set_random_seed(0)
    model = mlp(sizes=(3, 4, 2), activation="tanh", bias_scale=1.0)
    k = model.layers[0].get_weights()
    k[0][:, 1] = 0.0  # neuron 1 has no inputs: it outputs tanh(b_1) whatever the observation
    model.layers[0].set_weights(k)
    compact = dsp_tf.compact.compact_unstructured(model)
    assert compact.layers[0].units == 3
    b1 = k[1][1]
    expected_bias = model.layers[1].bias.numpy() + np.tanh(b1) * model.layers[1].kernel.numpy()[1]
    np.testing.assert_allclose(compact.layers[1].bias.numpy(), expected_bias, rtol=1e-6)
    x = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    np.testing.assert_allclose(compact(x).numpy(), model(x).numpy(), atol=1e-6)
