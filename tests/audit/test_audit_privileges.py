"""The PostgreSQL grants of docs/storage.md: the service role may only insert and read the trail."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from integration.audit import AuditAction, AuditTrail
from integration.store import InboundRecord, OutboundMessage, Store
from integration.store.retention import PurgeResult, purge_processed

from .conftest import KEY

STORAGE_MD = Path(__file__).resolve().parents[2] / "docs" / "storage.md"

pytestmark = pytest.mark.postgres


def documented_grants(schema: str, role: str) -> list[str]:
    """The GRANT statements of docs/storage.md, for this schema and role."""
    text_ = STORAGE_MD.read_text("utf-8")
    section = text_.split("### Privileges on PostgreSQL", 1)[1]
    block = section.split("```sql", 1)[1].split("```", 1)[0]
    statements = [
        re.sub(r"--.*", "", line).strip() for line in block.splitlines() if "GRANT" in line
    ]
    named = [s.rstrip(";").replace("mesbridge_service", role) for s in statements]
    return [s.replace("SCHEMA mesbridge", f"SCHEMA {schema}") for s in named]


@pytest.fixture
def service_url(pg_admin: Engine, postgres_schema_url: str) -> Iterator[str]:
    Store.connect(postgres_schema_url).close()  # migrated by the owner
    schema = make_url(postgres_schema_url).query["options"].split("=", 1)[1]  # type: ignore[union-attr]
    role = f"mbtest_svc_{uuid.uuid4().hex[:8]}"
    with pg_admin.connect() as connection:
        connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        connection.execute(text(f'SET search_path = "{schema}"'))
        for grant in documented_grants(schema, role):
            connection.execute(text(grant))
    yield make_url(postgres_schema_url).set(username=role).render_as_string(hide_password=False)
    with pg_admin.connect() as connection:
        connection.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :role"),
            {"role": role},
        )
        connection.execute(text(f'DROP OWNED BY "{role}"'))
        connection.execute(text(f'DROP ROLE "{role}"'))


def test_the_service_role_works_but_cannot_change_the_trail(service_url: str) -> None:
    store = Store.connect(service_url)  # at head: the start-up migration only reads
    try:
        store.check_schema()
        now = datetime.now(UTC)
        record = InboundRecord(
            idempotency_key="k1",
            content_sha256=hashlib.sha256(b"x").hexdigest(),
            route="process-order",
            contract="sap-idoc/LOIPRO01/1",
            source_message_id=None,
            received_at=now,
            outputs=[
                OutboundMessage(
                    message_id="m1",
                    destination="amqp",
                    exchange=None,
                    routing_key="pasx.ProductionSchedule",
                    headers={},
                    body=b"<x/>",
                    content_type="application/xml",
                )
            ],
        )
        store.settle_batch([record])
        store.mark_sent([r.id for r in store.pending_outbox(limit=10)], sent_at=now)
        trail = AuditTrail(store.engine, KEY)
        trail.record(actor="svc", action=AuditAction.EDIT, subject="failed_message:1", reason="r")

        def audit_purge(connection: Connection, _result: PurgeResult) -> None:
            trail.record(
                actor="svc",
                action=AuditAction.PURGE,
                subject="inbox",
                reason="r",
                connection=connection,
            )

        purged = purge_processed(store.engine, before=datetime.now(UTC), on_purged=audit_purge)
        assert purged.inbox_rows == 1

        for statement, refusal in [
            ("UPDATE audit_entry SET reason = 'x'", "permission denied"),
            ("DELETE FROM audit_entry", "permission denied"),
            ("TRUNCATE audit_entry", "permission denied"),
            ("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only", "must be owner"),
        ]:
            with pytest.raises(sa_exc.ProgrammingError, match=refusal), store.engine.begin() as c:
                c.execute(text(statement))

        result = trail.verify()
        assert (result.ok, result.checked) == (True, 2)
    finally:
        store.close()
