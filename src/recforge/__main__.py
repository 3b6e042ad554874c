"""``python -m recforge`` runs the command-line interface."""

import sys

from recforge.cli import main

sys.exit(main())
