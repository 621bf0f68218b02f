"""Issue 19: the province snapshot's JSON with unchanged rows, warnings and groups reused
(region.rowjson) is byte for byte the JSON of the whole snapshot, whatever changed between
snapshots; only what changed (a new dict, as region.overview replaces a changed item) is encoded
again, and a snapshot of copies is encoded whole."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from typing import Any

from region.dashboard import json_default
from region.rowjson import RowJson


def row(i: int, at: datetime) -> dict[str, Any]:
    return {"centre": f"c{i:03d}", "name": f"Phường Hàng Bạc {i}", "waiting": i % 7, "longest_since": at,
            "mean_wait_minutes": None, "last_event_at": at, "link": "ok", "note": 'a "quoted" \\ text\n'}


def warning(i: int, at: datetime) -> dict[str, Any]:
    return {"centre": f"c{i:03d}", "name": f"Phường {i}", "level": "cao", "kind": "long-wait",
            "vi": f"Lĩnh vực Hộ tịch: có người đã chờ {{minutes}} phút ({i % 5} người)", "en": f"Hộ tịch {i % 5}", "since": at}


def group(i: int, at: datetime) -> dict[str, Any]:
    return {"centre": f"c{i:03d}", "group": "ho-tich", "name": "Hộ tịch", "waiting": 1 + i % 4, "longest_since": at}


def test_reused_items_give_the_same_bytes_as_encoding_everything() -> None:
    rng = random.Random(19)
    at = datetime(2026, 12, 6, 9, 30, tzinfo=timezone.utc)
    lists = {"centres": [row(i, at) for i in range(60)], "warnings": [warning(i, at) for i in range(0, 60, 3)],
             "groups": [group(i, at) for i in range(0, 60, 2)]}
    makers = {"centres": row, "warnings": warning, "groups": group}
    encoder = RowJson(json_default)
    for step in range(30):
        changed = 0
        for name, items in lists.items():
            if step % 2:  # every other snapshot has its own copies; the others share the dicts (region.overview)
                items[:] = [dict(x) for x in items]
            for i in set(rng.sample(range(len(items)), rng.randint(0, min(5, len(items))))):
                items[i] = {**items[i], "longest_since" if name != "warnings" else "since": at + timedelta(seconds=step + 1)}
                changed += 1
            rng.shuffle(items)  # the order moves too
        if step == 10:
            lists["centres"].append(row(99, at))  # a centre registered
            lists["warnings"].append(warning(99, at))  # a warning appears
            changed += 2
        if step == 15:
            del lists["centres"][3]  # and one gone
            lists["groups"].clear()  # nobody waits long any more
        if step == 20:
            lists["groups"] = [makers["groups"](i, at) for i in range(5)]
            changed += 5
        if step % 3 == 0:  # the recent figures apart, a new dict when the buckets move (region.overview)
            recent = {f"c{i:03d}": [step + i, i] for i in range(0, 60, 4)}
        result = {"now": at + timedelta(seconds=2 * step), "day": "2026-12-06", "sql_ms": 1.5, **lists, "recent": recent,
                  "query_ms": 1.5, "refresh": {"full": False}}
        want = json.dumps(result, ensure_ascii=False, default=json_default).encode("utf-8")
        assert encoder.dumps(result) == want
        if step == 0 or step % 2:
            assert encoder.encoded == sum(len(items) for items in lists.values())
        else:
            assert encoder.encoded == changed, step
