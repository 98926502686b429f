"""`solar-chaos check` on a run directory built as an attacker would (issue 27): outputs never written
through a link, and exit 2 with one line naming the file when it cannot judge, never a traceback or
exit 1 (its inputs: test_hostile_inputs.py). The CLI runs in a subprocess where it could hang."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import store
from harness.cli import main as cli
from tests.unit.rundirs import valid_run

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = "a file of the user's, outside the run directory\n"


def check(*args: str | Path, timeout: float = 60, user: int | None = None) -> subprocess.CompletedProcess:
    """`solar-chaos check ARGS` in its own process: a hang is a failed test, not a stuck suite."""
    prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user is not None else []
    return subprocess.run(
        [*prefix, sys.executable, "-m", "harness.cli", "check", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        errors="backslashreplace",
        timeout=timeout,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def judged_nothing(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr, done.stderr


# Outputs: never through a link


@pytest.mark.parametrize("name", [store.VERDICT, store.REPORT, store.INDEX])
def test_an_output_name_linked_outside_is_refused_and_its_target_untouched(tmp_path: Path, name: str) -> None:
    path = valid_run().write(tmp_path)
    target = tmp_path / "precious.txt"
    target.write_text(OUTSIDE)
    (path / name).symlink_to(target)
    done = check(path)
    judged_nothing(done)
    assert f"{path / name}: is a symbolic link" in done.stderr
    assert target.read_text() == OUTSIDE
    assert (path / name).is_symlink()
    assert not (path / store.VERDICT).exists() or (path / store.VERDICT).is_symlink()


def test_a_dangling_link_at_verdict_json_creates_nothing_where_it_points(tmp_path: Path) -> None:
    path = valid_run().write(tmp_path)
    target = tmp_path / "not-yet" / ".." / "planted.py"
    (path / store.VERDICT).symlink_to(target)
    judged_nothing(check(path))
    assert not (tmp_path / "planted.py").exists()


def test_a_link_at_a_run_folders_index_html_refuses_the_folder(tmp_path: Path) -> None:
    valid_run().write(tmp_path / "run-1", "a")
    valid_run().write(tmp_path / "run-1", "b")
    target = tmp_path / "precious.txt"
    target.write_text(OUTSIDE)
    (tmp_path / "run-1" / store.INDEX).symlink_to(target)
    done = check(tmp_path / "run-1")
    judged_nothing(done)
    assert f"{tmp_path / 'run-1' / store.INDEX}: is a symbolic link" in done.stderr
    assert target.read_text() == OUTSIDE


def test_a_hard_link_at_verdict_json_is_replaced_not_written_into(tmp_path: Path) -> None:
    path = valid_run().write(tmp_path)
    target = tmp_path / "precious.txt"
    target.write_text(OUTSIDE)
    os.link(target, path / store.VERDICT)
    done = check(path)
    assert done.returncode == 0, done
    assert target.read_text() == OUTSIDE
    assert '"valid": true' in (path / store.VERDICT).read_text()


@pytest.mark.parametrize("name", [store.VERDICT, store.REPORT, store.INDEX])
@pytest.mark.parametrize("link", ["to a file", "dangling", "to a directory"])
def test_write_output_never_writes_through_a_link(tmp_path: Path, name: str, link: str) -> None:
    """What `check` and `report` write goes through store.write_output (report wires report.html and
    index.html to it): a link at the name is refused, whatever it points to."""
    target = tmp_path / "elsewhere"
    if link == "to a file":
        target.write_text(OUTSIDE)
    elif link == "to a directory":
        target.mkdir()
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / name).symlink_to(target)
    with pytest.raises(store.OutputError, match="is a symbolic link"):
        store.write_output(folder / name, "<html>planted</html>")
    if link == "to a file":
        assert target.read_text() == OUTSIDE
    elif link == "dangling":
        assert not target.exists()
    else:
        assert list(target.iterdir()) == []
    assert [p.name for p in folder.iterdir()] == [name]  # no temporary file left behind


@pytest.mark.parametrize("name", [store.VERDICT, store.REPORT])
def test_a_directory_at_an_outputs_name_is_refused(tmp_path: Path, name: str) -> None:
    path = valid_run().write(tmp_path)
    (path / name).mkdir()
    (path / name / "kept").write_text("x")
    done = check(path)
    judged_nothing(done)
    assert f"{path / name}: is a directory" in done.stderr
    assert (path / name / "kept").read_text() == "x"


# Exit 2, never 1 and never a traceback, when it cannot judge


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder another user can enter (pytest's own tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="solar-chaos-hostile-"))
    path.chmod(0o755)
    yield path
    for p in [path, *path.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(path)


def test_a_read_only_directory_exits_2_and_the_others_are_still_judged(shared_dir: Path) -> None:
    """chmod a-w; as root (who writes anyway) the check runs as nobody, who cannot."""
    folder = shared_dir / "run-1"
    locked = valid_run().write(folder, "a-locked")
    fine = valid_run().write(folder, "b-fine")
    for p in (folder, fine):
        p.chmod(0o777)  # the unprivileged user may write there
    locked.chmod(0o555)
    done = check(folder, user=65534 if os.geteuid() == 0 else None)
    judged_nothing(done)
    assert f"{locked / store.VERDICT}: cannot write: Permission denied" in done.stderr
    assert f"valid      {fine}" in done.stdout  # the scenario after it is judged all the same
    assert not (locked / store.VERDICT).exists()


def test_a_read_only_mount_exits_2_naming_verdict_json(tmp_path: Path) -> None:
    """What root cannot write either: the run directory bound read-only (a mount namespace of its own;
    unshare -r maps an unprivileged user to root in it)."""
    path = valid_run().write(tmp_path)
    mount = f"mount --bind -o ro {path} {path}"
    cmd = f'{mount} && exec "$0" -m harness.cli check {path}'
    flags = "-m" if os.geteuid() == 0 else "-rm"
    done = subprocess.run(
        ["unshare", flags, "sh", "-c", cmd, sys.executable],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    judged_nothing(done)
    assert f"{path / store.VERDICT}: cannot write: Read-only file system" in done.stderr


HUGE = "9" * 5000
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("field", "scenario", "said"),
    [
        ("budgets.intent_ms", '{"budgets": {"intent_ms": 1e999}}', "got inf"),
        ("budgets.commit_ms", '{"budgets": {"commit_ms": -1e999}}', "got -inf"),
        ("budgets.intent_ms", '{"budgets": {"intent_ms": NaN}}', "got nan"),
        ("budgets.recovery_grace_s", '{"budgets": {"recovery_grace_s": Infinity}}', "got inf"),
        ("budgets.intent_ms", f'{{"budgets": {{"intent_ms": {HUGE}}}}}', "an integer of 5000 digits"),
        ("budgets.intent_ms", f'{{"budgets": {{"intent_ms": -{HUGE[:4000]}}}}}', "an integer of 4000 digits"),
        ("topology.buffer_cap", '{"topology": {"buffer_cap": 123456789012345678901234}}', "got 1234"),
        ("load.duration", '{"load": {"duration": 1e999}}', "got inf"),
        ("load.duration", f'{{"load": {{"duration": {HUGE[:4000]}}}}}', "an integer of 4000 digits"),
        ("expect.min_committed", f'{{"expect": {{"min_committed": {HUGE[:300]}}}}}', "of 300 digits"),
        ("faults[1].at", '{"faults": [{"at": 1}, {"at": 1e400}]}', "got inf"),
        ("budgets", f'{{"budgets": {DEEP}}}', "nested deeper than 64 levels"),
        ("name", f'{{"name": "x", "name": {DEEP}}}', "nested deeper than 64 levels"),
        ("expect", '{"expect": ' + "[" * 900 + "]" * 900 + "}", "nested deeper than 64 levels"),
        ("load", '{"load": ' + '{"a":' * 70 + "1" + "}" * 70 + "}", "nested deeper than 64 levels"),
    ],
)
def test_scenario_json_numbers_no_checker_can_use_exit_2_naming_the_field(
    tmp_path: Path, capsys, field: str, scenario: str, said: str
) -> None:
    path = valid_run().write(tmp_path)
    (path / store.SCENARIO).write_text(scenario)
    assert cli(["check", str(path)]) == 2
    out = capsys.readouterr().out
    assert f"{path / store.SCENARIO}" in out and f"{field}: " in out and said in out, out


def test_a_scenario_json_of_deep_nesting_fails_in_one_line_at_its_column(tmp_path: Path) -> None:
    path = valid_run().write(tmp_path)
    (path / store.SCENARIO).write_text('{\n "seed": 1,\n "budgets": ' + DEEP + "}")
    done = check(path)
    judged_nothing(done)
    assert f"{path / store.SCENARIO}:3: budgets: nested deeper than 64 levels (column 76)" in done.stdout


def test_an_unexpected_error_in_one_directory_is_one_line_and_exit_2(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    import harness.checkers

    a = valid_run().write(tmp_path, "a")
    b = valid_run().write(tmp_path, "b")
    real = harness.checkers.write_verdict

    def crashes_on_a(run_dir: Path) -> dict:
        if run_dir == a:
            raise MemoryError("a run directory too big for this machine")
        return real(run_dir)

    monkeypatch.setattr(harness.checkers, "write_verdict", crashes_on_a)
    assert cli(["check", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"solar-chaos: {a}: could not check: MemoryError: a run directory too big for this machine"
        " (SOLAR_CHAOS_DEBUG=1 shows where)"
    ]
    assert captured.out.splitlines() == [f"valid      {b}"]
    monkeypatch.setenv("SOLAR_CHAOS_DEBUG", "1")
    with pytest.raises(MemoryError):
        cli(["check", str(tmp_path)])


def test_a_checker_whose_waiver_crashes_is_unknown_not_a_crash(tmp_path: Path) -> None:
    from harness.checkers import Checker, Result, judge

    def waived(settings: object) -> str | None:
        raise ZeroDivisionError("a waiver's bug")

    checker = Checker("odd", lambda run: Result({"n": 1}), (), waived=waived)
    verdict = judge(valid_run().write(tmp_path), (checker,))
    assert verdict["valid"] == "unknown"
    assert verdict["checks"]["odd"]["error"].startswith("ZeroDivisionError: a waiver's bug")


@pytest.mark.parametrize("limit", ["-1", "x", "1.5"])
def test_a_limit_that_is_no_count_is_a_usage_error(tmp_path: Path, capsys, limit: str) -> None:
    with pytest.raises(SystemExit) as exit:
        cli(["check", str(valid_run().write(tmp_path)), "--limit", limit])
    assert exit.value.code == 2
    assert "--limit: " in capsys.readouterr().err


def test_a_path_that_names_nothing_does_not_stop_the_others(tmp_path: Path, capsys) -> None:
    path = valid_run().write(tmp_path)
    assert cli(["check", str(tmp_path / "nothing"), str(path)]) == 2
    captured = capsys.readouterr()
    assert f"{tmp_path / 'nothing'}: no such directory" in captured.err
    assert captured.out.splitlines() == [f"valid      {path}"]


def test_a_run_folder_it_cannot_list_exits_2_naming_it(shared_dir: Path) -> None:
    folder = shared_dir / "run-1"
    valid_run().write(folder, "a")
    folder.chmod(0o311)  # enterable, not listable
    done = check(folder, user=65534 if os.geteuid() == 0 else None)
    judged_nothing(done)
    assert str(folder) in done.stderr and "Permission denied" in done.stderr


def test_json_gives_each_directory_its_line_even_one_it_cannot_judge(tmp_path: Path, capsys) -> None:
    linked = valid_run().write(tmp_path, "a-linked")
    (linked / store.VERDICT).symlink_to(tmp_path / "elsewhere")
    fine = valid_run().write(tmp_path, "b-fine")
    assert cli(["check", "--json", str(tmp_path), str(tmp_path / "nothing")]) == 2
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(v["dir"], v["valid"]) for v in lines] == [
        (str(linked), "unknown"),
        (str(fine), True),
        (str(tmp_path / "nothing"), "unknown"),
    ]
    assert lines[0]["error"].startswith(f"{linked / store.VERDICT}: is a symbolic link")
    assert lines[2]["error"].startswith(f"{tmp_path / 'nothing'}: no such directory")


def test_a_reader_that_goes_away_ends_check_quietly(tmp_path: Path) -> None:
    """`solar-chaos check reports/ | head -1`: exit as SIGPIPE would end a Unix tool, no traceback, no
    'Exception ignored' (Python's own exit 120 when its last flush fails)."""
    for name in ("a", "b", "c"):
        valid_run().write(tmp_path, name)
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "check", "--json", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 128 + 13, err
    assert err == ""


def test_main_turns_any_commands_unexpected_error_into_one_line(capsys, monkeypatch) -> None:
    import harness.scenario

    def broken() -> dict:
        raise RuntimeError("a bug\x1b[2K")

    monkeypatch.setattr(harness.scenario, "json_schema", broken)
    assert cli(["schema"]) == 2
    assert capsys.readouterr().err == (
        "solar-chaos: schema: unexpected RuntimeError: a bug\\x1b[2K (SOLAR_CHAOS_DEBUG=1 shows where)\n"
    )
    monkeypatch.setenv("SOLAR_CHAOS_DEBUG", "1")
    with pytest.raises(RuntimeError):
        cli(["schema"])
