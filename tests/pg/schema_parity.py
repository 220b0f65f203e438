#!/usr/bin/env python3
"""Do migrations/sqlite and migrations/postgres build the same schema?

    python3 tests/pg/schema_parity.py postgres://nfp@127.0.0.1:PORT/nfp

Applies migrations/sqlite/*.sql in order to a fresh SQLite database (the sqlite3 module, in
memory), and migrations/postgres/*.sql in order, each in one transaction as sqlx's migrator
does, to a fresh schema of the PostgreSQL database at the URL (psql -v ON_ERROR_STOP=1; the
schema is dropped afterwards, so the database may be in use). Then compares:

- the migration files: the same names (sqlx versions and descriptions) in both folders;
- the tables; for each, its columns in order, and of each column its type family (integer,
  text, blob, real), whether it may be NULL and its default;
- primary keys, UNIQUE constraints, foreign keys, CHECK constraints (the columns they name
  and the literals they allow), indexes (name, table, columns, uniqueness), and triggers
  (name, table, timing, event).

Engine differences that are not schema differences:
- SQLite numbers an `INTEGER PRIMARY KEY` (the rowid) itself; PostgreSQL needs an identity.
  A rowid declared without NOT NULL (`id INTEGER PRIMARY KEY`, a surrogate key) counts as
  an identity; one declared NOT NULL (`year INTEGER PRIMARY KEY NOT NULL`) as a plain key
  the gateway always gives, as every natural key in these migrations is declared.
- Indexes that back a PRIMARY KEY or UNIQUE constraint have engine-made names
  (sqlite_autoindex_*, *_pkey, *_key): they are compared as constraints, not by name.
- PostgreSQL triggers on TRUNCATE (which SQLite lacks) have no SQLite counterpart.
- A PostgreSQL integer column must be BIGINT (sqlx's Any driver decodes int4 and int8
  differently), a real DOUBLE PRECISION; flags are BIGINT 0/1 as in SQLite, not BOOLEAN.

Prints one line when the schemas agree; otherwise every difference, and exits 1.
Python 3 standard library and the psql client only.
"""

import json
import os
import re
import sqlite3
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SQLITE_DIR = os.path.join(ROOT, "migrations", "sqlite")
POSTGRES_DIR = os.path.join(ROOT, "migrations", "postgres")


def migrations(folder):
    return sorted(f for f in os.listdir(folder) if f.endswith(".sql"))


# --------------------------------------------------------------------------- normalising


def sqlite_family(declared):
    """SQLite's type affinity of a declared type (https://sqlite.org/datatype3.html 3.1)."""
    t = declared.upper()
    if "INT" in t:
        return "integer"
    if any(s in t for s in ("CHAR", "CLOB", "TEXT")):
        return "text"
    if "BLOB" in t or not t:
        return "blob"
    if any(s in t for s in ("REAL", "FLOA", "DOUB")):
        return "real"
    return f"numeric ({declared})"


PG_FAMILY = {
    "bigint": "integer",
    "text": "text",
    "bytea": "blob",
    "double precision": "real",
    "integer": "int4 (declare it BIGINT)",
    "smallint": "int2 (declare it BIGINT)",
    "real": "float4 (declare it DOUBLE PRECISION)",
    "boolean": "boolean (flags are BIGINT 0/1)",
}


def default_text(expr):
    """A default's SQL text without PostgreSQL's casts: "''::text" -> "''"."""
    if expr is None:
        return None
    expr = expr.strip()
    while True:
        stripped = re.sub(r"::[a-z ]+(\[\])?$", "", expr)
        if stripped == expr:
            return expr
        expr = stripped


def strip_comments(sql):
    return re.sub(r"--[^\n]*", "", sql)


def checks_in(sql):
    """The bodies of the CHECK (...) clauses in a CREATE TABLE text."""
    sql = strip_comments(sql)
    found = []
    for m in re.finditer(r"\bCHECK\s*\(", sql, re.IGNORECASE):
        depth, i, quoted = 1, m.end(), False
        while depth and i < len(sql):
            c = sql[i]
            if c == "'":
                quoted = not quoted
            elif not quoted and c == "(":
                depth += 1
            elif not quoted and c == ")":
                depth -= 1
            i += 1
        found.append(sql[m.end():i - 1])
    return found


def check_key(body, columns):
    """What a CHECK constrains, engine-neutrally: the columns it names, the literals it allows."""
    literals = re.findall(r"'((?:[^']|'')*)'", body)
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", re.sub(r"'(?:[^']|'')*'", "", body)))
    return (tuple(sorted(words & set(columns))), tuple(sorted(literals)))


# --------------------------------------------------------------------------- SQLite


def sqlite_schema():
    db = sqlite3.connect(":memory:")
    for name in migrations(SQLITE_DIR):
        with open(os.path.join(SQLITE_DIR, name)) as f:
            db.executescript(f.read())
    s = empty_schema()
    tables = [r[0] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND name <> '_sqlx_migrations'")]
    for t in tables:
        info = db.execute(f'PRAGMA table_info("{t}")').fetchall()
        pk = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
        cols = []
        for _cid, name, declared, notnull, default, _pk in info:
            rowid = pk == [name] and declared.upper() == "INTEGER"
            if rowid:
                # The rowid is never NULL; SQLite numbers it when it is omitted.
                default = "identity" if not notnull else None
                notnull = 1
            cols.append((name, sqlite_family(declared), bool(notnull), default_text(default)))
        s["columns"][t] = cols
        s["pk"][t] = tuple(pk)
        for _seq, index, unique, origin, _partial in db.execute(f'PRAGMA index_list("{t}")'):
            names = tuple(r[2] for r in db.execute(f'PRAGMA index_info("{index}")'))
            if origin == "c":
                s["indexes"][index] = (t, names, bool(unique))
            elif origin == "u":
                s["unique"].add((t, names))
        fks = {}
        for fid, _seq, ref, frm, to, on_update, on_delete, _match in db.execute(
                f'PRAGMA foreign_key_list("{t}")'):
            fks.setdefault(fid, (ref, [], [], on_update, on_delete))
            fks[fid][1].append(frm)
            fks[fid][2].append(to)
        for ref, frm, to, on_update, on_delete in fks.values():
            if None in to:  # REFERENCES t without columns: its primary key
                to = [r[1] for r in sorted((r for r in db.execute(f'PRAGMA table_info("{ref}")')
                                            if r[5]), key=lambda r: r[5])]
            s["fk"].add((t, tuple(frm), ref, tuple(to), on_update, on_delete))
        (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                            (t,)).fetchone()
        s["checks"][t] = sorted(check_key(b, [c[0] for c in cols]) for b in checks_in(sql))
    for name, table, sql in db.execute(
            "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"):
        m = re.search(r"\b(BEFORE|AFTER|INSTEAD\s+OF)?\s*(INSERT|UPDATE|DELETE)\b\s+(OF\b|ON\b)",
                      strip_comments(sql), re.IGNORECASE)
        timing = re.sub(r"\s+", " ", (m.group(1) or "BEFORE").upper()) if m else "?"
        event = m.group(2).upper() if m else "?"
        s["triggers"].add((name, table, timing, event))
    return s


def empty_schema():
    return {"columns": {}, "pk": {}, "unique": set(), "fk": set(), "checks": {},
            "indexes": {}, "triggers": set()}


# --------------------------------------------------------------------------- PostgreSQL

PG_QUERY = """
SELECT json_build_object(
  'columns', (SELECT json_agg(json_build_object(
      'table', c.relname, 'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
      'notnull', a.attnotnull, 'identity', a.attidentity <> '',
      'default', pg_get_expr(d.adbin, d.adrelid)) ORDER BY c.relname, a.attnum)
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relnamespace = 'SCHEMA'::regnamespace AND c.relkind = 'r'
      AND a.attnum > 0 AND NOT a.attisdropped),
  'constraints', (SELECT json_agg(json_build_object(
      'table', c.conrelid::regclass::text, 'type', c.contype,
      'columns', (SELECT json_agg(a.attname ORDER BY k.ord)
                  FROM unnest(c.conkey) WITH ORDINALITY k(num, ord)
                  JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num),
      'ref', c.confrelid::regclass::text,
      'ref_columns', (SELECT json_agg(a.attname ORDER BY k.ord)
                      FROM unnest(c.confkey) WITH ORDINALITY k(num, ord)
                      JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num),
      'on_update', c.confupdtype, 'on_delete', c.confdeltype,
      'def', pg_get_constraintdef(c.oid)))
    FROM pg_constraint c WHERE c.connamespace = 'SCHEMA'::regnamespace AND c.conrelid <> 0),
  'indexes', (SELECT json_agg(json_build_object(
      'name', i.relname, 'table', t.relname, 'unique', x.indisunique,
      'columns', (SELECT json_agg(a.attname ORDER BY k.ord)
                  FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(num, ord)
                  JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.num)))
    FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
    WHERE t.relnamespace = 'SCHEMA'::regnamespace
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)),
  'triggers', (SELECT json_agg(json_build_object(
      'name', g.tgname, 'table', t.relname, 'type', g.tgtype))
    FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid
    WHERE t.relnamespace = 'SCHEMA'::regnamespace AND NOT g.tgisinternal))
"""


def psql(url, *args, input=None, env=None):
    r = subprocess.run(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", *args],
                       input=input, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip() or f"psql exited {r.returncode}")
    return r.stdout


def postgres_schema(url):
    schema = f"nfp_parity_{os.getpid()}"
    psql(url, "-c", f"CREATE SCHEMA {schema}")
    try:
        env = dict(os.environ, PGOPTIONS=f"-c search_path={schema}")
        for name in migrations(POSTGRES_DIR):
            try:
                psql(url, "--single-transaction", "-f", os.path.join(POSTGRES_DIR, name), env=env)
            except RuntimeError as e:
                raise RuntimeError(f"migrations/postgres/{name}: {e}") from None
        raw = json.loads(psql(url, "-A", "-t", input=PG_QUERY.replace("SCHEMA", schema)))
    finally:
        psql(url, "-c", f"DROP SCHEMA {schema} CASCADE")
    return parse_postgres(raw, schema)


# pg_constraint.confupdtype / confdeltype, as SQLite's PRAGMA foreign_key_list names them.
FK_ACTION = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def parse_postgres(raw, schema):
    s = empty_schema()
    for c in raw["columns"] or []:
        family = PG_FAMILY.get(c["type"], c["type"])
        default = "identity" if c["identity"] else default_text(c["default"])
        s["columns"].setdefault(c["table"], []).append(
            (c["name"], family, c["notnull"], default))

    def table(name):  # regclass text may be schema-qualified
        return name.split(".", 1)[1] if name.startswith(schema + ".") else name

    for c in raw["constraints"] or []:
        t, cols = table(c["table"]), tuple(c["columns"] or ())
        if c["type"] == "p":
            s["pk"][t] = cols
        elif c["type"] == "u":
            s["unique"].add((t, cols))
        elif c["type"] == "f":
            s["fk"].add((t, cols, table(c["ref"]), tuple(c["ref_columns"]),
                         FK_ACTION[c["on_update"]], FK_ACTION[c["on_delete"]]))
        elif c["type"] == "c":
            body = c["def"][c["def"].index("(") + 1:c["def"].rindex(")")]
            names = [col[0] for col in s["columns"].get(t, [])]
            s["checks"].setdefault(t, []).append(check_key(body, names))
    for t in s["columns"]:
        s["pk"].setdefault(t, ())
        s["checks"][t] = sorted(s["checks"].get(t, []))
    for i in raw["indexes"] or []:
        s["indexes"][i["name"]] = (i["table"], tuple(i["columns"]), i["unique"])
    for g in raw["triggers"] or []:
        ty = g["type"]  # pg_trigger.tgtype: 1 ROW, 2 BEFORE, 64 INSTEAD; 4 INSERT ... 32 TRUNCATE
        timing = "INSTEAD OF" if ty & 64 else "BEFORE" if ty & 2 else "AFTER"
        events = [e for bit, e in ((4, "INSERT"), (8, "DELETE"), (16, "UPDATE")) if ty & bit]
        if ty & 32 and not events:
            continue  # TRUNCATE only: SQLite has no TRUNCATE
        for e in events:
            s["triggers"].add((g["name"], g["table"], timing, e))
    return s


# --------------------------------------------------------------------------- comparing


def compare(lite, pg):
    out = []
    for t in sorted(set(lite["columns"]) - set(pg["columns"])):
        out.append(f"table {t}: only in SQLite")
    for t in sorted(set(pg["columns"]) - set(lite["columns"])):
        out.append(f"table {t}: only in PostgreSQL")
    for t in sorted(set(lite["columns"]) & set(pg["columns"])):
        a, b = lite["columns"][t], pg["columns"][t]
        if [c[0] for c in a] != [c[0] for c in b]:
            out.append(f"table {t}: columns differ: SQLite ({', '.join(c[0] for c in a)}) "
                       f"PostgreSQL ({', '.join(c[0] for c in b)})")
        pgcols = {c[0]: c for c in b}
        for name, family, notnull, default in a:
            if name not in pgcols:
                continue
            _, f2, n2, d2 = pgcols[name]
            if family != f2:
                out.append(f"{t}.{name}: type {family} in SQLite, {f2} in PostgreSQL")
            if notnull != n2:
                out.append(f"{t}.{name}: {'NOT NULL' if notnull else 'nullable'} in SQLite, "
                           f"{'NOT NULL' if n2 else 'nullable'} in PostgreSQL")
            if default != d2:
                out.append(f"{t}.{name}: default {default or 'none'} in SQLite, "
                           f"{d2 or 'none'} in PostgreSQL")
        if lite["pk"].get(t) != pg["pk"].get(t):
            out.append(f"table {t}: primary key {lite['pk'].get(t)} in SQLite, "
                       f"{pg['pk'].get(t)} in PostgreSQL")
        if lite["checks"].get(t) != pg["checks"].get(t):
            out.append(f"table {t}: CHECKs {lite['checks'].get(t)} in SQLite, "
                       f"{pg['checks'].get(t)} in PostgreSQL")
    for what in ("unique", "fk", "triggers"):
        for x in sorted(lite[what] - pg[what]):
            out.append(f"{what} {x}: only in SQLite")
        for x in sorted(pg[what] - lite[what]):
            out.append(f"{what} {x}: only in PostgreSQL")
    for name in sorted(set(lite["indexes"]) | set(pg["indexes"])):
        a, b = lite["indexes"].get(name), pg["indexes"].get(name)
        if a != b:
            out.append(f"index {name}: {a or 'missing'} in SQLite, {b or 'missing'} in PostgreSQL")
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} postgres://USER@HOST:PORT/DATABASE")
    differences = []
    a, b = migrations(SQLITE_DIR), migrations(POSTGRES_DIR)
    if a != b:
        differences.append(f"migration files differ: sqlite {a}, postgres {b}")
    try:
        lite = sqlite_schema()
        pg = postgres_schema(sys.argv[1])
    except (RuntimeError, sqlite3.Error, OSError) as e:
        sys.exit(f"schema_parity: {e}")
    differences += compare(lite, pg)
    if differences:
        print(f"schema_parity: {len(differences)} difference(s) between migrations/sqlite "
              "and migrations/postgres:", file=sys.stderr)
        for d in differences:
            print(f"  {d}", file=sys.stderr)
        sys.exit(1)
    print(f"schema_parity: the same schema: {len(a)} migrations, {len(lite['columns'])} tables, "
          f"{sum(len(c) for c in lite['columns'].values())} columns, "
          f"{len(lite['indexes'])} indexes, {len(lite['triggers'])} triggers")


if __name__ == "__main__":
    main()
