"""The net-sync-ts image (packages/net-sync, issue 29) against the real engine: it builds offline from the
cache's products, its entrypoint takes the role as the only argument (docs/contract.md, "Roles and
images"), it says which planted bugs it knows in its label, and libfaketime reaches Node in it."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from harness import engine
from harness.images import BUGS_LABEL, Images
from harness.paths import ROOT

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def ts_image(images: Images) -> str:
    return images.ensure(("net-sync-ts",))["net-sync-ts"]


def run(
    image: str, *args: str, entrypoint: str | None = None, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Exit code and everything the container wrote; removed afterwards."""
    c = engine.client().containers.run(
        image, list(args), entrypoint=entrypoint, environment=env or {}, detach=True
    )
    try:
        code = c.wait(timeout=60)["StatusCode"]
        return code, c.logs(stdout=True, stderr=True).decode(errors="replace")
    finally:
        c.remove(force=True)


def test_an_unknown_role_is_a_usage_error(ts_image: str) -> None:
    code, out = run(ts_image, "scout")
    assert code == 2
    assert "usage: net-sync {agent|orchestrator|projector}" in out


@pytest.mark.skipif(
    not (ROOT / "packages/net-sync/src/roles/agent.ts").exists(), reason="the agent role is not written yet"
)
def test_the_agent_without_its_environment_exits_2_naming_the_variable(ts_image: str) -> None:
    code, out = run(ts_image, "agent")
    assert code == 2, out
    assert "NETSYNC_ORCHESTRATOR" in out


def test_the_image_says_which_planted_bugs_it_knows(images: Images, ts_image: str) -> None:
    labels = engine.client().images.get(ts_image).labels
    assert BUGS_LABEL in labels
    known = images.known_bugs(ts_image)
    assert known is not None and all(flag and "," not in flag for flag in known)


def test_libfaketime_moves_nodes_clock(ts_image: str) -> None:
    """The agents' clock faults work by preloading libfaketime, as for netsync's CPython (docs/clock.md)."""
    script = "console.log(Math.round((Date.now() / 1000 - Number(process.argv[1])) / 60))"
    code, out = run(
        ts_image,
        "-e",
        script,
        str(time.time()),  # the host's clock
        entrypoint="node",
        env={"LD_PRELOAD": "/usr/lib/faketime/libfaketimeMT.so.1", "FAKETIME": "-3600"},
    )
    assert code == 0, out
    assert out.strip().splitlines()[-1] == "-60"  # minutes: Node's clock an hour behind the host's


def test_pytest_skips_a_planted_bug_the_implementation_lacks_before_any_system(
    ts_image: str, tmp_path
) -> None:
    """A flag absent from the image's label must not run silently clean: pytest skips with the reason."""
    flag = "no-such-flag-anywhere"
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "s.yaml").write_text("name: s\nload: {rate: 5, duration: 5s}\n")
    cmd = [sys.executable, "-m", "pytest", "-p", "harness.plugin", "-rs", "-q", str(folder)]
    got = subprocess.run(
        [*cmd, "--sut", "net-sync-ts", "--buggify", flag],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert "SKIPPED [1]" in got.stdout, got.stdout
    assert f"--buggify {flag}: net-sync-ts has no such planted bug" in got.stdout
