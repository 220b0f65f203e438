#!/usr/bin/env python3
"""bench/daemon.py [--quick] [--sizes 50,200,500] [--variants text,attach] [--bin PATH]

A first throughput benchmark of `nfp-gateway run` on the e2e test network
(tests/e2e/harness.py): a private Dovecot+Postfix on loopback, the fixture
NFPs' GnuPG keys, the gateway configured against the stack.

For each variant (3 KB text, or 3 KB text + a 300 KiB attachment) and each N:

1. a fresh network (keys, directory, mail stack, empty gateway store);
2. N Thunderbird-style PGP/MIME messages (signed+encrypted, protected
   headers) from the Cv25519 NFPs AT, FR, IT, RU, ES are made with GnuPG;
3. they are put into the gateway's INBOX with IMAP APPEND (one session);
4. only then the clock starts and the release binary is started: the
   benchmark polls the SQLite store for `inbound.imap_state = 'filed'` and
   `outbox.state = 'sent'`, then the recipients' mailboxes until the 2N mails
   (N forwards to the Secretariat, N acknowledgements) are delivered;
5. VmHWM and utime+stime of the gateway are read from /proc before SIGTERM;
6. the stack's own speed: N plain messages of the same size submitted over
   the submission port (STARTTLS + AUTH, one session, as lettre's pool reuses
   one) to a mailbox the gateway does not use, timed until all are delivered.

Prints the machine, the versions and a Markdown table on stdout (progress on
stderr). Needs root (the mail stack), as the e2e tests do. Uses
target/release/nfp-gateway unless --bin or NFP_GATEWAY_BIN says otherwise.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import hashlib
import os
import platform
import smtplib
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.dont_write_bytecode = True
ROOT = Path(__file__).resolve().parents[1]

SENDERS = ["AT", "FR", "IT", "RU", "ES"]  # the fixture NFPs with Cv25519 keys (valid, unrevoked)
BASELINE_MAILBOX = "SE"                   # a mailbox nothing else writes to during the baseline
ATTACHMENT_SIZE = 300 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")
MAX_WAIT = 600.0

PARAGRAPHS = [
    "Dear colleagues,",
    "With reference to the regional workshop on integrated border management held last autumn, "
    "our service would like to request the assistance of the Secretariat in organising a follow-up "
    "training for border police officers working at the main road crossing points. The training "
    "should cover risk analysis, document security and the detection of forged travel documents, "
    "and it should include a practical session at a crossing point with a high volume of traffic.",
    "We expect approximately twenty participants from the central and regional levels, including "
    "shift supervisors and officers of the mobile units. A short needs assessment carried out in "
    "the spring shows that the officers would benefit most from exercises based on real cases, and "
    "from an exchange with colleagues from neighbouring States who face comparable challenges.",
    "We would be grateful if the Secretariat could identify suitable trainers, ideally with "
    "experience in both operational work and curriculum development, and advise us on the "
    "available funding options. Our ministry will provide the venue, the interpretation and the "
    "local transport, and it will cover the costs of the participants from the regional offices.",
    "Please find below the preliminary schedule: two days of theory and case studies, one day at "
    "the crossing point, and half a day for the evaluation and the planning of further steps. "
    "The dates remain flexible; the second half of the year would suit our planning best.",
    "Our contact person for the organisational questions is the head of the training department, "
    "who can be reached through the national focal point at any time during office hours.",
    "Thank you in advance for your support, and kind regards,",
]


def body_text(i: int) -> str:
    """About 3 KB of English text, different for every message."""
    text = "\n\n".join(PARAGRAPHS) + f"\n\nNational Focal Point\n\nRequest no. {i:06d}\n"
    pad = ("Further details on the participants, the schedule and the logistics follow in a "
           "separate message once the dates are confirmed. ")
    while len(text.encode()) < 3000:
        text += pad
    return text + "\n"


@dataclass
class Run:
    variant: str
    n: int
    msg_bytes: int = 0           # mean size of one input message as appended
    gen_s: float = 0.0           # GnuPG message generation (not timed below)
    append_s: float = 0.0        # IMAP APPEND of all N (not timed below)
    first_filed_s: float = 0.0
    filed_s: float = 0.0
    sent_s: float = 0.0
    delivered_s: float = 0.0
    idle_before: float = 0.0     # machine busy fraction just before the timed window
    machine_cpu_s: float = 0.0   # CPU seconds the whole machine was busy until all delivered
    hwm_kib: int = 0
    cpu_s: float = 0.0
    verdicts: dict = field(default_factory=dict)
    outbox: dict = field(default_factory=dict)
    stack_s: float = 0.0
    stack_bytes: int = 0
    errors: list = field(default_factory=list)
    prefilled: int = 0           # messages the store held before the run


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def proc_stats(pid: int) -> tuple[int, float]:
    """(VmHWM in KiB, utime+stime in seconds) of a live process."""
    hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return hwm, (utime + stime) / CLK_TCK


def busy_ticks() -> int:
    """CPU ticks the whole machine spent busy (all CPUs, /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v) - v[3] - v[4]  # minus idle and iowait


def wait_quiet(max_wait: float = 600, below: float = 0.15) -> float:
    """Waits until the machine is idle (another build or test run would distort the
    timings): busy < `below` of all CPUs over 2 s. Returns the last busy fraction."""
    deadline = time.monotonic() + max_wait
    ncpu = os.cpu_count() or 1
    while True:
        b0 = busy_ticks()
        time.sleep(2)
        frac = (busy_ticks() - b0) / CLK_TCK / 2 / ncpu
        if frac < below or time.monotonic() > deadline:
            return frac
        log(f"    machine busy ({frac:.0%} of {ncpu} CPUs): waiting")


def count(db: Path, sql: str) -> int:
    """A read-only count on the gateway's store (0 while it does not exist yet)."""
    try:
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return c.execute(sql).fetchone()[0]
        finally:
            c.close()
    except sqlite3.Error:
        return 0


def make_messages(net, variant: str, n: int, workers: int) -> list[bytes]:
    """N PGP/MIME messages, made with GnuPG before any timing."""
    def one(i: int) -> bytes:
        pid = SENDERS[i % len(SENDERS)]
        parts = []
        if variant == "attach":
            data = b"%PDF-1.5\n" + os.urandom(ATTACHMENT_SIZE - 9)  # incompressible, like a PDF's streams
            parts = [harness.mm.attachment(data, f"annex-{i:04d}.pdf", "application/pdf")]
        return net.mail_from(pid, f"[ASSISTANCE REQUEST] Border police training, request {i:06d}", body_text(i),
                             parts=parts)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(n)))


def append_all(net, msgs: list[bytes]) -> None:
    gw = net.gateway_persona
    conn = net.stack.imap(gw.email, net.passwords[gw.email])
    try:
        for eml in msgs:
            typ, data = conn.append("INBOX", None, None, eml)
            if typ != "OK":
                raise RuntimeError(f"APPEND: {typ} {data}")
    finally:
        conn.logout()


def mailbox_total(net, pids: list[str]) -> int:
    return sum(net.count(pid) for pid in pids)


def run_gateway(r: Run, net, timeout: float) -> None:
    db = net.dir / "net" / net.role / "nfp-gateway.db"
    n = r.n
    r.idle_before = wait_quiet(MAX_WAIT)
    b0 = busy_ticks()
    t0 = time.monotonic()
    # NFP_BENCH_LOG=FILTER: the gateway's log filter (default info), e.g. nfp_gateway=debug.
    level = os.environ.get("NFP_BENCH_LOG")
    net.start_gateway(env={"NFP_GATEWAY_LOG": level} if level else None)
    pid = net.proc.pid
    # NFP_BENCH_PERF=FILE: a perf profile of the gateway over the run (call graphs, 999 Hz).
    perf = None
    if os.environ.get("NFP_BENCH_PERF"):
        perf = subprocess.Popen(["perf", "record", "-q", "-F", "999", "-g", "-p", str(pid),
                                 "-o", os.environ["NFP_BENCH_PERF"]],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = t0 + timeout
    filed = sent = 0
    while True:
        now = time.monotonic()
        if net.proc.poll() is not None:
            raise RuntimeError(f"the gateway exited ({net.proc.returncode}); log:\n{net.tail()}")
        if now > deadline:
            raise RuntimeError(f"timeout: {filed}/{n} filed, {sent}/{2 * n} sent; log:\n{net.tail()}")
        if not r.filed_s:
            filed = count(db, f"SELECT COUNT(*) FROM inbound WHERE imap_state = 'filed' AND id > {r.prefilled}")
            if filed and not r.first_filed_s:
                r.first_filed_s = now - t0
            if filed >= n:
                r.filed_s = now - t0
        sent = count(db, f"SELECT COUNT(*) FROM outbox WHERE state = 'sent' AND inbound_id > {r.prefilled}")
        if sent >= 2 * n:
            r.sent_s = time.monotonic() - t0
            break
        time.sleep(0.05)
    if not r.filed_s:  # all sent before the last filed row was seen
        r.filed_s = r.sent_s
    # Delivery of the 2N mails to the recipients' mailboxes (Postfix + Dovecot LMTP).
    pids = ["secretariat"] + SENDERS
    while True:
        got = mailbox_total(net, pids)
        if got >= 2 * n:
            r.delivered_s = time.monotonic() - t0
            r.machine_cpu_s = (busy_ticks() - b0) / CLK_TCK
            break
        if time.monotonic() > deadline:
            r.errors.append(f"only {got}/{2 * n} mails delivered in time")
            break
        time.sleep(0.1)
    r.hwm_kib, r.cpu_s = proc_stats(pid)
    if perf:
        perf.send_signal(2)
        perf.wait()
    code = net.stop_gateway()
    if code != 0:
        r.errors.append(f"exit status {code} after SIGTERM")
    with net.db() as c:
        # The timeline, for the log: when filing ended, and how fast mail
        # was sent while the intake was busy and after it.
        times = [datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() for (t,) in c.execute(
            f"SELECT sent_at FROM outbox WHERE inbound_id > {r.prefilled} AND sent_at IS NOT NULL ORDER BY sent_at")]
        last_in = c.execute(f"SELECT MAX(received_at) FROM inbound WHERE id > {r.prefilled}").fetchone()[0]
        if times and last_in:
            end_in = datetime.datetime.fromisoformat(last_in.replace("Z", "+00:00")).timestamp()
            during = sum(1 for t in times if t <= end_in)
            after = len(times) - during
            span = times[-1] - end_in
            log(f"timeline: {during} mails sent while messages were still arriving "
                f"({during / max(end_in - times[0], 1e-3):.0f}/s), {after} after, at {after / max(span, 1e-3):.0f}/s")
        if level:
            again = net.log.read_text(errors="replace").count("composed again")
            log(f"log: {again} messages composed again in their transaction")
        r.verdicts = dict(c.execute(f"SELECT verdict, COUNT(*) FROM inbound WHERE id > {r.prefilled} GROUP BY verdict").fetchall())
        r.outbox = dict(c.execute(f"SELECT state, COUNT(*) FROM outbox WHERE inbound_id > {r.prefilled} GROUP BY state").fetchall())
    if r.verdicts.get("accepted", 0) != n:
        r.errors.append(f"verdicts {r.verdicts}")
    if r.outbox != {"sent": 2 * n}:
        r.errors.append(f"outbox {r.outbox}")


def plain_message(i: int, frm: str, to: str, variant: str) -> bytes:
    """A plain (unencrypted) message of the same size class, for the stack baseline."""
    parts = [harness.mm.text(body_text(i))]
    if variant == "attach":
        data = b"%PDF-1.5\n" + os.urandom(ATTACHMENT_SIZE - 9)
        parts.append(harness.mm.attachment(data, f"annex-{i:04d}.pdf", "application/pdf"))
    outer = harness.mm.envelope(frm, to, f"Baseline {i:06d}", time.time(), harness.mm.message_id("secretariat.example"))
    return harness.mm.message(outer, harness.mm.multipart("mixed", parts))


def run_stack(r: Run, net, timeout: float) -> None:
    """N plain messages through the submission port (STARTTLS, AUTH, one session)."""
    sec = net.w.p["secretariat"]
    dest = net.w.p[BASELINE_MAILBOX]
    msgs = [plain_message(i, sec.email, dest.email, r.variant) for i in range(r.n)]
    r.stack_bytes = sum(map(len, msgs)) // len(msgs)
    s = net.stack
    t0 = time.monotonic()
    with smtplib.SMTP(s.host, s.submission_port, timeout=60) as conn:
        conn.ehlo("bench.localhost")
        conn.starttls(context=s.ssl_context())
        conn.ehlo("bench.localhost")
        conn.login(sec.email, net.passwords[sec.email])
        for eml in msgs:
            conn.sendmail(sec.email, [dest.email], eml)
    imap = s.imap(dest.email, net.passwords[dest.email])
    try:
        deadline = t0 + timeout
        while s._status_messages(imap, "INBOX") < r.n:
            if time.monotonic() > deadline:
                raise RuntimeError("stack baseline: timeout")
            time.sleep(0.05)
        r.stack_s = time.monotonic() - t0
    finally:
        imap.logout()


# A benchmark sends far more per hour than the limits a deployment wants.
NO_LIMITS = """
[limits]
sender-messages-per-hour = 1000000
messages-per-hour = 1000000
"""


def prefill(net, rows: int) -> None:
    """A store that already holds `rows` messages from a month ago, each with
    its replay entry, two sent mails and three audit entries, as after a long
    time in service (created by the gateway itself, then filled with SQL)."""
    out = net.cli("status")
    db = net.dir / "net" / net.role / "nfp-gateway.db"
    if not db.exists():
        raise RuntimeError(f"`status` did not create the store: {out.stdout}{out.stderr}")
    old = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z")
    blob = os.urandom(3000)  # about what an encrypted 3 KB message is
    con = sqlite3.connect(db)
    with con:
        for i in range(1, rows + 1):
            h = hashlib.sha256(i.to_bytes(8, "big")).hexdigest()
            con.execute("INSERT INTO inbound (id, received_at, raw_sha256, raw_size, raw_enc, message_id, "
                        "envelope_from, verdict, sender_party, reference, signature_digest, decision, imap_state) "
                        "VALUES (?, ?, ?, 3000, ?, ?, 'nfp@bmi.at.example', 'accepted', 'AT', ?, ?, '{}', 'filed')",
                        (i, old, h, blob, f"<old-{i}@bmi.at.example>", f"BSM-1999-{i:07d}", h))
            con.execute("INSERT INTO seen_signature (digest, inbound_id, first_seen) VALUES (?, ?, ?)", (h, i, old))
            for k, (purpose, party) in enumerate((("forward", "secretariat"), ("acknowledgement", "AT"))):
                con.execute("INSERT INTO outbox (inbound_id, purpose, template, recipient_party, recipient_email, "
                            "message_id, message, state, next_attempt_at, created_at, sent_at) "
                            "VALUES (?, ?, ?, ?, 'x@example.org', ?, ?, 'sent', ?, ?, ?)",
                            (i, purpose, purpose, party, f"<old-{i}-{k}@gateway.example>", blob, old, old, old))
            for event in ("accepted", "queued", "sent"):
                con.execute("INSERT INTO audit (at, event, inbound_id, detail) VALUES (?, ?, ?, '')", (old, event, i))
    # Not the run's cost: the filled pages checkpointed out of the WAL and on disk.
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    os.sync()


def bench(variant: str, n: int, workers: int, prefilled: int = 0) -> Run:
    r = Run(variant, n)
    r.prefilled = prefilled
    log(f"--- {variant} N={n}{f' (store holding {prefilled})' if prefilled else ''}: network and keys")
    net = harness.Net(f"bench-{variant}", extra_config=NO_LIMITS)
    try:
        t = time.monotonic()
        msgs = make_messages(net, variant, n, workers)
        r.gen_s = time.monotonic() - t
        r.msg_bytes = sum(map(len, msgs)) // n
        log(f"    {n} messages made in {r.gen_s:.1f}s ({r.msg_bytes} bytes each)")
        t = time.monotonic()
        append_all(net, msgs)
        r.append_s = time.monotonic() - t
        if prefilled:
            t = time.monotonic()
            prefill(net, prefilled)
            log(f"    store filled with {prefilled} messages in {time.monotonic() - t:.1f}s")
        log(f"    appended in {r.append_s:.1f}s; starting the gateway")
        run_gateway(r, net, timeout=120 + 3 * n)
        log(f"    filed {r.filed_s:.2f}s, sent {r.sent_s:.2f}s, delivered {r.delivered_s:.2f}s, "
            f"HWM {r.hwm_kib} KiB, CPU {r.cpu_s:.2f}s {r.errors or ''}")
        run_stack(r, net, timeout=120 + 3 * n)
        log(f"    stack baseline: {n} delivered in {r.stack_s:.2f}s")
    finally:
        net.close()
    return r


def sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def machine() -> list[str]:
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(next(l for l in f if l.startswith("MemTotal:")).split()[1])
    commit = sh(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"])
    dirty = sh(["git", "-C", str(ROOT), "status", "--porcelain", "--", "gateway", "migrations", "Cargo.toml",
                "Cargo.lock", "templates", "rules"])
    digest = hashlib.sha256(harness.BIN.read_bytes()).hexdigest()
    built = datetime.datetime.fromtimestamp(harness.BIN.stat().st_mtime).isoformat(timespec="seconds")
    return [
        f"- machine: {os.cpu_count()} CPUs (`nproc` {sh(['nproc'])}), {cpu}, {mem_kib / 1024 / 1024:.1f} GiB RAM, "
        f"Linux {platform.release()}",
        f"- gateway: `{harness.BIN}` built {built} (sha256 {digest[:16]}…), git HEAD now {commit}"
        + (" (+ uncommitted changes in the working tree)" if dirty else ""),
        f"- mail stack: Dovecot {sh(['dovecot', '--version']).split()[0]}, "
        f"Postfix {sh(['postconf', '-dh', 'mail_version'])}; "
        f"{sh(['gpg', '--version']).splitlines()[0]} (message generation only); Python {platform.python_version()}",
        f"- scheduling: the benchmark, the mail stack and the gateway ran at nice {os.nice(0)}; "
        f"load average at the start {os.getloadavg()[0]:.2f}",
    ]


def table(runs: list[Run]) -> list[str]:
    out = [
        "| variant | N | store before | msg KiB | filed s | msg/s | ms/msg | sent s | mails/s | delivered s | "
        "peak RSS MiB | CPU s | CPU ms/msg | stack s | stack mails/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        out.append(
            f"| {'3 KB text' if r.variant == 'text' else '+300 KiB attachment'} | {r.n} | {r.prefilled:,} "
            f"| {r.msg_bytes / 1024:.0f} "
            f"| {r.filed_s:.2f} | {r.n / r.filed_s:.1f} | {1000 * r.filed_s / r.n:.1f} "
            f"| {r.sent_s:.2f} | {2 * r.n / r.sent_s:.1f} | {r.delivered_s:.2f} "
            f"| {r.hwm_kib / 1024:.1f} | {r.cpu_s:.2f} | {1000 * r.cpu_s / r.n:.1f} "
            f"| {r.stack_s:.2f} | {r.n / r.stack_s:.1f} |")
    return out


def main() -> int:
    global harness
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 50 and 200 only")
    ap.add_argument("--sizes", help="comma-separated N (overrides --quick)")
    ap.add_argument("--variants", default="text,attach", help="text, attach or both")
    ap.add_argument("--bin", help="the nfp-gateway binary (default target/release/nfp-gateway)")
    ap.add_argument("--max-wait", type=float, default=600,
                    help="seconds to wait before each run for the machine to be idle (default 600)")
    ap.add_argument("--tests", type=Path, default=ROOT,
                    help="the tree whose tests/e2e/harness.py (and fixtures, mailstack) to use; "
                         "default this checkout. Give a tree matching the binary when tests/ moved on")
    ap.add_argument("--prefill", type=int, default=0,
                    help="also run the largest N with a store already holding this many messages")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="GnuPG processes in parallel")
    args = ap.parse_args()
    os.environ["NFP_GATEWAY_BIN"] = args.bin or os.environ.get("NFP_GATEWAY_BIN") or str(
        ROOT / "target" / "release" / "nfp-gateway")
    sys.path.insert(0, str(args.tests.resolve() / "tests" / "e2e"))
    import harness  # noqa: E402 (reads NFP_GATEWAY_BIN at import)
    if not harness.BIN.is_file():
        print(f"{harness.BIN}: no such binary (cargo build --release)", file=sys.stderr)
        return 2
    global MAX_WAIT
    MAX_WAIT = args.max_wait
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else ([50, 200] if args.quick else [50, 200, 500])
    variants = args.variants.split(",")

    head = machine()
    for line in head:
        log(line)
    runs = [bench(v, n, args.workers) for v in variants for n in sizes]
    if args.prefill:
        runs += [bench(v, max(sizes), args.workers, args.prefill) for v in variants]

    print("\n".join(head))
    print(f"- run {datetime.datetime.now().isoformat(timespec='seconds')}: "
          f"`python3 bench/daemon.py{''.join(' ' + a for a in sys.argv[1:])}`")
    print()
    print("\n".join(table(runs)))
    print()
    print("Not timed: GnuPG generation and IMAP APPEND of the input (per run):")
    for r in runs:
        extra = f"; PROBLEMS: {'; '.join(r.errors)}" if r.errors else ""
        print(f"- {r.variant} N={r.n}: made in {r.gen_s:.1f} s, appended in {r.append_s:.1f} s; "
              f"first message filed {r.first_filed_s:.2f} s after start; machine busy {r.idle_before:.0%} before, "
              f"{r.machine_cpu_s:.1f} CPU s (all processes) until delivered; verdicts {r.verdicts}, "
              f"outbox {r.outbox}; baseline messages {r.stack_bytes / 1024:.0f} KiB{extra}")
    return 1 if any(r.errors for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
