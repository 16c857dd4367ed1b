"""RabbitMQ (AMQP 0-9-1, pika): the ``Broker`` for ``amqp://`` and ``amqps://`` URLs.

``RabbitBroker(url)`` is a thread-safe factory for ``AmqpConsumer`` (BlockingConnection,
micro-batch ``fetch`` / multi-ack ``ack_through``) and ``AmqpPublisher``
(SelectConnection in its own I/O thread, confirms awaited per batch), and declares
the topology as quorum queues with dead-lettering (``topology.py``). Driver errors
are translated as declared in ``errors.py``. See docs/brokers.md.
"""

from .broker import RabbitBroker
from .consumer import AmqpConsumer
from .errors import CONFIGURATION_ERRORS, TRANSIENT_ERRORS
from .fields import check_envelope, check_headers
from .publisher import AmqpPublisher
from .topic import topic_matches
from .topology import DeclaredQueue, TopologyReport, check_topology
from .url import mask_url

__all__ = [
    "CONFIGURATION_ERRORS",
    "TRANSIENT_ERRORS",
    "AmqpConsumer",
    "AmqpPublisher",
    "DeclaredQueue",
    "RabbitBroker",
    "TopologyReport",
    "check_envelope",
    "check_headers",
    "check_topology",
    "mask_url",
    "topic_matches",
]
