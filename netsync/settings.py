"""Configuration from environment variables only (docs/contract.md, "Configuration")."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from netsync import buggify
from netsync.projection import INT64_MAX, INT64_MIN


class ConfigError(ValueError):
    """A missing or malformed environment variable; the message names it."""


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise ConfigError(f"{name} is required")
    return value


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None


def env_bugs() -> frozenset[str]:
    """NETSYNC_BUGGIFY (netsync.buggify): planted bugs, none by default."""
    try:
        return buggify.from_env()
    except ValueError as e:
        raise ConfigError(str(e)) from None


def nats_servers(name: str = "NETSYNC_NATS_URL") -> tuple[str, ...]:
    """`nats://tp:23011,nats://tp:23012`: every server of a NATS cluster (one is enough for a single
    server); the client connects to any and fails over to the others."""
    servers = tuple(filter(None, (u.strip() for u in env_str(name).split(","))))
    if not servers:
        raise ConfigError(f"{name} names no server")
    return servers


def parse_peers(raw: str) -> dict[str, str]:
    """`agent-2=/dns4/tp/tcp/21002/p2p/12D3..,agent-3=...` -> {name: multiaddr}."""
    peers: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in raw.split(","))):
        name, sep, addr = item.partition("=")
        if not sep or not name or "/p2p/" not in addr:
            raise ConfigError(f"NETSYNC_PEERS entry {item!r} is not name=multiaddr ending in /p2p/<peer id>")
        peers[name] = addr
    return peers


@dataclass(frozen=True)
class AgentSettings:
    name: str
    identity_seed: str
    listen: str
    peers: dict[str, str]
    orchestrator: str
    quorum: int
    buffer_cap: int
    journal_dir: str
    intent_timeout: float
    commit_timeout: float
    replay_interval: float
    value_min: int
    value_max: int
    http_port: int
    telemetry_interval: float = 1.0
    bugs: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls) -> AgentSettings:
        name = env_str("NETSYNC_NAME", "agent")
        peers = parse_peers(os.environ.get("NETSYNC_PEERS", ""))
        quorum = env_int("NETSYNC_QUORUM", (len(peers) + 1) // 2 + 1)
        if not 1 <= quorum <= len(peers) + 1:
            raise ConfigError(f"NETSYNC_QUORUM={quorum} must be between 1 and {len(peers) + 1} (agents)")
        orchestrator = env_str("NETSYNC_ORCHESTRATOR")
        if "/p2p/" not in orchestrator:
            raise ConfigError("NETSYNC_ORCHESTRATOR must be a multiaddr ending in /p2p/<peer id>")
        values = {
            v: env_int(v, d) for v, d in (("NETSYNC_VALUE_MIN", -1_000_000), ("NETSYNC_VALUE_MAX", 1_000_000))
        }
        for var, value in values.items():
            if not INT64_MIN <= value <= INT64_MAX:  # agreed to, it could never be projected
                raise ConfigError(
                    f"{var}={value} must be a 64-bit integer (the store's), {INT64_MIN} to {INT64_MAX}"
                )
        return cls(
            name=name,
            identity_seed=os.environ.get("NETSYNC_IDENTITY_SEED") or name,
            listen=os.environ.get("NETSYNC_LISTEN") or "/ip4/0.0.0.0/tcp/4001",
            peers=peers,
            orchestrator=orchestrator,
            quorum=quorum,
            buffer_cap=env_int("NETSYNC_BUFFER_CAP", 256),
            journal_dir=os.environ.get("NETSYNC_JOURNAL_DIR") or "/var/lib/netsync",
            intent_timeout=env_int("NETSYNC_INTENT_TIMEOUT_MS", 80) / 1000,
            commit_timeout=env_int("NETSYNC_COMMIT_TIMEOUT_MS", 400) / 1000,
            replay_interval=env_int("NETSYNC_REPLAY_INTERVAL_MS", 200) / 1000,
            value_min=values["NETSYNC_VALUE_MIN"],
            value_max=values["NETSYNC_VALUE_MAX"],
            http_port=env_int("NETSYNC_HTTP_PORT", 8080),
            telemetry_interval=env_int("NETSYNC_TELEMETRY_INTERVAL_MS", 1000) / 1000,
            bugs=env_bugs(),
        )


@dataclass(frozen=True)
class StreamSettings:
    name: str = "SENTIMENT"
    subjects: tuple[str, ...] = ("root.solar.command.>",)
    max_msgs: int = -1
    max_bytes: int = -1
    max_age_s: float = 0
    duplicate_window_s: float = 120
    replicas: int = 1  # a NATS cluster keeps this many copies of the stream

    @classmethod
    def from_env(cls) -> StreamSettings:
        return cls(
            name=os.environ.get("NETSYNC_STREAM") or "SENTIMENT",
            max_msgs=env_int("NETSYNC_STREAM_MAX_MSGS", -1),
            max_bytes=env_int("NETSYNC_STREAM_MAX_BYTES", -1),
            max_age_s=env_float("NETSYNC_STREAM_MAX_AGE_S", 0),
            duplicate_window_s=env_float("NETSYNC_DUPLICATE_WINDOW_S", 120),
            replicas=env_int("NETSYNC_STREAM_REPLICAS", 1),
        )


@dataclass(frozen=True)
class OrchestratorSettings:
    name: str
    identity_seed: str
    listen: str
    nats_servers: tuple[str, ...]
    stream: StreamSettings
    publish_timeout: float
    http_port: int
    telemetry_interval: float = 1.0
    bugs: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls) -> OrchestratorSettings:
        name = env_str("NETSYNC_NAME", "orchestrator")
        return cls(
            name=name,
            identity_seed=os.environ.get("NETSYNC_IDENTITY_SEED") or name,
            listen=os.environ.get("NETSYNC_LISTEN") or "/ip4/0.0.0.0/tcp/4001",
            nats_servers=nats_servers(),
            stream=StreamSettings.from_env(),
            publish_timeout=env_int("NETSYNC_PUBLISH_TIMEOUT_MS", 300) / 1000,
            http_port=env_int("NETSYNC_HTTP_PORT", 8080),
            telemetry_interval=env_int("NETSYNC_TELEMETRY_INTERVAL_MS", 1000) / 1000,
            bugs=env_bugs(),
        )


def surreal_env() -> dict[str, str]:
    """The SurrealDB connection the projector and analytics both read, with the contract's defaults."""
    return {
        "surreal_url": env_str("NETSYNC_SURREAL_URL"),
        "surreal_user": os.environ.get("NETSYNC_SURREAL_USER") or "root",
        "surreal_pass": os.environ.get("NETSYNC_SURREAL_PASS") or "root",
        "surreal_ns": os.environ.get("NETSYNC_SURREAL_NS") or "solar",
        "surreal_db": os.environ.get("NETSYNC_SURREAL_DB") or "netsync",
    }


@dataclass(frozen=True)
class ProjectorSettings:
    name: str
    nats_servers: tuple[str, ...]
    stream: str
    consumer: str
    surreal_url: str
    surreal_user: str
    surreal_pass: str
    surreal_ns: str
    surreal_db: str
    http_port: int
    table: str = field(default="sentiment")
    bugs: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls) -> ProjectorSettings:
        return cls(
            name=env_str("NETSYNC_NAME", "projector"),
            nats_servers=nats_servers(),
            stream=os.environ.get("NETSYNC_STREAM") or "SENTIMENT",
            consumer=os.environ.get("NETSYNC_CONSUMER") or "projector",
            **surreal_env(),
            http_port=env_int("NETSYNC_HTTP_PORT", 8080),
            bugs=env_bugs(),
        )


@dataclass(frozen=True)
class AnalyticsSettings:
    """The analytics role: follows the projected table's changefeed (docs/contract.md, "Analytics")."""

    name: str
    surreal_url: str
    surreal_user: str
    surreal_pass: str
    surreal_ns: str
    surreal_db: str
    http_port: int
    state_dir: str  # its own volume: the cursor and the applied log
    poll_interval: float
    page_limit: int
    nats_servers: tuple[str, ...] = ()  # the scout's summaries: none followed when empty
    table: str = field(default="sentiment")
    bugs: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls) -> AnalyticsSettings:
        page_limit = env_int("NETSYNC_ANALYTICS_PAGE", 1000)
        if not 1 <= page_limit <= 1000:  # SHOW CHANGES takes no LIMIT above 1000
            raise ConfigError(f"NETSYNC_ANALYTICS_PAGE={page_limit} must be between 1 and 1000")
        poll_ms = env_int("NETSYNC_ANALYTICS_POLL_MS", 200)
        if poll_ms < 1:
            raise ConfigError(f"NETSYNC_ANALYTICS_POLL_MS={poll_ms} must be 1 or more")
        settings = cls(
            name=env_str("NETSYNC_NAME", "analytics"),
            **surreal_env(),
            http_port=env_int("NETSYNC_HTTP_PORT", 8080),
            state_dir=os.environ.get("NETSYNC_ANALYTICS_DIR") or "/var/lib/netsync-analytics",
            poll_interval=poll_ms / 1000,
            page_limit=page_limit,
            nats_servers=nats_servers() if os.environ.get("NETSYNC_NATS_URL") else (),
            bugs=env_bugs(),
        )
        for var, ident in (
            ("NETSYNC_SURREAL_NS", settings.surreal_ns),
            ("NETSYNC_SURREAL_DB", settings.surreal_db),
        ):
            if "`" in ident or "\\" in ident:  # identifiers are quoted into statements
                raise ConfigError(f"{var}={ident!r} may not contain a backtick or a backslash")
        return settings
