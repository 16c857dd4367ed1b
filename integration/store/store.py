"""The inbox/outbox store: an input's effect happens exactly once, however often it is delivered.

``settle_batch`` writes, for up to B inputs in ONE transaction, an inbox row
per new idempotency key and the outbox rows of its outputs. The database
decides what is new (unique key + ``INSERT … ON CONFLICT DO NOTHING``), so
any number of service instances may share one PostgreSQL. A repeated key
with the same content hash is a DUPLICATE, with another hash a CONFLICT;
neither writes anything. Inside one batch the first entry of a key wins;
later ones are judged against what the inbox then holds, so a batch has the
outcomes its entries would have if settled one after the other.

Relays take pending outbox rows with ``pending_outbox``, which claims them
for a lease (``claimed_by``/``claimed_until``) in one UPDATE; on PostgreSQL
the candidate rows are picked ``FOR UPDATE SKIP LOCKED``, so competing relays
never receive the same row while a lease runs. A relay that dies loses its
lease and the rows go out again: publishing is at-least-once, and the
deterministic ``message_id`` lets the receiver recognise the resend.

Failure modes: an unreachable or busy database raises
``contracts.errors.TransientError`` (see ``translate.py``); any other
integrity error (e.g. two outputs with the same ``message_id``) rolls the
whole batch back and propagates: it is a bug, not a repeat. Unsupported URLs
raise ``ConfigurationError``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import socket
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Row,
    String,
    any_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from contracts.errors import ConfigurationError

from .engine import READ_ONLY, create_store_engine, safe_url
from .failed import replay_link, resolve_replays
from .migrate import current_revision, head_revision, upgrade
from .models import failed_message, inbox, outbox
from .order_contexts import save_order_contexts
from .records import (
    FailedMessage,
    InboundRecord,
    InboxEntry,
    OutboxRow,
    SettleOutcome,
    findings_from_json,
    findings_to_json,
)
from .translate import translate_errors
from .unnest import Unnest

__all__ = ["DEFAULT_CLAIM_LEASE", "Store"]

DEFAULT_CLAIM_LEASE = timedelta(seconds=60)
_ONE_MICROSECOND = timedelta(microseconds=1)
_FAILURE_FIELDS = frozenset(field.name for field in dataclasses.fields(FailedMessage))
# Keys per IN (...) list: far below SQLite's and PostgreSQL's bound-parameter limits.
_CHUNK = 500

_OUTBOX_COLUMNS = (
    outbox.c.id,
    outbox.c.inbox_id,
    outbox.c.message_id,
    outbox.c.destination,
    outbox.c.exchange,
    outbox.c.routing_key,
    outbox.c.headers,
    outbox.c.body,
    outbox.c.content_type,
    outbox.c.created_at,
    outbox.c.claimed_by,
    outbox.c.claimed_until,
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _default_instance_id() -> str:
    return f"{socket.gethostname()}:{uuid.uuid4().hex[:12]}"


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class Store:
    """Inbox, outbox and failed messages in one SQL database (SQLite or PostgreSQL)."""

    def __init__(
        self,
        engine: Engine,
        *,
        instance_id: str | None = None,
        claim_lease: timedelta = DEFAULT_CLAIM_LEASE,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise ConfigurationError(f"the store cannot run on {engine.dialect.name}")
        if claim_lease <= timedelta(0):
            raise ValueError(f"claim_lease must be positive, got {claim_lease}")
        self._engine = engine
        self._database = safe_url(engine.url)
        self._dialect = engine.dialect.name
        self._clock = clock
        self._claim_lease = claim_lease
        self.instance_id = instance_id or _default_instance_id()
        # Leases written by a settle_and_claim that raised: if the connection broke during
        # COMMIT, its rows may exist, claimed by this instance, in nobody's hands
        # (reclaim_uncertain). Each settle's lease is unique, so it names its rows.
        self._leases = threading.Lock()
        self._last_lease = datetime.min.replace(tzinfo=UTC)
        self._uncertain_leases: list[datetime] = []

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        migrate: bool = True,
        instance_id: str | None = None,
        claim_lease: timedelta = DEFAULT_CLAIM_LEASE,
        clock: Callable[[], datetime] = _utc_now,
    ) -> Store:
        """A store on ``url``; with ``migrate`` the schema is brought to head first.

        Without ``migrate`` nothing touches the database yet; call
        ``check_schema`` at start-up to refuse an outdated schema clearly.
        """
        engine = create_store_engine(url)
        try:
            if migrate:
                upgrade(engine)
            return cls(engine, instance_id=instance_id, claim_lease=claim_lease, clock=clock)
        except BaseException:
            engine.dispose()
            raise

    @property
    def engine(self) -> Engine:
        return self._engine

    # -- inbox + outbox -------------------------------------------------------------------

    def settle_batch(self, records: Sequence[InboundRecord]) -> list[SettleOutcome]:
        """Settle ``records`` in ONE transaction; one outcome per record, in order."""
        return self.settle_and_claim(records, claim=())[0]

    def settle_and_claim(
        self, records: Sequence[InboundRecord], *, claim: Collection[str]
    ) -> tuple[list[SettleOutcome], list[OutboxRow]]:
        """``settle_batch``; the new outbox rows for a destination in ``claim`` are written
        already claimed by this instance for its lease, and returned.

        The caller (the consumer loop) hands them to its relay, which delivers them from
        memory: no claim UPDATE, no reading the bodies back. A row it does not deliver is
        released, or sent by any relay once the lease has run out.
        """
        if not records:
            return [], []
        now = self._clock()
        lease = self._new_lease(now)
        try:
            return self._settle_and_claim(records, claim, now=now, lease=lease)
        except BaseException:
            if claim:
                with self._leases:
                    self._uncertain_leases.append(lease)
            raise

    def reclaim_uncertain(self) -> list[OutboxRow]:
        """The rows of settles that raised but may have committed, claimed anew; [] if none.

        A connection that breaks during COMMIT leaves the outcome unknown to the caller,
        which does not acknowledge: the inputs come again as duplicates, while the rows
        (if the commit went through) sit claimed until their lease ends. Called after a
        later settle succeeded, this takes exactly those rows back (the lease each settle
        writes is unique; a row a relay claimed meanwhile carries another) so the caller
        can hand them over now. Raises ``TransientError`` (the leases are kept for the
        next call) when the database is still away.
        """
        with self._leases:
            leases, self._uncertain_leases = self._uncertain_leases, []
        if not leases:
            return []
        now = self._clock()
        statement = (
            update(outbox)
            .where(
                outbox.c.sent_at.is_(None),
                outbox.c.claimed_by == self.instance_id,
                outbox.c.claimed_until.in_(leases),
            )
            .values(claimed_until=self._new_lease(now))
            .returning(*_OUTBOX_COLUMNS)
        )
        try:
            with (
                translate_errors("claiming outbox rows again", database=self._database),
                self._engine.begin() as connection,
            ):
                rows = connection.execute(statement).all()
        except BaseException:
            with self._leases:
                self._uncertain_leases.extend(leases)
            raise
        return sorted((_outbox_row(row) for row in rows), key=lambda r: (r.created_at, r.id))

    def _new_lease(self, now: datetime) -> datetime:
        if now.tzinfo is None:
            return now + self._claim_lease  # a clock bug: refused where it is bound (UTCDateTime)
        with self._leases:
            lease = max(now + self._claim_lease, self._last_lease + _ONE_MICROSECOND)
            self._last_lease = lease
        return lease

    def _settle_and_claim(
        self,
        records: Sequence[InboundRecord],
        claim: Collection[str],
        *,
        now: datetime,
        lease: datetime,
    ) -> tuple[list[SettleOutcome], list[OutboxRow]]:
        leader_of: dict[str, int] = {}
        for index, record in enumerate(records):
            leader_of.setdefault(record.idempotency_key, index)
        # Keys in sorted order: concurrent batches then wait on each other's keys in one
        # order and cannot deadlock.
        leaders = sorted(leader_of.items())
        with (
            translate_errors(f"settling a batch of {len(records)}", database=self._database),
            self._engine.begin() as connection,
        ):
            inserted = self._insert_inbox(connection, [records[i] for _, i in leaders], now)
            kept = self._stored_hashes(connection, [k for k, _ in leaders if k not in inserted])
            repeated = self._repeated_outputs(connection, records, leader_of, inserted)
            if repeated:
                # Never visible to anyone: the rows go with the keys they would have claimed.
                connection.execute(
                    delete(inbox).where(inbox.c.id.in_([inserted.pop(k) for k in repeated]))
                )
            # What took effect, in arrival order (leader_of's): the outbox ids, and so the
            # order the relays deliver in, follow the queue (the keys are locked by the inbox
            # rows already), and of two process orders for one order the later one's
            # context wins.
            accepted = [(key, index) for key, index in leader_of.items() if key in inserted]
            outbox_rows: list[dict[str, Any]] = []
            for key, index in accepted:
                kept[key] = records[index].content_sha256
                outbox_rows.extend(_outbox_values(inserted[key], records[index], now))
            claimed = self._insert_outbox(connection, outbox_rows, claim, lease)
            contexts = [
                (context, key)
                for key, index in accepted
                for context in records[index].order_contexts
            ]
            save_order_contexts(connection, contexts, now=now)
            # Every entry but an accepted leader is judged against what the inbox now holds,
            # so a batch has the outcomes its entries would have one after the other.
            outcomes = [
                SettleOutcome.REPEATED_OUTPUT
                if r.idempotency_key in repeated
                else SettleOutcome.ACCEPTED
                if leader_of[r.idempotency_key] == index and r.idempotency_key in inserted
                else _repeat(kept[r.idempotency_key], r.content_sha256)
                for index, r in enumerate(records)
            ]
            # A replay that took effect (or had before) resolves its failed message (failed.py).
            replays = [(r, o) for r, o in zip(records, outcomes, strict=True) if r.replay_of]
            if replays:
                resolve_replays(connection, replays, now=now)
        return outcomes, claimed

    def _repeated_outputs(
        self,
        connection: Connection,
        records: Sequence[InboundRecord],
        leader_of: Mapping[str, int],
        inserted: Mapping[str, int],
    ) -> set[str]:
        """Keys new to the inbox whose outputs' message ids were made before: by a settled
        input, by an earlier input of this batch, or twice by the input itself.

        Message ids are derived per IDoc and order, keys per message: an IDoc that took effect
        inside one packet and comes again alone (or in another packet) has a new key but an
        output that exists. Writing it would break the outbox's unique message id and return
        the batch to the queue forever; taking it as a duplicate could drop a changed IDoc.
        """
        new = [(key, index) for key, index in leader_of.items() if key in inserted]
        wanted = sorted({o.message_id for _, i in new for o in records[i].outputs})
        taken: set[str] = set()
        if self._dialect == "postgresql" and wanted:
            # One array parameter, as in settled_contents.
            listed = bindparam("ids", wanted, type_=postgresql.ARRAY(String()))
            query = select(outbox.c.message_id).where(outbox.c.message_id == any_(listed))
            taken.update(connection.execute(query).scalars())
        else:
            for chunk in _chunks(wanted):
                query = select(outbox.c.message_id).where(outbox.c.message_id.in_(chunk))
                taken.update(connection.execute(query).scalars())
        repeated: set[str] = set()
        for key, index in new:  # arrival order: the first to make an id keeps it
            ids = [output.message_id for output in records[index].outputs]
            if len(set(ids)) < len(ids) or not taken.isdisjoint(ids):
                repeated.add(key)
            else:
                taken.update(ids)
        return repeated

    def _insert_outbox(
        self,
        connection: Connection,
        rows: list[dict[str, Any]],
        claim: Collection[str],
        lease: datetime,
    ) -> list[OutboxRow]:
        if not rows:
            return []
        to_claim = [row for row in rows if row["destination"] in claim]
        for row in to_claim:
            row["claimed_by"], row["claimed_until"] = self.instance_id, lease
        if self._dialect == "postgresql":
            ids = _OUTBOX_UNNEST.insert(connection, rows)
            return [OutboxRow(id=ids[row["message_id"]], **_row_fields(row)) for row in to_claim]
        connection.execute(insert(outbox), rows)
        if not to_claim:
            return []
        ids = {}
        for chunk in _chunks([row["message_id"] for row in to_claim]):
            query = select(outbox.c.message_id, outbox.c.id).where(outbox.c.message_id.in_(chunk))
            ids.update(connection.execute(query).all())
        return [OutboxRow(id=ids[row["message_id"]], **_row_fields(row)) for row in to_claim]

    def _insert_inbox(
        self, connection: Connection, records: Sequence[InboundRecord], now: datetime
    ) -> dict[str, int]:
        values = [
            {
                "idempotency_key": r.idempotency_key,
                "content_sha256": r.content_sha256,
                "route": r.route,
                "contract": r.contract,
                "source_message_id": r.source_message_id,
                "received_at": r.received_at,
                "settled_at": now,
            }
            for r in records
        ]
        if self._dialect == "postgresql":
            return _INBOX_UNNEST.insert(connection, values)
        statement = (
            sqlite.insert(inbox)
            .on_conflict_do_nothing(index_elements=[inbox.c.idempotency_key])
            .returning(inbox.c.idempotency_key, inbox.c.id)
        )
        return dict(connection.execute(statement, values).all())

    def _stored_hashes(self, connection: Connection, keys: Sequence[str]) -> dict[str, str]:
        stored: dict[str, str] = {}
        for chunk in _chunks(keys):
            query = select(inbox.c.idempotency_key, inbox.c.content_sha256).where(
                inbox.c.idempotency_key.in_(chunk)
            )
            stored.update(connection.execute(query).all())
        absent = [key for key in keys if key not in stored]
        if absent:
            # ON CONFLICT skipped these keys, so a committed row must exist.
            raise RuntimeError(f"inbox keys neither inserted nor found: {absent[:5]}")
        return stored

    def lookup(self, idempotency_key: str) -> InboxEntry | None:
        """The inbox row that took effect under ``idempotency_key``, if any."""
        with (
            translate_errors("reading the inbox", database=self._database),
            self._engine.connect() as connection,
        ):
            connection.execution_options(**READ_ONLY)
            row = connection.execute(
                select(inbox).where(inbox.c.idempotency_key == idempotency_key)
            ).first()
        if row is None:
            return None
        return InboxEntry(**row._asdict())

    def settled_contents(self, hashes: Collection[str]) -> dict[str, str]:
        """Of ``hashes`` (SHA-256 of inputs' bytes), each one an inbox row was settled with,
        mapped to that row's idempotency key.

        An input whose exact bytes took effect before is a duplicate: its key is read from
        those bytes, so settling it would find the same key with the same content. Asking
        first spares validating and transforming it again (``ConsumerLoop``).
        """
        wanted = sorted(set(hashes))
        columns = select(inbox.c.content_sha256, inbox.c.idempotency_key)
        if self._dialect == "postgresql":
            # One array parameter, as in _update_unsent: a batch of 100 hashes measured
            # 501-713 µs of client CPU this way, 853 µs as an IN list of 100 placeholders.
            listed = bindparam("hashes", wanted, type_=postgresql.ARRAY(String()))
            queries = [columns.where(inbox.c.content_sha256 == any_(listed))]
        else:
            queries = [columns.where(inbox.c.content_sha256.in_(c)) for c in _chunks(wanted)]
        found: dict[str, str] = {}
        with (
            translate_errors("reading the inbox", database=self._database),
            self._engine.connect() as connection,
        ):
            connection.execution_options(**READ_ONLY)
            for query in queries:
                found.update(connection.execute(query).all())
        return found

    def pending_outbox(self, *, limit: int, destination: str | None = None) -> list[OutboxRow]:
        """Claim up to ``limit`` unsent rows, oldest first, for this instance's lease.

        A row comes back again only after its lease ran out without ``mark_sent``
        (its relay died or gave it back with ``release``).
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        now = self._clock()
        candidates = select(outbox.c.id).where(
            outbox.c.sent_at.is_(None),
            or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until <= now),
        )
        if destination is not None:
            candidates = candidates.where(outbox.c.destination == destination)
        candidates = (
            candidates.order_by(outbox.c.created_at, outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has one writer at a time
        )
        claim = (
            update(outbox)
            .where(outbox.c.id.in_(candidates.scalar_subquery()))
            .values(claimed_by=self.instance_id, claimed_until=self._new_lease(now))
            .returning(*_OUTBOX_COLUMNS)
        )
        with (
            translate_errors("claiming outbox rows", database=self._database),
            self._engine.begin() as connection,
        ):
            rows = connection.execute(claim).all()
        claimed = [_outbox_row(row) for row in rows]
        claimed.sort(key=lambda r: (r.created_at, r.id))
        return claimed

    def mark_sent(self, outbox_ids: Sequence[int], *, sent_at: datetime) -> None:
        """Record that these rows were delivered (confirmed); repeating it changes nothing."""
        if sent_at.tzinfo is None or sent_at.utcoffset() is None:
            raise ValueError(f"sent_at {sent_at.isoformat()} has no time zone")
        self._update_unsent(
            outbox_ids,
            {"sent_at": sent_at, "claimed_until": None},
            "marking outbox rows sent",
        )

    def release(self, outbox_ids: Sequence[int]) -> None:
        """Give claimed rows back at once (publishing failed), instead of waiting for the lease."""
        self._update_unsent(
            outbox_ids,
            {"claimed_by": None, "claimed_until": None},
            "releasing outbox rows",
        )

    def _update_unsent(self, ids: Sequence[int], values: Mapping[str, Any], action: str) -> None:
        if not ids:
            return
        with (
            translate_errors(action, database=self._database),
            self._engine.begin() as connection,
        ):
            if self._dialect == "postgresql":
                # One array parameter: psycopg caches the statement's conversion, which it
                # does not for an IN list of a hundred placeholders.
                listed = bindparam("ids", list(ids), type_=postgresql.ARRAY(BigInteger()))
                connection.execute(
                    update(outbox)
                    .where(outbox.c.id == any_(listed), outbox.c.sent_at.is_(None))
                    .values(**values)
                )
                return
            for chunk in _chunks(list(ids)):
                connection.execute(
                    update(outbox)
                    .where(outbox.c.id.in_(chunk), outbox.c.sent_at.is_(None))
                    .values(**values)
                )

    def outbox_backlog(self) -> int:
        """How many outbox rows are not yet sent (claimed or not)."""
        query = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        with (
            translate_errors("counting the outbox backlog", database=self._database),
            self._engine.connect() as connection,
        ):
            connection.execution_options(**READ_ONLY)
            return int(connection.execute(query).scalar_one())

    def parked_count(self) -> int:
        """How many failed messages wait for an analyst (status ``parked``)."""
        query = (
            select(func.count())
            .select_from(failed_message)
            .where(failed_message.c.status == "parked")
        )
        with (
            translate_errors("counting parked messages", database=self._database),
            self._engine.connect() as connection,
        ):
            connection.execution_options(**READ_ONLY)
            return int(connection.execute(query).scalar_one())

    # -- failed messages ------------------------------------------------------------------

    def record_failure(self, failure: FailedMessage) -> int:
        """Keep a parked message; every call adds a row (nothing is deduplicated away).

        ``replay_of`` is kept only when it names a row whose body (or edited copy) this
        message is (``failed.replay_link``): a stray header cannot link unrelated rows.
        """
        values = {
            "idempotency_key": failure.idempotency_key,
            "route": failure.route,
            "contract": failure.contract,
            "body": failure.body,
            "headers": dict(failure.headers),
            "error_class": failure.error_class,
            "error_text": failure.error_text,
            "findings": findings_to_json(failure.findings),
            "attempts": failure.attempts,
            "first_failed_at": failure.first_failed_at,
            "last_failed_at": failure.last_failed_at,
            "status": failure.status,
            "fingerprint": failure.fingerprint.digest,
            "order_numbers": ",".join(failure.order_numbers) or None,
        }
        with (
            translate_errors("recording a failed message", database=self._database),
            self._engine.begin() as connection,
        ):
            values["replay_of"] = replay_link(
                connection, failure.replay_of, hashlib.sha256(failure.body).hexdigest()
            )
            new_id = connection.execute(
                insert(failed_message).values(values).returning(failed_message.c.id)
            ).scalar_one()
        return int(new_id)

    def get_failure(self, failure_id: int) -> FailedMessage | None:
        """A failed message as recorded, or None when there is no such id."""
        with (
            translate_errors("reading a failed message", database=self._database),
            self._engine.connect() as connection,
        ):
            connection.execution_options(**READ_ONLY)
            row = connection.execute(
                select(failed_message).where(failed_message.c.id == failure_id)
            ).first()
        if row is None:
            return None
        values = {name: value for name, value in row._asdict().items() if name in _FAILURE_FIELDS}
        values["findings"] = findings_from_json(values["findings"])
        values["order_numbers"] = (
            tuple(values["order_numbers"].split(",")) if values["order_numbers"] else ()
        )
        return FailedMessage(**values)

    # -- operations -----------------------------------------------------------------------

    def ping(self) -> None:
        """Raise ``TransientError`` unless the database answers (readiness)."""
        with (
            translate_errors("checking readiness", database=self._database),
            self._engine.connect() as connection,
        ):
            connection.execution_options(**READ_ONLY)
            connection.execute(text("SELECT 1")).scalar_one()

    def check_schema(self) -> None:
        """Raise ``ConfigurationError`` unless the schema is at the revision this code needs."""
        found, needed = current_revision(self._engine), head_revision()
        if found != needed:
            raise ConfigurationError(
                f"database {self._database} has schema revision {found or 'none'}, this "
                f"mesbridge needs {needed}: run `python -m integration.store upgrade`"
            )

    def close(self) -> None:
        self._engine.dispose()


def _repeat(stored_sha256: str, new_sha256: str) -> SettleOutcome:
    if stored_sha256 == new_sha256:
        return SettleOutcome.DUPLICATE
    return SettleOutcome.CONFLICT


def _outbox_values(inbox_id: int, record: InboundRecord, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "inbox_id": inbox_id,
            "message_id": message.message_id,
            "destination": message.destination,
            "exchange": message.exchange,
            "routing_key": message.routing_key,
            "headers": dict(message.headers),
            "body": message.body,
            "content_type": message.content_type,
            "created_at": now,
            "claimed_by": None,
            "claimed_until": None,
            "sent_at": None,
        }
        for message in record.outputs
    ]


_OUTBOX_ROW_FIELDS = tuple(column.name for column in _OUTBOX_COLUMNS if column.name != "id")


# PostgreSQL: each batch's rows in one statement (unnest.py).
_INBOX_UNNEST = Unnest(
    inbox,
    [
        ("idempotency_key", "text"),
        ("content_sha256", "text"),
        ("route", "text"),
        ("contract", "text"),
        ("source_message_id", "text"),
        ("received_at", "timestamptz"),
        ("settled_at", "timestamptz"),
    ],
    conflict="ON CONFLICT (idempotency_key) DO NOTHING",
    returning_key="idempotency_key",
)
_OUTBOX_UNNEST = Unnest(
    outbox,
    [
        ("inbox_id", "bigint"),
        ("message_id", "text"),
        ("destination", "text"),
        ("exchange", "text"),
        ("routing_key", "text"),
        ("headers", "json"),
        ("body", "bytea"),
        ("content_type", "text"),
        ("created_at", "timestamptz"),
        ("claimed_by", "text"),
        ("claimed_until", "timestamptz"),
    ],
    returning_key="message_id",
)


def _row_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: values[name] for name in _OUTBOX_ROW_FIELDS}


def _outbox_row(row: Row[Any]) -> OutboxRow:
    values = row._asdict()
    values["body"] = bytes(values["body"])
    return OutboxRow(**values)
