"""Entry point of the packaged application (PyInstaller starts here)."""

import os
import sys

# A windowed build (Windows nvadmin.exe, the macOS app) starts without stdout/stderr; the
# command-line messages would then raise instead of being dropped. nvadmin-cli has both.
if sys.stdout is None:
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
if sys.stderr is None:
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115

from nvadmin.__main__ import main  # after the streams exist

if __name__ == "__main__":
    sys.exit(main())
