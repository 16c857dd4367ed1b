"""Versioned message contracts: schema files, the registry that identifies and validates messages."""
