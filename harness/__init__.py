"""solar-chaos: a chaos and soak harness for libp2p + NATS JetStream + SurrealDB systems."""

__version__ = "0.1.0"
