#!/usr/bin/env bash
# Fresh-machine test command: sets up .venv, then runs the test suite.
source "$(dirname "$0")/venv.sh"
exec python -m pytest -q tests "$@"
