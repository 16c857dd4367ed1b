"""B2MML test fixtures: the default mapping profile, the compiled profile and official schemas."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from tests.b2mml.b2mml_factory import (
    V0600_OFFICIAL,
    V0600_PROFILE,
    V7_OFFICIAL,
    V7_PROFILE,
    compiled_schema,
    default_profile,
)
from transforms.mapping import MappingProfile


@pytest.fixture(scope="session")
def profile() -> MappingProfile:
    return default_profile()


@pytest.fixture(scope="session")
def profile_schemas() -> dict[str, etree.XMLSchema]:
    """mesbridge's own interface-profile schemas, by B2MML version."""
    return {"V0600": compiled_schema(V0600_PROFILE), "V7": compiled_schema(V7_PROFILE)}


@pytest.fixture(scope="session")
def official_schemas(official_b2mml_dir: Path) -> dict[str, etree.XMLSchema]:
    """The official MESA per-message schemas, by B2MML version (the conformance oracle)."""
    return {
        "V0600": compiled_schema(official_b2mml_dir / V0600_OFFICIAL),
        "V7": compiled_schema(official_b2mml_dir / V7_OFFICIAL),
    }
