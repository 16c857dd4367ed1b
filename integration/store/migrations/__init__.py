"""Alembic migrations of the store (run through ``integration.store.migrate``)."""
