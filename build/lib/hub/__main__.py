"""``python -m hub`` runs the CLI."""

from hub.cli import main

if __name__ == "__main__":
    main()
