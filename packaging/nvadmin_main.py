"""Entry point of the packaged application (PyInstaller starts here)."""

import sys

from nvadmin.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
