"""``python -m labutils``: see ``labutils.cli``."""

import sys

from labutils.cli import main

if __name__ == "__main__":
    sys.exit(main())
