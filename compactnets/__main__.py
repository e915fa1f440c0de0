"""``python -m compactnets`` (also what ``torchrun -m compactnets`` runs)."""

import sys

from .cli import main

sys.exit(main())
