"""`python -m retrain` runs the CLI."""

from retrain.cli.app import main

main()
