"""``python -m lightning_app SUBCOMMAND`` and ``dlwp SUBCOMMAND``: one entry point (the subcommands are in
cli/subcommands.py). The top-level help is answered here, before torch and Lightning are imported, and so is a
help or ``--print_config`` already answered once (cli/help_cache.py)."""

import sys


def main() -> None:
    """Run the command, then leave without the interpreter's teardown where that is safe (cli/quick_exit.py)."""
    from lightning_app.cli.quick_exit import arm, leave

    arm()
    try:
        run_command(sys.argv[1:])
    except SystemExit as stop:
        leave(stop.code)
    leave(0)


def run_command(argv: list[str]) -> None:
    if argv in ([], ["-h"], ["--help"]):
        from lightning_app.cli.subcommands import usage

        print(usage(), end="")
        sys.exit(0 if argv else 2)
    from lightning_app.cli import help_cache

    if help_cache.cacheable(argv) and (text := help_cache.lookup(argv)) is not None:
        sys.stdout.write(text)
        return
    from lightning_app.cli.main import main as run

    with help_cache.recording(argv):
        run()


if __name__ == "__main__":
    main()
