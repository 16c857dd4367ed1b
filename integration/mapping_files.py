"""Load the mapping profile (units, plants, Tulip columns) from TOML, or the embedded one."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from contracts.errors import ConfigurationError
from transforms.mapping import MappingProfile

__all__ = ["EMBEDDED_MAPPING", "load_mapping_profile"]

EMBEDDED_MAPPING = "embedded mapping profile (integration/defaults/mapping.toml)"


def load_mapping_profile(path: Path | None = None) -> MappingProfile:
    """The site's profile from ``path``, or the embedded one; errors name the file and the key."""
    if path is None:
        text = resources.files("integration.defaults").joinpath("mapping.toml").read_text("utf-8")
        source = EMBEDDED_MAPPING
    else:
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise ConfigurationError(f"cannot read mapping file {path}: {exc.strerror}") from exc
        source = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message carries the line and column.
        raise ConfigurationError(f"{source} is not valid TOML: {exc}") from exc
    return MappingProfile.from_mapping(data, source=source)
