#!/usr/bin/env python3
"""bench/latency.py [--count 200] [--interval 0.5] [--idle 60] [--bin PATH]

Issue 6, rows 3 and 5: how long an NFP's message takes from the moment the
mail server accepts it to the moment the forwarded copy lies in the
Secretariat's mailbox, with the gateway waiting in IMAP IDLE; and what the
idle daemon costs.

On the e2e network (tests/e2e/harness.py: private Dovecot+Postfix, fixture
keys, a fresh store), with `nfp-gateway run` started and idle:

1. idle footprint: RSS and CPU of the daemon over --idle seconds of nothing;
2. COUNT messages (made with GnuPG beforehand) are submitted over SMTP to the
   gateway's mailbox at a steady rate, one every INTERVAL seconds; the time
   Postfix accepted each (the end of DATA) is recorded;
3. each forward's arrival is read from its Maildir file's modification time
   (Dovecot writes the file once, at delivery: no polling granularity), and
   matched to its message through the store (inbound.message_id ->
   outbox.message_id);
4. latency = arrival - acceptance, with the gateway's own share (acceptance
   -> stored, stored -> sent, from the store's timestamps) beside it.

Prints a Markdown report on stdout; needs root for the mail stack.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import email
import os
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import daemon as bench_daemon  # noqa: E402  (proc_stats, body_text, log)

log = bench_daemon.log


def ts(s: str) -> float:
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--idle", type=float, default=60)
    ap.add_argument("--bin", default=os.environ.get("NFP_GATEWAY_BIN", str(ROOT / "target/release/nfp-gateway")))
    args = ap.parse_args()
    os.environ["NFP_GATEWAY_BIN"] = args.bin
    import harness  # noqa: E402  (reads NFP_GATEWAY_BIN)

    net = harness.Net("latency", extra_config="")
    # IDLE is what is measured: no poll fallback in between.
    net.config.write_text(net.config.read_text().replace('poll-interval = "1s"', 'poll-interval = "10m"'))
    try:
        log(f"making {args.count} messages with GnuPG")
        senders = bench_daemon.SENDERS
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
            msgs = list(pool.map(lambda i: net.mail_from(
                senders[i % len(senders)], f"[ASSISTANCE REQUEST] Border police training, request {i:06d}",
                bench_daemon.body_text(i)), range(args.count)))
        net.start_gateway()
        pid = net.proc.pid
        deadline = time.time() + 30
        while "nfp-gateway running" not in net.log.read_text() and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(3)  # start-up done: the directory loaded, the first IDLE entered

        log(f"idle for {args.idle:.0f} s")
        rss0, cpu0 = bench_daemon.proc_stats(pid)
        t0 = time.monotonic()
        time.sleep(args.idle)
        _, cpu1 = bench_daemon.proc_stats(pid)
        idle_cpu = (cpu1 - cpu0) / (time.monotonic() - t0) * 100
        with open(f"/proc/{pid}/status") as f:
            idle_rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024

        log(f"sending {args.count} messages, one every {args.interval} s")
        accepted: dict[str, float] = {}
        start = time.monotonic()
        for i, eml in enumerate(msgs):
            due = start + i * args.interval
            time.sleep(max(0.0, due - time.monotonic()))
            net.send(eml)
            accepted[email.message_from_bytes(eml)["Message-ID"].strip()] = time.time()
        maildir = Path(harness.mailstack.Paths(net.stack.dir).home(net.w.p["secretariat"].email)) / "Maildir"
        deadline = time.time() + 120
        rows: list[tuple] = []
        while time.time() < deadline:
            rows = net.rows("SELECT i.message_id, i.received_at, o.message_id, o.sent_at FROM outbox o "
                            "JOIN inbound i ON o.inbound_id = i.id WHERE o.purpose = 'forward' AND o.state = 'sent'")
            delivered = sum(1 for d in ("new", "cur") for _ in (maildir / d).iterdir())
            if len(rows) >= args.count and delivered >= args.count:
                break
            time.sleep(0.5)
        arrival: dict[str, float] = {}
        for d in ("new", "cur"):
            for f in (maildir / d).iterdir():
                with open(f, "rb") as fh:
                    head = email.message_from_binary_file(fh)
                arrival[(head["Message-ID"] or "").strip()] = f.stat().st_mtime
        total, gateway, intake, sending = [], [], [], []
        for orig, received_at, fwd, sent_at in rows:
            key = orig if orig.startswith("<") else f"<{orig}>"
            fkey = fwd if fwd.startswith("<") else f"<{fwd}>"
            if key not in accepted or fkey not in arrival:
                continue
            total.append(arrival[fkey] - accepted[key])
            intake.append(ts(received_at) - accepted[key])
            gateway.append(ts(sent_at) - accepted[key])
            sending.append(ts(sent_at) - ts(received_at))
        peak, cpu_total = bench_daemon.proc_stats(pid)
    finally:
        net.close()

    n = len(total)
    print("# Latency with IMAP IDLE, and the idle daemon")
    print()
    print(f"{n} of {args.count} messages matched, sent one every {args.interval} s; times in seconds.")
    print()
    print("| measure | median | p90 | p99 | max |")
    print("|---|---:|---:|---:|---:|")
    for name, v in [("accepted by Postfix -> forward in the Secretariat's Maildir", total),
                    ("accepted -> the gateway received it (IDLE, FETCH: inbound.received_at)", intake),
                    ("received -> the forward accepted by the submission server (outbox.sent_at)", sending),
                    ("accepted -> forward sent", gateway)]:
        if v:
            print(f"| {name} | {statistics.median(v):.3f} | {pct(v, 90):.3f} | {pct(v, 99):.3f} | {max(v):.3f} |")
    print()
    print(f"Idle daemon over {args.idle:.0f} s: {idle_cpu:.2f} % of one CPU, RSS {idle_rss:.1f} MiB "
          f"(peak during the run {peak / 1024:.1f} MiB; CPU over the whole run {cpu_total:.1f} s).")
    return 0 if n == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
