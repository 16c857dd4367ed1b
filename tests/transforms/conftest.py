from __future__ import annotations

import pytest

from integration.mapping_files import load_mapping_profile
from transforms.mapping import MappingProfile


@pytest.fixture(scope="session")
def profile() -> MappingProfile:
    return load_mapping_profile()
