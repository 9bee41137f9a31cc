"""The NumPy acting path computes what the TensorFlow networks compute (≤ 1e-5)."""
import numpy as np
import pytest
from tf_agents.trajectories import time_step as ts

import dsp_tf
from agents.config import RunConfig
from agents.training import build_learner
from dsp_tf import keras, tf
from dsp_tf.numpy_forward import NumpyChain
from helpers import mlp


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "elu", "softplus", "swish", "linear"])
def test_numpy_chain_equals_keras_for_a_masked_chain(activation):
    model = mlp(sizes=(7, 16, 12, 3), activation=activation)
    pruner = dsp_tf.StructuredPruner(model, dsp_tf.DynamicPruningSchedule(0.0, 0.5, 0, 10, 5))
    mirror = NumpyChain(pruner.model)
    pruner.update_masks(10)  # the mirror must see masks set after it was built
    mirror.refresh()
    x = np.random.default_rng(0).normal(size=(32, 7)).astype(np.float32)
    np.testing.assert_allclose(mirror(x), pruner.model(x, training=False).numpy(), atol=1e-5)


def test_numpy_chain_mirrors_elementwise_layers_and_refuses_others():
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8), keras.layers.LeakyReLU(0.2),
                              keras.layers.Dropout(0.5), keras.layers.Dense(6), keras.layers.ELU(0.7),
                              keras.layers.Dense(2), keras.layers.Activation("tanh")])
    x = np.random.default_rng(1).normal(size=(16, 5)).astype(np.float32)
    np.testing.assert_allclose(NumpyChain(model)(x), model(x, training=False).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="cannot mirror layer 'bn'"):
        NumpyChain(keras.Sequential([keras.Input((5,)), keras.layers.Dense(4),
                                     keras.layers.BatchNormalization(name="bn")]))
    with pytest.raises(ValueError, match="activation 'softmax' of layer 'soft'"):
        NumpyChain(keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="softmax", name="soft")]))


def _tf_policy_outputs(learner, observation):
    n = observation.shape[0]
    step = ts.TimeStep(tf.fill([n], ts.StepType.MID), tf.zeros([n]), tf.ones([n]), tf.constant(observation))
    out = learner.agent.collect_policy.distribution(step)
    return tf.nest.map_structure(lambda t: t.numpy(), out.info)


@pytest.mark.parametrize("env, method", [("Hopper-v4", "dsp"), ("CartPole-v1", "dsp"), ("Hopper-v4", "pops"),
                                         ("CartPole-v1", "sgs")])
def test_numpy_collect_policy_matches_the_tf_agents_policy(tmp_path, env, method):
    cfg = RunConfig(env=env, method=method, seed=3, root_dir=str(tmp_path), actor_layers=[32, 24],
                    critic_layers=[16, 16], prune_begin=0, prune_end=100, prune_frequency=10)
    learner = build_learner(cfg)
    rng = np.random.default_rng(0)
    obs_dim = learner.envs[0].observation_spec().shape[0]
    # Give the normaliser, the weights, the log-std and the masks non-trivial values.
    learner.agent.update_observation_normalizer(tf.constant(rng.normal(2.0, 3.0, size=(1, 50, obs_dim)), tf.float32))
    for v in learner.agent._actor_net.trainable_variables + learner.agent._value_net.trainable_variables:  # noqa: SLF001
        v.assign(v + tf.constant(rng.normal(scale=0.3, size=v.shape), v.dtype))
    learner.pruner.update_masks(60, force=True)
    policy = learner.collect_policy
    policy.refresh()
    observation = rng.normal(2.0, 6.0, size=(8, obs_dim)).astype(np.float32)
    expected = _tf_policy_outputs(learner, observation)
    params, value = policy.distribution(observation)
    assert set(params) == set(expected["dist_params"])
    for key in params:
        np.testing.assert_allclose(params[key], expected["dist_params"][key], atol=1e-5)
    np.testing.assert_allclose(value, expected["value_prediction"], atol=1e-5)
    action, info = policy.sample(observation, np.random.default_rng(1))
    assert action.shape == (8,) + tuple(learner.envs[0].action_spec().shape)
    assert action.dtype == learner.envs[0].action_spec().dtype


def test_numpy_sampling_follows_the_policy_distribution(tmp_path):
    cfg = RunConfig(env="CartPole-v1", method="ppo", seed=0, root_dir=str(tmp_path), actor_layers=[8],
                    critic_layers=[8])
    learner = build_learner(cfg)
    policy = learner.collect_policy
    out = learner.mlp.layers[-1]
    out.kernel.assign(tf.zeros_like(out.kernel))
    out.bias.assign([0.0, np.log(3.0)])  # P(action 1) = 3/4 whatever the observation
    policy.refresh()
    obs = np.zeros((4000, 4), np.float32)
    action, _ = policy.sample(obs, np.random.default_rng(0))
    assert action.mean() == pytest.approx(0.75, abs=0.03)


def test_numpy_chain_folds_only_masks_right_in_front_of_a_dense_layer():
    from dsp_tf.chain import NeuronMask

    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8), NeuronMask(8, name="m0"),
                              keras.layers.Activation("sigmoid"), keras.layers.Dense(6, activation="tanh"),
                              NeuronMask(6, name="m1"), NeuronMask(6, name="m2"), keras.layers.Dense(3),
                              NeuronMask(3, name="m3"), keras.layers.Activation("softplus")])
    rng = np.random.default_rng(2)
    for layer in model.layers:
        if isinstance(layer, NeuronMask):
            layer.mask.assign((rng.random(layer.units) < 0.6).astype(np.float32))
    x = rng.normal(size=(16, 5)).astype(np.float32)
    np.testing.assert_allclose(NumpyChain(model)(x), model(x, training=False).numpy(), atol=1e-5)
