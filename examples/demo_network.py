#!/usr/bin/env python3
"""demo_network.py: the demo network live, on a private Dovecot and Postfix.

    demo_network.py run GATEWAY OUTDIR   after `make_samples.py OUTDIR`: the whole live demo
    demo_network.py stop OUTDIR          stops whatever a run left running (scripts/demo.sh's trap)

`run` starts a private mail stack (tests/mailstack: real Dovecot and Postfix on
loopback) with a mailbox for every persona of the demo network, then both demo
gateways as `nfp-gateway run` (the Secretariat's, and Austria's national one),
each with a runtime configuration written from examples/.../gateway.toml plus
[imap] (IMAPS, the stack's CA), [smtp] (submission, STARTTLS) and [daemon].
It sends every sample of OUTDIR/samples.json by SMTP to the gateway that must
judge it, as an NFP's mail server would, waits until both gateways have filed
everything and emptied their outboxes, and reads every party's mailbox with
that party's own GnuPG (its DEMO key from keys/demo-personas/): what arrived,
decrypted, the gateway's signature verified, the protected subject.

Every observation is checked against samples.json: each sample's decision in
the daemon's store, one forward per route entry and one acknowledgement per
accepted sample, one notice to the Secretariat per quarantined sample (none
for automatic mail), nothing else to anyone, every folder where it belongs,
exit status 0 on SIGTERM. Exit status 1 when anything differs, 2 when the
demo could not run.

Under OUTDIR (the stack goes to /tmp when OUTDIR's path does not suit it):

    stack/                  the mail stack (logs: dovecot.log, postfix.log)
    secretariat/            the Secretariat's gateway: gateway.toml, mail-password,
                            nfp-gateway.db, gateway.log
    national-at/            Austria's gateway, the same
    readers/<party>/        each party's GnuPG home (its secret key, the gateways' certificates)
    run.json                what is running, for `stop`

Python 3 standard library, plus tests/fixtures/mailmaker.py, tests/mailstack/mailstack.py
and examples/make_network.py, make_samples.py.
"""

from __future__ import annotations

import concurrent.futures
import email
import email.policy
import email.utils
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
EXAMPLES = Path(__file__).resolve().parent
REPO = EXAMPLES.parent
sys.path[:0] = [str(REPO / "tests" / "fixtures"), str(REPO / "tests" / "mailstack"), str(EXAMPLES)]
import mailmaker as mm  # noqa: E402
import mailstack  # noqa: E402
import make_network as net  # noqa: E402
import make_samples  # noqa: E402

REF = re.compile(r"BSM-(?:[A-Z]{2}-)?\d{4}-\d{6}")  # the Secretariat's, or a national gateway's (BSM-AT-...)
KIND = {"forward": "forward", "acknowledgement": "acknowledgement",
        "quarantine_notice": "quarantine notice", "alert": "alert"}
# Dovecot and Postfix need every parent of the stack's folder searchable by others,
# and its path short enough for their unix sockets (mailstack.py says 66 characters).
STACK_PATH_MAX = mailstack.UNIX_PATH_MAX - mailstack.LONGEST_SOCKET_SUFFIX
TIMEOUT = 30  # seconds for the gateways to file everything and empty their outboxes


@dataclass
class GatewaySpec:
    name: str             # secretariat, national-at: samples.json's `config`
    persona: str          # its persona in make_network.py (its key's user ID, its mailbox)
    example: Path         # the committed configuration it is made from
    cert: Path
    folder: Path = None   # OUTDIR/<name>
    password: str = ""
    fingerprint: str = ""
    proc: subprocess.Popen | None = None
    health: int = 0       # the [daemon] listen port

    @property
    def config(self) -> Path:
        return self.folder / "gateway.toml"

    @property
    def db(self) -> Path:
        return self.folder / "nfp-gateway.db"

    @property
    def log(self) -> Path:
        return self.folder / "gateway.log"


def gateway_specs(out: Path) -> dict[str, GatewaySpec]:
    specs = {
        "secretariat": GatewaySpec("secretariat", "gateway", EXAMPLES / "gateway.toml",
                                   EXAMPLES / "certs" / "gateway.asc"),
        "national-at": GatewaySpec("national-at", "gateway-at",
                                   EXAMPLES / "national-at" / "gateway.toml",
                                   EXAMPLES / "certs" / "gateway-at.asc"),
    }
    for g in specs.values():
        g.folder = out / g.name
    return specs


def say(text: str = "") -> None:
    print(text, flush=True)


def short(text: str, width: int, squeeze: bool = True) -> str:
    text = " ".join(text.split()) if squeeze else text.rstrip()
    return text if len(text) <= width else text[: width - 1] + "…"


def seconds(t0: float) -> str:
    return f"{time.monotonic() - t0:.1f} s"


def rel(p: Path | str) -> str:
    """A path as the user typed it: relative to the repository when inside it."""
    p = Path(p)
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


# ---------------------------------------------------------------------------
# Leftovers of an earlier run, and `stop`
# ---------------------------------------------------------------------------

def _our_gateway(pid: int, binary: str) -> bool:
    """Whether pid is still the `nfp-gateway run` a demo run started."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return len(cmd) > 1 and cmd[0].decode(errors="replace") == binary and b"run" in cmd


def stop_leftovers(out: Path, quiet: bool = False) -> int:
    """Stops the gateways and the stack that OUTDIR/run.json names, if they still
    run (an interrupted run). Returns how many things it stopped."""
    state = out / "run.json"
    try:
        info = json.loads(state.read_text())
    except (OSError, ValueError):
        return 0
    stopped = 0
    for name, pid in info.get("gateways", {}).items():
        if _our_gateway(pid, info.get("binary", "")):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while _our_gateway(pid, info["binary"]) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _our_gateway(pid, info["binary"]):
                os.kill(pid, signal.SIGKILL)
            stopped += 1
            if not quiet:
                print(f"demo: stopped the {name} gateway left running (pid {pid})", file=sys.stderr)
    stack = info.get("stack")
    if stack and mailstack.status(stack)["processes"]:
        mailstack.stop(stack)
        stopped += 1
        if not quiet:
            print(f"demo: stopped the mail stack left running in {stack}", file=sys.stderr)
    for home in info.get("gnupg", []):
        if Path(home).is_dir():
            mm.GnuPG(Path(home)).close()
    state.unlink(missing_ok=True)
    return stopped


def write_state(out: Path, binary: Path, stack_dir: str, gws: dict[str, GatewaySpec],
                homes: list[Path]) -> None:
    info = {"binary": str(binary), "stack": stack_dir,
            "gateways": {g.name: g.proc.pid for g in gws.values() if g.proc is not None},
            "gnupg": [str(h) for h in homes]}
    (out / "run.json").write_text(json.dumps(info, indent=2) + "\n")


def stack_dir_for(out: Path) -> str:
    """OUTDIR/stack when Dovecot and Postfix can live there, else a folder in /tmp."""
    d = out / "stack"
    ok = len(str(d)) <= STACK_PATH_MAX
    parent = d.parent
    while ok and parent != parent.parent:
        if parent.exists() and not parent.stat().st_mode & 0o001:
            ok = False
        parent = parent.parent
    if ok:
        return str(d)
    return f"/tmp/nfp-demo-stack-{os.getuid()}"


# ---------------------------------------------------------------------------
# The gateways' runtime configuration
# ---------------------------------------------------------------------------

PATH_KEYS = ("secret-key", "directory", "classify-rules", "templates")


def runtime_config(g: GatewaySpec, stack: mailstack.Stack, address: str, command: bool) -> str:
    """The committed gateway.toml with its paths made absolute (the database stays
    relative: beside the runtime file), plus [imap], [smtp] and [daemon] for the stack."""
    lines, top = [], True
    for line in g.example.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            top = False
        m = re.match(r'^([a-z-]+)(\s*=\s*)"([^"]*)"(.*)$', line)
        if top and m and m.group(1) in PATH_KEYS:
            path = (g.example.parent / m.group(3)).resolve()
            line = f"{m.group(1)}{m.group(2)}{json.dumps(str(path))}{m.group(4)}"
        lines.append(line)
    ca = json.dumps(stack.ca_cert)
    if command:  # shows the other way of giving the password
        secret = f'password-command = ["/bin/cat", {json.dumps(str(g.folder / "mail-password"))}]'
    else:
        secret = 'password-file = "mail-password"'
    return "\n".join(lines) + f"""

# ---------------------------------------------------------------------------
# Added by examples/demo_network.py for the demo's private mail stack
# (tests/mailstack: Dovecot and Postfix on loopback, a throw-away CA).
# ---------------------------------------------------------------------------

[imap]
host = "127.0.0.1"
port = {stack.imaps_port}
security = "tls"
username = "{address}"
{secret}
ca-file = {ca}
poll-interval = "2s"

[smtp]
host = "127.0.0.1"
port = {stack.submission_port}
security = "starttls"
username = "{address}"
{secret}
ca-file = {ca}
retry = ["1s", "2s", "5s"]

[daemon]
listen = "127.0.0.1:{g.health}"
shutdown-timeout = "10s"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthz(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return f"{r.status} {r.read().decode().strip()}"
    except urllib.error.HTTPError as e:
        return f"{e.code} {e.read().decode().strip()}"
    except OSError as e:
        return f"unreachable ({e})"


def start_gateway(binary: Path, g: GatewaySpec) -> None:
    env = {**os.environ, "NFP_GATEWAY_LOG": "info"}
    env.pop("NFP_GATEWAY_CONFIG", None)
    with open(g.log, "ab") as log:
        g.proc = subprocess.Popen([str(binary), "--config", str(g.config), "run"],
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                  start_new_session=True)  # Ctrl-C reaches the demo, which stops it


def wait_ready(g: GatewaySpec, timeout: float = 15) -> str:
    """Until /healthz says ok (IMAP connected, store answering); raises when the gateway exits."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if g.proc.poll() is not None:
            raise RuntimeError(f"the {g.name} gateway exited {g.proc.returncode} at start:\n"
                               f"{tail(g.log)}")
        if "nfp-gateway running" in g.log.read_text(errors="replace"):
            last = healthz(g.health)
            if last.startswith("200"):
                return last
        time.sleep(0.05)
    raise RuntimeError(f"the {g.name} gateway is not ready after {timeout} s "
                       f"(/healthz: {last or 'no answer'}):\n{tail(g.log)}")


def stop_gateway(g: GatewaySpec, timeout: float = 20) -> int | None:
    if g.proc is None:
        return None
    if g.proc.poll() is None:
        g.proc.send_signal(signal.SIGTERM)
        try:
            g.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            g.proc.kill()
            g.proc.wait()
            return None
    return g.proc.returncode


def tail(path: Path, n: int = 25) -> str:
    try:
        return "\n".join("    " + l for l in path.read_text(errors="replace").splitlines()[-n:])
    except FileNotFoundError:
        return "    (no log)"


def cli(binary: Path, g: GatewaySpec, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), "--config", str(g.config), *args],
                          capture_output=True, text=True)


# ---------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------

def rows(g: GatewaySpec, sql: str, *args) -> list[tuple]:
    try:
        with sqlite3.connect(g.db, timeout=5) as c:
            return c.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # not created yet, or busy
        return []


def bare(message_id: str | None) -> str:
    return (message_id or "").strip().strip("<>")


# ---------------------------------------------------------------------------
# Reading mail as its recipient: the party's own GnuPG
# ---------------------------------------------------------------------------

@dataclass
class Received:
    uid: int
    raw: bytes
    outer_subject: str
    message_id: str
    decrypted: bool
    signer: str | None        # primary-key fingerprint of a good signature
    subject: str              # the protected (inner) subject
    text: str
    attachments: list[str]
    status: list[str] = field(default_factory=list)


def reader(out: Path, party: str) -> mm.GnuPG:
    """The party's GnuPG home: its own DEMO secret key and the gateways' certificates."""
    home = out / "readers" / party
    if home.exists():
        mm.GnuPG(home).close()
        shutil.rmtree(home)
    gpg = mm.GnuPG(home)
    keys = [EXAMPLES / "keys" / "demo-personas" / f"{party}.sec.asc",
            EXAMPLES / "certs" / "gateway.asc", EXAMPLES / "certs" / "gateway-at.asc"]
    gpg.run(["--import"], b"".join(k.read_bytes() for k in keys if k.exists()))
    return gpg


def open_mail(gpg: mm.GnuPG, uid: int, raw: bytes) -> Received:
    outer = email.message_from_bytes(raw, policy=email.policy.default)
    got = Received(uid, raw, str(outer["Subject"] or ""), bare(outer["Message-ID"]),
                   False, None, "", "", [])
    payload = None
    if outer.get_content_type() == "multipart/encrypted":
        parts = outer.get_payload()
        payload = parts[1].get_payload(decode=True) if len(parts) == 2 else None
    if payload is None:
        return got
    r = gpg.run(["--decrypt"], payload, check=False)
    got.status = r.status
    got.decrypted = "DECRYPTION_OKAY" in r.status
    for s in r.status:
        f = s.split()
        if f[0] == "VALIDSIG":
            got.signer = f[-1] if len(f) > 10 else f[1]
    if not any(s.startswith("GOODSIG ") for s in r.status):
        got.signer = None
    if got.decrypted:
        inner = email.message_from_bytes(r.out, policy=email.policy.default)
        got.subject = str(inner["Subject"] or "")
        for part in inner.walk():
            name = part.get_filename()
            if name:
                got.attachments.append(name)
            elif part.get_content_type() == "text/plain" and not got.text:
                got.text = part.get_content()
    return got


def read_mailbox(out: Path, stack: mailstack.Stack, party: str, address: str, password: str,
                 expect: int) -> tuple[list[Received], str | None]:
    """Waits until the mailbox holds `expect` messages (Postfix delivers after SMTP's
    250), then opens every one with the party's GnuPG."""
    error = None
    if expect:
        try:
            stack.wait_for(address, password, expect, timeout=10)
        except TimeoutError as e:
            error = str(e)
    mails = stack.fetch(address, password)
    if not mails:
        return [], error
    gpg = reader(out, party)
    return [open_mail(gpg, uid, raw) for uid, raw in mails], error


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------

def load_samples(out: Path) -> tuple[dict, list[dict]]:
    doc = json.loads((out / "samples.json").read_text(encoding="utf-8"))
    for s in doc["samples"]:
        eml = (out / s["file"]).read_bytes()
        head = email.message_from_bytes(eml, policy=email.policy.compat32)
        s["eml"] = eml
        s["message_id"] = bare(head["Message-ID"])
        s["envelope_from"] = email.utils.parseaddr(head["From"] or "")[1]
    return doc, doc["samples"]


def expected_mail(s: dict) -> list[tuple[str, str]]:
    """(purpose, party) of every mail a sample must cause."""
    e = s["expect"]
    if e["verdict"] == "accepted":
        return [("forward", p) for p in e["route"]] + [("acknowledgement", e["sender"])]
    if e["reason"] == "loop":
        return []  # automatic mail is never answered, not even by a notice
    return [("quarantine_notice", "secretariat")]


def run(binary: Path, out: Path) -> int:
    t_start = time.monotonic()
    binary = binary.resolve()
    out = out.resolve()
    stop_leftovers(out)
    doc, samples = load_samples(out)
    personas = net.personas()
    gws = gateway_specs(out)
    by_sample = {s["name"]: s for s in samples}
    problems: list[str] = []

    # --- 1. the mail stack: a mailbox for every persona ------------------------
    stack_dir = stack_dir_for(out)
    if Path(stack_dir).exists():
        shutil.rmtree(stack_dir)
    for g in gws.values():
        if g.folder.exists():
            shutil.rmtree(g.folder)
        g.folder.mkdir(parents=True)
    if (out / "readers").exists():
        for home in (out / "readers").iterdir():
            mm.GnuPG(home).close()
        shutil.rmtree(out / "readers")
    passwords = {p.email: secrets.token_urlsafe(12) for p in personas.values()}
    t0 = time.monotonic()
    stack = mailstack.start(stack_dir, passwords)
    homes: list[Path] = []
    write_state(out, binary, stack_dir, gws, homes)
    say(f"Mail stack: Dovecot and Postfix on 127.0.0.1, {len(passwords)} mailboxes (every party, "
        f"both gateways, the outsider), in {rel(stack_dir)}, up in {seconds(t0)}")
    say(f"  SMTP (MX) :{stack.smtp_port}   submission (STARTTLS) :{stack.submission_port}   "
        f"IMAPS :{stack.imaps_port}   CA {rel(stack.ca_cert)}")

    try:
        # --- 2. both gateways, `nfp-gateway run` ----------------------------------
        for i, g in enumerate(gws.values()):
            address = personas[g.persona].email
            g.password = passwords[address]
            secret = g.folder / "mail-password"
            secret.write_text(g.password + "\n")
            os.chmod(secret, 0o600)
            g.health = free_port()
            g.config.write_text(runtime_config(g, stack, address, command=i == 1), encoding="utf-8")
            # The store is created (mode 0600) and migrated first, as an operator does.
            made = cli(binary, g, "migrate")
            if made.returncode != 0:
                raise SystemExit(f"nfp-gateway migrate ({g.name}) failed: {made.stdout}{made.stderr}")
            start_gateway(binary, g)
        write_state(out, binary, stack_dir, gws, homes)
        say()
        for g in gws.values():
            health = wait_ready(g)
            g.fingerprint = cert_fingerprint(out, g.cert)
            address = personas[g.persona].email
            say(f"Gateway {g.name:<12} {address:<28} pid {g.proc.pid:<7} /healthz {health}; "
                f"key {g.fingerprint[:4]}…{g.fingerprint[-4:]}")
            say(f"  {rel(g.config)} (from {rel(g.example)}), log {rel(g.log)}")

        # --- 3. the samples, by SMTP, as the NFPs' mail servers send them ------------
        say()
        say(f"Sending the samples by SMTP to port {stack.smtp_port} (STARTTLS), "
            "as the senders' mail servers would:")
        t_send = time.monotonic()
        sent_to: dict[str, list[str]] = {g: [] for g in gws}
        for s in samples:
            g = gws[s["config"]]
            to = personas[g.persona].email
            note = ""
            if s["check_with"]:
                # A replay comes after its original: once the gateway filed all sent so far.
                n = len(sent_to[g.name])
                wait_until(lambda: rows(g, "SELECT COUNT(*) FROM inbound WHERE imap_state = "
                                           "'filed'") == [(n,)], TIMEOUT,
                           f"the {g.name} gateway did not file the first {n} messages", g)
                note = f"   (once the gateway has filed the {n} before it)"
            sent_to.setdefault(g.name, []).append(s["name"])
            stack.send(s["envelope_from"], [to], s["eml"], port="smtp", starttls=True)
            say(f"  {s['name']:<25} {s['envelope_from']:<34} -> {to}{note}")

        # --- 4. until everything is filed and every outbox empty ----------------------
        for g in gws.values():
            n = sum(s["config"] == g.name for s in samples)
            wait_until(lambda: rows(g, "SELECT COUNT(*) FROM inbound WHERE imap_state = 'filed'")
                       == [(n,)] and not rows(g, "SELECT id FROM outbox WHERE state IN "
                                                 "('pending', 'sending')"),
                       TIMEOUT, f"the {g.name} gateway did not file its {n} messages and empty "
                                f"its outbox in {TIMEOUT} s", g)
        filed = {g.name: rows(g, "SELECT COUNT(*) FROM inbound")[0][0] for g in gws.values()}
        sent = {g.name: rows(g, "SELECT COUNT(*) FROM outbox WHERE state = 'sent'")[0][0]
                for g in gws.values()}
        say(f"  ... both gateways filed {sum(filed.values())} messages and sent "
            f"{sum(sent.values())} mails; outboxes empty {seconds(t_send)} after the first "
            "was sent.")

        # --- 5. the daemon's decisions, and the mail they caused ----------------------
        outbox = store_view(gws, samples, problems)

        # --- 6. every mailbox, read by its owner ---------------------------------------
        parties = [p for p in personas.values() if p.id not in ("gateway", "gateway-at")]
        expect_count = {p.id: sum(1 for o in outbox.values() if o["party"] == p.id
                                  and o["state"] == "sent") for p in parties}
        t_read = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = {p.id: pool.submit(read_mailbox, out, stack, p.id, p.email,
                                         passwords[p.email], expect_count[p.id])
                       for p in parties}
            mailboxes = {party: f.result() for party, f in futures.items()}
        homes = [out / "readers" / party for party, (mails, _) in mailboxes.items() if mails]
        write_state(out, binary, stack_dir, gws, homes)
        say()
        show_mailboxes(parties, mailboxes, outbox, gws, problems, t_read)
        show_gateway_folders(stack, gws, personas, samples, problems)

        # --- 7. what the operator sees --------------------------------------------------
        say()
        for g in gws.values():
            say(f"$ nfp-gateway --config {rel(g.config)} status")
            r = cli(binary, g, "status")
            say(r.stdout.rstrip() or r.stderr.rstrip())
            if r.returncode != 0:
                problems.append(f"`status` of the {g.name} gateway exited {r.returncode}: "
                                f"{r.stderr}")
        say()
        g = gws["secretariat"]
        say(f"$ nfp-gateway --config {rel(g.config)} quarantine list --limit 4")
        r = cli(binary, g, "quarantine", "list", "--limit", "4")
        listing = [short(line, 140, squeeze=False) for line in r.stdout.splitlines()]
        say("\n".join(listing) or r.stderr.rstrip())
        n_quarantined = sum(s["expect"]["verdict"] == "quarantined" and s["config"] == g.name
                            for s in samples)
        full = cli(binary, g, "quarantine", "list").stdout.splitlines()
        if r.returncode != 0 or len(full) != n_quarantined:
            problems.append(f"`quarantine list` shows {len(full)} messages, want "
                            f"{n_quarantined} ({r.stderr.strip()})")

        # --- 7b. the Secretariat's desk: cases, roll call, library, report ----------------
        say()
        g = gws["secretariat"]
        for args in (("cases", "list"), ("library", "list"), ("rollcall", "start"), ("rollcall", "status")):
            say(f"$ nfp-gateway --config {rel(g.config)} {' '.join(args)}")
            r = cli(binary, g, *args)
            say("\n".join(short(line, 140, squeeze=False) for line in r.stdout.splitlines()) or r.stderr.rstrip())
            if r.returncode != 0:
                problems.append(f"`{' '.join(args)}` exited {r.returncode}: {r.stderr}")
        page = out / "report.html"
        say(f"$ nfp-gateway --config {rel(g.config)} report --format html --output {rel(page)}")
        r = cli(binary, g, "report", "--format", "html", "--output", str(page))
        if r.returncode != 0 or not page.exists():
            problems.append(f"`report` exited {r.returncode}: {r.stderr}")
        else:
            say(f"the Secretariat's report of the last 7 days: {rel(page)} (the daemon mails it every Monday)")
            chromium = shutil.which("chromium")
            if chromium:
                png = out / "report.png"
                with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
                    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                    f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=1000,1700",
                                    page.resolve().as_uri()], capture_output=True, timeout=120)
                if png.exists():
                    say(f"as a browser shows it: {rel(png)}")

        # --- 8. SIGTERM: both exit 0 -------------------------------------------------------
        say()
        for g in gws.values():
            t0 = time.monotonic()
            code = stop_gateway(g)
            say(f"SIGTERM to the {g.name} gateway: exit status {code} after {seconds(t0)}")
            if code != 0:
                problems.append(f"the {g.name} gateway exited {code} on SIGTERM:\n{tail(g.log)}")
    except Exception as e:  # noqa: BLE001 (reported below, after the cleanup)
        where = "" if isinstance(e, RuntimeError) else "\n" + traceback.format_exc().rstrip()
        problems.append(f"the demo stopped: {type(e).__name__}: {e}{where}")
        for g in gws.values():
            if g.proc is not None and g.proc.poll() is not None and g.proc.returncode != 0:
                problems.append(f"the {g.name} gateway exited {g.proc.returncode}:\n{tail(g.log)}")
    finally:
        for g in gws.values():
            stop_gateway(g)
        t0 = time.monotonic()
        stack.stop()
        for home in (out / "readers").glob("*") if (out / "readers").exists() else []:
            mm.GnuPG(home).close()
        (out / "run.json").unlink(missing_ok=True)
        say(f"Mail stack stopped in {seconds(t0)}.")

    say()
    total = time.monotonic() - t_start
    if problems:
        say(f"UNEXPECTED ({len(problems)}), live demo in {total:.1f} s:")
        for p in problems:
            say("  " + p.replace("\n", "\n  "))
        say(f"Logs: {rel(gws['secretariat'].log)}, {rel(gws['national-at'].log)}, "
            f"{rel(Path(stack_dir) / 'postfix.log')}, {rel(Path(stack_dir) / 'dovecot.log')}")
        return 1
    n_acc = sum(s["expect"]["verdict"] == "accepted" for s in samples)
    say(f"Live demo in {total:.1f} s: {len(samples)} samples sent, {n_acc} forwarded and "
        f"acknowledged, {len(samples) - n_acc} quarantined; every mail arrived where it "
        "should, and nowhere else.")
    forged = by_sample.get("forged-sender-AT-as-FR", {}).get("inbound_id", 1)
    config = rel(gws["secretariat"].config)
    say("The stores stay for a look (these commands read the database only):")
    say(f"  {rel(binary)} --config {config} quarantine show {forged}")
    say(f"  {rel(binary)} --config {config} outbox list")
    return 0


def wait_until(cond, timeout: float, what: str, g: GatewaySpec | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return
        for gw in [g] if g else []:
            if gw.proc.poll() is not None:
                raise RuntimeError(f"{what}: it exited {gw.proc.returncode}:\n{tail(gw.log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(what + (f"; its log:\n{tail(g.log)}" if g else ""))
        time.sleep(0.05)


def cert_fingerprint(out: Path, cert: Path) -> str:
    """The primary key's fingerprint (a private GnuPG home: never ~/.gnupg)."""
    gpg = mm.GnuPG(out / "readers" / "_certs")
    lines = gpg.run(["--with-colons", "--show-keys", str(cert)]).out.decode().splitlines()
    return next(r.split(":")[9] for r in lines if r.startswith("fpr:"))


def store_view(gws: dict[str, GatewaySpec], samples: list[dict], problems: list[str]) -> dict:
    """Checks each sample's stored decision and the mail it caused; returns every
    outbox row by Message-ID, with its gateway and sample."""
    outbox: dict[str, dict] = {}
    for g in gws.values():
        mine = [s for s in samples if s["config"] == g.name]
        stored = {bare(mid): (iid, json.loads(dec), ref, state)
                  for iid, mid, dec, ref, state in rows(
                      g, "SELECT id, message_id, decision, reference, imap_state FROM inbound")}
        sample_of = {}
        for s in mine:
            if s["message_id"] not in stored:
                problems.append(f"{s['name']}: not in the {g.name} gateway's store")
                continue
            iid, decision, ref, state = stored[s["message_id"]]
            sample_of[iid] = s
            s["reference"], s["inbound_id"] = ref, iid
            for d in make_samples.differences(s["expect"], decision):
                problems.append(f"{s['name']}: the daemon decided differently: {d}")
        caused: dict[str, list[tuple[str, str]]] = {s["name"]: [] for s in mine}
        for mid, purpose, template, party, state, iid, err in rows(
                g, "SELECT message_id, purpose, template, recipient_party, state, inbound_id, "
                   "last_error FROM outbox ORDER BY id"):
            s = sample_of.get(iid)
            outbox[bare(mid)] = {"gateway": g.name, "purpose": purpose, "template": template,
                                 "party": party, "state": state, "sample": s}
            if s is None:
                problems.append(f"the {g.name} gateway sent {purpose} to {party} about no sample")
                continue
            caused[s["name"]].append((purpose, party))
            if state != "sent":
                problems.append(f"{s['name']}: {purpose} to {party} is {state} ({err})")
        for s in mine:
            want, got = sorted(expected_mail(s)), sorted(caused[s["name"]])
            if want != got:
                problems.append(f"{s['name']}: caused {got or 'no mail'}, want {want or 'no mail'}")
    return outbox


def show_mailboxes(parties, mailboxes, outbox, gws, problems: list[str], t_read: float) -> None:
    signer_name = {g.fingerprint: g.persona for g in gws.values()}
    total = sum(len(m) for m, _ in mailboxes.values())
    say(f"What arrived: {total} mails, each read by its recipient's own GnuPG "
        f"(in {seconds(t_read)}).")
    say("  ✓  decrypted with the party's DEMO key, and the signature of the gateway named")
    signers = [f"{g.persona} = {g.fingerprint[:4]}…{g.fingerprint[-4:]} ({g.name})"
               for g in gws.values()]
    say("     next to it verified: " + ", ".join(signers))
    say("  the subject is the protected one, inside the encryption (the envelope's is \"...\");")
    say("  ← the sample the mail is about.")
    for p in parties:
        mails, error = mailboxes[p.id]
        say()
        say(f"{p.email}  {short(p.name, 70)}" + (f"  ({p.id})" if p.id in ("outsider",) else "")
            + f": {len(mails) or 'nothing'}")
        if error:
            problems.append(f"{p.email}: {error}")
        for m in mails:
            o = outbox.get(m.message_id)
            ok = m.decrypted and m.signer is not None
            signer = signer_name.get(m.signer or "", "?")
            kind = KIND.get(o["purpose"], o["purpose"]) if o else "unknown"
            about = o["sample"]["name"] if o and o["sample"] else "?"
            subject = m.subject if m.decrypted else f"(not decrypted) {m.outer_subject}"
            mark = "✓" if ok else "✗"
            say(f"  {mark} {signer:<10} {kind:<17} {short(subject, 84):<84} ← {about}")
            check_mail(p.id, m, o, gws, problems)


def check_mail(party: str, m: Received, o: dict | None, gws, problems: list[str]) -> None:
    where = f"{party}'s mail {short(m.subject or m.outer_subject, 50)!r}"
    if not m.decrypted:
        problems.append(f"{where}: {party}'s GnuPG cannot decrypt it: {m.status}")
        return
    if o is None:
        problems.append(f"{where}: sent by no gateway's outbox (Message-ID {m.message_id})")
        return
    g = gws[o["gateway"]]
    if m.signer != g.fingerprint:
        problems.append(f"{where}: not signed by the {g.name} gateway ({m.status})")
    if o["party"] != party:
        problems.append(f"{where}: the outbox addressed it to {o['party']}")
    if m.outer_subject != "...":
        problems.append(f"{where}: the envelope's subject says {m.outer_subject!r}")
    s = o["sample"] or {}
    has_original = any(a.startswith("original-") for a in m.attachments)
    if has_original != (o["purpose"] == "forward"):
        problems.append(f"{where}: a {o['purpose']} with attachments {m.attachments}")
    if o["purpose"] in ("forward", "acknowledgement"):
        refs = REF.findall(m.subject)
        if not refs or refs[0] != s.get("reference"):
            problems.append(f"{where}: reference {refs[:1]} in the subject, stored "
                            f"{s.get('reference')}")
    if o["purpose"] == "quarantine_notice":
        reason = s.get("expect", {}).get("reason")
        if reason not in m.subject + m.text:
            problems.append(f"{where}: the notice does not name {reason}")


def show_gateway_folders(stack, gws, personas, samples, problems: list[str]) -> None:
    say()
    say("The gateways' own mailboxes (IMAP):")
    for g in gws.values():
        address = personas[g.persona].email
        mine = [s for s in samples if s["config"] == g.name]
        want = {"INBOX": 0,
                "Processed": sum(s["expect"]["verdict"] == "accepted" for s in mine),
                "Quarantine": sum(s["expect"]["verdict"] == "quarantined" for s in mine)}
        got = {}
        for folder in want:
            try:
                got[folder] = stack.count(address, g.password, folder)
            except mailstack.StackError:
                got[folder] = 0  # never created: nothing was filed there
        say(f"  {address:<28} " + "   ".join(f"{f} {n}" for f, n in got.items()))
        if got != want:
            problems.append(f"{address}: folders {got}, want {want}")


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "run":
        try:
            return run(Path(sys.argv[2]), Path(sys.argv[3]))
        except (mailstack.StackError, FileNotFoundError, mm.GpgError) as e:
            print(f"demo_network: {e}", file=sys.stderr)
            return 2
    if len(sys.argv) == 3 and sys.argv[1] == "stop":
        stop_leftovers(Path(sys.argv[2]).resolve())
        return 0
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
