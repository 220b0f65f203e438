#!/usr/bin/env python3
"""scenarios.py NAME...: the daemon's end-to-end scenarios (see harness.py).

Each scenario builds its own network and mail stack, drives them as users
would, and raises on the first wrong observation. Exit status 0 when every
named scenario passed; the last line says `N passed, N failed`.
"""

from __future__ import annotations

import re
import sys
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
        rows = net.rows("SELECT verdict, kind, reference, sender_party FROM inbound ORDER BY id")
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


SCENARIOS = {f.__name__: f for f in [routing]}


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
