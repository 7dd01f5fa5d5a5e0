"""``python -m clearance``."""

from clearance.cli.app import main

main()
