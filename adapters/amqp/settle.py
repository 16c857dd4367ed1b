"""Bookkeeping of delivery tags handed out and not yet settled, shared by both brokers.

RabbitMQ closes the channel (and so redelivers everything in flight) when a client
acknowledges a tag it does not know; checking here first turns that caller bug into
a ``ValueError`` that names the tag, the queue and what is outstanding.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

__all__ = ["Outstanding"]


class Outstanding:
    """Tags handed out by ``fetch`` and not yet acknowledged or rejected, in order."""

    def __init__(self, queue: str) -> None:
        self._queue = queue
        self._order: deque[int] = deque()
        self._tags: set[int] = set()

    def __len__(self) -> int:
        return len(self._tags)

    def handed_out(self, tags: Iterable[int]) -> None:
        for tag in tags:
            self._order.append(tag)
            self._tags.add(tag)

    def settle_through(self, tag: int) -> list[int]:
        """Forget every outstanding tag up to and including ``tag``; they are returned."""
        self._check(tag)
        settled: list[int] = []
        while self._order and self._order[0] <= tag:
            earlier = self._order.popleft()
            if earlier in self._tags:
                self._tags.discard(earlier)
                settled.append(earlier)
        return settled

    def settle_one(self, tag: int) -> None:
        self._check(tag)
        self._tags.discard(tag)
        # Stale entries in _order are skipped by settle_through; trim the head now.
        while self._order and self._order[0] not in self._tags:
            self._order.popleft()

    def _check(self, tag: int) -> None:
        if tag not in self._tags:
            shown = sorted(self._tags)
            span = f"{shown[0]}..{shown[-1]}" if shown else "none"
            raise ValueError(
                f"delivery tag {tag} on queue {self._queue!r} is not outstanding on this "
                f"consumer (outstanding: {span}); it was never fetched, or is already settled"
            )
