"""``luot predict``: the expected-wait predictor's answer for a queue scenario, as JSON.

Either a simple scenario (``--waiting 12 --counters 2 --group ho-tich``: that many tickets of one
group waiting, that many counters open for it), or a JSON file describing the queue::

    {"counters": [{"number": 1, "serving": {"group": "ho-tich", "elapsed_minutes": 3}}, {"number": 2}],
     "waiting": [{"group": "ho-tich"}, {"group": "chung-thuc", "priority": "elderly"}]}

Counters keep the groups of the centre file. The scenario is played into a fresh engine (the same
code the server runs) and its estimates are printed, in calling order, with the naive baseline
"people ahead x mean service time / open counters" beside them, the range the citizen is told and
its wording.

Or a scenario family of simulated days (``--scenario ordinary --seeds 2``; families: ordinary,
heavy-monday, paused-late, surge, slower, and the two days whose centre file misjudges the service
times, wrong-file and slow-file): the figures bench/bench_queueing.py prints (MAE, bias,
share under-estimated by more than 10 minutes and range coverage of our estimate and of LES, HOL,
QL, the 30-minute rolling average, naive and naive counted in the centre's open hours, overall
and for waits crossing a break; the gain against the best classic predictor, against the
strongest simple one and against the strongest simple one recalibrated to break as few promises
as ours: ``gain_vs_best``, ``gain_vs_simple``, ``gain_vs_matched``), as JSON; and the
same days again with the estimator given the profile of ``--history`` earlier simulated days of the
same family (``with_history``; server/wait_history.py), as a running server is given its own.
"""

from __future__ import annotations

HELP = "expected waits the predictor gives for a queue scenario (JSON)"

import argparse
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="centre TOML file (default: the shipped sample centre)")
    parser.add_argument("--waiting", type=int, default=0, help="number of tickets waiting (simple scenario)")
    parser.add_argument("--counters", type=int, default=1, help="open counters serving the group (simple scenario)")
    parser.add_argument("--group", help="group code of the simple scenario (default: the first group)")
    parser.add_argument("--queue", help="JSON file describing counters and waiting tickets (instead of the above)")
    parser.add_argument("--scenario", help="a family of simulated days to score instead: ordinary, heavy-monday, "
                                           "paused-late, surge, slower, wrong-file or slow-file")
    parser.add_argument("--seeds", type=int, default=2, help="simulated days (seeds 0..N-1) for --scenario")
    parser.add_argument("--history", type=int, default=5, metavar="DAYS",
                        help="for --scenario: also score with the profile of DAYS earlier days (0: not; at most 10)")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed for --scenario (the benchmark reports 5000-5029)")


def _scenario(args: argparse.Namespace, config: Any) -> dict[str, Any]:
    if args.queue:
        return json.loads(Path(args.queue).read_text("utf-8"))
    group = args.group or config.groups[0].code
    config.group(group)  # KeyError for an unknown group
    serving = [c.number for c in config.counters if group in c.groups]
    if args.counters > len(serving):
        raise ValueError(f"only {len(serving)} counter(s) serve {group} in this centre: {serving}")
    if args.waiting < 0 or args.waiting > 999:
        raise ValueError("--waiting must be between 0 and 999")
    return {"counters": [{"number": n} for n in serving[:args.counters]],
            "waiting": [{"group": group} for _ in range(args.waiting)]}


def scenario_time(config: Any, now: datetime) -> datetime:
    """10:00 of the centre's current day: the scenario opens its counters an hour before "now"
    and its busy counters started minutes before that, all of which must fall on the same service
    day even when the command is run just after midnight (the engine would close the day)."""
    local = now.astimezone(config.zone)
    return local.replace(hour=10, minute=0, second=0, microsecond=0).astimezone(timezone.utc)


def score_family(config: Any, family: str, seeds: list[int], history_days: int = 0) -> dict[str, Any]:
    """The benchmark's figures for one scenario family (server/wait_scenarios.py); with
    ``history_days``, also ``with_history``: the same days, the estimator knowing earlier ones."""
    from zoneinfo import ZoneInfo

    from server import wait_scenarios

    if family not in wait_scenarios.SCENARIOS:
        raise ValueError(f"unknown scenario {family!r}; expected one of {', '.join(wait_scenarios.SCENARIOS)}")
    if not 1 <= len(seeds) <= 50:
        raise ValueError("--seeds must be between 1 and 50")
    if not 0 <= history_days <= 10:
        raise ValueError("--history must be between 0 and 10 days")
    first = datetime(2026, 11, 2, tzinfo=ZoneInfo(config.centre.timezone))  # a Monday
    scenario = wait_scenarios.SCENARIOS[family]
    result = {"scenario": family, "description": scenario.description, "seeds": seeds,
              **wait_scenarios.run_family(config, scenario, seeds, first)}
    if history_days:
        result["with_history"] = {"history_days": history_days,
                                  **wait_scenarios.run_family(config, scenario, seeds, first, history_days)}
    return result


def predict(config: Any, scenario: dict[str, Any], now: Any) -> dict[str, Any]:
    from server.engine import QueueEngine
    from server.estimates import wait_view

    engine = QueueEngine(config)
    start = now - timedelta(hours=1)
    counters = scenario.get("counters", [])
    for item in counters:
        engine.open_counter(int(item["number"]), item.get("officer", "predict"), start)
    for item in counters:  # a counter busy with a citizen: called and started `elapsed_minutes` ago
        serving = item.get("serving")
        if serving:
            began = now - timedelta(minutes=float(serving.get("elapsed_minutes", 0)))
            ticket, _ = engine.issue(serving["group"], start)
            engine.call_ticket(int(item["number"]), ticket.id, began)
            engine.start(int(item["number"]), began)
    tickets = []
    for index, item in enumerate(scenario.get("waiting", [])):
        ticket, _ = engine.issue(item["group"], now - timedelta(seconds=len(scenario["waiting"]) - index),
                                 priority=item.get("priority"))
        tickets.append(ticket)
    estimates = engine.estimates(now)
    rows = []
    for ticket in engine.waiting():
        estimate = estimates[ticket.id]
        open_for_group = [c for c in engine.counters.values() if c.status not in ("closed", "paused")
                          and ticket.group in c.groups]
        baseline = (round(estimate.ahead * engine.mean_service_minutes(ticket.group) / len(open_for_group), 1)
                    if open_for_group else None)
        view = wait_view(config, estimate, now)
        rows.append({"number": ticket.number, "group": ticket.group, "priority": ticket.priority,
                     "ahead": estimate.ahead, "wait_minutes": estimate.wait_minutes,
                     "mean_minutes": estimate.mean_minutes, "baseline_minutes": baseline,
                     "wait_range_minutes": view["wait_range_minutes"], "expected_at": view["expected_at"],
                     "wait_text": view["wait_text"]})
    return {"counters_open": [c.number for c in engine.counters.values() if c.status != "closed"],
            "cycle_minutes": {g.code: round(engine.cycle_minutes(g.code), 2) for g in config.groups
                              if any(t.group == g.code for t in tickets)},
            "tickets": rows}


def run(args: argparse.Namespace) -> int:
    from luot.config import load_config
    from server.engine import QueueError, utc_now

    config = load_config(args.config)
    try:
        if args.scenario:
            result = score_family(config, args.scenario, list(range(args.first_seed, args.first_seed + args.seeds)),
                                  args.history)
        else:
            result = predict(config, _scenario(args, config), scenario_time(config, utc_now()))
    except (ValueError, KeyError, TypeError, OSError) as error:
        print(f"luot predict: {error}", file=sys.stderr)
        return 1
    except QueueError as error:
        print(f"luot predict: {error.message_en}", file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False))
    return 0
