#!/usr/bin/env python3
"""scenarios.py NAME...: the daemon's end-to-end scenarios (see harness.py).

Each scenario builds its own network and mail stack, drives them as users
would, and raises on the first wrong observation. Exit status 0 when every
named scenario passed; the last line says `N passed, N failed`.
"""

from __future__ import annotations

import email
import imaplib
import json
import re
import socket
import ssl
import subprocess
import sys
import urllib.request
import time
import traceback
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Net, check, mm  # noqa: E402

REF = re.compile(r"BSM-\d{4}-\d{6}")

BODY_DE = ("Sehr geehrte Damen und Herren,\n\nwir ersuchen um Unterstützung bei der Schulung "
           "unserer Grenzpolizei am Grenzübergang Nickelsdorf. Die Schulung soll im Frühjahr "
           "stattfinden und etwa zwanzig Beamtinnen und Beamte umfassen.\n\nMit freundlichen Grüßen\n")
BODY_FR = ("Madame, Monsieur,\n\nnous vous prions de bien vouloir nous transmettre les informations "
           "relatives aux contrôles douaniers au point de passage frontalier de Nickelsdorf. "
           "Ces informations nous aideront à préparer une mission conjointe.\n\nCordialement\n")


def routing() -> None:
    """Each kind reaches the right mailboxes, decrypted and verified with the
    recipients' GnuPG; every sender is acknowledged with a reference; the
    inbox empties into Processed; the store and the audit trail agree."""
    net = Net("routing")
    try:
        pdf = mm.attachment(b"%PDF-1.4\n% test\n", "bericht.pdf", "application/pdf")
        net.send(net.mail_from("AT", "[HILFEERSUCHEN] Schulung der Grenzpolizei", BODY_DE, parts=[pdf]))
        net.send(net.mail_from("FR", "[DEMANDE D'INFORMATION] [AT] Contrôles douaniers", BODY_FR))
        net.start_gateway()

        # Assistance request: the Secretariat receives it, in English, with the original attached.
        sec = net.wait_mail("secretariat", 1)
        check(len(sec) == 1, f"the Secretariat got {len(sec)} mails, want 1")
        fwd = sec[0]
        check(fwd.decrypted and fwd.signed_by_gateway, f"forward not decrypted/verified: {fwd.status}")
        check(str(fwd.outer["Subject"]) == "...", f"outer subject leaks: {fwd.outer['Subject']}")
        check(fwd.outer["Auto-Submitted"] == "auto-generated", "Auto-Submitted missing")
        ref = REF.search(fwd.subject)
        check(ref is not None, f"no reference in the protected subject {fwd.subject!r}")
        check("Schulung der Grenzpolizei" in fwd.subject, f"subject {fwd.subject!r}")
        check(any(n.startswith("original-BSM-") for n in fwd.attachment_names()), f"attachments {fwd.attachment_names()}")
        original = [p for p in fwd.inner.walk() if (p.get_filename() or "").startswith("original-")][0]
        check(b"bericht.pdf" in original.as_bytes(), "the original (with its attachment) is attached as signed")

        # Information request to AT: AT's NFP receives it, in German.
        at = net.wait_mail("AT", 2)  # the forward from FR, and AT's own acknowledgement
        forwards = [m for m in at if "original-" in " ".join(m.attachment_names())]
        acks = [m for m in at if m not in forwards]
        check(len(forwards) == 1 and len(acks) == 1, f"AT got {len(forwards)} forwards and {len(acks)} acks")
        check(forwards[0].signed_by_gateway, "forward to AT not signed by the gateway")
        check("Contrôles douaniers" in forwards[0].subject, f"subject {forwards[0].subject!r}")
        ack = acks[0]
        check(ack.signed_by_gateway and REF.search(ack.subject + ack.text()) is not None, "AT's acknowledgement")
        check("Schulung" not in ack.text() and "Schulung" not in ack.subject, "the acknowledgement quotes the message")
        fr = net.wait_mail("FR", 1)
        check(len(fr) == 1 and fr[0].signed_by_gateway and REF.search(fr[0].subject + fr[0].text()), "FR's acknowledgement")
        check("douaniers" not in fr[0].text(), "the acknowledgement quotes the message")

        # Nothing for anyone else; the inbox is empty, both messages filed.
        for pid in ("DE", "IT", "RU", "ES"):
            check(net.count(pid) == 0, f"{pid} received mail")
        net.wait_rows("SELECT id FROM inbound WHERE imap_state = 'filed'", 2)
        check(net.gateway_folder("INBOX") == 0, "the inbox is not empty")
        check(net.gateway_folder("Processed") == 2, "Processed does not hold both messages")
        net.wait_outbox_sent(4)
        # Postfix may deliver the two in either order: compare by kind.
        rows = net.rows("SELECT verdict, kind, reference, sender_party FROM inbound ORDER BY kind")
        check([r[:2] for r in rows] == [("accepted", "assistance_request"), ("accepted", "information_request")], f"{rows}")
        check(all(REF.fullmatch(r[2] or "") for r in rows) and rows[0][2] != rows[1][2], f"references {rows}")
        transfers = net.rows("SELECT party FROM audit WHERE event = 'transfer' ORDER BY party")
        check(sorted(p for (p,) in transfers) == ["AT", "AT", "FR", "secretariat"], f"audited transfers {transfers}")
        # Nothing decrypted at rest: the stored copies are OpenPGP ciphertext.
        for raw, content in net.rows("SELECT raw_enc, content_enc FROM inbound"):
            check(b"Grenzpolizei" not in raw and b"Grenzpolizei" not in (content or b""), "plaintext at rest")
        code = net.stop_gateway()
        check(code == 0, f"SIGTERM: exit status {code}; log:\n{net.tail()}")
    finally:
        net.close()


def quarantine() -> None:
    """A forged message (signed by AT, From FR) is quarantined: the
    Secretariat gets a notice with the reason code and no content, the
    claimed sender gets nothing, the message moves to Quarantine."""
    net = Net("quarantine")
    try:
        forged = net.w.pgp_mime(net.w.p["AT"], "[DEMANDE D'INFORMATION] Liste des contacts", [mm.text(BODY_FR)],
                                protected=False, outer_from=net.w.p["FR"].mailbox).eml
        net.send(forged)
        net.start_gateway()
        notice = net.wait_mail("secretariat", 1)
        check(len(notice) == 1 and notice[0].signed_by_gateway, f"notice: {[n.status for n in notice]}")
        text = notice[0].subject + notice[0].text()
        check("sender_mismatch" in text, f"the notice does not name the reason:\n{text}")
        check("nfp@interieur.fr.example" in text, "the notice does not show the envelope sender")
        for leak in ("Liste des contacts", "douaniers", "Nickelsdorf"):
            check(leak not in text, f"the notice quotes the message ({leak})")
        net.wait_rows("SELECT id FROM inbound WHERE imap_state = 'filed'", 1)
        check(net.gateway_folder("Quarantine") == 1 and net.gateway_folder("INBOX") == 0, "not moved to Quarantine")
        net.wait_outbox_sent(1)
        time.sleep(1)
        for pid in ("AT", "FR"):
            check(net.count(pid) == 0, f"{pid} received mail about a quarantined message")
        rows = net.rows("SELECT purpose, recipient_party FROM outbox")
        check(rows == [("quarantine_notice", "secretariat")], f"outbox {rows}")
        check(net.rows("SELECT verdict, reason, reference FROM inbound") == [("quarantined", "sender_mismatch", None)],
              "stored decision")
        # What an operator sees of it: the envelope as it came, no content.
        listed = net.cli("quarantine", "list")
        check(listed.returncode == 0 and "sender_mismatch" in listed.stdout
              and "nfp@interieur.fr.example" in listed.stdout, f"quarantine list: {listed.stdout}{listed.stderr}")
        shown = net.cli("quarantine", "show", "1")
        check(shown.returncode == 0 and "verdict:       quarantined sender_mismatch" in shown.stdout
              and "inbox state:   filed" in shown.stdout and "Liste des contacts" not in shown.stdout,
              f"quarantine show: {shown.stdout}{shown.stderr}")
        check(net.cli("quarantine", "show", "99").returncode != 0, "show of a message that is not there")
        sent = net.cli("outbox", "list", "--state", "sent")
        check(sent.returncode == 0 and len(sent.stdout.splitlines()) == 1 and "quarantine_notice" in sent.stdout,
              f"outbox list: {sent.stdout}{sent.stderr}")
        check(net.cli("outbox", "list", "--state", "failed").stdout == "", "failed mail listed")
        retry = net.cli("outbox", "retry", "1")
        check(retry.returncode != 0 and "not pending or failed" in retry.stderr, f"retry of sent mail: {retry.stderr}")
    finally:
        net.close()


def automatic_mail_is_never_answered() -> None:
    """Auto-submitted mail and bounces are quarantined as `loop` and cause no
    outgoing mail at all, not even a notice (a storm stays a storm of one)."""
    net = Net("loop")
    try:
        for i in range(5):
            auto = net.w.pgp_mime(net.w.p["AT"], f"Abwesenheitsnotiz {i}", [mm.text(BODY_DE)],
                                  extra=[("Auto-Submitted", "auto-replied")]).eml
            net.send(auto)
        net.start_gateway()
        rows = net.wait_rows("SELECT reason FROM inbound WHERE imap_state = 'filed'", 5)
        check([r for (r,) in rows] == ["loop"] * 5, f"{rows}")
        time.sleep(1.5)
        check(net.rows("SELECT COUNT(*) FROM outbox") == [(0,)], "automatic mail caused outgoing mail")
        check(net.gateway_folder("Quarantine") == 5, "not all in Quarantine")
    finally:
        net.close()


def no_usable_key() -> None:
    """An information request to PL, whose certificate has expired: nothing
    is sent to PL (no plaintext, no mail at all), the item is held in the
    outbox, the Secretariat is alerted, the sender acknowledged."""
    net = Net("nokey")
    try:
        net.send(net.mail_from("FR", "[DEMANDE D'INFORMATION] [PL] Statistiques", BODY_FR))
        net.start_gateway()
        alert = net.wait_mail("secretariat", 1)
        check(len(alert) == 1 and alert[0].signed_by_gateway, "no alert to the Secretariat")
        text = alert[0].subject + alert[0].text()
        check("nfp@sg.pl.example" in text or "PL" in text, f"the alert does not name PL:\n{text}")
        check("Statistiques" not in text and "douaniers" not in text, "the alert quotes the message")
        net.wait_mail("FR", 1)
        time.sleep(1)
        check(net.count("PL") == 0, "PL received mail although it has no usable key")
        rows = net.rows("SELECT purpose, recipient_party, state, message IS NULL FROM outbox ORDER BY id")
        check(("forward", "PL", "held", 1) in rows, f"the forward to PL is not held without a message: {rows}")
        held = net.rows("SELECT event, party FROM audit WHERE event = 'held_no_key'")
        check(held == [("held_no_key", "PL")], f"audit {held}")

        # PL sends a new certificate (confirmed out of band); the operator
        # imports the directory; the running gateway reloads it and the held
        # forward goes out, encrypted to the new key.
        pl = net.w.p["PL"]
        pl.expire, pl.created_days_ago = "2y", 1
        net.w.gpg.generate(pl, net.now)
        net.w.export_cert("PL")
        imported = net.cli("directory", "import")
        check(imported.returncode == 0 and "~ PL" in imported.stdout and "cert" in imported.stdout,
              f"import: {imported.stdout}{imported.stderr}")
        got = net.wait_mail("PL", 1)
        check(got[0].decrypted and got[0].signed_by_gateway and "Statistiques" in got[0].subject,
              f"PL's forward after the new key: {got[0].status}")
        check(net.rows("SELECT state FROM outbox WHERE recipient_party = 'PL'") == [("sent",)], "outbox state")
        check(net.rows("SELECT COUNT(*) FROM audit WHERE event = 'released_from_hold'") == [(1,)], "audit")
    finally:
        net.close()


def reply_goes_to_the_party_that_asked() -> None:
    """AT asks FR (information request); FR replies citing the reference,
    without naming AT: the reply reaches AT, found through the store."""
    net = Net("reply")
    try:
        net.send(net.mail_from("AT", "[AUSKUNFTSERSUCHEN] [FR] Zollkontrollen", BODY_DE))
        net.start_gateway()
        fr = net.wait_mail("FR", 1)
        ref = REF.search(fr[0].subject)
        check(ref is not None, f"no reference in {fr[0].subject!r}")
        net.send(net.mail_from("FR", f"Re: {ref.group(0)} Contrôles douaniers", BODY_FR))
        at = net.wait_mail("AT", 2)  # its acknowledgement, then FR's reply
        replies = [m for m in at if ref.group(0) in m.subject and "original-" in " ".join(m.attachment_names())]
        check(len(replies) == 1, f"AT got {len(replies)} forwarded replies: {[m.subject for m in at]}")
        rows = net.rows("SELECT kind, cited_reference FROM inbound ORDER BY id")
        check(rows[1] == ("information_reply", ref.group(0)), f"{rows}")
    finally:
        net.close()


def national_routing() -> None:
    """Austria's national gateway: a Secretariat message about customs goes
    to the customs service, a request from FR about migration to the
    migration service; each encrypted to that service's own key. A national
    gateway opens no case (the Secretariat's desk)."""
    net = Net("national", role="national-at")
    try:
        net.send(net.mail_from("secretariat", "[CIRCULAR] Customs cooperation workshop",
                               "Dear colleagues, the Secretariat invites customs officers to a workshop on "
                               "customs risk management and the fight against smuggling of excise goods.\n"))
        net.send(net.mail_from("FR", "[DEMANDE D'INFORMATION] Migration irrégulière",
                               "Madame, Monsieur, nous souhaiterions savoir quelles mesures sont prises contre "
                               "la migration irrégulière et le trafic de migrants à la frontière.\n"))
        net.start_gateway()
        customs = net.wait_mail("at-customs", 1)
        migration = net.wait_mail("at-migration", 1)
        check(customs[0].signed_by_gateway and "workshop" in customs[0].subject.lower(), f"{customs[0].subject!r}")
        # A national gateway's references carry its State, so they never collide with the Secretariat's.
        check(re.search(r"\[BSM-AT-\d{4}-\d{6}\]", customs[0].subject) is not None, f"{customs[0].subject!r}")
        check(migration[0].signed_by_gateway and "Migration" in migration[0].subject, f"{migration[0].subject!r}")
        time.sleep(1)
        check(net.count("at-border-police") == 0 and net.count("at-anti-drug") == 0, "other services got mail")
        # Cases are the Secretariat's desk: FR's accepted information request opens none here.
        check(net.rows("SELECT kind FROM inbound WHERE verdict = 'accepted' AND kind = 'information_request'")
              == [("information_request",)], f"{net.rows('SELECT verdict, kind FROM inbound')}")
        check(net.rows("SELECT COUNT(*) FROM request_case") == [(0,)], "a national gateway opened a case")
    finally:
        net.close()


def register_malta(net: Net):
    """Adds an NFP for Malta whose key is mallory's to the directory file and
    imports it; returns the import's completed process."""
    directory = net.config.parent / "directory.toml"
    directory.write_text(directory.read_text() + '''
[[party]]
id = "MT"
kind = "nfp"
state = "MT"
name = "National Focal Point Malta"
email = "mallory@evil.example"
cert = "../certs/mallory.asc"
language = "en"
''')
    return net.cli("directory", "import")


def release_after_the_directory_learns_the_key() -> None:
    """A message from a sender not yet in the directory is quarantined
    (unknown_signer); the operator adds the party's certificate to the
    directory and releases it: it is judged again and forwarded."""
    net = Net("release")
    try:
        eml = net.w.pgp_mime(net.w.p["mallory"], "[REQUEST] New focal point",
                             [mm.text("Dear colleagues, we request assistance with the training of our "
                                      "new border guards at the green border.\n")]).eml
        net.send(eml)
        net.start_gateway()
        net.wait_mail("secretariat", 1)  # the quarantine notice
        (inbound_id,), = net.wait_rows("SELECT id FROM inbound WHERE reason = 'unknown_signer'", 1)
        imported = register_malta(net)
        check(imported.returncode == 0 and "+ MT" in imported.stdout, f"import: {imported.stdout}{imported.stderr}")
        out = net.cli("quarantine", "release", str(inbound_id))
        check(out.returncode == 0, f"release failed: {out.stdout}{out.stderr}")
        check('"verdict":"accepted"' in out.stdout, out.stdout)
        sec = net.wait_mail("secretariat", 2)
        check(any("New focal point" in m.subject for m in sec), f"{[m.subject for m in sec]}")
        events = [e for (e,) in net.rows("SELECT event FROM audit WHERE inbound_id = ?", inbound_id)]
        check("quarantined" in events and "released" in events, f"{events}")
    finally:
        net.close()


def redelivery_is_a_no_op() -> None:
    """The same bytes in the inbox twice (a server re-delivery): stored once,
    forwarded once, both copies filed. The same signed content in a new
    envelope: quarantined as a replay, nothing forwarded."""
    net = Net("redeliver")
    try:
        eml = net.mail_from("AT", "[HILFEERSUCHEN] Schulung der Grenzpolizei", BODY_DE)
        gw = net.gateway_persona
        net.stack.append(gw.email, net.passwords[gw.email], "INBOX", eml)
        net.stack.append(gw.email, net.passwords[gw.email], "INBOX", eml)
        # The same ciphertext in a new envelope (new Message-ID), as a replayer would send it.
        ciphertext = email.message_from_bytes(eml).get_payload()[1].get_payload(decode=True)
        rewrapped = net.w.wrap(ciphertext, net.w.p["AT"].mailbox, gw.email, "...", net.now,
                               mm.message_id("bmi.at.example")).eml
        net.stack.append(gw.email, net.passwords[gw.email], "INBOX", rewrapped)
        net.start_gateway()
        net.wait_rows("SELECT id FROM inbound WHERE imap_state = 'filed'", 2)
        deadline = time.time() + 15
        while net.gateway_folder("INBOX") and time.time() < deadline:
            time.sleep(0.1)
        check(net.gateway_folder("INBOX") == 0, "the inbox is not empty")
        rows = net.rows("SELECT verdict, reason FROM inbound ORDER BY id")
        check(rows == [("accepted", None), ("quarantined", "replay")], f"stored {rows}")
        check(net.gateway_folder("Processed") == 2 and net.gateway_folder("Quarantine") == 1, "filing")
        net.wait_outbox_sent(3)
        time.sleep(1)
        check(net.count("secretariat") == 2, "the Secretariat should have one forward and one replay notice")
        forwards = [m for m in net.mailbox("secretariat") if "original-" in " ".join(m.attachment_names())]
        check(len(forwards) == 1, f"{len(forwards)} forwards")
    finally:
        net.close()


def uidvalidity_change() -> None:
    """The watched folder is deleted and re-created (a new UIDVALIDITY) while
    a stored message is still in it: the gateway recognises the message by
    its bytes and files it without storing or forwarding it twice."""
    net = Net("uidvalid", extra_config="")
    try:
        text = net.config.read_text().replace('poll-interval = "1s"', 'poll-interval = "1s"\nfolder = "Incoming"')
        net.config.write_text(text)
        gw = net.gateway_persona
        pw = net.passwords[gw.email]
        eml = net.mail_from("FR", "[DEMANDE D'INFORMATION] [AT] Contrôles douaniers", BODY_FR)
        net.stack.append(gw.email, pw, "Incoming", eml)
        net.start_gateway(env={"NFP_GATEWAY_CRASH_AT": "after_store"})
        net.wait_exit()
        check(net.rows("SELECT COUNT(*) FROM inbound") == [(1,)], "stored before the crash")
        old = net.rows("SELECT uidvalidity FROM mailbox_state WHERE folder = 'Incoming'")
        # Re-create the folder with the same message in it.
        ctx = ssl.create_default_context(cafile=net.stack.info["ca_cert"])
        with imaplib.IMAP4_SSL("127.0.0.1", net.stack.info["imaps_port"], ssl_context=ctx) as c:
            c.login(gw.email, pw)
            check(c.delete("Incoming")[0] == "OK", "DELETE")
            check(c.create("Incoming")[0] == "OK", "CREATE")
        net.stack.append(gw.email, pw, "Incoming", eml)
        net.start_gateway()
        net.wait_rows("SELECT id FROM inbound WHERE imap_state = 'filed'", 1)
        new = net.rows("SELECT uidvalidity FROM mailbox_state WHERE folder = 'Incoming'")
        check(old != new, f"UIDVALIDITY did not change: {old} {new}")
        check(net.rows("SELECT COUNT(*) FROM inbound") == [(1,)], "stored twice")
        net.wait_outbox_sent(2)
        time.sleep(1)
        check(net.count("AT") == 1 and net.count("FR") == 1, "forward and acknowledgement once each")
        check(net.gateway_folder("Incoming") == 0 and net.gateway_folder("Processed") == 1, "filing")
    finally:
        net.close()


def operations() -> None:
    """systemd's READY, WATCHDOG and STOPPING reach NOTIFY_SOCKET; /healthz
    and /metrics answer on the configured loopback port; `status` reports;
    JSON logs, with nothing of the message in them."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    net = Net("ops", extra_config=f'listen = "127.0.0.1:{port}"\n')
    notify_path = net.dir / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    sock.settimeout(20)
    try:
        net.send(net.mail_from("AT", "[HILFEERSUCHEN] Schulung der Grenzpolizei", BODY_DE))
        net.start_gateway(env={"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "400000",
                               "NFP_GATEWAY_LOG_FORMAT": "json"})
        check(sock.recv(256) == b"READY=1", "no READY=1")
        check(sock.recv(256) == b"WATCHDOG=1", "no WATCHDOG=1 within the interval")
        net.wait_outbox_sent(2)
        deadline = time.time() + 10
        while True:
            try:
                health = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        check(health.status == 200, f"healthz {health.status}")
        response = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
        check(response.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0"),
              response.headers["Content-Type"])
        metrics = response.read().decode()
        # Read as a scraper reads it: Prometheus's client's strict OpenMetrics
        # parser refuses a missing "# EOF", a bad type or a malformed sample.
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
        families = {f.name: f for f in text_string_to_metric_families(metrics)}
        check(families["nfp_gateway_messages"].type == "counter", str(families.keys()))
        check(families["nfp_gateway_outbox_depth"].type == "gauge", str(families.keys()))
        check('nfp_gateway_messages_total{verdict="accepted",reason=""} 1' in metrics, metrics)
        check("nfp_gateway_imap_connected 1" in metrics, metrics)
        check('nfp_gateway_outbox_total{state="sent"} 2' in metrics, metrics)
        check('nfp_gateway_cases{standing="open"} 1' in metrics
              and 'nfp_gateway_cases{standing="overdue"} 0' in metrics, metrics)
        status = net.cli("status")
        check(status.returncode == 0 and "accepted" in status.stdout and "sent" in status.stdout, status.stdout)
        check(net.stop_gateway() == 0, "SIGTERM")
        if net.store.url is None:
            # SQLite's write-ahead log is folded into the database at shutdown (backups copy one file).
            wal = net.store.path.with_name(net.store.path.name + "-wal")
            wal_size = wal.stat().st_size if wal.exists() else 0
            check(wal_size == 0, f"the WAL holds {wal_size} bytes after shutdown")
        seen = []
        while (d := sock.recv(256)) != b"STOPPING=1":
            check(d == b"WATCHDOG=1", f"unexpected notification {d!r}")
            seen.append(d)
        # Logs: one JSON object per line, and nothing of the message in them.
        lines = net.log.read_text().splitlines()
        check(lines and all(json.loads(l).get("level") for l in lines), "not JSON logs")
        for secret in ("Schulung", "Grenzpolizei", "Unterstützung", "bericht"):
            check(secret not in net.log.read_text(), f"the log contains {secret!r}")
    finally:
        sock.close()
        net.close()


def tls_modes() -> None:
    """IMAP with STARTTLS to 127.0.0.2 (where Dovecot refuses a plaintext
    LOGIN, like a remote server) and SMTP with implicit TLS: mail flows."""
    net = Net("tls")
    try:
        s = net.stack.info
        text = net.config.read_text()
        text = text.replace(f"port = {s['imaps_port']}\nsecurity = \"tls\"",
                            f"port = {s['imap_port']}\nsecurity = \"starttls\"")
        text = text.replace('host = "127.0.0.1"\nport = ' + str(s['imap_port']), 'host = "127.0.0.2"\nport = ' + str(s['imap_port']))
        text = text.replace(f"port = {s['submission_port']}\nsecurity = \"starttls\"",
                            f"port = {s['submissions_port']}\nsecurity = \"tls\"")
        check('host = "127.0.0.2"' in text and 'security = "starttls"' in text and f"port = {s['submissions_port']}" in text,
              "config rewrite")
        net.config.write_text(text)
        net.send(net.mail_from("AT", "[HILFEERSUCHEN] Schulung der Grenzpolizei", BODY_DE))
        net.start_gateway()
        got = net.wait_mail("secretariat", 1)
        check(got[0].signed_by_gateway, "not delivered")
    finally:
        net.close()


def untrusted_server_certificate() -> None:
    """Without the stack's CA the gateway refuses the IMAP server's
    certificate: it never logs in, processes nothing, and says why."""
    net = Net("untrust")
    try:
        net.config.write_text("\n".join(l for l in net.config.read_text().splitlines() if not l.startswith("ca-file")))
        net.send(net.mail_from("AT", "[HILFEERSUCHEN] Schulung der Grenzpolizei", BODY_DE))
        net.start_gateway()
        deadline = time.time() + 10
        # The TLS error itself: the start-up key checks log other certificates' words first.
        while "peer certificate" not in net.log.read_text().lower() and time.time() < deadline:
            time.sleep(0.2)
        check("peer certificate" in net.log.read_text().lower(), f"no certificate error in the log:\n{net.tail()}")
        check(net.gateway_folder("INBOX") == 1, "the message left the inbox")
        check(net.rows("SELECT COUNT(*) FROM inbound") == [(0,)], "something was stored")
        check(net.stop_gateway() == 0, "SIGTERM while reconnecting")
    finally:
        net.close()


def mail_arriving_while_busy_is_not_missed() -> None:
    """Mail delivered while the gateway is filing earlier mail is announced
    in responses to other commands, not to the next IDLE: it must be seen at
    once, not at the next IDLE renewal (set to 10 minutes here)."""
    net = Net("busy")
    try:
        net.config.write_text(net.config.read_text().replace('idle-timeout = "60s"', 'idle-timeout = "10m"'))
        first = [net.mail_from("AT", f"[HILFEERSUCHEN] Schulung {i}", BODY_DE) for i in range(6)]
        second = [net.mail_from("FR", f"[DEMANDE D'INFORMATION] [AT] Contrôles {i}", BODY_FR) for i in range(6)]
        for eml in first:
            net.send(eml)
        net.start_gateway()
        net.wait_rows("SELECT id FROM inbound", 1, timeout=20)
        for eml in second:
            net.send(eml)
        rows = net.wait_rows("SELECT id FROM inbound WHERE imap_state = 'filed'", 12, timeout=20)
        check(len(rows) == 12, f"{len(rows)} of 12 filed within 20 s; the rest waits for the next IDLE:\n{net.tail()}")
    finally:
        net.close()


def directory_changes_apply_without_restart() -> None:
    """A party added with `directory import` while the gateway runs: its
    first message (before the import) is quarantined as unknown_signer, its
    next one (after) is accepted and forwarded, with no restart."""
    net = Net("dirlive")
    try:
        def from_mallory(subject: str) -> bytes:
            return net.w.pgp_mime(net.w.p["mallory"], subject,
                                  [mm.text("Dear colleagues, we request assistance with the training of our "
                                           "border guards at the green border.\n")]).eml
        net.send(from_mallory("[REQUEST] First message"))
        net.start_gateway()
        net.wait_rows("SELECT id FROM inbound WHERE reason = 'unknown_signer'", 1)
        imported = register_malta(net)
        check(imported.returncode == 0 and "+ MT" in imported.stdout, imported.stdout + imported.stderr)
        deadline = time.time() + 15
        while "directory reloaded" not in net.log.read_text() and time.time() < deadline:
            time.sleep(0.2)
        check("directory reloaded" in net.log.read_text(), f"no reload:\n{net.tail()}")
        net.send(from_mallory("[REQUEST] Second message"))
        rows = net.wait_rows("SELECT verdict FROM inbound WHERE verdict = 'accepted'", 1)
        check(rows == [("accepted",)], f"{net.rows('SELECT verdict, reason FROM inbound')}")
        sec = net.wait_mail("secretariat", 2)  # the quarantine notice, then the forward
        check(any("Second message" in m.subject for m in sec), f"{[m.subject for m in sec]}")
    finally:
        net.close()


def a_new_nfp_receives_the_circular_announcing_it() -> None:
    """The operator imports a directory that adds Malta while the daemon
    runs: the circular announcing the change reaches every NFP with a usable
    key and the Secretariat, Malta included (the daemon announces only once
    it has loaded the directory it announces; before, a short quiet period
    could send it to the old list of parties)."""
    net = Net("newnfp")
    net.config.write_text(net.config.read_text().replace("role = ", 'circular-quiet-period = "1s"\nrole = ', 1))
    try:
        net.start_gateway()
        deadline = time.time() + 30
        while "nfp-gateway running" not in net.log.read_text() and time.time() < deadline:
            time.sleep(0.1)
        imported = register_malta(net)
        check(imported.returncode == 0 and "+ MT" in imported.stdout, imported.stdout + imported.stderr)
        mt = net.wait_mail("mallory", 1)
        check(len(mt) == 1 and mt[0].signed_by_gateway and "MT" in mt[0].text(),
              f"Malta's copy: {[m.subject for m in mt]}")
        rows = net.wait_rows("SELECT recipient_party FROM outbox WHERE purpose = 'circular'", 9)
        parties = sorted(p for (p,) in rows)
        check(parties == sorted(["AT", "DE", "ES", "FR", "IT", "MT", "PL", "RU", "SE", "secretariat"]),
              f"circular recipients: {parties}")
    finally:
        net.close()


def contact_update_and_circular() -> None:
    """AT sends a vCard, FR the text form (French), close together: each
    entry changes, each sender gets a confirmation listing its changes, and
    every NFP receives ONE circular naming both changes, decrypted and
    verified with its GnuPG; PL (no usable key) gets nothing and is named in
    the Secretariat's delivery report."""
    net = Net("circular")
    try:
        text = net.config.read_text()
        net.config.write_text(text.replace("role = ", 'circular-quiet-period = "3s"\nrole = ', 1))
        vcard = ("BEGIN:VCARD\r\nVERSION:4.0\r\nKIND:org\r\nFN:NFP Austria\r\n"
                 "ADR;LABEL=\"Minoritenplatz 9, 1010 Wien\":;;Minoritenplatz 9;Wien;;1010;Austria\r\nEND:VCARD\r\n"
                 "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Anna Berger\r\nTITLE:Leiterin der Kontaktstelle\r\n"
                 "EMAIL:anna.berger@bmi.at.example\r\nTEL;VALUE=uri:tel:+43-1-555-1234\r\nX-NFP-PARTY:AT\r\nEND:VCARD\r\n")
        net.send(net.mail_from("AT", "[KONTAKTÄNDERUNG] Neue Anschrift", BODY_DE,
                               parts=[mm.attachment(vcard.encode(), "kontakt.vcf", "text/vcard")]))
        net.send(net.mail_from("FR", "[MISE À JOUR DES COORDONNÉES] Nouveau contact",
                               "Madame, Monsieur,\n\nContact : Jean Dupont | Chef du point de contact | "
                               "jean.dupont@interieur.fr.example | +33 1 99 00 41 20\n\nCordialement\n"))
        net.start_gateway()
        at = net.wait_mail("AT", 1)
        confirmation = at[0]
        check(confirmation.signed_by_gateway, "AT's confirmation is not signed by the gateway")
        check("Herrengasse" in confirmation.text() and "Minoritenplatz 9, 1010 Wien" in confirmation.text(),
              f"the confirmation does not list before -> after:\n{confirmation.text()}")
        fr = net.wait_mail("FR", 1)
        check("Jean Dupont" in fr[0].text(), f"FR's confirmation:\n{fr[0].text()}")
        export = net.cli("directory", "export", "--format", "json")
        check("Minoritenplatz 9, 1010 Wien" in export.stdout and "Jean Dupont" in export.stdout, "the directory did not change")
        history = net.cli("directory", "show", "AT").stdout
        check("update by AT (BSM-" in history, history)

        # One circular for both changes, to every NFP that has a usable key.
        rows = net.wait_rows("SELECT id FROM circular", 1, timeout=20)
        check(len(rows) == 1, f"{len(rows)} circulars")
        nfps = [pid for pid in ("AT", "DE", "ES", "FR", "IT", "RU", "SE")]
        for pid in nfps:
            mails = net.wait_mail(pid, 2 if pid in ("AT", "FR") else 1)
            circulars = [m for m in mails if "Minoritenplatz" in m.text() and "Jean Dupont" in m.text()]
            check(len(circulars) == 1 and circulars[0].signed_by_gateway and circulars[0].decrypted,
                  f"{pid}: {len(circulars)} circulars naming both changes among {[m.subject for m in mails]}")
            check("Bundespolizeipräsidium" not in circulars[0].text(),
                  "the circular announces entries that did not change (the seed)")
        time.sleep(3)  # a second circular would have had time to go out
        check(net.rows("SELECT COUNT(*) FROM circular") == [(1,)], "a second circular")
        check(net.count("PL") == 0, "PL (no usable key) received mail")
        check(("held",) in net.rows("SELECT state FROM outbox WHERE purpose = 'circular' AND recipient_party = 'PL'"),
              "PL's copy is not held")
        sec = [m for m in net.wait_mail("secretariat", 3) if "Minoritenplatz" in m.text() and "Jean Dupont" in m.text()]
        check(len(sec) == 1 and "nfp@sg.pl.example" in sec[0].text(),
              f"the Secretariat's circular has no delivery report naming PL:\n{sec[0].text() if sec else ''}")
        # The directory file predates the updates: importing it would undo them.
        dry = net.cli("directory", "import", "--dry-run")
        check("! AT" in dry.stdout and "update by AT" in dry.stdout, dry.stdout)
        refused = net.cli("directory", "import")
        check(refused.returncode != 0 and "--force" in refused.stderr, refused.stdout + refused.stderr)
        check("Minoritenplatz 9, 1010 Wien" in net.cli("directory", "export", "--format", "json").stdout,
              "a refused import changed the directory")
    finally:
        net.close()


def key_expiry_watch() -> None:
    """The daily key-expiry watch: every party whose key expires within the
    warning period is warned (here: 800 days, so every key); PL's expired
    key is reported to the Secretariat and PL gets nothing; the report names
    the gateway's own key, which expires within the period too; a restart
    the same day does not repeat it."""
    net = Net("keywatch")
    try:
        text = net.config.read_text().replace("key-expiry-watch = false", 'key-expiry-warning = "800d"')
        net.config.write_text(text)
        net.start_gateway()
        report = [m for m in net.wait_mail("secretariat", 2) if "A15F" in m.text() or "nfp@sg.pl.example" in m.text()]
        check(len(report) == 1 and report[0].signed_by_gateway, f"no report naming PL: {[m.subject for m in net.mailbox('secretariat')]}")
        check(net.w.p["PL"].fpr in report[0].text(), "the report does not give PL's fingerprint")
        # The gateway's own key (two years) expires within the 800 days too.
        check(net.w.p["gateway"].fpr in report[0].text() and "keys check" in report[0].text(),
              f"the report does not name the gateway's own key:\n{report[0].text()}")
        warning = net.wait_mail("AT", 1)
        check(warning[0].signed_by_gateway and net.w.p["AT"].fpr in warning[0].text(), "AT's warning")
        check(net.count("PL") == 0, "PL (expired key) received mail")
        net.wait_outbox_sent(2)
        check(net.stop_gateway() == 0, "SIGTERM")
        before = net.rows("SELECT COUNT(*) FROM outbox")
        net.start_gateway()
        time.sleep(4)
        check(net.rows("SELECT COUNT(*) FROM outbox") == before, "the watch ran twice in one day")
    finally:
        net.close()


def operator_circular() -> None:
    """`circular send --dry-run` shows who would receive what (PL held);
    `circular send` queues one copy per NFP and the Secretariat, in each
    recipient's language, and the running daemon delivers them."""
    net = Net("opcirc")
    try:
        data = net.dir / "announcement.json"
        data.write_text(json.dumps({"title": "Annual meeting of the NFP network, Vienna, 12-13 March",
                                    "text": "Dear colleagues, the Secretariat invites each NFP to its annual meeting."}))
        net.start_gateway()
        dry = net.cli("circular", "send", "--template", "circular_announcement", "--data", str(data), "--dry-run")
        check(dry.returncode == 0 and "HELD" in dry.stdout and "nothing queued" in dry.stdout, dry.stdout + dry.stderr)
        check(net.rows("SELECT COUNT(*) FROM outbox") == [(0,)], "a dry run queued mail")
        sent = net.cli("circular", "send", "--template", "circular_announcement", "--data", str(data))
        check(sent.returncode == 0 and "queued" in sent.stdout, sent.stdout + sent.stderr)
        for pid in ("AT", "DE", "ES", "FR", "IT", "RU", "SE", "secretariat"):
            got = net.wait_mail(pid, 1)
            check(got[0].signed_by_gateway and "Annual meeting" in got[0].subject, f"{pid}: {got[0].subject!r}")
        check(net.count("PL") == 0, "PL (no usable key) received the circular")
        sec = net.mailbox("secretariat")[0]
        check("nfp@sg.pl.example" in sec.text(), f"the Secretariat's copy has no delivery report naming PL:\n{sec.text()}")
    finally:
        net.close()


def certificate_rotation_and_refresh() -> None:
    """AT sends its new certificate in a contact update signed with the
    current one: the directory takes it, mail to AT is then encrypted to
    the new key only, and AT's old key still verifies during the overlap.
    Then AT extends the new key's validity: the refresh is stored."""
    net = Net("rotate")
    try:
        at = net.w.p["AT"]
        old_fpr = at.fpr
        net.w.gpg.generate(at, net.now)          # AT's new key; at.fpr is the new one now
        new_fpr = at.fpr
        new_cert = net.w.gpg.export(new_fpr)
        rotation = net.w.pgp_mime(at, "[KONTAKTÄNDERUNG] Neues Zertifikat", [mm.text(BODY_DE),
                                  mm.attachment(new_cert, "neuer-schluessel.asc", "application/pgp-keys")],
                                  signer=old_fpr).eml
        net.send(rotation)
        net.start_gateway()
        confirmation = net.wait_mail("AT", 1)[0]
        check(old_fpr in confirmation.text() and new_fpr in confirmation.text(),
              f"the confirmation does not show the certificate change:\n{confirmation.text()}")
        deadline = time.time() + 15
        while net.log.read_text().count("directory reloaded") < 1 and time.time() < deadline:
            time.sleep(0.2)
        # Mail to AT now goes to the new key only.
        net.send(net.mail_from("FR", "[DEMANDE D'INFORMATION] [AT] Contrôles douaniers", BODY_FR))
        got = net.wait_mail("AT", 2)
        forward = [m for m in got if "douaniers" in m.subject][0]
        enc_to = {s.split()[1] for s in forward.status if s.startswith("ENC_TO ")}
        new_keys = net.w.subkeys(at)
        check(enc_to and enc_to <= new_keys, f"encrypted to {enc_to}, AT's new keys are {new_keys}")
        # AT's old key still verifies during the overlap.
        at.fpr = old_fpr
        net.send(net.mail_from("AT", "[HILFEERSUCHEN] Schulung der Grenzpolizei", BODY_DE))
        at.fpr = new_fpr
        rows = net.wait_rows("SELECT verdict FROM inbound WHERE kind = 'assistance_request'", 1)
        check(rows == [("accepted",)], f"the old key no longer verifies: {net.rows('SELECT verdict, reason, detail FROM inbound')}")

        # A refresh: the new key's validity extended, sent signed with it.
        net.w.gpg.run(["--quick-set-expire", new_fpr, "5y"])
        net.w.gpg.run(["--quick-set-expire", new_fpr, "5y", "*"])
        refreshed = net.w.gpg.export(new_fpr)
        net.send(net.w.pgp_mime(at, "[KONTAKTÄNDERUNG] Verlängertes Zertifikat", [mm.text(BODY_DE),
                                mm.attachment(refreshed, "schluessel.asc", "application/pgp-keys")]).eml)
        answers = [m for m in net.wait_mail("AT", 4) if "cert expiry" in m.text()]
        check(len(answers) == 1, f"no confirmation of the refresh among {[m.subject for m in net.mailbox('AT')]}")
    finally:
        net.close()


def gateway_key_rotation() -> None:
    """The gateway's own key rotated (issue 15, item 5): `keys generate`
    makes a new key, `keys rotate` (after a dry run that changes nothing)
    announces it to every NFP and the Secretariat in a circular signed by
    the old and the new key with the new certificate attached, and rewrites
    gateway.toml (new `secret-key`, the old one in `previous-secret-keys`).
    A recipient who imports the attached certificate finds both signatures
    good. During the overlap, mail still encrypted to the old key is
    accepted and forwarded, signed with the new key; `keys reencrypt`
    re-encrypts the content stored before (audited; a second run finds
    nothing left), which GnuPG then decrypts with the new key alone; without
    the old key the gateway starts and `keys check` lists no previous key.
    A second rotation that drops the archive's key too early: `keys
    reencrypt` skips, names and audits each message no key decrypts, fails,
    and completes once the key is listed again."""
    net = Net("gwrotate")
    try:
        old_fpr = net.w.p["gateway"].fpr
        net.start_gateway()
        net.send(net.mail_from("AT", "[HILFEERSUCHEN] Schulung der Grenzpolizei", BODY_DE))
        net.wait_rows("SELECT id FROM inbound WHERE verdict = 'accepted'", 1)
        net.wait_outbox_sent(2)
        check(net.stop_gateway() == 0, "SIGTERM")

        keys = net.config.parent / "keys"
        made = net.cli("keys", "generate", "--out", str(keys / "rotated.sec.asc"))
        check(made.returncode == 0, made.stdout + made.stderr)
        new_fpr = re.search(r"fingerprint\s+([0-9A-F]{40})", made.stdout).group(1)
        before = net.config.read_text()
        dry = net.cli("keys", "rotate", "keys/rotated.sec.asc", "--dry-run")
        check(dry.returncode == 0 and "dry run" in dry.stdout and 'secret-key = "keys/rotated.sec.asc"' in dry.stdout,
              dry.stdout + dry.stderr)
        check(net.config.read_text() == before and net.rows("SELECT COUNT(*) FROM circular") == [(0,)],
              "a dry run changed something")
        rotated = net.cli("keys", "rotate", "keys/rotated.sec.asc")
        check(rotated.returncode == 0 and "queued" in rotated.stdout and "HELD" in rotated.stdout,
              rotated.stdout + rotated.stderr)
        after = net.config.read_text()
        check('secret-key = "keys/rotated.sec.asc"' in after
              and 'previous-secret-keys = ["keys/gateway.sec.asc"]' in after, after)
        net.start_gateway()

        # Every party with a usable key gets the announcement, signed by both keys.
        for pid in ("AT", "DE", "ES", "FR", "IT", "RU", "SE", "secretariat"):
            got = [m for m in net.wait_mail(pid, 2 if pid in ("AT", "secretariat") else 1) if new_fpr in m.text()]
            check(len(got) == 1 and got[0].decrypted, f"{pid}: {[m.subject for m in net.mailbox(pid)]}")
            check(any(s.startswith("VALIDSIG ") and old_fpr in s for s in got[0].status),
                  f"{pid}: the announcement is not signed by the old key: {got[0].status}")
            if pid == "AT":
                # The recipient imports the attached certificate, as the circular asks.
                cert = [p for p in got[0].inner.walk() if p.get_content_type() == "application/pgp-keys"]
                check(len(cert) == 1 and new_fpr in (cert[0].get_filename() or ""), "no certificate attached")
                net.w.gpg.run(["--import"], cert[0].get_payload(decode=True))
                again = net.open(got[0].raw)
                check(any(s.startswith("VALIDSIG ") and new_fpr in s for s in again.status),
                      f"the announcement is not signed by the new key: {again.status}")
        check(net.count("PL") == 0, "PL (no usable key) received the announcement")

        # Mail still encrypted to the old key during the overlap.
        net.send(net.mail_from("FR", "[DEMANDE D'INFORMATION] [AT] Contrôles douaniers", BODY_FR))
        forward = [m for m in net.wait_mail("AT", 3) if "douaniers" in m.subject]
        check(len(forward) == 1 and forward[0].decrypted, f"no forward to AT: {[m.subject for m in net.mailbox('AT')]}")
        check(any(s.startswith("VALIDSIG ") and new_fpr in s for s in forward[0].status)
              and not any(s.startswith("VALIDSIG ") and old_fpr in s for s in forward[0].status),
              f"the forward is not signed with the new key alone: {forward[0].status}")
        check(net.stop_gateway() == 0, "SIGTERM")

        dry = net.cli("keys", "reencrypt", "--dry-run")
        check(dry.returncode == 0 and "encrypted to a previous key only: 1" in dry.stdout, dry.stdout + dry.stderr)
        run = net.cli("keys", "reencrypt", "--batch", "1")
        check(run.returncode == 0 and f"re-encrypted to {new_fpr}: 1" in run.stdout, run.stdout + run.stderr)
        again = net.cli("keys", "reencrypt", "--dry-run")
        check("encrypted to a previous key only: 0" in again.stdout, again.stdout + again.stderr)
        audited = net.rows("SELECT detail FROM audit WHERE event = 'key_reencrypt'")
        check(len(audited) == 1 and new_fpr in audited[0][0], f"audit: {audited}")

        # GnuPG with the new key alone reads what was stored before the rotation.
        first = net.rows("SELECT content_enc FROM inbound ORDER BY id")[0][0]
        home = net.dir / "new-key-only"
        home.mkdir(mode=0o700)
        gpg = ["gpg", "--homedir", str(home), "--batch", "--no-tty"]
        subprocess.run(gpg + ["--import", str(keys / "rotated.sec.asc")], check=True, capture_output=True)
        plain = subprocess.run(gpg + ["--decrypt"], input=bytes(first), capture_output=True)
        check(plain.returncode == 0 and "Grenzpolizei".encode() in plain.stdout,
              f"the re-encrypted content does not decrypt with the new key: {plain.stderr.decode()}")

        # The old key gone: the gateway starts, keys check lists no previous key.
        net.config.write_text(after.replace('previous-secret-keys = ["keys/gateway.sec.asc"]', ""))
        listed = net.cli("keys", "check")
        check(new_fpr in listed.stdout and "previous" not in listed.stdout, listed.stdout)
        net.start_gateway()
        net.send(net.mail_from("DE", "[HILFEERSUCHEN] Schulung", BODY_DE))
        net.wait_rows("SELECT id FROM inbound WHERE verdict = 'quarantined' AND reason = 'not_for_us'", 1)
        check(net.stop_gateway() == 0, "SIGTERM")

        # A second rotation by hand that drops the key the archive needs too
        # early: `keys reencrypt` goes through every message, leaves each it
        # cannot decrypt as it is, names them, audits them and fails; with
        # the key listed again it re-encrypts them all.
        made = net.cli("keys", "generate", "--out", str(keys / "third.sec.asc"))
        check(made.returncode == 0, made.stdout + made.stderr)
        third_fpr = re.search(r"fingerprint\s+([0-9A-F]{40})", made.stdout).group(1)
        hasty = after.replace('previous-secret-keys = ["keys/gateway.sec.asc"]', "") \
            .replace('secret-key = "keys/rotated.sec.asc"', 'secret-key = "keys/third.sec.asc"')
        net.config.write_text(hasty)
        stored = [i for (i,) in net.rows("SELECT id FROM inbound ORDER BY id")]
        check(len(stored) == 3, f"stored: {stored}")
        listed = ", ".join(map(str, stored))
        dry = net.cli("keys", "reencrypt", "--dry-run")
        check(dry.returncode == 1 and f"no configured key decrypts: 3 (ids {listed})" in dry.stdout,
              dry.stdout + dry.stderr)
        run = net.cli("keys", "reencrypt", "--batch", "1")
        check(run.returncode == 1 and f"re-encrypted to {third_fpr}: 0" in run.stdout
              and f"no configured key decrypts: 3 (ids {listed})" in run.stdout, run.stdout + run.stderr)
        skipped = net.rows("SELECT detail FROM audit WHERE event = 'key_reencrypt' AND detail LIKE '%left as they are%'")
        check(len(skipped) == 3 and all(third_fpr in d for (d,) in skipped), f"audit: {skipped}")
        net.config.write_text(hasty.replace('secret-key = "keys/third.sec.asc"',
                                            'previous-secret-keys = ["keys/rotated.sec.asc"]\nsecret-key = "keys/third.sec.asc"'))
        run = net.cli("keys", "reencrypt")
        check(run.returncode == 0 and f"re-encrypted to {third_fpr}: 3" in run.stdout
              and "no configured key decrypts" not in run.stdout, run.stdout + run.stderr)
        again = net.cli("keys", "reencrypt", "--dry-run")
        check(again.returncode == 0 and "encrypted to a previous key only: 0" in again.stdout, again.stdout + again.stderr)
    finally:
        net.close()


def unreadable_contact_update() -> None:
    """A contact update whose vCard the gateway cannot accept (an e-mail
    address that is not one): nothing in the directory changes, the sender
    is told it goes to the Secretariat for manual handling, and the
    Secretariat's forward says why."""
    net = Net("unread")
    try:
        vcard = "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Anna Berger\r\nEMAIL:anna.berger-at-bmi\r\nEND:VCARD\r\n"
        net.send(net.mail_from("AT", "[KONTAKTÄNDERUNG] Neue Kontaktperson", BODY_DE,
                               parts=[mm.attachment(vcard.encode(), "kontakt.vcf", "text/vcard")]))
        net.start_gateway()
        told = net.wait_mail("AT", 1)[0]
        check(told.signed_by_gateway and "anna.berger-at-bmi" in told.text(),
              f"the sender is not told why:\n{told.text()}")
        forward = net.wait_mail("secretariat", 1)[0]
        check("anna.berger-at-bmi" in forward.text() and "directory import" in forward.text(),
              f"the Secretariat's forward does not say why and what to do:\n{forward.text()}")
        check("Anna Berger" not in net.cli("directory", "export", "--format", "json").stdout, "the directory changed")
        check(net.rows("SELECT COUNT(*) FROM party_version WHERE actor LIKE 'update by%'") == [(0,)], "a version was written")
    finally:
        net.close()


import resilience  # noqa: E402  (crash, SMTP and IMAP failure scenarios)
import storms  # noqa: E402  (storms of hostile mail, rate limits)
import attacks  # noqa: E402  (oracles, output injection, large tampered mail, two gateways)
import instances  # noqa: E402  (several instances sharing one PostgreSQL store)
import offices  # noqa: E402  (real mail as offices send it: Exchange, webmail, disclaimers)
import store_faults  # noqa: E402  (a full disk, a restarted PostgreSQL server)
import desk  # noqa: E402  (the Secretariat's desk: cases)

def retention_deletes_content_and_keeps_the_record() -> None:
    """[retention]: quarantined messages kept a year, the rest five. Two years
    on (the clock given to `retention run`), the quarantined message's
    content is gone, it can no longer be released, its record and the audit
    stay; the accepted one is untouched until five years on, when its
    content and the ciphertext of its sent copies go too. A dry run changes
    nothing. On both store engines."""
    net = Net("retention", extra_config='\n[retention]\nquarantined = "1y"\ncontent = "5y"\n')
    try:
        forged = net.w.pgp_mime(net.w.p["AT"], "[DEMANDE D'INFORMATION] Liste des contacts", [mm.text(BODY_FR)],
                                protected=False, outer_from=net.w.p["FR"].mailbox).eml
        net.send(forged)
        net.send(net.mail_from("AT", "[HILFEERSUCHEN] Schulung der Grenzpolizei", BODY_DE))
        net.start_gateway()
        net.wait_rows("SELECT id FROM inbound WHERE imap_state = 'filed'", 2)
        net.wait_outbox_sent(3)
        def at(years: int) -> str:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + years * 366 * 86400))
        def state() -> list[tuple]:
            return net.rows("SELECT verdict, kind, reference, purged_at <> '', length(raw_enc) > 0, "
                            "content_enc IS NOT NULL FROM inbound ORDER BY verdict DESC")
        # The two arrive together: which is taken first, and so which id
        # each gets, is the gateway's business. The quarantined one first.
        [(quarantined_id,)] = net.rows("SELECT id FROM inbound WHERE verdict = 'quarantined'")
        [(accepted_id,)] = net.rows("SELECT id FROM inbound WHERE verdict = 'accepted'")
        before = state()
        check([r[:2] for r in before] == [("quarantined", None), ("accepted", "assistance_request")], f"{before}")
        check(all(r[3] is False or r[3] == 0 for r in before), f"purged already: {before}")
        shown = net.cli("quarantine", "show", str(quarantined_id))
        check("content:       stored" in shown.stdout, shown.stdout + shown.stderr)
        # The audit trail of one reference: that message and the mail about it, nothing else.
        [(reference,)] = net.rows("SELECT reference FROM inbound WHERE id = ?", accepted_id)
        trail = net.cli("audit", "export", "--reference", reference)
        entries = [json.loads(line) for line in trail.stdout.splitlines() if line.strip()]
        mails = {r[0] for r in net.rows("SELECT id FROM outbox WHERE inbound_id = ?", accepted_id)}
        check(trail.returncode == 0 and entries
              and all(e["inbound_id"] == accepted_id or e["outbox_id"] in mails for e in entries)
              and any(e["inbound_id"] == accepted_id for e in entries),
              f"audit --reference {reference}: {trail.stdout}{trail.stderr}")
        everything = net.cli("audit", "export").stdout.splitlines()
        check(len(everything) > len(entries), "the reference filter filtered nothing")

        dry = net.cli("retention", "run", "--dry-run", "--now", at(2))
        check(dry.returncode == 0 and "quarantined" in dry.stdout and "1 message(s) would lose" in dry.stdout,
              f"dry run: {dry.stdout}{dry.stderr}")
        check(state() == before, "a dry run changed the store")

        done = net.cli("retention", "run", "--now", at(2))
        check(done.returncode == 0, f"retention run: {done.stdout}{done.stderr}")
        after = state()
        check(bool(after[0][3]) and not after[0][4] and not after[0][5], f"the quarantined content stays: {after}")
        check(after[1] == before[1], f"the accepted message changed before its time: {after}")
        shown = net.cli("quarantine", "show", str(quarantined_id))
        check("content:       deleted on " in shown.stdout, shown.stdout + shown.stderr)
        released = net.cli("quarantine", "release", str(quarantined_id))
        check(released.returncode != 0 and "deleted by the retention policy" in released.stderr,
              f"release of a purged message: {released.stdout}{released.stderr}")
        audit = net.rows("SELECT detail FROM audit WHERE event = 'retention_purge'")
        check(len(audit) == 1 and "1 quarantined message" in audit[0][0], f"audit {audit}")

        done = net.cli("retention", "run", "--now", at(6))
        check(done.returncode == 0, f"retention run: {done.stdout}{done.stderr}")
        after = state()
        check(bool(after[1][3]) and not after[1][4] and not after[1][5], f"the accepted content stays: {after}")
        check(after[1][:3] == before[1][:3], f"the record changed: {after}")
        copies = net.rows("SELECT COUNT(*) FROM outbox WHERE inbound_id = ? AND message IS NOT NULL", accepted_id)
        check(copies == [(0,)], f"sent copies kept: {copies}")
        check(len(net.rows("SELECT id FROM outbox WHERE inbound_id = ?", accepted_id)) == 2, "outbox records removed")
    finally:
        net.close()


def a_restored_backup_carries_on() -> None:
    """`db backup` while the gateway runs; the store is lost; `db restore`
    puts the backup back and the gateway carries on: a reply citing the
    reference issued before the loss reaches the party that asked (found in
    the restored archive), and numbering goes on after it. A PostgreSQL store
    is backed up with the server's tools: `db backup` says so."""
    net = Net("restore")
    try:
        net.send(net.mail_from("AT", "[AUSKUNFTSERSUCHEN] [FR] Zollkontrollen", BODY_DE))
        net.start_gateway()
        fr = net.wait_mail("FR", 1)
        ref = REF.search(fr[0].subject)
        check(ref is not None, f"no reference in {fr[0].subject!r}")
        net.wait_outbox_sent(2)
        backup = net.dir / "backup.db"
        made = net.cli("db", "backup", str(backup))
        if net.store.url is not None:
            check(made.returncode != 0 and "pg_dump" in made.stderr, f"db backup on PostgreSQL: {made.stdout}{made.stderr}")
            return
        check(made.returncode == 0 and "integrity ok" in made.stdout, f"db backup: {made.stdout}{made.stderr}")
        check(net.stop_gateway() == 0, "the gateway did not stop cleanly")
        for p in net.store.path.parent.glob(net.store.path.name + "*"):
            p.unlink()
        lost = net.cli("status")
        check(lost.returncode != 0 and "does not exist" in lost.stderr, f"status without a store: {lost.stdout}{lost.stderr}")
        restored = net.cli("db", "restore", str(backup))
        check(restored.returncode == 0 and "restored" in restored.stdout, f"db restore: {restored.stdout}{restored.stderr}")
        net.start_gateway()
        net.send(net.mail_from("FR", f"Re: {ref.group(0)} Contrôles douaniers", BODY_FR))
        at = net.wait_mail("AT", 2)  # its acknowledgement, then FR's reply
        replies = [m for m in at if ref.group(0) in m.subject and "original-" in " ".join(m.attachment_names())]
        check(len(replies) == 1, f"AT got {len(replies)} forwarded replies: {[m.subject for m in at]}")
        rows = net.rows("SELECT kind, cited_reference, reference FROM inbound ORDER BY id")
        check(len(rows) == 2 and rows[1][:2] == ("information_reply", ref.group(0)), f"{rows}")
        first, second = int(rows[0][2][-6:]), int(rows[1][2][-6:])
        check(second == first + 1, f"numbering does not carry on: {rows}")
    finally:
        net.close()


SCENARIOS = {
    f.__name__: f
    for f in [
        routing,
        quarantine,
        automatic_mail_is_never_answered,
        no_usable_key,
        reply_goes_to_the_party_that_asked,
        national_routing,
        release_after_the_directory_learns_the_key,
        redelivery_is_a_no_op,
        uidvalidity_change,
        operations,
        tls_modes,
        untrusted_server_certificate,
        mail_arriving_while_busy_is_not_missed,
        directory_changes_apply_without_restart,
        contact_update_and_circular,
        a_new_nfp_receives_the_circular_announcing_it,
        key_expiry_watch,
        operator_circular,
        certificate_rotation_and_refresh,
        gateway_key_rotation,
        unreadable_contact_update,
        a_restored_backup_carries_on,
        retention_deletes_content_and_keeps_the_record,
        *resilience.SCENARIOS,
        *storms.SCENARIOS,
        *attacks.SCENARIOS,
        *instances.SCENARIOS,
        *offices.SCENARIOS,
        *store_faults.SCENARIOS,
        *desk.SCENARIOS,
    ]
}


def main(names: list[str]) -> int:
    passed = failed = 0
    for name in names or list(SCENARIOS):
        start = time.monotonic()
        try:
            SCENARIOS[name]()
            passed += 1
            print(f"ok   {name} ({time.monotonic() - start:.1f}s)")
        except Exception:
            failed += 1
            print(f"FAIL {name} ({time.monotonic() - start:.1f}s)")
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
