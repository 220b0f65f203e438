#!/usr/bin/env python3
"""Self-test of the private mail stack (mailstack.py): start one in a temporary DIR,
deliver through every path the gateway's tests use, check that nothing is an open door,
stop, restart, stop, and check that no process is left.

    python3 tests/mailstack/selftest.py [--repeat N] [--parallel N] [--keep]

From a test: `import selftest; selftest.run()` (raises AssertionError on a failure and
returns the timings). Needs root and the packages of scripts/install-deps.sh.
"""

import argparse
import concurrent.futures
import email.message
import email.policy
import email.utils
import os
import re
import shutil
import smtplib
import socket
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mailstack  # noqa: E402

GATEWAY = "gateway@nfp-network.example"
BSMU = "bsmu@secretariat.example"
NFP_AT = "nfp@bmi.at.example"
MAILBOXES = {GATEWAY: "gw-secret", BSMU: "bsmu-secret", NFP_AT: "at-secret"}


def make_eml(frm, to, subject, body="Test message of the mail stack.\n"):
    m = email.message.EmailMessage(policy=email.policy.SMTP)
    m["From"] = frm
    m["To"] = to
    m["Subject"] = subject
    m["Date"] = email.utils.formatdate(localtime=False)
    m["Message-ID"] = f"<{uuid.uuid4()}@selftest.example>"
    m.set_content(body)
    return m.as_bytes()


def subject_of(raw):
    m = re.search(rb"^Subject: (.*?)\r?$", raw, re.M)
    return m.group(1).decode() if m else None


def expect_refused(fn, code, what):
    try:
        fn()
    except smtplib.SMTPRecipientsRefused as e:
        codes = {c for c, _ in e.recipients.values()}
        assert codes == {code}, f"{what}: refused with {e.recipients}, expected {code}"
        return next(iter(e.recipients.values()))[1].decode()
    raise AssertionError(f"{what}: accepted, should have been refused ({code})")


def check_submission_needs_tls_and_auth(stack):
    """Before STARTTLS: no AUTH offered, MAIL refused. After: AUTH offered; a wrong
    password is refused."""
    with smtplib.SMTP(stack.host, stack.submission_port, timeout=10) as c:
        c.ehlo("selftest.localhost")
        assert not c.has_extn("auth"), "submission offers AUTH before STARTTLS"
        assert c.has_extn("starttls"), "submission does not offer STARTTLS"
        code, msg = c.mail(NFP_AT)
        assert code == 530, f"MAIL before STARTTLS on submission: {code} {msg!r}"
        c.rset()
        c.starttls(context=stack.ssl_context())
        c.ehlo("selftest.localhost")
        mechs = c.esmtp_features.get("auth", "").upper().split()
        assert "PLAIN" in mechs and "LOGIN" in mechs, f"AUTH mechanisms: {mechs}"
        c.user, c.password = NFP_AT, "wrong-password"
        try:  # PLAIN only: each failure costs Dovecot's 0.5 s failure tick
            c.auth("PLAIN", c.auth_plain)
        except smtplib.SMTPAuthenticationError as e:
            assert e.smtp_code == 535, e
        else:
            raise AssertionError("submission accepted a wrong password")


def imap_raw(stack, host, port, tls):
    """A raw IMAP connection: returns (socket, reader)."""
    raw = socket.create_connection((host, port), timeout=10)
    s = stack.ssl_context().wrap_socket(raw, server_hostname=host) if tls else raw
    return s, s.makefile("rb")


def imap_cmd(s, f, tag, line):
    s.sendall(f"{tag} {line}\r\n".encode())
    lines = []
    while True:
        ln = f.readline()
        if not ln:
            raise AssertionError(f"IMAP {line!r}: connection closed")
        lines.append(ln)
        if ln.startswith(tag.encode() + b" "):
            return lines


def check_logindisabled(stack):
    """On 127.0.0.2 (a "remote" address) plaintext IMAP says LOGINDISABLED and refuses
    LOGIN until STARTTLS; on 127.0.0.1 Dovecot counts the client as secure and does not."""
    s, f = imap_raw(stack, stack.imap_host_remote, stack.imap_port, tls=False)
    with s:
        greeting = f.readline()
        assert b"LOGINDISABLED" in greeting and b"STARTTLS" in greeting, greeting
        reply = imap_cmd(s, f, "a1", f'LOGIN "{GATEWAY}" "{MAILBOXES[GATEWAY]}"')[-1]
        assert not reply.startswith(b"a1 OK"), f"plaintext LOGIN on 127.0.0.2: {reply!r}"
        imap_cmd(s, f, "a2", "LOGOUT")
    s, f = imap_raw(stack, stack.host, stack.imap_port, tls=False)
    with s:
        local_greeting = f.readline()
        imap_cmd(s, f, "a1", "LOGOUT")
    assert b"LOGINDISABLED" not in local_greeting, (
        "127.0.0.1 now says LOGINDISABLED: update the notes and mailstack.py's docstring")
    # STARTTLS on 127.0.0.2 then LOGIN works (imaplib, CA verified)
    import imaplib
    c = imaplib.IMAP4(stack.imap_host_remote, stack.imap_port, timeout=10)
    try:
        c.starttls(ssl_context=stack.ssl_context())
        assert "LOGINDISABLED" not in c.capabilities, c.capabilities
        c.login(GATEWAY, MAILBOXES[GATEWAY])
    finally:
        c.logout()
    return greeting.decode().strip()


def idle_latency(stack, user, password, deliver, limit=2.0):
    """IDLE on INBOX (raw: imaplib has no IDLE), deliver(), time until * N EXISTS."""
    s, f = imap_raw(stack, stack.host, stack.imaps_port, tls=True)
    with s:
        f.readline()
        reply = imap_cmd(s, f, "a1", f'LOGIN "{user}" "{password}"')[-1]
        assert reply.startswith(b"a1 OK"), reply
        lines = imap_cmd(s, f, "a2", "SELECT INBOX")
        exists = max(int(m.group(1)) for ln in lines
                     if (m := re.match(rb"\* (\d+) EXISTS", ln)))
        s.sendall(b"a3 IDLE\r\n")
        ln = f.readline()
        assert ln.startswith(b"+"), f"IDLE: {ln!r}"
        deliver()
        t0 = time.monotonic()
        while True:
            left = limit - (time.monotonic() - t0)
            if left <= 0:
                raise AssertionError(f"no EXISTS within {limit} s of the delivery")
            s.settimeout(left)
            try:
                ln = f.readline()
            except (socket.timeout, TimeoutError):
                raise AssertionError(f"no EXISTS within {limit} s of the delivery") from None
            m = re.match(rb"\* (\d+) EXISTS", ln)
            if m and int(m.group(1)) > exists:
                latency = time.monotonic() - t0
                break
        s.settimeout(10)
        s.sendall(b"DONE\r\n")
        while not f.readline().startswith(b"a3 "):
            pass
        imap_cmd(s, f, "a4", "LOGOUT")
    return latency


def ports_closed(stack):
    for name in mailstack.PORT_NAMES:
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex((stack.host, getattr(stack, f"{name}_port"))) == 0:
                return False
    return True


def run(keep=False, log=print):
    """Run every check on a fresh stack; return the timings (seconds)."""
    dir = tempfile.mkdtemp(prefix="ms-", dir="/tmp")
    t = {}
    stack = None
    try:
        t0 = time.monotonic()
        stack = mailstack.start(dir, MAILBOXES)
        t["start"] = time.monotonic() - t0

        # 1. MX port, no AUTH: NFP Austria -> gateway (with a +detail)
        subj1 = f"selftest smtp {uuid.uuid4().hex[:8]}"
        t0 = time.monotonic()
        refused = stack.send(NFP_AT, ["gateway+at@nfp-network.example"],
                             make_eml(NFP_AT, GATEWAY, subj1))
        assert refused == {}, refused
        got = stack.wait_for(GATEWAY, MAILBOXES[GATEWAY], 1, timeout=10)
        t["smtp_delivery"] = time.monotonic() - t0
        assert [subject_of(m) for m in got] == [subj1], [subject_of(m) for m in got]

        # 2. Submission: STARTTLS + AUTH as the Secretariat -> NFP Austria
        subj2 = f"selftest submission {uuid.uuid4().hex[:8]}"
        t0 = time.monotonic()
        stack.send(BSMU, [NFP_AT], make_eml(BSMU, NFP_AT, subj2), port="submission",
                   auth=(BSMU, MAILBOXES[BSMU]))
        got = stack.wait_for(NFP_AT, MAILBOXES[NFP_AT], 1, timeout=10)
        t["submission_delivery"] = time.monotonic() - t0
        assert [subject_of(m) for m in got] == [subj2]
        # both arrived, and only there (fetch: uid, bytes)
        fetched = stack.fetch(GATEWAY, MAILBOXES[GATEWAY])
        assert len(fetched) == 1 and subject_of(fetched[0][1]) == subj1, fetched
        assert stack.fetch(BSMU, MAILBOXES[BSMU]) == []
        # implicit TLS submission too
        stack.send(GATEWAY, [BSMU], make_eml(GATEWAY, BSMU, "selftest submissions"),
                   port="submissions", auth=(GATEWAY, MAILBOXES[GATEWAY]))
        stack.wait_for(BSMU, MAILBOXES[BSMU], 1, timeout=10)

        # 3. No open relay, no unauthenticated submission
        eml = make_eml("intruder@elsewhere.example", GATEWAY, "should be refused")
        for rcpt in ("someone@elsewhere.example", GATEWAY):
            expect_refused(lambda: stack.send("intruder@elsewhere.example", [rcpt], eml,
                                              port="submission"),
                           554, f"submission without AUTH to {rcpt}")
        expect_refused(lambda: stack.send("intruder@elsewhere.example",
                                          ["someone@elsewhere.example"], eml, port="smtp"),
                       554, "MX port relaying to another domain")
        expect_refused(lambda: stack.send(BSMU, ["someone@elsewhere.example"], eml,
                                          port="submission", auth=(BSMU, MAILBOXES[BSMU])),
                       554, "authenticated submission to a domain the stack does not hold")
        check_submission_needs_tls_and_auth(stack)

        # 4. Unknown user refused at RCPT (no bounce)
        why = expect_refused(lambda: stack.send(NFP_AT, ["nobody@nfp-network.example"], eml),
                             550, "RCPT to an unknown user")
        assert "User unknown" in why, why

        # 5. IMAP on 127.0.0.2 without STARTTLS: LOGINDISABLED
        greeting = check_logindisabled(stack)

        # 6. IDLE sees a delivery within 2 s
        subj3 = "selftest idle"
        t["idle"] = idle_latency(stack, GATEWAY, MAILBOXES[GATEWAY], lambda: stack.send(
            NFP_AT, [GATEWAY], make_eml(NFP_AT, GATEWAY, subj3)))
        assert stack.count(GATEWAY, MAILBOXES[GATEWAY]) == 2

        # 7. APPEND into a new folder, folders(), non-ASCII names
        stack.append(GATEWAY, MAILBOXES[GATEWAY], "Quarantine",
                     make_eml(NFP_AT, GATEWAY, "selftest append"))
        stack.append(GATEWAY, MAILBOXES[GATEWAY], "Archiv/Entwürfe",
                     make_eml(NFP_AT, GATEWAY, "selftest append 2"))
        folders = stack.folders(GATEWAY, MAILBOXES[GATEWAY])
        for name in ("INBOX", "Quarantine", "Archiv/Entwürfe"):
            assert name in folders, folders
        assert [subject_of(b) for _, b in stack.fetch(GATEWAY, MAILBOXES[GATEWAY],
                                                      "Quarantine")] == ["selftest append"]
        assert len(stack.fetch(GATEWAY, MAILBOXES[GATEWAY], "Archiv/Entwürfe")) == 1

        # 8. stop, restart on the same DIR (mail kept), stop
        t0 = time.monotonic()
        stopped = stack.stop()
        t["stop"] = time.monotonic() - t0
        assert stopped, "stop found no process"
        assert mailstack.processes_of(dir) == [], mailstack.processes_of(dir)
        assert ports_closed(stack), "a port still answers after stop"
        t0 = time.monotonic()
        again = mailstack.start(dir)
        t["restart"] = time.monotonic() - t0
        assert again.smtp_port == stack.smtp_port  # the same ports while they are free
        assert stack.count(GATEWAY, MAILBOXES[GATEWAY]) == 2
        stack = again
        t0 = time.monotonic()
        stack.stop()
        t["stop_again"] = time.monotonic() - t0
        left = mailstack.processes_of(dir)
        assert left == [], f"processes of {dir} left after stop: {left}"
        stack = None
        log(f"{dir}: ok  start {t['start']:.3f} s  stop {t['stop']:.3f} s  "
            f"restart {t['restart']:.3f} s  stop {t['stop_again']:.3f} s  "
            f"delivery smtp {t['smtp_delivery'] * 1000:.0f} ms  "
            f"submission {t['submission_delivery'] * 1000:.0f} ms  "
            f"idle EXISTS {t['idle'] * 1000:.0f} ms")
        t["dir"] = dir
        t["greeting_127.0.0.2"] = greeting
        return t
    finally:
        if stack is not None:
            mailstack.stop(dir)
        if not keep:
            shutil.rmtree(dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=1, help="runs one after the other")
    ap.add_argument("--parallel", type=int, default=1, help="stacks at the same time")
    ap.add_argument("--keep", action="store_true", help="keep DIR (stopped) for a look")
    a = ap.parse_args()
    failures = 0
    for _ in range(a.repeat):
        with concurrent.futures.ThreadPoolExecutor(a.parallel) as pool:
            futures = [pool.submit(run, a.keep) for _ in range(a.parallel)]
            for fut in futures:
                try:
                    fut.result()
                except Exception as e:  # noqa: BLE001
                    failures += 1
                    print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
