"""``python -m adagrow`` is the ``adagrow`` command."""

import sys

from adagrow.cli import main

sys.exit(main())
