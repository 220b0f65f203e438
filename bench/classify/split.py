#!/usr/bin/env python3
"""bench/classify/split.py FIRST LAST [LANGUAGE ...]: sets a new batch of the
classification corpus aside. For the files numbered FIRST to LAST (inclusive)
in each language's folder (or only the languages named, when a batch's
numbers differ between languages), it appends a fifth to bench/classify/held-out.txt: in each
language, by kind, then by an FNV-1a hash of the file's name, every fifth
message from the third on. Run it once per batch, when the batch is written
and before anyone tunes the rules on it; never edit the list by hand.

    python3 bench/classify/split.py 101 136
    python3 bench/classify/split.py 1369 1404 ru
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
KINDS = ["assistance_request", "best_practice", "contact_update", "information_request",
         "information_reply", "unclassified"]
LANGUAGES = ["en", "fr", "de", "it", "ru", "es"]


def fnv(s: str) -> int:
    h = 0xcbf29ce484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def main() -> int:
    if len(sys.argv) < 3 or not set(sys.argv[3:]) <= set(LANGUAGES):
        print(__doc__, file=sys.stderr)
        return 2
    first, last = int(sys.argv[1]), int(sys.argv[2])
    languages = sys.argv[3:] or LANGUAGES
    listed = HERE / "held-out.txt"
    already = set(listed.read_text().split())
    held = []
    for lang in languages:
        batch = []
        for path in sorted((HERE / "corpus" / lang).glob("*.txt")):
            if not first <= int(path.stem) <= last:
                continue
            ident = f"{lang}/{path.stem}"
            if ident in already:
                print(f"{ident} is already held out: this batch was split before", file=sys.stderr)
                return 1
            kind = re.search(r"^Kind:\s*(\S+)", path.read_text(), re.M).group(1)
            batch.append((KINDS.index(kind), fnv(ident), ident))
        batch.sort()
        held += [ident for rank, (_, _, ident) in enumerate(batch) if rank % 5 == 2]
    with listed.open("a") as f:
        f.write("".join(f"{ident}\n" for ident in held))
    print(f"{len(held)} messages of {first}-{last} ({' '.join(languages)}) held out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
