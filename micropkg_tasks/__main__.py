"""``python -m micropkg_tasks`` runs the ``micropkg`` CLI."""

import sys

from .cli import main

sys.exit(main())
