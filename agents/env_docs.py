"""What each observation feature and each action of an environment means, for people reading exported code.

An exported policy is a function of numbers; a firmware engineer wiring it to sensors and motors needs
to know which number is the pole angle and in which unit, and whether output 1 pushes left or right.
The exporter (tflite_export) has no environments, so the meanings live here, on the agent floor, and
``dsp_cli.export`` hands them down as plain strings. The texts follow each environment's own
documentation (gymnasium's CartPole, LunarLander and MuJoCo pages; highway-env's Kinematics
observation and DiscreteMetaAction with their default configuration). An environment not listed, or
an actor whose sizes do not match the entry, gets ``feature i`` / ``output i``: a wrong name is worse
than none.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple


@dataclass(frozen=True)
class Feature:
    name: str
    unit: str


@dataclass(frozen=True)
class EnvInterface:
    """Observation features in order, and what each action (discrete) or action component means."""

    observations: Tuple[Feature, ...]
    actions: Tuple[str, ...]


def _mujoco_observations(joints: Tuple[str, ...], torso: str) -> Tuple[Feature, ...]:
    """gymnasium's MuJoCo locomotion layout (x position excluded): qpos then qvel."""
    positions = [Feature(f"z-coordinate (height) of the {torso}", "m"), Feature(f"angle of the {torso}", "rad")]
    positions += [Feature(f"angle of the {j}", "rad") for j in joints]
    velocities = [Feature(f"x-velocity of the {torso}", "m/s"), Feature(f"z-velocity of the {torso}", "m/s"),
                  Feature(f"angular velocity of the {torso}", "rad/s")]
    velocities += [Feature(f"angular velocity of the {j}", "rad/s") for j in joints]
    return tuple(positions + velocities)


def _torques(joints: Tuple[str, ...]) -> Tuple[str, ...]:
    return tuple(f"torque on the {j} (the control; MuJoCo scales it by the joint's gear)" for j in joints)


_HOPPER_JOINTS = ("thigh joint", "leg joint", "foot joint")
_WALKER_JOINTS = _HOPPER_JOINTS + ("left thigh joint", "left leg joint", "left foot joint")


def _kinematics(lateral_m: int, vehicles: int = 5) -> Tuple[Feature, ...]:
    """highway-env's Kinematics observation (presence, x, y, vx, vy per vehicle, normalised and clipped
    to [-1, 1]); row 0 is the ego vehicle, the others are relative to it, nearest first. y's scale is
    the road's width (4 m a lane), so it differs per task: ``lateral_m``."""
    rows = []
    for k in range(vehicles):
        who = "ego vehicle" if k == 0 else f"vehicle {k} (relative to ego)"
        rows += [Feature(f"{who} presence", "1 = present, 0 = empty row"),
                 Feature(f"{who} x (longitudinal)", "1 = 200 m"), Feature(f"{who} y (lateral)", f"1 = {lateral_m} m"),
                 Feature(f"{who} vx", "1 = 80 m/s"), Feature(f"{who} vy", "1 = 80 m/s")]
    return tuple(rows)


_META_ACTIONS = ("change lane left", "keep lane and speed (idle)", "change lane right", "faster", "slower")

#: gym id → its interface. Walker2d and Hopper from gymnasium's MuJoCo docs (v4 and v5 share the layout).
INTERFACES: Dict[str, EnvInterface] = {
    "CartPole-v1": EnvInterface(
        (Feature("cart position", "m"), Feature("cart velocity", "m/s"), Feature("pole angle", "rad"),
         Feature("pole angular velocity", "rad/s")),
        ("push the cart to the left", "push the cart to the right")),
    "LunarLander-v3": EnvInterface(
        (Feature("x position relative to the pad", "1 = 10 world units"),
         Feature("y position above the pad", "1 = 6.67 world units"),
         Feature("x velocity", "1 = 5 world units/s"), Feature("y velocity", "1 = 7.5 world units/s"),
         Feature("angle", "rad"), Feature("angular velocity", "1 = 2.5 rad/s"),
         Feature("left leg contact", "1 = touching, 0 = not"), Feature("right leg contact", "1 = touching, 0 = not")),
        ("do nothing", "fire left orientation engine", "fire main engine", "fire right orientation engine")),
    "Hopper-v4": EnvInterface(_mujoco_observations(_HOPPER_JOINTS, "torso"), _torques(_HOPPER_JOINTS)),
    "Walker2d-v4": EnvInterface(_mujoco_observations(_WALKER_JOINTS, "torso"), _torques(_WALKER_JOINTS)),
    "highway-fast-v0": EnvInterface(_kinematics(lateral_m=12), _META_ACTIONS),  # features_range y: [-12, 12]
    "merge-v0": EnvInterface(_kinematics(lateral_m=8), _META_ACTIONS),  # [-8, 8]
}


def interface_names(env_name: str, obs_dim: int, out_dim: int) -> Tuple[List[str], List[str], List[str]]:
    """(input names, input units, output meanings) for an actor of ``obs_dim`` inputs and ``out_dim``
    outputs on ``env_name``; the generic ``feature i`` / ``output i`` (unit "?") where the registry has
    no entry or the sizes differ from it."""
    entry = INTERFACES.get(env_name)
    if entry is not None and len(entry.observations) == obs_dim:
        names, units = [f.name for f in entry.observations], [f.unit for f in entry.observations]
    else:
        names, units = [f"feature {i}" for i in range(obs_dim)], ["?"] * obs_dim
    if entry is not None and len(entry.actions) == out_dim:
        outputs = list(entry.actions)
    else:
        outputs = [f"output {k}" for k in range(out_dim)]
    return names, units, outputs
