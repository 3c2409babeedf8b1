"""`python -m heartbeat ...`: the same as the `heartbeat` console script."""

import sys

from heartbeat.cli import main

sys.exit(main())
