"""A commitment message and the row it becomes (docs/contract.md, "Projector"): the body's rules,
and the statement that writes `sentiment:<cid>`, so that a redelivery rewrites the same row."""

from __future__ import annotations

from typing import Any

from netsync.untrusted import is_text, loads

UPSERT = (
    "UPSERT type::record($tb, $cid) CONTENT "
    "{cid: $cid, key: $key, value: $value, stream_seq: $seq, written_at: time::now()};"
)
# buggify duplicate-rows: a fresh record id per write, so a redelivery adds a row.
CREATE = (
    "CREATE type::record($tb, rand::uuid()) CONTENT "
    "{cid: $cid, key: $key, value: $value, stream_seq: $seq, written_at: time::now()};"
)


# SurrealDB's integers are 64-bit: a value outside cannot be stored, so no agent may agree to one.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Malformed(ValueError):
    """A message body that can never be projected."""


def parse_body(data: bytes) -> dict[str, Any]:
    """The commitment body `{cid, key, value, proposer, decided_at}`; Malformed if unusable, which
    includes what no write could store: text that is not valid Unicode, a value past 64 bits."""
    try:
        body = loads(data)
    except ValueError as e:  # UnicodeDecodeError too
        raise Malformed(f"body is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise Malformed("body is not a JSON object")
    cid = body.get("cid")
    if not isinstance(cid, str) or not cid:
        raise Malformed("cid missing or not a non-empty string")
    if not isinstance(body.get("key"), str):
        raise Malformed("key missing or not a string")
    for name in ("cid", "key"):
        if not is_text(body[name]):
            raise Malformed(f"{name} is not valid Unicode (a lone surrogate)")
    value = body.get("value")
    if not isinstance(value, int) or isinstance(value, bool):
        raise Malformed("value missing or not an integer")
    if not INT64_MIN <= value <= INT64_MAX:
        raise Malformed(f"value {value} is outside the 64-bit integers SurrealDB stores")
    return body
