"""Everything that touches the outside: RabbitMQ, HTTP (Tulip), file formats at the edge."""
