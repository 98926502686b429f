"""What `check` and `run` print from a run directory or a system under test reaches the terminal as
visible text (issue 27): an ESC sequence in a cid cannot erase the INVALID line, a bidi override
cannot turn a cid around, a lone surrogate cannot crash the print. And every JSON the harness
writes or prints is strict, whatever numbers the system answered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import store
from harness.checkers.verdict import details, headline
from harness.cli import main as cli
from harness.cli_run import print_result, progress_printer
from harness.runner import RunResult
from harness.terminal import safe
from tests.unit.rundirs import append_line, valid_run

ROOT = Path(__file__).resolve().parents[2]
ERASE = "\x1b[2K\x1b[1A\r"  # erase the line, go up one: the INVALID line above would vanish

# Each class the terminal acts on or hides, with how it must read once printed.
HIDDEN = {
    "\x00": "\\x00",
    "\x07": "\\x07",
    "\t": "\\x09",
    "\n": "\\x0a",
    "\r": "\\x0d",
    "\x1b": "\\x1b",
    "\x7f": "\\x7f",
    "\x85": "\\x85",  # C1 next line
    "\x9b": "\\x9b",  # C1 CSI: ESC [ in one byte
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
    "\u202a": "\\u202a",
    "\u202b": "\\u202b",
    "\u202c": "\\u202c",
    "\u202d": "\\u202d",
    "\u202e": "\\u202e",  # right-to-left override
    "\u2066": "\\u2066",
    "\u2067": "\\u2067",
    "\u2068": "\\u2068",
    "\u2069": "\\u2069",
    "\u200e": "\\u200e",
    "\u200f": "\\u200f",
    "\u061c": "\\u061c",
    "\u200b": "\\u200b",  # zero width space: two cids that look one
    "\ufeff": "\\ufeff",
    "\udfff": "\\udfff",  # a lone surrogate: no encoder writes it
    "\ud800": "\\ud800",  # noqa: F601 (ruff takes two lone surrogates for one key)
    "\U000e0041": "\\U000e0041",  # a tag character
}


def no_control(text: str) -> None:
    for ch in HIDDEN:
        assert ch not in text.replace("\n", ""), f"{ch!r} reached the terminal in {text!r}"
    text.encode("utf-8")  # no lone surrogate left


@pytest.mark.parametrize("ch", list(HIDDEN))
def test_safe_escapes_every_class_a_terminal_acts_on(ch: str) -> None:
    out = safe(f"cid-{ch}-end")
    assert out == f"cid-{HIDDEN[ch]}-end"
    out.encode("ascii")


@pytest.mark.parametrize("text", ["café", "中文の cid", "🙂 emoji", "tab\\x09 written out", "a b-c_d.e"])
def test_safe_leaves_printable_text_as_it_is(text: str) -> None:
    assert safe(text) == text


def test_an_esc_sequence_in_a_cid_cannot_erase_the_invalid_line(tmp_path: Path, capsys) -> None:
    run = valid_run()
    run.intent(f"lost{ERASE}", 3.5, land=False)
    path = run.write(tmp_path)
    assert cli(["check", str(path)]) == 1
    out = capsys.readouterr().out
    no_control(out)
    assert out.splitlines()[0] == f"INVALID: 1 anomaly (lost 1) {path}"
    assert "  lost lost\\x1b[2K\\x1b[1A\\x0d: accepted committed" in out


def test_a_bidi_override_in_a_cid_of_the_stream_is_shown_escaped(tmp_path: Path, capsys) -> None:
    run = valid_run()
    run.message("evil\u202egnp.exe")  # never invoked: an unknown cid in the stream
    path = run.write(tmp_path)
    assert cli(["check", str(path)]) == 1
    out = capsys.readouterr().out
    no_control(out)
    assert "evil\\u202egnp.exe" in out


def test_a_log_reason_with_controls_and_a_lone_surrogate_is_printed_escaped(tmp_path: Path) -> None:
    """The projector's dead-letter reason explains a lost intent: it is printed, and it is the SUT's text."""
    run = valid_run()
    run.intent("lost-1", 3.5, land=False)
    path = run.write(tmp_path)
    (path / store.LOGS).mkdir()
    reason = r"refused \udfff \u001b]0;owned\u0007 \u009b2J \u202e"
    (path / store.LOGS / "projector.log").write_text(
        '{"msg": "dead-lettered", "cid": "lost-1", "cause": "refused", "seq": 9, "reason": "'
        + reason
        + '"}\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "check", str(path)],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )
    out = done.stdout.decode("utf-8")  # strict: a lone surrogate written out would not decode
    assert done.returncode == 1, done.stderr.decode()
    assert b"Traceback" not in done.stderr
    no_control(out)
    assert "refused \\udfff \\x1b]0;owned\\x07 \\x9b2J \\u202e" in out


def test_an_error_that_quotes_a_cid_is_printed_escaped(tmp_path: Path, capsys) -> None:
    path = valid_run().write(tmp_path)
    op = {"t": 4.0, "process": "c1", "type": "invoke", "f": "intent", "cid": f"twice{ERASE}"}
    append_line(path, store.HISTORY, op)
    append_line(path, store.HISTORY, {**op, "t": 4.5})
    assert cli(["check", str(path)]) == 2
    out = capsys.readouterr().out
    no_control(out)
    assert "cid twice\\x1b[2K\\x1b[1A\\x0d invoked again before it completed" in out


def test_a_run_directory_whose_name_holds_controls_and_undecodable_bytes(tmp_path: Path, capsys) -> None:
    name = "run-\udcff-\x1b[2K"  # the byte 0xff of a non-UTF-8 name, as Python holds it
    path = valid_run().write(tmp_path, name)
    assert cli(["check", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    no_control(out)
    assert out == f"valid      {tmp_path}/run-\\udcff-\\x1b[2K\n"
    assert cli(["check", str(path), str(path), "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["dir"] for line in lines] == [str(path), str(path)]


def test_an_error_naming_a_path_with_controls_is_escaped(tmp_path: Path, capsys) -> None:
    assert cli(["check", str(tmp_path / f"gone{ERASE}")]) == 2
    err = capsys.readouterr().err
    no_control(err)
    assert f"{tmp_path}/gone\\x1b[2K\\x1b[1A\\x0d: no such directory" in err


def test_json_output_is_ascii_with_every_control_escaped(tmp_path: Path, capsys) -> None:
    run = valid_run()
    run.intent(f"lost-é{ERASE}\u202e", 3.5, land=False)
    path = run.write(tmp_path)
    assert cli(["check", str(path), "--json"]) == 1
    out = capsys.readouterr().out
    out.encode("ascii")
    assert json.loads(out)["anomalies"][0]["cid"] == f"lost-é{ERASE}\u202e"


def test_verdict_words_escape_what_the_verdict_holds() -> None:
    """The same words end a failing pytest item (harness/plugin.py) and `run`'s FAIL."""
    verdict = {
        "valid": "unknown",
        "checks": {"odd\x1b[2K": {"valid": "unknown", "error": f"broken{ERASE}"}},
        "anomalies": [{"kind": f"lost{ERASE}", "cid": f"c{ERASE}", "detail": f"d{ERASE}\udfff"}],
    }
    for text in [headline(verdict), *details(verdict)]:
        no_control(text)
    assert (
        details(verdict)[1]
        == "lost\\x1b[2K\\x1b[1A\\x0d c\\x1b[2K\\x1b[1A\\x0d: d\\x1b[2K\\x1b[1A\\x0d\\udfff"
    )


def test_run_prints_the_systems_words_escaped(tmp_path: Path, capsys) -> None:
    result = RunResult(
        dir=tmp_path / "run-1" / "lost-acks",
        run_id="run-1",
        seed=7,
        verdict={
            "valid": False,
            "checks": {"reconciliation": {"valid": False}},
            "anomalies": [{"kind": "lost", "cid": f"c{ERASE}", "detail": f"reason{ERASE}\udfff"}],
        },
        rerun=f"solar-chaos run scenarios/x.yaml --param 'mode={ERASE}'",
    )
    known = SimpleNamespace(anomalies=["lost"], reason=f"the SUT says{ERASE}")
    print_result("lost-acks[mode=\\x1b]", SimpleNamespace(expected_failure=known), result)
    captured = capsys.readouterr()
    no_control(captured.out + captured.err)
    assert "  lost c\\x1b[2K\\x1b[1A\\x0d: reason\\x1b[2K\\x1b[1A\\x0d\\udfff" in captured.out
    assert "re-run: solar-chaos run scenarios/x.yaml --param 'mode=\\x1b[2K\\x1b[1A\\x0d'" in captured.out


@pytest.mark.parametrize("live", [True, False])
def test_run_progress_lines_are_escaped_and_only_the_harness_rewrites_a_line(live: bool, capsys) -> None:
    say = progress_printer(live)
    say(f"t=   3.0s  intents 10/100  ok 9  fail 0  info 1  faults: partition(agent-1{ERASE})")
    say(f"engine lost: container agent-1{ERASE} gone\u202e")
    err = capsys.readouterr().err
    assert err.count("\r") == (1 if live else 0)  # the harness's own, rewriting the t= line
    no_control(err.replace("\r", ""))
    assert "partition(agent-1\\x1b[2K\\x1b[1A\\x0d)" in err
    assert "engine lost: container agent-1\\x1b[2K\\x1b[1A\\x0d gone\\u202e" in err
