"""``python -m gmgan ...`` (and ``torchrun ... -m gmgan train ...``): the :mod:`gmgan.cli` commands."""
from __future__ import annotations

import sys

from gmgan.cli import main

if __name__ == "__main__":
    sys.exit(main())
