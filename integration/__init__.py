"""mesbridge runtime: intake guard, pipeline, settings, CLI and service."""
