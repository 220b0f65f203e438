"""The store fails under the running daemon (issue 13), on the real mail
stack: the SQLite store's filesystem fills up while mail arrives and is freed
again, and the PostgreSQL server is stopped and started in the middle of a
run. In both, without a restart of the gateway: every message is stored once
and filed once, every mail sent once, within a bounded time of the store's
return; meanwhile /healthz answers 503 with the reason, the log says once
that the store is failing and once that it is back (with how long it was
down), and (SQLite scenario) the systemd watchdog stops being fed after
`stalled-after` and is fed again once the store is back.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from harness import Failure, Net, check, wait_for
from resilience import check_delivered, check_stored_once, log_lines, settle
from storms import append_all

SENDERS = ("AT", "FR", "IT", "RU", "ES", "DE", "SE")
# A long letter: each message takes room in the store several times over
# (raw, decrypted, the forward and the acknowledgement, each encrypted).
BODY = ("Dear colleagues,\n\nwe would be grateful for the Secretariat's assistance with a training "
        "of border police officers at the main crossing points, request {i:03d}.\n\n"
        + "The programme, the list of participants and the schedule follow. " * 300
        + "\n\nKind regards\n")
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def unhealthy(port: int, saying: str) -> tuple[int, str] | None:
    """/healthz's answer when it is 503 and its reason says `saying`."""
    status, body = healthz(port)
    return (status, body) if status == 503 and saying in body else None


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def requests(net: Net, first: int, n: int) -> list[bytes]:
    return [net.mail_from(SENDERS[i % len(SENDERS)], f"[REQUEST] Border police training {i:03d}", BODY.format(i=i))
            for i in range(first, first + n)]


def expected(first: int, n: int) -> dict[str, int]:
    """Each request: a forward to the Secretariat, an acknowledgement to its sender."""
    want = collections.Counter({"secretariat": n})
    want.update(SENDERS[i % len(SENDERS)] for i in range(first, first + n))
    return dict(want)


def lines(net: Net, text: str) -> list[str]:
    return [l for l in log_lines(net) if text in l]


def check_once_each_way(net: Net) -> str:
    """The log says once per outage that the store failed and once that it
    is back, not once per retry; returns the last "back". A server that is
    shutting down may still commit a transaction between two that fail (seen
    on a busy machine: PostgreSQL's fast shutdown took seconds), which ends
    the outage and starts a second one: a few outages, each closed."""
    log = [l for l in log_lines(net) if "the store cannot be written" in l or "the store is writable again" in l]
    failing = [l for l in log if "cannot be written" in l]
    back = [l for l in log if "writable again" in l]
    check(1 <= len(failing) <= 3, f"'the store cannot be written' logged {len(failing)} times:\n" + "\n".join(failing[:5]))
    alternating = all(("cannot be written" in l) == (i % 2 == 0) for i, l in enumerate(log))
    check(alternating and len(back) == len(failing) and all("down_for=" in b for b in back),
          "each 'cannot be written' is followed by one 'writable again':\n" + "\n".join(log[:8]))
    return back[-1]


def check_quiet(net: Net, since: int) -> None:
    """From line `since` on, the gateway's own warnings and errors are few:
    nothing per retry (the store's failure, and the watchdog's, once each;
    sqlx's own lines about the connections it drops are not counted)."""
    noisy = [l for l in log_lines(net)[since:] if re.search(r"\b(WARN|ERROR) nfp_gateway", l)]
    check(len(noisy) <= 3, f"{len(noisy)} warnings and errors while the store failed:\n" + "\n".join(noisy[:12]))


class Tmpfs:
    """A real, small filesystem (the suite runs as root)."""

    def __init__(self, path: Path, size: str):
        self.path = path
        path.mkdir()
        out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                             capture_output=True, text=True)
        check(out.returncode == 0, f"mounting a tmpfs needs root: {out.stderr}")
        self.filler = path / "filler"

    def fill(self) -> int:
        written = 0
        with open(self.filler, "wb", buffering=0) as f:
            block = b"\x5a" * 65536
            while True:
                try:
                    n = f.write(block)
                except OSError as e:
                    check(e.errno == 28, f"filling: {e}")
                    break
                if not n:
                    break
                written += n
        return written

    def free(self) -> None:
        self.filler.unlink()

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


def disk_fills_while_mail_arrives() -> None:
    """The SQLite store's filesystem (a real 8 MiB tmpfs) is full while 26
    requests arrive, and freed after the watchdog has stopped being fed."""
    port = free_port()
    net = Net("diskfull", engine="sqlite", extra_config=f'listen = "127.0.0.1:{port}"\nstalled-after = "12s"\n')
    fs = Tmpfs(net.dir / "store", "8m")
    notify_path = net.dir / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    try:
        net.store.path = fs.path / "nfp-gateway.db"
        net.config.write_text(net.config.read_text().replace(
            "role = ", f'database = "sqlite://{net.store.path}"\nrole = ', 1))
        made = net.cli("migrate")
        check(made.returncode == 0, f"migrate: {made.stdout}{made.stderr}")
        first = requests(net, 0, 1)
        later = requests(net, 1, 26)
        net.start_gateway(env={"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "1000000", "NFP_GATEWAY_LOG": os.environ.get("NFP_GATEWAY_LOG", "info")})
        append_all(net, first)
        settle(net, inbound=1, outbox=2, timeout=60)
        sock.settimeout(5)
        check(b"WATCHDOG=1" in [sock.recv(64) for _ in range(3)], "the watchdog is not fed while all is well")

        mark = len(log_lines(net))
        filled = fs.fill()
        append_all(net, later)
        status, body = wait_for("/healthz says the store cannot be written",
                                lambda: unhealthy(port, "cannot be written"), 60, net)
        check("full" in body, f"/healthz does not give the reason: {body}")
        stored_while_full = net.rows("SELECT COUNT(*) FROM inbound")[0][0]
        check(net.gateway_folder("INBOX") >= 26 - (stored_while_full - 1),
              f"messages left the inbox without being stored: {net.gateway_folder('INBOX')} in it, "
              f"{stored_while_full} stored")
        # After `stalled-after` of failing, the watchdog is no longer fed.
        wait_for("the watchdog withheld", lambda: lines(net, "the systemd watchdog is no longer fed"), 60, net)
        sock.settimeout(0.2)
        try:
            while sock.recv(64):
                pass
        except socket.timeout:
            pass
        sock.settimeout(3)
        try:
            got = sock.recv(64)
            raise Failure(f"the watchdog is still fed while the store cannot be written: {got!r}")
        except socket.timeout:
            pass
        failures = int(re.search(r"^nfp_gateway_store_write_failures_total (\d+)$", metrics(port), re.M).group(1))
        check("nfp_gateway_store_writable 0" in metrics(port), "the writable gauge says 1 while failing")
        check_quiet(net, mark)

        fs.free()
        freed = time.monotonic()
        settle(net, inbound=27, outbox=54, timeout=120)
        recovered = time.monotonic() - freed
        back = check_once_each_way(net)
        # The watchdog looks every half interval: the store may be written
        # again (and all settled) a moment before it next looks.
        again = wait_for("the watchdog's return logged", lambda: lines(net, "the systemd watchdog is fed again"), 30, net)
        check(len(again) == 1, f"the watchdog's return is logged {len(again)} times")
        sock.settimeout(5)
        check(sock.recv(64) == b"WATCHDOG=1", "the watchdog is not fed again")
        check(healthz(port)[0] == 200, f"/healthz after recovery: {healthz(port)}")
        m = metrics(port)
        check("nfp_gateway_store_writable 1" in m, m)
        check_stored_once(net, 27)
        check_delivered(net, expected(0, 27))
        check(net.gateway_folder("INBOX") == 0 and net.gateway_folder("Processed") == 27,
              f"INBOX {net.gateway_folder('INBOX')}, Processed {net.gateway_folder('Processed')}")
        check(net.rows("PRAGMA integrity_check") == [("ok",)], "integrity_check")
        check(net.stop_gateway() == 0, "SIGTERM")
        print(f"     filled {filled // 1024} KiB; {stored_while_full - 1} of 26 stored while full; "
              f"{failures} failed writes; all 27 filed and 54 sent {recovered:.1f}s after freeing; {back.split('INFO')[-1].strip()[:120]}")
    finally:
        sock.close()
        if net.proc is not None and net.proc.poll() is None:
            net.proc.kill()
            net.proc.wait(10)
        fs.unmount()
        net.close()


def store_server_restarts_mid_run() -> None:
    """The PostgreSQL server (a private cluster, so that the suite's own is
    untouched) stops after some of 20 requests are filed, 10 more arrive
    while it is down, then it starts again."""
    port = free_port()
    pg_dir = Path(tempfile.mkdtemp(prefix="e2e-pgrestart-", dir="/tmp"))
    os.chmod(pg_dir, 0o755)
    pg_port = free_port()
    cluster = str(ROOT / "tests" / "pg" / "cluster.sh")
    out = subprocess.run([cluster, "start", str(pg_dir), str(pg_port)], capture_output=True, text=True)
    check(out.returncode == 0, f"cluster.sh start: {out.stdout}{out.stderr}")
    server = out.stdout.strip().splitlines()[-1]
    net = None
    try:
        net = Net("pgrestart", engine="postgres", postgres_server=server,
                  extra_config=f'listen = "127.0.0.1:{port}"\n')
        first = requests(net, 0, 10)
        later = requests(net, 10, 10)
        net.start_gateway()
        append_all(net, first)
        wait_for("three messages filed", lambda: net.rows("SELECT COUNT(*) FROM inbound WHERE imap_state = 'filed'")[0][0] >= 3,
                 60, net)
        mark = len(log_lines(net))
        out = subprocess.run([cluster, "stop", str(pg_dir)], capture_output=True, text=True)
        check(out.returncode == 0, f"cluster.sh stop: {out.stdout}{out.stderr}")
        append_all(net, later)
        status, body = wait_for("/healthz says the store fails", lambda: unhealthy(port, "store"), 60, net)
        # Long enough for write transactions to fail (a pool waits for a
        # connection before it gives up).
        wait_for("the store's failure logged", lambda: lines(net, "the store cannot be written"), 90, net)
        time.sleep(5)  # a few retries more while it is down
        check_quiet(net, mark)
        out = subprocess.run([cluster, "start", str(pg_dir), str(pg_port)], capture_output=True, text=True)
        check(out.returncode == 0, f"cluster.sh start again: {out.stdout}{out.stderr}")
        back_at = time.monotonic()
        settle(net, inbound=20, outbox=40, timeout=120)
        recovered = time.monotonic() - back_at
        back = check_once_each_way(net)
        check(healthz(port)[0] == 200, f"/healthz after recovery: {healthz(port)}")
        check_stored_once(net, 20)
        check_delivered(net, expected(0, 20))
        check(net.gateway_folder("INBOX") == 0 and net.gateway_folder("Processed") == 20,
              f"INBOX {net.gateway_folder('INBOX')}, Processed {net.gateway_folder('Processed')}")
        check(net.stop_gateway() == 0, "SIGTERM")
        print(f"     all 20 filed and 40 sent {recovered:.1f}s after the server's return; {back.split('INFO')[-1].strip()[:120]}")
    finally:
        if net is not None:
            # The server is up again unless the scenario failed while it was
            # down; then its store goes with the whole cluster.
            try:
                net.close()
            except Failure:
                pass
        subprocess.run([cluster, "stop", str(pg_dir)], capture_output=True)
        shutil.rmtree(pg_dir, ignore_errors=True)


SCENARIOS = [disk_fills_while_mail_arrives, store_server_restarts_mid_run]
