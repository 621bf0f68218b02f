"""Issue 19: the province snapshot's JSON with unchanged rows reused (region.rowjson) is byte for
byte the JSON of the whole snapshot, whatever changed between snapshots, and only changed rows
are encoded again."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from typing import Any

from region.dashboard import json_default
from region.rowjson import RowJson


def row(i: int, at: datetime) -> dict[str, Any]:
    return {"centre": f"c{i:03d}", "name": f"Phường Hàng Bạc {i}", "waiting": i % 7, "longest_wait_minutes": 0.0,
            "mean_wait_minutes": None, "last_event_at": at, "link": "ok", "note": 'a "quoted" \\ text\n'}


def test_reused_rows_give_the_same_bytes_as_encoding_everything() -> None:
    rng = random.Random(19)
    at = datetime(2026, 12, 6, 9, 30, tzinfo=timezone.utc)
    rows = [row(i, at) for i in range(60)]
    encoder = RowJson(json_default)
    for step in range(25):
        rows = [dict(r) for r in rows]  # each snapshot has its own copies, as region.overview returns them
        changed = rng.sample(range(len(rows)), rng.randint(0, 8))
        for i in changed:
            rows[i]["longest_wait_minutes"] = round(rng.uniform(0, 90), 1)
            rows[i]["last_event_at"] = at + timedelta(seconds=step)
        if step == 10:
            rows.append(row(99, at))  # a centre registered
        if step == 15:
            del rows[3]  # and one gone
        rng.shuffle(rows)  # the order moves too
        result = {"now": at + timedelta(seconds=2 * step), "day": "2026-12-06", "centres": rows,
                  "warnings": [{"centre": "c001", "level": "cao"}], "groups": [], "query_ms": 1.5}
        want = json.dumps(result, ensure_ascii=False, default=json_default).encode("utf-8")
        assert encoder.dumps(result) == want
        if step == 0:
            assert encoder.encoded == len(rows)
        else:
            assert encoder.encoded == len(set(changed)) + (step == 10)
