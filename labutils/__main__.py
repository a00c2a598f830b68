"""``python -m labutils``: see ``labutils.course.cli``."""

import sys

from labutils.course.cli import main

if __name__ == "__main__":
    sys.exit(main())
