"""``python -m mosaicrec`` runs the CLI."""

import sys

from mosaicrec.serving.cli import main

sys.exit(main())
