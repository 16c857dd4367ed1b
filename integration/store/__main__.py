"""``python -m integration.store``: show or change the store's schema revision (see migrate.py)."""

from .migrate import main

raise SystemExit(main())
