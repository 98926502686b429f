"""`solar-chaos check` reads only regular files, in lines of bounded length (issue 27): a FIFO in place
of a file of the run directory or in logs/ is refused, not waited on (the CLI runs under a timeout); a
device or an endless line ends in an error naming it, in bounded memory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import store
from harness.cli import main as cli
from tests.unit.test_hostile_check import ROOT, check, judged_nothing, valid_run


@pytest.mark.parametrize("name", [store.HISTORY, store.STREAM, store.STORE, store.SAMPLES])
def test_a_fifo_in_place_of_a_file_is_refused_not_waited_on(tmp_path: Path, name: str) -> None:
    path = valid_run().write(tmp_path)
    (path / name).unlink()
    os.mkfifo(path / name)
    done = check(path, timeout=30)
    judged_nothing(done)
    assert f"{path / name}: not a regular file (a FIFO)" in done.stdout


@pytest.mark.parametrize("kind", ["a FIFO", "a character device", "a directory", "dangling"])
def test_a_scenario_json_that_is_no_file_is_named_and_its_neighbours_judged(
    tmp_path: Path, kind: str
) -> None:
    """Not passed over as if the folder held no scenario: named, exit 2, and the run folder's other
    scenarios judged all the same."""
    odd = valid_run().write(tmp_path, "a-odd")
    fine = valid_run().write(tmp_path, "b-fine")
    scenario = odd / store.SCENARIO
    scenario.unlink()
    if kind == "a FIFO":
        os.mkfifo(scenario)
    elif kind == "a character device":
        scenario.symlink_to("/dev/zero")
    elif kind == "a directory":
        scenario.mkdir()
    else:
        scenario.symlink_to(tmp_path / "gone")
    done = check(tmp_path, timeout=30)
    judged_nothing(done)
    said = f"not a regular file ({kind})" if kind != "dangling" else "missing"
    assert f"{scenario}: {said}" in done.stdout
    assert f"valid      {fine}" in done.stdout


@pytest.mark.parametrize("log", ["projector.log", "agent-1.log"])
def test_a_fifo_in_logs_is_refused_not_waited_on(tmp_path: Path, log: str) -> None:
    run = valid_run()
    run.intent("lost-1", 3.5, land=False)  # a lost intent: the projector's log is read to explain it
    path = run.write(tmp_path)
    (path / store.LOGS).mkdir()
    (path / store.LOGS / "orchestrator.log").write_text("fine\n")
    os.mkfifo(path / store.LOGS / log)
    done = check(path, timeout=30)
    judged_nothing(done)
    assert f"{path / store.LOGS / log}: not a regular file (a FIFO)" in done.stderr


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_history_linked_to_a_device_is_refused_in_bounded_memory(tmp_path: Path, device: str) -> None:
    path = valid_run().write(tmp_path)
    (path / store.HISTORY).unlink()
    (path / store.HISTORY).symlink_to(device)
    done = check(path, timeout=30)
    judged_nothing(done)
    assert f"{path / store.HISTORY}: not a regular file (a character device)" in done.stdout


def _peak_mib_of(script: str) -> tuple[subprocess.CompletedProcess, float]:
    # ru_maxrss of children is the largest of any child so far: measured in a fresh grandchild.
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out, float(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else -1.0


def test_a_file_of_zeros_without_a_newline_is_refused_at_the_line_cap(tmp_path: Path) -> None:
    """A regular file as endless as /dev/zero (sparse, 4 GiB, no newline): the line cap ends the read
    at 1 MiB, in bounded memory."""
    path = valid_run().write(tmp_path)
    with open(path / store.HISTORY, "wb") as f:
        f.truncate(4 << 30)
    script = (
        "import resource, subprocess, sys\n"
        f"p = subprocess.run([sys.executable, '-m', 'harness.cli', 'check', {str(path)!r}],"
        " capture_output=True, text=True)\n"
        "sys.stderr.write(p.stdout + p.stderr + f'rc={p.returncode}')\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n"
    )
    done, peak = _peak_mib_of(script)
    assert "rc=2" in done.stderr, done.stderr
    assert f"{path / store.HISTORY}:1: a line longer than {store.MAX_LINE_BYTES} bytes" in done.stderr
    assert 0 < peak < 400, f"peak RSS {peak:.0f} MiB"


def test_a_line_past_the_cap_names_its_file_and_line(tmp_path: Path, capsys) -> None:
    path = valid_run().write(tmp_path)
    with open(path / store.STREAM, "a") as f:
        f.write('{"seq": 9, "cid": "' + "x" * store.MAX_LINE_BYTES + '"}\n')
    lines = len((path / store.STREAM).read_bytes().splitlines())
    assert cli(["check", str(path)]) == 2
    out = capsys.readouterr().out
    assert f"{path / store.STREAM}:{lines}: a line longer than {store.MAX_LINE_BYTES} bytes" in out


def test_a_log_line_past_the_cap_is_cut_there_in_bounded_memory(tmp_path: Path) -> None:
    """logs/ is not the format: an endless line is cut at the cap, and the lines after it still read."""
    log = tmp_path / "projector.log"
    with open(log, "wb") as f:
        f.write(b"first\n")
        f.truncate(6 + (64 << 20))  # 64 MiB of zeros without a newline
        f.seek(0, os.SEEK_END)
        f.write(b"\nlast\n")
    lines = [(len(line), line[:5]) for line in store.log_lines(log)]
    assert lines == [(6, b"first"), (store.MAX_LINE_BYTES, b"\0" * 5), (5, b"last\n")]


def test_log_lines_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "agent-1.log")
    with pytest.raises(store.RunDirError, match="not a regular file \\(a FIFO\\)"):
        list(store.log_lines(tmp_path / "agent-1.log"))


def test_a_line_just_under_the_cap_is_read(tmp_path: Path) -> None:
    path = tmp_path / "lines.jsonl"
    line = b'{"cid": "' + b"x" * (store.MAX_LINE_BYTES - 12) + b'"}\n'
    assert len(line) == store.MAX_LINE_BYTES
    path.write_bytes(line + line)
    assert [n for n, _ in store.numbered_lines(path)] == [1, 2]


@pytest.mark.parametrize("name", [store.HISTORY, store.SAMPLES, f"{store.LOGS}/projector.log"])
def test_a_directory_at_a_files_name_is_refused(tmp_path: Path, name: str) -> None:
    path = valid_run().write(tmp_path)
    if (path / name).exists():
        (path / name).unlink()
    (path / name).mkdir(parents=True)
    done = check(path)
    judged_nothing(done)
    assert f"{path / name}: not a regular file (a directory)" in done.stdout + done.stderr
