"""``python -m rum.cli``: the ``rum`` command line."""

import sys

from rum.cli import main

sys.exit(main())
