"""``python -m wonkalytics.cli`` runs the ``wonkalytics`` command."""

from wonkalytics.cli import main

if __name__ == "__main__":
    main()
