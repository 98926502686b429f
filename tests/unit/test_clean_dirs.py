"""`solar-chaos clean`'s host side (remove_dead_dirs): it removes the folders of dead runs that the harness
made in SOLAR_CHAOS_STATE and nothing else (not other people's folders, not what a link points at), and
refuses a SOLAR_CHAOS_STATE that is `/`, a home folder or not a directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.engine import new_run_id, owner_token
from harness.errors import TopologyError
from harness.paths import StateDirError, runs_state_dir
from harness.topology import disks
from harness.topology.disks import MARKER, OWNER, RunDisks, remove_dead_dirs

# pid_max is at most 2**22 on Linux: no process of this host has this pid.
DEAD = f"{owner_token().split(':')[0]}:{2**22 + 7}:1"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SOLAR_CHAOS_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    return tmp_path / "state"


def run_dir(owner: str | None = None) -> Path:
    """A run's folder as the harness makes it; `owner` rewrites its owner (a dead one)."""
    d = RunDisks(new_run_id())
    d.file("nats.conf", "listen: 4222\n")
    if owner is not None:
        (d.dir / OWNER).write_text(owner)
    return d.dir


def tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): p.read_text() if p.is_file() else "<dir>"
        for p in sorted(folder.rglob("*"))
    }


def test_a_dead_runs_folder_goes_and_a_live_ones_stays(state: Path) -> None:
    dead, live = run_dir(owner=DEAD), run_dir()
    assert (dead / MARKER).read_text().strip() == dead.name
    assert remove_dead_dirs() == [dead]
    assert not dead.exists() and (live / "nats.conf").exists()
    assert remove_dead_dirs(everything=True) == [live]
    assert not live.exists()


def test_a_run_folder_whose_owner_file_was_never_written_is_dead(state: Path) -> None:
    d = run_dir()
    (d / OWNER).unlink()  # the harness was killed between the marker and the owner file
    assert remove_dead_dirs() == [d]


def test_folders_the_harness_did_not_make_stay_however_old(state: Path, tmp_path: Path) -> None:
    state.mkdir()
    photos = state / "photos"
    (photos / "2019").mkdir(parents=True)
    (photos / "2019" / "a.jpg").write_text("jpg")
    (photos / MARKER).write_text("photos")  # a marker, but not a name of a run id
    unmarked = state / new_run_id()  # named like a run, dead owner, no marker: another tool's, or older
    unmarked.mkdir()
    (unmarked / OWNER).write_text(DEAD)
    (unmarked / "data").write_text("theirs")
    other_id = state / new_run_id()  # the marker names another run
    other_id.mkdir()
    (other_id / MARKER).write_text(new_run_id())
    linked = state / new_run_id()  # the marker is a link to a file that holds the right name
    linked.mkdir()
    (tmp_path / "name").write_text(linked.name)
    (linked / MARKER).symlink_to(tmp_path / "name")
    as_dir = state / new_run_id()  # the marker is a folder
    (as_dir / MARKER).mkdir(parents=True)
    fifo = state / new_run_id()  # the marker is a FIFO: never waited on
    fifo.mkdir()
    os.mkfifo(fifo / MARKER)
    (state / new_run_id()).write_text("a file named like a run")
    before = tree(state)
    assert remove_dead_dirs(everything=True) == []
    assert tree(state) == before


def test_a_link_inside_a_dead_runs_folder_is_removed_not_followed(state: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "docs").mkdir()
    (home / "docs" / "thesis.tex").write_text("years of work")
    dead = run_dir(owner=DEAD)
    (dead / "nats").mkdir()
    (dead / "nats" / "home").symlink_to(home)
    (dead / "thesis").symlink_to(home / "docs" / "thesis.tex")
    (dead / "root").symlink_to("/")
    assert remove_dead_dirs() == [dead]
    assert not dead.exists()
    assert (home / "docs" / "thesis.tex").read_text() == "years of work"


def test_a_link_named_like_a_run_is_not_followed(state: Path, tmp_path: Path) -> None:
    state.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    name = new_run_id()
    (elsewhere / MARKER).write_text(name)
    (elsewhere / OWNER).write_text(DEAD)
    (elsewhere / "data").write_text("theirs")
    (state / name).symlink_to(elsewhere)
    assert remove_dead_dirs(everything=True) == []
    assert (elsewhere / "data").read_text() == "theirs" and (state / name).is_symlink()


def test_a_dead_runs_folder_with_a_mount_inside_stays(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mount clean could not unmount (any kind, not only faultfs): rmtree would reach into it."""
    dead = run_dir(owner=DEAD)
    inside = str(dead / "nats" / "mnt")
    monkeypatch.setattr(disks, "mount_table", lambda: [(b"fuse.sshfs", inside, "host:/")])
    assert remove_dead_dirs() == []
    assert dead.exists()


def test_no_state_folder_yet_is_nothing_to_clean(state: Path) -> None:
    assert not state.exists()
    assert remove_dead_dirs() == []


def test_a_run_id_the_harness_does_not_make_gets_no_folder(state: Path) -> None:
    with pytest.raises(TopologyError, match="not one the harness makes"):
        RunDisks("../../home")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("/", "is the root folder"),
        ("//", "is the root folder"),
        ("/tmp/..", "is the root folder"),
        ("{home}", "is your home folder"),
        ("{home}/.", "is your home folder"),
        ("{home}/sub/..", "is your home folder"),
        ("{link_to_home}", "is your home folder"),
        ("{tmp}", "holds your home folder"),
        ("{file}", "exists and is not a directory"),
        ("{dangling}", "does not exist"),
    ],
)
def test_a_state_folder_that_is_not_the_harnesss_own_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    home = tmp_path / "home"
    (home / "sub").mkdir(parents=True)
    (home / "keep").write_text("mine")
    (tmp_path / "link_to_home").symlink_to(home)
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    monkeypatch.setenv("HOME", str(home))
    value = value.format(
        home=home,
        tmp=tmp_path,
        link_to_home=tmp_path / "link_to_home",
        file=tmp_path / "file",
        dangling=tmp_path / "dangling",
    )
    monkeypatch.setenv("SOLAR_CHAOS_STATE", value)
    for call in (runs_state_dir, remove_dead_dirs, lambda: RunDisks(new_run_id())):
        with pytest.raises(StateDirError) as e:
            call()
        assert str(e.value).startswith(f"SOLAR_CHAOS_STATE={value} ") and problem in str(e.value)
        assert "directory of its own" in str(e.value)
    assert (home / "keep").read_text() == "mine"


def test_the_home_of_the_password_database_counts_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pwd

    real_home = pwd.getpwuid(os.getuid()).pw_dir
    monkeypatch.setenv("HOME", str(tmp_path))  # HOME says otherwise
    monkeypatch.setenv("SOLAR_CHAOS_STATE", real_home)
    with pytest.raises(StateDirError, match="is your home folder"):
        runs_state_dir()


def test_the_default_state_folder_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOLAR_CHAOS_STATE", raising=False)
    monkeypatch.setenv("SOLAR_CHAOS_CACHE", str(tmp_path / "cache"))
    assert runs_state_dir() == tmp_path / "cache" / "runs"


def test_a_run_whose_volume_stays_mounted_leaves_its_folder_to_clean(state: Path) -> None:
    class StillMounted:
        def close(self) -> None:
            raise RuntimeError("could not unmount (try: umount -l ...)")

    d = RunDisks(new_run_id())
    d.file("nats.conf", "listen: 4222\n")
    d.volumes["nats"] = StillMounted()  # type: ignore[assignment]
    with pytest.raises(TopologyError, match="left for `solar-chaos clean`"):
        d.close()
    assert (d.dir / "nats.conf").exists()
    d.close()  # once the volume is gone, the folder goes with the next close
    assert not d.dir.exists()


def test_a_run_of_another_host_is_kept_unless_everything_goes(state: Path) -> None:
    """This host cannot see another host's processes (a shared SOLAR_CHAOS_STATE on NFS, say)."""
    d = run_dir(owner="some-other-host:1:1")
    assert remove_dead_dirs() == []
    assert remove_dead_dirs(everything=True) == [d]


def test_clean_refuses_a_shared_state_folder_before_it_touches_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The refusal comes first: a clean pointed at `/` removes no container, no mount, no folder.
    from harness import cli, engine

    monkeypatch.setenv("SOLAR_CHAOS_STATE", "/")

    def engine_asked() -> None:
        raise AssertionError("clean asked the engine for runs before refusing SOLAR_CHAOS_STATE")

    monkeypatch.setattr(engine, "list_runs", engine_asked)
    assert cli.main(["clean"]) == 2
    assert "SOLAR_CHAOS_STATE=/" in capsys.readouterr().err
