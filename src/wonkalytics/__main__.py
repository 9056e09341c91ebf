"""``python -m wonkalytics ...`` runs the ``wonkalytics`` command line (the same commands)."""

from wonkalytics.cli import main

if __name__ == "__main__":
    main()
