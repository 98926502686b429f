"""How each image built here is made (Images' builders): from a fresh build context holding its Dockerfile
and the cache's products (harness/build_cache.py), with no network offline, labelled with its role."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import docker.errors

from harness import engine
from harness.build_cache import BuildCache
from harness.errors import ImageError
from harness.paths import ROOT

DOCKER_DIR = ROOT / "docker"
IMAGE_LABEL = "solar-chaos.image"
# On an implementation's image: the planted bugs it knows, comma-separated (docs/implementations.md).
BUGS_LABEL = "solar-chaos.bugs"
# What the load image carries of the harness (a remote Locust worker: docker/load): the locustfile and what it
# imports, no more (its harness/load/__init__.py is an empty one, written by the build).
LOAD_CODE = (
    "__init__.py",
    "errors.py",
    "json_limits.py",
    "store.py",
    "load/ops.py",
    "load/cids.py",
    "load/locustfile.py",
)


class ImageBuilds:
    """The `_build_<role>` methods Images calls for a role it builds here."""

    builds: BuildCache
    spec: dict

    # Provided by Images.
    @property
    def offline(self) -> bool:
        raise NotImplementedError

    def key(self, role: str) -> str:
        raise NotImplementedError

    def ref(self, role: str) -> str:
        raise NotImplementedError

    def _base_ref(self) -> str:
        raise NotImplementedError

    def ensure(self, roles: tuple[str, ...]) -> Any:
        raise NotImplementedError

    def log(self, msg: str) -> None:
        raise NotImplementedError

    def _build_base(self, ref: str) -> None:
        rootfs = self.builds.rootfs(self.key("base"))
        repo, tag = ref.rsplit(":", 1)
        self.log(f"images: importing {rootfs.name}")
        engine.client().api.import_image_from_file(
            str(rootfs),
            repository=repo,
            tag=tag,
            changes=["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        )

    def _build_nats(self, ref: str) -> None:
        self._docker_build(
            ref,
            DOCKER_DIR / "offline/nats/Dockerfile",
            {"": self.builds.go_binaries("nats", self.key("nats"))},
        )

    def _build_toxiproxy(self, ref: str) -> None:
        self._docker_build(
            ref,
            DOCKER_DIR / "offline/toxiproxy/Dockerfile",
            {"": self.builds.go_binaries("toxiproxy", self.key("toxiproxy"))},
        )

    def _build_surrealdb(self, ref: str) -> None:
        folder = DOCKER_DIR / "offline/surrealdb"
        self._docker_build(ref, folder / "Dockerfile", {"surreal": self.surreal_binary()}, base=True)

    def _build_reaper(self, ref: str) -> None:
        folder = DOCKER_DIR / "offline/reaper"
        wheels = self.builds.wheels("reaper", self.spec["reaper"]["requirements"])
        self._docker_build(
            ref,
            folder / "Dockerfile",
            {"wheels": wheels, "reaper.py": folder / "reaper.py"},
            base=True,
            network="none" if self.offline else None,  # officially FROM a pulled python image
        )

    def _build_netsync(self, ref: str) -> None:
        req = ROOT / "netsync" / "requirements.txt"
        lines = [ln.strip() for ln in req.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        wheels = self.builds.wheels("netsync", lines)
        faketime = self.faketime()
        self._docker_build(
            ref,
            DOCKER_DIR / "netsync" / "Dockerfile",
            {"wheels": wheels, "netsync": ROOT / "netsync", "libfaketimeMT.so.1": faketime},
            base=True,
            network="none" if self.offline else None,
        )

    def _build_engine(self, ref: str) -> None:
        """Debian 12's docker.io, its .debs fetched on the host and installed by dpkg with no network."""
        debs = self.builds.deb_files("engine", self.spec["engine"]["debs"])
        folder = DOCKER_DIR / "engine"
        files = {"debs": debs, "entrypoint.sh": folder / "entrypoint.sh"}
        self._docker_build(ref, folder / "Dockerfile", files, base=True)

    def _build_load(self, ref: str) -> None:
        """A remote Locust worker: locust's and msgspec's wheels, and the harness's load code alone."""
        wheels = self.builds.wheels("load", self.spec["load"]["requirements"])
        with tempfile.TemporaryDirectory() as tmp:
            code = Path(tmp) / "harness"
            for name in LOAD_CODE:
                (code / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / "harness" / name, code / name)
            (code / "load" / "__init__.py").write_text('"""The load code of a remote Locust worker."""\n')
            self._docker_build(
                ref,
                DOCKER_DIR / "load" / "Dockerfile",
                {"wheels": wheels, "harness": code},
                base=True,
                network="none" if self.offline else None,
            )

    def faketime(self) -> Path:
        """libfaketime's library for the agents (and SurrealDB under a clock fault), from the Debian
        package netsync's spec pins."""
        debs = self.builds.debs("netsync", self.spec["netsync"]["debs"])
        faketime = next(debs.glob("usr/lib/*/faketime/libfaketimeMT.so.1"), None)
        if faketime is None:
            raise ImageError(f"no libfaketimeMT.so.1 in {debs}: remove that folder and build again")
        return faketime

    def _build_net_sync_ts(self, ref: str) -> None:
        """The TypeScript implementation: Node 22, dist/src compiled on the host, production node_modules,
        and the label solar-chaos.bugs from the compiled config.js's KNOWN_BUGS."""
        pkg = ROOT / self.spec["net-sync-ts"]["package"]
        node = self.builds.node22()
        dist = self.builds.tsc_dist("net-sync-ts", pkg, self.key("net-sync-ts"))
        prod = self.builds.node_modules("net-sync-ts", pkg, dev=False)
        self._docker_build(
            ref,
            DOCKER_DIR / "net-sync-ts" / "Dockerfile",
            {
                "node": node,
                "libfaketimeMT.so.1": self.faketime(),
                "package.json": pkg / "package.json",
                "dist": dist / "dist",
                "node_modules": prod / "node_modules",
            },
            base=True,
            network="none" if self.offline else None,
            labels={BUGS_LABEL: ",".join(self._ts_known_bugs(node, dist, prod))},
        )

    def _ts_known_bugs(self, node: Path, dist: Path, prod: Path) -> list[str]:
        """KNOWN_BUGS of the compiled config.js, asked of Node itself (the dependencies beside it)."""
        with tempfile.TemporaryDirectory(dir=self.builds.cache) as tmp:
            shutil.copytree(dist / "dist", Path(tmp) / "dist")
            (Path(tmp) / "node_modules").symlink_to(prod / "node_modules")
            shutil.copy2(ROOT / self.spec["net-sync-ts"]["package"] / "package.json", Path(tmp))
            config = Path(tmp) / "dist" / "src" / "config.js"
            script = f"console.log(JSON.stringify((await import({json.dumps(config.as_uri())})).KNOWN_BUGS))"
            got = subprocess.run(
                [str(node), "--input-type=module", "-e", script], capture_output=True, text=True, check=False
            )
        if got.returncode != 0:
            raise ImageError(f"cannot read KNOWN_BUGS from net-sync's config.js: {got.stderr.strip()[-600:]}")
        bugs = json.loads(got.stdout)
        if not isinstance(bugs, list) or not all(isinstance(b, str) and b and "," not in b for b in bugs):
            raise ImageError(f"net-sync's KNOWN_BUGS is not a list of flag names: {got.stdout.strip()[:200]}")
        return bugs

    def _docker_build(
        self,
        ref: str,
        dockerfile: Path,
        files: dict[str, Path],
        base: bool = False,
        network: str | None = "none",
        labels: dict[str, str] | None = None,
    ) -> None:
        """Build from a fresh context holding the Dockerfile and `files` (name -> source;
        a source folder under name "" is spread into the context's root)."""
        buildargs = {}
        if base:
            if self.offline:
                self.ensure(("base",))
            buildargs["BASE"] = self._base_ref()
        with tempfile.TemporaryDirectory() as ctx:
            c = Path(ctx)
            shutil.copy2(dockerfile, c / "Dockerfile")
            for name, src in files.items():
                dst = c / name if name else c
                if src.is_dir():
                    shutil.copytree(
                        src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    shutil.copy2(src, dst)
            if "wheels" in files:
                names = sorted(p.name for p in (c / "wheels").glob("*.whl"))
                (c / "wheels" / "requirements.txt").write_text("".join(f"/tmp/wheels/{n}\n" for n in names))
            t0 = time.monotonic()
            try:
                engine.client().images.build(
                    path=ctx,
                    tag=ref,
                    buildargs=buildargs,
                    network_mode=network,
                    rm=True,
                    forcerm=True,
                    labels={IMAGE_LABEL: ref.split("/", 1)[-1].split(":")[0], **(labels or {})},
                )
            except docker.errors.BuildError as e:
                tail = "".join(str(x.get("stream", x.get("error", ""))) for x in list(e.build_log)[-15:])
                raise ImageError(f"docker build of {ref} failed: {e.msg}\n{tail}") from e
            self.builds.record_time(f"docker-build:{ref.split(':')[0]}", time.monotonic() - t0)
