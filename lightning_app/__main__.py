"""``python -m lightning_app SUBCOMMAND`` and ``dlwp SUBCOMMAND``: one entry point (the subcommands are in
cli/subcommands.py). The top-level help is answered here, before torch and Lightning are imported."""

import sys


def main() -> None:
    if sys.argv[1:] in ([], ["-h"], ["--help"]):
        from lightning_app.cli.subcommands import usage

        print(usage(), end="")
        sys.exit(0 if sys.argv[1:] else 2)
    from lightning_app.cli.main import main as run

    run()


if __name__ == "__main__":
    main()
