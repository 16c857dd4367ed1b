"""Build the runtime's parts from settings, once: used by the CLI and the service."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from contracts.registry import ContractRegistry
from integration.intake import IntakeLimits, require_lxml
from integration.mapping_files import load_mapping_profile
from integration.routes import Translator
from integration.settings import Settings
from integration.store.engine import create_store_engine
from integration.store.order_contexts import OrderContexts
from transforms.mapping import MappingProfile

__all__ = ["LOG_FORMAT", "Components"]

# The service's log lines, in the main process and in its pipeline workers alike.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True)
class Components:
    """Lazily built, checked-once parts of mesbridge for one set of settings."""

    settings: Settings

    @cached_property
    def limits(self) -> IntakeLimits:
        return IntakeLimits.from_settings(self.settings)

    @cached_property
    def registry(self) -> ContractRegistry:
        require_lxml()
        official = self.settings.b2mml_official_dir
        return ContractRegistry.load(
            self.settings.contract_dirs(),
            official_b2mml_dir=Path(official) if official else None,
        )

    @cached_property
    def profile(self) -> MappingProfile:
        path = self.settings.mapping_file
        return load_mapping_profile(Path(path) if path else None)

    @cached_property
    def order_contexts(self) -> OrderContexts:
        """The service's record of the orders SAP sent (connects on first lookup)."""
        return OrderContexts(create_store_engine(self.settings.database_url))

    def translator(
        self, pasx_version: str | None = None, *, with_order_contexts: bool = False
    ) -> Translator:
        """``with_order_contexts``: complete goods movements from the store (the service);
        the offline CLI has no store and uses the message and the mapping profile only."""
        return Translator(
            self.registry,
            self.profile,
            pasx_version=pasx_version or self.settings.pasx_profile,
            order_contexts=self.order_contexts if with_order_contexts else None,
        )
