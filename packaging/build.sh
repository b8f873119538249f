#!/bin/sh
# Build the nvadmin bundle for this platform (see packaging/build.py and packaging/README.md).
set -eu
cd "$(dirname "$0")/.."
exec uv run --group packaging python packaging/build.py "$@"
