"""Dotted paths into plain data (`faults.0.mode`, `topology.nats.sync_interval`): matrix keys and
overrides read and set values of a scenario file with them."""

from __future__ import annotations

from typing import Any


def _get_path(data: Any, parts: list[str]) -> Any:
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth]) or "the scenario"
        if isinstance(data, list):
            if not part.isdigit() or int(part) >= len(data):
                raise LookupError(f"{where} has {len(data)} entries, no {part!r}")
            data = data[int(part)]
        elif isinstance(data, dict):
            if part not in data:
                raise LookupError(f"{where} has no {part!r}")
            data = data[part]
        else:
            raise LookupError(f"{where} is {'not set' if data is None else 'a single value'}")
    return data


def _set_path(data: dict[str, Any], parts: list[str], value: Any) -> None:
    """Set a value in raw file data, making the mappings on the way that the file left out."""
    *parents, last = parts
    node: Any = data
    for part, following in zip(parents, parts[1:], strict=True):
        if isinstance(node, list):
            node = node[int(part)]
        elif part in node or not following.isdigit():
            node = node.setdefault(part, {})
        else:
            raise LookupError(f"no list {part!r}")
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
