#!/usr/bin/env python3
"""bench/fanout.py [--bin PATH] [--recipients N]: issue 6, row 4, circular fan-out to every NFP.

On the e2e network (tests/e2e/harness.py), grown to the whole network: the
fixture's 8 NFPs plus 49 more (one per participating State, each with its own
Cv25519 key made by GnuPG and a mailbox on the private mail stack), and the
Secretariat. With the daemon running (circular-quiet-period 1 s), one
`nfp-gateway directory import` of that directory is one change of the
directory; the daemon announces it by one circular to all 57 NFPs and the
Secretariat, each copy rendered in the recipient's language, signed by the
gateway and encrypted to that recipient's key alone.

Measured, from the circular's creation (circular.created_at in the store,
committed with every copy already rendered, signed and encrypted): every copy
accepted by the submission server (outbox.sent_at) and in its recipient's
Maildir (the files' times); and from the end of the import command. PL's certificate is expired in the fixture network: it gets
nothing, and the Secretariat's copy names it.

Beside it, the GnuPG way (Schleuder, gpg-mailgate): one
`gpg --sign --encrypt -r RECIPIENT` subprocess per recipient over a letter
of the same size, with the gateway's key, sequentially and with 2 jobs.
Prints Markdown on stdout; needs root for the mail stack.

With --recipients N above 58, the network is grown beyond the real one with
synthetic NFPs (two-letter codes that are no participating State's, each with
its own key and mailbox) until the circular has N recipients: a directory
circular goes to every NFP and the Secretariat and to nobody else (mandate:
"make sure every NFP is told of each change"), so this is how the issue's
~290-recipient fan-out is measured.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import os
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# The participating States beyond the fixture network's AT DE ES FR IT PL RU SE.
MORE_STATES = ("AL AD AM AZ BY BE BA BG CA HR CY CZ DK EE FI GE GR VA HU IS IE KZ KG LV LI LT LU "
               "MT MD MC MN ME NL MK NO PT RO SM RS SK SI CH TJ TR TM UA GB US UZ").split()


def synthetic_codes(n: int) -> list[str]:
    """n two-letter codes that are none of the network's States."""
    taken = set(MORE_STATES) | {"AT", "DE", "ES", "FR", "IT", "PL", "RU", "SE"}
    codes = [a + b for a in "ZYXWQJKOPN" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if a + b not in taken]
    if n > len(codes):
        raise SystemExit(f"at most {len(codes)} synthetic NFPs")
    return codes[:n]


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def ts(s: str) -> float:
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("NFP_GATEWAY_BIN", str(ROOT / "target/release/nfp-gateway")))
    ap.add_argument("--recipients", type=int, default=58,
                    help="recipients of the circular (58: the real network's 57 NFPs and the Secretariat)")
    args = ap.parse_args()
    states = MORE_STATES + synthetic_codes(max(0, args.recipients - 58))
    os.environ["NFP_GATEWAY_BIN"] = args.bin
    import harness  # noqa: E402  (reads NFP_GATEWAY_BIN)
    mm = harness.mm

    addresses = [f"nfp@interior.{s.lower()}.example" for s in states]
    net = harness.Net("fanout", outsiders=tuple(addresses))
    text = net.config.read_text()
    net.config.write_text(text.replace("role = ", 'circular-quiet-period = "1s"\nrole = ', 1))
    try:
        w = net.w
        log(f"making {len(states)} more NFP keys with GnuPG")
        personas = []
        for state, address in zip(states, addresses):
            p = mm.Persona(id=state, name=f"National Focal Point {state}", email=address,
                           language="en", kind="nfp", state=state)
            w.p[state] = p
            w.gpg.generate(p, w.now)
            w.export_cert(state)
            personas.append(p)
        base = net.config.parent
        extra = base / "directory-more.toml"
        mm.write_directory(extra, personas, "../certs", "more NFPs")
        grown = base / "directory-57.toml"
        grown.write_text((base / "directory.toml").read_text() + "\n"
                         + "\n".join(l for l in extra.read_text().splitlines() if not l.startswith("#")))

        net.start_gateway()
        deadline = time.time() + 30
        while "nfp-gateway running" not in net.log.read_text() and time.time() < deadline:
            time.sleep(0.1)
        log(f"directory import: {len(states)} NFPs added")
        out = net.cli("directory", "import", str(grown))
        if out.returncode != 0:
            raise SystemExit(f"import failed: {out.stdout}{out.stderr}")
        recipients = 8 + len(states) + 1 - 1  # every NFP and the Secretariat, PL (no usable key) held
        net.wait_rows("SELECT id FROM outbox WHERE purpose = 'circular' AND state = 'sent'", recipients,
                      timeout=300)
        # The measured change: one NFP's name, in a directory of them all.
        changed = states[0]
        old_name = f'name = "National Focal Point {changed}"'
        text = grown.read_text()
        if old_name not in text:
            raise SystemExit(f"{old_name} is not in {grown}")
        grown.write_text(text.replace(old_name, f'name = "National Focal Point {changed} (Ministry of Interior)"'))
        time.sleep(1.5)  # the daemon's mailboxes settle before the clock starts
        log(f"directory import: {changed}'s name changed")
        import_start = time.time()
        out = net.cli("directory", "import", str(grown))
        imported = time.time()
        if out.returncode != 0:
            raise SystemExit(f"import failed: {out.stdout}{out.stderr}")
        rows = net.wait_rows("SELECT id, created_at FROM circular ORDER BY id", 2, timeout=60)
        created = ts(rows[1][1])
        since = rows[1][1]
        sent_sql = "SELECT id FROM outbox WHERE purpose = 'circular' AND state = 'sent' AND created_at >= ?"
        net.wait_rows(sent_sql, recipients, 300, since)
        outbox = net.rows("SELECT recipient_party, created_at, sent_at FROM outbox "
                          "WHERE purpose = 'circular' AND state = 'sent' AND created_at >= ?", since)
        sent = max(ts(s) for _, _, s in outbox) - created
        parties = {p: w.p[p].email for p, _, _ in outbox}
        paths = harness.mailstack.Paths(net.stack.dir)
        arrivals = {}
        deadline = time.time() + 120
        while time.time() < deadline and len(arrivals) < len(parties):
            for p, email_ in parties.items():
                md = Path(paths.home(email_)) / "Maildir"
                files = [f for d in ("new", "cur") for f in (md / d).iterdir()]
                if len(files) >= 2:  # the first circular's copy, then this one's
                    arrivals[p] = max(f.stat().st_mtime for f in files)
            time.sleep(0.5)
        delivered = max(arrivals.values()) - created if arrivals else float("nan")
        from_import = max(arrivals.values()) - imported if arrivals else float("nan")
        held = net.rows("SELECT recipient_party FROM outbox WHERE purpose = 'circular' AND state = 'held' "
                        "AND created_at >= ?", since)
        import daemon as bench_daemon  # noqa: E402  (proc_stats)
        hwm_kib, cpu_s = bench_daemon.proc_stats(net.proc.pid)

        log("the GnuPG way: one gpg --sign --encrypt per recipient")
        letter = ("Dear colleagues,\n\n" + "The directory of the network has changed. " * 60 + "\n").encode()
        fprs = [w.p[p].fpr for p in parties]
        gw = w.gateway().fpr

        def one(fpr: str) -> None:
            w.gpg.sign_encrypt(letter, gw, [fpr])
        one(fprs[0])  # the agent started
        timings = {}
        for jobs in (1, 2):
            start = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
                list(pool.map(one, fprs))
            timings[jobs] = time.monotonic() - start
    finally:
        net.close()

    n = len(outbox)
    print("# Circular fan-out")
    print()
    synthetic = len(states) - len(MORE_STATES)
    print(f"A network of {8 + len(states)} NFPs"
          f"{f' ({synthetic} of them synthetic, beyond the 57 States)' if synthetic > 0 else ''} and the Secretariat. "
          f"One directory change (`directory import`: {changed}'s name) announced to {n} recipients "
          f"({len(arrivals)} copies found in their Maildirs; held without a usable key: "
          f"{', '.join(p for (p,) in held) or 'none'}). Seconds from the circular's creation:")
    print()
    print("| step | seconds | per recipient (ms) |")
    print("|---|---:|---:|")
    print(f"| every copy accepted by the submission server | {sent:.2f} | {sent / n * 1000:.1f} |")
    print(f"| every copy in its recipient's Maildir | {delivered:.2f} | {delivered / n * 1000:.1f} |")
    print(f"| from the end of `directory import` (import {imported - import_start:.2f} s; then a 1 s quiet period, "
          f"up to 2 s of directory polling, rendering, signing, encrypting) to the last copy delivered "
          f"| {from_import:.2f} | — |")
    print(f"| GnuPG: one `gpg --sign --encrypt` per recipient, 1 job (encryption only, nothing sent) "
          f"| {timings[1]:.2f} | {timings[1] / n * 1000:.1f} |")
    print(f"| GnuPG, 2 jobs | {timings[2]:.2f} | {timings[2] / n * 1000:.1f} |")
    print()
    print(f"The daemon's peak RSS over the whole run (start, import, circular): {hwm_kib / 1024:.1f} MiB; "
          f"its CPU: {cpu_s:.2f} s.")
    return 0 if len(arrivals) == n else 1


if __name__ == "__main__":
    sys.exit(main())
