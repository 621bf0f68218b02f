"""Luot region: many centres bridged into one provincial picture on PostgreSQL (docs/region.md).

- :mod:`region.bridge` generates each centre's Mosquitto bridge and the regional broker's set-up;
- :mod:`region.ingest` subscribes to the regional broker and catches up over HTTP;
- :mod:`region.store` is the PostgreSQL schema (monthly partitions, rollups, the dashboard's tables
  maintained in each batch's transaction) and its writes;
- :mod:`region.deltas` sums what a batch adds to each maintained row, so each is written once;
- :mod:`region.report` reads the province figures from those tables;
- :mod:`region.live` wakes every viewer on change and keeps the one snapshot they share;
- :mod:`region.warnings` turns figures into early warnings in plain Vietnamese;
- :mod:`region.dashboard` serves the province dashboard;
- :mod:`region.doctor` checks a regional box (``luot doctor --centres``: the broker's open files).
"""
