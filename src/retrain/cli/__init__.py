"""The `retrain` command line (typer): every command calls the same functions as the DAGs and the tests.

The app and its entry point live in `retrain.cli.app`; this package imports nothing, so a command module
importing a sibling never loads the whole CLI.
"""
