#!/usr/bin/env python3
"""make_network.py [--force]: creates the DEMO network of nfp-gateway in examples/.

Run once by a developer; its output is committed. Every key is made by GnuPG
(in a throw-away GNUPGHOME, never ~/.gnupg), valid for five years, without
passphrase, and PUBLISHED: the keys are for the demo only (examples/README.md).

    examples/gateway.toml                    the Secretariat's gateway, commented
    examples/directory.toml                  the network: Secretariat and NFPs
    examples/keys/gateway.sec.asc            the Secretariat gateway's secret key
    examples/national-at/gateway.toml        Austria's national gateway
    examples/national-at/directory.toml      the network plus Austria's national services
    examples/national-at/keys/gateway.sec.asc
    examples/certs/<id>.asc                  every party's and both gateways' certificates
    examples/keys/demo-personas/<id>.sec.asc the parties' secret keys (and an outsider's),
                                             so that examples/make_samples.py can write as them

The parties are defined here once (`personas()`); make_samples.py imports them.
Names of persons, phone numbers and mail domains are fictional (*.example).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
EXAMPLES = Path(__file__).resolve().parent
sys.path.insert(0, str(EXAMPLES.parent / "tests" / "fixtures"))
import mailmaker as mm  # noqa: E402
from mailmaker import Contact  # noqa: E402

VALIDITY = "5y"
NFPS = ["AT", "DE", "ES", "FR", "GB", "IT", "RU"]
SERVICES_AT = ["at-customs", "at-border-police", "at-migration", "at-anti-drug"]
GATEWAYS = {"gateway": "keys/gateway.sec.asc", "gateway-at": "national-at/keys/gateway.sec.asc"}
OUTSIDER = "outsider"
LAST_CONFIRMED = "2026-11-20"


@dataclass
class DemoPersona(mm.Persona):
    """A persona whose key's user ID says, to anyone who imports it, that it is a demo key."""

    @property
    def uid(self) -> str:
        return f"{self.name} (DEMO KEY, published: never use for real mail) <{self.email}>"


def persona(*args, **kw) -> DemoPersona:
    kw.setdefault("expire", VALIDITY)
    kw.setdefault("created_days_ago", 1)  # tolerates a demo machine's clock running behind
    kw.setdefault("last_confirmed", LAST_CONFIRMED)
    return DemoPersona(*args, **kw)


def personas() -> dict[str, DemoPersona]:
    """The demo network, by party id: two gateways, the Secretariat, seven NFPs,
    Austria's four national services, and one outsider (no party)."""
    ps = [
        # --- the gateways (not parties of the directory) -----------------------
        persona("gateway", "NFP Network Gateway", "gateway@nfp-network.example",
                last_confirmed=None),
        persona("gateway-at", "NFP-Gateway Österreich", "gateway@nfp.at.example", "de",
                last_confirmed=None),

        # --- the Secretariat ---------------------------------------------------
        persona("secretariat", "OSCE Secretariat, Border Security and Management Unit",
                "bsmu@secretariat.example", "en", "secretariat",
                languages=["fr", "de", "it", "ru", "es"],
                postal_address="Wallnerstrasse 6, 1010 Vienna, Austria",
                timezone="Europe/Vienna", working_hours="Mon-Fri 09:00-17:30",
                contacts=[
                    Contact("Anna Keller", "Network Coordinator",
                            ["anna.keller@secretariat.example", "bsmu@secretariat.example"],
                            ["+43 1 555 36 6701", "+43 664 555 0142"]),
                    Contact("Tomás Herrera Vidal", "Senior Border Security Adviser",
                            ["tomas.herrera@secretariat.example"], ["+43 1 555 36 6712"]),
                ]),

        # --- the National Focal Points ------------------------------------------
        persona("AT", "Nationale Kontaktstelle Österreich, Bundesministerium für Inneres",
                "nfp@bmi.at.example", "de", "nfp", "AT", languages=["en"],
                postal_address="Herrengasse 7, 1010 Wien, Österreich",
                timezone="Europe/Vienna", working_hours="Mo-Fr 07:30-15:30",
                contacts=[
                    Contact("Mag. Lukas Gruber", "Leiter der Kontaktstelle",
                            ["lukas.gruber@bmi.at.example", "nfp@bmi.at.example"],
                            ["+43 1 555 26 90 4410", "+43 664 555 0187"]),
                    Contact("Oberst Sabine Hofer, BA", "Stellvertretende Leiterin",
                            ["sabine.hofer@bmi.at.example"], ["+43 1 555 26 90 4412"]),
                ]),
        persona("DE", "Nationale Kontaktstelle Deutschland, Bundespolizeipräsidium",
                "nfp@bpol.de.example", "de", "nfp", "DE", algo="rsa3072", languages=["en"],
                postal_address="Heinrich-Mann-Allee 103, 14473 Potsdam, Deutschland",
                timezone="Europe/Berlin", working_hours="Mo-Fr 08:00-16:00",
                contacts=[
                    Contact("Polizeidirektor Thomas Weber", "Leiter der Kontaktstelle",
                            ["thomas.weber@bpol.de.example"], ["+49 331 555 97 1200"]),
                    Contact("Polizeihauptkommissarin Katrin Schulz", "Sachbearbeiterin Netzwerk",
                            ["katrin.schulz@bpol.de.example"], ["+49 331 555 97 1214"]),
                ]),
        persona("ES", "Punto focal nacional de España, Ministerio del Interior",
                "nfp@interior.es.example", "es", "nfp", "ES", signing_subkey=True,
                languages=["en", "fr"],
                postal_address="Calle de Amador de los Ríos 2, 28010 Madrid, España",
                timezone="Europe/Madrid", working_hours="lun-vie 08:00-15:00",
                contacts=[
                    Contact("Comisario Javier Morales Ruiz", "Jefe del punto focal nacional",
                            ["javier.morales@interior.es.example"], ["+34 91 555 37 10"]),
                    Contact("Inspectora Lucía Fernández Gil", "Oficial de enlace",
                            ["lucia.fernandez@interior.es.example"], ["+34 91 555 37 14"]),
                ]),
        persona("FR", "Point de contact national France, Ministère de l'Intérieur",
                "nfp@interieur.fr.example", "fr", "nfp", "FR", signing_subkey=True,
                languages=["en"],
                postal_address="Place Beauvau, 75008 Paris, France",
                timezone="Europe/Paris", working_hours="lun.-ven. 09:00-18:00",
                contacts=[
                    Contact("Commissaire Claire Martin", "Cheffe du point de contact national",
                            ["claire.martin@interieur.fr.example"], ["+33 1 99 00 41 20"]),
                    Contact("Capitaine Julien Lefèvre", "Officier de liaison",
                            ["julien.lefevre@interieur.fr.example"], ["+33 1 99 00 41 27"]),
                ]),
        persona("GB", "National Focal Point United Kingdom, Home Office",
                "nfp@homeoffice.gb.example", "en", "nfp", "GB",
                postal_address="2 Marsham Street, London SW1P 4DF, United Kingdom",
                timezone="Europe/London", working_hours="Mon-Fri 09:00-17:00",
                contacts=[
                    Contact("Sarah Thompson", "Head of the National Focal Point",
                            ["sarah.thompson@homeoffice.gb.example"], ["+44 20 7946 0312"]),
                    Contact("James Patel", "Deputy Head, Border Force liaison",
                            ["james.patel@homeoffice.gb.example"], ["+44 20 7946 0318"]),
                ]),
        persona("IT", "Punto di contatto nazionale Italia, Ministero dell'Interno",
                "nfp@interno.it.example", "it", "nfp", "IT", signing_subkey=True,
                languages=["en", "fr"],
                postal_address="Piazza del Viminale 1, 00184 Roma, Italia",
                timezone="Europe/Rome", working_hours="lun-ven 08:00-16:00",
                contacts=[
                    Contact("Dott.ssa Giulia Romano", "Responsabile del punto di contatto",
                            ["giulia.romano@interno.it.example"], ["+39 06 555 4651 10"]),
                    Contact("Vice Questore Marco Bianchi", "Ufficiale di collegamento",
                            ["marco.bianchi@interno.it.example"], ["+39 06 555 4651 17"]),
                ]),
        persona("RU", "Национальный координационный центр, МВД России",
                "nfp@mvd.ru.example", "ru", "nfp", "RU", signing_subkey=True,
                languages=["en"],
                postal_address="ул. Житная, 16, 119049 Москва, Россия",
                timezone="Europe/Moscow", working_hours="пн-пт 09:00-18:00",
                contacts=[
                    Contact("Полковник Андрей Сергеевич Волков", "Руководитель центра",
                            ["a.volkov@mvd.ru.example"], ["+7 495 555 02 11"]),
                    Contact("Елена Викторовна Орлова", "Старший специалист",
                            ["e.orlova@mvd.ru.example"], ["+7 495 555 02 19"]),
                ]),

        # --- Austria's national services (the national-at directory only) -------
        persona("at-customs", "Zollamt Österreich, Bundesministerium für Finanzen",
                "zoll@bmf.at.example", "de", "service", "AT", ["customs"],
                postal_address="Johannesgasse 5, 1010 Wien, Österreich",
                timezone="Europe/Vienna", working_hours="Mo-Fr 07:30-15:30",
                contacts=[Contact("Amtsdirektorin Petra Leitner", "Risikoanalyse, Zollfahndung",
                                  ["petra.leitner@bmf.at.example"], ["+43 50 233 555 310"])]),
        persona("at-border-police", "Grenzpolizei, Bundesministerium für Inneres",
                "grenzpolizei@bmi.at.example", "de", "service", "AT", ["border_police"],
                postal_address="Herrengasse 7, 1010 Wien, Österreich",
                timezone="Europe/Vienna", working_hours="rund um die Uhr (Lagezentrum)",
                contacts=[Contact("Oberstleutnant Martin Pichler", "Referatsleiter Grenzkontrolle",
                                  ["martin.pichler@bmi.at.example"], ["+43 1 555 26 90 5520"])]),
        persona("at-migration", "Bundesamt für Fremdenwesen und Asyl",
                "migration@bfa.at.example", "de", "service", "AT", ["migration"],
                postal_address="Modecenterstraße 22, 1030 Wien, Österreich",
                timezone="Europe/Vienna", working_hours="Mo-Fr 08:00-15:00",
                contacts=[Contact("Mag.a Eva Brunner", "Internationale Zusammenarbeit",
                                  ["eva.brunner@bfa.at.example"], ["+43 1 555 80 7711"])]),
        persona("at-anti-drug", "Bundeskriminalamt, Büro für Suchtmittelkriminalität",
                "suchtmittel@bk.at.example", "de", "service", "AT", ["anti_drug"],
                postal_address="Josef-Holaubek-Platz 1, 1090 Wien, Österreich",
                timezone="Europe/Vienna", working_hours="Mo-Fr 07:00-15:00",
                contacts=[Contact("Chefinspektor Stefan Huber", "Leiter des Büros",
                                  ["stefan.huber@bk.at.example"], ["+43 1 555 48 6630"])]),

        # --- an outsider: a valid key that no directory lists ---------------------
        persona(OUTSIDER, "Border Solutions Consulting", "contact@border-solutions.example",
                last_confirmed=None),
    ]
    return {p.id: p for p in ps}


NETWORK = {
    "name": "OSCE Network of National Focal Points for Border Security and Management (DEMO)",
    "note": "Fictional parties, published DEMO-ONLY keys: see examples/README.md",
}

DEMO_WARNING = """\
# DEMO ONLY. The secret key this file names is published in the nfp-gateway
# repository: anyone can read mail encrypted to it. Never use it, or any key
# under examples/, for real mail (examples/README.md)."""

SECRETARIAT_TOML = """\
# gateway.toml of the Secretariat's gateway in nfp-gateway's demo network.
#
{warning}
#
# Generated by examples/make_network.py. Every key of gateway.toml appears
# below, set to the value the demo uses (or commented out when the default is
# meant). The daemon's sections, [imap], [smtp] and [daemon], are commented
# out at the end: `nfp-gateway check` needs none of them, `nfp-gateway run`
# needs the first two. scripts/demo.sh writes a copy of this file with them
# filled in for its private mail stack (target/demo/secretariat/gateway.toml).
# Keys are kebab-case; an unknown key is an error that names the key and this
# file. Relative paths resolve against this file's folder, so the folder can
# be moved as a whole. NFP_GATEWAY_CONFIG may name this file instead of
# --config.

# Where this gateway runs: "secretariat" (the hub of the network: routes
# between the Secretariat and every State's NFP) or "national" (one State's
# NFP, routing to its national services; then `state` is required).
role = "secretariat"

# The State of a national deployment, ISO 3166 alpha-2 (any case). Only with
# role = "national"; see national-at/gateway.toml.
# state = "AT"

# The gateway's own mailbox address. NFPs encrypt to the gateway's key and
# send here. An information request may name its target State with a
# plus-address in its protected To: gateway+fr@nfp-network.example.
address = "{address}"

# The gateway's armored secret key, without passphrase: it decrypts inbound
# mail and will sign outbound mail. Keep it mode 0600, readable only by the
# gateway's user. Publish its certificate (certs/gateway.asc) to the parties.
# Demo key: {fpr}
secret-key = "keys/gateway.sec.asc"

# The directory of the network: every party, its registered address, its
# certificate (the only trust root), languages, and a service's topics.
directory = "directory.toml"

# The daemon's database (an sqlx URL): message store, BSM-YYYY-NNNNNN
# reference numbers, replay memory. Default: sqlite://nfp-gateway.db beside
# this file (a relative sqlite path resolves against this folder).
# `nfp-gateway check` does not open it.
database = "sqlite://nfp-gateway.db"

# Classification rules (tags and keywords in the six languages) replacing the
# built-in ones, which are rules/classify.toml as compiled into the binary.
# Uncomment to let the operator's edits take effect without a rebuild:
# classify-rules = "../rules/classify.toml"

# The texts of the mail the gateway writes (forwards, acknowledgements,
# quarantine notices, alerts), in the six languages, are built into the binary
# from the repository's templates/<language>/<name>.hbs. A folder named here
# with the same layout overrides them file by file: a missing file keeps the
# built-in text, and a language without a template falls back to English.
# Each file is Handlebars: a first line "Subject: ...", an empty line, the
# body. Names: forward_assistance_request, forward_best_practice,
# forward_contact_update, forward_information_request,
# forward_information_reply, forward_circular, forward_unclassified,
# acknowledgement, quarantine_notice, delivery_failure, no_usable_key.
# templates = "templates"

# At most one quarantine digest per this period: it lists, by reason and by
# envelope sender, the quarantined messages beyond the notice budget of
# [limits]. Default "1h".
quarantine-digest = "1h"

[policy]
# The window around now in which a signature must be dated: older is
# stale_signature (and beyond the replay memory's horizon), newer is clock
# skew the gateway does not tolerate. Human-readable durations: "7d", "36h",
# "30m". Defaults: "7d" and "30m".
signature-max-age = "7d"
signature-max-future = "30m"

[limits]
# Resource caps on one inbound message; exceeding any is `limits`. Sizes in bytes.
max-message-size = 33554432    # the raw message as received; default 32 MiB
max-decrypted-size = 67108864  # decrypted content after decompression; default 64 MiB
max-mime-depth = 20            # nesting of MIME parts, outer or inner; default 20
max-mime-parts = 500           # number of MIME parts, outer or inner; default 500
max-header-size = 102400       # one part's header section (Postfix's header_size_limit); default 100 KiB
# Hourly limits of the daemon, counted from its store (they hold across
# restarts). Accepted messages beyond a party's or the network's limit are
# quarantined as `rate_limited`; `quarantine release` overrides the limit.
sender-messages-per-hour = 120  # accepted messages of one party; default 120
messages-per-hour = 2000        # accepted messages of all parties; default 2000
# A quarantined message gets its own notice to the Secretariat only within
# these budgets; beyond them it waits for the quarantine digest (below), so
# that a storm of forged mail costs a few notices and one digest.
notices-per-hour = 10           # quarantine notices in all; default 10
notices-per-sender-per-hour = 3 # about mail claiming one envelope sender; default 3

# ---------------------------------------------------------------------------
# The daemon, `nfp-gateway run`: it requires the sections [imap] and [smtp],
# while [daemon] is optional. The values are examples for a deployment;
# scripts/demo.sh fills them in for its mail stack on 127.0.0.1.
# ---------------------------------------------------------------------------

# The mailbox the gateway watches (the `address` above, at its mail server).
# The watched folder is the queue: every message in it is unfinished work.
# The gateway takes each one, judges it, stores it with its decision, and only
# then moves it to the processed or quarantine folder (created when missing;
# MOVE, or COPY and EXPUNGE where the server lacks MOVE). It reads with
# BODY.PEEK: the \\Seen flag stays as it was.
# [imap]
# host = "imap.nfp-network.example"
# port = 993
# # "tls": TLS from the first byte (IMAPS, 993). "starttls": a plain
# # connection upgraded before anything else is said (143). "plaintext": no
# # TLS, allowed only to a loopback address (localhost, 127.0.0.0/8, ::1).
# security = "tls"
# username = "{address}"
# # The password, never inline: exactly one of password-file (its first line;
# # keep it 0600, like the secret key) and password-command (a program and its
# # arguments, no shell; the first line it prints, read once at start).
# password-file = "imap-password"
# # password-command = ["/usr/local/bin/mail-secret", "imap"]
# folder = "INBOX"                    # where NFPs' mail arrives; default INBOX
# processed-folder = "Processed"      # accepted messages; default Processed
# quarantine-folder = "Quarantine"    # quarantined ones; default Quarantine
# # With IDLE (most servers): the gateway is told of new mail at once, and
# # renews the IDLE this often (RFC 2177: servers may drop it after 30 min).
# # Without IDLE: it looks for new mail every poll-interval.
# idle-timeout = "20m"                # default 20m
# poll-interval = "1m"                # default 1m
# # A PEM file of CA certificates to trust besides the usual public roots: a
# # private PKI's CA (the demo: its mail stack's throw-away CA).
# # ca-file = "/etc/nfp-gateway/mail-ca.pem"

# The submission server the gateway sends through: every mail it writes is
# signed with its key, encrypted to its one recipient's certificate, and kept
# in the store's outbox until the server has accepted it. The envelope sender
# is `address`; authentication is AUTH PLAIN or LOGIN with username and the
# password.
# [smtp]
# host = "smtp.nfp-network.example"
# port = 587
# # "starttls" (submission, 587), "tls" (submissions, 465), or "plaintext"
# # (loopback only), as for [imap].
# security = "starttls"
# username = "{address}"
# password-file = "smtp-password"     # or password-command, as for [imap]
# # ca-file = "/etc/nfp-gateway/mail-ca.pem"
# # Waits between attempts when the server is unreachable or answers 4xx
# # (a 5xx is final at once). After the last wait's attempt has failed too,
# # the mail is marked failed and the Secretariat is alerted (by mail, unless
# # the failed mail was the Secretariat's own: then the log and audit say it).
# # `nfp-gateway outbox retry ID` makes a pending or failed mail due now.
# retry = ["1m", "5m", "30m", "2h", "6h"]   # the default

# The daemon itself.
# [daemon]
# # Where GET /healthz (200 when IMAP is connected and the store answers,
# # else 503) and /metrics (Prometheus text) answer. Keep it on loopback.
# # Default: no endpoint.
# listen = "127.0.0.1:9187"
# # On SIGTERM or SIGINT the gateway finishes the message in hand and the mail
# # being sent, then exits 0; whatever is still running after this long is
# # abandoned (the store makes that safe: it is done again at the next start).
# shutdown-timeout = "30s"            # default 30s
"""

NATIONAL_TOML = """\
# gateway.toml of Austria's national gateway in nfp-gateway's demo network.
#
{warning}
#
# Generated by examples/make_network.py. ../gateway.toml documents every key;
# this file shows what a national deployment changes.

# A national deployment: mail from the Secretariat or another State's NFP goes
# to the Austrian services whose topics it concerns (national-at/directory.toml),
# or to the Austrian NFP when it concerns none; what the Austrian NFP sends goes
# out as at the Secretariat; what a national service sends goes to the NFP.
role = "national"
state = "AT"

# The national gateway's own mailbox and key (demo key {fpr}).
address = "{address}"
secret-key = "keys/gateway.sec.asc"

# The network's parties plus Austria's national services, certificates in ../certs.
directory = "directory.toml"

database = "sqlite://nfp-gateway.db"

[policy]
signature-max-age = "7d"
signature-max-future = "30m"
"""


def write_secret(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, 0o600)


def generated_paths() -> list[Path]:
    return [EXAMPLES / n for n in ["gateway.toml", "directory.toml", "certs", "keys",
                                    "national-at"]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--force", action="store_true",
                    help="replace the existing demo network (every fingerprint changes)")
    args = ap.parse_args()
    existing = [p for p in generated_paths() if p.exists()]
    if existing and not args.force:
        print(f"make_network: {existing[0]} exists; --force replaces the whole demo network",
              file=sys.stderr)
        return 1
    for path in existing:
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    start = time.monotonic()
    now = int(time.time())
    ps = personas()
    with tempfile.TemporaryDirectory(prefix="nfp-net-") as tmp:
        gpg = mm.GnuPG(Path(tmp) / "gnupg")
        try:
            for p in ps.values():
                gpg.generate(p, now)
                print(f"{p.id:17} {p.fpr}  {p.uid}")
            for p in ps.values():
                if p.id != OUTSIDER:  # nobody needs the outsider's certificate
                    (EXAMPLES / "certs").mkdir(parents=True, exist_ok=True)
                    (EXAMPLES / "certs" / f"{p.id}.asc").write_bytes(gpg.export(p.fpr))
                secret = gpg.export_secret(p.fpr)
                if p.id in GATEWAYS:
                    write_secret(EXAMPLES / GATEWAYS[p.id], secret)
                else:
                    write_secret(EXAMPLES / "keys" / "demo-personas" / f"{p.id}.sec.asc", secret)
        finally:
            gpg.close()

    warning = DEMO_WARNING
    (EXAMPLES / "gateway.toml").write_text(SECRETARIAT_TOML.format(
        warning=warning, address=ps["gateway"].email, fpr=ps["gateway"].fpr), encoding="utf-8")
    (EXAMPLES / "national-at" / "gateway.toml").write_text(NATIONAL_TOML.format(
        warning=warning, address=ps["gateway-at"].email, fpr=ps["gateway-at"].fpr),
        encoding="utf-8")

    network = [ps["secretariat"]] + [ps[s] for s in NFPS]
    notes = ["", "DEMO network: fictional parties (persons, phones, *.example domains) whose",
             "secret keys are published in examples/keys/. Never use them for real mail.",
             "Format: README.md, section Configuration."]
    mm.write_directory(EXAMPLES / "directory.toml", network, "certs",
                       "Directory of the demo network (the Secretariat's gateway)",
                       generator="examples/make_network.py", notes=notes, network=NETWORK)
    mm.write_directory(EXAMPLES / "national-at" / "directory.toml",
                       network + [ps[s] for s in SERVICES_AT], "../certs",
                       "Directory of the demo network (Austria's national gateway)",
                       generator="examples/make_network.py", notes=notes, network=NETWORK)
    print(f"demo network in {EXAMPLES} ({time.monotonic() - start:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
