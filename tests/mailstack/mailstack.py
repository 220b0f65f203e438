#!/usr/bin/env python3
"""A private, real mail stack on loopback: Dovecot (IMAP, LMTP) and Postfix.

For nfp-gateway's integration tests, demo and benchmarks. Everything lives under one
directory DIR (configuration, certificates, queue, sockets, Maildirs, logs); nothing under
/etc is read or written, no systemd, no syslog. Several stacks run side by side: they
differ only in DIR and port numbers. Needs root (Dovecot stores mail as the `mail` user,
Postfix runs as `postfix`), the Debian packages dovecot-imapd dovecot-lmtpd postfix
openssl (scripts/install-deps.sh), and Python 3.9+ (standard library only).

CLI:
    mailstack.py start DIR --config MAILBOXES.json     # {"mailboxes": {"a@x.example": "pw", ...}}
    mailstack.py status DIR
    mailstack.py stop DIR
    mailstack.py send DIR --from A --to B [--to C] [--port submission --user U --password P] FILE.eml
    mailstack.py fetch DIR USER PASSWORD [FOLDER]

Library (sys.path.insert(0, "tests/mailstack"); import mailstack):
    stack = mailstack.start(DIR, {"a@x.example": "pw"})   # or mailstack.Stack.load(DIR)
    stack.send("a@x.example", ["b@y.example"], eml, port="submission", auth=("a@x.example", "pw"))
    stack.wait_for("b@y.example", "pw", 1)                  # -> [bytes]
    stack.stop()

What the stack offers (ports are in DIR/stack.json):
    smtp_port         plain SMTP like an MX: no AUTH, STARTTLS offered, mail for the mailboxes'
                      domains only; unknown users are refused at RCPT (no bounces).
    submission_port   STARTTLS then AUTH (PLAIN/LOGIN, the mailbox address and its password)
                      required; no exception for loopback.
    submissions_port  the same with implicit TLS.
    imap_port         IMAP with STARTTLS, imaps_port implicit TLS; on 127.0.0.1 and on
                      imap_host_remote (127.0.0.2), where Dovecot, as for a remote client,
                      announces LOGINDISABLED until STARTTLS (on 127.0.0.1 it does not).
The stack delivers only to its own mailboxes: even after AUTH, a recipient in another
domain is refused at RCPT ("Relay access denied") instead of sitting in the queue. Addresses
may carry a +detail (gateway+fr@...): it is delivered to the INBOX of gateway@....
Certificates: a throw-away CA (DIR/ca.pem) signed the server certificate (SANs localhost,
127.0.0.1, 127.0.0.2, ::1); clients must trust ca.pem.

Timings on a 2-core machine: start 0.2-0.3 s, stop 0.02 s; SMTP -> visible in INBOX
30-80 ms; IDLE reports EXISTS about 0.5 s after delivery (Dovecot's fixed notify delay); a
failed login is answered after up to 0.5 s (Dovecot flushes failures on a 500 ms tick).
Stop: SIGTERM to both masters (what `postfix stop` does before sleeping whole seconds),
then SIGKILL to Dovecot's master and log process once their children are gone (its own
shutdown polls once a second). Always stop before deleting DIR.
"""

import argparse
import base64
import contextlib
import email.header
import email.parser
import fcntl
import grp
import imaplib
import json
import os
import pwd
import random
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time

HOST = "127.0.0.1"
HOST_REMOTE = "127.0.0.2"
PORT_NAMES = ("smtp", "submission", "submissions", "imap", "imaps")
# Ports are picked here: below Linux's ephemeral range (32768-60999), so an outgoing
# connection cannot take one between the pick and the daemon's bind.
PORT_RANGE = (20000, 32000)
PORT_LOCK = "/tmp/nfp-mailstack-ports.lock"
PORT_REGISTRY = "/tmp/nfp-mailstack-ports.json"
RESERVATION_SECONDS = 120
MESSAGE_SIZE_LIMIT = 128 * 1024 * 1024
# The longest unix socket path below DIR (Dovecot's and Postfix's), plus a margin; the
# kernel's limit is 108 bytes including the NUL, and Postfix exits 1 without a word.
LONGEST_SOCKET_SUFFIX = len("/postfix-queue/private/proxywrite") + 8
UNIX_PATH_MAX = 107

POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"
OPENSSL = "openssl"

# Postfix's queue directories ($meta_directory/postfix-files, flag c): created here
# instead of by post-install create-missing, which costs a shell and a dozen postconf.
POSTFIX_QUEUE_DIRS = [
    # (name, owner, group, mode); owner None = root, "postfix" = mail_owner
    ("active", "postfix", None, 0o700), ("bounce", "postfix", None, 0o700),
    ("corrupt", "postfix", None, 0o700), ("defer", "postfix", None, 0o700),
    ("deferred", "postfix", None, 0o700), ("flush", "postfix", None, 0o700),
    ("hold", "postfix", None, 0o700), ("incoming", "postfix", None, 0o700),
    ("private", "postfix", None, 0o700), ("maildrop", "postfix", "postdrop", 0o730),
    ("public", "postfix", "postdrop", 0o710), ("pid", None, None, 0o755),
    ("saved", "postfix", None, 0o700), ("trace", "postfix", None, 0o700),
]


class StackError(Exception):
    pass


# --------------------------------------------------------------------------- paths


class Paths:
    def __init__(self, dir):
        d = self.dir = os.path.abspath(dir)
        self.info = f"{d}/stack.json"
        self.ca_key, self.ca_cert = f"{d}/ca.key", f"{d}/ca.pem"
        self.key, self.cert = f"{d}/server.key", f"{d}/server.pem"
        self.dovecot_conf, self.users = f"{d}/dovecot.conf", f"{d}/users"
        self.dovecot_run, self.dovecot_state = f"{d}/dovecot", f"{d}/dovecot-state"
        self.dovecot_pid = f"{d}/dovecot/master.pid"
        self.lmtp, self.auth = f"{d}/dovecot/lmtp", f"{d}/dovecot/auth-postfix"
        self.postfix_conf = f"{d}/postfix"
        self.queue, self.data = f"{d}/postfix-queue", f"{d}/postfix-data"
        self.postfix_pid = f"{d}/postfix-queue/pid/master.pid"
        self.mail = f"{d}/mail"
        self.dovecot_log, self.postfix_log = f"{d}/dovecot.log", f"{d}/postfix.log"

    def home(self, address):
        local, domain = address.rsplit("@", 1)
        return f"{self.mail}/{domain}/{local}"


# --------------------------------------------------------------------------- processes


def _read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid):
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return False


def _children_map():
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(name))
    return children


DAEMON_EXES = ("/usr/sbin/dovecot", "/usr/lib/dovecot/", "/usr/sbin/post", "/usr/lib/postfix/")


def processes_of(dir):
    """Every live process of the stack in DIR: the two masters and their descendants, and
    any Dovecot or Postfix program working under DIR (Postfix's work in the queue
    directory, Dovecot's in its base_dir or a home) or naming a file under it: that finds
    the orphans of a master that died. Other programs (a shell cd'ed into DIR, a tail -f
    of a log) are never counted."""
    p = Paths(dir)
    prefix = p.dir + "/"
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue
        if not exe.startswith(DAEMON_EXES):
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            cwd = ""
        if cwd == p.dir or cwd.startswith(prefix):
            found.add(pid)
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if prefix.encode() in f.read():
                    found.add(pid)
        except OSError:
            pass
    children = _children_map()
    todo = [pid for pid in (_read_pid(p.dovecot_pid), _read_pid(p.postfix_pid))
            if _alive(pid) and _is_daemon(pid)]
    todo += list(found)
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo += [c for c in children.get(pid, []) if c not in found]
    return sorted(pid for pid in found if pid != os.getpid() and _alive(pid))


def _exe(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _is_daemon(pid):
    return _exe(pid).startswith(DAEMON_EXES)


def _running(p):
    """(dovecot master pid or None, postfix master pid or None), alive ones only."""
    d, f = _read_pid(p.dovecot_pid), _read_pid(p.postfix_pid)
    return ((d if _alive(d) and _is_daemon(d) else None),
            (f if _alive(f) and _is_daemon(f) else None))


def _wait_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while True:
        left = [pid for pid in pids if _alive(pid)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.005)


# --------------------------------------------------------------------------- ports


@contextlib.contextmanager
def _port_lock():
    fd = os.open(PORT_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _port_free(port):
    for host in (HOST, HOST_REMOTE):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the daemons do
            s.bind((host, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def _pick_ports(dir, previous):
    """Five free loopback ports, the previous ones of DIR when they are still free.
    Reserved in a registry under a lock, so parallel starts never pick the same port
    before the daemons have bound it."""
    with _port_lock():
        try:
            with open(PORT_REGISTRY) as f:
                registry = json.load(f)
        except (OSError, ValueError):
            registry = {}
        now = time.time()
        registry = {port: r for port, r in registry.items()
                    if now - r["at"] < RESERVATION_SECONDS and r["dir"] != dir}
        taken = {int(port) for port in registry}
        ports = {}
        for name in PORT_NAMES:
            old = (previous or {}).get(f"{name}_port")
            if old and old not in taken and _port_free(old):
                ports[name] = old
                taken.add(old)
                continue
            for _ in range(1000):
                port = random.randint(*PORT_RANGE)
                if port not in taken and _port_free(port):
                    break
            else:
                raise StackError("no free loopback port found")
            ports[name] = port
            taken.add(port)
        for port in ports.values():
            registry[str(port)] = {"dir": dir, "at": now}
        tmp = f"{PORT_REGISTRY}.{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(registry, f)
        os.chmod(tmp, 0o666)
        os.replace(tmp, PORT_REGISTRY)
    return ports


# --------------------------------------------------------------------------- files


def _write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def _run(cmd, **kw):
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, **kw)
    if r.returncode:
        raise StackError(f"{' '.join(cmd)} failed ({r.returncode}): "
                         f"{r.stderr.decode(errors='replace').strip()}")
    return r


def _make_certificates(p):
    """A throw-away CA and a server certificate it signed (ECDSA P-256: generated in
    milliseconds). rustls refuses a self-signed end-entity certificate."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _run([OPENSSL, "req", "-x509", *ec, "-keyout", p.ca_key, "-out", p.ca_cert, "-days", "3650",
          "-subj", f"/O=nfp-gateway tests/CN=mailstack CA {os.path.basename(p.dir)}",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    csr = f"{p.dir}/server.csr"
    ext = f"{p.dir}/server.ext"
    _run([OPENSSL, "req", "-new", *ec, "-keyout", p.key, "-out", csr, "-subj", "/CN=localhost"])
    _write(ext, "basicConstraints = critical,CA:FALSE\n"
                "keyUsage = critical,digitalSignature\n"
                "extendedKeyUsage = serverAuth\n"
                "subjectAltName = DNS:localhost,IP:127.0.0.1,IP:127.0.0.2,IP:::1\n"
                "subjectKeyIdentifier = hash\n"
                "authorityKeyIdentifier = keyid\n")
    _run([OPENSSL, "x509", "-req", "-in", csr, "-CA", p.ca_cert, "-CAkey", p.ca_key,
          "-CAcreateserial", "-out", p.cert, "-days", "3650", "-extfile", ext])
    for path in (csr, ext, f"{p.dir}/ca.srl"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    os.chmod(p.ca_key, 0o600)
    os.chmod(p.key, 0o600)
    os.chmod(p.ca_cert, 0o644)
    os.chmod(p.cert, 0o644)


def _check_mailboxes(mailboxes):
    if not isinstance(mailboxes, dict) or not mailboxes:
        raise StackError('config: "mailboxes" must be a non-empty object {address: password}')
    out = {}
    for address, password in mailboxes.items():
        if not isinstance(address, str) or not re.fullmatch(
                r"[A-Za-z0-9._%=-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", address):
            raise StackError(f"config: not a plain mailbox address: {address!r} "
                             "(no +detail, no quotes)")
        if not isinstance(password, str) or not password or re.search(r"[:\s]", password):
            raise StackError(f"config: the password of {address} must be a non-empty string "
                             "without ':' or white space")
        out[address.lower()] = password
    return out


def _dovecot_conf(p, ports, name):
    return f"""\
# Generated by tests/mailstack/mailstack.py: a private Dovecot, nothing from /etc/dovecot.
base_dir = {p.dovecot_run}
state_dir = {p.dovecot_state}
instance_name = {name}
protocols = imap lmtp
listen = {HOST}, {HOST_REMOTE}
log_path = {p.dovecot_log}
auth_verbose = yes

ssl = yes
ssl_cert = <{p.cert}
ssl_key = <{p.key}
ssl_min_protocol = TLSv1.2
# Plaintext LOGIN only after STARTTLS, except from a "secure" client: Dovecot counts a
# client connecting to the server's own address (127.0.0.1 -> 127.0.0.1) as one, but not
# one connecting to 127.0.0.2 (imap_host_remote), which sees LOGINDISABLED.
disable_plaintext_auth = yes
auth_mechanisms = plain login
# A failed login is still answered up to 0.5 s late: the auth process flushes failures
# on a 500 ms timer whatever this says (and passwd-file cannot set nodelay on failure).
auth_failure_delay = 0
auth_username_format = %Lu
recipient_delimiter = +

first_valid_uid = 8
mail_location = maildir:~/Maildir
mail_max_userip_connections = 500
default_process_limit = 1000
default_client_limit = 4000

namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {p.users}
}}
userdb {{
  driver = passwd-file
  args = {p.users}
}}

service imap-login {{
  inet_listener imap {{
    port = {ports["imap"]}
  }}
  inet_listener imaps {{
    port = {ports["imaps"]}
    ssl = yes
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
service auth {{
  unix_listener auth-postfix {{
    mode = 0666
  }}
}}
# No authentication penalty: after a failed login (a test of a wrong password), anvil
# otherwise delays every later login from 127.0.0.1 by 2, 4, 8 then 15 s.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


def _postfix_main_cf(p, domains):
    return f"""\
# Generated by tests/mailstack/mailstack.py: a private Postfix, nothing from /etc/postfix.
compatibility_level = 3.6
queue_directory = {p.queue}
data_directory = {p.data}
mail_owner = postfix
setgid_group = postdrop
myhostname = mailstack.localhost
mydomain = localhost
myorigin = $myhostname
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 this test stack has no local delivery
alias_maps =
alias_database =
inet_interfaces = {HOST}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains =
biff = no
append_dot_mydomain = no
smtpd_banner = $myhostname ESMTP mailstack

# No syslog: postlogd (master.cf) writes this file.
maillog_file = {p.postfix_log}
maillog_file_prefixes = {p.dir}

virtual_mailbox_domains = {", ".join(domains)}
virtual_mailbox_maps = texthash:{p.postfix_conf}/vmailbox
virtual_transport = lmtp:unix:{p.lmtp}
default_transport = error:5.7.1 this test stack delivers only to its own mailboxes
relay_transport = $default_transport
recipient_delimiter = +

smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_reject_unlisted_recipient = yes
disable_vrfy_command = yes
smtpd_peername_lookup = no
smtpd_client_connection_count_limit = 0
smtputf8_enable = no
message_size_limit = {MESSAGE_SIZE_LIMIT}
mailbox_size_limit = 0
virtual_mailbox_limit = 0

smtpd_tls_chain_files = {p.key}, {p.cert}
smtpd_tls_security_level = may
smtpd_tls_loglevel = 0
smtpd_sasl_type = dovecot
smtpd_sasl_path = {p.auth}
smtpd_sasl_auth_enable = no
smtpd_sasl_authenticated_header = no

# Speed: no pacing, no error naps, fast retries when Dovecot was down.
in_flow_delay = 0
smtpd_error_sleep_time = 0
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 10s
delay_warning_time = 0
"""


def _postfix_master_cf(ports):
    auth = """\
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
  -o smtpd_client_restrictions=
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_recipient_restrictions=reject_unauth_destination
"""
    return f"""\
# Generated by tests/mailstack/mailstack.py. No chroot.
{HOST}:{ports["smtp"]} inet n - n - - smtpd
{HOST}:{ports["submission"]} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
{auth}{HOST}:{ports["submissions"]} inet n - n - - smtpd
  -o syslog_name=postfix/submissions
  -o smtpd_tls_wrappermode=yes
{auth}pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n -  0 cleanup
qmgr       unix  n - n 300 1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -  - trivial-rewrite
bounce     unix  - - n -  0 bounce
defer      unix  - - n -  0 bounce
trace      unix  - - n -  0 bounce
verify     unix  - - n -  1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -  - proxymap
proxywrite unix  - - n -  1 proxymap
smtp       unix  - - n -  - smtp
relay      unix  - - n -  - smtp
showq      unix  n - n -  - showq
error      unix  - - n -  - error
retry      unix  - - n -  - error
discard    unix  - - n -  - discard
lmtp       unix  - - n -  - lmtp
anvil      unix  - - n -  1 anvil
scache     unix  - - n -  1 scache
postlog    unix-dgram n - n - 1 postlogd
"""


def _postfix_dirs(p):
    pf = pwd.getpwnam("postfix")
    postdrop = grp.getgrnam("postdrop").gr_gid
    os.makedirs(p.queue, exist_ok=True)
    os.chmod(p.queue, 0o755)
    for name, owner, group, mode in POSTFIX_QUEUE_DIRS:
        path = f"{p.queue}/{name}"
        os.makedirs(path, exist_ok=True)
        os.chown(path, pf.pw_uid if owner else 0, postdrop if group else (pf.pw_gid if owner else 0))
        os.chmod(path, mode)
    os.makedirs(p.data, exist_ok=True)
    os.chown(p.data, pf.pw_uid, pf.pw_gid)
    os.chmod(p.data, 0o700)


def _maildirs(p, mailboxes):
    mail = pwd.getpwnam("mail")
    os.makedirs(p.mail, exist_ok=True)
    os.chown(p.mail, mail.pw_uid, mail.pw_gid)
    os.chmod(p.mail, 0o700)
    for address in mailboxes:
        home = p.home(address)
        parts = [os.path.dirname(home), home, f"{home}/Maildir"]
        parts += [f"{home}/Maildir/{sub}" for sub in ("cur", "new", "tmp")]
        for path in parts:
            if not os.path.isdir(path):
                os.mkdir(path, 0o700)
                os.chown(path, mail.pw_uid, mail.pw_gid)


def _write_configs(p, ports, mailboxes):
    mail = pwd.getpwnam("mail")
    name = "mailstack-" + re.sub(r"[^A-Za-z0-9_-]", "_", os.path.basename(p.dir))
    _write(p.dovecot_conf, _dovecot_conf(p, ports, name))
    _write(p.users, "".join(f"{a}:{{PLAIN}}{pw}:{mail.pw_uid}:{mail.pw_gid}::{p.home(a)}::\n"
                            for a, pw in mailboxes.items()), 0o640)
    os.chown(p.users, 0, grp.getgrnam("dovecot").gr_gid)
    os.makedirs(p.postfix_conf, exist_ok=True)
    os.chmod(p.postfix_conf, 0o755)
    domains = sorted({a.rsplit("@", 1)[1] for a in mailboxes})
    _write(f"{p.postfix_conf}/main.cf", _postfix_main_cf(p, domains))
    _write(f"{p.postfix_conf}/master.cf", _postfix_master_cf(ports))
    _write(f"{p.postfix_conf}/vmailbox", "".join(f"{a} {a}\n" for a in mailboxes))
    # Postfix naps 300 ms in each process while its configuration is under 2 s old.
    old = time.time() - 60
    for f in ("main.cf", "master.cf", "vmailbox"):
        os.utime(f"{p.postfix_conf}/{f}", (old, old))


# --------------------------------------------------------------------------- readiness


def _client_context(ca_cert):
    ctx = ssl.create_default_context(cafile=ca_cert)
    return ctx


def _probe(name, port, ctx, host=HOST):
    """True when the service on port greets properly (TLS verified for implicit TLS)."""
    try:
        with socket.create_connection((host, port), timeout=2) as raw:
            s = raw
            if name in ("submissions", "imaps"):
                s = ctx.wrap_socket(raw, server_hostname=host)
            s.settimeout(2)
            greeting = s.recv(512)
            if name in ("smtp", "submission", "submissions"):
                ok = greeting.startswith(b"220")
                s.sendall(b"QUIT\r\n")
            else:
                ok = greeting.startswith(b"* OK")
                s.sendall(b"z LOGOUT\r\n")
            return ok
    except (OSError, ssl.SSLError):
        return False


def _wait_ready(p, ports, ca_cert, timeout, procs):
    ctx = _client_context(ca_cert)
    deadline = time.monotonic() + timeout
    pending = [(n, ports[n], HOST) for n in PORT_NAMES]
    pending += [(n, ports[n], HOST_REMOTE) for n in ("imap", "imaps")]
    sockets = [p.lmtp, p.auth]
    while True:
        pending = [(n, port, h) for n, port, h in pending if not _probe(n, port, ctx, h)]
        sockets = [s for s in sockets if not os.path.exists(s)]
        if not pending and not sockets:
            return
        if time.monotonic() > deadline:
            raise StackError("not ready after %.0f s: %s" % (
                timeout, ", ".join([f"{n} {h}:{port}" for n, port, h in pending] + sockets)))
        for what, pid in procs.items():
            if not _alive(pid):
                raise StackError(f"{what} (pid {pid}) exited during start-up")
        time.sleep(0.005)


def _log_tail(path, lines=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


# --------------------------------------------------------------------------- start/stop


def start(dir, mailboxes=None, timeout=15):
    """Start the stack in DIR (created if needed) and return its Stack. mailboxes
    {address: password} may be omitted when DIR holds a previous stack.json: a stopped
    stack restarts with its mailboxes, mail, certificates and, when still free, ports."""
    t0 = time.monotonic()
    p = Paths(dir)
    # postfix, dovecot and mail must reach DIR: every existing parent must be searchable
    # by others (not under /root, whose mode is 700).
    parent = os.path.dirname(p.dir)
    while True:
        if os.path.isdir(parent) and not os.stat(parent).st_mode & 0o001:
            raise StackError(f"{parent} is not searchable by other users (mode "
                             f"{os.stat(parent).st_mode & 0o777:o}): put DIR under /tmp")
        if parent == "/":
            break
        parent = os.path.dirname(parent)
    if len(p.dir) + LONGEST_SOCKET_SUFFIX > UNIX_PATH_MAX:
        raise StackError(f"{p.dir} is too long for unix sockets: keep DIR to "
                         f"{UNIX_PATH_MAX - LONGEST_SOCKET_SUFFIX} characters at most "
                         "(e.g. /tmp/ms-XXXXXXXX)")
    if os.geteuid() != 0:
        raise StackError("the mail stack needs root (Dovecot and Postfix switch users)")
    for tool in (DOVECOT, POSTFIX):
        if not os.path.exists(tool):
            raise StackError(f"{tool} is missing: run scripts/install-deps.sh")
    os.makedirs(p.dir, exist_ok=True)
    os.chmod(p.dir, 0o755)
    leftover = processes_of(p.dir)
    if leftover:
        raise StackError(f"{p.dir}: a stack is already running there (pids {leftover}); "
                         "stop it first")
    previous = None
    with contextlib.suppress(OSError, ValueError):
        with open(p.info) as f:
            previous = json.load(f)
    if mailboxes is None:
        if not previous:
            raise StackError("no mailboxes given and no previous stack.json in " + p.dir)
        mailboxes = previous["mailboxes"]
    mailboxes = _check_mailboxes(mailboxes)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(p.info)  # written again once everything answers

    if not (os.path.exists(p.cert) and os.path.exists(p.key) and os.path.exists(p.ca_cert)):
        _make_certificates(p)
    ports = _pick_ports(p.dir, previous)
    _write_configs(p, ports, mailboxes)
    _maildirs(p, mailboxes)
    _postfix_dirs(p)
    # Skip postfix-script's integrity check (postfix check: 1.7 s); the directories
    # above are what its create-missing step would make.
    with open(f"{p.queue}/quick-start", "w"):
        pass
    for stale in (p.dovecot_pid, p.postfix_pid):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(stale)

    env = dict(os.environ)
    env.pop("MAIL_CONFIG", None)
    # Daemons inherit file descriptors: stdin from /dev/null, output to the log files,
    # nothing else, or a test runner's pipe never closes.
    dlog = open(p.dovecot_log, "ab")
    plog = open(p.postfix_log, "ab")
    try:
        dov = subprocess.Popen([DOVECOT, "-c", p.dovecot_conf], stdin=subprocess.DEVNULL,
                               stdout=dlog, stderr=dlog, close_fds=True, env=env, cwd="/")
        pfx = subprocess.Popen([POSTFIX, "-c", p.postfix_conf, "start"],
                               stdin=subprocess.DEVNULL, stdout=plog, stderr=plog,
                               close_fds=True, env=env, cwd="/")
        drc, prc = dov.wait(timeout), pfx.wait(timeout)
    finally:
        dlog.close()
        plog.close()
    try:
        if drc:
            raise StackError(f"dovecot exited {drc}:\n{_log_tail(p.dovecot_log)}")
        if prc:
            raise StackError(f"postfix start exited {prc}:\n{_log_tail(p.postfix_log)}")
        pids = {}
        deadline = time.monotonic() + timeout
        while len(pids) < 2:
            d, f = _running(p)
            if d:
                pids["dovecot"] = d
            if f:
                pids["postfix"] = f
            if time.monotonic() > deadline:
                raise StackError(f"no master pid file after {timeout} s")
            if len(pids) < 2:
                time.sleep(0.005)
        _wait_ready(p, ports, p.ca_cert, max(1, deadline - time.monotonic()), pids)
    except BaseException as e:
        _stop(p, quiet=True)
        if isinstance(e, StackError):
            raise StackError(f"{e}\n--- {p.dovecot_log}\n{_log_tail(p.dovecot_log)}"
                             f"--- {p.postfix_log}\n{_log_tail(p.postfix_log)}") from None
        raise
    info = {
        "dir": p.dir,
        "host": HOST,
        **{f"{n}_port": ports[n] for n in PORT_NAMES},
        "imap_host_remote": HOST_REMOTE,
        "ca_cert": p.ca_cert,
        "mailboxes": mailboxes,
        "pids": pids,
        "logs": {"dovecot": p.dovecot_log, "postfix": p.postfix_log},
        "start_seconds": round(time.monotonic() - t0, 3),
    }
    tmp = p.info + ".tmp"
    _write(tmp, json.dumps(info, indent=2) + "\n")
    os.replace(tmp, p.info)
    return Stack(p.dir, info)


def _stop(p, quiet=False, timeout=10):
    procs = processes_of(p.dir)
    d, f = _running(p)
    # postfix-script's "stop" does exactly this (SIGTERM to the master), then sleeps whole
    # seconds between checks. Dovecot's master kills its children on SIGTERM, then polls
    # for them once a second (stop took 1.0 s): once every other process is gone it only
    # has its own pid file left to remove, so it and its log process get SIGKILL.
    dovecot_tail = set()
    if d:
        dovecot_tail = {d} | {pid for pid in procs if _exe(pid) == "/usr/lib/dovecot/log"}
    for pid in (d, f):
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while True:
        left = [pid for pid in procs if _alive(pid)]
        if not left or set(left) <= dovecot_tail or time.monotonic() > deadline:
            break
        time.sleep(0.002)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    left = _wait_gone(left, 5)
    # Anything forked meanwhile
    late = processes_of(p.dir)
    for pid in late:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    left = _wait_gone(left + late, 5)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(p.dovecot_pid)
    if left and not quiet:
        raise StackError(f"processes of {p.dir} survived SIGKILL: {left}")
    return procs


def stop(dir):
    """Stop the stack in DIR and wait until every one of its processes is gone."""
    p = Paths(dir)
    return _stop(p)


def status(dir):
    p = Paths(dir)
    d, f = _running(p)
    try:
        with open(p.info) as fh:
            info = json.load(fh)
    except (OSError, ValueError):
        info = None
    return {"dir": p.dir, "dovecot": d, "postfix": f, "processes": processes_of(p.dir),
            "running": bool(d and f), "info": info}


# --------------------------------------------------------------------------- clients


def _imap_utf7_encode(name):
    out, buf = [], []

    def flush():
        if buf:
            b = "".join(buf).encode("utf-16-be")
            out.append("&" + base64.b64encode(b).decode().rstrip("=").replace("/", ",") + "-")
            buf.clear()
    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


def _imap_utf7_decode(name):
    def dec(m):
        s = m.group(1)
        if not s:
            return "&"
        s = s.replace(",", "/")
        return base64.b64decode(s + "=" * (-len(s) % 4)).decode("utf-16-be")
    return re.sub(r"&([A-Za-z0-9+,]*)-", dec, name)


def _quote(name):
    name = _imap_utf7_encode(name)
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check(typ, data, what):
    if typ != "OK":
        raise StackError(f"IMAP {what}: {typ} {data!r}")
    return data


class Stack:
    """A running stack, as described by DIR/stack.json."""

    def __init__(self, dir, info):
        self.dir = dir
        self.info = info
        for key in ("host", "smtp_port", "submission_port", "submissions_port", "imap_port",
                    "imaps_port", "imap_host_remote", "ca_cert", "mailboxes", "pids", "logs"):
            setattr(self, key, info.get(key))
        self.host = self.host or HOST

    @classmethod
    def load(cls, dir):
        p = Paths(dir)
        with open(p.info) as f:
            return cls(p.dir, json.load(f))

    def stop(self):
        return stop(self.dir)

    def ssl_context(self):
        return _client_context(self.ca_cert)

    # ---- SMTP

    def send(self, mail_from, rcpt_to, eml, port="smtp", auth=None, starttls=None, timeout=30):
        """Send eml (bytes) with SMTP. port: "smtp" (the MX port, plain unless
        starttls=True), "submission" (STARTTLS, CA verified, then AUTH when auth=(user,
        password)) or "submissions" (implicit TLS). Returns smtplib's dict of refused
        recipients (raises smtplib.SMTPRecipientsRefused when all are refused)."""
        if isinstance(rcpt_to, str):
            rcpt_to = [rcpt_to]
        if isinstance(eml, str):
            eml = eml.encode()
        ctx = self.ssl_context()
        if port == "submissions":
            conn = smtplib.SMTP_SSL(self.host, self.submissions_port, timeout=timeout,
                                    context=ctx)
        elif port in ("smtp", "submission"):
            conn = smtplib.SMTP(self.host, getattr(self, f"{port}_port"), timeout=timeout)
        else:
            raise ValueError(f"port must be smtp, submission or submissions, not {port!r}")
        with conn:
            conn.ehlo("client.localhost")
            if starttls is None:
                starttls = port == "submission"
            if starttls:
                conn.starttls(context=ctx)
                conn.ehlo("client.localhost")
            if auth:
                conn.login(*auth)
            return conn.sendmail(mail_from, rcpt_to, eml)

    # ---- IMAP

    def imap(self, user, password, host=None):
        """A logged-in imaplib connection over implicit TLS (CA verified)."""
        conn = imaplib.IMAP4_SSL(host or self.host, self.imaps_port,
                                 ssl_context=self.ssl_context(), timeout=30)
        try:
            conn.login(user, password)
        except BaseException:
            with contextlib.suppress(Exception):
                conn.shutdown()
            raise
        return conn

    @staticmethod
    def _fetch_all(conn, folder):
        typ, data = conn.select(_quote(folder), readonly=True)
        _check(typ, data, f"SELECT {folder}")
        if int(data[0]) == 0:
            return []
        typ, data = conn.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
        _check(typ, data, "UID FETCH")
        out = []
        for item in data:
            if isinstance(item, tuple):
                m = re.search(rb"UID (\d+)", item[0])
                out.append((int(m.group(1)), item[1]))
        out.sort()
        return out

    def fetch(self, user, password, folder="INBOX"):
        """Every message in folder: [(uid, bytes)], by UID."""
        conn = self.imap(user, password)
        try:
            return self._fetch_all(conn, folder)
        finally:
            with contextlib.suppress(Exception):
                conn.logout()

    def count(self, user, password, folder="INBOX"):
        conn = self.imap(user, password)
        try:
            return self._status_messages(conn, folder)
        finally:
            with contextlib.suppress(Exception):
                conn.logout()

    @staticmethod
    def _status_messages(conn, folder):
        typ, data = conn.status(_quote(folder), "(MESSAGES)")
        _check(typ, data, f"STATUS {folder}")
        return int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))

    def wait_for(self, user, password, count, folder="INBOX", timeout=20, interval=0.02):
        """Poll (STATUS) until folder holds at least count messages; return them all as
        bytes, by UID. Raises TimeoutError with what was there."""
        conn = self.imap(user, password)
        try:
            deadline = time.monotonic() + timeout
            while True:
                n = self._status_messages(conn, folder)
                if n >= count:
                    return [body for _, body in self._fetch_all(conn, folder)]
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{user} {folder}: {n} message(s) after {timeout} s, "
                                       f"waited for {count}")
                time.sleep(interval)
        finally:
            with contextlib.suppress(Exception):
                conn.logout()

    def folders(self, user, password):
        conn = self.imap(user, password)
        try:
            typ, data = conn.list('""', "*")
            _check(typ, data, "LIST")
            out = []
            for line in data:
                if line is None:
                    continue
                if isinstance(line, tuple):  # a literal name
                    out.append(_imap_utf7_decode(line[1].decode()))
                    continue
                m = re.match(rb'\((.*?)\) (NIL|"(?:[^"\\]|\\.)*") (.*)$', line)
                name = m.group(3).decode()
                if name.startswith('"'):
                    name = re.sub(r'\\(.)', r'\1', name[1:-1])
                out.append(_imap_utf7_decode(name))
            return out
        finally:
            with contextlib.suppress(Exception):
                conn.logout()

    def append(self, user, password, folder, eml, flags=None):
        """IMAP APPEND eml into folder (created when missing)."""
        if isinstance(eml, str):
            eml = eml.encode()
        conn = self.imap(user, password)
        try:
            typ, data = conn.append(_quote(folder), flags, None, eml)
            if typ != "OK" and b"TRYCREATE" in b" ".join(d for d in data if d):
                _check(*conn.create(_quote(folder)), f"CREATE {folder}")
                typ, data = conn.append(_quote(folder), flags, None, eml)
            _check(typ, data, f"APPEND {folder}")
        finally:
            with contextlib.suppress(Exception):
                conn.logout()


def load(dir):
    return Stack.load(dir)


# --------------------------------------------------------------------------- CLI


def _header(msg, name):
    value = msg.get(name)
    if value is None:
        return ""
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except Exception:
        return str(value)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="start the stack in DIR")
    s.add_argument("dir")
    s.add_argument("--config", help='JSON {"mailboxes": {address: password}}; '
                                     "default: the previous DIR/stack.json")
    s = sub.add_parser("stop", help="stop the stack in DIR and wait for its processes")
    s.add_argument("dir")
    s = sub.add_parser("status", help="print DIR/stack.json and what runs; exit 1 if not")
    s.add_argument("dir")
    s = sub.add_parser("send", help="send FILE.eml (- for stdin)")
    s.add_argument("dir")
    s.add_argument("--from", dest="mail_from", required=True)
    s.add_argument("--to", action="append", required=True)
    s.add_argument("--port", default="smtp", choices=["smtp", "submission", "submissions"])
    s.add_argument("--user")
    s.add_argument("--password")
    s.add_argument("file")
    s = sub.add_parser("fetch", help="list the messages of a folder")
    s.add_argument("dir")
    s.add_argument("user")
    s.add_argument("password")
    s.add_argument("folder", nargs="?", default="INBOX")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "start":
            mailboxes = None
            if a.config:
                with open(a.config) as f:
                    mailboxes = json.load(f).get("mailboxes")
                if mailboxes is None:
                    raise StackError(f'{a.config}: no "mailboxes"')
            stack = start(a.dir, mailboxes)
            print(json.dumps(stack.info, indent=2))
        elif a.cmd == "stop":
            t0 = time.monotonic()
            procs = stop(a.dir)
            print(f"stopped {len(procs)} processes in {time.monotonic() - t0:.3f} s",
                  file=sys.stderr)
        elif a.cmd == "status":
            st = status(a.dir)
            print(json.dumps(st, indent=2))
            return 0 if st["running"] else 1
        elif a.cmd == "send":
            eml = sys.stdin.buffer.read() if a.file == "-" else open(a.file, "rb").read()
            auth = (a.user, a.password) if a.user else None
            refused = load(a.dir).send(a.mail_from, a.to, eml, port=a.port, auth=auth)
            for rcpt, (code, msg) in refused.items():
                print(f"refused {rcpt}: {code} {msg.decode(errors='replace')}", file=sys.stderr)
            return 1 if refused else 0
        elif a.cmd == "fetch":
            msgs = load(a.dir).fetch(a.user, a.password, a.folder)
            print(f"{len(msgs)} message(s) in {a.folder}")
            for uid, raw in msgs:
                m = email.parser.BytesHeaderParser().parsebytes(raw)
                print(f"{uid}\t{_header(m, 'From')}\t{_header(m, 'Subject')}")
    except (StackError, OSError, smtplib.SMTPException, imaplib.IMAP4.error) as e:
        print(f"mailstack: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
