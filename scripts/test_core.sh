#!/usr/bin/env bash
# The library alone on the newest TensorFlow: a core-only install (no RL stack)
# in .venv-core, then the tests of the library, the tfmot round trip, .keras/.h5/SavedModel round trips, the Keras
# examples, the core install's refusal of RL commands, and dsp_tf on Keras 3 (what TensorFlow 2.21 installs; the
# TensorFlow backend; the JAX test runs only where jax is installed and is skipped in one line otherwise).
# tf-keras depends on plain `tensorflow`, so that is the one TensorFlow here too.
DSP_VENV=.venv-core DSP_EXTRAS=test,examples DSP_PIP_UPGRADE=1 source "$(dirname "$0")/venv.sh"
python -c "from dsp_tf import tf; import keras, tf_keras, numpy, tensorflow_model_optimization as t; \
print(f'core install: tensorflow {tf.__version__}, keras {keras.__version__}, tf-keras {tf_keras.__version__}, \
numpy {numpy.__version__}, tfmot {t.__version__}')"
exec python -m pytest -q -p no:cacheprovider -n auto --dist loadfile tests/test_schedule.py tests/test_importance_regularizer.py \
  tests/test_masks_pruner.py tests/test_ranking.py tests/test_callback.py tests/test_quiet.py tests/test_layering.py \
  tests/test_example.py tests/test_example_trained.py tests/test_keras_saving.py tests/test_core_install.py tests/test_readme_snippets.py \
  tests/test_keras3.py tests/test_example_keras3.py "$@"
