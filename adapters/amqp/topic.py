"""AMQP topic-exchange matching, as RabbitMQ does it (used by the in-process broker).

A routing key and a binding pattern are words separated by '.'; ``*`` matches exactly
one word, ``#`` zero or more. The empty key has no words (so ``#`` matches it and
``*`` does not); ``a..b`` has an empty middle word. Matching is linear in the
pattern times the key (no backtracking blow-up on patterns like ``#.#.#.x``).
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["topic_matches", "words"]


def words(key: str) -> tuple[str, ...]:
    """The words of a routing key or pattern (RabbitMQ's ``split_topic_key``)."""
    return () if key == "" else tuple(key.split("."))


def topic_matches(pattern: str, routing_key: str) -> bool:
    """True when a binding ``pattern`` routes a message published with ``routing_key``."""
    return _matches(words(pattern), words(routing_key))


@lru_cache(maxsize=4096)
def _matches(pattern: tuple[str, ...], key: tuple[str, ...]) -> bool:
    # reachable[j]: the pattern words read so far can consume exactly the first j key words.
    reachable = [True] + [False] * len(key)
    for word in pattern:
        if word == "#":
            # Zero or more: once a prefix is reachable, every longer prefix is too.
            for j in range(1, len(key) + 1):
                reachable[j] = reachable[j] or reachable[j - 1]
        else:
            for j in range(len(key), 0, -1):
                reachable[j] = reachable[j - 1] and (word in ("*", key[j - 1]))
            reachable[0] = False
    return reachable[len(key)]
