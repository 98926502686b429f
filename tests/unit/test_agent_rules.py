"""The agent's pure rules: what a malformed intent is told, and how a peer votes."""

import json

import pytest

from netsync.intents import BadRequest, parse_intent, valid_cid
from netsync.settings import AgentSettings, ConfigError, parse_peers


def body(**fields) -> bytes:
    return json.dumps(fields).encode()


def test_a_well_formed_intent_is_accepted() -> None:
    assert parse_intent(body(key="k1", value=5)) == ("k1", 5, None)
    assert parse_intent(body(key="k1", value=-5, cid="01J:x.y_z-1")) == ("k1", -5, "01J:x.y_z-1")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"not json", "body"),
        (b"[1, 2]", "body"),
        (body(value=5), "key"),
        (body(key="", value=5), "key"),
        (body(key="k" * 129, value=5), "key"),
        (body(key=7, value=5), "key"),
        (body(key="k"), "value"),
        (body(key="k", value="5"), "value"),
        (body(key="k", value=1.5), "value"),
        (body(key="k", value=True), "value"),
        (body(key="k", value=1, cid="has space"), "cid"),
        (body(key="k", value=1, cid="x" * 65), "cid"),
        (body(key="k", value=1, colour="red"), "colour"),
    ],
)
def test_a_malformed_intent_names_the_field(raw: bytes, field: str) -> None:
    with pytest.raises(BadRequest) as e:
        parse_intent(raw)
    assert e.value.field == field
    assert str(e.value)  # says what is allowed


@pytest.mark.parametrize("cid", ["abc\n", "abc\r\n", "\nabc", "a\nb", "abc\x00", "ab c"])
def test_the_cid_rule_is_a_full_match(cid: str) -> None:
    # NATS drops a header value's trailing newline: "abc\n" would be Nats-Msg-Id "abc", so a later
    # intent "abc" would be dropped as a duplicate and yet answered committed.
    assert not valid_cid(cid)
    with pytest.raises(BadRequest) as e:
        parse_intent(body(key="k", value=1, cid=cid))
    assert e.value.field == "cid"


def test_valid_cids_pass_the_rule() -> None:
    for cid in ["a", "x" * 64, "01J:x.y_z-1", "0193a4b2c3d4e5f60718293a4b"]:
        assert valid_cid(cid)
    for cid in ["", "x" * 65, None, 7, "é"]:
        assert not valid_cid(cid)


DEEP = b"[" * 65_000  # under the 64 KiB body limit; json.loads raised RecursionError (an empty 500)


@pytest.mark.parametrize(
    ("raw", "field", "says"),
    [
        (DEEP, "body", "JSON object"),
        (b'{"key": "k", "value": ' + DEEP + b"}", "body", "JSON object"),
        (b'{"key": "k", "value": ' + b"9" * 5000 + b"}", "value", "digits"),
        (b'{"key": "k", "value": -' + b"9" * 5000 + b"}", "value", "digits"),
        (b'{"key": "\\ud800", "value": 1}', "key", "surrogate"),
        (b'{"key": "k\\udfff", "value": 1}', "key", "surrogate"),
        (b'{"key": "k", "value": 1, "cid": "\\ud800"}', "cid", "A-Z"),
        (b'{"key": "k", "value": 1, "\\ud800": 1}', "\ud800", "allowed: key, value, cid"),
        # "UTF-8 JSON" (RFC 8259): json.loads alone took UTF-16 and UTF-32 bodies, and NaN and Infinity
        ('\ufeff{"key": "k", "value": 1}'.encode("utf-16"), "body", "JSON object"),
        ('{"key": "k", "value": 1}'.encode("utf-32"), "body", "JSON object"),
        (b'{"key": "k", "value": 1, "cid": "a\xff"}', "body", "JSON object"),
        (b'{"key": "k", "value": NaN}', "body", "JSON object"),
        (b'{"key": "k", "value": -Infinity}', "body", "JSON object"),
    ],
)
def test_a_hostile_body_is_a_400_naming_the_field(raw: bytes, field: str, says: str) -> None:
    with pytest.raises(BadRequest) as e:
        parse_intent(raw)
    assert (e.value.field, says in str(e.value)) == (field, True), str(e.value)
    json.dumps({"error": str(e.value), "field": e.value.field})  # the 400's body can be written


def test_keys_of_any_valid_unicode_still_pass() -> None:
    assert parse_intent('\ufeff{"key": "k", "value": 1}'.encode()) == ("k", 1, None)  # a UTF-8 BOM, ignored
    for key in ["k", "ключ", "鍵", "🔑" * 128, "a\x00b", " "]:
        assert parse_intent(body(key=key, value=1)) == (key, 1, None)
    assert parse_intent(body(key="k", value=10**4000))[1] == 10**4000  # the vote rule judges it


def test_peers_must_be_named_proxy_multiaddrs_with_peer_ids() -> None:
    peers = parse_peers(
        "agent-2=/dns4/toxiproxy/tcp/21002/p2p/12D3KooA, agent-3=/ip4/10.0.0.3/tcp/4001/p2p/12D3KooB"
    )
    assert peers == {
        "agent-2": "/dns4/toxiproxy/tcp/21002/p2p/12D3KooA",
        "agent-3": "/ip4/10.0.0.3/tcp/4001/p2p/12D3KooB",
    }
    with pytest.raises(ConfigError, match="NETSYNC_PEERS"):
        parse_peers("agent-2=/dns4/toxiproxy/tcp/21002")


def test_quorum_defaults_to_a_majority_of_all_agents(monkeypatch) -> None:
    monkeypatch.setenv("NETSYNC_ORCHESTRATOR", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooO")
    for n_peers, majority in [(0, 1), (1, 2), (2, 2), (3, 3), (4, 3), (6, 4)]:
        peers = ",".join(f"a{i}=/ip4/127.0.0.1/tcp/{i}/p2p/12D3Koo{i}" for i in range(n_peers))
        monkeypatch.setenv("NETSYNC_PEERS", peers)
        assert AgentSettings.from_env().quorum == majority
    monkeypatch.setenv("NETSYNC_QUORUM", "9")
    with pytest.raises(ConfigError, match="NETSYNC_QUORUM"):
        AgentSettings.from_env()


def test_the_voting_range_lies_within_what_the_store_holds(monkeypatch) -> None:
    # A value past 64 bits can be agreed to and committed, but never projected.
    monkeypatch.setenv("NETSYNC_ORCHESTRATOR", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooO")
    monkeypatch.setenv("NETSYNC_VALUE_MAX", str(2**63))
    with pytest.raises(ConfigError, match="NETSYNC_VALUE_MAX.*64-bit"):
        AgentSettings.from_env()
    monkeypatch.setenv("NETSYNC_VALUE_MAX", str(2**63 - 1))
    monkeypatch.setenv("NETSYNC_VALUE_MIN", str(-(2**63) - 1))
    with pytest.raises(ConfigError, match="NETSYNC_VALUE_MIN.*64-bit"):
        AgentSettings.from_env()
    monkeypatch.setenv("NETSYNC_VALUE_MIN", str(-(2**63)))
    assert AgentSettings.from_env().value_max == 2**63 - 1
