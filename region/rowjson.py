"""The province snapshot's JSON, re-encoding only the centre rows that changed since the last one.

Why (issue 19): at 3,321 centres the snapshot is about 4 MB of JSON and encoding it whole took
tens of milliseconds every refresh, while a refresh by changes (region.overview) moves only the
rows of centres that changed or whose longest wait moved a tenth of a minute. :class:`RowJson`
keeps each centre row's encoded bytes with the row they were encoded from, and encodes a row again
only when it differs (a dict comparison, far cheaper than encoding it). The bytes are exactly
``json.dumps(result, ensure_ascii=False, default=...)`` (tests/test_region_rowjson.py checks it).

Rows are compared, not versioned, because the dashboard adds the booking counts to each row after
the refresh (region.bookings); a comparison catches every change whoever made it. The kept rows
are the snapshot's own copies (region.overview copies them), which nobody changes afterwards.
Not thread-safe: one owner (the dashboard's shared snapshot encodes under its lock).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

_HOLE = "\x00centres\x00"
_HOLE_JSON = json.dumps(_HOLE).encode()


@dataclass
class RowJson:
    default: Callable[[Any], Any]
    encoded: int = 0  # rows encoded by the last call (the others reused)
    _kept: dict[str, tuple[dict[str, Any], bytes]] = field(default_factory=dict)

    def dumps(self, result: dict[str, Any]) -> bytes:
        """``json.dumps(result, ensure_ascii=False, default=self.default)`` as UTF-8 bytes; each of
        ``result["centres"]`` (rows with a ``centre`` id) reused from the last call if unchanged."""
        kept, fresh, parts, encoded = self._kept, {}, [], 0
        for row in result["centres"]:
            cid = row["centre"]
            old = kept.get(cid)
            if old is not None and old[0] == row:
                body = old[1]
            else:
                body = json.dumps(row, ensure_ascii=False, default=self.default).encode("utf-8")
                encoded += 1
            fresh[cid] = (row, body)
            parts.append(body)
        self._kept, self.encoded = fresh, encoded
        outer = json.dumps({**result, "centres": _HOLE}, ensure_ascii=False, default=self.default).encode("utf-8")
        before, after = outer.split(_HOLE_JSON)
        return b"".join((before, b"[", b", ".join(parts), b"]", after))
