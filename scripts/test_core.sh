#!/usr/bin/env bash
# The library alone on the newest TensorFlow: a core-only install (no RL stack)
# in .venv-core, then the tests of the library, the tfmot round trip, the Keras
# example and the core install's refusal of RL commands.
# tf-keras depends on plain `tensorflow`, so that is the one TensorFlow here too.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-core"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.dsp_tf_installed"
HASH="$(sha256sum "$ROOT/setup.py" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$HASH" ]; then
  echo "installing the core of dsp-tf (newest TensorFlow) into .venv-core ..." >&2
  if ! { "$VENV/bin/python" -m pip install --quiet --upgrade pip \
         && "$VENV/bin/python" -m pip install --quiet --upgrade --upgrade-strategy eager -e "$ROOT[test,examples]"; } \
       > "$VENV/install.log" 2>&1; then
    cat "$VENV/install.log" >&2
    echo "install failed; the log above is in $VENV/install.log" >&2
    exit 1
  fi
  echo "$HASH" > "$STAMP"
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"
cd "$ROOT"
"$VENV/bin/python" -c "from dsp_tf import tf; import tf_keras, numpy, tensorflow_model_optimization as t; \
print(f'core install: tensorflow {tf.__version__}, tf-keras {tf_keras.__version__}, numpy {numpy.__version__}, tfmot {t.__version__}')"
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/test_schedule.py tests/test_importance_regularizer.py \
  tests/test_masks_pruner.py tests/test_ranking.py tests/test_callback.py tests/test_quiet.py tests/test_layering.py \
  tests/test_example.py tests/test_core_install.py "$@"
