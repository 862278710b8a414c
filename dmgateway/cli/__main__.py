"""``python -m dmgateway.cli``: the same as ``dmgw``."""

import sys

from dmgateway.cli.main import main

sys.exit(main())
