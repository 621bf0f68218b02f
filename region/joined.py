"""Snapshot rows joined with columns read apart, without changing the rows they are made from.

Why (issue 19): the province snapshot shares its centre rows with region.overview, which keeps them
between refreshes and never changes a published one; the dashboard adds columns read on another
schedule (region.bookings.TodayBookings). :class:`Joined` makes each snapshot row a new dict of both
(``{**row, **columns}``: the keys and values ``row.update(columns)`` would give) and keeps it while
the row is the same object and its columns are equal, so a row the refresh kept stays the same
object in the snapshot and region.rowjson reuses its JSON. Not thread-safe: one owner (the
dashboard's shared snapshot, under its lock).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Joined:
    _kept: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = field(default_factory=dict)

    def rows(self, rows: list[dict[str, Any]], columns: Callable[[str], dict[str, Any]]) -> list[dict[str, Any]]:
        """Each of ``rows`` (with a ``centre`` id) joined with ``columns(centre)``, in their order."""
        kept, fresh, out = self._kept, {}, []
        for row in rows:
            cid = row["centre"]
            extra = columns(cid)
            old = kept.get(cid)
            if old is not None and old[0] is row and (old[1] is extra or old[1] == extra):
                joined = old[2]
            else:
                joined = {**row, **extra}
            fresh[cid] = (row, extra, joined)
            out.append(joined)
        self._kept = fresh
        return out
