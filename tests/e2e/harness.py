"""The daemon end to end, on real parts: GnuPG-made mail from the fixture
network's personas, sent by SMTP to a private Postfix, delivered by Dovecot
to the gateway's mailbox; the real `nfp-gateway run` reading it over IMAP
and sending through Postfix's submission port; recipients' mailboxes read
over IMAP and their mail decrypted and verified by GnuPG with their keys.

    net = Net("routing")            # keys, directory, mail stack, gateway.toml
    net.start_gateway()
    net.send(net.mail_from("AT", "[REQUEST] ...", "text"))
    got = net.wait_mail("secretariat", 1)   # decrypted, verified Received mails
    peer = net.add_gateway("national-at")   # a second gateway on the same stack
    net.close()

Python 3 standard library only, plus tests/fixtures and tests/mailstack;
with NFP_E2E_POSTGRES (the URL of a PostgreSQL server, as the superuser)
every gateway's store is a new database on that server instead of a SQLite
file, and the tests read it with psql (package postgresql-client).
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import signal
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.dont_write_bytecode = True
ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests" / "fixtures"), str(ROOT / "tests" / "mailstack")]
import mailmaker as mm  # noqa: E402
import make_fixtures as mf  # noqa: E402
import mailstack  # noqa: E402

BIN = Path(os.environ.get("NFP_GATEWAY_BIN", ROOT / "target" / "debug" / "nfp-gateway"))
GATEWAY = {"secretariat": "gateway", "national-at": "gateway-at"}


class Failure(AssertionError):
    pass


# The PostgreSQL server the stores are on, or None for SQLite files.
POSTGRES = os.environ.get("NFP_E2E_POSTGRES") or None


class StoreError(Exception):
    """A query psql refused (a table not there yet, say)."""


STORE_ERRORS = (sqlite3.OperationalError, StoreError)


def psql_rows(url: str, sql: str, *args) -> list[tuple]:
    """The rows of a query written for sqlite3 (? placeholders), run by psql:
    each ? becomes a psql variable (quoted by psql as a literal), and the rows
    come back as JSON, so numbers are ints, NULL is None, booleans are bools
    and bytea is bytes."""
    params, n = [], 0

    def placeholder(_):
        nonlocal n
        n += 1
        return f":'p{n}'"
    query = re.sub(r"\?", placeholder, sql)
    for i, a in enumerate(args, 1):
        if a is None or isinstance(a, (bytes, bytearray)):
            raise Failure(f"psql_rows: parameter {i} must be text or a number, got {a!r}")
        params += ["-v", f"p{i}={a}"]
    wrapped = f"SELECT COALESCE(json_agg(ROW(t.*)), '[]') FROM ({query.rstrip().rstrip(';')}) AS t"
    out = subprocess.run(["psql", url, "-XAtq", "-v", "ON_ERROR_STOP=1", *params],
                         input=wrapped, capture_output=True, text=True)
    if out.returncode != 0:
        raise StoreError(out.stderr.strip())

    def value(v):
        if isinstance(v, str) and v.startswith("\\x") and re.fullmatch(r"\\x(?:[0-9a-f]{2})*", v):
            return bytes.fromhex(v[2:])
        return v
    return [tuple(value(r[k]) for k in sorted(r, key=lambda k: int(k[1:]))) for r in json.loads(out.stdout)]


def psql_run(url: str, sql: str) -> None:
    out = subprocess.run(["psql", url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True)
    if out.returncode != 0:
        raise Failure(f"psql {sql}: {out.stderr.strip()}")


class Store:
    """A gateway's store as the tests see it: the SQLite file next to its
    configuration, or (NFP_E2E_POSTGRES) a database of its own on that server."""

    def __init__(self, folder: Path, name: str, engine: str | None = None, server: str | None = None):
        self.path = folder / "nfp-gateway.db"
        self.url = None
        # The PostgreSQL server: the suite's (NFP_E2E_POSTGRES), or a scenario's own.
        self.server = server or POSTGRES
        if (engine or ("postgres" if POSTGRES else "sqlite")) == "postgres":
            check(self.server is not None, "a PostgreSQL store needs NFP_E2E_POSTGRES")
            self.name = f"e2e_{re.sub(r'[^a-z0-9]', '_', name.lower())[:20]}_{uuid.uuid4().hex[:8]}"
            psql_run(self.server, f'CREATE DATABASE "{self.name}"')
            self.url = self.server.rsplit("/", 1)[0] + "/" + self.name

    def configure(self, text: str) -> str:
        """gateway.toml's text, pointed at this store."""
        if self.url is None:
            return text
        return text.replace("role = ", f'database = "{self.url}"\nrole = ', 1)

    def rows(self, sql: str, *args) -> list[tuple]:
        if self.url is None:
            with sqlite3.connect(self.path) as c:
                return c.execute(sql, args).fetchall()
        return psql_rows(self.url, sql, *args)

    def at_rest(self) -> list[tuple[str, bytes]]:
        """Everything the store keeps, as bytes to search: the SQLite files,
        or a pg_dump of the database."""
        if self.url is None:
            return [(p.name, p.read_bytes()) for p in self.path.parent.iterdir()
                    if p.name.startswith(self.path.name)]
        dump = subprocess.run(["pg_dump", "--no-owner", self.url], capture_output=True, check=True)
        return [(f"pg_dump of {self.name}", dump.stdout)]

    def drop(self) -> None:
        if self.url is None:
            return
        psql_run(self.server, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def wait_rows(rows, sql: str, count: int, timeout: float, *args) -> list[tuple]:
    """Polls `rows(sql, *args)` (a gateway's store) until it returns at least
    `count` rows or `timeout` seconds have passed; returns the last rows."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = rows(sql, *args)
        except STORE_ERRORS:
            found = []
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def wait_for(what: str, cond, timeout: float, net: "Net"):
    """Waits until `cond()` gives something true, and returns it; fails
    with the gateway's log after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise Failure(f"{what}: not within {timeout:.0f}s; log:\n{net.tail()}")
        time.sleep(0.2)


def check(cond: bool, what: str) -> None:
    if not cond:
        raise Failure(what)


@dataclass
class Received:
    """A mail as its recipient's GnuPG sees it."""

    raw: bytes
    outer: email.message.Message
    signed_by_gateway: bool
    decrypted: bool
    inner: email.message.Message | None
    status: list[str]
    plain: bytes = b""   # the decrypted bytes, as GnuPG output them

    @property
    def subject(self) -> str:
        return str(self.inner["Subject"]) if self.inner is not None else ""

    def text(self) -> str:
        if self.inner is None:
            return ""
        for part in self.inner.walk():
            if part.get_content_type() == "text/plain" and not part.get_filename():
                return part.get_content()
        return ""

    def attachment_names(self) -> list[str]:
        if self.inner is None:
            return []
        return [p.get_filename() for p in self.inner.walk() if p.get_filename()]


class Net:
    """One test network: keys, directories, a mail stack and a gateway."""

    def __init__(self, name: str, *, role: str = "secretariat", retry: tuple[str, ...] = ("1s", "2s", "3s"),
                 extra_config: str = "", outsiders: tuple[str, ...] = (), engine: str | None = None,
                 without_mailbox: tuple[str, ...] = (), discard: tuple[str, ...] = (),
                 postgres_server: str | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix=f"e2e-{name[:8]}-", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.now = int(time.time())
        self.w = mf.World(self.dir / "net", self.now)
        self.w.make_keys()
        # Parties whose entry lets the gateway discard parts added in transit.
        for pid in discard:
            self.w.p[pid].unprotected_parts = "discard"
        self.w.write_network()
        self.role = role
        self.w.config = mf.SECRETARIAT if role == "secretariat" else mf.NATIONAL_AT
        self.passwords = {p.email: f"pw-{p.id}" for p in self.w.p.values()}
        # Mailboxes of no persona (attackers' addresses), to prove they receive nothing.
        self.passwords.update({a: f"pw-outsider-{i}" for i, a in enumerate(outsiders)})
        # Personas whose address the mail stack does not know: Postfix
        # refuses mail to them at RCPT (550, unknown in the mailbox table).
        for pid in without_mailbox:
            del self.passwords[self.w.p[pid].email]
        self.stack = mailstack.start(str(self.dir / "ms"), self.passwords)
        self.gateway_persona = self.w.p[GATEWAY[role]]
        self.retry = retry
        self.engine = engine  # "sqlite" or "postgres"; None: PostgreSQL when NFP_E2E_POSTGRES is set
        self.postgres_server = postgres_server  # None: NFP_E2E_POSTGRES's
        self.stores: dict[str, Store] = {}
        self.config = self.configure(role, extra_config)
        self.proc: subprocess.Popen | None = None
        self.log = self.dir / "gateway.log"
        self.peers: list[Peer] = []

    def configure(self, role: str, extra_config: str = "") -> Path:
        """Completes `role`'s gateway.toml (from the World) with this stack's
        IMAP and SMTP, logged in as that role's gateway; returns its path."""
        persona = self.w.p[GATEWAY[role]]
        config = self.dir / "net" / role / "gateway.toml"
        secret = config.parent / "mail-password"
        secret.write_text(self.passwords[persona.email] + "\n")
        os.chmod(secret, 0o600)
        s = self.stack.info
        retry = self.retry
        # The daily key-expiry watch would report PL's expired key in every
        # scenario; the scenario about it turns it back on.
        if role not in self.stores:
            self.stores[role] = Store(config.parent, f"{self.dir.name}-{role}", self.engine, self.postgres_server)
        config.write_text(self.stores[role].configure(
            config.read_text().replace("role = ", "key-expiry-watch = false\nrole = ", 1)))
        # The weekly report would go out by itself in any scenario that runs
        # across a Monday 00:00 UTC; the scenario about it turns it on. (Before
        # [imap]: scenarios append [daemon] keys to the end of the file.)
        report = "" if "[report]" in extra_config else "[report]\nenabled = false\n\n"
        with open(config, "a") as f:
            f.write(f"""
{report}[imap]
host = "127.0.0.1"
port = {s['imaps_port']}
security = "tls"
username = "{persona.email}"
password-file = "mail-password"
ca-file = "{s['ca_cert']}"
poll-interval = "1s"
idle-timeout = "60s"

[smtp]
host = "127.0.0.1"
port = {s['submission_port']}
security = "starttls"
username = "{persona.email}"
password-file = "mail-password"
ca-file = "{s['ca_cert']}"
retry = [{", ".join(f'"{r}"' for r in retry)}]

[daemon]
shutdown-timeout = "10s"
{extra_config}""")
        # The store is created (SQLite) and migrated explicitly, as an operator would.
        out = subprocess.run([str(BIN), "--config", str(config), "migrate"], capture_output=True, text=True)
        check(out.returncode == 0, f"nfp-gateway migrate: {out.stdout}{out.stderr}")
        return config

    def add_gateway(self, role: str, extra_config: str = "") -> Peer:
        """A second gateway (another role's) on this network's mail stack,
        with its own configuration, store and log; not started."""
        check(role != self.role and all(p.role != role for p in self.peers), f"a {role} gateway exists already")
        peer = Peer(self, role, self.configure(role, extra_config))
        self.peers.append(peer)
        return peer

    # --- the gateway ---------------------------------------------------------

    def start_gateway(self, env: dict[str, str] | None = None) -> None:
        check(self.proc is None or self.proc.poll() is not None, "the gateway is already running")
        full_env = {**os.environ, "NFP_GATEWAY_LOG": "info", **(env or {})}
        full_env.pop("NFP_GATEWAY_CRASH_AT", None) if "NFP_GATEWAY_CRASH_AT" not in (env or {}) else None
        log = open(self.log, "ab")
        self.proc = subprocess.Popen([str(BIN), "--config", str(self.config), "run"],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=full_env)

    def stop_gateway(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise Failure("the gateway did not stop in time")

    def wait_exit(self, timeout: float = 30) -> int:
        check(self.proc is not None, "no gateway")
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Failure(f"the gateway did not exit within {timeout}s")

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN), "--config", str(self.config), *args], capture_output=True, text=True)

    # --- mail ---------------------------------------------------------------

    def mail_from(self, pid: str, subject: str, body: str, *, parts: list | None = None) -> bytes:
        """A Thunderbird-style PGP/MIME message from persona `pid` to the gateway."""
        return self.w.pgp_mime(self.w.p[pid], subject, [mm.text(body)] + (parts or [])).eml

    def send(self, eml: bytes, frm: str | None = None) -> None:
        msg = email.message_from_bytes(eml)
        sender = frm or email.utils.parseaddr(msg["From"] or "")[1] or "nobody@nowhere.example"
        self.stack.send(sender, [self.gateway_persona.email], eml, port="smtp")

    def mailbox(self, pid: str, folder: str = "INBOX") -> list[Received]:
        p = self.w.p[pid]
        return [self.open(raw) for _, raw in self.stack.fetch(p.email, self.passwords[p.email], folder)]

    def wait_mail(self, pid: str, count: int, timeout: float = 120) -> list[Received]:
        p = self.w.p[pid]
        self.stack.wait_for(p.email, self.passwords[p.email], count, timeout=timeout)
        return self.mailbox(pid)

    def count(self, pid: str, folder: str = "INBOX") -> int:
        p = self.w.p[pid]
        return self.stack.count(p.email, self.passwords[p.email], folder)

    def gateway_folder(self, folder: str) -> int:
        return self.stack.count(self.gateway_persona.email, self.passwords[self.gateway_persona.email], folder)

    def open(self, raw: bytes) -> Received:
        """Decrypts and verifies a received mail with GnuPG, as its recipient would."""
        outer = email.message_from_bytes(raw, policy=email.policy.default)
        payload = None
        if outer.get_content_type() == "multipart/encrypted":
            parts = outer.get_payload()
            payload = parts[1].get_payload(decode=True) if len(parts) == 2 else None
        if payload is None:
            return Received(raw, outer, False, False, None, [])
        r = self.w.gpg.run(["--decrypt"], payload, check=False)
        gw_keys = self.w.subkeys(self.gateway_persona)
        good = any(s.startswith("GOODSIG ") and s.split()[1] in gw_keys for s in r.status)
        ok = "DECRYPTION_OKAY" in r.status
        inner = email.message_from_bytes(r.out, policy=email.policy.default) if ok else None
        return Received(raw, outer, good, ok, inner, r.status, r.out if ok else b"")

    # --- the store ------------------------------------------------------------

    @property
    def store(self) -> Store:
        return self.stores[self.role]

    def db(self) -> sqlite3.Connection:
        """The SQLite store itself (the benchmarks, which run on SQLite only)."""
        return sqlite3.connect(self.store.path)

    def rows(self, sql: str, *args) -> list[tuple]:
        return self.store.rows(sql, *args)

    def wait_rows(self, sql: str, count: int, timeout: float = 30, *args) -> list[tuple]:
        return wait_rows(self.rows, sql, count, timeout, *args)

    def wait_outbox_sent(self, count: int, timeout: float = 120) -> None:
        rows = self.wait_rows("SELECT id FROM outbox WHERE state = 'sent'", count, timeout)
        check(len(rows) >= count, f"{len(rows)} of {count} outgoing mails sent in {timeout}s; log:\n{self.tail()}")

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return "(no log)"

    def close(self) -> None:
        try:
            for proc in [self.proc] + [p.proc for p in self.peers]:
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
        finally:
            self.stack.stop()
            self.w.gpg.close()
            for store in self.stores.values():
                store.drop()
            if not os.environ.get("NFP_E2E_KEEP"):
                shutil.rmtree(self.dir, ignore_errors=True)


class Peer:
    """Another gateway on a Net's mail stack (Net.add_gateway): its own
    process, configuration, store and log."""

    def __init__(self, net: Net, role: str, config: Path):
        self.net, self.role, self.config = net, role, config
        self.persona = net.w.p[GATEWAY[role]]
        self.log = net.dir / f"gateway-{role}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        check(self.proc is None or self.proc.poll() is not None, f"the {self.role} gateway is already running")
        env = {k: v for k, v in os.environ.items() if k != "NFP_GATEWAY_CRASH_AT"}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([str(BIN), "--config", str(self.config), "run"],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env={**env, "NFP_GATEWAY_LOG": "info"})

    def stop(self, timeout: float = 20) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise Failure(f"the {self.role} gateway did not stop in time")

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN), "--config", str(self.config), *args], capture_output=True, text=True)

    def rows(self, sql: str, *args) -> list[tuple]:
        return self.net.stores[self.role].rows(sql, *args)

    def wait_rows(self, sql: str, count: int, timeout: float = 30, *args) -> list[tuple]:
        return wait_rows(self.rows, sql, count, timeout, *args)

    def folder(self, folder: str) -> int:
        return self.net.stack.count(self.persona.email, self.net.passwords[self.persona.email], folder)

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return "(no log)"
