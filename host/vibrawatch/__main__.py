"""`python -m vibrawatch ...` is the `vibrawatch` command."""

import sys

from .cli import main

sys.exit(main())
