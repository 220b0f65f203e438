"""The Secretariat's desk (issue 16) on the real mail stack: cases opened by
the requests that arrive, answered by the replies that cite them, and
changed by the Secretariat's commands.
"""

from __future__ import annotations

import datetime
import json
import re

from harness import Net, check

REF = re.compile(r"BSM-\d{4}-\d{6}")

ASK_AT = ("Chers collègues,\n\nle service des douanes français prépare une note sur les contrôles des "
          "conteneurs frigorifiques. Pourriez-vous nous indiquer combien de conteneurs vos services "
          "ont inspectés au port de Vienne en 2025, et selon quels critères de risque ?\n\n"
          "Cordialement,\nMarie Dubois\nDirection générale des douanes\n")
ASK_SECRETARIAT = ("Sehr geehrte Damen und Herren,\n\ndas Bundesministerium für Inneres ersucht das "
                   "Sekretariat um Unterstützung bei einer Schulung für 20 Grenzpolizistinnen und "
                   "Grenzpolizisten zur Erkennung gefälschter Dokumente im Herbst 2027.\n\n"
                   "Mit freundlichen Grüßen\nJohann Berger\nBundesministerium für Inneres\n")
ANSWER = ("Sehr geehrte Frau Dubois,\n\nzu Ihrer Anfrage: 2025 wurden im Hafen Wien 412 Kühlcontainer "
          "kontrolliert; die Risikokriterien liegen bei.\n\nMit freundlichen Grüßen\nJohann Berger\n")
THANKS = ("Cher collègue,\n\nmerci beaucoup pour ces chiffres, ils nous seront très utiles.\n\n"
          "Cordialement,\nMarie Dubois\n")


def iso(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def cases_follow_requests_and_replies() -> None:
    """FR asks AT for information and AT asks the Secretariat for
    assistance: each opens a case under its reference (owed by AT, 14 days;
    owed by the Secretariat, 30 days). AT's reply citing FR's reference
    answers FR's case; FR's thanks citing it goes into its history and
    answers nothing. Thirty-one days on, only the assistance request is
    overdue; `cases extend` moves its due time and re-arms it, `cases close`
    closes it, a second close is refused; `cases show` gives the history and
    each change is audited. No case shows any of the messages' words."""
    net = Net("cases")
    try:
        net.start_gateway()
        net.send(net.mail_from("FR", "[DEMANDE D'INFORMATION] [AT] Conteneurs frigorifiques", ASK_AT))
        net.wait_rows("SELECT id FROM inbound WHERE verdict = 'accepted'", 1)
        net.send(net.mail_from("AT", "[HILFEERSUCHEN] Schulung Dokumentensicherheit", ASK_SECRETARIAT))
        net.wait_rows("SELECT id FROM inbound WHERE verdict = 'accepted'", 2)
        [(asked,), (assist,)] = net.rows("SELECT reference FROM inbound ORDER BY id")
        cases = {r[0]: r[1:] for r in net.rows("SELECT reference, kind, asker, debtor, state FROM request_case")}
        check(cases == {asked: ("information_request", "FR", "AT", "open"),
                        assist: ("assistance_request", "AT", "secretariat", "open")}, f"cases: {cases}")

        net.send(net.mail_from("AT", f"AW: {asked} Conteneurs frigorifiques", ANSWER))
        net.wait_rows("SELECT id FROM inbound WHERE verdict = 'accepted'", 3)
        net.send(net.mail_from("FR", f"RE: {asked} Conteneurs frigorifiques", THANKS))
        net.wait_rows("SELECT id FROM inbound WHERE verdict = 'accepted'", 4)
        [(answer,), (thanks,)] = net.rows("SELECT reference FROM inbound WHERE id > 2 ORDER BY id")
        [(state, answered_by)] = net.rows("SELECT state, answer FROM request_case WHERE reference = ?", asked)
        check((state, answered_by) == ("answered", answer), f"{asked}: {state} by {answered_by!r}")
        check(net.rows("SELECT COUNT(*) FROM request_case") == [(2,)], "a reply opened a case")
        check(net.stop_gateway() == 0, "SIGTERM")

        later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=31)
        overdue = net.cli("cases", "list", "--overdue", "--now", iso(later))
        check(overdue.returncode == 0 and assist in overdue.stdout and asked not in overdue.stdout
              and "overdue" in overdue.stdout, overdue.stdout + overdue.stderr)
        listed = [json.loads(line) for line in net.cli("cases", "list", "--json", "--party", "FR").stdout.splitlines()]
        check([(c["reference"], c["standing"]) for c in listed] == [(asked, "answered")], f"{listed}")

        extended = net.cli("cases", "extend", assist, "7d", "--note", "programme being revised", "--now", iso(later))
        check(extended.returncode == 0, extended.stdout + extended.stderr)
        check(assist not in net.cli("cases", "list", "--overdue", "--now", iso(later)).stdout, "still overdue")
        closed = net.cli("cases", "close", assist, "--note", "training scheduled", "--now", iso(later))
        check(closed.returncode == 0 and "closed" in closed.stdout, closed.stdout + closed.stderr)
        again = net.cli("cases", "close", assist)
        check(again.returncode != 0 and "closed already" in again.stderr, again.stdout + again.stderr)
        nobody = net.cli("cases", "reassign", asked, "XX")
        check(nobody.returncode != 0 and "no party XX" in nobody.stderr, nobody.stdout + nobody.stderr)

        shown = net.cli("cases", "show", asked).stdout
        history = [line.split()[1] for line in shown.split("history:")[1].splitlines() if line.strip()]
        check(history == ["opened", "answered", "message"], shown)
        check(thanks in shown and answer in shown, shown)
        shown = net.cli("cases", "show", assist).stdout
        history = [line.split()[1] for line in shown.split("history:")[1].splitlines() if line.strip()]
        check(history == ["opened", "extended", "closed"] and "training scheduled" in shown, shown)
        for words in ("Kühlcontainer", "conteneurs frigorifiques", "Schulung", "Dokumente"):
            check(words.lower() not in (net.cli("cases", "show", asked).stdout + shown).lower(),
                  f"a case shows the words {words!r}")
        audited = net.rows("SELECT event, detail FROM audit WHERE event LIKE 'case_%' ORDER BY id")
        check([e for e, _ in audited] == ["case_extended", "case_closed"]
              and all(assist in d for _, d in audited), f"audit: {audited}")
    finally:
        net.close()


SCENARIOS = [cases_follow_requests_and_replies]
