"""netsync.buggify: planted bugs are named, validated, documented and announced."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from netsync import buggify
from netsync.__main__ import ROLES
from netsync.logs import Log
from netsync.settings import ConfigError, env_bugs

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contract.md"


def test_flags_parse_and_an_unknown_one_names_what_is_known(monkeypatch) -> None:
    assert buggify.parse(" no-dedup-header, journal-late ,") == {"no-dedup-header", "journal-late"}
    assert buggify.parse("") == frozenset()
    monkeypatch.setenv("NETSYNC_BUGGIFY", "no-dedup-header,typo")
    with pytest.raises(ConfigError, match="unknown flag 'typo'; known: no-dedup-header, "):
        env_bugs()


def test_every_flag_belongs_to_a_role_and_is_in_the_contract() -> None:
    contract = CONTRACT.read_text()
    assert len(buggify.FLAGS) >= 8
    for name, flag in buggify.FLAGS.items():
        assert flag.role in ROLES, name
        assert f"`{name}`" in contract, f"docs/contract.md does not document the flag {name}"


def test_a_process_announces_only_its_own_flags(capsys) -> None:
    out = io.StringIO()
    buggify.announce(frozenset({"no-dedup-header", "journal-late"}), "agent", Log("agent-1", out))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["level"], r["flag"]) for r in lines] == [("error", "journal-late")]
    assert "BUGGIFY journal-late is ON" in capsys.readouterr().err
