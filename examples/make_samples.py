#!/usr/bin/env python3
"""make_samples.py OUTDIR: sample mail of the demo network, made with GnuPG now.

    make_samples.py OUTDIR                 writes the samples
    make_samples.py --check GATEWAY OUTDIR judges them with the nfp-gateway binary
                                           GATEWAY, prints a table, exits 1 when any
                                           decision differs from what was declared

Imports the committed DEMO keys (examples/keys/, examples/national-at/keys/) into
a private GNUPGHOME, OUTDIR/gnupg (never ~/.gnupg), and writes as the demo NFPs:

    OUTDIR/messages/<sample>.eml   one RFC 5322 message per sample (CRLF)
    OUTDIR/samples.json            per sample: its gateway (secretariat or national-at),
                                   file, and the decision the gateway must take

Messages are composed as mail clients do, with tests/fixtures/make_fixtures.py's
World (Thunderbird-style PGP/MIME with protected headers, Enigmail-style
separate layers, inline PGP) and signed at the current time.

examples/demo_network.py then sends them by SMTP to both gateways running as
daemons, and checks the mail they cause against the same declarations.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
EXAMPLES = Path(__file__).resolve().parent
REPO = EXAMPLES.parent
sys.path.insert(0, str(REPO / "tests" / "fixtures"))
sys.path.insert(0, str(EXAMPLES))
import mailmaker as mm  # noqa: E402
import make_fixtures as fx  # noqa: E402
import make_network as net  # noqa: E402

# The two demo gateways: samples.json names them, --check runs them.
CONFIGS = {"secretariat": "examples/gateway.toml",
           "national-at": "examples/national-at/gateway.toml"}
# make_fixtures.World picks the gateway key (its GATEWAY_OF) by these names.
WORLD_CONFIG = {"secretariat": fx.SECRETARIAT, "national-at": fx.NATIONAL_AT}


# ---------------------------------------------------------------------------
# Samples
# ---------------------------------------------------------------------------

@dataclass
class Sample:
    about: str                  # what the sample shows, one line
    eml: bytes
    expect: dict
    check_with: list[str] = field(default_factory=list)  # judged first, in the same call


def accepted(sender: str, kind: str, route: list[str]) -> dict:
    return {"verdict": "accepted", "reason": None, "sender": sender, "kind": kind,
            "route": route}


def quarantined(reason: str) -> dict:
    return {"verdict": "quarantined", "reason": reason}


SAMPLES: list[tuple[str, str, Callable[[fx.World], Sample]]] = []


def sample(name: str, config: str = "secretariat"):
    """Registers a sample maker: the sample's name (its file is messages/NAME.eml)
    and the gateway that judges it. Samples are made in the order written."""
    def register(fn):
        SAMPLES.append((name, config, fn))
        return fn
    return register


VCARD_GB = """BEGIN:VCARD
VERSION:4.0
FN:James Patel
N:Patel;James;;;
ORG:Home Office;National Focal Point United Kingdom
TITLE:Head of the National Focal Point
EMAIL;TYPE=work:james.patel@homeoffice.gb.example
EMAIL;TYPE=work:nfp@homeoffice.gb.example
TEL;VALUE=uri;TYPE="voice,work":tel:+44-20-7946-0318
ADR;TYPE=work:;;2 Marsham Street;London;;SW1P 4DF;United Kingdom
LANG:en
REV:20261120T090000Z
END:VCARD
"""


# --- accepted by the Secretariat's gateway -----------------------------------

@sample("assistance-AT")
def assistance_AT(w: fx.World) -> Sample:
    at = w.p["AT"]
    body = """Sehr geehrte Damen und Herren,

die österreichische Grenzpolizei ersucht das Sekretariat um Unterstützung bei der Schulung ihrer Bediensteten in der Dokumentenprüfung am Flughafen Wien-Schwechat.
Bei den Grenzkontrollen wurden heuer deutlich mehr gefälschte Reisedokumente festgestellt als im Vorjahr, vor allem hochwertige Fälschungen von Aufenthaltskarten.
Wir würden gerne zwei Fachleute aus Teilnehmerstaaten einladen, die Erfahrung mit der Prüfung solcher Dokumente haben, für eine Woche im Februar.
Die Kosten für Reise und Unterkunft übernimmt das Bundesministerium für Inneres.

Mit freundlichen Grüßen
Mag. Lukas Gruber
Nationale Kontaktstelle Österreich
"""
    mail = w.pgp_mime(at, "[HILFEERSUCHEN] Schulung in Dokumentenprüfung am Flughafen Wien",
                      [mm.text(body, cte="8bit")])
    w.mails["assistance-AT"] = mail
    return Sample("Thunderbird-style PGP/MIME, protected headers, German tag in the signed subject",
                  mail.eml, accepted("AT", "assistance_request", ["secretariat"]))


@sample("best-practice-FR-pdf")
def best_practice_FR_pdf(w: fx.World) -> Sample:
    body = """Madame, Monsieur,

La police aux frontières souhaite partager une bonne pratique mise en place cette année à l'aéroport de Paris-Charles-de-Gaulle.
Les sas de contrôle automatisé ont été couplés à une équipe mobile d'agents qui prend en charge les voyageurs refusés par les sas, ce qui a réduit de moitié l'attente aux heures de pointe.
Vous trouverez en pièce jointe le bilan chiffré des six premiers mois.
Nous pouvons présenter le dispositif en détail lors de la prochaine réunion du réseau.

Cordialement,
Commissaire Claire Martin
Point de contact national France
"""
    pdf = fx.pdf_bytes("Bilan des sas de controle automatise, Roissy, 2026")
    subject = "[BONNE PRATIQUE] Contrôle automatisé aux frontières à Roissy"
    mail = w.separate_layers(w.p["FR"], subject, [
        mm.text(body), mm.attachment(pdf, "bilan-sas-roissy.pdf", "application/pdf")])
    return Sample("Enigmail-style separate signed and encrypted layers, a PDF attached",
                  mail.eml, accepted("FR", "best_practice", ["secretariat"]))


@sample("info-request-ES-to-FR")
def info_request_ES_to_FR(w: fx.World) -> Sample:
    body = """[SOLICITUD DE INFORMACIÓN] [FR] Contrabando de tabaco en el paso fronterizo de La Junquera

Estimados colegas:

El punto focal nacional de España solicita a las autoridades francesas información sobre el contrabando de tabaco en camiones que cruzan el paso fronterizo de La Junquera.
Desde el verano, la Guardia Civil ha interceptado varios cargamentos ocultos entre mercancías legales con destino a Francia.
Nos interesaría saber si sus servicios de aduanas han detectado el mismo método y en qué puntos de la autopista se realizan los controles.

Atentamente,
Comisario Javier Morales Ruiz
Punto focal nacional de España
"""
    mail = w.inline(w.p["ES"], "Consulta", body)
    return Sample("inline PGP: the tags on the signed first line, target State [FR]",
                  mail.eml, accepted("ES", "information_request", ["FR"]))


@sample("info-reply-RU-to-AT")
def info_reply_RU_to_AT(w: fx.World) -> Sample:
    body = """Уважаемые коллеги!

В ответ на ваш запрос сообщаем, что за первое полугодие при пограничном контроле в международных аэропортах Москвы было выявлено сорок два поддельных паспорта, предъявленных пассажирами рейсов из Вены.
Большинство подделок выполнено на бланках, похищенных в третьих странах.
Образцы выявленных подделок можем передать на очередном совещании сети.

С уважением,
Полковник А. С. Волков
Национальный координационный центр
"""
    subject = "Ответ: BSM-2026-000042 [AT] поддельные паспорта на рейсах из Вены"
    mail = w.pgp_mime(w.p["RU"], subject, [mm.text(body, cte="base64")])
    return Sample("a reply citing BSM-2026-000042 with [AT]; Cyrillic subject, base64 body",
                  mail.eml, accepted("RU", "information_reply", ["AT"]))


@sample("contact-update-GB-vcard")
def contact_update_GB_vcard(w: fx.World) -> Sample:
    body = """Dear colleagues,

From 1 January 2027 James Patel will take over as Head of the UK National Focal Point, as Sarah Thompson moves to a new post within the Home Office.
His card is attached; the mailbox of the focal point stays the same.
Please amend the network's records accordingly.

Kind regards,
Sarah Thompson
National Focal Point United Kingdom
"""
    mail = w.pgp_mime(w.p["GB"], "New Head of the UK National Focal Point",
                      [mm.text(body, cte="7bit"),
                       mm.attachment(mm.crlf(VCARD_GB.encode()), "james-patel.vcf", "text/vcard")])
    return Sample("no tag: the attached vCard makes it a contact update",
                  mail.eml, accepted("GB", "contact_update", ["secretariat"]))


@sample("circular-secretariat")
def circular_secretariat(w: fx.World) -> Sample:
    body = """Dear National Focal Points,

the annual meeting of the network will take place in Vienna on 10 and 11 March 2027, at the Hofburg Congress Centre.
Each participating State is invited to nominate up to two participants by 12 February.
The draft agenda and the practical information will follow in January.

Kind regards,
Anna Keller
Network Coordinator, OSCE Secretariat
"""
    subject = "[CIRCULAR] Annual meeting of the network, Vienna, March 2027"
    mail = w.pgp_mime(w.p["secretariat"], subject, [mm.text(body, cte="7bit")])
    return Sample("a Secretariat circular: to every NFP of the directory",
                  mail.eml, accepted("secretariat", "circular", net.NFPS))


@sample("unclassified-IT")
def unclassified_IT(w: fx.World) -> Sample:
    body = """Cari colleghi,

desidero ringraziarvi di cuore per l'accoglienza che ci avete riservato a Vienna la settimana scorsa.
È stato un piacere ritrovare tanti colleghi e conoscere i nuovi membri della rete.
Porto con me un bellissimo ricordo della cena sul Danubio.
A presto,

Giulia Romano
Punto di contatto nazionale Italia
"""
    mail = w.inline(w.p["IT"], "Grazie!", body)
    return Sample("inline PGP, no tag, no keyword: unclassified, the Secretariat triages",
                  mail.eml, accepted("IT", "unclassified", ["secretariat"]))


# --- accepted by Austria's national gateway ----------------------------------

@sample("national-to-service", "national-at")
def national_DE_to_service(w: fx.World) -> Sample:
    body = """Sehr geehrte Damen und Herren,

die Nationale Kontaktstelle Deutschland bittet um Informationen über Kokainkuriere, die mit Nachtzügen von Wien nach München reisen.
Seit September wurden in diesen Zügen fünf Personen mit jeweils mehr als einem Kilogramm Kokain festgenommen.
Sind Ihnen die Hintermänner oder die Anwerbung der Kuriere bekannt, und haben Sie ähnliche Festnahmen verzeichnet?

Mit freundlichen Grüßen
Polizeidirektor Thomas Weber
Nationale Kontaktstelle Deutschland
"""
    subject = "[AUSKUNFTSERSUCHEN] [AT] Kokainkuriere in Nachtzügen Wien–München"
    mail = w.pgp_mime(w.p["DE"], subject, [mm.text(body)])
    return Sample("another State's NFP asks AT about drugs: the competent Austrian service",
                  mail.eml, accepted("DE", "information_request", ["at-anti-drug"]))


@sample("national-to-nfp", "national-at")
def national_secretariat_to_nfp(w: fx.World) -> Sample:
    body = """Dear National Focal Points,

please save the date: the network will mark its twentieth anniversary with a reception in Vienna on the evening of 10 March 2027.
The invitation will follow in January together with the agenda of the annual meeting.

Kind regards,
Anna Keller
Network Coordinator, OSCE Secretariat
"""
    subject = "[CIRCULAR] Save the date: twentieth anniversary of the network"
    mail = w.pgp_mime(w.p["secretariat"], subject, [mm.text(body, cte="7bit")])
    return Sample("a Secretariat circular on no service's topic: the Austrian NFP itself",
                  mail.eml, accepted("secretariat", "circular", ["AT"]))


# --- quarantined: what the gateway stops -------------------------------------

@sample("forged-sender-AT-as-FR")
def forged_sender(w: fx.World) -> Sample:
    fr = w.p["FR"].mailbox
    body = """Madame, Monsieur,

merci de nous renvoyer la liste complète des points de contact nationaux, avec leurs numéros de téléphone portable, avant ce soir.

Point de contact national France
"""
    mail = w.pgp_mime(w.p["AT"], "[DEMANDE D'INFORMATION] Liste des points de contact",
                      [mm.text(body)], outer_from=fr, inner_from=fr)
    return Sample("signed by AT's key but From FR, outside and in the protected headers",
                  mail.eml, quarantined("sender_mismatch"))


@sample("outsider-signature")
def outsider(w: fx.World) -> Sample:
    body = """Dear colleagues,

we offer document security training for border officers at a special rate for members of your network.
Please forward this offer to all National Focal Points.

Border Solutions Consulting
"""
    mail = w.pgp_mime(w.p[net.OUTSIDER], "[REQUEST] Training offer for the network",
                      [mm.text(body, cte="7bit")])
    return Sample("well signed and encrypted, by a key no directory lists",
                  mail.eml, quarantined("unknown_signer"))


@sample("unencrypted-AT")
def unencrypted(w: fx.World) -> Sample:
    body = """Sehr geehrte Damen und Herren,

dringend: bitte senden Sie uns die aktuelle Liste der Ansprechpartner aller Kontaktstellen.

Nationale Kontaktstelle Österreich
"""
    eml = w.plain(w.p["AT"].mailbox, "[HILFEERSUCHEN] Liste der Ansprechpartner", mm.text(body))
    return Sample("plain text from AT's registered address: no OpenPGP at all",
                  eml, quarantined("not_encrypted"))


@sample("tampered-ciphertext")
def tampered(w: fx.World) -> Sample:
    body = """Madame, Monsieur,

le point de contact national France confirme sa participation à la réunion annuelle du réseau avec deux délégués.

Cordialement,
Point de contact national France
"""
    fr, gw = w.p["FR"], w.gateway()
    mail = w.pgp_mime(fr, "Participation à la réunion annuelle", [mm.text(body)],
                      seal=lambda d: mm.flip_encrypted_byte(w.gpg.sign_encrypt(
                          d, fr.fpr, [gw.fpr], at=w.now, extra=["--compress-algo", "none"])))
    return Sample("FR's message with one bit of the ciphertext flipped in transit",
                  mail.eml, quarantined("integrity_failure"))


@sample("replay-of-assistance-AT")
def replay(w: fx.World) -> Sample:
    original = w.mails["assistance-AT"]
    mail = w.wrap(original.armored, w.p["AT"].mailbox, w.gateway().email, "...", w.now,
                  mm.message_id("bmi.at.example"))
    return Sample("assistance-AT's ciphertext re-sent with a new Message-ID and Date",
                  mail.eml, quarantined("replay"), check_with=["messages/assistance-AT.eml"])


@sample("auto-reply-IT")
def auto_reply(w: fx.World) -> Sample:
    body = """Sono assente dall'ufficio fino al 7 gennaio.
Per questioni urgenti rivolgersi al Vice Questore Marco Bianchi.
"""
    mail = w.pgp_mime(w.p["IT"], "Risposta automatica: fuori sede", [mm.text(body)],
                      extra=[("Auto-Submitted", "auto-replied")])
    return Sample("a signed, encrypted out-of-office reply (Auto-Submitted): never answered",
                  mail.eml, quarantined("loop"))


# ---------------------------------------------------------------------------
# Making the samples
# ---------------------------------------------------------------------------

def key_files() -> list[Path]:
    return ([EXAMPLES / p for p in net.GATEWAYS.values()]
            + sorted((EXAMPLES / "keys" / "demo-personas").glob("*.sec.asc")))


def load_personas(gpg: mm.GnuPG) -> dict[str, mm.Persona]:
    """Imports the DEMO keys; the personas of make_network.py with their fingerprints."""
    gpg.run(["--import"], b"".join(f.read_bytes() for f in key_files()))
    rows = gpg.run(["--with-colons", "--list-secret-keys"]).out.decode().splitlines()
    fpr_of, primary = {}, None
    for r in rows:
        f = r.split(":")
        if f[0] == "sec":
            primary = None
        elif f[0] == "fpr" and primary is None:
            primary = f[9]
        elif f[0] == "uid":
            fpr_of[f[9].rsplit("<", 1)[1].rstrip(">").lower()] = primary
    ps = net.personas()
    for p in ps.values():
        if p.email not in fpr_of:
            raise SystemExit(f"make_samples: no demo key for {p.id} <{p.email}>; "
                             "run examples/make_network.py")
        p.fpr = fpr_of[p.email]
    return ps


def make(out: Path) -> int:
    fx.clean(out, ["gnupg", "messages", "samples.json"])
    start = time.monotonic()
    w = fx.World(out, int(time.time()))
    try:
        w.p = load_personas(w.gpg)
        (out / "messages").mkdir()
        listing = []
        for name, config, fn in SAMPLES:
            w.config = WORLD_CONFIG[config]
            s = fn(w)
            file = f"messages/{name}.eml"
            (out / file).write_bytes(s.eml)
            listing.append({"name": name, "config": config, "config_file": CONFIGS[config],
                            "about": s.about, "file": file, "check_with": s.check_with,
                            "expect": s.expect})
    finally:
        w.gpg.close()
    doc = {"now": mm.rfc3339(w.now), "samples": listing}
    (out / "samples.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n",
                                      encoding="utf-8")
    print(f"{len(listing)} samples signed at {doc['now']} in {out} "
          f"({time.monotonic() - start:.1f}s)")
    return 0


# ---------------------------------------------------------------------------
# Judging them: --check
# ---------------------------------------------------------------------------

def judge(gateway: Path, out: Path, now: str, s: dict) -> dict:
    """Runs `nfp-gateway check` on the sample (after its check_with messages,
    in the same call) and returns the sample's decision."""
    files = [str(out / f) for f in s["check_with"] + [s["file"]]]
    cmd = [str(gateway), "--config", str(REPO / s["config_file"]), "check", "--now", now, *files]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode not in (0, 1):
        raise SystemExit(f"make_samples: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    return json.loads(p.stdout.splitlines()[-1])


def differences(expect: dict, d: dict) -> list[str]:
    got = {"verdict": d["verdict"], "reason": d["reason"], "kind": d["kind"],
           "sender": (d["sender"] or {}).get("party"), "route": [r["party"] for r in d["route"]]}
    return [f"{k}: expected {v!r}, got {got[k]!r}" for k, v in expect.items() if got[k] != v]


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def check(gateway: Path, out: Path) -> int:
    doc = json.loads((out / "samples.json").read_text(encoding="utf-8"))
    rows = [["sample", "gateway", "verdict", "reason", "kind", "topics", "lang", "route"]]
    details, problems, wrong = [], [], 0
    for s in doc["samples"]:
        d = judge(gateway, out, doc["now"], s)
        diff = differences(s["expect"], d)
        mark = "  " if not diff else "! "
        rows.append([mark + s["name"], s["config"], d["verdict"], d["reason"] or "-",
                     d["kind"] or "-", ",".join(d["topics"]) or "-", d["language"] or "-",
                     ",".join(r["party"] for r in d["route"]) or "-"])
        if d["verdict"] == "quarantined":
            details.append(f"  {s['name']} ({d['reason']}): {d['detail']}")
        problems += [f"  {s['name']}: {x}" for x in diff]
        wrong += bool(diff)
    print(f"nfp-gateway check, at {doc['now']}, on the demo samples in {out}:\n")
    print(table(rows))
    print("\nWhy the quarantined samples were stopped:")
    print("\n".join(details))
    n = len(doc["samples"])
    acc = sum(r[2] == "accepted" for r in rows[1:])
    if problems:
        print(f"\nUNEXPECTED: {wrong} of {n} samples differ from samples.json (marked !):")
        print("\n".join(problems))
        return 1
    print(f"\n{n} samples: {acc} accepted, {n - acc} quarantined, as expected.")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", metavar="GATEWAY", type=Path,
                    help="judge OUTDIR's samples with this nfp-gateway binary instead")
    ap.add_argument("outdir", type=Path)
    args = ap.parse_args()
    out = args.outdir.resolve()
    if args.check:
        return check(args.check.resolve(), out)
    return make(out)


if __name__ == "__main__":
    sys.exit(main())
