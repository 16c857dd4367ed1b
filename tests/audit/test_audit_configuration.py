"""Configuration changes: fingerprint without secrets, one entry per change, wired into start-up."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

from integration.audit import (
    AuditAction,
    AuditTrail,
    configuration_description,
    configuration_fingerprint,
    load_audit_key,
    record_configuration,
)
from integration.service import Service
from integration.settings import Settings
from integration.store import Store
from integration.store.engine import create_store_engine

from .conftest import KEY


def _describe(settings: Settings, mapping: str = "1" * 64) -> tuple[str, dict[str, object]]:
    description = configuration_description(
        settings, mapping_sha256=mapping, contracts={"sap-idoc/LOIPRO01/1": "2" * 64}
    )
    return configuration_fingerprint(description), description


def test_the_description_holds_no_secrets() -> None:
    settings = Settings(
        broker_url="amqp://mesbridge:broker-pw@rabbit:5672/",
        database_url="postgresql://mesbridge:db-pw@db/mesbridge",
        tulip_api_key_secret="tulip-secret",
    )
    fingerprint, description = _describe(settings)
    shown = str(description)

    for secret in ("broker-pw", "db-pw", "tulip-secret"):
        assert secret not in shown
    public = description["settings"]
    assert isinstance(public, dict)
    assert public["tulip_api_key_secret"] == "(set)"
    assert public["broker_url"] == "amqp://mesbridge:***@rabbit:5672/"
    assert len(fingerprint) == 64


def test_the_fingerprint_follows_settings_mapping_and_contracts() -> None:
    base, _ = _describe(Settings())
    assert _describe(Settings())[0] == base
    assert _describe(Settings(batch_size=50, prefetch=200))[0] != base
    assert _describe(Settings(), mapping="3" * 64)[0] != base
    other_contracts = configuration_description(
        Settings(), mapping_sha256="1" * 64, contracts={"sap-idoc/LOIPRO01/1": "4" * 64}
    )
    assert configuration_fingerprint(other_contracts) != base


def test_a_change_is_recorded_once(store: Store, trail: AuditTrail) -> None:
    first, description = _describe(Settings())
    entry = record_configuration(trail, first, description, "svc-mesbridge")
    assert entry is not None
    assert (entry.action, entry.subject, entry.before_sha256, entry.after_sha256) == (
        AuditAction.CONFIG_CHANGE,
        "configuration",
        None,
        first,
    )
    assert record_configuration(trail, first, description, "svc-mesbridge") is None

    second, changed = _describe(Settings(http_port=9090))
    again = record_configuration(trail, second, changed, "svc-mesbridge")

    assert again is not None
    assert (again.before_sha256, again.after_sha256) == (first, second)
    assert again.details["configuration"] == changed
    assert [e.seq for e in trail.entries()] == [1, 2]
    assert trail.verify().ok


def test_instances_starting_together_record_one_change(database_url: str, store: Store) -> None:
    fingerprint, description = _describe(Settings())
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def start_instance() -> None:
        engine = create_store_engine(database_url)
        try:
            start.wait()
            record_configuration(AuditTrail(engine, KEY), fingerprint, description, "svc")
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start_instance) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    assert len(list(AuditTrail(store.engine, KEY).entries())) == 1


def test_the_service_records_its_configuration_at_start(tmp_path: Path) -> None:
    broker_url = f"memory://audit-{uuid.uuid4().hex[:8]}"

    def run_once(**changes: object) -> None:
        settings = Settings(
            broker_url=broker_url,
            database_url=f"sqlite:///{tmp_path / 'mesbridge.db'}",
            http_port=0,
            pipeline_workers=0,
            topology_prefix="auditcfg",
            shutdown_timeout_s=5,
        ).replace(**changes)
        service = Service(settings)
        try:
            service.start()
            assert service.audit is not None
        finally:
            service.stop()

    run_once()
    run_once()
    run_once(batch_size=10)

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'mesbridge.db'}")
    store = Store.connect(settings.database_url)
    try:
        trail = AuditTrail(store.engine, load_audit_key(settings))
        entries = list(trail.entries())
        assert [e.action for e in entries] == [AuditAction.CONFIG_CHANGE] * 2
        assert entries[1].before_sha256 == entries[0].after_sha256
        assert trail.verify().ok
    finally:
        store.close()
