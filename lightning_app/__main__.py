"""``python -m lightning_app SUBCOMMAND``: the subcommands are in cli/subcommands.py."""

import sys

if __name__ == "__main__":
    if sys.argv[1:] in ([], ["-h"], ["--help"]):
        from lightning_app.cli.subcommands import usage

        print(usage(), end="")
        sys.exit(0 if sys.argv[1:] else 2)
    from lightning_app.cli.main import main

    main()
