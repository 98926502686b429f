"""Which implementation of docs/contract.md each node of a system runs (docs/implementations.md): the
scenario's `topology.implementations` for the nodes it names, `--sut` for the rest, netsync otherwise (or
`--sut-image`, an image of any origin, for the rest); the image each node runs; and whether every
implementation in use knows the planted bugs asked for, read from its image's label, never from its code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from harness.errors import HarnessError
from harness.shape import agent_names

# The implementations built here, each an image of the same name (docker/images.toml).
NAMES = ("netsync", "net-sync-ts")
DEFAULT = "netsync"
ROLES = ("orchestrator", "projector")  # besides the agents


class ImplementationError(HarnessError):
    """What was asked cannot run on the implementations chosen: --sut with --sut-image, or a planted bug an
    implementation in use does not know."""


class _Named(Protocol):
    """topology.implementations as the scenario model holds it."""

    agents: str | list[str] | None
    orchestrator: str | None
    projector: str | None


def exclusive(sut: str | None, sut_image: str | None) -> None:
    """--sut picks an implementation built here, --sut-image an image of any origin: one or the other."""
    if sut is not None and sut_image is not None:
        raise ImplementationError(
            f"--sut {sut} and --sut-image {sut_image} both say what every node runs: give one "
            f"(--sut: {', '.join(NAMES)}; --sut-image: an image of another implementation)"
        )
    if sut is not None and sut not in NAMES:
        raise ImplementationError(
            f"--sut {sut!r} is no implementation built here; allowed: {', '.join(NAMES)}"
        )


def named(agents: int, implementations: _Named | None) -> dict[str, str]:
    """node -> implementation for the nodes the scenario names (topology.implementations)."""
    if implementations is None:
        return {}
    out: dict[str, str] = {}
    for role in ROLES:
        if (name := getattr(implementations, role)) is not None:
            out[role] = name
    chosen = implementations.agents
    if isinstance(chosen, str):
        out |= dict.fromkeys(agent_names(agents), chosen)
    elif chosen is not None:
        out |= dict(zip(agent_names(agents), chosen, strict=True))  # the model checked the length
    return out


def choose(agents: int, implementations: _Named | None, sut: str | None) -> dict[str, str]:
    """node -> implementation for the orchestrator, the projector and every agent: the scenario's for the
    nodes it names, `sut` for the rest; with no `sut`, the rest are left out (netsync, or --sut-image)."""
    mine = named(agents, implementations)
    if sut is None:
        return mine
    return {node: mine.get(node, sut) for node in (*ROLES, *agent_names(agents))}


def in_use(agents: int, chosen: Mapping[str, str], sut_image: str | None) -> set[str]:
    """The implementations a system of `chosen` runs (netsync for a node none is chosen for, unless an
    image of another origin runs there)."""
    every = (*ROLES, *agent_names(agents))
    rest = {DEFAULT} if sut_image is None and any(n not in chosen for n in every) else set()
    return set(chosen.values()) | rest


class _Scenario(Protocol):
    @property
    def topology(self) -> Any: ...
    @property
    def implementations_skip(self) -> dict[str, str]: ...


def skipped(scenario: _Scenario, sut: str | None) -> str | None:
    """Why the scenario does not run on the implementations chosen (its implementations_skip names one a
    node would run), or None: pytest skips it with that reason, `solar-chaos run` refuses it."""
    agents = scenario.topology.agents
    used = in_use(agents, choose(agents, scenario.topology.implementations, sut), None)
    for name, reason in scenario.implementations_skip.items():
        if name in used:
            return f"not on {name}: {' '.join(reason.split())}"
    return None


class _Images(Protocol):
    def ref(self, role: str) -> str: ...
    def ensure(self, roles: tuple[str, ...]) -> Any: ...
    def known_bugs(self, image: str) -> frozenset[str] | None: ...


def known_bugs(images: _Images, implementation: str) -> frozenset[str] | None:
    """The planted bugs an implementation knows: its image's label solar-chaos.bugs; netsync's are
    netsync/buggify.py's, this project's own reference (its image predates the label)."""
    if implementation == DEFAULT:
        from netsync.buggify import FLAGS

        return frozenset(FLAGS)
    images.ensure((implementation,))
    return images.known_bugs(images.ref(implementation))


def unknown_bugs(
    images: _Images, implementations: set[str], buggify: tuple[str, ...], sut_image: str | None = None
) -> str | None:
    """Why the planted bugs asked for cannot run here (an implementation in use lacks one: it would not
    run with the bug, or refuse to start), or None. An image of another origin without the label is not
    judged: it says nothing of its flags."""
    if not buggify:
        return None
    sources: dict[str, frozenset[str] | None] = {
        name: known_bugs(images, name) for name in sorted(implementations)
    }
    if sut_image is not None:
        sources[sut_image] = images.known_bugs(sut_image)
    for name, known in sources.items():
        if known is None:
            continue
        if missing := [flag for flag in buggify if flag not in known]:
            has = ", ".join(sorted(known)) or "none"
            return (
                f"--buggify {missing[0]}: {name} has no such planted bug (its flags: {has}); "
                f"run it against an implementation that has it, or drop the flag"
            )
    return None


class _Config(Protocol):
    agents: int
    analytics: bool
    sut_image: str | None
    implementations: tuple[tuple[str, str], ...]


def image_roles(cfg: _Config) -> tuple[str, ...]:
    """The implementations whose images a system of `cfg` runs (images built here), netsync first; an
    analytics node (a role netsync alone has) runs netsync's."""
    used = in_use(cfg.agents, dict(cfg.implementations), cfg.sut_image)
    if cfg.analytics and cfg.sut_image is None:
        used.add(DEFAULT)
    return tuple(sorted(used, key=NAMES.index))


def node_images(images: _Images, cfg: _Config, nodes: list[str]) -> dict[str, str]:
    """node -> the image it runs: its implementation's when one is chosen for it, else --sut-image's, else
    netsync's. A node of a role only netsync has (analytics) runs netsync, or --sut-image's."""
    chosen = dict(cfg.implementations)
    rest = cfg.sut_image or images.ref(DEFAULT)
    return {node: images.ref(chosen[node]) if node in chosen else rest for node in nodes}
