"""The analytics check on hand-made run directories (../shared/RUN-FORMAT.md, analytics.jsonl): a store
row whose change was never applied is cdc-lost, an older change applied over a newer one and left in
the view is cdc-order, a view that is not the store's latest row per key is analytics-mismatch; no
file, no check."""

from __future__ import annotations

from pathlib import Path

from harness import store
from harness.checkers import judge
from tests.unit.judging import assert_only, check, details
from tests.unit.rundirs import RunDir, append_line


def followed(n: int = 4, keys: int = 2) -> RunDir:
    """n intents over `keys` keys (k0, k1, ...), each projected and applied in order, and the view
    holding each key's last one."""
    run = RunDir()
    last: dict[str, tuple[str, int, int]] = {}
    for i in range(n):
        cid, key = f"c{i}", f"k{i % keys}"
        run.invoke(cid, float(i), key=key, value=i)
        seq = run.message(cid)
        run.ok(cid, i + 0.01, outcome="committed", stream_seq=seq, quorum_ms=5.0)
        run.row(cid, stream_seq=seq)
        run.applied(cid, i + 0.5)
        last[key] = (cid, i, seq)
    run.agents_drained(float(n), ("agent-1",))
    for key, (cid, value, seq) in last.items():
        run.view(key, cid, value, seq)
    return run


def test_a_consumer_that_applied_every_change_in_order_is_valid(tmp_path: Path) -> None:
    v = check(followed(), tmp_path)
    assert_only(v)
    a = v["checks"]["analytics"]
    assert (a["applied"], a["store_rows"], a["view_keys"], a["gaps"]) == (4, 4, 2, 0)


def test_without_analytics_jsonl_the_check_is_not_run(tmp_path: Path) -> None:
    run = followed()
    run.analytics = None
    v = check(run, tmp_path)
    assert_only(v)
    assert v["checks"]["analytics"]["judged"] is False


def test_a_row_never_applied_is_cdc_lost_and_names_the_consumers_gap(tmp_path: Path) -> None:
    run = followed()
    assert run.analytics is not None
    run.analytics = [line for line in run.analytics if line.get("cid") != "c1" or line["type"] == "view"]
    run.gap(1.5, "changefeed answered from versionstamp 262144, cursor was 65536")
    v = check(run, tmp_path)
    assert_only(v, ("cdc-lost", "c1"))
    assert "cursor was 65536" in details(v, "cdc-lost")[0]


def test_an_older_change_applied_last_and_kept_is_cdc_order_and_a_mismatch(tmp_path: Path) -> None:
    run = followed()
    run.applied("c0", 9.0)  # k0's older change (seq 1) applied again after c2 (seq 3)...
    assert run.analytics is not None
    run.analytics = [line for line in run.analytics if not (line["type"] == "view" and line["key"] == "k0")]
    run.view("k0", "c0", 0, 1)  # ...and the view kept it
    v = check(run, tmp_path)
    assert_only(v, ("cdc-order", "c0"), ("analytics-mismatch", "c2"))


def test_an_older_change_applied_late_but_ignored_by_the_view_is_fine(tmp_path: Path) -> None:
    """At least once in, exactly once in the view: a redelivered old change the view ignores is no
    anomaly."""
    run = followed()
    run.applied("c0", 9.0)
    assert_only(check(run, tmp_path))


def test_a_view_missing_a_key_or_holding_one_the_store_lacks_is_a_mismatch(tmp_path: Path) -> None:
    run = followed()
    assert run.analytics is not None
    run.analytics = [line for line in run.analytics if not (line["type"] == "view" and line["key"] == "k1")]
    run.view("k9", "c9", 9, 99)
    v = check(run, tmp_path)
    assert_only(v, ("analytics-mismatch", "c3"), ("analytics-mismatch", "c9"))
    assert any("not in the view" in d for d in details(v, "analytics-mismatch"))
    assert any("not in the store" in d for d in details(v, "analytics-mismatch"))


def test_numbers_that_differ_only_in_form_are_the_same_value(tmp_path: Path) -> None:
    path = followed().write(tmp_path)
    text = (path / store.ANALYTICS).read_text().replace('"value": 3,', '"value": 3.0,')
    (path / store.ANALYTICS).write_text(text)
    assert_only(judge(path))


def test_a_line_of_an_unknown_type_names_the_file_and_line(tmp_path: Path) -> None:
    path = followed().write(tmp_path)
    line = append_line(path, store.ANALYTICS, {"t": 1.0, "type": "applyed", "cid": "c0"})
    a = judge(path)["checks"]["analytics"]
    assert a["valid"] == "unknown"
    assert f"{store.ANALYTICS}:{line}" in a["error"] and "applyed" in a["error"]
