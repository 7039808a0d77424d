"""Reading the command line: the entry point (main.py), the one pre-read of argv, LightningCLI (lesson_cli.py),
the checkpoint's config layer, the callback sections, flag hints, shipped configs, the terminal filter."""
