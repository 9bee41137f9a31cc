# Sourced by the other scripts: creates or reuses a venv at the repo root and installs
# the project into it, re-installing only when setup.py or the extras asked for change. By default .venv with
# every extra; scripts/test_core.sh sets DSP_VENV=.venv-core, DSP_EXTRAS (the core's
# test extras) and DSP_PIP_UPGRADE=1 (resolve the newest versions the core allows).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/${DSP_VENV:-.venv}"
EXTRAS="${DSP_EXTRAS:-all}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.dsp_tf_installed"
# What is installed depends on setup.py and on what was asked of it: both are in the stamp.
HASH="$({ cat "$ROOT/setup.py"; echo "extras=$EXTRAS upgrade=${DSP_PIP_UPGRADE:-}"; } | sha256sum | cut -d' ' -f1)"

# pygame-ce (the driving extra) and tf-agents' pygame pin write the same `pygame` folder:
# pygame-ce's files are laid down last, since only its build renders highway-env off-screen
# (setup.py). Its version is the one pip just resolved from setup.py.
_relay_pygame_ce() {
  local version
  version="$("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("pygame-ce"))' \
             2>/dev/null)" || return 0
  "$VENV/bin/python" -m pip install --quiet --no-deps --force-reinstall "pygame-ce==$version"
}

if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$HASH" ]; then
  # pip's and setuptools' chatter (e.g. the editable-install notice) goes to a log,
  # shown in full only if the install fails.
  echo "installing dsp-tf[$EXTRAS] into $(basename "$VENV") (first run or setup.py changed; a few minutes) ..." >&2
  if ! { "$VENV/bin/python" -m pip install --quiet --upgrade pip \
         && "$VENV/bin/python" -m pip install --quiet ${DSP_PIP_UPGRADE:+--upgrade --upgrade-strategy eager} \
              -e "$ROOT[$EXTRAS]" \
         && _relay_pygame_ce; } > "$VENV/install.log" 2>&1; then
    cat "$VENV/install.log" >&2
    echo "install failed; the log above is in $VENV/install.log" >&2
    exit 1
  fi
  echo "$HASH" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"  # see dsp_tf/_keras.py
cd "$ROOT"
