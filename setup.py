"""DSP-TF: dynamic structured pruning of deep-RL policies for embedded deployment.

Two installs. The core (`pip install dsp-tf`: the library dsp_tf, any Keras 2
model) runs on TensorFlow 2.15 to 2.21 with tf-keras and tfmot >= 0.8, numpy 1
or 2. The `rl` extra adds the agent layer and pins the set pip resolves together
on Python 3.11: tf-agents 0.19 (its last release) needs tensorflow-probability
0.23, hence TensorFlow 2.15, tf-keras 2.15 and numpy < 2. One TensorFlow
distribution: plain `tensorflow` (CPU-only on machines without CUDA), because
tf-keras and tflite-micro depend on it and a second one (`tensorflow-cpu`)
would write the same `tensorflow/` folder. gym-notices 0.0.8: tf-agents imports gym 0.23, whose
newer notice package prints an "unmaintained" banner on every start-up that a
user cannot act on (our environments are gymnasium's).
"""
from setuptools import find_packages, setup

CORE = [
    "tensorflow>=2.15.1,<2.22",
    "tf-keras>=2.15,<2.22",  # tf-keras X.Y goes with TensorFlow X.Y; pip matches them
    "tensorflow-model-optimization>=0.8.0,<0.9",
    "numpy>=1.23",
    "absl-py>=1.0",
]
EXTRAS = {
    "rl": [
        "tensorflow==2.15.1",
        "tf-keras~=2.15.0",
        "tensorflow-model-optimization==0.8.0",
        "numpy>=1.23,<2",
        "tf-agents==0.19.0",
        "tensorflow-probability==0.23.0",
        "gymnasium[mujoco,box2d]==1.3.0",
        "gym-notices==0.0.8",
    ],
    # highway-env's driving tasks. It needs pygame-ce, which installs into the same `pygame`
    # folder as tf-agents' pygame 2.1.3 pin; only pygame-ce's build has the "offscreen" video
    # driver highway-env renders with, so scripts/venv.sh re-lays pygame-ce's files last.
    # highway-env needs pandas; pandas 3 does not install beside the rl extra's numpy < 2.
    "driving": ["highway-env==1.12.1", "pygame-ce==2.5.8", "pandas<3"],
    # LiteRT's interpreter for the host-side checks (tf.lite.Interpreter is deprecated since TF 2.19).
    "export": ["tflite-micro==0.dev20261023182759", "ai-edge-litert==2.3.0"],
    # pandas < 3: rliable's bootstrap comes from arch, which fails to import under pandas 3.
    "report": ["matplotlib>=3.7", "rliable==1.2.0", "pandas<3"],
    "examples": ["scikit-learn>=1.3"],
    # pytest-xdist: scripts/test.sh runs the suite on every core (one test file per worker).
    "test": ["pytest>=7", "hypothesis>=6", "pytest-xdist>=3.5"],
    # Not in "all": Stable-Baselines3 and torch, only for benchmarks/throughput.py's side-by-side run.
    "bench": ["stable-baselines3>=2.3,<3"],
    "ray": ["ray>=2.9,<3"],
}
EXTRAS["all"] = sorted({r for k in ("rl", "driving", "export", "report", "examples", "test", "ray") for r in EXTRAS[k]})

setup(
    name="dsp-tf",
    version="0.1.0",
    description="Dynamic structured pruning (DSP) for deep-RL policies on TensorFlow/Keras, "
                "with TFLite / TFLite Micro export",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9,<3.12",
    packages=find_packages(include=["dsp_tf", "dsp_tf.*", "agents", "agents.*", "dsp_cli", "dsp_cli.*",
                                    "tflite_export", "tflite_export.*", "study", "study.*"]),
    install_requires=CORE,
    extras_require=EXTRAS,
    # The commands by name, beside their `python -m dsp_tf.X` forms (which stay the documented ones).
    entry_points={"console_scripts": [
        "dsp-train=dsp_tf.train:main", "dsp-shrink=dsp_tf.shrink:main", "dsp-evaluate=dsp_tf.evaluate:main",
        "dsp-export=tflite_export.__main__:main", "dsp-sweep=dsp_tf.sweep:main", "dsp-report=dsp_tf.report:main",
        "dsp-archive=dsp_tf.archive:main"]},
    license="Apache-2.0",
)
