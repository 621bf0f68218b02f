"""The province snapshot's JSON, re-encoding only the rows, warnings and groups that changed.

Why (issue 19): at 3,321 centres the snapshot is about 4 MB of JSON (3,321 centre rows, thousands
of warnings and late groups late in a day) and encoding it whole took tens of milliseconds every
refresh, while a refresh by changes (region.overview) moves a few hundred items: none of them
carries minutes that move with the clock (they carry when a wait began). :class:`RowJson` keeps
each item's encoded bytes with the item they were encoded from, by a key of the item
(:data:`KEYS`), and encodes an item again only when it is neither the same object nor equal (a
dict comparison, far cheaper than encoding it). The bytes are exactly
``json.dumps(result, ensure_ascii=False, default=...)`` (tests/test_region_rowjson.py checks it).

Reusing the bytes of the same object relies on region.overview's contract: a published row,
warning or group is never changed (a changed one is a new dict; the dashboard joins the booking
columns into new dicts too: region.joined). Not thread-safe: one owner (the dashboard's shared
snapshot encodes under its lock).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "centres": lambda row: row["centre"],
    "warnings": lambda w: (w.get("centre"), w.get("kind"), w.get("en")),  # a centre's warnings differ in kind or text
    "groups": lambda g: (g.get("centre"), g.get("group")),
}
"""The lists of a snapshot whose items are encoded one by one, and what identifies an item from one
snapshot to the next (two items with one key are still correct, only encoded more often)."""


@dataclass
class RowJson:
    default: Callable[[Any], Any]
    encoded: int = 0  # items encoded by the last call (the others reused)
    _kept: dict[str, dict[Any, tuple[dict[str, Any], bytes]]] = field(default_factory=dict)

    def dumps(self, result: dict[str, Any]) -> bytes:
        """``json.dumps(result, ensure_ascii=False, default=self.default)`` as UTF-8 bytes; each item
        of the lists named in :data:`KEYS` reused from the last call if unchanged."""
        lists = [name for name in KEYS if isinstance(result.get(name), list)]
        holes = {name: json.dumps(f"\x00{name}\x00").encode() for name in lists}
        outer = json.dumps({**result, **{name: f"\x00{name}\x00" for name in lists}},
                           ensure_ascii=False, default=self.default).encode("utf-8")
        out: list[bytes] = []
        rest, encoded = outer, 0
        for name in sorted(lists, key=lambda n: outer.index(holes[n])):
            parts, count = self._items(name, result[name])
            encoded += count
            before, rest = rest.split(holes[name], 1)
            out += [before, b"[", b", ".join(parts), b"]"]
        out.append(rest)
        self.encoded = encoded
        return b"".join(out)

    def _items(self, name: str, items: list[dict[str, Any]]) -> tuple[list[bytes], int]:
        key_of = KEYS[name]
        kept, fresh, parts, encoded = self._kept.get(name, {}), {}, [], 0
        for item in items:
            key = key_of(item)
            old = kept.get(key)
            if old is not None and (old[0] is item or old[0] == item):
                body = old[1]
            else:
                body = json.dumps(item, ensure_ascii=False, default=self.default).encode("utf-8")
                encoded += 1
            fresh[key] = (item, body)
            parts.append(body)
        self._kept[name] = fresh
        return parts, encoded
