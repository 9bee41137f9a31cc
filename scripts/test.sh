#!/usr/bin/env bash
# Fresh-machine test command: sets up .venv, then runs the test suite on every core (pytest-xdist, one
# test file per worker so a file's shared fixtures are built once; `-n 0` after it runs in one process).
source "$(dirname "$0")/venv.sh"
exec python -m pytest -q -n auto --dist loadfile tests "$@"
