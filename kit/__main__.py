"""``python -m kit``: the command line (:mod:`kit.cli`)."""
import sys

from kit.cli import main

sys.exit(main())
