"""Alembic revisions of the store, one file each, never edited once released."""
