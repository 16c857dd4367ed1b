"""Versioned message contracts: schema files and the registry that identifies and validates."""
