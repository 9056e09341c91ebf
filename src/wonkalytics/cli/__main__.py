"""``python -m wonkalytics.cli`` runs the ``wonkalytics`` command."""

from wonkalytics.cli import main

main()
