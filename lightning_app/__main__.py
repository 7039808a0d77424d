"""``python -m lightning_app fit|validate|test|predict``."""

import sys

from lightning_app.usage import USAGE

if __name__ == "__main__":
    if sys.argv[1:] in ([], ["-h"], ["--help"]):
        print(USAGE)
        sys.exit(0 if sys.argv[1:] else 2)
    from lightning_app.cli import main

    main()
