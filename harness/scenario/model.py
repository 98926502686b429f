"""The scenario file's model: the system, the load, the faults, the expectations; its JSON Schema; and
`resolved()`, the scenario as run (scenario.json)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, PrivateAttr, model_validator

from harness.scenario import cluster_targets
from harness.scenario.dotted import _get_path
from harness.scenario.expect import (  # noqa: F401 (re-exported)
    Expect,
    ExpectedFailure,
    LatencyBudget,
    Recovery,
    committed_floor,
)
from harness.scenario.faults import DISK_FAULTS, Fault, OutageFault
from harness.scenario.implementations import SKIP_FORMS, Skips, skip_misfits
from harness.scenario.random_block import RandomFaults
from harness.scenario.topology import Topology
from harness.scenario.types import (
    INT64_MAX,
    MAX_CLIENTS,
    MAX_KEYS,
    MAX_PARAMETER_SETS,
    MAX_RATE,
    MIN_STREAM_WINDOW_S,
    RESERVED_MARKERS,
    Loc,
    PositiveDuration,
    _node_error,
    _problem,
    _reference_error,
    _Strict,
)
from harness.shape import nats_names


class Load(_Strict):
    rate: float = Field(gt=0, le=MAX_RATE, description="intents per second, over all clients")
    duration: PositiveDuration
    keys: int = Field(16, ge=1, le=MAX_KEYS, description="distinct keys")
    clients: int = Field(
        8,
        ge=1,
        le=MAX_CLIENTS,
        description="clients (Jepsen's processes, one intent at a time each), spread over the agents",
    )
    timeout: PositiveDuration = Field(2.0, description="a client gives up (an `info` op) after this")
    engine: Literal["asyncio", "locust"] = Field(
        "asyncio", description="asyncio: sent from the harness's own loop; locust: Locust subprocesses"
    )
    cids: Literal["plain", "edges"] = Field(
        "plain",
        description="plain: <run-id>-s<seed>-<i>; edges: cids at the edges of the contract's cid rule, "
        "on it (64 characters, punctuation, one character) and off it (a trailing newline, 65 characters, "
        "a character outside the set), which the agent must refuse with 400 (docs/scenarios.md, Load)",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_mix(cls, data: Any) -> Any:
        if isinstance(data, dict) and "mix" in data:
            raise _problem(
                "`mix` was removed (nothing read it): the load sends only intents",
                "delete `mix` (rate, keys, clients, timeout and engine shape the load)",
                at=("mix",),
            )
        return data

    @property
    def intents(self) -> int:
        """How many intents the load sends (harness.load.ops.LoadPlan.total)."""
        return max(1, int(self.rate * self.duration))


class Stream(_Strict):
    duplicate_window: PositiveDuration = 120.0
    max_msgs: int | None = Field(None, gt=0, le=INT64_MAX, description="absent: unlimited")
    max_bytes: int | None = Field(None, gt=0, le=INT64_MAX, description="absent: unlimited")
    max_age: PositiveDuration | None = Field(None, description="absent: unlimited")

    @model_validator(mode="after")
    def _as_nats_takes_it(self) -> Stream:
        # JetStream refuses the stream otherwise, and only once the run has brought the system up.
        for name in ("duplicate_window", "max_age"):
            value = getattr(self, name)
            if value is not None and value < MIN_STREAM_WINDOW_S:
                raise _problem(f"got {value:g}s: NATS takes no less than 100ms", "100ms or more", at=(name,))
        if self.max_age is not None and self.duplicate_window > self.max_age:
            raise _problem(
                f"duplicate window {self.duplicate_window:g}s is longer than max_age {self.max_age:g}s "
                "(NATS refuses such a stream)",
                f"at most max_age ({self.max_age:g}s): set duplicate_window, or a longer max_age",
                at=("duplicate_window",),
            )
        return self


def _id_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _distinct(values: list[Any]) -> list[Any]:
    seen: set[str] = set()
    for value in values:
        shown = _id_value(value)
        if shown in seen:
            raise _problem(f"{shown} appears twice", "each value once")
        seen.add(shown)
    return values


def _own_marker(name: str) -> str:
    if name in RESERVED_MARKERS:
        raise _problem(
            f"{name!r} is pytest's own marker: a scenario cannot skip itself, expect to fail or change how "
            "it runs",
            "a marker of your own for -m, e.g. soak; not " + ", ".join(RESERVED_MARKERS),
        )
    return name


MATRIX_KEYS = "a dotted path to a value of the scenario, e.g. faults.0.mode, topology.agents"


class Scenario(_Strict):
    """One scenario file: the system, the load, the faults, and what must hold."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="the file's name without .yaml")
    description: str = ""
    seed: int | None = Field(
        None, ge=0, le=INT64_MAX, description="the default seed; --seed overrides it; absent: 0"
    )
    markers: list[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$"), AfterValidator(_own_marker)]] = (
        Field(default_factory=list, description="pytest markers of your own, e.g. soak")
    )
    topology: Topology = Field(default_factory=Topology)
    load: Load
    faults: list[Fault] = Field(default_factory=list)
    random: RandomFaults | None = None
    stream: Stream = Field(default_factory=Stream)
    expect: Expect = Field(default_factory=Expect)
    matrix: dict[str, Annotated[list[Any], Field(min_length=1), AfterValidator(_distinct)]] | None = Field(
        None, description=f"keys: {MATRIX_KEYS}; one parameter set per combination of the values"
    )
    expected_failures: list[ExpectedFailure] = Field(
        default_factory=list,
        description="parameter sets known invalid (the bug the scenario finds): xfail(strict) in pytest",
    )
    implementations_skip: Skips = Field(
        default_factory=dict,
        description=SKIP_FORMS + "; pytest skips the scenario with that reason where a node runs it "
        "(docs/implementations.md), solar-chaos run refuses it",
    )

    _parameters: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _fits_together(self) -> Scenario:
        if problem := next(self._misfits(), None):
            at, what, allowed = problem
            raise _problem(what, allowed, at=at)
        return self

    def _misfits(self) -> Iterator[tuple[Loc, str, str]]:
        agents, nats, end = self.topology.agents, self.topology.nats.nodes, self.load.duration
        analytics = self.topology.analytics
        for i, fault in enumerate(self.faults):
            here = ("faults", i, fault.fault)
            if fault.at >= end:
                yield (*here, "at"), f"{fault.at:g}s is not before the load ends", f"0s..{end:g}s (excluded)"
            for path, name, kind in fault.references():
                if problem := _reference_error(name, kind, agents, nats, analytics):
                    yield (*here, *path), *problem
            if (
                nats != 1
                and isinstance(fault, OutageFault)
                and fault.target == "nats"
                and fault.mode in ("kill", "pause")
            ):
                yield (
                    (*here, "mode"),
                    f"an outage in mode {fault.mode} acts on one container; NATS is a cluster of {nats}",
                    f"mode refuse or blackhole (every client's link to every NATS node cut), or a crash or "
                    f"pause of one node: nats-1..nats-{nats}",
                )
            on = self.topology.faultfs_nodes
            for path, what, allowed in cluster_targets.misfits(fault, nats, on):
                yield (*here, *path), what, allowed
            if fault.fault in DISK_FAULTS:
                for path, name, _ in fault.references():
                    if name not in on and not cluster_targets.is_cluster_target(name):
                        yield (
                            (*here, *path),
                            f"{name}'s data is not on faultfs: a {fault.fault} cannot act on it",
                            f"a node on faultfs ({', '.join(on) or 'none: set topology.disk'})",
                        )
        if self.random is not None and "clock-jump" in self.random.faults:
            yield (
                ("random", "faults", self.random.faults.index("clock-jump")),
                "clock-jump stays to the end of the load: the random block draws faults for a window",
                "clock-skew or clock-strobe (healed at the window's end)",
            )
        if self.random is not None:
            disk_kinds = [k for k in self.random.faults if k in DISK_FAULTS]
            on = self.topology.faultfs_nodes
            every_nats = set(nats_names(nats)) <= set(on)  # a cluster target then resolves to nodes on it

            def on_disk(t: str) -> bool:
                return t in on or (cluster_targets.is_cluster_target(t) and every_nats)

            if disk_kinds and not (self.random.targets and all(map(on_disk, self.random.targets))):
                yield (
                    ("random", "targets"),
                    f"{disk_kinds[0]} is drawn only for nodes on faultfs",
                    f"targets, every one on faultfs ({', '.join(on) or 'none: set topology.disk'})",
                )
            if self.random.at >= end:
                yield ("random", "at"), f"{self.random.at:g}s is not before the load ends", f"0s..{end:g}s"
            for i, name in enumerate(self.random.targets or ()):
                if problem := _node_error(name, agents, nats, analytics):
                    yield ("random", "targets", i), *problem
        if self.expect.cdc_gaps == "expected" and not self.topology.analytics:
            yield (
                ("expect", "cdc_gaps"),
                "expected, with no analytics node to report a gap",
                ("topology.analytics: true, or cdc_gaps: lost"),
            )
        if self.committed_floor > (intents := self.load.intents):
            yield (
                ("expect", "min_committed"),
                f"{self.committed_floor} is more than the {intents} intents the load sends "
                f"(rate {self.load.rate:g} for {self.load.duration:g}s)",
                f"0..{intents}",
            )
        for key in self.matrix or {}:
            if problem := self._matrix_key_error(key):
                yield ("matrix", key), problem, MATRIX_KEYS
        for i, known in enumerate(self.expected_failures if self.matrix is not None else ()):
            # (a parameter set has no matrix left: its file was judged with it; the loader judges the rest)
            for key, value in known.when.items():
                at = ("expected_failures", i, "when", key)
                values = (self.matrix or {}).get(key)
                if values is None:
                    keys = ", ".join(self.matrix or {}) or "a key of `matrix` (there is none)"
                    yield at, f"{key} is not a matrix key", keys
                elif _id_value(value) not in {_id_value(v) for v in values}:
                    allowed = ", ".join(_id_value(v) for v in values)
                    yield at, f"{_id_value(value)} is not among its values", allowed
        yield from skip_misfits(self.topology.implementations, self.implementations_skip)
        if (sets := self.parameter_set_count) > MAX_PARAMETER_SETS:
            yield ("matrix",), f"{sets:,} parameter sets", f"at most {MAX_PARAMETER_SETS} parameter sets"

    def fault_kinds(self) -> set[str]:
        """Every kind of fault the scenario can start: those listed and those its random block may draw."""
        return {f.fault for f in self.faults} | set(self.random.faults if self.random else ())

    @property
    def parameter_set_count(self) -> int:
        return math.prod(len(values) for values in (self.matrix or {}).values())

    def _matrix_key_error(self, key: str) -> str | None:
        parts = key.split(".")
        if parts[0] in ("name", "matrix", "expected_failures"):
            return f"{parts[0]} cannot vary"
        try:
            _get_path(self.model_dump(by_alias=True, exclude={"matrix", "expected_failures"}), parts)
        except LookupError as e:
            return str(e)
        return None

    @property
    def expected_failure(self) -> ExpectedFailure | None:
        """The entry of `expected_failures` this parameter set matches (the first), or None."""
        mine = {key: _id_value(value) for key, value in self._parameters.items()}
        for known in self.expected_failures:
            if all(mine.get(key) == _id_value(value) for key, value in known.when.items()):
                return known
        return None

    @property
    def committed_floor(self) -> int:
        """`expect.min_committed` in intents: a share (`50%`) of the intents the load sends."""
        return committed_floor(self.expect.min_committed, self.load.intents)

    @property
    def parameters(self) -> dict[str, Any]:
        """The values a matrix or an override set, by dotted path (empty for a file as written)."""
        return dict(self._parameters)

    def resolved(self, seed: int | None = None) -> dict[str, Any]:
        """The scenario as run, as plain data for scenario.json: defaults filled in, the seed chosen (the
        given one, else the file's, else 0). What the checkers read carries the names and units of the run
        format (docs/run-format.md, a public interface), not the file's: `budgets`, `invariants`,
        `topology.agents`/`buffer_cap`, `stream` (seconds, null: unlimited) and `expect`."""
        chosen = seed if seed is not None else self.seed if self.seed is not None else 0
        data = self.model_dump(
            mode="json", by_alias=True, exclude={"matrix", "stream", "expect", "expected_failures"}
        )
        if (known := self.expected_failure) is not None:
            data["expected_failure"] = known.model_dump(mode="json", exclude={"when"})
        data["seed"] = chosen
        data["topology"]["quorum"] = self.topology.effective_quorum
        if data["random"] is not None and data["random"]["seed"] is None:
            data["random"]["seed"] = chosen
        if self._parameters:
            data["parameters"] = self.parameters
        expect, stream = self.expect, self.stream
        data["budgets"] = {
            "intent_ms": expect.latency.intent_ms,
            "commit_ms": expect.latency.commit_ms,
            "recovery_grace_s": expect.recovery_grace,
        }
        data["invariants"] = {"stream_exactly_once": expect.stream_exactly_once}
        data["stream"] = {
            "max_msgs": stream.max_msgs,
            "max_bytes": stream.max_bytes,
            "max_age_s": stream.max_age,
            "duplicate_window_s": stream.duplicate_window,
        }
        data["expect"] = {
            "min_committed": self.committed_floor,  # a share resolved against the load
            "aborts": expect.aborts,
            "rejections": expect.rejections,
            "drained_within_s": expect.recovery.drained_within,
            "unplanned_exits": expect.unplanned_exits,
            # beyond the run format: which checks the scenario asks for
            "reconciliation": expect.reconciliation,
            "buffers": expect.buffers,
            "cdc_gaps": expect.cdc_gaps,
        }
        return data


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file (what `solar-chaos schema` prints)."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **Scenario.model_json_schema()}
