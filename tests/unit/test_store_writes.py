"""The run directory's JSON files are written whole or not at all: a harness killed in the middle of
writing scenario.json or timings.json must not leave half a file that check then refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import store


def test_a_write_cut_short_leaves_the_previous_file_whole(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / store.TIMINGS
    store.write_json(path, {"bringup_s": 6.7})
    real = store.os.fdopen

    def killed_halfway(fd: int, *args: object, **kwargs: object):
        f = real(fd, *args, **kwargs)
        write = f.write

        def half(data: bytes) -> int:
            write(data[: len(data) // 2])  # half the bytes reach the disk, then the process is gone
            f.flush()
            raise KeyboardInterrupt

        f.write = half
        return f

    monkeypatch.setattr(store.os, "fdopen", killed_halfway)
    with pytest.raises(KeyboardInterrupt):
        store.write_json(path, {"bringup_s": 7.0, "drive_s": 13.3})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"bringup_s": 6.7}
    assert [p.name for p in tmp_path.iterdir()] == [store.TIMINGS]  # no part left behind


def test_a_write_replaces_the_file_and_leaves_no_part_behind(tmp_path: Path) -> None:
    path = tmp_path / store.SCENARIO
    store.write_json(path, {"name": "a"})
    store.write_json(path, {"name": "b"})
    assert json.loads(path.read_text()) == {"name": "b"}
    assert [p.name for p in tmp_path.iterdir()] == [store.SCENARIO]
