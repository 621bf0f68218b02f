"""The national box's copy of the provinces' summary rows, by PostgreSQL's logical replication.

Why replication and not another intake: the 34 provincial databases already hold, maintained in
each event's transaction, every figure a dashboard shows (:mod:`region.store`). The national box
needs those few thousand rows per province, never the events, and PostgreSQL's own logical
replication carries them: a publication on each province, one subscription per province on the
national box. A cut link resumes from the province's replication slot (the province keeps its WAL
until the national box has confirmed it), and every row is applied once, keyed, so nothing doubles.

What is published (:data:`PUBLISHED`): exactly the tables :func:`region.report.figures` reads.
Each published table gets a ``province`` column whose default is the province's code, and a unique
index ``(province, <primary key>)`` used as its replica identity: the 34 publishers then write into
the same national tables without colliding, even where two provinces chose the same centre id.
Truncates are not published: a province's ``TRUNCATE`` would empty the national table of every
province; after a province rebuilds its maintained tables (its schema migration), run
:func:`resync_province` for it.

On the national box the tables are created from what the province really has (its columns and its
replica identity, read over the subscription's own connection), so a province on a newer schema
adds its new columns here instead of stopping the apply. Each province also gets a schema
``p_<code>`` of views over its rows with the province's own table names: the national dashboard
runs the province dashboard's own :func:`region.report.figures` in that schema, once per province,
so the figures and the early warnings are the province's, not a copy.

Everything is idempotent: run it again after adding a province, a table or a column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

PUBLISHED = ("centres", "groups", "daily", "daily_centre", "now_groups", "recent", "dossiers")
"""The summary tables the national view reads (``region.report``): never events, hourly or tickets."""
PUBLICATION = "luot_national"
PROVINCE_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
PUBLISH_OPERATIONS = "insert, update, delete"


class ReplicationError(RuntimeError):
    """A setup step PostgreSQL would refuse, said before trying (Vietnamese, then English)."""


def subscription_name(code: str) -> str:
    return "luot_national_" + code.replace("-", "_")


def replication_user(code: str) -> str:
    """The province's replication login: one per province (roles are per cluster, and a test or a
    small deployment may keep two provinces' databases in one cluster)."""
    return "luot_national_" + code.replace("-", "_")


def view_schema(code: str) -> str:
    return "p_" + code.replace("-", "_")


def _check_code(code: str) -> str:
    if not PROVINCE_CODE.match(code):
        raise ReplicationError(f"Mã tỉnh không hợp lệ: {code!r} / invalid province code (lowercase letters, digits, '-')")
    return code


def _primary_key(conn: psycopg.Connection[Any], table: str) -> list[str]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY k.ord", (table,)).fetchall()
    return [r[0] for r in rows]


# ------------------------------------------------------------------ the province (publisher)
def prepare_province(conn: psycopg.Connection[Any], code: str, password: str) -> dict[str, Any]:
    """On a provincial database (as its owner or a superuser, autocommit): tag the summary tables
    with the province, give them a replica identity that includes it, create the replication user
    and the publication. Returns what it found and did, for ``luot national publish``."""
    _check_code(code)
    level = conn.execute("SHOW wal_level").fetchone()
    if not level or level[0] != "logical":
        raise ReplicationError(
            f"wal_level = {level[0] if level else '?'}: cần đặt wal_level = logical trong postgresql.conf rồi khởi động lại "
            "PostgreSQL / set wal_level = logical in postgresql.conf and restart PostgreSQL (docs/national.md)")
    missing = [t for t in PUBLISHED if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0] is None]
    if missing:
        raise ReplicationError(f"Chưa có bảng {', '.join(missing)}: hãy chạy `luot region` một lần trước / "
                               f"tables missing ({', '.join(missing)}): start `luot region` once first")
    with conn.transaction():
        for table in PUBLISHED:
            t = sql.Identifier(table)
            conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS province text NOT NULL DEFAULT {}")
                         .format(t, sql.Literal(code)))
            other = conn.execute(sql.SQL("SELECT province FROM {} WHERE province <> %s LIMIT 1").format(t), (code,)).fetchone()
            if other:
                raise ReplicationError(f"Bảng {table} đã mang mã tỉnh {other[0]!r}, không phải {code!r} / "
                                       f"table {table} is already tagged {other[0]!r}, not {code!r}")
            conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN province SET DEFAULT {}").format(t, sql.Literal(code)))
            key = [c for c in _primary_key(conn, table) if c != "province"]
            index = sql.Identifier(f"{table}_national_key")
            conn.execute(sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} (province, {})")
                         .format(index, t, sql.SQL(", ").join(map(sql.Identifier, key))))
            conn.execute(sql.SQL("ALTER TABLE {} REPLICA IDENTITY USING INDEX {}").format(t, index))
        role = sql.Identifier(replication_user(code))
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (replication_user(code),)).fetchone()
        verb = sql.SQL("ALTER ROLE") if exists else sql.SQL("CREATE ROLE")
        conn.execute(sql.SQL("{} {} WITH LOGIN REPLICATION PASSWORD {}").format(verb, role, sql.Literal(password)))
        conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(
            sql.SQL(", ").join(map(sql.Identifier, PUBLISHED)), role))
        tables = sql.SQL(", ").join(map(sql.Identifier, PUBLISHED))
        publication = sql.Identifier(PUBLICATION)
        if conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (PUBLICATION,)).fetchone():
            conn.execute(sql.SQL("ALTER PUBLICATION {} SET TABLE {}").format(publication, tables))
            conn.execute(sql.SQL("ALTER PUBLICATION {} SET (publish = {})").format(publication, sql.Literal(PUBLISH_OPERATIONS)))
        else:
            conn.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE {} WITH (publish = {})")
                         .format(publication, tables, sql.Literal(PUBLISH_OPERATIONS)))
    rows = {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0] for t in PUBLISHED}
    return {"province": code, "publication": PUBLICATION, "user": replication_user(code), "tables": rows}


# ------------------------------------------------------------------ the national box (subscriber)
@dataclass(frozen=True)
class ProvinceSource:
    """One province as the national box reaches it."""

    code: str
    name: str
    conninfo: str  # libpq connection string of the province's database, as its replication_user


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool


def published_shape(conninfo: str) -> dict[str, tuple[list[Column], list[str]]]:
    """Per published table, the province's columns and its replica identity (read on the province)."""
    shape: dict[str, tuple[list[Column], list[str]]] = {}
    with psycopg.connect(conninfo, connect_timeout=10) as conn:
        for table in PUBLISHED:
            cols = [Column(n, t, nn) for n, t, nn in conn.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull FROM pg_attribute a "
                "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (table,))]
            key = [r[0] for r in conn.execute(
                "SELECT a.attname FROM pg_index i CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
                "WHERE i.indrelid = %s::regclass AND i.indisreplident ORDER BY k.ord", (table,))]
            if "province" not in key:
                raise ReplicationError(f"Tỉnh chưa được chuẩn bị (bảng {table}): chạy `luot national publish` ở tỉnh / "
                                       f"the province is not prepared (table {table}): run `luot national publish` there")
            shape[table] = (cols, key)
    return shape


def ensure_tables(conn: psycopg.Connection[Any], shape: dict[str, tuple[list[Column], list[str]]]) -> list[str]:
    """Create the national tables from a province's shape, or add the columns they lack. Returns
    the columns added to existing tables (a province on a newer schema)."""
    added: list[str] = []
    for table, (cols, key) in shape.items():
        t = sql.Identifier(table)
        have = {r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped", (table,))}
        if not have:
            defs = [sql.SQL("{} {}{}").format(sql.Identifier(c.name), sql.SQL(c.type), sql.SQL(" NOT NULL" if c.not_null else ""))
                    for c in cols]
            defs.append(sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, key))))
            conn.execute(sql.SQL("CREATE TABLE {} ({})").format(t, sql.SQL(", ").join(defs)))
            # the province's own key order too (e.g. daily by day first): the country-wide report
            # (views p_all) filters on it across provinces, as a province's report does at home
            conn.execute(sql.SQL("CREATE INDEX {} ON {} ({})").format(
                sql.Identifier(f"{table}_across"), t, sql.SQL(", ").join(sql.Identifier(c) for c in key if c != "province")))
            continue
        for c in cols:
            if c.name not in have:  # nullable: the other provinces' rows have no value for it
                conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(t, sql.Identifier(c.name), sql.SQL(c.type)))
                added.append(f"{table}.{c.name}")
    return added


ALL = "p_all"
"""The schema of views over every province at once, centre ids as ``<province>/<centre>``."""
SEPARATOR = "/"  # never in a province code or a centre id (luot.config.SLUG)


def ensure_views(conn: psycopg.Connection[Any], code: str | None) -> None:
    """Schema ``p_<code>``: one view per published table with that province's rows and the
    province's own column list (no ``province``), for :func:`region.report.figures`. ``code``
    None: schema ``p_all`` with every province's rows, each centre id prefixed with its province,
    so one run of the same report covers the country (a few statements, not a few per province)."""
    schema = sql.Identifier(ALL if code is None else view_schema(code))
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
    for table in PUBLISHED:
        cols = [r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
            "AND attname <> 'province' ORDER BY attnum", (f"public.{table}",))]
        conn.execute(sql.SQL("DROP VIEW IF EXISTS {}.{}").format(schema, sql.Identifier(table)))
        if code is None:
            select = [sql.SQL("province || {} || centre AS centre").format(sql.Literal(SEPARATOR)) if c == "centre"
                      else sql.Identifier(c) for c in cols]
            where = sql.SQL("")
        else:
            select = [sql.Identifier(c) for c in cols]
            where = sql.SQL(" WHERE province = {}").format(sql.Literal(code))
        conn.execute(sql.SQL("CREATE VIEW {}.{} AS SELECT {} FROM public.{}{}").format(
            schema, sql.Identifier(table), sql.SQL(", ").join(select), sql.Identifier(table), where))


def ensure_registry(conn: psycopg.Connection[Any], provinces: list[ProvinceSource]) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS provinces (code text PRIMARY KEY, name text NOT NULL)")
    for p in provinces:
        conn.execute("INSERT INTO provinces (code, name) VALUES (%s, %s) ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name",
                     (p.code, p.name))


def subscribe(conn: psycopg.Connection[Any], province: ProvinceSource) -> str:
    """Create the province's subscription, or bring an existing one up to date and enabled.
    Autocommit only: CREATE SUBSCRIPTION creates the slot on the province and cannot run in a
    transaction. Returns ``created`` or ``refreshed``."""
    name = subscription_name(province.code)
    sub = sql.Identifier(name)
    row = conn.execute("SELECT subconninfo FROM pg_subscription WHERE subname = %s", (name,)).fetchone()
    if row is None:
        conn.execute(sql.SQL("CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {}").format(
            sub, sql.Literal(province.conninfo), sql.Identifier(PUBLICATION)))
        return "created"
    if row[0] != province.conninfo:
        conn.execute(sql.SQL("ALTER SUBSCRIPTION {} CONNECTION {}").format(sub, sql.Literal(province.conninfo)))
    conn.execute(sql.SQL("ALTER SUBSCRIPTION {} ENABLE").format(sub))
    conn.execute(sql.SQL("ALTER SUBSCRIPTION {} REFRESH PUBLICATION").format(sub))  # tables added since: copied
    return "refreshed"


def prepare_national(conn: psycopg.Connection[Any], provinces: list[ProvinceSource]) -> dict[str, Any]:
    """On the national database (a superuser, autocommit): tables, views and one subscription per
    province. A province that cannot be reached is reported and skipped; run it again later."""
    done: dict[str, Any] = {}
    for p in provinces:
        _check_code(p.code)
    with conn.transaction():
        ensure_registry(conn, provinces)
    for p in provinces:
        try:
            shape = published_shape(p.conninfo)
        except (psycopg.OperationalError, ReplicationError) as error:
            done[p.code] = {"ok": False, "error": str(error).strip()[:300]}
            continue
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(80210019)")
            added = ensure_tables(conn, shape)
            ensure_views(conn, p.code)
        try:
            done[p.code] = {"ok": True, "subscription": subscribe(conn, p), "columns_added": added}
        except psycopg.Error as error:  # e.g. the province's max_wal_senders reached: say so, go on
            done[p.code] = {"ok": False, "error": str(error).strip()[:300]}
    # a province whose new column reached the tables after another's views were made: views again
    with conn.transaction():
        for p in provinces:
            if done[p.code].get("ok"):
                ensure_views(conn, p.code)
        if conn.execute("SELECT to_regclass('public.centres')").fetchone()[0] is not None:
            ensure_views(conn, None)
    return done


def resync_province(conn: psycopg.Connection[Any], province: ProvinceSource) -> dict[str, Any]:
    """Copy a province's rows afresh: drop its subscription (and its slot on the province), delete
    its rows here, subscribe again (the initial copy). For a province whose maintained tables were
    rebuilt with TRUNCATE, which is not replicated, or that moved to another box (a failover: the
    new box has no slot for us; the old one, unreachable, keeps its slot until someone drops it)."""
    name = subscription_name(province.code)
    sub = sql.Identifier(name)
    slot_left = False
    if conn.execute("SELECT 1 FROM pg_subscription WHERE subname = %s", (name,)).fetchone():
        try:
            conn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(sub))  # drops its slot on the province too
        except psycopg.OperationalError:  # the old box unreachable (failed over, replaced): leave its slot
            conn.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(sub))
            conn.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(sub))
            conn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(sub))
            slot_left = True
    deleted = {}
    with conn.transaction():
        for table in PUBLISHED:
            if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is not None:
                cur = conn.execute(sql.SQL("DELETE FROM {} WHERE province = %s").format(sql.Identifier(table)), (province.code,))
                deleted[table] = cur.rowcount
    return {"deleted": deleted, "old_slot_left_on_province": slot_left, **prepare_national(conn, [province])[province.code]}


def cut(conn: psycopg.Connection[Any], code: str, enabled: bool) -> None:
    """Stop (or restart) applying a province's changes; the province keeps them in its slot."""
    conn.execute(sql.SQL("ALTER SUBSCRIPTION {} {}").format(
        sql.Identifier(subscription_name(code)), sql.SQL("ENABLE" if enabled else "DISABLE")))


STATUS_SQL = """
SELECT p.code, p.name, s.subenabled AS enabled, st.pid IS NOT NULL AS connected,
       st.received_lsn::text, st.latest_end_lsn::text, st.last_msg_receipt_time, st.latest_end_time,
       extract(epoch FROM now() - st.last_msg_receipt_time)::float AS quiet_seconds,
       (SELECT count(*) FROM pg_subscription_rel r WHERE r.srsubid = s.oid AND r.srsubstate <> 'r') AS tables_copying
FROM provinces p
LEFT JOIN pg_subscription s ON s.subname = 'luot_national_' || replace(p.code, '-', '_')
LEFT JOIN pg_stat_subscription st ON st.subid = s.oid AND st.relid IS NULL
ORDER BY p.code
"""


def replication_status(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Per province: is its subscription enabled and connected, when did the province last speak
    (``quiet_seconds`` by the national box's own clock), are tables still in their initial copy. (Reading pg_stat_subscription needs pg_read_all_stats.)"""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(STATUS_SQL)
        return [dict(r) for r in cur.fetchall()]
