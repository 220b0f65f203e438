"""Crash and failure scenarios of the daemon (see harness.py).

The crash matrix aborts the real `nfp-gateway run` at each `crash_point`
stage (NFP_GATEWAY_CRASH_AT) and restarts it; the other scenarios put a TCP
proxy (`Proxy`, below) between the gateway and Postfix's submission port or
Dovecot's IMAPS port, to hold, refuse or cut connections. Each one then waits
until the daemon has settled (no outbox row pending or sending, Postfix's
queue empty) and checks that every inbound message was stored once and filed
once, and every outgoing mail arrived exactly once (matched by Message-ID to
its outbox row) -- except in the documented in-doubt window, where the
server accepted a mail and the process died before recording it.
"""

from __future__ import annotations

import collections
import email
import os
import re
import signal
import socket
import struct
import threading
import time
from pathlib import Path

from harness import Failure, Net, check, mm

BODY_AT = ("Sehr geehrte Damen und Herren,\n\nwir ersuchen um Unterstützung bei der Schulung unserer "
           "Grenzpolizei am Grenzübergang Nickelsdorf.\n\nMit freundlichen Grüßen\n")
BODY_FR = ("Madame, Monsieur,\n\nnous vous prions de nous transmettre les informations relatives aux "
           "contrôles douaniers au point de passage de Nickelsdorf.\n\nCordialement\n")
BODY_DE = ("Sehr geehrte Damen und Herren,\n\nwir ersuchen um Unterstützung bei der Ausbildung von "
           "Zollbeamten in der Dokumentenprüfung.\n\nMit freundlichen Grüßen\n")
BODY_IT = ("Gentili colleghi,\n\nchiediamo assistenza per la formazione del personale di frontiera "
           "sul controllo dei documenti di viaggio.\n\nCordiali saluti\n")


# --------------------------------------------------------------------------- a TCP proxy


class _Conn:
    """One proxied connection: a client socket, an upstream socket, two pump threads."""

    def __init__(self, proxy: "Proxy", n: int, client: socket.socket, server: socket.socket):
        self.proxy, self.n = proxy, n
        self.client, self.server = client, server
        self.c2s = self.s2c = 0
        self.last = time.monotonic()
        self.closed = False
        self.pumps = 2
        self.lock = threading.Lock()
        # SMTP watch (client -> server): plaintext until STARTTLS, then TLS records.
        self.tls = False
        self.plain = b""
        self.records = b""
        self.big_seen = False
        self.held: bytearray | None = None

    def start(self) -> None:
        threading.Thread(target=self._pump, args=(self.client, self.server, "c2s"), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.server, self.client, "s2c"), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        why = f"{direction} eof"
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self.lock:  # not held while sending: cut() never waits on a full buffer
                    self.last = time.monotonic()
                    out, cut = (self._c2s(data) if direction == "c2s" else self._s2c(data))
                if out:
                    dst.sendall(out)
                if cut:
                    why = "cut"
                    self.cut()
                    break
        except OSError as e:
            why = f"{direction} {e.__class__.__name__}"
        finally:
            self.close(why)

    def _c2s(self, data: bytes) -> tuple[bytes, bool]:
        self.c2s += len(data)
        if self.held is not None:
            self.held += data
            return b"", False
        if not self.tls and not self.proxy.hold_smtp_body:
            return data, False
        # Holds the end of the first DATA phase: Postfix never sees the final
        # "\r\n.\r\n", so it never accepts the mail. Under TLS the commands are
        # not readable, but lettre writes the message body in one write (TLS
        # records of up to 16 KiB) and then "\r\n.\r\n" in a write of its own
        # (a record of 5 bytes of content): the first small application-data
        # record after a large one is the end of the body or the final dot.
        out = bytearray()
        if not self.tls:
            self.plain += data
            i = self.plain.upper().find(b"STARTTLS\r\n")
            if i < 0:
                return data, False
            self.tls = True
            out += data[:len(data) - (len(self.plain) - (i + 10))]
            data = self.plain[i + 10:]
            self.plain = b""
        self.records += data
        while len(self.records) >= 5:
            kind, length = self.records[0], int.from_bytes(self.records[3:5], "big")
            if len(self.records) < 5 + length:
                break
            record, self.records = self.records[:5 + length], self.records[5 + length:]
            if kind == 23 and length > 256:
                self.big_seen = True
            elif kind == 23 and self.big_seen and self.proxy.hold_smtp_body:
                self.proxy.hold_smtp_body = False  # only the first transaction
                self.held = bytearray(record + self.records)
                self.records = b""
                self.proxy._event("held", self.n)
                break
            out += record
        return bytes(out), False

    def _s2c(self, data: bytes) -> tuple[bytes, bool]:
        p = self.proxy
        if p.cut_at is not None and p.cuts_left > 0 and self.s2c + len(data) >= p.cut_at:
            data = data[:max(0, p.cut_at - self.s2c)]
            self.s2c += len(data)
            p.cuts_left -= 1
            p.refuse_next += p.refuse_after_cut
            p._event("cut", self.n)
            return data, True
        self.s2c += len(data)
        return data, False

    def cut(self) -> None:
        """Breaks the connection both ways with a reset, as a failing network does."""
        with self.lock:
            for s in (self.client, self.server):
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.shutdown(socket.SHUT_RD)  # wakes the pump reading it; close() resets
                except OSError:
                    pass

    def close(self, why: str) -> None:
        with self.lock:
            first = not self.closed
            self.closed = True
            self.pumps -= 1
            last = self.pumps == 0
        if first:
            for s in (self.client, self.server):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.proxy._event(f"closed: {why}", self.n)
        if last:
            self.client.close()
            self.server.close()


class Proxy:
    """A TCP proxy on 127.0.0.1 (an ephemeral port) to target_port, raw bytes
    both ways, so TLS passes through untouched. Knobs (set any time):
      mode = "pass" | "refuse" | "stall"
                                 refuse: every connection is accepted and reset at once;
                                 stall: accepted and left unanswered (until close())
      refuse_next = N            reset the next N connections
      cut_at, cuts_left          reset a connection once the server has sent it cut_at bytes
                                 (cuts_left times); refuse_after_cut is added to refuse_next
      hold_smtp_body = True      hold the end of the first SMTP DATA phase (see _Conn._c2s)
    `events` records (monotonic time, what, connection number)."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.listener.getsockname()[1]
        self.mode = "pass"
        self.refuse_next = 0
        self.cut_at: int | None = None
        self.cuts_left = 0
        self.refuse_after_cut = 0
        self.hold_smtp_body = False
        self.conns: list[_Conn] = []
        self.stalled: list[socket.socket] = []
        self.events: list[tuple[float, str, int | None]] = []
        self.cond = threading.Condition()
        self.n = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _event(self, what: str, n: int | None = None) -> None:
        with self.cond:
            self.events.append((time.monotonic(), what, n))
            self.cond.notify_all()

    def times(self, what: str) -> list[float]:
        with self.cond:
            return [t for t, w, _ in self.events if w.startswith(what)]

    def wait_event(self, what: str, count: int = 1, timeout: float = 20) -> list[float]:
        """Waits until `count` events starting with `what` happened; their times."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [t for t, w, _ in self.events if w.startswith(what)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Failure(f"proxy: {len(found)} of {count} {what!r} events in {timeout}s; "
                                  f"events {self.describe()}")
                self.cond.wait(left)

    def describe(self) -> str:
        t0 = self.events[0][0] if self.events else 0
        return ", ".join(f"{t - t0:.2f}s {w}#{n}" for t, w, n in self.events)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.cond:
                self.n += 1
                n, mode = self.n, self.mode
                if mode == "pass" and self.refuse_next > 0:
                    self.refuse_next -= 1
                    mode = "refuse"
                if mode == "stall":
                    self.stalled.append(client)
            if mode == "stall":
                self._event("stalled", n)
                continue
            if mode == "refuse":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                self._event("refused", n)
                continue
            try:
                server = socket.create_connection(self.target, timeout=10)
                server.settimeout(None)
            except OSError as e:
                client.close()
                self._event(f"upstream failed: {e}", n)
                continue
            conn = _Conn(self, n, client, server)
            with self.cond:
                self.conns.append(conn)
            self._event("accepted", n)
            conn.start()

    def live(self) -> list[_Conn]:
        with self.cond:
            return [c for c in self.conns if not c.closed]

    def cut_all(self) -> int:
        live = self.live()
        for c in live:
            self._event("cut", c.n)
            c.cut()
        return len(live)

    def wait_quiet(self, quiet: float = 0.6, timeout: float = 20) -> _Conn:
        """Waits until exactly one connection is open and has been silent for `quiet` s."""
        deadline = time.monotonic() + timeout
        while True:
            live = self.live()
            if len(live) == 1 and time.monotonic() - live[0].last >= quiet:
                return live[0]
            if time.monotonic() > deadline:
                raise Failure(f"proxy: no single quiet connection in {timeout}s; events {self.describe()}")
            time.sleep(0.05)

    def close(self) -> None:
        self.listener.close()
        for c in list(self.conns):
            c.cut()
        for s in self.stalled:
            s.close()


# --------------------------------------------------------------------------- helpers


def set_port(net: Net, section: str, port: int) -> None:
    """Points the gateway's [imap] or [smtp] section at another port of 127.0.0.1."""
    text = net.config.read_text()
    start = text.index(f"\n[{section}]\n")
    m = re.compile(r"^port = \d+$", re.M).search(text, start)
    nxt = text.find("\n[", start + 1)
    check(m is not None and (nxt < 0 or m.start() < nxt), f"no port in [{section}]")
    net.config.write_text(text[:m.start()] + f"port = {port}" + text[m.end():])


def gateway_login(net: Net) -> tuple[str, str]:
    e = net.gateway_persona.email
    return e, net.passwords[e]


def gateway_total(net: Net) -> int:
    """Messages in the gateway's INBOX, Processed and Quarantine (the last two may not exist yet)."""
    user, pw = gateway_login(net)
    total = 0
    for folder in ("INBOX", "Processed", "Quarantine"):
        try:
            total += net.stack.count(user, pw, folder)
        except Exception:
            pass
    return total


def deliver(net: Net, *emls: bytes, timeout: float = 20) -> None:
    """Sends each message to the gateway's mailbox and waits until Dovecot has
    it before the next, so that their UIDs follow this order."""
    for eml in emls:
        before = gateway_total(net)
        net.send(eml)
        deadline = time.monotonic() + timeout
        while gateway_total(net) <= before:
            check(time.monotonic() < deadline, "a message did not reach the gateway's inbox")
            time.sleep(0.02)


def two_messages(net: Net) -> list[bytes]:
    """An assistance request from AT (forward to the Secretariat, acknowledgement
    to AT) and an information request from FR to AT (forward to AT,
    acknowledgement to FR): four outgoing mails."""
    return [net.mail_from("AT", "[HILFEERSUCHEN] Schulung der Grenzpolizei", BODY_AT),
            net.mail_from("FR", "[DEMANDE D'INFORMATION] [AT] Contrôles douaniers", BODY_FR)]


EXPECTED_TWO = {"secretariat": 1, "AT": 2, "FR": 1}


def postfix_queue(net: Net) -> list[str]:
    """Files in Postfix's queue: mail accepted (or being received) and not yet delivered."""
    q = Path(net.stack.dir) / "postfix-queue"
    found = []
    for d in ("maildrop", "incoming", "active", "deferred", "hold"):
        for root, _, files in os.walk(q / d):
            found += [os.path.join(root, f) for f in files]
    return found


def settle(net: Net, inbound: int, outbox: int, timeout: float = 20) -> None:
    """Waits until `inbound` messages are stored, `outbox` mails queued, none of
    them pending or being sent, and Postfix has delivered everything it took."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            n_in = net.rows("SELECT COUNT(*) FROM inbound")[0][0]
            states = dict(net.rows("SELECT state, COUNT(*) FROM outbox GROUP BY state"))
        except Exception:  # the database may not exist yet
            n_in, states = 0, {}
        busy = states.get("pending", 0) + states.get("sending", 0)
        queue = postfix_queue(net)
        if n_in >= inbound and sum(states.values()) >= outbox and not busy and not queue:
            return
        if time.monotonic() > deadline:
            raise Failure(f"not settled in {timeout}s: {n_in}/{inbound} stored, outbox {states} "
                          f"(want {outbox}), Postfix queue {len(queue)}; log:\n{net.tail()}")
        time.sleep(0.1)


def message_id(raw: bytes) -> str:
    msg = email.message_from_bytes(raw)
    return (msg["Message-ID"] or "").strip().strip("<>")


def persona_of(net: Net, address: str) -> str:
    for pid, p in net.w.p.items():
        if p.email.lower() == address.lower():
            return pid
    raise Failure(f"no persona has the address {address}")


def check_delivered(net: Net, expected: dict[str, int], in_doubt_ok: set[int] = frozenset()) -> dict:
    """Every outbox row is in its recipient's INBOX exactly once (matched by
    Message-ID), nothing else is in any mailbox but the gateway's, and each
    recipient got `expected[pid]` distinct mails. Rows in `in_doubt_ok` must be
    there exactly twice (the documented in-doubt resend). Returns
    {pid: [(uid, raw, message_id)]}."""
    rows = net.rows("SELECT id, recipient_email, message_id, state FROM outbox ORDER BY id")
    by_mid = {mid.strip("<>"): (oid, rcpt, state) for oid, rcpt, mid, state in rows}
    check(all(state == "sent" for _, _, state in by_mid.values()), f"outbox not all sent: {rows}")
    got = {}
    seen = {net.gateway_persona.email.lower()}
    for pid, p in net.w.p.items():  # one persona per address (lookalike-FR shares FR's)
        if p.email.lower() in seen:
            continue
        seen.add(p.email.lower())
        mails = [(uid, raw, message_id(raw)) for uid, raw in net.stack.fetch(p.email, net.passwords[p.email])]
        want = {mid for mid, (_, rcpt, _) in by_mid.items() if rcpt.lower() == p.email.lower()}
        counts = collections.Counter(mid for _, _, mid in mails)
        check(set(counts) == want, f"{pid}'s mailbox holds Message-IDs {sorted(counts)}, the outbox sent it {sorted(want)}")
        check(len(want) == expected.get(pid, 0), f"{pid} got {len(want)} distinct mails, want {expected.get(pid, 0)}")
        for mid, n in counts.items():
            oid = by_mid[mid][0]
            if oid in in_doubt_ok:
                check(n == 2, f"outbox #{oid} (in doubt: accepted by the server before the crash) arrived "
                              f"{n} times at {pid}, want the original and its resend (2)")
            else:
                check(n == 1, f"outbox #{oid} <{mid}> arrived {n} times at {pid}")
        if mails:
            got[pid] = mails
    return got


def check_gateway_mailbox(net: Net, emls: list[bytes]) -> None:
    """The gateway's INBOX is empty and Processed holds each of `emls` once."""
    check(net.gateway_folder("INBOX") == 0, f"the gateway's INBOX holds {net.gateway_folder('INBOX')} messages")
    check(net.gateway_folder("Quarantine") == 0, "something was quarantined")
    user, pw = gateway_login(net)
    filed = collections.Counter(message_id(raw) for _, raw in net.stack.fetch(user, pw, "Processed"))
    want = collections.Counter(message_id(eml) for eml in emls)
    check(filed == want, f"Processed holds {dict(filed)}, want each of {sorted(want)} once")


def check_stored_once(net: Net, count: int) -> None:
    rows = net.rows("SELECT id, raw_sha256, verdict, imap_uid FROM inbound ORDER BY id")
    check(len(rows) == count, f"{len(rows)} inbound rows, want {count}: {rows}")
    check(len({r[1] for r in rows}) == count, f"a raw message stored twice: {rows}")
    check(all(r[2] == "accepted" for r in rows), f"verdicts {rows}")
    per = net.rows("SELECT inbound_id, COUNT(*) FROM outbox GROUP BY inbound_id")
    check(len(per) == count and all(n == 2 for _, n in per),
          f"outgoing mail per message (want a forward and an acknowledgement each): {per}")
    transfers = net.rows("SELECT outbox_id, COUNT(*) FROM audit WHERE event = 'transfer' GROUP BY outbox_id")
    check(len(transfers) == 2 * count and all(n == 1 for _, n in transfers), f"audited transfers {transfers}")


def log_lines(net: Net) -> list[str]:
    """The gateway's log, without colours."""
    return re.sub(r"\x1b\[[0-9;]*m", "", net.log.read_text(errors="replace")).splitlines()


def imap_retry_waits(net: Net) -> list[float]:
    """The `retry_in` of each "IMAP session ended" in the log, in seconds."""
    waits = []
    for line in log_lines(net):
        m = re.search(r"IMAP session ended.*retry_in=([\d.]+)(ms|s)\b", line)
        if m:
            waits.append(float(m.group(1)) / (1000 if m.group(2) == "ms" else 1))
    return waits


def check_clean_stop(net: Net) -> None:
    code = net.stop_gateway()
    check(code == 0, f"SIGTERM: exit status {code}; log:\n{net.tail()}")


# --------------------------------------------------------------------------- 1. the crash matrix


def _crash(stage: str):
    def scenario() -> None:
        net = Net(f"crash-{stage}")
        proxy = Proxy(net.stack.submission_port)
        try:
            if stage in ("after_fetch", "after_store", "after_move"):
                # The outbox sender runs beside the inbox watcher: left alone it may
                # have a mail accepted by Postfix just before the abort and not yet
                # recorded (the in-doubt window, sent twice). These stages are about
                # the inbox, so SMTP answers nothing until the restart.
                set_port(net, "smtp", proxy.port)
                proxy.mode = "stall"
            msgs = two_messages(net)
            deliver(net, *msgs)
            net.start_gateway(env={"NFP_GATEWAY_CRASH_AT": stage})
            code = net.wait_exit(30)
            check(code == -signal.SIGABRT, f"exit status {code}, want SIGABRT; log:\n{net.tail()}")
            check(f"crash injected at {stage}" in net.tail(), f"no crash message; log:\n{net.tail()}")

            # Where the process died.
            inbound = net.rows("SELECT id, imap_state FROM inbound ORDER BY id")
            outbox = net.rows("SELECT id, state FROM outbox ORDER BY id")
            sending = [oid for oid, state in outbox if state == "sending"]
            at_crash = f"inbound {inbound}, outbox {outbox}"
            if stage == "after_fetch":
                check(inbound == [] and outbox == [], f"stored before the crash: {at_crash}")
                check(net.gateway_folder("INBOX") == 2, "a message left the inbox")
            elif stage == "after_store":
                check(len(inbound) == 1 and inbound[0][1] == "stored", f"{at_crash}")
                check(len(outbox) == 2, f"{at_crash}")
                check(net.gateway_folder("INBOX") == 2, "a message left the inbox before the move")
            elif stage == "after_move":
                # The two arrived together: fetched, judged and stored as one
                # batch, then moved with one command, before their rows say so.
                check([state for _, state in inbound] == ["stored", "stored"], f"{at_crash}")
                check(net.gateway_folder("INBOX") == 0 and net.gateway_folder("Processed") == 2,
                      "the batch is not moved")
            else:
                # A batch of mail is claimed at once; the first of it is at the SMTP stage.
                check(len(sending) >= 1, f"want mail claimed for sending at the crash: {at_crash}")
                check(net.rows("SELECT * FROM smtp_attempt") == [], "an attempt was recorded")
                check(not any(s == "sent" for _, s in outbox), f"{at_crash}")
            if stage == "after_smtp":
                # The server took the mail: let it arrive before the restart sends it again.
                rcpt, mid = net.rows("SELECT recipient_email, message_id FROM outbox WHERE id = ?", sending[0])[0]
                pid = persona_of(net, rcpt)
                first = net.wait_mail(pid, 1)
                check([message_id(m.raw) for m in first] == [mid.strip("<>")], "the accepted mail did not arrive")
            if stage == "before_smtp":
                check(not postfix_queue(net), "Postfix got mail before the SMTP stage")

            if stage in ("after_fetch", "after_store", "after_move"):
                check(all(s in ("pending", "sending") for _, s in outbox), f"sent before the restart: {at_crash}")
                check(not postfix_queue(net), "Postfix got mail before the restart")
            proxy.mode = "pass"
            net.start_gateway()
            settle(net, inbound=2, outbox=4)
            check_stored_once(net, 2)
            in_doubt = net.rows("SELECT outbox_id FROM smtp_attempt WHERE outcome = 'in_doubt'")
            if stage in ("before_smtp", "after_smtp"):
                check(in_doubt == [(sending[0],)], f"in-doubt attempts {in_doubt}, want one for #{sending[0]}")
                check("will be sent again" in net.log.read_text(), "no warning about the in-doubt mail")
            elif stage == "after_fetch":
                check(in_doubt == [], f"in-doubt attempts {in_doubt}")
            got = check_delivered(net, EXPECTED_TWO, {sending[0]} if stage == "after_smtp" else set())
            if stage == "after_smtp":
                # The resend is the stored message itself: same Message-ID (checked
                # above), and the same bytes below the headers Postfix added.
                copies = [raw for _, raw, m in got[pid] if m == mid.strip("<>")]
                bodies = {raw.split(b"\r\n\r\n", 1)[1] for raw in copies}
                check(len(copies) == 2 and len(bodies) == 1, "the two copies of the in-doubt mail differ")
            for pid, mails in got.items():
                for _, raw, _ in mails:
                    r = net.open(raw)
                    check(r.decrypted and r.signed_by_gateway, f"a mail to {pid} does not decrypt/verify: {r.status}")
            # A crash between the MOVE and its record (after_move) must not leave
            # a row 'stored' for good: once the inbox is empty, all are filed.
            states = net.wait_rows("SELECT id FROM inbound WHERE imap_state = 'filed'", 2, 10)
            check(len(states) == 2, f"rows still 'stored': {net.rows('SELECT id, imap_state FROM inbound')}")
            check_gateway_mailbox(net, msgs)
            check_clean_stop(net)
        finally:
            proxy.close()
            net.close()

    scenario.__name__ = f"crash_{stage}"
    scenario.__doc__ = f"Abort (SIGABRT) at {stage}, restart: every message stored and delivered once."
    return scenario


crash_after_fetch = _crash("after_fetch")
crash_after_store = _crash("after_store")
crash_after_move = _crash("after_move")
crash_before_smtp = _crash("before_smtp")
crash_after_smtp = _crash("after_smtp")


# --------------------------------------------------------------------------- 2. kill -9 mid-SMTP


def crash_during_smtp() -> None:
    """SIGKILL while Postfix waits for the end of DATA: Postfix drops the
    unfinished mail, the restarted gateway sends it again, once."""
    net = Net("crash-smtp")
    proxy = Proxy(net.stack.submission_port)
    try:
        set_port(net, "smtp", proxy.port)
        proxy.hold_smtp_body = True
        msgs = two_messages(net)
        deliver(net, *msgs)
        net.start_gateway()
        proxy.wait_event("held", timeout=20)
        sending = net.wait_rows("SELECT id FROM outbox WHERE state = 'sending' ORDER BY id", 1, 5)
        check(len(sending) >= 1, f"outbox while SMTP is held: {net.rows('SELECT id, state FROM outbox')}")
        check(net.rows("SELECT * FROM smtp_attempt") == [], "an attempt was recorded")
        net.proc.kill()
        check(net.wait_exit(10) == -signal.SIGKILL, "the gateway did not die by SIGKILL")
        proxy.wait_event("closed", timeout=10)
        # Postfix forgets the unfinished transaction.
        deadline = time.monotonic() + 10
        while postfix_queue(net):
            check(time.monotonic() < deadline, f"Postfix keeps {postfix_queue(net)}")
            time.sleep(0.05)
        for pid in EXPECTED_TWO:
            check(net.count(pid) == 0, f"{pid} got mail from the interrupted transaction")
        plog = Path(net.stack.logs["postfix"]).read_text(errors="replace")
        check(re.search(r"lost connection after DATA \(\d+ bytes\)", plog) is not None,
              "Postfix did not see the transaction broken off inside DATA")

        net.start_gateway()  # through the proxy, now passing everything
        settle(net, inbound=2, outbox=4)
        check_stored_once(net, 2)
        in_doubt = net.rows("SELECT outbox_id FROM smtp_attempt WHERE outcome = 'in_doubt'")
        check(in_doubt == [sending[0]], f"in-doubt attempts {in_doubt}, want one for #{sending[0][0]}")
        check_delivered(net, EXPECTED_TWO)
        check_gateway_mailbox(net, msgs)
        check_clean_stop(net)
    finally:
        proxy.close()
        net.close()


# --------------------------------------------------------------------------- 3. SMTP down, then back


def smtp_down_then_back() -> None:
    """Submission refuses every connection: the messages are stored and filed,
    their mail waits in the outbox (attempts counted, the error recorded),
    nothing is given up; when submission is back, each mail goes out once, in
    the order it was queued (README: "oldest first"; send_due: "the rest
    waits, so that order is kept").

    The retry wait (6 s) is longer than the reconnection backoff of the first
    rounds (~1 s, ~2 s), as in any real schedule (the default starts at 1 min):
    the outage lasts three refused connections."""
    net = Net("smtp-down", retry=tuple(["6s"] * 10))
    proxy = Proxy(net.stack.submission_port)
    try:
        set_port(net, "smtp", proxy.port)
        proxy.mode = "refuse"
        msgs = two_messages(net) + [net.mail_from("DE", "[HILFEERSUCHEN] Ausbildung von Zollbeamten", BODY_DE)]
        deliver(net, *msgs)
        net.start_gateway()
        filed = net.wait_rows("SELECT id FROM inbound WHERE imap_state = 'filed'", 3, 20)
        check(len(filed) == 3, f"messages not filed while SMTP is down; log:\n{net.tail()}")
        proxy.wait_event("refused", 3, timeout=15)
        net.wait_rows("SELECT id FROM smtp_attempt", 3, 5)  # the third refusal recorded
        rows = net.rows("SELECT id, state, attempts, last_error FROM outbox ORDER BY id")
        check(len(rows) == 6, f"outbox {rows}")
        check(all(state in ("pending", "sending") for _, state, _, _ in rows), f"outbox while SMTP is down: {rows}")
        tried = [r for r in rows if r[2] > 0]
        check(sum(r[2] for r in rows) == 3 and all(r[1] == "pending" and r[3] for r in tried),
              f"want the three refused attempts counted and their error recorded: {rows}")
        check(net.rows("SELECT COUNT(*) FROM smtp_attempt WHERE outcome IN ('sent', 'permanent')")[0][0] == 0,
              "sent or given up while down")
        check(not postfix_queue(net), "mail went out")
        check_gateway_mailbox(net, msgs)
        check(len(proxy.times("refused")) == 3, f"events {proxy.describe()}")
        proxy.mode = "pass"

        settle(net, inbound=3, outbox=6, timeout=20)
        check_stored_once(net, 3)
        rows = net.rows("SELECT id, state, attempts, last_error FROM outbox ORDER BY id")
        check(all(s == "sent" and e == "" for _, s, _, e in rows), f"outbox after recovery {rows}")
        check(net.rows("SELECT COUNT(*) FROM smtp_attempt WHERE outcome IN ('permanent', 'in_doubt')")[0][0] == 0,
              "gave up or in doubt")
        got = check_delivered(net, {"secretariat": 2, "AT": 2, "FR": 1, "DE": 1})
        # Order: the gateway sent everything in outbox order, and the server
        # received it in that order (Postfix's cleanup logs each message as it
        # accepts it). Arrival in the mailboxes is left out: Postfix delivers
        # to LMTP in parallel and may swap two mails it accepted 1 ms apart.
        ids = {mid.strip("<>"): oid for oid, mid in net.rows("SELECT id, message_id FROM outbox")}
        arrival = {pid: [ids[mid] for _, _, mid in mails] for pid, mails in got.items()}  # by UID, for the report
        log = Path(net.stack.info["logs"]["postfix"]).read_text(errors="replace")
        accepted = [ids[m] for m in re.findall(r"cleanup\[\d+\]: \w+: message-id=<([^>]+)>", log) if m in ids]
        check(sorted(accepted) == sorted(ids.values()), f"the server's log names {accepted} of {sorted(ids.values())}")
        sent = [oid for (oid,) in net.rows("SELECT outbox_id FROM smtp_attempt WHERE outcome = 'sent' ORDER BY id")]
        attempts = "\n".join(f"  attempt {a}: outbox #{o} {at} {outcome} {resp[:60]}" for a, o, at, outcome, resp in
                             net.rows("SELECT id, outbox_id, at, outcome, response FROM smtp_attempt ORDER BY id"))
        check(sent == sorted(sent) and accepted == sorted(accepted),
              f"out of order: sent as outbox {sent}, accepted by the server as {accepted}; arrival per mailbox "
              f"{arrival}\n{attempts}")
        check_clean_stop(net)
    finally:
        proxy.close()
        net.close()


def new_mail_ends_the_senders_pause() -> None:
    """After six refused connections the sender pauses for 16-32 s (its
    backoff doubles from 1 s, each pause between half and all of it). Submission is
    back, and a new message arrives: its mail goes out at once, not when the
    pause would have ended (issue 17: a slow start of the submission server
    used to delay everything queued afterwards by the pause, up to 300 s).

    The order of events, not a duration, is the evidence: the first
    connection that reached the server came before the earliest time the
    pause could have ended."""
    net = Net("sender-wake", retry=tuple(["10m"] * 3))
    proxy = Proxy(net.stack.submission_port)
    try:
        set_port(net, "smtp", proxy.port)
        proxy.mode = "refuse"
        first = net.mail_from("AT", "[HILFEERSUCHEN] Schulung der Grenzpolizei", BODY_AT)
        deliver(net, first)
        net.start_gateway()
        refused = proxy.wait_event("refused", 6, timeout=120)
        proxy.mode = "pass"
        deliver(net, net.mail_from("DE", "[HILFEERSUCHEN] Ausbildung von Zollbeamten", BODY_DE))
        # Both messages' mail (forwards and acknowledgements) goes out.
        settle(net, inbound=2, outbox=4, timeout=120)
        accepted = proxy.times("accepted")
        check(accepted, f"no connection reached the server: {proxy.describe()}")
        earliest_end = refused[5] + 16.0
        check(accepted[0] < earliest_end,
              f"the sender waited out its pause: first connection {accepted[0] - refused[5]:.1f}s after the sixth "
              f"refusal (the pause ends 16-32 s after it); events {proxy.describe()}")
        check(len(proxy.times("refused")) == 6, f"more refusals than the backoff allows: {proxy.describe()}")
        check_delivered(net, {"secretariat": 2, "AT": 1, "DE": 1})
        check_clean_stop(net)
    finally:
        proxy.close()
        net.close()


# --------------------------------------------------------------------------- 4. IMAP cut mid-FETCH


def imap_cut_mid_fetch() -> None:
    """The IMAP connection breaks 1 MiB into a 3 MiB message, the next
    connection is refused: the gateway reconnects with backoff (~1 s, then
    doubled) and files every message once, none skipped or truncated."""
    net = Net("imap-cut")
    proxy = Proxy(net.stack.imaps_port)
    try:
        set_port(net, "imap", proxy.port)
        big = os.urandom(3 << 20)
        attachment = mm.attachment(big, "messdaten.bin", "application/octet-stream")
        msgs = [net.mail_from("AT", "[HILFEERSUCHEN] Schulung der Grenzpolizei", BODY_AT),
                net.mail_from("FR", "[DEMANDE D'INFORMATION] [AT] Contrôles douaniers", BODY_FR,
                              parts=[attachment]),
                net.mail_from("IT", "[RICHIESTA DI ASSISTENZA] Formazione", BODY_IT)]
        deliver(net, *msgs)
        proxy.cut_at, proxy.cuts_left, proxy.refuse_after_cut = 1 << 20, 1, 1
        net.start_gateway()
        cut = proxy.wait_event("cut", timeout=20)[0]
        refused = proxy.wait_event("refused", timeout=10)[0]
        again = [t for t in proxy.wait_event("accepted", 2, timeout=10) if t > refused]
        check(again, f"no reconnection after the refusal; events {proxy.describe()}")
        settle(net, inbound=3, outbox=6, timeout=30)
        check(0.45 <= refused - cut <= 1.6, f"first reconnect {refused - cut:.2f}s after the cut, want ~0.5-1 s "
                                            f"(1 s with jitter); events {proxy.describe()}")
        check(0.95 <= again[0] - refused <= 2.6, f"second reconnect {again[0] - refused:.2f}s after the refusal, "
                                                  f"want ~1-2 s (doubled); events {proxy.describe()}")
        waits = imap_retry_waits(net)
        check(len(waits) == 2 and 0.5 <= waits[0] < 1.0 and 1.0 <= waits[1] < 2.0 and waits != [1.0, 2.0],
              f"IMAP retry waits {waits}, want 1 s then 2 s, each times a jitter in [0.5, 1)")
        check_stored_once(net, 3)
        sizes = net.rows("SELECT raw_size FROM inbound ORDER BY id")
        check(sizes[1][0] > 3 << 20, f"the large message was stored with {sizes[1][0]} bytes")
        got = check_delivered(net, {"secretariat": 2, "AT": 2, "FR": 1, "IT": 1})
        # The forward of the large message carries the original, whole.
        fwd = [net.open(raw) for _, raw, _ in got["AT"]]
        fwd = [m for m in fwd if any(n.startswith("original-") for n in m.attachment_names())]
        check(len(fwd) == 1 and fwd[0].decrypted and fwd[0].signed_by_gateway, "forward of the large message")
        check(len(fwd[0].raw) > 3 << 20, f"the forward holds {len(fwd[0].raw)} bytes")
        check_gateway_mailbox(net, msgs)
        check_clean_stop(net)
    finally:
        proxy.close()
        net.close()


# --------------------------------------------------------------------------- 5. IMAP cut mid-IDLE


def imap_cut_mid_idle() -> None:
    """Every IMAP connection is reset while the gateway IDLEs; mail delivered
    meanwhile, and mail delivered after it reconnected and IDLEs again, is
    processed promptly (not after the 60 s IDLE timeout)."""
    net = Net("imap-idle")
    proxy = Proxy(net.stack.imaps_port)
    try:
        set_port(net, "imap", proxy.port)
        first, second = two_messages(net)
        third = net.mail_from("DE", "[HILFEERSUCHEN] Ausbildung von Zollbeamten", BODY_DE)
        deliver(net, first)
        net.start_gateway()
        settle(net, inbound=1, outbox=2)
        proxy.wait_quiet(0.6)  # in IDLE
        check(proxy.cut_all() == 1, "not exactly one IMAP connection")
        t_cut = time.monotonic()
        deliver(net, second)  # arrives while the gateway is without a connection
        settle(net, inbound=2, outbox=4, timeout=10)
        check(time.monotonic() - t_cut < 8, "the message delivered during the cut took too long")
        check(len(proxy.times("accepted")) == 2, f"events {proxy.describe()}")

        conn = proxy.wait_quiet(0.6)  # IDLE on the new connection
        check(proxy.cut_all() == 1, "not exactly one IMAP connection")
        reconnected = proxy.wait_event("accepted", 3, timeout=10)[2]
        check(reconnected - proxy.times("cut")[-1] < 2, f"reconnected late; events {proxy.describe()}")
        proxy.wait_quiet(0.6)  # IDLE again
        check(proxy.live()[0] is not conn, "the same connection")
        t_send = time.monotonic()
        deliver(net, third)
        settle(net, inbound=3, outbox=6, timeout=10)
        check(time.monotonic() - t_send < 5, f"new mail during IDLE took {time.monotonic() - t_send:.1f}s")
        check(len(proxy.times("accepted")) == 3, f"events {proxy.describe()}")
        ended = [line for line in log_lines(net) if "IMAP session ended" in line]
        check(len(ended) == 2 and all("error=IDLE" in line for line in ended),
              "the cuts did not end IDLE sessions:\n" + "\n".join(ended))
        waits = imap_retry_waits(net)
        check(len(waits) == 2 and all(0.5 <= w < 1.0 for w in waits),
              f"IMAP retry waits {waits}, want ~1 s (times a jitter in [0.5, 1)) after each good session")
        check_stored_once(net, 3)
        check_delivered(net, {"secretariat": 2, "AT": 2, "FR": 1, "DE": 1})
        check_gateway_mailbox(net, [first, second, third])
        check_clean_stop(net)
    finally:
        proxy.close()
        net.close()


def a_refused_recipient_fails_and_the_secretariat_is_alerted() -> None:
    """The submission server refuses a recipient for good (550 at RCPT: AT's
    address is not a mailbox of the stack): the acknowledgement to AT fails
    at once, without retries, and the Secretariat is told which mail could
    not be delivered, where, and what the server said, signed and encrypted;
    the forward to the Secretariat is delivered as usual."""
    net = Net("refused", without_mailbox=("AT",))
    try:
        net.send(net.mail_from("AT", "[HILFEERSUCHEN] Schulung der Grenzpolizei", "Sehr geehrte Damen und Herren,\n\n"
                               "wir ersuchen um Unterstuetzung bei der Schulung unserer Grenzpolizei.\n"))
        net.start_gateway()
        got = net.wait_mail("secretariat", 2)
        rows = net.wait_rows("SELECT purpose, recipient_party, state, attempts, last_error FROM outbox "
                             "WHERE state IN ('sent', 'failed') ORDER BY id", 3)
        by_purpose = {(p, party): (state, attempts, err) for p, party, state, attempts, err in rows}
        ack = by_purpose.get(("acknowledgement", "AT"))
        check(ack is not None and ack[0] == "failed" and ack[1] == 1 and "550" in ack[2],
              f"the acknowledgement: {ack}; outbox {rows}")
        attempts = net.rows("SELECT a.outcome, a.code FROM smtp_attempt a JOIN outbox o ON o.id = a.outbox_id "
                            "WHERE o.recipient_party = 'AT'")
        check(attempts == [("permanent", 550)], f"attempts to AT: {attempts}")
        alert = [m for m in got if "Delivery failure" in m.subject]
        check(len(alert) == 1 and alert[0].signed_by_gateway and alert[0].decrypted,
              f"the Secretariat's mail: {[m.subject for m in got]}")
        text = alert[0].text()
        at = net.w.p["AT"]
        check(at.email in text and "550" in text and "Delivery attempts: 1" in text, f"the alert:\n{text}")
        check("Grenzpolizei" not in text and "Schulung" not in text, f"the alert quotes the message:\n{text}")
        forward = [m for m in got if m is not alert[0]]
        check(len(forward) == 1 and forward[0].decrypted, f"the forward: {[m.subject for m in got]}")
        check(net.rows("SELECT event FROM audit WHERE event = 'transfer_failed'") == [("transfer_failed",)],
              "no transfer_failed audit entry")
        check_clean_stop(net)
    finally:
        net.close()


SCENARIOS: list = [crash_after_fetch, crash_after_store, crash_after_move, crash_before_smtp, crash_after_smtp,
                   crash_during_smtp, smtp_down_then_back, new_mail_ends_the_senders_pause,
                   a_refused_recipient_fails_and_the_secretariat_is_alerted,
                   imap_cut_mid_fetch, imap_cut_mid_idle]
