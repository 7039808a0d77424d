"""The verbs beyond Lightning's four, one module each: lr_find, interpret, export, demo; and AppTrainer, whose
methods LightningCLI runs as the lr_find and interpret subcommands."""
