"""Images are tagged by the hash of their inputs: the same inputs give the same tag,
and a changed input gives a new one (so a stale image is never reused)."""

import shutil

import pytest

from harness import images as images_mod
from harness.images import Images, Mode


@pytest.fixture
def docker_copy(tmp_path, monkeypatch):
    """A copy of docker/, netsync/ and the TypeScript package's inputs whose files a test may change."""
    root = tmp_path / "root"
    shutil.copytree(images_mod.ROOT / "docker", root / "docker")
    shutil.copytree(
        images_mod.ROOT / "netsync", root / "netsync", ignore=shutil.ignore_patterns("__pycache__")
    )
    pkg = images_mod.ROOT / "packages" / "net-sync"
    shutil.copytree(pkg / "src", root / "packages" / "net-sync" / "src")
    for name in ("package.json", "package-lock.json", "tsconfig.json"):
        shutil.copy2(pkg / name, root / "packages" / "net-sync" / name)
    shutil.copytree(images_mod.ROOT / "scripts", root / "scripts")
    monkeypatch.setattr(images_mod, "ROOT", root)
    monkeypatch.setattr(images_mod, "DOCKER_DIR", root / "docker")
    return root


def offline() -> Images:
    return Images(Mode.OFFLINE, log=lambda m: None)


def test_same_inputs_same_tags(docker_copy) -> None:
    a, b = offline(), offline()
    for role in images_mod.ROLES:
        assert a.ref(role) == b.ref(role)
        assert a.ref(role).startswith(f"solar-chaos/{role}:")


def test_a_changed_netsync_source_changes_only_the_netsync_tag(docker_copy) -> None:
    before = {r: offline().ref(r) for r in images_mod.ROLES}
    (docker_copy / "netsync" / "__init__.py").write_text("# changed\n")
    after = {r: offline().ref(r) for r in images_mod.ROLES}
    assert after["netsync"] != before["netsync"]
    assert {r: t for r, t in after.items() if r != "netsync"} == {
        r: t for r, t in before.items() if r != "netsync"
    }


def test_a_changed_base_recipe_changes_every_image_built_on_it(docker_copy) -> None:
    before = {r: offline().ref(r) for r in images_mod.ROLES}
    spec = docker_copy / "docker" / "images.toml"
    spec.write_text(spec.read_text().replace('"ca-certificates"]', '"ca-certificates", "procps"]'))
    after = {r: offline().ref(r) for r in images_mod.ROLES}
    changed = {r for r in images_mod.ROLES if after[r] != before[r]}
    assert changed == {"base", "surrealdb", "reaper", "netsync", "net-sync-ts"}


def test_a_changed_typescript_source_or_lockfile_changes_only_the_net_sync_ts_tag(docker_copy) -> None:
    pkg = docker_copy / "packages" / "net-sync"
    before = {r: offline().ref(r) for r in images_mod.ROLES}
    (pkg / "src" / "config.ts").write_text((pkg / "src" / "config.ts").read_text() + "// changed\n")
    after = {r: offline().ref(r) for r in images_mod.ROLES}
    assert {r for r in images_mod.ROLES if after[r] != before[r]} == {"net-sync-ts"}
    (pkg / "package-lock.json").write_text((pkg / "package-lock.json").read_text() + "\n")
    assert offline().ref("net-sync-ts") != after["net-sync-ts"]
    node22 = docker_copy / "scripts" / "node22.sh"  # Node's version is pinned there
    again = offline().ref("net-sync-ts")
    node22.write_text(node22.read_text().replace("NODE_VERSION=22.", "NODE_VERSION=23."))
    assert offline().ref("net-sync-ts") != again


def test_a_bumped_nats_version_changes_the_nats_tag(docker_copy) -> None:
    spec = docker_copy / "docker" / "images.toml"
    before = offline().ref("nats")
    spec.write_text(spec.read_text().replace('version = "v2.15.2"', 'version = "v2.15.3"'))
    assert offline().ref("nats") != before
    assert offline().ref("nats").startswith("solar-chaos/nats:v2.15.3-")


def test_a_source_edit_leaves_its_old_compiled_sources_for_clean_to_remove(
    docker_copy, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(images_mod, "cache_dir", lambda: tmp_path / "cache")
    before = offline()
    old = before.cache / "build" / f"net-sync-ts-dist-{before.key('net-sync-ts')[:12]}"
    old.mkdir(parents=True)
    assert before.stale_builds() == []  # the current one is kept
    (docker_copy / "packages" / "net-sync" / "src" / "cli.ts").write_text("// edited\n")
    after = offline()
    current = after.cache / "build" / f"net-sync-ts-dist-{after.key('net-sync-ts')[:12]}"
    current.mkdir()
    (after.cache / "build" / "surreal-target").mkdir()  # another product: never stale here
    assert after.stale_builds() == [old]
