"""The slow products that the offline images are built from, kept in the cache folder under a name that
holds the hash of their inputs, so that a second build compiles nothing and deleting an image forces no
recompile: the Debian root filesystem (debootstrap), the Go binaries (NATS, Toxiproxy), the SurrealDB
server (cargo), the wheels (pip), Debian packages (libfaketime's files; the engine image's .debs of
docker.io), and for the TypeScript package Node 22 (scripts/node22.sh), its node_modules (`npm ci`) and its
compiled dist/.
Each is written under a temporary name and renamed when whole; every
build's time is kept in build-times.json (the first, cold, one beside the last)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness.errors import ImageError
from harness.paths import ROOT

IMAGE_PYTHON = (3, 11)  # Debian bookworm's and python:3.11-slim's: wheels must match.
Log = Callable[[str], None]


def digest(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _part(out: Path) -> Path:
    """Where this process writes a product before it is complete: its own name, so that two builds of the
    same product at once (two harness processes) never write, or rename, each other's."""
    return out.with_name(f"{out.name}.part-{os.getpid()}")


def _settle(part: Path, out: Path) -> None:
    """A complete product into place in one rename. Another process may have put the same product (same
    inputs, same key) there first: its copy stays, ours goes."""
    try:
        os.replace(part, out) if part.is_file() else part.rename(out)
    except OSError:
        if not out.exists():
            raise
        shutil.rmtree(part) if part.is_dir() else part.unlink()


def _keep(built: Path, out: Path) -> None:
    """Copy a finished build product into the cache under its final name in one rename,
    so an interrupted build never leaves a folder that looks complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(built, _part(out))
    _settle(_part(out), out)


class BuildCache:
    """`spec` is docker/images.toml; each product's `key` is its role's input hash (Images.key)."""

    def __init__(self, cache: Path, spec: dict, log: Log) -> None:
        self.cache = cache
        self.spec = spec
        self.log = log

    def rootfs(self, key: str) -> Path:
        """A Debian minbase root filesystem with Python, as a tar in the cache."""
        s = self.spec["base"]
        out = self.cache / "rootfs" / f"base-{key[:12]}.tar"
        if out.exists():
            return out
        if not shutil.which("debootstrap"):
            raise ImageError(
                "debootstrap is missing, needed to build the offline base image; "
                "fix: sudo apt-get install debootstrap"
            )
        if os.geteuid() != 0:
            raise ImageError("debootstrap needs root: run `sudo solar-chaos images` once")
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            root = Path(tmp) / "root"
            t0 = time.monotonic()
            cmd = [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(s['include'])}",
                s["suite"],
                str(root),
                s["mirror"],
            ]
            self.run(cmd, "debootstrap", log_name="debootstrap.log")
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for p in (root / junk).glob("*"):
                    if p.is_file():
                        p.unlink()
            part = _part(out)
            self.run(["tar", "-C", str(root), "-cf", str(part), "."], "tar rootfs")
            _settle(part, out)
            self.record_time("debootstrap", time.monotonic() - t0)
        return out

    def go_binaries(self, role: str, key: str) -> Path:
        s = self.spec[role]
        out = self.cache / "bin" / f"{role}-{s['version']}-{key[:12]}"
        if out.exists():
            return out
        if not shutil.which("go"):
            raise ImageError(f"Go is missing, needed to build {role} offline; install Go >= 1.24")
        with tempfile.TemporaryDirectory(dir=self.cache) as tmp:
            env = {
                **os.environ,
                "CGO_ENABLED": "0",
                "GOTOOLCHAIN": "local",
                "GOBIN": tmp,
                "GOFLAGS": "-trimpath",
            }
            pkgs = [f"{p}@{s['version']}" for p in s["packages"]]
            t0 = time.monotonic()
            self.run(["go", "install", "-ldflags=-s -w", *pkgs], f"go install {role}", env=env)
            self.record_time(f"go:{role}", time.monotonic() - t0)
            _keep(Path(tmp), out)
        return out

    def surreal_binary(self, key: str) -> Path:
        """The compiled `surreal` binary, from the cache or compiled now (about 14 min cold, 2 cores)."""
        s = self.spec["surrealdb"]
        crate = ROOT / s["crate"]
        out = self.cache / "bin" / f"surreal-{s['version']}-{key[:12]}" / "surreal"
        if out.exists():
            return out
        if not shutil.which("cargo"):
            raise ImageError("cargo is missing, needed to compile SurrealDB offline; install Rust >= 1.89")
        target = self.cache / "build" / "surreal-target"
        env = {**os.environ, "CARGO_TARGET_DIR": str(target)}
        self.log(
            "images: compiling the SurrealDB server from crates.io "
            "(about 14 min cold on 2 cores with nothing else running, once; cached after)"
        )
        t0 = time.monotonic()
        self.run(
            ["cargo", "build", "--release", "--locked", "--manifest-path", str(crate / "Cargo.toml")],
            "cargo build surreal",
            env=env,
            log_name="surreal-build.log",
            heartbeat=60,
        )
        self.record_time("cargo:surreal", time.monotonic() - t0)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(target / "release" / "surreal", _part(out))
        _settle(_part(out), out)
        return out

    def debs(self, name: str, packages: list[str]) -> Path:
        """Debian packages (`name=version`) unpacked into one folder on the host, for an image to copy
        files from: images build with no network, and the official python base has no apt lists."""
        key = digest({"debs": packages})[:12]
        out = self.cache / "debs" / f"{name}-{key}"
        if out.exists():
            return out
        files = self.deb_files(name, packages)
        with tempfile.TemporaryDirectory(dir=self.cache) as tmp:
            root = Path(tmp) / "root"
            for deb in sorted(files.glob("*.deb")):
                self.run(["dpkg-deb", "-x", str(deb), str(root)], f"dpkg-deb {deb.name}")
            _keep(root, out)
        return out

    def deb_files(self, name: str, packages: list[str]) -> Path:
        """Debian packages (`name=version`) as .deb files in one folder, fetched on the host by `apt-get
        download` from the mirror it reaches, for an image that installs them with dpkg (no network)."""
        key = digest({"debs": packages})[:12]
        out = self.cache / "debs" / f"{name}-files-{key}"
        if out.exists():
            return out
        for tool in ("apt-get", "dpkg-deb"):
            if not shutil.which(tool):
                raise ImageError(f"{tool} is missing, needed to fetch {', '.join(packages)}; run on Debian")
        with tempfile.TemporaryDirectory(dir=self.cache) as tmp:
            got = Path(tmp)
            t0 = time.monotonic()
            try:
                self.run(["apt-get", "download", *packages], f"apt-get download {name}", cwd=got)
            except ImageError:  # no package lists yet (a fresh machine): fetch them once and try again
                self.run(["apt-get", "update", "-qq"], "apt-get update")
                self.run(["apt-get", "download", *packages], f"apt-get download {name}", cwd=got)
            self.record_time(f"debs:{name}", time.monotonic() - t0)
            _keep(got, out)
        return out

    def wheels(self, name: str, requirements: list[str]) -> Path:
        """Wheels for the image's Python, built on the host (images build with no network)."""
        if sys.version_info[:2] != IMAGE_PYTHON:
            raise ImageError(
                f"wheels for the images must be built by Python {IMAGE_PYTHON[0]}.{IMAGE_PYTHON[1]} "
                f"(this is {sys.version_info[0]}.{sys.version_info[1]}); run through `make`"
            )
        key = digest({"req": requirements, "py": list(IMAGE_PYTHON), "plat": sys.platform})[:12]
        out = self.cache / "wheels" / f"{name}-{key}"
        if out.exists():
            return out
        with tempfile.TemporaryDirectory(dir=self.cache) as tmp:
            req = Path(tmp) / "requirements.txt"
            req.write_text("\n".join(requirements) + "\n")
            t0 = time.monotonic()
            self.run(
                [sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", tmp, "-r", str(req)],
                f"pip wheel {name}",
            )
            self.record_time(f"wheels:{name}", time.monotonic() - t0)
            _keep(Path(tmp), out)
        return out

    def node22(self) -> Path:
        """Node 22's binary from the npm registry, installed once into the cache by scripts/node22.sh."""
        env = {**os.environ, "NODE22_CACHE": str(self.cache / "node22")}
        got = subprocess.run(
            [str(ROOT / "scripts" / "node22.sh")], env=env, capture_output=True, text=True, check=False
        )
        if got.returncode != 0:
            raise ImageError(f"scripts/node22.sh failed (exit {got.returncode}): {got.stderr.strip()[-600:]}")
        return Path(got.stdout.strip())

    def node_modules(self, name: str, package: Path, dev: bool) -> Path:
        """`npm ci` (`--omit=dev` unless `dev`) of `package`'s package.json and package-lock.json, in a cache
        folder keyed by their hash and Node's version, never in the checkout; returns that folder (its
        node_modules inside)."""
        files = [package / "package.json", package / "package-lock.json"]
        node = self.node22()
        key = digest({"lock": [hashlib.sha256(f.read_bytes()).hexdigest() for f in files], "node": node.name})
        kind = "dev" if dev else "prod"
        out = self.cache / "npm" / f"{name}-{kind}-{key[:12]}"
        if out.exists():
            return out
        if not shutil.which("npm"):
            raise ImageError(f"npm is missing, needed to fetch {name}'s dependencies; fix: apt install npm")
        with tempfile.TemporaryDirectory(dir=self.cache) as tmp:
            for f in files:
                shutil.copy2(f, Path(tmp) / f.name)
            env = {**os.environ, "PATH": f"{node.parent}:{os.environ.get('PATH', '')}"}
            cmd = ["npm", "ci", "--no-audit", "--no-fund", *([] if dev else ["--omit=dev"])]
            t0 = time.monotonic()
            self.run(cmd, f"npm ci {name} {kind}", env=env, cwd=Path(tmp))
            self.record_time(f"npm:{name}-{kind}", time.monotonic() - t0)
            _keep(Path(tmp), out)
        return out

    def stale_dists(self, name: str, key: str) -> list[Path]:
        """The compiled-source folders of `name` (tsc_dist) that `key`, the current input hash, no longer
        names: each source edit leaves one behind."""
        keep = self.cache / "build" / f"{name}-dist-{key[:12]}"
        return sorted(p for p in (self.cache / "build").glob(f"{name}-dist-*") if p != keep)

    def tsc_dist(self, name: str, package: Path, key: str) -> Path:
        """The package's src/ compiled by its own tsconfig.json and TypeScript (the dev dependencies), into
        a cache folder keyed by `key` (the image's input hash): the checkout's dist/ is left alone, which
        other builds rewrite. Returns the folder holding dist/src."""
        out = self.cache / "build" / f"{name}-dist-{key[:12]}"
        if out.exists():
            return out
        dev = self.node_modules(name, package, dev=True)
        node = self.node22()
        with tempfile.TemporaryDirectory(dir=self.cache) as tmp:
            work = Path(tmp)
            for f in ("package.json", "tsconfig.json"):
                shutil.copy2(package / f, work / f)
            shutil.copytree(package / "src", work / "src")
            (work / "node_modules").symlink_to(dev / "node_modules")
            t0 = time.monotonic()
            tsc = dev / "node_modules" / "typescript" / "bin" / "tsc"
            self.run([str(node), str(tsc), "-p", str(work / "tsconfig.json")], f"tsc {name}", cwd=work)
            self.record_time(f"tsc:{name}", time.monotonic() - t0)
            (work / "node_modules").unlink()
            _keep(work / "dist", out / "dist")
        return out

    def run(
        self,
        cmd: list[str],
        what: str,
        env: dict | None = None,
        log_name: str | None = None,
        heartbeat: float | None = None,
        cwd: Path | None = None,
    ) -> None:
        logs = self.cache / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / (log_name or f"{what.replace(' ', '-').replace(':', '')}.log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
            stop = threading.Event()
            if heartbeat:
                t0 = time.monotonic()

                def beat() -> None:
                    while not stop.wait(heartbeat):
                        self.log(f"images: {what}: {int(time.monotonic() - t0)} s so far (log: {log_path})")

                threading.Thread(target=beat, daemon=True).start()
            try:
                rc = proc.wait()
            finally:
                stop.set()
        if rc != 0:
            tail = log_path.read_text(errors="replace").splitlines()[-20:]
            raise ImageError(f"{what} failed (exit {rc}); last lines of {log_path}:\n" + "\n".join(tail))

    def record_time(self, what: str, seconds: float) -> None:
        """Keep the measured build times, so cold-build figures are on record."""
        path = self.cache / "build-times.json"
        try:
            times = json.loads(path.read_text())
        except (OSError, ValueError):
            times = {}
        entry = {"seconds": round(seconds, 1), "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        # The first measurement in a cache is the cold one; keep it beside the last.
        times[what] = {"first": times.get(what, {}).get("first", entry), "last": entry}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(times, indent=1, sort_keys=True) + "\n")
        self.log(f"images: {what} took {seconds:.1f} s")
