#!/usr/bin/env python3
"""judgement_table.py CORPUS [CRITERION_DIR] [--label=L]: issue 6's row 1 as a Markdown table.

--label=L reads the results of a run with NFP_BENCH_LABEL=L (a second corpus).

Reads criterion's estimates of `cargo bench --bench judge` (target/criterion/
<class>/{judge,judge-2-threads,sequoia}/new/estimates.json: the mean time of
one iteration, which judges every message of the class once) and
CORPUS/gpg_pipeline.json (bench/gpg_pipeline.py: messages per second with one
`gpg --decrypt` subprocess per message, 1 and 2 workers), and prints messages
per second for each, with the ratios the issue sets targets for:

    judge / gpg       at least 15x for 20 KiB Cv25519, 2x for RSA-3072, 3x for 2 MiB
    judge / sequoia   at least 80 % (the pipeline around decrypt+verify costs < 20 %)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TARGETS = {"text20k-cv25519": 15, "text20k-rsa3072": 2, "text20k-rsa4096": 2,
           "att2m-cv25519": 3, "att2m-rsa3072": 3}


def per_second(criterion: Path, cls: str, bench: str, n: int) -> float | None:
    f = criterion / cls / bench / "new" / "estimates.json"
    if not f.exists():
        return None
    mean_ns = json.loads(f.read_text())["mean"]["point_estimate"]
    return n / (mean_ns / 1e9)


def fmt(x: float | None, digits: int = 0) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--label=")]
    label = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--label=")), "")
    corpus = Path(args[0])
    criterion = Path(args[1]) if len(args) > 1 else Path("target/criterion")
    manifest = json.loads((corpus / "manifest.json").read_text())
    gpg_file = corpus / "gpg_pipeline.json"
    gpg = json.loads(gpg_file.read_text()) if gpg_file.exists() else {}
    print("| class | messages | KiB each | gateway judge, 1 core (msg/s) | 2 cores | raw Sequoia decrypt+verify, 1 core | "
          "gpg subprocess, 1 job | 2 jobs | judge / gpg, 1 core | 2 cores | target | judge / Sequoia |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for cls, c in manifest["classes"].items():
        n = len(c["files"])
        one = per_second(criterion, label + cls, "judge", n)
        two = per_second(criterion, label + cls, "judge-2-threads", n)
        raw = per_second(criterion, label + cls, "sequoia", n)
        g1 = gpg.get(cls, {}).get("1")
        g2 = gpg.get(cls, {}).get("2")
        r1 = one / g1 if one and g1 else None
        r2 = two / g2 if two and g2 else None
        target = TARGETS.get(cls)
        print(f"| {cls} | {n} | {fmt(c.get('bytes_each', 0) / 1024)} | {fmt(one)} | {fmt(two)} | {fmt(raw)} | "
              f"{fmt(g1)} | {fmt(g2)} | {fmt(r1, 1)}x | {fmt(r2, 1)}x | {f'{target}x' if target else '—'} | "
              f"{fmt(one / raw * 100 if one and raw else None)} % |")
    algo = manifest.get("gateway_key_algo", "?")
    print()
    print(f"The corpus's gateway key is {algo}: decryption costs the same in every class, and the RSA "
          f"classes differ only in the sender's signature (RSA verification is cheap). The issue's "
          f"RSA-3072 target (GnuPG at 63 msg/s) was measured with an RSA gateway key: "
          f"`bench/corpus.py --gateway-algo rsa3072` makes that corpus.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
