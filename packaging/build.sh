#!/bin/sh
# Build the nvadmin bundle for this platform (see packaging/README.md).
# The build uses its own environment (build/venv: the app's dependencies and PyInstaller,
# no dev tools), so it neither changes nor depends on the .venv used for development.
set -eu
cd "$(dirname "$0")/.."
UV_PROJECT_ENVIRONMENT="${UV_PROJECT_ENVIRONMENT:-$PWD/build/venv}"
export UV_PROJECT_ENVIRONMENT
exec uv run --no-dev --group packaging python packaging/build.py "$@"
