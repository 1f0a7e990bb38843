"""``python -m wxpipe.cli``: how the training launcher starts the same command on every SLURM rank."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
