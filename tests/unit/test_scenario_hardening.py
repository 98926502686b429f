"""Scenario files that try to break `validate` (issue 17): every bad file in tests/unit/bad_scenarios/ is
judged, quickly and without a traceback, with an error naming the file, the line and the field; the
words each must contain are on its first line (`# expect: word, word`)."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from harness.scenario import ScenarioError, load_scenarios, validate_files
from harness.scenario.types import LIMITS, MAX_FILE_BYTES

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).with_name("bad_scenarios")
BAD = sorted(CORPUS.glob("*.yaml"))
PER_FILE_S = 10  # a generous guard against a hang, not a measure: each file takes well under 2 s
MAX_LINE = 600  # no problem line repeats a long value in full


def expected_words(path: Path) -> list[str]:
    first = path.read_bytes().split(b"\n", 1)[0].decode()
    assert first.startswith("# expect: "), f"{path.name}: first line must be `# expect: word, word`"
    return [word.strip() for word in first.removeprefix("# expect: ").split(",") if word.strip()]


def validate(*paths: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "validate", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def lines_about(output: str, path: Path) -> list[str]:
    return [line for line in output.splitlines() if line.startswith((f"{path}:", f"{path} "))]


def test_the_corpus_is_forty_files_or_more() -> None:
    assert len(BAD) >= 40


def test_validate_reports_every_bad_file_with_its_words_and_no_traceback() -> None:
    result = validate(*BAD, timeout=PER_FILE_S * len(BAD))
    output = result.stdout + result.stderr

    assert result.returncode == 2, output[-2000:]
    assert "Traceback" not in output
    assert all(len(line) <= MAX_LINE for line in output.splitlines())
    for path in BAD:
        about = lines_about(output, path)
        assert about, f"{path.name}: nothing reported"
        text = "\n".join(about).lower()
        missing = [word for word in expected_words(path) if word.lower() not in text]
        assert not missing, f"{path.name}: {missing} not in:\n" + "\n".join(about)
        # file:line: field: what; allowed: ...
        assert all(line.split(":", 2)[1].isdigit() for line in about), about
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss < 512 * 1024  # KiB: bounded memory


def test_every_bad_file_fails_alone_with_a_scenario_error() -> None:
    for path in BAD:
        with pytest.raises(ScenarioError):
            load_scenarios(path)


def test_one_bad_file_does_not_hide_the_others(tmp_path: Path) -> None:
    good = ROOT / "scenarios" / "nats-down.yaml"
    bad = [CORPUS / "deep-list.yaml", CORPUS / "long-integer.yaml", CORPUS / "agents-yes.yaml"]

    result = validate(bad[0], good, bad[1], bad[2], timeout=PER_FILE_S * 4)

    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert all(lines_about(result.stderr, path) for path in bad)
    assert not lines_about(result.stderr, good)
    assert validate(good, timeout=PER_FILE_S).returncode == 0


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as f:
        f.write(b"name: huge\nload: {rate: 5, duration: 60s}\ndescription: ")
        f.truncate(100 * 1024 * 1024)  # 100 MB, sparse

    result = validate(path, timeout=PER_FILE_S)

    assert result.returncode == 2 and "Traceback" not in result.stderr
    [problem] = lines_about(result.stderr, path)
    assert f"{path}:1: " in problem and "100 MiB" in problem and f"{MAX_FILE_BYTES:,}" in problem


def test_a_70_kb_unknown_key_is_shown_shortened(tmp_path: Path) -> None:
    path = tmp_path / "key.yaml"
    path.write_text("name: key\nload: {rate: 5, duration: 60s}\n? " + "k" * 70_000 + "\n: 1\n")

    problems = validate_files([path])

    assert len(problems) == 1 and len(problems[0]) <= MAX_LINE, problems
    assert problems[0].startswith(f"{path}:3: ")


def test_the_shipped_scenarios_stay_valid() -> None:
    assert validate_files([ROOT / "scenarios"]) == []


def test_every_limit_is_stated_in_the_docs() -> None:
    docs = (ROOT / "docs" / "scenarios.md").read_text()
    for name, shown in LIMITS.items():
        assert shown in docs, f"{name} ({shown}) is not in docs/scenarios.md"
