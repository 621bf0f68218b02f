"""The province snapshot's JSON, re-encoding only the rows, warnings and groups that changed.

Why (issue 19): at 3,321 centres the snapshot is about 4 MB of JSON (3,321 centre rows, thousands
of warnings and late groups late in a day) and encoding it whole took tens of milliseconds every
refresh, while a refresh by changes (region.overview) replaces a few hundred items: none of them
carries minutes that move with the clock (they carry when a wait began), and every other item is
the same object as in the previous snapshot. :class:`RowJson` keeps each item's encoded bytes with
the item they were encoded from and encodes an item again only when it is not that same object.
The bytes are exactly ``json.dumps(result, ensure_ascii=False, default=...)``
(tests/test_region_rowjson.py checks it). The snapshot's ``recent`` part (per centre, kept apart
from the rows so that they stay the same when the 5-minute buckets move) is encoded whole, its
bytes reused while it is the same object.

This relies on region.overview's contract: a published row, warning or group is never changed (a
changed one is a new dict; the dashboard joins the booking columns into new dicts too:
region.joined). An equal copy is encoded again (correct, only slower). Not thread-safe: one owner
(the dashboard's shared snapshot encodes under its lock).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

LISTS = ("centres", "warnings", "groups")
"""The lists of a snapshot whose items are encoded one by one."""

PARTS = ("recent",)
"""The parts of a snapshot encoded whole, their bytes reused while the part is the same object (the
recent figures: region.report.recent_part, new only when the 5-minute buckets moved)."""


@dataclass
class RowJson:
    default: Callable[[Any], Any]
    encoded: int = 0  # items encoded by the last call (the others reused)
    _kept: dict[str, dict[int, tuple[Any, bytes]]] = field(default_factory=dict)
    _parts: dict[str, tuple[Any, bytes]] = field(default_factory=dict)
    _encoder: json.JSONEncoder = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # what json.dumps(..., ensure_ascii=False, default=...) builds at every call, built once
        self._encoder = json.JSONEncoder(ensure_ascii=False, default=self.default)

    def dumps(self, result: dict[str, Any]) -> bytes:
        """``json.dumps(result, ensure_ascii=False, default=self.default)`` as UTF-8 bytes; each item
        of the lists named in :data:`LISTS` reused from the last call if it is the same object."""
        lists = [name for name in LISTS if isinstance(result.get(name), list)]
        whole = [name for name in PARTS if isinstance(result.get(name), dict)]
        holes = {name: json.dumps(f"\x00{name}\x00").encode() for name in lists + whole}
        outer = json.dumps({**result, **{name: f"\x00{name}\x00" for name in lists + whole}},
                           ensure_ascii=False, default=self.default).encode("utf-8")
        out: list[bytes] = []
        rest, encoded = outer, 0
        for name in sorted(lists + whole, key=lambda n: outer.index(holes[n])):
            before, rest = rest.split(holes[name], 1)
            if name in whole:
                out += [before, self._part(name, result[name])]
                continue
            parts, count = self._items(name, result[name])
            encoded += count
            out += [before, b"[", b", ".join(parts), b"]"]
        out.append(rest)
        self.encoded = encoded
        return b"".join(out)

    def _part(self, name: str, part: dict[str, Any]) -> bytes:
        """A part's bytes, kept with the part itself."""
        old = self._parts.get(name)
        if old is None or old[0] is not part:
            old = self._parts[name] = (part, self._encoder.encode(part).encode("utf-8"))
        return old[1]

    def _items(self, name: str, items: list[Any]) -> tuple[list[bytes], int]:
        """Each item's bytes; kept by the item's id with the item itself (so the id stays its own)."""
        kept = self._kept.get(name, {})
        fresh: dict[int, tuple[Any, bytes]] = {}
        parts: list[bytes] = []
        encoded = 0
        encode = self._encoder.encode
        for item in items:
            old = kept.get(id(item))
            if old is not None and old[0] is item:
                body = old[1]
            else:
                body = encode(item).encode("utf-8")
                encoded += 1
            fresh[id(item)] = (item, body)
            parts.append(body)
        self._kept[name] = fresh
        return parts, encoded
