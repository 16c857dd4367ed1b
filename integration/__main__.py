"""``python -m integration``: the same as the ``mesbridge`` console script."""

from integration.cli import main

if __name__ == "__main__":
    main()
