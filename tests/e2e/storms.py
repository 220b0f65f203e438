"""Storms and rate limits (issue 5, "Loops and storms"), on the real daemon.

A thousand hostile messages land in the gateway's inbox at once: forgeries
claiming FR (signed by AT), unencrypted mail from 250 outsiders, and 250
auto-replies. None may cause mail to anyone but the Secretariat, and the
Secretariat gets at most the hour's budget of quarantine notices, the rest
in one digest. Genuine mail beyond the hourly limits is `rate_limited`.
"""

from __future__ import annotations

import contextlib
import re
import time

from harness import Net, check, mm

BODY_AT = ("Sehr geehrte Damen und Herren,\n\nwir ersuchen um Unterstützung bei der Schulung unserer "
           "Grenzpolizei am Grenzübergang Nickelsdorf.\n\nMit freundlichen Grüßen\n")
BODY_DE = ("Sehr geehrte Damen und Herren,\n\nwir ersuchen um Unterstützung bei der Ausbildung von "
           "Zollbeamten in der Dokumentenprüfung.\n\nMit freundlichen Grüßen\n")
FORGED_SUBJECT = "Dringend: neue Kontaktliste"


def variant(eml: bytes, i: int) -> bytes:
    """The same message with one more trace header: other bytes, same content."""
    return f"Received: from storm-{i}.example by relay.example; id {i}\r\n".encode() + eml


def append_all(net: Net, emls: list[bytes]) -> None:
    """IMAP APPEND every message to the gateway's inbox over one connection."""
    gw = net.gateway_persona.email
    conn = net.stack.imap(gw, net.passwords[gw])
    try:
        for eml in emls:
            typ, data = conn.append("INBOX", None, None, eml)
            check(typ == "OK", f"APPEND: {data}")
    finally:
        with contextlib.suppress(Exception):
            conn.logout()


def storm_of_forgeries_and_rate_limits() -> None:
    net = Net("storm", extra_config="""
[limits]
sender-messages-per-hour = 3
messages-per-hour = 4
notices-per-hour = 10
notices-per-sender-per-hour = 3
""")
    try:
        text = net.config.read_text()
        net.config.write_text(text.replace("role = ", 'quarantine-digest = "1h"\nrole = ', 1))
        w = net.w
        genuine = [net.mail_from("AT", f"[HILFEERSUCHEN] Schulung {i}", BODY_AT) for i in range(4)]
        genuine += [net.mail_from("DE", f"[HILFEERSUCHEN] Zollausbildung {i}", BODY_DE) for i in range(2)]
        forged = w.pgp_mime(w.p["AT"], FORGED_SUBJECT, [mm.text(BODY_AT)], protected=False,
                            outer_from=w.p["FR"].mailbox).eml
        auto = w.pgp_mime(w.p["AT"], "Abwesenheitsnotiz", [mm.text(BODY_AT)],
                          extra=[("Auto-Submitted", "auto-replied")]).eml
        storm = [variant(forged, i) for i in range(500)]
        storm += [w.plain(f"Outsider {i} <outsider{i}@spam{i % 7}.example>", f"Offer {i}",
                          mm.text("Cheap border equipment, reply now.\n")) for i in range(250)]
        storm += [variant(auto, i) for i in range(250)]
        start = time.monotonic()
        append_all(net, genuine + storm)
        appended = time.monotonic() - start
        start = time.monotonic()
        net.start_gateway()
        net.wait_rows("SELECT id FROM inbound WHERE imap_state = 'filed'", 1006, timeout=300)
        filed = time.monotonic() - start
        print(f"  appended 1006 messages in {appended:.1f}s; the gateway filed them in {filed:.1f}s")

        # Genuine mail: AT's 4th is beyond its own limit, DE's 2nd beyond the network's.
        rows = net.rows("SELECT sender_party, verdict, reason, detail FROM inbound WHERE id <= 6 ORDER BY id")
        verdicts = [(p, v, r) for (p, v, r, _) in rows]
        check(verdicts == [("AT", "accepted", None)] * 3 + [("AT", "quarantined", "rate_limited"),
                                                             ("DE", "accepted", None),
                                                             ("DE", "quarantined", "rate_limited")],
              f"genuine mail: {verdicts}")
        check("sender-messages-per-hour" in rows[3][3] and "messages-per-hour = 4" in rows[5][3],
              f"details: {rows[3][3]!r}, {rows[5][3]!r}")

        # The storm: everything quarantined, notices within budget, the rest held.
        reasons = dict(net.rows("SELECT reason, COUNT(*) FROM inbound WHERE id > 6 GROUP BY reason"))
        check(reasons == {"sender_mismatch": 500, "not_encrypted": 250, "loop": 250}, f"{reasons}")
        notices = dict(net.rows("SELECT notice, COUNT(*) FROM inbound WHERE verdict = 'quarantined' GROUP BY notice"))
        check(notices == {"notice": 10, "held": 742, "none": 250}, f"notices {notices}")
        fr = net.w.p["FR"].email
        check(net.rows("SELECT COUNT(*) FROM inbound WHERE notice = 'notice' AND envelope_from = ?", fr) == [(3,)],
              "more than 3 notices about mail claiming FR")

        # Only the Secretariat is written to: 4 forwards of the accepted, 10 notices.
        net.wait_rows("SELECT id FROM outbox WHERE state = 'sent'", 4 + 4 + 10, timeout=120)
        out = net.rows("SELECT purpose, recipient_party, COUNT(*) FROM outbox GROUP BY purpose, recipient_party")
        check(sorted(out) == [("acknowledgement", "AT", 3), ("acknowledgement", "DE", 1),
                              ("forward", "secretariat", 4), ("quarantine_notice", "secretariat", 10)],
              f"outbox: {out}")
        time.sleep(3)  # a 2 s digest check would have run
        check(net.rows("SELECT COUNT(*) FROM quarantine_digest") == [(0,)], "a digest before its period")
        for pid in ("FR", "IT", "PL", "RU", "SE", "ES"):
            check(net.count(pid) == 0, f"{pid} received mail during the storm")

        # The digest period passes (a restart with a short period stands in for
        # the hour): one digest lists the 742 held quarantines, nothing of them.
        check(net.stop_gateway() == 0, "the gateway did not stop cleanly")
        net.config.write_text(net.config.read_text().replace('quarantine-digest = "1h"', 'quarantine-digest = "2s"'))
        net.start_gateway()
        sec = net.wait_mail("secretariat", 4 + 10 + 1, timeout=60)
        digests = [m for m in sec if "742" in m.subject]
        check(len(digests) == 1 and digests[0].signed_by_gateway, f"{[m.subject for m in sec]}")
        body = digests[0].text()
        check("sender_mismatch: 497" in body and "not_encrypted: 245" in body, f"digest:\n{body}")
        check(re.search(rf"{re.escape(fr)}: 497", body) is not None, f"digest senders:\n{body}")
        for leak in (FORGED_SUBJECT, "Nickelsdorf", "Cheap border"):
            check(leak not in body, f"the digest quotes a message ({leak})")
        check(net.rows("SELECT COUNT(*) FROM inbound WHERE notice = 'held'") == [(0,)], "held rows after the digest")
        time.sleep(3)
        check(net.rows("SELECT COUNT(*), SUM(messages) FROM quarantine_digest") == [(1, 742)], "one digest only")

        # An operator releases a rate-limited message: the limit is no veto.
        out = net.cli("quarantine", "release", "4")
        check(out.returncode == 0 and '"verdict":"accepted"' in out.stdout, f"release: {out.stdout}{out.stderr}")
    finally:
        net.close()


SCENARIOS = [storm_of_forgeries_and_rate_limits]
