"""Images: what each role of the topology runs.

Offline (no registry answers), every image is built from package registries only
(Debian, the Go module proxy, crates.io, PyPI), with `--network none`, and tagged
by the hash of its inputs. Slow products (root filesystem, binaries, wheels) are
kept in the cache folder, so deleting an image forces no recompile. Official mode
uses the upstream images named in docker/images.toml.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import docker.errors

from harness import engine, implementations
from harness.build_cache import BuildCache, digest
from harness.errors import ImageError
from harness.image_builds import BUGS_LABEL, DOCKER_DIR, IMAGE_LABEL, LOAD_CODE, ImageBuilds  # noqa: F401 (IMAGE_LABEL: harness.mutation)
from harness.paths import ROOT, cache_dir

ROLES = ("base", "nats", "toxiproxy", "surrealdb", "reaper", "netsync", "net-sync-ts")
# Roles the topology runs; "base" is only a parent image.
RUNTIME_ROLES = ROLES[1:]
# The implementations of docs/contract.md built here, each an image of its own (docs/implementations.md).
IMPLEMENTATIONS = implementations.NAMES
# What a system needs besides its implementations' images.
INFRA_ROLES = tuple(r for r in RUNTIME_ROLES if r not in IMPLEMENTATIONS)
# What ensure() makes unless told: a system of netsync alone. Another implementation's image is made when a
# system first runs it (System.__enter__), so that its sources being edited hold up no netsync run.
DEFAULT_ROLES = (*INFRA_ROLES, "netsync")
# Built here in every mode, official too: the implementations (the systems under test) and the reaper (ours
# accepts only the run's own label filter; Ryuk, the official one, takes any filter from whoever reaches
# its port).
BUILT_HERE = ("reaper", *IMPLEMENTATIONS, "engine", "load")
# Built only when named (`solar-chaos images engine`, or by what runs them): a Docker engine in a container,
# for several engines on one machine (harness/topology/engines.py). Not in ROLES: no status, no default build.
ON_DEMAND_ROLES = ("engine", "load")


class Mode(StrEnum):
    OFFLINE = "offline"
    OFFICIAL = "official"
    AUTO = "auto"


def mode_from_env() -> Mode:
    """SOLAR_CHAOS_IMAGES, the mode wherever none is chosen (auto): CI sets it once for
    `make test`, `solar-chaos images` and pytest alike."""
    value = os.environ.get("SOLAR_CHAOS_IMAGES", Mode.AUTO.value)
    try:
        return Mode(value)
    except ValueError:
        allowed = ", ".join(m.value for m in Mode)
        raise ImageError(f"SOLAR_CHAOS_IMAGES={value!r} is not a mode; use one of: {allowed}") from None


def load_spec() -> dict:
    with open(DOCKER_DIR / "images.toml", "rb") as f:
        return tomllib.load(f)


def _file_digest(paths: list[Path], root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(paths):
        out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _tree(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return [
        p for p in folder.rglob("*") if p.is_file() and p.suffix in suffixes and "__pycache__" not in p.parts
    ]


@dataclass(frozen=True)
class ImageStatus:
    role: str
    ref: str
    present: bool
    version: str
    size_mb: float | None = None


Log = Callable[[str], None]


def _stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Images(ImageBuilds):
    """Resolves each role to an image reference and builds what is missing (the builders: ImageBuilds)."""

    def __init__(self, mode: Mode | str = Mode.AUTO, log: Log = _stderr_log) -> None:
        self.spec = load_spec()
        self.log = log
        self.cache = cache_dir()
        self.cache.mkdir(parents=True, exist_ok=True)
        self.builds = BuildCache(self.cache, self.spec, log)  # the slow products, kept between builds
        mode = Mode(mode)
        if mode is Mode.AUTO:
            mode = mode_from_env()
        self.mode = self._detect() if mode is Mode.AUTO else mode
        self._refs: dict[str, str] = {}

    # -- resolving --------------------------------------------------------------

    def _detect(self) -> Mode:
        """Official images when they are all already on this engine, else offline."""
        c = engine.client()
        for role in RUNTIME_ROLES:
            if role in BUILT_HERE:
                continue
            try:
                c.images.get(self.spec[role]["official"])
            except docker.errors.ImageNotFound:
                return Mode.OFFLINE
        return Mode.OFFICIAL

    def ref(self, role: str) -> str:
        if role not in self._refs:
            self._refs[role] = self._resolve(role)
        return self._refs[role]

    def _resolve(self, role: str) -> str:
        s = self.spec[role]
        if self.mode is Mode.OFFICIAL and role not in BUILT_HERE:
            return s["official"]
        return f"solar-chaos/{role}:{self._version(role)}-{self.key(role)[:12]}"

    def key(self, role: str) -> str:
        """The hash of everything that goes into the role's image built here. The official
        pin is not an input: bumping it must not rebuild (or recompile) any offline image."""
        s = {k: v for k, v in self.spec[role].items() if k != "official"}
        parts: dict = {"role": role, "spec": s}
        folder = DOCKER_DIR / "offline" / role
        if role == "base":
            parts["recipe"] = "debootstrap-minbase-v1"  # bump when _rootfs changes
        elif role in ("nats", "toxiproxy"):
            parts["files"] = _file_digest([folder / "Dockerfile"], ROOT)
            parts["go"] = "CGO_ENABLED=0 -trimpath -ldflags=-s -w"
        elif role == "surrealdb":
            parts["files"] = _file_digest(
                [folder / "Dockerfile", folder / "Cargo.toml", folder / "Cargo.lock", folder / "src/main.rs"],
                ROOT,
            )
            parts["base"] = self.ref("base")
        elif role == "reaper":
            parts["files"] = _file_digest([folder / "Dockerfile", folder / "reaper.py"], ROOT)
            parts["base"] = self._base_ref()
        elif role == "netsync":
            src = ROOT / "netsync"
            parts["files"] = _file_digest(
                [DOCKER_DIR / "netsync" / "Dockerfile", *_tree(src, (".py", ".txt"))], ROOT
            )
            parts["base"] = self._base_ref()
        elif role == "net-sync-ts":
            pkg = ROOT / self.spec[role]["package"]
            parts["files"] = _file_digest(
                [
                    DOCKER_DIR / "net-sync-ts" / "Dockerfile",
                    ROOT / "scripts" / "node22.sh",  # pins Node's version
                    *(pkg / f for f in ("package.json", "package-lock.json", "tsconfig.json")),
                    *_tree(pkg / "src", (".ts",)),
                ],
                ROOT,
            )
            parts["base"] = self._base_ref()
            parts["debs"] = self.spec["netsync"]["debs"]
        elif role == "engine":
            parts["files"] = _file_digest(
                [DOCKER_DIR / "engine" / "Dockerfile", DOCKER_DIR / "engine" / "entrypoint.sh"], ROOT
            )
            parts["base"] = self._base_ref()
        elif role == "load":
            parts["files"] = _file_digest(
                [DOCKER_DIR / "load" / "Dockerfile", *(ROOT / "harness" / f for f in LOAD_CODE)], ROOT
            )
            parts["base"] = self._base_ref()
        return digest(parts)

    # -- status ---------------------------------------------------------------

    def status(self) -> list[ImageStatus]:
        c = engine.client()
        roles = ROLES if self.mode is Mode.OFFLINE else RUNTIME_ROLES
        out = []
        for role in roles:
            ref = self.ref(role)
            try:
                img = c.images.get(ref)
                out.append(ImageStatus(role, ref, True, self._version(role), img.attrs["Size"] / 1e6))
            except docker.errors.ImageNotFound:
                out.append(ImageStatus(role, ref, False, self._version(role)))
        return out

    @property
    def offline(self) -> bool:
        return self.mode is Mode.OFFLINE

    def _base_ref(self) -> str:
        """What images built here start FROM: our base offline, the pinned python image officially."""
        return self.ref("base") if self.mode is Mode.OFFLINE else self.spec["base"]["official"]

    def _version(self, role: str) -> str:
        s = self.spec[role]
        if self.mode is Mode.OFFICIAL and role not in BUILT_HERE:
            return s["official"].rpartition(":")[2]  # what runs is the pinned tag (nats 2.15.2)
        return s.get("version") or s.get("suite", "?")

    def present(self, role: str) -> bool:
        try:
            engine.client().images.get(self.ref(role))
            return True
        except docker.errors.ImageNotFound:
            return False

    def stale(self) -> list[str]:
        """solar-chaos images on the engine that no current input hashes to."""
        current = {self.ref(role) for role in (*ROLES, *ON_DEMAND_ROLES)}
        out = []
        for img in engine.client().images.list(name="solar-chaos/*"):
            out += [t for t in img.tags if t not in current]
        return sorted(out)

    def stale_builds(self) -> list[Path]:
        """Build products in the cache that no current input hashes to (net-sync-ts's compiled sources)."""
        return self.builds.stale_dists("net-sync-ts", self.key("net-sync-ts"))

    # -- building -------------------------------------------------------------

    def ensure(self, roles: tuple[str, ...] = DEFAULT_ROLES) -> dict[str, str]:
        """Build or pull whatever is missing; return role -> image reference."""
        for role in roles:
            if not self.present(role):
                t0 = time.monotonic()
                self._make(role)
                self.builds.record_time(f"image:{role}", time.monotonic() - t0)
        return {role: self.ref(role) for role in roles}

    def _make(self, role: str) -> None:
        ref = self.ref(role)
        if self.mode is Mode.OFFICIAL and role not in BUILT_HERE:
            self.log(f"images: pulling {ref}")
            try:
                engine.client().images.pull(ref)
            except docker.errors.APIError as e:
                raise ImageError(
                    f"cannot pull {ref}: {e.explanation}; no registry? use offline images: "
                    "solar-chaos images --mode offline"
                ) from e
            return
        self.log(f"images: building {ref}")
        builder = getattr(self, f"_build_{role.replace('-', '_')}")
        builder(ref)

    def known_bugs(self, image: str) -> frozenset[str] | None:
        """The planted bugs an implementation's image says it knows (its label solar-chaos.bugs), read from
        the image, never from its code; None when the image carries no such label (an image of another
        origin: --sut-image)."""
        try:
            labels = engine.client().images.get(image).labels or {}
        except docker.errors.ImageNotFound:
            raise ImageError(f"no image {image} on this engine: build it (solar-chaos images)") from None
        if BUGS_LABEL not in labels:
            return None
        return frozenset(n for n in labels[BUGS_LABEL].split(",") if n)

    def binary(self, name: str) -> Path:
        """A compiled server binary from the cache (built if missing), for running
        NATS, Toxiproxy or SurrealDB as plain processes in tests:
        `nats-server`, `toxiproxy-server`, `surreal`."""
        if name == "surreal":
            return self.surreal_binary()
        role, file = {"nats-server": ("nats", "nats-server"), "toxiproxy-server": ("toxiproxy", "server")}[
            name
        ]
        return self.builds.go_binaries(role, self.key(role)) / file

    def surreal_binary(self) -> Path:
        """The compiled `surreal` binary, from the cache or compiled now (about 14 min cold, 2 cores)."""
        return self.builds.surreal_binary(self.key("surrealdb"))
