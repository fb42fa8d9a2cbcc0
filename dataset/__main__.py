"""``python -m dataset``: the workspace command line (see :mod:`dataset.cli`)."""

import sys

from dataset.cli import main

sys.exit(main())
