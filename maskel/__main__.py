"""``python -m maskel``: the same as the ``maskel`` console script."""

import sys

from maskel.cli import main

sys.exit(main())
