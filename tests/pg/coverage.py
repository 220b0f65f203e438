#!/usr/bin/env python3
"""tests/pg/coverage.py POSTGRES_LOG: which of the gateway's SQL statements a
test run executed on PostgreSQL.

Every statement the gateway runs is a string literal in gateway/src/store.rs
or gateway/src/store/*.rs. Run the PostgreSQL tests against a server that
logs every statement, then give this script the server's log:

    tests/pg/cluster.sh start /tmp/pgcov 25440
    psql postgres://nfp@127.0.0.1:25440/nfp -c "ALTER SYSTEM SET log_statement = 'all'" -c "SELECT pg_reload_conf()"
    NFP_TEST_POSTGRES=postgres://nfp@127.0.0.1:25440/nfp cargo test --test daemon --test store postgres
    python3 tests/pg/coverage.py /tmp/pgcov/postgres.log

scripts/test.sh does exactly this on every full run (CI).

It prints each statement of the source that no logged statement matches
(compared on whitespace-normalised text, `{COLUMNS}`-style format
arguments expanded), and a count; exit status 1 when any is missing.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Files that only ever talk to a SQLite file: `db backup` and `db restore`
# (a PostgreSQL store is backed up with the server's own tools).
SQLITE_ONLY = {"backup.rs"}
SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.I)


def norm(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip().rstrip(";")


def statements() -> list[tuple[str, str]]:
    """(file:line, SQL) of every SQL string literal in the store's source."""
    found = []
    for path in [ROOT / "gateway/src/store.rs", *sorted((ROOT / "gateway/src/store").glob("*.rs"))]:
        if path.name in SQLITE_ONLY:
            continue
        text = path.read_text()
        consts = dict(re.findall(r'const (\w+): &str =\s*"((?:[^"\\]|\\.)*)";', text, re.S))
        for m in re.finditer(r'"((?:[^"\\]|\\.)*)"', text, re.S):
            literal = m.group(1)
            if not SQL_START.match(literal) or "{" in literal and "}" not in literal:
                continue
            if any(word in literal for word in ("sqlite_master", "pragma_", "total_changes()")):
                continue  # the SQLite side of an engine-specific pair
            for name, value in consts.items():
                literal = literal.replace("{" + name + "}", value)
            if "{" in literal:  # a dynamic part (a table name): the literal's stem must match
                literal = literal.split("{", 1)[0]
            line = text.count("\n", 0, m.start()) + 1
            found.append((f"{path.relative_to(ROOT)}:{line}", norm(literal.replace("\\n", " "))))
    return found


def logged(log: Path) -> list[str]:
    out, current = [], None
    for line in log.read_text(errors="replace").splitlines():
        m = re.search(r"LOG:\s+(?:statement|execute [^:]*):\s(.*)$", line)
        if m:
            if current is not None:
                out.append(current)
            current = m.group(1)
        elif current is not None and line.startswith(("\t", " ")):
            current += " " + line.strip()
        elif current is not None:
            out.append(current)
            current = None
    if current is not None:
        out.append(current)
    return [norm(s) for s in out]


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    seen = set(logged(Path(sys.argv[1])))
    source = statements()
    missing = [(where, sql) for where, sql in source if not any(s.startswith(sql) for s in seen)]
    for where, sql in missing:
        print(f"not run: {where}: {sql[:110]}")
    print(f"{len(source) - len(missing)} of {len(source)} statements of the store ran on PostgreSQL "
          f"({len(seen)} different statements logged)")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
