#!/usr/bin/env python3
"""bench/gpg_pipeline.py OUTDIR [--jobs 1,2] [--rounds R]: the GnuPG-pipeline baseline.

What a gateway built as a filter around gpg does for each message (Schleuder,
gpg-mailgate/Lacre and Zeyple all spawn one gpg process per message): parse the
message with Python's email module, take the armored OpenPGP message out of the
PGP/MIME structure, and run

    gpg --homedir OUTDIR/gnupg --batch --status-fd 2 --decrypt

with the armor on stdin and the plaintext on stdout; the message counts as good
when the status lines say DECRYPTION_OKAY and GOODSIG, and VALIDSIG names the
sender's fingerprint from the manifest. OUTDIR is a corpus of bench/corpus.py:
OUTDIR/gnupg holds the gateway's secret key and the directory's certificates,
gpg.conf there sets trust-model always (the directory is the trust).

For each class and each worker count (a process pool of that many workers, each
doing parse + one gpg subprocess per message, as a filter would under a mail
server's concurrency), after a warm-up (gpg-agent started, the gateway's key
used once, the files in the page cache): R timed rounds over the class's N
messages; msgs/s is N over the median round's wall-clock time.

Prints a Markdown table on stdout (progress on stderr) and writes
OUTDIR/gpg_pipeline.json: {class: {"1": msgs_per_s, "2": msgs_per_s}} (one key
per --jobs value). Exit status 1 when any message failed.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True

HOME: str = ""
ENV: dict[str, str] = {}


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def armored_part(raw: bytes) -> bytes | None:
    """The armored OpenPGP message of a PGP/MIME (multipart/encrypted) message,
    or of an inline-PGP text body: what a gpg-based filter hands to gpg."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    for part in msg.walk():
        if part.is_multipart():
            continue
        data = part.get_payload(decode=True) or b""
        if b"-----BEGIN PGP MESSAGE-----" in data:
            return data
    return None


def decrypt_one(job: tuple[str, str]) -> tuple[bool, str]:
    """One message: read, parse, one gpg subprocess. (ok, why not)."""
    path, fpr = job
    with open(path, "rb") as f:
        raw = f.read()
    armored = armored_part(raw)
    if armored is None:
        return False, "no PGP MESSAGE"
    p = subprocess.run(["gpg", "--homedir", HOME, "--batch", "--status-fd", "2", "--decrypt"],
                       input=armored, capture_output=True, env=ENV)
    status = [line[9:].split() for line in p.stderr.decode("utf-8", "replace").splitlines()
              if line.startswith("[GNUPG:] ")]
    words = {s[0] for s in status if s}
    valid = [s[-1] for s in status if s and s[0] == "VALIDSIG"]
    if p.returncode != 0 or "DECRYPTION_OKAY" not in words or "GOODSIG" not in words:
        return False, f"rc {p.returncode}, status {sorted(words)}"
    if fpr and valid != [fpr]:
        return False, f"signed by {valid}, not {fpr}"
    if not p.stdout:
        return False, "no plaintext"
    return True, ""


def init_worker(home: str, env: dict[str, str]) -> None:
    global HOME, ENV
    HOME, ENV = home, env


def machine() -> str:
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpg = subprocess.run(["gpg", "--version"], capture_output=True, text=True).stdout.splitlines()
    return (f"{os.cpu_count()} CPUs, {cpu}, Linux {platform.release()}; {gpg[0] if gpg else 'gpg ?'}"
            f" ({gpg[1] if len(gpg) > 1 else ''}); load average at start {os.getloadavg()[0]:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir", type=Path, help="a corpus made by bench/corpus.py")
    ap.add_argument("--jobs", default="1,2", help="worker counts, comma-separated (default 1,2)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per class and worker count (default 3)")
    ap.add_argument("--classes", help="comma-separated subset of the manifest's classes")
    args = ap.parse_args()
    out = args.outdir.resolve()
    manifest = json.loads((out / "manifest.json").read_text())
    home = str(out / manifest.get("gnupghome", "gnupg"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPG_")}
    env.update(GNUPGHOME=home, LC_ALL="C")
    jobs = [int(j) for j in args.jobs.split(",")]
    classes = args.classes.split(",") if args.classes else list(manifest["classes"])

    log(f"gpg_pipeline: {machine()}")
    # Warm-up: start gpg-agent and have it load the gateway's key once.
    subprocess.run(["gpg-connect-agent", "--homedir", home, "/bye"], capture_output=True, env=env)
    init_worker(home, env)
    results: dict[str, dict[str, float]] = {}
    rows = []
    failures = 0
    for cls in classes:
        c = manifest["classes"][cls]
        work = [(str(out / f), c.get("sender_fpr", "")) for f in c["files"]]
        results[cls] = {}
        for j in jobs:
            with multiprocessing.get_context("fork").Pool(j, init_worker, (home, env)) as pool:
                for ok, why in pool.map(decrypt_one, work[:max(j, 2)], chunksize=1):  # warm-up
                    if not ok:
                        raise SystemExit(f"gpg_pipeline: {cls}: warm-up failed: {why}")
                times = []
                for _ in range(args.rounds):
                    t0 = time.perf_counter()
                    res = pool.map(decrypt_one, work, chunksize=1)
                    times.append(time.perf_counter() - t0)
                    bad = [why for ok, why in res if not ok]
                    failures += len(bad)
                    for why in bad[:3]:
                        log(f"    FAILED {cls}: {why}")
            med = statistics.median(times)
            rate = len(work) / med
            results[cls][str(j)] = round(rate, 2)
            rows.append((cls, j, len(work), med, rate, min(times), max(times)))
            log(f"  {cls:17} jobs {j}: {rate:7.1f} msgs/s (rounds {', '.join(f'{t:.2f}' for t in times)} s)")
    subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], capture_output=True, env=env)
    (out / "gpg_pipeline.json").write_text(json.dumps(results, indent=2) + "\n")

    print(f"GnuPG pipeline (one `gpg --decrypt` per message), {machine()}; "
          f"median of {args.rounds} rounds; corpus {out} (now {manifest['now']})")
    print()
    print("| class | jobs | messages | seconds | msgs/s | KiB/msg |")
    print("|---|---:|---:|---:|---:|---:|")
    for cls, j, n, med, rate, lo, hi in rows:
        print(f"| {cls} | {j} | {n} | {med:.3f} | {rate:.1f} | {manifest['classes'][cls]['bytes_each'] / 1024:.0f} |")
    if failures:
        print(f"\n{failures} decryptions FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
