#!/usr/bin/env python3
"""make_corpus.py: the seed corpus of the fuzz targets, fuzz/seeds/<target>/.

Makes the demo network's sample mail (examples/make_samples.py) with GnuPG
and the committed DEMO keys, signed at a fixed time ten minutes before
nfp_gateway::fuzz::NOW, so that the seeds decrypt and verify in the fuzzing
world; then cuts them into seeds for each entry point:

    check      the raw messages, as they arrive
    openpgp    their OpenPGP messages, armored and binary
    mime       the raw messages, and their decrypted MIME entities
    contact    vCards and text-form updates (as MIME entities and as text)
    config     the demo's gateway.toml files
    directory  the demo's directory.toml files

and wraps two of the samples the ways servers and webmail do in transit
(tests/fixtures/transit.py), so that the check and mime targets start from
every repair: `repaired-*.eml` must be accepted, `added-*.eml` (a
disclaimer added in transit: the demo allows discarding for nobody) is
refused after the signature inside verified. `python3 fuzz/make_corpus.py
--transit` makes only those from the committed samples.

The seeds are committed; rerun this only to change them. Needs gpg (scripts/install-deps.sh).
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
import shutil
import sys
import tempfile
from datetime import datetime
from pathlib import Path

sys.dont_write_bytecode = True
FUZZ = Path(__file__).resolve().parent
REPO = FUZZ.parent
sys.path.insert(0, str(REPO / "examples"))
sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import make_fixtures as fx  # noqa: E402
import make_samples  # noqa: E402
import mailmaker as mm  # noqa: E402

import transit  # noqa: E402

NOW_RE = re.compile(r'pub const NOW: &str = "([^"]+)";')


def fuzz_now() -> int:
    text = (REPO / "gateway" / "src" / "fuzz.rs").read_text()
    now = NOW_RE.search(text).group(1)
    return int(datetime.fromisoformat(now.replace("Z", "+00:00")).timestamp())


def armored_blocks(eml: bytes) -> list[bytes]:
    return re.findall(rb"-----BEGIN PGP MESSAGE-----.*?-----END PGP MESSAGE-----\r?\n?",
                      eml, re.S)


TEXT_FORMS = {
    "text-fr": "Adresse : 2 place Beauvau, 75008 Paris\nContact : Jean Dupont | Chef du point de contact"
               " | jean.dupont@interieur.fr.example | +33 1 99 00 41 20\n",
    "text-de": "Adresse: Herrengasse 7, 1010 Wien\nTelefon: +43 1 53126 0\n",
    "text-ru": "Адрес: ул. Житная, 16, Москва\nКонтакт: Иван Петров | Руководитель"
               " | petrov@mvd.ru.example | +7 495 000 00 00\n",
    "text-remove": "Remove contact: jean.dupont@interieur.fr.example\n",
}


def transit_seeds(seeds: Path) -> None:
    """Wraps assistance-AT.eml (PGP/MIME) and info-request-ES-to-FR.eml
    (inline) as Exchange and webmail deliver them."""
    pgp_mime = (seeds / "check" / "assistance-AT.eml").read_bytes()
    inline = (seeds / "check" / "info-request-ES-to-FR.eml").read_bytes()
    t = fuzz_now() - 600
    msg = email.message_from_bytes(inline, policy=email.policy.default)
    name, address = email.utils.parseaddr(str(msg["From"]))
    (armor,) = armored_blocks(inline)
    out = {
        "repaired-exchange-AT": transit.exchange_mixed_up(pgp_mime, t),
        "repaired-outlook-AT": transit.exchange_mixed_up(pgp_mime, t, control=False),
        "added-exchange-disclaimer-AT": transit.exchange_mixed_up(
            pgp_mime, t, extra_parts=[transit.disclaimer("Vertraulich.\n")]),
        "added-wrapped-rfc822-AT": transit.wrapped_with_disclaimer(
            pgp_mime, transit.disclaimer("Vertraulich.\n")),
    }
    for label, html, plain in [("gmail", transit.gmail_html, True),
                               ("outlook", transit.outlook_html, True),
                               ("outlook-html-only", transit.outlook_html, False)]:
        out[f"repaired-webmail-{label}-ES"] = transit.webmail(
            name, address, str(msg["To"]), str(msg["Subject"]), t, str(msg["Message-ID"]),
            armor, html(armor), plain=plain)
    for name, eml in out.items():
        for target in ("check", "mime"):
            (seeds / target / f"{name}.eml").write_bytes(eml)


def main() -> int:
    if sys.argv[1:] == ["--transit"]:
        transit_seeds(FUZZ / "seeds")
        return 0
    seeds = FUZZ / "seeds"
    if seeds.exists():
        shutil.rmtree(seeds)
    dirs = {t: seeds / t for t in ["check", "openpgp", "mime", "contact", "config", "directory"]}
    for d in dirs.values():
        d.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="nfp-corpus-") as tmp:
        out = Path(tmp)
        w = fx.World(out, fuzz_now() - 600)
        try:
            w.p = make_samples.load_personas(w.gpg)
            for name, config, fn in make_samples.SAMPLES:
                w.config = make_samples.WORLD_CONFIG[config]
                eml = fn(w).eml
                (dirs["check"] / f"{name}.eml").write_bytes(eml)
                (dirs["mime"] / f"{name}.eml").write_bytes(eml)
                for i, block in enumerate(armored_blocks(eml)):
                    (dirs["openpgp"] / f"{name}-{i}.asc").write_bytes(block)
                    binary = w.gpg.run(["--dearmor"], block, check=False).out
                    if binary:
                        (dirs["openpgp"] / f"{name}-{i}.pgp").write_bytes(binary)
                    plain = w.gpg.decrypt(block).out
                    if plain:
                        (dirs["mime"] / f"{name}-{i}.inner").write_bytes(plain)
                        if "contact-update" in name:
                            (dirs["contact"] / f"{name}-{i}.inner").write_bytes(plain)
        finally:
            w.gpg.close()
    (dirs["contact"] / "vcard-4.vcf").write_text(make_samples.VCARD_GB)
    v3 = make_samples.VCARD_GB.replace("VERSION:4.0", "VERSION:3.0")
    (dirs["contact"] / "vcard-3.vcf").write_text(v3)
    for name, text in TEXT_FORMS.items():
        (dirs["contact"] / f"{name}.txt").write_text(text)
        entity = mm.text(text).to_bytes()
        (dirs["contact"] / f"{name}.mime").write_bytes(entity)
    for src, name in [("examples/gateway.toml", "secretariat.toml"),
                      ("examples/national-at/gateway.toml", "national-at.toml")]:
        shutil.copy(REPO / src, dirs["config"] / name)
    for src, name in [("examples/directory.toml", "secretariat.toml"),
                      ("examples/national-at/directory.toml", "national-at.toml")]:
        shutil.copy(REPO / src, dirs["directory"] / name)
    transit_seeds(seeds)
    for t, d in dirs.items():
        files = list(d.iterdir())
        print(f"{t:10} {len(files):3} seeds, {sum(f.stat().st_size for f in files):8} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
