"""``python -m artstore`` runs the CLI."""

from artstore.cli import main

main()
