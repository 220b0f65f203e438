"""Daemon scenarios: real mail as NFP offices send it (issue 12).

Mail made by GnuPG as the users' clients make it, then changed in transit
exactly as Microsoft Exchange and webmail change it (tests/fixtures/transit.py),
sent through the real Postfix into the gateway's real Dovecot mailbox. Each
message must be repaired, judged, stored, forwarded once and acknowledged
once; parts added in transit are discarded only for a party whose directory
entry allows it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import transit  # noqa: E402
from attacks import check_gateway_mail, own_text, pgp_mail, settle, top_parts  # noqa: E402
from harness import Net, check, mm  # noqa: E402

REF = re.compile(r"BSM-\d{4}-\d{6}")

BODY_AT = ("Sehr geehrte Damen und Herren,\n\nwir ersuchen um Unterstützung bei der Schulung "
           "unserer Grenzpolizei am Grenzübergang Spielfeld.\n\nMit freundlichen Grüßen\n")
BODY_FR = ("[DEMANDE D'INFORMATION] [ES] Contrôles aux frontières des Pyrénées\n\nChers collègues,\n\n"
           "pourriez-vous nous indiquer les horaires des contrôles conjoints prévus cet hiver "
           "aux postes frontières des Pyrénées ?\n\nCordialement\n")
BODY_ES = ("[SOLICITUD DE ASISTENCIA] Formación de guardias de frontera\n\nEstimados colegas:\n\n"
           "solicitamos asistencia para formar a los guardias de frontera del puerto de Algeciras "
           "en la detección de documentos falsos.\n\nAtentamente\n")
BODY_DE = ("[HILFEERSUCHEN] Lagebericht Grenzübergang\n\nSehr geehrte Damen und Herren,\n\n"
           "anbei der Lagebericht; wir ersuchen um Unterstützung bei der Auswertung.\n\n"
           "Mit freundlichen Grüßen\n")
BODY_IT = ("Gentili colleghi,\n\ndesideriamo condividere una buona pratica: i controlli congiunti "
           "di polizia e dogana nei porti di Genova e Trieste.\n\nCordiali saluti\n")
DISCLAIMER = ("Questo messaggio e i suoi allegati sono riservati. Se lo avete ricevuto per errore, "
              "avvisate il mittente. Ministero dell'Interno, Roma.\n")


def mailvelope(net: Net, sender: str, body: str) -> bytes:
    """The armored block Mailvelope writes: signed and encrypted text."""
    w = net.w
    return w.gpg.sign_encrypt(mm.crlf(body.encode()), w.p[sender].fpr, [net.gateway_persona.fpr],
                              at=w.now, extra=["--comment", "https://mailvelope.com"])


def webmail(net: Net, sender: str, armored: bytes, html: str | None, *, plain: bool = True) -> bytes:
    p = net.w.p[sender]
    return transit.webmail(p.name, p.email, net.gateway_persona.email, "Mailvelope", net.w.now,
                           mm.message_id(p.email.split("@")[1]), armored, html, plain=plain)


def signed_original(m) -> str:
    """The attached original as text: the signed entity (PGP/MIME, attached
    as message/rfc822) or the signed text (inline, attached as text/plain)."""
    parts = [p for p in top_parts(m) if (p.get_filename() or "").startswith("original-")]
    check(len(parts) == 1, f"{len(parts)} attached originals")
    if parts[0].get_content_type() == "message/rfc822":
        return "\n".join(p.get_payload(decode=True).decode("utf-8")
                         for p in parts[0].get_payload()[0].walk()
                         if p.get_content_maintype() == "text")
    return parts[0].get_payload(decode=True).decode("utf-8")


def acknowledgements(net: Net, pid: str) -> list:
    return [m for m in net.mailbox(pid) if not any(n.startswith("original-") for n in m.attachment_names())]


def forwards(net: Net, pid: str) -> list:
    return [m for m in net.mailbox(pid) if any(n.startswith("original-") for n in m.attachment_names())]


def gpgol(net: Net, sender: str, body: str, files: list[tuple[str, bytes]]) -> bytes:
    """Outlook with GpgOL in PGP/Inline mode: the armored text, then each file
    signed and encrypted on its own by gpg as NAME.pgp."""
    w, gw = net.w, net.gateway_persona
    p = w.p[sender]
    text = w.gpg.sign_encrypt(mm.crlf(body.encode()), p.fpr, [gw.fpr], at=w.now)
    parts = [mm.Part([("Content-Type", "text/plain; charset=utf-8"),
                      ("Content-Transfer-Encoding", "7bit")], mm.crlf(text))]
    for name, data in files:
        block = w.gpg.run(["--sign", "--encrypt", "--digest-algo", "SHA256", "--set-filename", name,
                           "--local-user", p.fpr, "--recipient", gw.fpr], data, at=w.now).out
        parts.append(mm.attachment(block, name + ".pgp", "application/octet-stream"))
    outer = mm.envelope(p.mailbox, gw.email, "Bericht", w.now, mm.message_id(p.email.split("@")[1]),
                        [("X-Mailer", "Microsoft Outlook 16.0")])
    return mm.message(outer, mm.multipart("mixed", parts))


PDF = b"%PDF-1.4\n% Lagebericht Spielfeld\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"


def mail_as_offices_send_it() -> None:
    """AT's Thunderbird message rewritten by Exchange (multipart/mixed, base64
    control part and encrypted.asc), FR's Mailvelope message from Gmail
    (multipart/alternative), ES's from Outlook.com in HTML only, and DE's from
    Outlook with GpgOL (PGP/Inline text, a PDF signed and encrypted on its
    own as lagebericht.pdf.pgp): each accepted with its repair in the store
    and the audit, forwarded once to the right party, decrypted and verified
    there with GnuPG (DE's PDF under its own name, byte for byte), and its
    sender acknowledged once with a reference."""
    net = Net("offices")
    try:
        genuine = pgp_mail(net, "AT", "[HILFEERSUCHEN] Schulung der Grenzpolizei", [mm.text(BODY_AT)])
        net.send(transit.exchange_mixed_up(genuine, net.w.now))
        fr = mailvelope(net, "FR", BODY_FR)
        net.send(webmail(net, "FR", fr, transit.gmail_html(fr)))
        es = mailvelope(net, "ES", BODY_ES)
        net.send(webmail(net, "ES", es, transit.outlook_html(es), plain=False))
        net.send(gpgol(net, "DE", BODY_DE, [("lagebericht.pdf", PDF)]))
        net.start_gateway()
        settle(net, 4)
        rows = net.rows("SELECT verdict, reason, detail FROM inbound ORDER BY id")
        check([r[0] for r in rows] == ["accepted"] * 4, f"{rows}")
        details = " | ".join(r[2] for r in rows)
        for what in ("Microsoft Exchange", "webmail multipart/alternative", "webmail HTML-only",
                     "Outlook/GpgOL PGP/Inline"):
            check(what in details, f"no {what!r} in the stored decisions: {details}")
        audit = " | ".join(d for (d,) in net.rows("SELECT detail FROM audit WHERE event = 'accepted'"))
        for code in ("repaired: exchange_mixed_up", "repaired: webmail_alternative", "repaired: webmail_html",
                     "repaired: gpgol_inline_attachments"):
            check(code in audit, f"the audit lacks {code!r}: {audit}")
        # Forwarded once each: AT's, ES's and DE's requests to the Secretariat, FR's to ES.
        sec = forwards(net, "secretariat")
        check(len(sec) == 3, f"the Secretariat got {len(sec)} forwards, want 3")
        es_fwd = forwards(net, "ES")
        check(len(es_fwd) == 1, f"ES got {len(es_fwd)} forwards, want 1")
        for m, who in [*((m, "secretariat") for m in sec), (es_fwd[0], "ES")]:
            check_gateway_mail(m, who)
        texts = [signed_original(m) for m in sec]
        for word in ("Spielfeld", "Algeciras", "Lagebericht"):
            check(any(word in t for t in texts), f"no forward to the Secretariat carries {word!r}")
        check("Pyrénées" in signed_original(es_fwd[0]),
              "FR's request did not reach ES as signed")
        # DE's PDF travels decrypted, under its own name, byte for byte.
        de = [m for m in sec if "GpgOL" in own_text(m)]
        check(len(de) == 1, "no forward says the attachments were signed separately")
        pdfs = [p for p in top_parts(de[0])[1].get_payload()[0].walk()
                if p.get_filename() == "lagebericht.pdf"]
        check(len(pdfs) == 1 and pdfs[0].get_payload(decode=True) == PDF,
              "the decrypted PDF is not forwarded under its name, byte for byte")
        check("lagebericht.pdf (application/pdf" in own_text(de[0]), own_text(de[0]))
        # Acknowledged once each, with the reference of the stored message.
        refs = {r for (r,) in net.rows("SELECT reference FROM inbound WHERE reference IS NOT NULL")}
        check(len(refs) == 4, f"references {refs}")
        for pid in ("AT", "FR", "ES", "DE"):
            acks = acknowledgements(net, pid)
            check(len(acks) == 1, f"{pid} got {len(acks)} acknowledgements")
            ref = REF.search(acks[0].subject + acks[0].text())
            check(ref is not None and ref.group(0) in refs, f"{pid}'s acknowledgement names {ref}")
        sent = net.rows("SELECT purpose, recipient_party FROM outbox WHERE state = 'sent' ORDER BY id")
        check(sorted(sent) == sorted([("forward", "secretariat")] * 3 + [("forward", "ES")]
                                     + [("acknowledgement", p) for p in ("AT", "FR", "ES", "DE")]),
              f"sent {sent}")
        check(net.gateway_folder("INBOX") == 0, "the inbox is not empty")
    finally:
        net.close()


def disclaimers_added_in_transit() -> None:
    """IT's entry says unprotected-parts = "discard"; AT's does not. Both
    ministries' Exchange appends a disclaimer after encrypted.asc. IT's
    message is accepted: the disclaimer is discarded unread (type and size in
    the audit), the forward counts the bytes, and no word of it reaches
    anyone. AT's is quarantined as `structure`; the Secretariat's notice says
    it is a genuine message with an addition in transit and names the
    setting; AT gets nothing."""
    net = Net("disclaim", discard=("IT",))
    try:
        note = transit.disclaimer(DISCLAIMER)
        size = len(mm.crlf(DISCLAIMER.encode()))
        it = pgp_mail(net, "IT", "[BUONA PRATICA] Controlli congiunti nei porti", [mm.text(BODY_IT)])
        net.send(transit.exchange_mixed_up(it, net.w.now, extra_parts=[note]))
        at = pgp_mail(net, "AT", "[HILFEERSUCHEN] Schulung der Grenzpolizei", [mm.text(BODY_AT)])
        net.send(transit.exchange_mixed_up(at, net.w.now, extra_parts=[transit.disclaimer(DISCLAIMER)]))
        net.start_gateway()
        settle(net, 2)
        # (Postfix may deliver the two in either order.)
        rows = net.rows("SELECT verdict, reason FROM inbound ORDER BY verdict")
        check(rows == [("accepted", None), ("quarantined", "structure")], f"{rows}")
        audit = " | ".join(d for (d,) in net.rows("SELECT detail FROM audit WHERE event = 'accepted'"))
        check(f"discarded unread: text/plain 0 bytes, text/plain {size} bytes" in audit, audit)
        sec = net.mailbox("secretariat")
        fwd = [m for m in sec if any(n.startswith("original-") for n in m.attachment_names())]
        notices = [m for m in sec if m not in fwd]
        check(len(fwd) == 1 and len(notices) == 1, f"{len(fwd)} forwards, {len(notices)} notices")
        check_gateway_mail(fwd[0], "secretariat")
        text = own_text(fwd[0])
        check(f"Added in transit: {size} bytes in 2 part(s)" in text, f"the forward does not count them:\n{text}")
        notice = own_text(notices[0])
        check("genuine message signed by AT" in notice and 'unprotected-parts = "discard"' in notice,
              f"the notice does not name the cause and the setting:\n{notice}")
        for m in sec:
            check("riservati" not in m.plain.decode("utf-8", "replace"),
                  "the discarded disclaimer reached the Secretariat")
        check(len(acknowledgements(net, "IT")) == 1, "IT is not acknowledged once")
        check(net.count("AT") == 0, "AT received mail about a quarantined message")
    finally:
        net.close()


def ocb(net: Net, sender: str) -> bytes:
    """A PGP/MIME message as GnuPG 2.4 sends it in OCB mode (the LibrePGP
    AEAD packet), made by rnp --aead=ocb, which writes the same packet."""
    w, gw = net.w, net.gateway_persona
    p = w.p[sender]
    msgid = mm.message_id(p.email.split("@")[1])
    entity = w.inner(p, "[HILFEERSUCHEN] Schulung", [mm.text(BODY_AT)], w.now, msgid).to_bytes()
    armored = mm.rnp_sign_encrypt(entity, w.gpg.export_secret(p.fpr), p.fpr,
                                  w.gpg.export(gw.fpr), gw.fpr, aead="ocb")
    return w.wrap(armored, p.mailbox, gw.email, "...", w.now, msgid).eml


def mail_from_gnupg_24_in_ocb_mode() -> None:
    """AT's GnuPG 2.4 encrypts in OCB mode, twice; Mallory sends the same
    kind of message from an address of no party. All three are quarantined
    as `unsupported_encryption` (not `malformed`); the Secretariat gets a
    notice for each; AT, the party whose registered address the mail came
    from, gets one notice (the daily limit holds back the second) in German,
    signed and encrypted to its registered key, naming GnuPG's OCB mode and
    what to change, quoting nothing; Mallory's address gets nothing."""
    net = Net("ocb")
    try:
        net.send(ocb(net, "AT"))
        net.send(ocb(net, "AT"))
        net.send(ocb(net, "mallory"))
        net.start_gateway()
        settle(net, 3)
        rows = net.rows("SELECT verdict, reason FROM inbound ORDER BY id")
        check(rows == [("quarantined", "unsupported_encryption")] * 3, f"{rows}")
        notices = net.mailbox("secretariat")
        check(len(notices) == 3 and all("unsupported_encryption" in m.subject for m in notices),
              f"the Secretariat got {[m.subject for m in notices]}")
        at = net.mailbox("AT")
        check(len(at) == 1, f"AT got {len(at)} notices, want 1 (one a day)")
        check_gateway_mail(at[0], "AT")
        text = own_text(at[0])
        check("OCB-Modus von GnuPG 2.4" in text and "force-ocb" in text,
              f"AT's notice is not the German OCB notice:\n{text}")
        check("Schulung" not in text and "Schulung" not in at[0].subject, "the notice quotes the message")
        sent = net.rows("SELECT purpose, recipient_party FROM outbox ORDER BY id")
        check(sorted(sent) == sorted([("quarantine_notice", "secretariat")] * 3 + [("sender_notice", "AT")]),
              f"outbox {sent}")
        check(net.count("mallory") == 0, "Mallory's address received mail")
    finally:
        net.close()


SCENARIOS = [mail_as_offices_send_it, disclaimers_added_in_transit, mail_from_gnupg_24_in_ocb_mode]
