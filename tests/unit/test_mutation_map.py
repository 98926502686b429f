"""harness.mutation: the map of docs/mutation.md read with clear errors, and a mutant's outcome and the
score from its scenarios' results."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.mutation.outcome import ScenarioResult, classify, score
from harness.mutation.table import HEADING, MapError, choose, read_map
from harness.paths import ROOT

GOOD = f"""# Mutation

{HEADING}

| file | scenarios | the promises |
|---|---|---|
| `netsync/agent.py` | `lost-acks`, `agent-crash-with-buffer` | answers |
| `netsync/buffer.py` | `agent-crash-with-buffer` | the journal |

## Next

| `netsync/projector.py` | `not-a-scenario` | after the table's section: not read |
"""


def page(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "mutation.md"
    p.write_text(text)
    return p


def test_the_shipped_map_names_existing_files_and_scenarios() -> None:
    guards = read_map()
    files = [g.file for g in guards]
    assert "netsync/agent.py" in files and "netsync/orchestrator.py" in files
    for g in guards:
        assert (ROOT / g.file).is_file()
        assert all((ROOT / "scenarios" / f"{s}.yaml").is_file() for s in g.scenarios)


def test_a_row_gives_its_scenarios_in_order_and_the_next_section_is_not_read(tmp_path: Path) -> None:
    guards = read_map(page(tmp_path, GOOD))
    assert [(g.file, g.scenarios) for g in guards] == [
        ("netsync/agent.py", ("lost-acks", "agent-crash-with-buffer")),
        ("netsync/buffer.py", ("agent-crash-with-buffer",)),
    ]


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        (
            "`lost-acks`, `agent",
            "`no-such-scenario`, `agent",
            "mutation.md:7: no scenario 'no-such-scenario'",
        ),
        ("`netsync/buffer.py`", "`netsync/gone.py`", "mutation.md:8: netsync/gone.py does not exist"),
        ("`netsync/buffer.py`", "`harness/runner.py`", "is not a module of netsync/"),
        ("`netsync/buffer.py`", "`netsync/agent.py`", "mutation.md:8: netsync/agent.py has a row already"),
        ("`lost-acks`, `agent", "lost-acks, `agent", "scenarios are `name`, `name`"),
        ("| answers |", "answers |", "a row is | `netsync/FILE.py` |"),
        (HEADING, "## Another heading", "no heading '## Which scenarios guard which file'"),
    ],
)
def test_a_bad_map_is_an_error_naming_the_line_and_what_is_wrong(
    tmp_path: Path, old: str, new: str, words: str
) -> None:
    with pytest.raises(MapError) as e:
        read_map(page(tmp_path, GOOD.replace(old, new, 1)))
    assert words in str(e.value)


def test_an_empty_table_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MapError, match="has no rows"):
        read_map(page(tmp_path, f"{HEADING}\n\n| file | scenarios | why |\n|---|---|---|\n"))


def test_files_choose_rows_and_an_unmapped_file_names_the_rows(tmp_path: Path) -> None:
    guards = read_map(page(tmp_path, GOOD))
    assert [g.file for g in choose(guards, ["netsync/buffer.py"])] == ["netsync/buffer.py"]
    assert choose(guards, None) == guards
    with pytest.raises(
        MapError, match="netsync/p2p.py has no row .* rows: netsync/agent.py, netsync/buffer.py"
    ):
        choose(guards, ["netsync/p2p.py"])


def result(scenario: str, valid: bool | None = True, rc: int | None = 0, kinds=(), tail="") -> ScenarioResult:
    verdict = None if valid is None else {"valid": valid, "anomalies": [{"kind": k} for k in kinds]}
    return ScenarioResult(scenario, 30.0, rc, verdict, tail)


def test_valid_everywhere_survives() -> None:
    c = classify([result("lost-acks"), result("dedup-window")])
    assert (c.outcome, c.by) == ("survived", "")


def test_an_invalid_verdict_kills_and_names_the_scenario_and_the_anomalies() -> None:
    c = classify(
        [result("lost-acks"), result("dedup-window", False, 1, ["stream-duplicate", "lost", "lost"])]
    )
    assert (c.outcome, c.by, c.kinds) == ("killed", "dedup-window", ["lost", "stream-duplicate"])
    assert c.how == "verdict invalid: lost, stream-duplicate"


def test_no_verdict_kills_as_a_system_that_did_not_come_up_with_its_last_words() -> None:
    c = classify([result("lost-acks", None, 2, tail="...\nagent-1 exited with code 1")])
    assert c.outcome == "killed"
    assert c.how == "no verdict (the system did not come up or a node died): agent-1 exited with code 1"


def test_an_engine_failure_is_an_error_not_a_kill() -> None:
    c = classify([result("lost-acks", None, 2, tail="Cannot connect to the Docker daemon at unix://")])
    assert c.outcome == "error"


def test_a_run_stopped_past_the_budget_times_out() -> None:
    c = classify([result("lost-acks"), result("dedup-window", None, None)])
    assert (c.outcome, c.by) == ("timed-out", "dedup-window")


def test_the_score_is_killed_over_killed_and_survived() -> None:
    s = score(["killed", "killed", "killed", "survived", "timed-out", "error"])
    assert s == {"killed": 3, "survived": 1, "timed-out": 1, "error": 1, "score": 0.75}
    assert score(["error"])["score"] is None
