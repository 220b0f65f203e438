#!/usr/bin/env python3
"""bench/corpus.py OUTDIR [--count N]: the fixed benchmark corpus of issue 6.

Makes, with GnuPG and a private GNUPGHOME under OUTDIR (never ~/.gnupg), the
fixture network's Secretariat gateway and N realistic messages per class, every
one of which that gateway accepts:

    OUTDIR/secretariat/gateway.toml       the Secretariat gateway of the fixture network
    OUTDIR/secretariat/directory.toml     (tests/fixtures/make_fixtures.py's personas,
    OUTDIR/secretariat/keys/, certs/       plus an RSA-4096 NFP, GB), self-contained
    OUTDIR/messages/<class>/<i>.eml       N Thunderbird-style PGP/MIME messages per class
    OUTDIR/gnupg/                         GNUPGHOME with the gateway's secret key and every
                                          directory party's certificate (trust-model always):
                                          `gpg --homedir OUTDIR/gnupg --decrypt` reads each
                                          message's OpenPGP part as the gateway does
    OUTDIR/manifest.json                  now, gateway_key_algo, classes, gnupghome

The messages are composed like make_fixtures.py's and bench/daemon.py's (its World
and tests/fixtures/mailmaker.py): one OpenPGP message signed and encrypted (RFC 3156
§6.2, GnuPG's defaults: ZLIB compression, SHA-256), protected headers, subject
`[ASSISTANCE REQUEST] ...` (an assistance request, by the tag that names it: a bare
`[REQUEST]` leaves the kind to the words), signed at generation time. Each message
has its own text (a seeded generator of report prose) and its own random
attachment bytes, so no two share a signature (the replay memory of one
`nfp-gateway check` call would refuse a repeat).

Then every message is judged with `nfp-gateway --config OUTDIR/secretariat/gateway.toml
check --now NOW` (target/release/nfp-gateway if present, else target/debug, or --bin);
exit status 1 unless all are accepted from the expected sender. --no-verify skips that.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import random
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
import mailmaker as mm  # noqa: E402
import make_fixtures as fx  # noqa: E402

KIB = 1024
MIB = 1024 * KIB

# The RSA-4096 sender the fixture network lacks: an NFP of the directory like the others.
RSA4096 = mm.Persona("GB", "National Focal Point United Kingdom, Home Office",
                     "nfp@homeoffice.gb.example", "en", "nfp", "GB", algo="rsa4096",
                     postal_address="2 Marsham Street, London SW1P 4DF", timezone="Europe/London")

# Keys made for the corpus: the gateway, and every party of the Secretariat's directory.
PARTIES = ["secretariat"] + fx.NFPS + [RSA4096.id]
GATEWAY = "gateway"

# class -> (sender persona, text bytes, attachment bytes)
CLASSES: dict[str, tuple[str, int, int]] = {
    "text20k-cv25519": ("AT", 20 * KIB, 0),
    "att300k-cv25519": ("AT", 2 * KIB, 300 * KIB),
    "att2m-cv25519": ("AT", 2 * KIB, 2 * MIB),
    "text20k-rsa3072": ("DE", 20 * KIB, 0),
    "text20k-rsa4096": ("GB", 20 * KIB, 0),
    "att2m-rsa3072": ("DE", 2 * KIB, 2 * MIB),
}

OUTPUTS = ["keygen", "gnupg", "secretariat", "messages", "manifest.json", "gpg_pipeline.json"]


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Text: report prose, different for every message, compressing like real prose
# ---------------------------------------------------------------------------

PLACES = ["the Nickelsdorf road crossing", "the Spielfeld crossing point", "Vienna International Airport",
          "the Danube river port", "the northern green border", "the Brenner motorway crossing",
          "the main railway station", "the ferry terminal", "the regional airport",
          "the mountain pass crossing", "the cargo terminal", "the eastern land border",
          "the Karawanken tunnel", "the Hohenau railway crossing", "the Linz container yard",
          "the Salzburg motorway checkpoint", "the Graz parcel centre", "the lake ferry landing",
          "the Berg crossing on the Slovak border", "the Klingenbach crossing", "Innsbruck airport",
          "the postal sorting centre", "the night train checkpoint", "the international bus terminal"]
UNITS = ["the border police", "the customs administration", "the mobile surveillance units",
         "the document examination service", "the regional police directorate",
         "the risk analysis unit", "the migration office", "the coast guard",
         "the criminal intelligence service", "the training academy", "our liaison officers",
         "the joint contact centre", "the financial investigation unit", "the canine unit",
         "the forensic laboratory", "the visa section of the foreign ministry",
         "the anti-trafficking task force", "the air police", "the railway police",
         "the public prosecutor's office"]
THINGS = ["forged residence permits", "counterfeit travel documents", "undeclared cash",
          "cigarettes without excise stamps", "synthetic drugs", "stolen vehicles",
          "falsified visas", "look-alike passports", "smuggled migrants", "dual-use goods",
          "cocaine hidden in fruit consignments", "fraudulently obtained identity cards",
          "counterfeit medicines", "protected wildlife species", "firearms parts sent by post",
          "forged driving licences", "cannabis resin in lorries", "undeclared gold jewellery",
          "blank passport booklets", "pre-cursor chemicals", "fake vehicle registration papers",
          "stolen construction machinery"]
ADJ = ["considerable", "steady", "marked", "unexpected", "gradual", "sharp", "moderate",
       "seasonal", "significant", "noticeable", "worrying", "slight", "temporary", "sustained"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
PEOPLE = ["Chief Inspector Huber", "Ms Novak, our senior analyst", "Colonel Berger",
          "the head of the training department", "Dr Wagner of the forensic laboratory",
          "Inspector Schmid", "the deputy director of the border police", "Mr Pichler, the customs liaison",
          "Ms Lehner from the risk analysis unit", "Major Gruber", "the shift supervisor at the airport"]
OPENERS = ["", "", "", "", "Moreover, ", "In addition, ", "At the same time, ", "As a result, ",
           "However, ", "According to the latest figures, ", "In our assessment, ", "For this reason, ",
           "Compared with last year, ", "In practice, ", "Unfortunately, ", "On a positive note, "]
SENTENCES = [
    "in {month}, {unit} recorded a {adj} increase in cases of {thing} at {place}.",
    "the number of travellers checked at {place} rose to about {n},{m:03d} per day during the {month} peak.",
    "officers of {unit} detected {k} cases of {thing} in the last quarter, most of them at {place}.",
    "a {adj} share of these cases involved {thing}, which points to an organised network.",
    "we would welcome advice from colleagues who have dealt with {thing} at a comparable crossing point.",
    "since {month} the shift schedule at {place} has been adapted to the arrival times of the night buses.",
    "the joint patrols with {unit} continued on {k} days, and the results are summarised in the annex.",
    "training needs remain highest in the examination of {thing}, according to the survey of {unit}.",
    "our analysts estimate that {pct} per cent of the detected cases were linked to the same route.",
    "the equipment at {place} is ageing, and {unit} has asked for {k} new document readers.",
    "a workshop with {unit} is planned for {month}, with about {k} participants from the regions.",
    "the exchange of risk indicators with neighbouring States has improved the targeting of checks at {place}.",
    "in several cases, {thing} were presented by travellers who had entered through {place}.",
    "we propose to organise a study visit for {k} officers to learn from the practice of other participating States.",
    "the statistics for {month} show {k} refusals of entry and {n} apprehensions at {place}.",
    "{unit} reported that the waiting time at {place} exceeded {k} hours on several weekends.",
    "cooperation with {unit} has been good, although the exchange of data is still slow.",
    "a {adj} rise in the use of {thing} was also noted in the reports of the liaison officers.",
    "the new procedure was tested at {place} for {k} weeks and will be extended if the evaluation is positive.",
    "we would be grateful for any information on similar patterns observed in your country since {month}.",
    "the regional directorate has assigned {k} additional officers to {place} for the summer season.",
    "of the {n} vehicles inspected in {month}, {k} carried {thing}.",
    "further details can be provided by {unit} on request, through the national focal point.",
    "the budget for the next year foresees {k} training courses on the detection of {thing}.",
    "{person} will coordinate the preparations and can be reached during office hours.",
    "{person} presented the first results to the steering group on {day} {month}.",
    "the lorry drivers questioned at {place} said they had been paid in cash by an intermediary.",
    "most of the seized {thing} were found in hidden compartments behind the dashboard or under the floor.",
    "a pilot project on automated number plate recognition started at {place} on {day} {month}.",
    "the courts handed down {k} convictions, with sentences of up to {small} years.",
    "several of the suspects had used the same hotel near {place} before crossing the border.",
    "{unit} now shares its daily situation report with the neighbouring services by secure mail.",
    "the curriculum for new recruits has been revised to include two days on {thing}.",
    "interpretation into Russian and Arabic was needed in {pct} per cent of the interviews.",
    "the waiting areas at {place} are too small for the number of people arriving on peak days.",
    "the renovation of the control booths at {place} is expected to be finished by {month}.",
    "the first evaluation shows that the false alarm rate of the new scanners dropped below {small} per cent.",
    "we have no reliable figures yet for the winter months, when traffic is much lower.",
    "a case from {month} illustrates the method: {thing} were declared as spare parts and shipped in small lots.",
    "{unit} and {unit2} held {small} coordination meetings to agree on common risk profiles.",
    "the officers on duty at {place} work in shifts of twelve hours, which leaves little time for training.",
    "the e-learning module on {thing} was completed by {n} officers so far.",
    "a delegation of {unit} visited the training centre in {city} in {month} and was impressed by its simulator.",
    "our ministry is ready to host the next regional meeting in {city}, if the network agrees.",
    "the analysis of {n} seized mobile phones revealed contacts with groups active in {city}.",
    "the detection dogs of {unit} proved very effective in the search of buses and vans.",
    "the cost of the proposed training is estimated at {n},{m:03d} euros, including travel and interpretation.",
    "we would appreciate receiving the names of experts by the end of {month}.",
    "the number of asylum applications lodged at {place} remained stable at about {k} per week.",
    "falsified entry stamps were found in {k} passports examined by {unit}.",
    "it would help us greatly if the Secretariat could share the handbook produced for the {city} workshop.",
    "the cooperation agreement with {city} needs to be renewed before the end of {month}.",
]
CITIES = ["Bratislava", "Budapest", "Ljubljana", "Zagreb", "Belgrade", "Skopje", "Tirana", "Chisinau",
          "Kyiv", "Warsaw", "Prague", "Bucharest", "Sofia", "Tbilisi", "Yerevan", "Almaty", "Bishkek",
          "Dushanbe", "Tashkent", "Ashgabat", "Munich", "Rome", "Vilnius", "Riga"]
HEADINGS = ["Background", "Situation at the crossing points", "Recent trends", "Cooperation",
            "Training needs", "Equipment", "Statistics", "Proposed activities", "Request",
            "Next steps", "Case examples", "Budget", "Evaluation"]


def sentence(r: random.Random) -> str:
    unit, unit2 = r.sample(UNITS, 2)
    s = r.choice(OPENERS) + r.choice(SENTENCES).format(
        month=r.choice(MONTHS), unit=unit, unit2=unit2, adj=r.choice(ADJ), thing=r.choice(THINGS),
        place=r.choice(PLACES), person=r.choice(PEOPLE), city=r.choice(CITIES), day=r.randint(1, 28),
        n=r.randint(2, 950), m=r.randint(0, 999), k=r.randint(2, 60), small=r.randint(2, 9),
        pct=r.randint(5, 95))
    return s[0].upper() + s[1:]


def body_text(seed: str, size: int, ref: str) -> str:
    """About `size` bytes of English report prose (sections of paragraphs), seeded."""
    r = random.Random(seed)
    out = ["Dear colleagues,", "",
           f"With this message our national focal point requests the assistance of the Secretariat "
           f"(our reference {ref}). The situation is summarised below.", ""]
    length = sum(len(x) + 1 for x in out)
    section = 0
    while length < size - 200:
        heading = f"{section + 1}. {HEADINGS[section % len(HEADINGS)]}"
        paras = [heading, ""]
        for _ in range(r.randint(2, 4)):
            paras += [" ".join(sentence(r) for _ in range(r.randint(3, 7))), ""]
        length += sum(len(x) + 1 for x in paras)
        out += paras
        section += 1
    out += ["Thank you in advance for your support.", "", "Kind regards,", "National Focal Point", ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------
# Keys and the Secretariat gateway
# ---------------------------------------------------------------------------

def generate(gpg: mm.GnuPG, p: mm.Persona, now: float) -> None:
    """mailmaker's GnuPG.generate, plus RSA-4096 (RSA primary + RSA encryption subkey)."""
    if p.algo != "rsa4096":
        gpg.generate(p, now)
        return
    name, addr = p.uid.rsplit(" <", 1)
    params = ("%no-protection\nKey-Type: rsa\nKey-Length: 4096\nSubkey-Type: rsa\nSubkey-Length: 4096\n"
              "Key-Usage: sign,cert\nSubkey-Usage: encrypt\n"
              f"Name-Real: {name}\nName-Email: {addr[:-1]}\nExpire-Date: {p.expire}\n%commit\n")
    res = gpg.run(["--gen-key"], params.encode(), at=now - p.created_days_ago * mm.DAY)
    p.fpr = next(s.split()[2] for s in res.status if s.startswith("KEY_CREATED"))


def key_algo(gpg: mm.GnuPG, fpr: str) -> str:
    """'cv25519', 'rsa3072', 'rsa4096', ... from the encryption subkey (or signing key)."""
    rows = [r.split(":") for r in gpg.run(["--with-colons", "--list-keys", fpr]).out.decode().splitlines()]
    subs = [r for r in rows if r[0] == "sub" and "e" in r[11]] or [r for r in rows if r[0] == "pub"]
    f = subs[0]
    if f[3] == "1":                                  # RSA: its size
        return f"rsa{f[2]}"
    return f[16] if len(f) > 16 and f[16] else f"pk{f[3]}"  # ECC: the curve


def write_secretariat(w: fx.World, out: Path) -> None:
    """What make_fixtures.World.write_network writes for the Secretariat, in one
    self-contained folder (certs/ beside directory.toml), with GB in the directory."""
    base = out / "secretariat"
    for pid in PARTIES:
        cert = base / "certs" / f"{pid}.asc"
        cert.parent.mkdir(parents=True, exist_ok=True)
        cert.write_bytes(w.gpg.export(w.p[pid].fpr))
    key = base / "keys" / "gateway.sec.asc"
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_bytes(w.gpg.export_secret(w.p[GATEWAY].fpr))
    mm.write_config(base / "gateway.toml", role="secretariat", address=w.p[GATEWAY].email,
                    secret_key="keys/gateway.sec.asc", directory="directory.toml")
    mm.write_directory(base / "directory.toml", [w.p[pid] for pid in PARTIES], "certs",
                       "Directory of the NFP network (benchmark corpus)", generator="bench/corpus.py",
                       notes=["The fixture network of tests/fixtures/make_fixtures.py plus GB (RSA-4096)."])


def write_gnupghome(out: Path) -> None:
    """OUTDIR/gnupg: only what a gpg-based gateway holds: its own secret key and the
    directory's certificates. trust-model always: the directory is the trust."""
    home = mm.GnuPG(out / "gnupg")
    base = out / "secretariat"
    (out / "gnupg" / "gpg.conf").write_text("trust-model always\nno-auto-key-retrieve\n")
    home.run(["--import"], (base / "keys" / "gateway.sec.asc").read_bytes()
             + b"".join((base / "certs" / f"{pid}.asc").read_bytes() for pid in PARTIES))
    home.close()


# ---------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------

def make_message(w: fx.World, cls: str, i: int) -> bytes:
    pid, text_size, attach = CLASSES[cls]
    ref = f"{pid}-{cls}-{i:04d}"
    body = body_text(f"{cls}/{i}", text_size, ref)
    parts = [mm.text(body)]
    if attach:
        data = b"%PDF-1.5\n" + os.urandom(attach - 9)  # incompressible, like a PDF's streams
        parts.append(mm.attachment(data, f"annex-{i:04d}.pdf", "application/pdf"))
    subject = f"[ASSISTANCE REQUEST] Support for border management training, {ref}"
    return w.pgp_mime(w.p[pid], subject, parts).eml


def find_binary(given: str | None) -> Path | None:
    if given:
        return Path(given)
    for kind in ("release", "debug"):
        b = ROOT / "target" / kind / "nfp-gateway"
        if b.is_file():
            return b
    return None


def verify(binary: Path, out: Path, manifest: dict) -> int:
    """nfp-gateway check on every message (one call per class): accepted, from the sender."""
    failures = 0
    config = out / "secretariat" / "gateway.toml"
    for cls, c in manifest["classes"].items():
        cmd = [str(binary), "--config", str(config), "check", "--now", manifest["now"],
               *[str(out / f) for f in c["files"]]]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode not in (0, 1):
            raise SystemExit(f"corpus: {' '.join(cmd[:6])} ... failed ({p.returncode}):\n{p.stderr}")
        ds = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
        bad = [(f, d["verdict"], d["reason"], d["detail"]) for f, d in zip(c["files"], ds)
               if d["verdict"] != "accepted" or (d["sender"] or {}).get("party") != c["sender"]
               or d["kind"] != "assistance_request"]
        bad += [("(missing)", len(ds), len(c["files"]), "")] if len(ds) != len(c["files"]) else []
        log(f"    check {cls:17} {len(ds) - len(bad)}/{len(c['files'])} accepted from {c['sender']}"
            + "".join(f"\n      {b}" for b in bad[:5]))
        failures += len(bad)
    return failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--count", type=int, default=20, help="messages per class (default 20)")
    ap.add_argument("--classes", help="comma-separated subset of: " + ", ".join(CLASSES))
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                    help="GnuPG processes in parallel (default: CPUs)")
    ap.add_argument("--gateway-algo", default="cv25519", choices=["cv25519", "rsa3072", "rsa4096"],
                    help="the gateway's key (default cv25519, the fixture network's): the senders' "
                         "algorithms only change signature verification, this one the decryption")
    ap.add_argument("--bin", help="nfp-gateway for the check (default target/release, else target/debug)")
    ap.add_argument("--no-verify", action="store_true", help="skip the nfp-gateway check of every message")
    args = ap.parse_args()
    out = args.outdir.resolve()
    classes = args.classes.split(",") if args.classes else list(CLASSES)
    unknown = [c for c in classes if c not in CLASSES]
    if unknown:
        ap.error(f"unknown classes {unknown}")

    start = time.monotonic()
    fx.clean(out, OUTPUTS, homes=("keygen", "gnupg"))
    now = int(time.time())
    w = fx.World(out, now)  # its default home, OUTDIR/gnupg, is replaced below
    w.gpg = mm.GnuPG(out / "keygen")  # every secret key; removed at the end
    w.p[RSA4096.id] = RSA4096
    w.p[GATEWAY].algo = args.gateway_algo
    w.config = fx.SECRETARIAT
    try:
        for pid in [GATEWAY] + PARTIES:
            generate(w.gpg, w.p[pid], now)
        algos = {pid: key_algo(w.gpg, w.p[pid].fpr) for pid in [GATEWAY] + PARTIES}
        write_secretariat(w, out)
        write_gnupghome(out)
        log(f"corpus: keys and the Secretariat gateway in {time.monotonic() - start:.1f}s "
            f"(gateway {algos[GATEWAY]}; " + ", ".join(f"{p} {a}" for p, a in algos.items() if p != GATEWAY) + ")")

        t = time.monotonic()
        jobs = [(c, i) for c in classes for i in range(args.count)]
        jobs.sort(key=lambda j: -CLASSES[j[0]][2])  # the largest first: the pool ends together
        with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
            emls = dict(zip(jobs, pool.map(lambda j: make_message(w, *j), jobs)))
        manifest = {"now": mm.rfc3339(now), "gateway_key_algo": algos[GATEWAY], "classes": {},
                    "gnupghome": "gnupg"}
        for c in classes:
            pid, text_size, attach = CLASSES[c]
            files = []
            for i in range(args.count):
                f = f"messages/{c}/{i}.eml"
                (out / f).parent.mkdir(parents=True, exist_ok=True)
                (out / f).write_bytes(emls[(c, i)])
                files.append(f)
            size = sum(len(emls[(c, i)]) for i in range(args.count)) // args.count
            manifest["classes"][c] = {"files": files, "bytes_each": size, "sender": pid,
                                      "sender_algo": algos[pid], "sender_fpr": w.p[pid].fpr,
                                      "text_bytes": text_size, "attachment_bytes": attach}
        log(f"corpus: {len(jobs)} messages in {time.monotonic() - t:.1f}s ({args.workers} GnuPG workers)")
    finally:
        w.gpg.close()
        shutil.rmtree(out / "keygen", ignore_errors=True)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")

    failures = 0
    if not args.no_verify:
        binary = find_binary(args.bin)
        if binary is None or not binary.is_file():
            log("corpus: no nfp-gateway binary (cargo build), not verified; give --bin or --no-verify")
            return 2
        t = time.monotonic()
        log(f"corpus: judging every message with {binary} check --now {manifest['now']}")
        failures = verify(binary, out, manifest)
        log(f"corpus: checked in {time.monotonic() - t:.1f}s")

    for c, m in manifest["classes"].items():
        log(f"  {c:17} {len(m['files'])} x {m['bytes_each'] / KIB:7.1f} KiB  sender {m['sender']} "
            f"({m['sender_algo']})")
    ratio = len(zlib.compress(body_text("ratio", 20 * KIB, "x").encode())) / (20 * KIB)
    log(f"corpus: {out} in {time.monotonic() - start:.1f}s; now {manifest['now']}; "
        f"text compresses to {ratio:.0%} with zlib" + (f"; {failures} NOT ACCEPTED" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
