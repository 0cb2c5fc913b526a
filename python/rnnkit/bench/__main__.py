"""``python -m rnnkit.bench``: see :mod:`rnnkit.bench.cli`."""

import sys

from .cli import main

sys.exit(main())
