"""The Secretariat's desk (issue 16) on the real mail stack: cases opened by
the requests that arrive, answered by the replies that cite them, and
changed by the Secretariat's commands.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import socket
import time
import urllib.request

import browser
from harness import Net, check, wait_for

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
# A word of AT's reminder in its language, German (templates/de/case_reminder.hbs).
GERMAN = "Auskunftsersuchen"
ASK_ALL = ("Gentili colleghi,\n\nil Servizio di polizia di frontiera italiano vorrebbe conoscere l'esperienza "
           "degli Stati partecipanti con le pattuglie miste sui treni internazionali: quali accordi, quanti "
           "agenti, quali risultati.\n\nCordiali saluti\nMarco Rossi\nMinistero dell'Interno\n")
REMINDER_FR = ("À l'attention du PCN d'Autriche\n\nChers collègues,\n\nnous n'avons pas encore reçu de réponse à "
               "notre demande du mois dernier. Pourriez-vous nous indiquer, dès que possible, combien de conteneurs "
               "frigorifiques ont été inspectés au port de Vienne en 2025 ?\n\nCordialement,\nMarie Dubois\n")
THANKS = ("Cher collègue,\n\nmerci beaucoup pour ces chiffres, ils nous seront très utiles.\n\n"
          "Cordialement,\nMarie Dubois\n")


def iso(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def cases_follow_requests_and_replies() -> None:
    """FR asks AT for information and AT asks the Secretariat for
    assistance: each opens a case under its reference (owed by AT, 14 days;
    owed by the Secretariat, 30 days). AT's reply citing FR's reference
    answers FR's case; FR's thanks citing it goes into its history and
    answers nothing. Thirty-one days on, only the assistance request is
    overdue; `cases extend` moves its due time and re-arms it, `cases close`
    closes it, a second close is refused; `cases show` gives the history and
    each change is audited. No case shows any of the messages' words."""
    net = Net("cases", extra_config="\n[cases]\nreminders-per-hour = 1\n")
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
        net.send(net.mail_from("IT", "[RICHIESTA DI INFORMAZIONI] Pattuglie miste", ASK_ALL))
        net.wait_rows("SELECT id FROM inbound WHERE verdict = 'accepted'", 3)
        [(to_all,)] = net.rows("SELECT reference FROM inbound WHERE id = 3")
        check(net.rows("SELECT debtor FROM request_case WHERE reference = ?", to_all) == [("secretariat",)],
              "a request to no State is not owed by the Secretariat")

        net.send(net.mail_from("AT", f"AW: {asked} Conteneurs frigorifiques", ANSWER))
        net.wait_rows("SELECT id FROM inbound WHERE verdict = 'accepted'", 4)
        net.send(net.mail_from("FR", f"RE: {asked} Conteneurs frigorifiques", THANKS))
        net.wait_rows("SELECT id FROM inbound WHERE verdict = 'accepted'", 5)
        [(answer,), (thanks,)] = net.rows("SELECT reference FROM inbound WHERE id > 3 ORDER BY id")
        [(state, answered_by)] = net.rows("SELECT state, answer FROM request_case WHERE reference = ?", asked)
        check((state, answered_by) == ("answered", answer), f"{asked}: {state} by {answered_by!r}")
        check(net.rows("SELECT COUNT(*) FROM request_case") == [(3,)], "a reply opened a case")
        check(net.stop_gateway() == 0, "SIGTERM")

        later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=31)
        overdue = net.cli("cases", "list", "--overdue", "--now", iso(later))
        check(overdue.returncode == 0 and assist in overdue.stdout and to_all in overdue.stdout
              and asked not in overdue.stdout and "overdue" in overdue.stdout, overdue.stdout + overdue.stderr)
        # Two cases overdue, one reminder an hour: the one due first goes, the other waits.
        for expected in ("cases reminded: 1", "cases reminded: 0"):
            said = net.cli("cases", "remind", "--as-of", iso(later)).stdout
            check(expected in said, f"{expected!r}: {said}")
        check(net.rows("SELECT event FROM case_event WHERE event IN ('reminded', 'overdue') ORDER BY id")
              == [("overdue",)]
              and net.rows("SELECT reference FROM case_event WHERE event = 'overdue'") == [(to_all,)],
              f"{net.rows('SELECT reference, event FROM case_event')}")
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
        check([e for e, _ in audited] == ["case_overdue", "case_extended", "case_closed"]
              and to_all in audited[0][1] and all(assist in d for _, d in audited[1:]), f"audit: {audited}")
    finally:
        net.close()


def the_debtor_is_reminded_before_and_after_the_due_date() -> None:
    """FR asks AT (an information request: 14 days, reminder 3 days
    before). Eleven days on (`cases remind --as-of`, the clock passed in),
    AT gets a reminder in German naming the reference, the asker and the
    dates and none of the request's words; a second run sends nothing.
    Fifteen days on, AT gets the overdue reminder and the Secretariat a
    note in English; after a restart of the daemon, which runs the same
    pass by itself, nothing is sent twice. AT's late answer then answers
    the case, and no reminder follows it."""
    net = Net("remind")
    try:
        net.start_gateway()
        net.send(net.mail_from("FR", "[DEMANDE D'INFORMATION] [AT] Conteneurs frigorifiques", ASK_AT))
        forward = net.wait_mail("AT", 1)
        asked = REF.search(forward[0].subject).group(0)
        check(net.rows("SELECT debtor, state FROM request_case WHERE reference = ?", asked) == [("AT", "open")],
              f"{net.rows('SELECT * FROM request_case')}")
        start = datetime.datetime.now(datetime.timezone.utc)

        def remind(days: int) -> str:
            out = net.cli("cases", "remind", "--as-of", iso(start + datetime.timedelta(days=days)))
            check(out.returncode == 0, out.stdout + out.stderr)
            return out.stdout

        said = remind(5)
        check("cases reminded: 0" in said, f"a reminder nine days early: {said}")
        said = remind(11)
        check("cases reminded: 1" in said, f"no reminder three days before the due date: {said}")
        said = remind(12)
        check("cases reminded: 0" in said, f"the reminder was queued twice: {said}")
        mails = net.wait_mail("AT", 2)
        reminder = [m for m in mails if asked in m.subject and not m.attachment_names()]
        check(len(reminder) == 1 and reminder[0].decrypted and reminder[0].signed_by_gateway,
              f"AT: {[m.subject for m in mails]}")
        text = reminder[0].subject + reminder[0].text()
        check(GERMAN in text, f"the reminder is not in AT's language: {text}")
        for words in ("conteneurs", "frigorifiques", "Vienne", "critères"):
            check(words not in text, f"the reminder quotes the request ({words!r}): {text}")

        check(net.stop_gateway() == 0, "SIGTERM")
        net.start_gateway()
        said = remind(15)
        check("cases reminded: 1" in said, f"no reminder once overdue: {said}")
        said = remind(16)
        check("cases reminded: 0" in said, f"the overdue reminder was queued twice: {said}")
        mails = net.wait_mail("AT", 3)
        late = [m for m in mails if asked in m.subject and not m.attachment_names()]
        check(len(late) == 2, f"AT: {[m.subject for m in mails]}")
        notes = [m for m in net.wait_mail("secretariat", 1) if asked in m.subject and "AT" in m.subject]
        check(len(notes) == 1 and notes[0].decrypted and "Overdue" in notes[0].subject,
              f"secretariat: {[m.subject for m in net.mailbox('secretariat')]}")

        # FR reminds AT itself: a request citing FR's own open case joins its
        # history and opens no second case.
        net.send(net.mail_from("FR", f"Rappel : {asked} Conteneurs frigorifiques", REMINDER_FR))
        net.wait_rows("SELECT id FROM case_event WHERE event = 'message'", 1)
        check(net.rows("SELECT kind FROM inbound WHERE sender_party = 'FR' ORDER BY id DESC LIMIT 1")
              == [("information_request",)], f"{net.rows('SELECT kind, detail FROM inbound ORDER BY id DESC LIMIT 1')}")
        check(net.rows("SELECT COUNT(*) FROM request_case") == [(1,)],
              f"a reminder opened a case: {net.rows('SELECT reference, kind, asker FROM request_case')}")
        net.send(net.mail_from("AT", f"AW: {asked} Conteneurs frigorifiques", ANSWER))
        net.wait_rows("SELECT reference FROM request_case WHERE state = 'answered'", 1)
        said = remind(30)
        check("cases reminded: 0" in said, f"a reminder after the answer: {said}")
        history = [e for (e,) in net.rows(
            "SELECT event FROM case_event WHERE reference = ? ORDER BY id", asked)]
        check(history == ["opened", "reminded", "overdue", "message", "answered"], f"history: {history}")
        sent = net.rows("SELECT recipient_party, template FROM outbox WHERE purpose = 'reminder' ORDER BY id")
        check(sent == [("AT", "case_reminder"), ("AT", "case_reminder"), ("secretariat", "case_overdue_note")],
              f"reminders queued: {sent}")
    finally:
        net.close()


def the_secretariat_commands_its_desk_by_mail() -> None:
    """The Secretariat changes cases by signed mail to the gateway: a
    command in the signed subject ([CLOSE …]) or on the first line
    ([PROLONGER … 10 jours]), each carried out in the transaction that
    stores it, recorded in the case's history by the command mail's
    reference and in the audit trail, and answered with a signed result in
    the Secretariat's language; a command that cannot be carried out (an
    unknown party, a case closed already) changes nothing and says why.
    The same command from AT, genuine and correctly signed, is refused as
    `command_refused` and audited, changes nothing and goes nowhere; no
    command mail is forwarded to anyone."""
    net = Net("command")
    try:
        net.start_gateway()
        net.send(net.mail_from("FR", "[DEMANDE D'INFORMATION] [AT] Conteneurs frigorifiques", ASK_AT))
        net.wait_rows("SELECT id FROM inbound WHERE verdict = 'accepted'", 1)
        net.send(net.mail_from("AT", "[HILFEERSUCHEN] Schulung Dokumentensicherheit", ASK_SECRETARIAT))
        net.wait_rows("SELECT id FROM inbound WHERE verdict = 'accepted'", 2)
        [(asked,), (assist,)] = net.rows("SELECT reference FROM inbound ORDER BY id")
        [(due_before,)] = net.rows("SELECT due_at FROM request_case WHERE reference = ?", assist)

        # AT, whose request it is not to settle, tries to close FR's case.
        net.send(net.mail_from("AT", "Vorgang erledigt",
                               f"[SCHLIESSEN {asked}]\n\nSehr geehrte Damen und Herren,\n\nbitte schließen "
                               "Sie den Vorgang, die Zahlen sind übermittelt.\n\nJohann Berger\n"))
        net.wait_rows("SELECT id FROM inbound WHERE verdict = 'quarantined'", 1)
        check(net.rows("SELECT reason, sender_party FROM inbound WHERE verdict = 'quarantined'")
              == [("command_refused", "AT")], f"{net.rows('SELECT verdict, reason, sender_party FROM inbound')}")
        check(net.rows("SELECT state FROM request_case WHERE reference = ?", asked) == [("open",)],
              "AT's command changed the case")

        commands = [
            (f"[CLOSE {asked}] Reefer containers (FR/AT)", "Closing: FR confirmed by phone that the figures arrived.\n"),
            ("Austrian training request", f"[PROLONGER {assist} 10 jours]\n\nThe programme is being revised.\n"),
            ("Austrian training request", f"[REASSIGN {assist} XX]\n"),
            (f"[ЗАКРЫТЬ {asked}]", "Дело закрыто.\n"),
        ]
        for n, (subject, body) in enumerate(commands, start=1):
            net.send(net.mail_from("secretariat", subject, body))
            net.wait_rows("SELECT id FROM inbound WHERE kind = 'command'", n)
        refs = [r for (r,) in net.rows("SELECT reference FROM inbound WHERE kind = 'command' ORDER BY id")]
        check(len(refs) == 4 and all(refs), f"command references: {refs}")
        [(state,)] = net.rows("SELECT state FROM request_case WHERE reference = ?", asked)
        check(state == "closed", f"{asked} is {state} after [CLOSE]")
        [(due_after, debtor)] = net.rows("SELECT due_at, debtor FROM request_case WHERE reference = ?", assist)
        days = (datetime.datetime.fromisoformat(due_after.replace("Z", "+00:00"))
                - datetime.datetime.fromisoformat(due_before.replace("Z", "+00:00"))).days
        check(days == 10 and debtor == "secretariat", f"{assist}: due {due_before} -> {due_after}, owed by {debtor}")

        results = [m for m in net.wait_mail("secretariat", 6, timeout=60) if any(r in m.subject for r in refs)]
        by_ref = {r: [m for m in results if r in m.subject] for r in refs}
        check(all(len(v) == 1 and v[0].decrypted and v[0].signed_by_gateway for v in by_ref.values()),
              f"results: {[m.subject for m in results]}")
        said = [by_ref[r][0].subject + "\n" + by_ref[r][0].text() for r in refs]
        check(said[0].count("Done") == 1 and "closed" in said[0], said[0])
        check("Done" in said[1] and "Due:" in said[1], said[1])
        check("Not done" in said[2] and "no party XX" in said[2] and "nothing has changed" in said[2], said[2])
        check("Not done" in said[3] and f"{asked} is closed already" in said[3], said[3])
        for text in said:
            for words in ("Conteneurs", "Kühlcontainer", "Schulung"):
                check(words not in text, f"a command's result quotes a message ({words!r}): {text}")

        # The desk officer answers the result of [PROLONGER …] as mail clients
        # do: the reply echoes the command in its subject and is no command.
        extended = by_ref[refs[1]][0]
        net.send(net.mail_from("secretariat", f"Re: {extended.subject}", "Thanks, noted.\n\n> " +
                               extended.text().splitlines()[0] + "\n"))
        net.wait_rows("SELECT id FROM inbound", 8)
        check(net.rows("SELECT kind FROM inbound ORDER BY id DESC LIMIT 1") != [("command",)],
              f"a reply to a result is a command: {net.rows('SELECT kind, detail FROM inbound ORDER BY id DESC LIMIT 1')}")
        check(net.rows("SELECT due_at FROM request_case WHERE reference = ?", assist) == [(due_after,)],
              "a reply to a result extended the case again")

        history = net.rows("SELECT event, actor FROM case_event WHERE reference = ? ORDER BY id", asked)
        check(history == [("opened", "FR"), ("closed", refs[0])], f"{asked}: {history}")
        history = net.rows("SELECT event, actor FROM case_event WHERE reference = ? ORDER BY id", assist)
        check(history == [("opened", "AT"), ("extended", refs[1])], f"{assist}: {history}")
        audited = net.rows("SELECT event, party, detail FROM audit WHERE event LIKE 'case_%' OR "
                           "(event = 'quarantined' AND detail LIKE 'command_refused%') ORDER BY id")
        check([e for e, _, _ in audited] == ["quarantined", "case_closed", "case_extended",
                                              "case_command_refused", "case_command_refused"]
              and audited[0][1] == "AT" and f"by command mail {refs[0]}" in audited[1][2]
              and "no party XX" in audited[3][2] and "closed already" in audited[4][2], f"audit: {audited}")

        # Commands go nowhere but back to the Secretariat; AT's went nowhere at all.
        sent = net.rows("SELECT o.recipient_party, o.template FROM outbox o JOIN inbound i ON i.id = o.inbound_id "
                        "WHERE i.kind = 'command' OR i.verdict = 'quarantined' ORDER BY o.id")
        check(sent == [("secretariat", "quarantine_notice")] + [("secretariat", "command_result")] * 4,
              f"mail caused by commands: {sent}")
        shown = net.cli("cases", "show", asked).stdout
        check(refs[0] in shown and "closed" in shown, shown)
    finally:
        net.close()


CONFIRM = ("Sehr geehrte Damen und Herren,\n\nwir bestätigen, dass unser Eintrag im Verzeichnis korrekt ist.\n\n"
           "Mit freundlichen Grüßen\nJohann Berger\nBundesministerium für Inneres\n")
UPDATE_FR = ("[MISE À JOUR DES COORDONNÉES]\n\nMadame, Monsieur,\n\nen réponse à l'appel de confirmation :\n\n"
             "Adresse : 2 place Beauvau, 75008 Paris\n"
             "Contact : Jean Dupont | Chef du point de contact | jean.dupont@interieur.fr.example | +33 1 99 00 41 20\n\n"
             "Cordialement\n")


def a_roll_call_over_the_network() -> None:
    """`rollcall start` asks every NFP of the network to confirm its
    directory entry, each in its language with its entry as the directory
    holds it: AT confirms by a signed reply citing the round's reference,
    FR answers with a contact update, ES's server refuses the request (no
    such mailbox), PL's key has expired (the request is held, never sent),
    the others stay silent. A week before the end only the silent ones get
    the reminder; at the end the Secretariat gets one report, across a
    restart, that names each standing; `rollcall status` and /metrics
    agree with it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    net = Net("rollcall", extra_config=f'listen = "127.0.0.1:{port}"\n[rollcall]\nevery = "365d"\n',
              without_mailbox=("ES",))
    try:
        # Started before the daemon: the daemon sends what it finds queued,
        # and does not start a yearly round of its own on top of it.
        started = net.cli("rollcall", "start")
        check(started.returncode == 0, started.stdout + started.stderr)
        net.start_gateway()
        ref = REF.search(started.stdout).group(0)
        nfps = [p.id for p in net.w.nfps()]
        asked = net.rows("SELECT party FROM rollcall_party WHERE reference = ? ORDER BY party", ref)
        check([a for (a,) in asked] == sorted(nfps), f"asked {asked}, NFPs {nfps}")
        check(f"{len(nfps)} NFPs asked" in started.stdout, started.stdout)

        request = [m for m in net.wait_mail("AT", 1) if ref in m.subject]
        check(len(request) == 1 and request[0].decrypted and request[0].signed_by_gateway,
              f"AT: {[m.subject for m in net.mailbox('AT')]}")
        text = request[0].subject + request[0].text()
        at = net.w.p["AT"]
        check("Bestätigungsrunde" in text and at.email in text and at.fpr.upper() in text.upper()
              and "unprotected" not in text, f"AT's request does not show its entry in German: {text}")
        if os.environ.get("NFP_E2E_SHOW"):
            print(text)
        held = net.rows("SELECT recipient_party FROM outbox WHERE purpose = 'rollcall' AND state = 'held'")
        check(("PL",) in held, f"held: {held}")

        net.send(net.mail_from("AT", f"AW: [{ref}] Bestätigungsrunde des NFP-Netzwerks", CONFIRM))
        net.send(net.mail_from("FR", "[MISE À JOUR DES COORDONNÉES] Nouveau chef du point de contact", UPDATE_FR))
        net.wait_rows("SELECT party FROM rollcall_party WHERE answer <> ''", 2)
        answers = net.rows("SELECT party, answer FROM rollcall_party WHERE answer <> '' ORDER BY party")
        check(answers == [("AT", "confirmed"), ("FR", "updated")], f"answers: {answers}")
        net.wait_rows("SELECT id FROM outbox WHERE purpose = 'rollcall' AND state = 'failed'", 1, timeout=60)

        start = datetime.datetime.now(datetime.timezone.utc)

        def run(days: int) -> str:
            out = net.cli("rollcall", "run", "--as-of", iso(start + datetime.timedelta(days=days)))
            check(out.returncode == 0, out.stdout + out.stderr)
            return out.stdout

        check("reminders: 0, reports: 0" in run(10), "a reminder three weeks early")
        silent = sorted(set(nfps) - {"AT", "FR", "ES", "PL"})
        said = run(24)
        check(f"reminders: {len(silent)}, reports: 0" in said, f"{said} (silent: {silent})")
        check("reminders: 0, reports: 0" in run(25), "the reminder went out twice")
        reminded = net.rows("SELECT recipient_party FROM outbox WHERE purpose = 'rollcall' AND template = "
                            "'rollcall_request' GROUP BY recipient_party HAVING COUNT(*) = 2 ORDER BY recipient_party")
        check([r for (r,) in reminded] == silent, f"reminded: {reminded}")
        it = wait_for("IT's reminder", lambda: [m for m in net.mailbox("IT") if ref in m.subject and "Sollecito" in m.subject],
                      60, net)
        check(len(it) == 1 and it[0].decrypted, f"IT: {[m.subject for m in net.mailbox('IT')]}")

        check(net.stop_gateway() == 0, "SIGTERM")
        net.start_gateway()
        check("reminders: 0, reports: 1" in run(31), "no report at the end")
        check("reminders: 0, reports: 0" in run(32), "a second report")
        reports = wait_for("the report", lambda: [m for m in net.mailbox("secretariat")
                                                  if ref in m.subject and "report" in m.subject], 60, net)
        check(len(reports) == 1 and reports[0].decrypted, f"{[m.subject for m in net.mailbox('secretariat')]}")
        body = reports[0].text().replace("\r\n", "\n")
        sections = {}
        for block in body.split("\n\n"):
            head, _, rest = block.partition("\n")
            if ":" in head:
                sections[head.split(":")[0]] = re.findall(r"\(([A-Za-z]+)\) <", rest)
        want = {"Confirmed their entry": ["AT"], "Sent a contact update": ["FR"],
                "Did not answer (the request was delivered)": silent,
                "Not asked": ["PL"], "Not reached": ["ES"]}
        for title, ids in want.items():
            got = next((v for k, v in sections.items() if k.startswith(title)), None)
            check(got is not None and sorted(got) == sorted(ids), f"{title}: {got} != {ids}\n{body}")

        status = [json.loads(line) for line in net.cli("rollcall", "status", "--json").stdout.splitlines()]
        standing = {m["party"]: m["standing"] for m in status}
        check(standing == {**{p: "silent" for p in silent}, "AT": "confirmed", "FR": "updated",
                           "ES": "failed", "PL": "held"}, f"status: {standing}")
        table = net.cli("rollcall", "status", ref).stdout
        check(re.search(r"^confirmed +1  AT$", table, re.M) and re.search(r"^held +1  PL$", table, re.M)
              and "reported" in table, table)
        deadline = time.time() + 30
        while True:
            try:
                metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
                break
            except OSError:
                check(time.time() < deadline, "no /metrics")
                time.sleep(0.3)
        for name, n in [("confirmed", 1), ("updated", 1), ("silent", len(silent)), ("held", 1), ("failed", 1)]:
            check(f'nfp_gateway_rollcall{{standing="{name}"}} {n}' in metrics, metrics)
        # A year on, the daemon's pass (here run at once) starts the next round itself.
        check("reminders: 0, reports: 0" in run(366), "the yearly round")
        rounds = net.rows("SELECT started_by FROM rollcall ORDER BY started_at, reference")
        check(rounds == [("cli",), ("schedule",)], f"rounds: {rounds}")
        audited = [e for (e,) in net.rows("SELECT event FROM audit WHERE event LIKE 'rollcall_%' ORDER BY id")]
        check(audited == ["rollcall_started", "rollcall_reminded", "rollcall_reported", "rollcall_started"],
              f"audit: {audited}")
    finally:
        net.close()


PRACTICE_AT = ("Sehr geehrte Damen und Herren,\n\ndas Bundesministerium für Inneres möchte seine Erfahrungen mit "
               "gemischten Streifen in internationalen Zügen teilen: Seit 2024 fahren österreichische und ungarische "
               "Beamtinnen und Beamte gemeinsam auf der Strecke Wien-Budapest; die Zahl der aufgedeckten "
               "Schleusungen stieg um ein Drittel.\n\nMit freundlichen Grüßen\nJohann Berger\n")
PRACTICE_FR = ("Madame, Monsieur,\n\nla direction générale des douanes souhaite partager son expérience du "
               "ciblage des conteneurs par analyse de risque automatisée au port du Havre.\n\n"
               "Cordialement,\nMarie Dubois\n")
NOTE = "Dear colleagues,\n\nwe draw your attention to Austria's experience with mixed patrols on trains.\n"


def a_best_practice_circulated_to_every_nfp() -> None:
    """Two accepted best practices make the library (`library list`, by
    party, topic and language). The Secretariat circulates AT's by command
    mail ([VERTEILEN …], its text the covering note): every NFP but AT gets
    it in its language with the note and AT's original attached, signed and
    encrypted to it; PL's expired key holds its copy; the Secretariat gets
    the result. `library circulate` does the same from the shell for FR's;
    `library show` names who got which and when. A circulation of what is
    not a best practice changes nothing and says why; the note is in no
    audit entry and nowhere at rest."""
    net = Net("library")
    try:
        net.start_gateway()
        net.send(net.mail_from("AT", "[BEWÄHRTE PRAXIS] Gemischte Streifen in internationalen Zügen", PRACTICE_AT))
        net.send(net.mail_from("FR", "[BONNE PRATIQUE] [DOUANE] Ciblage des conteneurs", PRACTICE_FR))
        net.wait_rows("SELECT id FROM inbound WHERE kind = 'best_practice'", 2)
        refs = dict(net.rows("SELECT sender_party, reference FROM inbound WHERE kind = 'best_practice'"))
        listed = [json.loads(line) for line in net.cli("library", "list", "--json").stdout.splitlines()]
        check(sorted((p["party"], p["language"], p["circulated_to"]) for p in listed)
              == [("AT", "de", 0), ("FR", "fr", 0)], f"library: {listed}")
        only = net.cli("library", "list", "--topic", "customs").stdout
        check(refs["FR"] in only and refs["AT"] not in only, only)
        only = net.cli("library", "list", "--party", "AT", "--language", "de").stdout
        check(refs["AT"] in only and refs["FR"] not in only, only)

        net.send(net.mail_from("secretariat", "Gemischte Streifen", f"[VERTEILEN {refs['AT']}]\n\n{NOTE}"))
        net.send(net.mail_from("secretariat", f"[CIRCULATE {refs['AT'][:-1]}9]", NOTE))
        commands = net.wait_rows("SELECT id FROM inbound WHERE kind = 'command'", 2)
        check(len(commands) == 2, f"{net.rows('SELECT id, verdict, reason, kind, detail FROM inbound')}\n{net.tail()}")
        [(cmd, _), (wrong, _)] = net.rows("SELECT reference, id FROM inbound WHERE kind = 'command' ORDER BY id")
        nfps = [p.id for p in net.w.nfps()]
        others = sorted(set(nfps) - {"AT"})
        went = net.rows("SELECT party, circulated_by FROM library_circulation WHERE reference = ? ORDER BY party",
                        refs["AT"])
        check(went == [(p, cmd) for p in others], f"circulated to {went}")
        check(net.rows("SELECT recipient_party FROM outbox WHERE purpose = 'library' AND state = 'held'")
              == [("PL",)], f"{net.rows('SELECT recipient_party, state FROM outbox WHERE purpose = ?', 'library')}")

        # The copies belong to the practice (retention deletes them with it);
        # the held one holds no content and belongs to nothing.
        [(practice_id,)] = net.rows("SELECT id FROM inbound WHERE reference = ?", refs["AT"])
        owners = net.rows("SELECT state, inbound_id, message IS NULL FROM outbox WHERE purpose = 'library' "
                          "GROUP BY state, inbound_id, message IS NULL ORDER BY state")
        check(all((i == practice_id) if st != "held" else (i is None and empty) for st, i, empty in owners),
              f"library copies: {owners}")
        fr = wait_for("FR's copy", lambda: [m for m in net.mailbox("FR") if refs["AT"] in m.subject
                                             and "Bonne pratique" in m.subject], 60, net)
        check(len(fr) == 1 and fr[0].decrypted and fr[0].signed_by_gateway, f"{[m.subject for m in fr]}")
        text = fr[0].text()
        check("mixed patrols on trains" in text and "Thèmes" in text, text)
        names = fr[0].attachment_names()
        check(names == [f"best-practice-{refs['AT']}.eml"], f"attachments: {names}")
        original = fr[0].plain.decode("utf-8", "replace")
        check("Wien-Budapest" in original, "AT's original is not attached")
        results = wait_for("the results", lambda: [m for m in net.mailbox("secretariat")
                                                   if cmd in m.subject or wrong in m.subject], 60, net)
        said = {r: [m.subject + "\n" + m.text() for m in results if r in m.subject] for r in (cmd, wrong)}
        check(len(said[cmd]) == 1 and f"circulated to {len(others) - 1} NFP(s)" in said[cmd][0]
              and "1 more cannot receive it" in said[cmd][0], f"{said[cmd]}")
        wait_for("the refusal", lambda: [m for m in net.mailbox("secretariat") if wrong in m.subject], 60, net)
        said = [m.subject + "\n" + m.text() for m in net.mailbox("secretariat") if wrong in m.subject]
        check(len(said) == 1 and "Not done" in said[0] and "no accepted best practice" in said[0], f"{said}")

        out = net.cli("library", "circulate", refs["FR"], "--note", "Le Secrétariat recommande cette approche.")
        check(out.returncode == 0 and f"{len(nfps) - 2} queued, 1 held" in out.stdout, out.stdout + out.stderr)
        bad = net.cli("library", "circulate", cmd)
        check(bad.returncode != 0 and "no accepted best practice" in bad.stderr, bad.stdout + bad.stderr)
        shown = net.cli("library", "show", refs["FR"]).stdout
        check(all(p in shown for p in sorted(set(nfps) - {"FR"})) and "cli" in shown and "AT" in shown, shown)
        listed = {p["party"]: p["circulated_to"] for p in
                  (json.loads(line) for line in net.cli("library", "list", "--json").stdout.splitlines())}
        check(listed == {"AT": len(nfps) - 1, "FR": len(nfps) - 1}, f"{listed}")
        at = wait_for("AT's copy of FR's", lambda: [m for m in net.mailbox("AT") if refs["FR"] in m.subject
                                                    and "Bewährte Praxis" in m.subject], 60, net)
        check("Le Secrétariat recommande" in at[0].text(), at[0].text())

        audit = " ".join(d for (d,) in net.rows("SELECT detail FROM audit"))
        check("library_circulated" in [e for (e,) in net.rows("SELECT event FROM audit")], "not audited")
        for words in ("mixed patrols", "recommande", "Wien-Budapest"):
            check(words not in audit, f"the audit trail holds {words!r}")
        for table, row in net.store.at_rest():
            check(b"mixed patrols" not in row and "recommande".encode() not in row,
                  f"the note is at rest in {table}")
    finally:
        net.close()


def the_weekly_report() -> None:
    """A week of the desk: FR asks AT (answered), IT asks AT (open), a
    forgery is quarantined, a roll call runs. The report of the week that
    has ended (the clock passed in: `report --send-as-of`) reaches the
    Secretariat once, across a restart of the daemon, which sends nothing
    of its own for the week it began in: the text in English and the page
    attached. Debian's chromium renders the page with nothing blocked and
    no script; its figures are the store's; a screenshot is taken."""
    net = Net("report", extra_config="\n[report]\nenabled = true\nevery = \"7d\"\n")
    try:
        net.start_gateway()
        net.send(net.mail_from("FR", "[DEMANDE D'INFORMATION] [AT] Conteneurs frigorifiques", ASK_AT))
        net.send(net.mail_from("IT", "[RICHIESTA DI INFORMAZIONI] [AT] Pattuglie miste", ASK_ALL))
        net.wait_rows("SELECT reference FROM request_case", 2)
        [(asked,)] = net.rows("SELECT reference FROM request_case WHERE asker = 'FR'")
        net.send(net.mail_from("AT", f"AW: {asked} Conteneurs frigorifiques", ANSWER))
        net.send((f"From: Mallory <mallory@evil.example>\r\nTo: <{net.gateway_persona.email}>\r\n"
                  "Subject: urgent\r\nMessage-ID: <forgery-1@evil.example>\r\n"
                  "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\nPlease wire the money.\r\n").encode(),
                 frm="mallory@evil.example")
        net.wait_rows("SELECT id FROM inbound", 4)
        net.wait_rows("SELECT reference FROM request_case WHERE state = 'answered'", 1)
        check(net.cli("rollcall", "start").returncode == 0, "rollcall start")

        week = iso(datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=7))
        for expected in ("report sent: 1", "report sent: 0"):
            said = net.cli("report", "--send-as-of", week)
            check(expected in said.stdout, f"{expected!r}: {said.stdout}{said.stderr}")
        check(net.stop_gateway() == 0, "SIGTERM")
        net.start_gateway()
        said = net.cli("report", "--send-as-of", week)
        check("report sent: 0" in said.stdout, f"sent again after a restart: {said.stdout}{said.stderr}")
        reports = wait_for("the report", lambda: [m for m in net.mailbox("secretariat")
                                                  if m.subject.startswith("Report ")], 60, net)
        time.sleep(2)  # anything more would come now
        reports = [m for m in net.mailbox("secretariat") if m.subject.startswith("Report ")]
        check(len(reports) == 1 and reports[0].decrypted and reports[0].signed_by_gateway,
              f"{[m.subject for m in net.mailbox('secretariat')]}")
        text = reports[0].text()
        check("opened in the period: 2" in text and "answered in the period: 1" in text, text)
        for words in ("Conteneurs", "Kühlcontainer", "Pattuglie", "wire the money"):
            check(words not in text, f"the report quotes a message ({words!r})")
        pages = [p for p in reports[0].inner.walk() if (p.get_filename() or "").endswith(".html")]
        check(len(pages) == 1 and pages[0].get_content_type() == "text/html", f"{reports[0].attachment_names()}")
        page = net.dir / pages[0].get_filename()
        page.write_bytes(pages[0].get_payload(decode=True))
        html = page.read_text()
        check("<script" not in html.lower() and "default-src 'none'" in html, "the page is not self-contained")

        dom, complaints = browser.render(page)
        check(not complaints, f"the browser complains: {complaints}")

        def figure(element: str) -> int:
            m = re.search(rf'id="{element}">(\d+)<', dom)
            check(m is not None, f"no figure {element} in the rendered page")
            return int(m.group(1))

        store = {
            "cases-opened": net.rows("SELECT COUNT(*) FROM request_case")[0][0],
            "cases-answered": net.rows("SELECT COUNT(*) FROM request_case WHERE state = 'answered'")[0][0],
            "mail-accepted": net.rows("SELECT COUNT(*) FROM inbound WHERE verdict = 'accepted'")[0][0],
            "mail-quarantined": net.rows("SELECT COUNT(*) FROM inbound WHERE verdict = 'quarantined'")[0][0],
            "rollcall-held": net.rows("SELECT COUNT(*) FROM rollcall_party m JOIN outbox o ON o.message_id = "
                                      "m.message_id WHERE o.state = 'held'")[0][0],
        }
        shown = {k: figure(k) for k in store}
        check(shown == store and store["mail-quarantined"] == 1 and store["rollcall-held"] >= 1,
              f"page {shown} != store {store}")
        check(dom.count("<svg") >= 3 and "chart-cases" in dom and "chart-rollcall" in dom, "charts missing")
        png = net.dir / "report.png"
        browser.screenshot(page, png)
        check(png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000,
              f"screenshot of {png.stat().st_size} bytes")
        if os.environ.get("NFP_E2E_KEEP_REPORT"):
            shutil.copy(png, os.environ["NFP_E2E_KEEP_REPORT"])
        check(net.rows("SELECT COUNT(*) FROM report_run")[0][0] == 1, "report_run")
    finally:
        net.close()


SCENARIOS = [cases_follow_requests_and_replies, the_debtor_is_reminded_before_and_after_the_due_date,
             the_secretariat_commands_its_desk_by_mail, a_roll_call_over_the_network,
             a_best_practice_circulated_to_every_nfp, the_weekly_report]
