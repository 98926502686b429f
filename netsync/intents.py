"""An intent as the agent's HTTP API takes it (docs/contract.md, "Agent HTTP API"): the body's
rules, the cid's form, and the answer (status and body) the agent gives and remembers."""

from __future__ import annotations

import re
import secrets
import sys
import time
from dataclasses import dataclass
from typing import Any

from netsync.untrusted import is_text, loads

# A full match: with `$`, "abc\n" passed, and NATS strips a header value's trailing newline, so it
# became the same Nats-Msg-Id as "abc".
CID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
CID_RULE = "1 to 64 characters of A-Z a-z 0-9 . _ : -"


def valid_cid(cid: object) -> bool:
    """The cid rule (docs/contract.md, "Agent HTTP API"), the one place it is stated."""
    return isinstance(cid, str) and CID_RE.fullmatch(cid) is not None


def _dollar_anchored(cid: object) -> bool:
    """buggify cid-dollar-anchor: the rule as `^...$` with re.match, whose `$` also matches before a
    trailing newline, so "abc\n" passes."""
    return isinstance(cid, str) and re.match(r"^[A-Za-z0-9._:-]{1,64}$", cid) is not None


def new_cid() -> str:
    """Time-ordered and unique: milliseconds, then 64 random bits."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(8)}"


class BadRequest(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class _LongInt:
    """An integer literal too long for int() (Python refuses over 4,300 digits), kept so that the
    400 names `value` rather than the whole body."""


def _int(digits: str) -> int | _LongInt:
    try:
        return int(digits)
    except ValueError:
        return _LongInt()


def parse_intent(body: bytes, bugs: frozenset[str] = frozenset()) -> tuple[str, int, str | None]:
    """(key, value, cid) of a POST /intents body, or BadRequest naming the field. `bugs`: the agent's
    planted bugs (netsync.buggify, read once into its settings)."""
    try:
        obj = loads(body, parse_int=_int)
    except ValueError:
        raise BadRequest("body", "body must be a JSON object {key, value, cid?}") from None
    if not isinstance(obj, dict):
        raise BadRequest("body", "body must be a JSON object {key, value, cid?}")
    key = obj.get("key")
    if not isinstance(key, str) or not 1 <= len(key) <= 128:
        raise BadRequest("key", "key is required: a string of 1 to 128 characters")
    if not is_text(key):
        raise BadRequest("key", "key must be valid Unicode: no lone surrogate (\\ud800-\\udfff)")
    value = obj.get("value")
    if isinstance(value, _LongInt):
        raise BadRequest("value", f"value is an integer of at most {sys.get_int_max_str_digits()} digits")
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest("value", "value is required: an integer")
    cid = obj.get("cid")
    cid_ok = _dollar_anchored if "cid-dollar-anchor" in bugs else valid_cid
    if cid is not None and not cid_ok(cid):
        raise BadRequest("cid", f"cid, when given, is {CID_RULE}")
    unknown = set(obj) - {"key", "value", "cid"}
    if unknown:
        raise BadRequest(sorted(unknown)[0], "unknown field; allowed: key, value, cid")
    return key, value, cid


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
