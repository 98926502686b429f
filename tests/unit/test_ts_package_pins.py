"""The TypeScript package's pins (issue 29): every dependency of packages/net-sync at an exact version
that package-lock.json resolves to, the majors the issue names, and Node 22 from scripts/node22.sh. A
`^` or a lock that drifted from package.json would make `npm ci` install something else than was
tested, or fail."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "packages" / "net-sync"

MAJORS = {
    "libp2p": 3,
    "@libp2p/tcp": 11,
    "@chainsafe/libp2p-noise": 17,
    "@libp2p/yamux": 8,
    "@libp2p/identify": 4,
    "@libp2p/floodsub": 11,
    "@nats-io/transport-node": 3,
    "@nats-io/jetstream": 3,
    "surrealdb": 2,
}


def manifest() -> dict:
    return json.loads((PACKAGE / "package.json").read_text())


def test_every_dependency_is_an_exact_version_the_lock_resolves() -> None:
    pkg = manifest()
    lock = json.loads((PACKAGE / "package-lock.json").read_text())
    deps = {**pkg["dependencies"], **pkg["devDependencies"]}
    assert deps, "no dependencies"
    for name, version in deps.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name}: {version!r} is not an exact version"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version, f"{name}: lock differs"
    assert lock["packages"][""]["dependencies"] == pkg["dependencies"]


def test_the_issue_s_majors_and_an_esm_package_for_node_22() -> None:
    pkg = manifest()
    for name, major in MAJORS.items():
        assert int(pkg["dependencies"][name].split(".")[0]) == major, name
    assert pkg["name"] == "@root-solar/net-sync"
    assert pkg["type"] == "module"
    assert pkg["engines"]["node"] == ">=22"
    assert json.loads((PACKAGE / "tsconfig.json").read_text())["compilerOptions"]["strict"] is True
    pin = re.search(r"^NODE_VERSION=(\d+)\.\d+\.\d+$", (ROOT / "scripts" / "node22.sh").read_text(), re.M)
    assert pin is not None and pin.group(1) == "22"
