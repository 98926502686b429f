"""Reading a YAML file safely: bounded in bytes, nesting, keys and values (aliases expanded) and number
length before anything is built, every problem as `FILE:LINE: path: what; allowed: ...`."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from harness.scenario.types import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NODES,
    MAX_NUMBER_CHARS,
    MAX_TEXT_CHARS,
    Loc,
    ScenarioError,
    shorten,
)

# libyaml when present: fast, and it parses (though not composes) without recursion, like PyYAML's parser
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_NODE_EVENTS = (yaml.ScalarEvent, yaml.AliasEvent, yaml.CollectionStartEvent)


def shown_path(path: Iterable[str | int]) -> str:
    """`faults.0.mode`, each key cut short and a key with a line break or control character quoted, so
    that a problem stays one line."""
    parts = [str(part) for part in path]
    return ".".join(shorten(part if part.isprintable() else repr(part)) for part in parts) or "(top level)"


class _Frame:
    """An open mapping or list met by `_scan`: where it is, and how much it holds so far."""

    __slots__ = ("anchor", "children", "mapping", "part", "start")

    def __init__(self, mapping: bool, anchor: str | None, start: int) -> None:
        self.mapping, self.anchor, self.start = mapping, anchor, start
        self.children = 0
        self.part: str | int = ""


def _scan(text: str, file: str) -> int:
    """Refuse, from YAML's events and before anything is built from them, a file whose nesting, size once
    its aliases are expanded, or one key or value would make the rest take unbounded time or memory (YAML's
    composer recurses, an alias bomb expands exponentially, `int()` refuses 4,300 digits). Returns how
    many keys and values the file holds, aliases expanded."""
    resolver = yaml.resolver.Resolver()
    frames: list[_Frame] = []
    sizes: dict[str, int] = {}  # an anchor's keys and values; -1 while its own mapping or list is open
    total = 0

    def refuse(event: yaml.Event, what: str, allowed: str) -> ScenarioError:
        where = shown_path(f.part for f in frames)
        return ScenarioError(f"{file}:{event.start_mark.line + 1}: {where}: {what}; allowed: {allowed}")

    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionEndEvent):
            frame = frames.pop()
            if frame.anchor is not None:
                sizes[frame.anchor] = total - frame.start
            continue
        if not isinstance(event, _NODE_EVENTS):
            continue
        if frames:
            parent = frames[-1]
            if not parent.mapping:
                parent.part = parent.children
            elif parent.children % 2 == 0:  # a key: the path names it
                parent.part = event.value if isinstance(event, yaml.ScalarEvent) else "?"
            parent.children += 1
        size = 1
        if isinstance(event, yaml.AliasEvent):
            size = sizes.get(event.anchor, 1)
            if size < 0:
                raise refuse(
                    event, f"alias *{shorten(event.anchor)} inside itself", "an alias after its anchor"
                )
        total += size
        if total > MAX_NODES:
            raise refuse(
                event,
                f"more than {MAX_NODES:,} keys and values (an alias counts all of its anchor's at each use)",
                f"at most {MAX_NODES:,} keys and values",
            )
        if isinstance(event, yaml.CollectionStartEvent):
            if len(frames) >= MAX_DEPTH:
                raise refuse(event, f"nesting deeper than {MAX_DEPTH} levels", f"at most {MAX_DEPTH} levels")
            frames.append(_Frame(isinstance(event, yaml.MappingStartEvent), event.anchor, total - 1))
            if event.anchor is not None:
                sizes[event.anchor] = -1
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                sizes[event.anchor] = 1
            value = event.value
            if len(value) > MAX_TEXT_CHARS:
                what = f"a key or value of {len(value):,} characters"
                raise refuse(event, what, f"at most {MAX_TEXT_CHARS:,} characters")
            if len(value) > MAX_NUMBER_CHARS and (
                event.tag in _NUMBER_TAGS
                or (
                    event.implicit[0]
                    and resolver.resolve(yaml.ScalarNode, value, (True, False)) in _NUMBER_TAGS
                )
            ):
                what = f"a number of {len(value):,} characters"
                raise refuse(event, what, f"a number of at most {MAX_NUMBER_CHARS} characters")
    return total


def _unconstructable(root: yaml.Node, file: str, error: Exception) -> str:
    """The first value YAML cannot build (`!!int x`, `2001-13-45`), as a problem at its line."""
    constructor = yaml.constructor.SafeConstructor()
    stack: list[tuple[yaml.Node, Loc]] = [(root, ())]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            try:
                constructor.construct_object(node)
            except Exception as e:
                where = shown_path(path)
                line = node.start_mark.line + 1
                kind = node.tag.rsplit(":", 1)[-1]
                what = f"cannot read {shorten(repr(node.value))} as {kind}: {shorten(str(e), 100)}"
                return f"{file}:{line}: {where}: {what}; allowed: a value YAML reads as {kind}, or no tag"
        elif isinstance(node, yaml.MappingNode):
            stack += [
                (value, (*path, key.value if isinstance(key, yaml.ScalarNode) else "?"))
                for key, value in reversed(node.value)
            ]
            stack += [(key, path) for key, _value in reversed(node.value)]
        elif isinstance(node, yaml.SequenceNode):
            stack += [(item, (*path, i)) for i, item in reversed(list(enumerate(node.value)))]
    return f"{file}: not valid YAML: {shorten(str(error), 200)}"


def _parse(text: str, file: str) -> tuple[yaml.Node | None, Any, int]:
    root: yaml.Node | None = None
    loader: Any = None
    try:
        nodes = _scan(text, file)
        loader = _Loader(text)
        root = loader.get_single_node()
        if root is not None:
            if duplicates := list(_duplicate_keys(root, file)):
                raise ScenarioError(duplicates)
        try:
            data = loader.construct_document(root) if root is not None else None
        except (ValueError, TypeError, OverflowError, AttributeError) as e:  # a scalar its tag cannot build
            raise ScenarioError(_unconstructable(root, file, e)) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark else ""
        context = ""
        if e.problem and e.context and e.context_mark:  # where the construct that broke started
            context = f" ({e.context} at line {e.context_mark.line + 1})"
        problem = shorten(str(e.problem or e.context), 200)
        allowed = f"; allowed: at most {MAX_DEPTH} levels" if "nesting depth" in problem else ""  # libyaml's
        raise ScenarioError(f"{file}{line}: not valid YAML: {problem}{context}{allowed}") from None
    except yaml.reader.ReaderError as e:  # a character YAML does not allow, such as NUL
        line = text.count("\n", 0, e.position) + 1
        raise ScenarioError(
            f"{file}:{line}: not valid YAML: unacceptable character #x{e.character:04x}: {e.reason}; "
            "allowed: printable text"
        ) from None
    except yaml.YAMLError as e:
        raise ScenarioError(f"{file}: not valid YAML: {shorten(str(e), 200)}") from None
    finally:
        if loader is not None:
            loader.dispose()
    return root, data, nodes


def _duplicate_keys(
    node: yaml.Node, file: str, path: Loc = (), seen: set[int] | None = None
) -> Iterator[str]:
    seen = set() if seen is None else seen
    if id(node) in seen:  # an alias met again
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            line = key.start_mark.line + 1
            if name in first and key.tag != "tag:yaml.org,2002:merge":
                where = ".".join(map(str, (*path, name)))
                first_at = f"first at line {first[name]}"
                yield f"{file}:{line}: {where}: duplicate key ({first_at}); allowed: each key once"
            first.setdefault(name, line)
            yield from _duplicate_keys(value, file, (*path, name), seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, file, (*path, i), seen)


def child(node: yaml.Node, part: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    """(the node whose line to report, the node to descend into) for one step of a path, or None."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return key, value
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part], node.value[part]
    return None


def read(path: Path, file: str) -> tuple[yaml.Node | None, Any, int]:
    """The file at `path` (named `file` in problems) as (its root node, the data built from it, how many keys
    and values it holds, aliases expanded). Raises ScenarioError."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO or a device would block or never end
            raise ScenarioError(f"{file}: not a regular file; allowed: a YAML file")
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)  # never more: a 100 MB file is refused unread
            size = max(os.fstat(f.fileno()).st_size, len(raw))
    except OSError as e:
        raise ScenarioError(f"{file}: cannot read: {e.strerror or e}") from None
    if len(raw) > MAX_FILE_BYTES:
        shown = f"{size / 2**20:,.0f} MiB" if size >= 2**20 else f"{size:,} bytes"
        raise ScenarioError(
            f"{file}:1: (top level): the file has {shown}; allowed: at most {MAX_FILE_BYTES:,} bytes"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ScenarioError(f"{file}:{line}: not UTF-8 text; allowed: UTF-8 text") from None
    return _parse(text, file)
