#!/usr/bin/env python3
"""bench/instances.py [--messages N] [--bin PATH]: issue 7, throughput of 1, 2
and 3 gateway instances sharing one mailbox and one PostgreSQL store.

For each count of instances: a fresh network (keys, mail stack, a new
database on a private PostgreSQL cluster started with tests/pg/cluster.sh),
N messages made with GnuPG, the instances started, then the N messages
appended to the inbox while they run (tests/e2e/instances.py). Timed from
the first APPEND until every message is filed, and until every mail (the
forward and the acknowledgement of each) is accepted by the submission
server. The same with one instance on a SQLite store, for comparison.
Prints Markdown on stdout; needs root for the mail stack.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

sys.dont_write_bytecode = True
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=500)
    ap.add_argument("--bin", default=os.environ.get("NFP_GATEWAY_BIN", str(ROOT / "target/release/nfp-gateway")))
    args = ap.parse_args()
    os.environ["NFP_GATEWAY_BIN"] = args.bin
    cluster = Path(tempfile.mkdtemp(prefix="nfp-pg-bench-", dir="/tmp"))
    os.chmod(cluster, 0o755)
    url = subprocess.run(["bash", str(ROOT / "tests/pg/cluster.sh"), "start", str(cluster / "pg"), str(free_port())],
                         capture_output=True, text=True, check=True).stdout.strip()
    rows = []
    try:
        for engine, counts in (("SQLite", (1,)), ("PostgreSQL", (1, 2, 3))):
            os.environ["NFP_E2E_POSTGRES"] = url if engine == "PostgreSQL" else ""
            sys.path.insert(0, str(ROOT / "tests" / "e2e"))
            import importlib
            import harness
            importlib.reload(harness)  # reads NFP_E2E_POSTGRES
            import storms
            importlib.reload(storms)
            import instances
            importlib.reload(instances)
            for n in counts:
                print(f"{engine}, {n} instance(s), {args.messages} messages", file=sys.stderr, flush=True)
                net = harness.Net(f"bench-{n}", extra_config='lease = "30s"\n')
                try:
                    run = instances.run_instances(net, n, args.messages)
                finally:
                    net.close()
                rows.append((engine, n, run))
    finally:
        subprocess.run(["bash", str(ROOT / "tests/pg/cluster.sh"), "stop", str(cluster / "pg")], check=False)
        subprocess.run(["rm", "-rf", str(cluster)], check=False)
    print(f"{args.messages} messages of 3 KB (PGP/MIME, Cv25519) appended to the inbox while the instances run; "
          f"seconds from the first APPEND; {os.cpu_count()} CPUs shared by the instances, the mail stack and PostgreSQL.")
    print()
    print("| store | instances | appended s | all filed s | msg/s | all sent s | mails/s | stored per instance |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for engine, n, r in rows:
        print(f"| {engine} | {n} | {r.appended_s:.1f} | {r.filed_s:.1f} | {r.messages / r.filed_s:.0f} | "
              f"{r.sent_s:.1f} | {2 * r.messages / r.sent_s:.0f} | "
              f"{', '.join(str(v) for v in r.stored_by.values())} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
