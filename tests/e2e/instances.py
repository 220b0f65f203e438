"""Several gateway instances sharing one mailbox and one PostgreSQL store
(issue 7): each message judged and stored once, each mail sent once, and an
instance killed mid-run (SIGKILL) leaves nothing behind: its leases expire
and the others finish its work.

    run_instances(net, instances=3, messages=500, kill_after=150)

is used by the scenario below and by bench/instances.py (throughput with 1,
2 and 3 instances). Needs NFP_E2E_POSTGRES: several machines share a
PostgreSQL store, not a SQLite file.
"""

from __future__ import annotations

import collections
import concurrent.futures
import email
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import harness
from harness import BIN, Failure, Net, check
from storms import append_all

SENDERS = ("AT", "FR", "IT", "RU", "ES")  # valid Cv25519 keys in the fixture network
LEASE = "3s"
ENV = {k: v for k, v in os.environ.items() if k != "NFP_GATEWAY_CRASH_AT"}

BODY = ("Dear colleagues,\n\nwe would be grateful for the Secretariat's assistance with a training "
        "of border police officers at the main crossing points, request {i:06d}.\n\nKind regards\n")


@dataclass
class Run:
    instances: int
    messages: int
    made_s: float = 0.0
    first_append_s: float = 0.0
    appended_s: float = 0.0
    filed_s: float = 0.0
    sent_s: float = 0.0
    killed: str | None = None
    stored_by: dict[str, int] = field(default_factory=dict)
    in_doubt: list[int] = field(default_factory=list)


def instance_configs(net: Net, n: int) -> list[Path]:
    """One configuration per instance: the same store and mailbox, its own name."""
    base = net.config.read_text()
    configs = []
    for i in range(1, n + 1):
        path = net.config.with_name(f"gateway-{i}.toml")
        path.write_text(base + f'instance = "gw-{i}"\n')  # the [daemon] table ends the file
        configs.append(path)
    return configs


def make(net: Net, n: int) -> list[bytes]:
    def one(i: int) -> bytes:
        return net.mail_from(SENDERS[i % len(SENDERS)], f"[REQUEST] Border police training {i:06d}",
                             BODY.format(i=i))
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(n)))


def run_instances(net: Net, instances: int, messages: int, kill_after: int | None = None,
                  timeout: float = 300, then=None) -> Run:
    """Starts `instances` gateways on `net`'s store, appends `messages`
    messages to the inbox while they run, kills one (SIGKILL) once
    `kill_after` messages are filed, and waits until every message is filed
    and every mail sent; then calls `then(net)`, the instances still running."""
    run = Run(instances, messages)
    start = time.monotonic()
    msgs = make(net, messages)
    run.made_s = time.monotonic() - start
    procs: dict[str, subprocess.Popen] = {}
    logs: dict[str, Path] = {}
    try:
        for i, config in enumerate(instance_configs(net, instances), 1):
            name = f"gw-{i}"
            logs[name] = net.dir / f"{name}.log"
            with open(logs[name], "ab") as log:
                procs[name] = subprocess.Popen([str(BIN), "--config", str(config), "run"],
                                               stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                               env={**ENV, "NFP_GATEWAY_LOG": "info"})
        for name in procs:
            deadline = time.monotonic() + 30
            while "nfp-gateway running" not in logs[name].read_text(errors="replace"):
                check(procs[name].poll() is None, f"{name} exited:\n{logs[name].read_text()}")
                check(time.monotonic() < deadline, f"{name} did not start:\n{logs[name].read_text()}")
                time.sleep(0.1)
        t0 = time.monotonic()
        append_all(net, msgs)
        run.appended_s = time.monotonic() - t0
        deadline = t0 + timeout
        while True:
            filed = net.rows("SELECT COUNT(*) FROM inbound WHERE imap_state = 'filed'")[0][0]
            if kill_after is not None and run.killed is None and filed >= kill_after:
                victim = f"gw-{instances}"
                procs[victim].send_signal(signal.SIGKILL)
                procs[victim].wait(10)
                run.killed = victim
            if filed >= messages and not run.filed_s:
                run.filed_s = time.monotonic() - t0
            sent = net.rows("SELECT COUNT(*) FROM outbox WHERE state = 'sent'")[0][0]
            if run.filed_s and sent >= 2 * messages:
                run.sent_s = time.monotonic() - t0
                break
            for name, p in procs.items():
                check(name == run.killed or p.poll() is None, f"{name} exited:\n{logs[name].read_text()[-3000:]}")
            check(time.monotonic() < deadline,
                  f"{filed}/{messages} filed, {sent}/{2 * messages} sent after {timeout}s")
            time.sleep(0.1)
        if then is not None:
            then(net)
    finally:
        for name, p in procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, p in procs.items():
            try:
                code = p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                raise Failure(f"{name} did not stop")
            if name != run.killed and code != 0:
                raise Failure(f"{name}: exit status {code}:\n{logs[name].read_text()[-3000:]}")
    for name, log in logs.items():
        run.stored_by[name] = log.read_text(errors="replace").count(" stored uid=")
    run.in_doubt = [i for (i,) in net.rows("SELECT outbox_id FROM smtp_attempt WHERE outcome = 'in_doubt'")]
    return run


def message_ids(net: Net, pid: str) -> list[str]:
    """The Message-IDs of every mail in a persona's mailbox (headers only, nothing decrypted)."""
    p = net.w.p[pid]
    return [email.message_from_bytes(raw)["Message-ID"].strip().strip("<>")
            for _, raw in net.stack.fetch(p.email, net.passwords[p.email])]


def three_instances_share_one_store() -> None:
    """Three instances, one mailbox, one PostgreSQL store, 500 messages
    arriving; one instance killed (SIGKILL) after 150 are filed: every
    message is stored once and each of its two mails (the forward to the
    Secretariat, the acknowledgement) delivered once; only mail the killed
    instance had claimed may arrive twice, with the same Message-ID."""
    check(harness.POSTGRES is not None, "this scenario needs NFP_E2E_POSTGRES (a shared PostgreSQL store)")
    net = Net("instances", extra_config=f'lease = "{LEASE}"\n')
    net.config.write_text(net.config.read_text().replace("role = ", 'circular-quiet-period = "1s"\nrole = ', 1))

    def one_circular(net: Net) -> None:
        """A directory change while the two survivors run: each of them may
        announce it, and the write lock lets exactly one do so."""
        directory = net.config.parent / "directory.toml"
        text = directory.read_text()
        name = re.search(r'^name = "([^"]+)"', text[text.index('id = "AT"'):], re.M).group(1)
        changed = directory.with_name("directory-changed.toml")
        changed.write_text(text.replace(f'name = "{name}"', f'name = "{name} (renamed)"', 1))
        out = net.cli("directory", "import", str(changed))
        check(out.returncode == 0, f"import: {out.stdout}{out.stderr}")
        rows = net.wait_rows("SELECT id FROM outbox WHERE purpose = 'circular' AND state IN ('sent', 'held')", 9, 60)
        time.sleep(3)  # time for a second circular, if the lock let one through
        circulars = net.rows("SELECT COUNT(*) FROM circular")
        per_party = net.rows("SELECT recipient_party, COUNT(*) FROM outbox WHERE purpose = 'circular' "
                             "GROUP BY recipient_party HAVING COUNT(*) <> 1")
        check(circulars == [(1,)] and per_party == [] and len(rows) == 9,
              f"circulars {circulars}, recipients with more than one copy {per_party}, copies {len(rows)}")

    try:
        run = run_instances(net, instances=3, messages=500, kill_after=150, then=one_circular)
        print(f"     3 instances, 500 messages, gw-3 killed: filed {run.filed_s:.1f}s, sent {run.sent_s:.1f}s, "
              f"stored by {run.stored_by}, in doubt {run.in_doubt}")
        # Judged and stored once: 500 rows, 500 different messages, all accepted and filed.
        rows = net.rows("SELECT COUNT(*), COUNT(DISTINCT raw_sha256), COUNT(DISTINCT reference) FROM inbound "
                        "WHERE verdict = 'accepted' AND imap_state = 'filed'")
        check(rows == [(500, 500, 500)], f"stored: {rows}; all: {net.rows('SELECT verdict, imap_state, COUNT(*) FROM inbound GROUP BY 1, 2')}")
        audit = net.rows("SELECT COUNT(*) FROM audit WHERE event = 'accepted'")
        check(audit == [(500,)], f"accepted audit entries {audit}")
        # Every instance did part of it, the killed one before it died.
        check(all(n > 0 for n in run.stored_by.values()), f"stored per instance {run.stored_by}")
        check(sum(run.stored_by.values()) >= 500, f"stored per instance {run.stored_by}")
        # Sent once: 1000 mails, each with one 'sent' attempt.
        outbox = net.rows("SELECT state, COUNT(*) FROM outbox WHERE inbound_id IS NOT NULL GROUP BY state")
        check(outbox == [("sent", 1000)], f"outbox {outbox}")
        sent = net.rows("SELECT outbox_id, COUNT(*) FROM smtp_attempt WHERE outcome = 'sent' GROUP BY outbox_id "
                        "HAVING COUNT(*) <> 1")
        check(sent == [], f"mail recorded sent more than once: {sent}")
        # In doubt: only what the killed instance had claimed (one per claim at most).
        claims = net.rows("SELECT claim, COUNT(*) FROM outbox WHERE id IN (SELECT outbox_id FROM smtp_attempt "
                          "WHERE outcome = 'in_doubt') GROUP BY claim")
        check(len(run.in_doubt) <= 2, f"in doubt: {run.in_doubt} ({claims})")
        # Delivered once (an in-doubt mail at most twice, the same Message-ID).
        want = {mid.strip("<>"): (party, oid) for oid, mid, party in
                net.rows("SELECT id, message_id, recipient_party FROM outbox WHERE inbound_id IS NOT NULL")}
        circular = {mid.strip("<>") for (mid,) in net.rows("SELECT message_id FROM outbox WHERE purpose = 'circular'")}
        got = collections.Counter()
        for pid in ("secretariat",) + SENDERS:
            got.update(message_ids(net, pid))
        check(set(got) - circular == set(want), f"{len(set(want) - set(got))} mails missing, "
                                                f"{len(set(got) - circular - set(want))} unexpected")
        twice = {mid: n for mid, n in got.items() if n > 1 and mid not in circular}
        check(all(got[mid] == 1 for mid in circular if mid in got), "a circular copy delivered twice")
        allowed = {mid for mid, (_, oid) in want.items() if oid in run.in_doubt}
        check(set(twice) <= allowed and all(n == 2 for n in twice.values()),
              f"delivered more than once: {twice} (in doubt: {run.in_doubt})")
        check(net.gateway_folder("INBOX") == 0 and net.gateway_folder("Processed") == 500, "filing")
    finally:
        net.close()


def copy_a_sqlite_store_to_postgres() -> None:
    """An installation moves from SQLite to PostgreSQL with `db copy`: every
    table the same (counts and checksums), and the gateway carries on from
    the copy: the replay memory, the reference numbering and the ids go on."""
    check(harness.POSTGRES is not None, "this scenario needs NFP_E2E_POSTGRES")
    net = Net("dbcopy", engine="sqlite")
    try:
        first = net.mail_from("AT", "[REQUEST] Border police training", BODY.format(i=1))
        net.send(first)
        net.send(net.mail_from("FR", "[REQUEST] Customs training", BODY.format(i=2)))
        net.send(net.w.plain("Outsider <someone@elsewhere.example>", "Hello", harness.mm.text("not encrypted")))
        net.start_gateway()
        net.wait_rows("SELECT id FROM inbound WHERE imap_state = 'filed'", 3)
        net.wait_outbox_sent(5)  # 2 forwards, 2 acknowledgements, 1 quarantine notice
        check(net.stop_gateway() == 0, "SIGTERM")
        before = net.rows("SELECT verdict, reason, reference FROM inbound ORDER BY id")

        target = harness.Store(net.config.parent, f"{net.dir.name}-copy", "postgres")
        net.stores["copy"] = target  # dropped with the network
        out = net.cli("db", "copy", "--from", f"sqlite://{net.store.path}", "--to", target.url)
        check(out.returncode == 0 and "every table copied" in out.stdout, f"db copy: {out.stdout}{out.stderr}")
        for table in ("inbound", "outbox", "audit", "party_version", "seen_signature"):
            line = next((l for l in out.stdout.splitlines() if l.startswith(table + " ")), "")
            check(line.endswith("same") and " 0 " not in f" {line.split()[1]} ", f"{table}: {line!r}")
        again = net.cli("db", "copy", "--from", f"sqlite://{net.store.path}", "--to", target.url)
        check(again.returncode != 0 and "not empty" in again.stderr, f"a second copy: {again.stdout}{again.stderr}")

        # The gateway on the copy.
        net.config.write_text(net.config.read_text().replace("role = ", f'database = "{target.url}"\nrole = ', 1))
        net.stores[net.role] = target
        check(net.rows("SELECT verdict, reason, reference FROM inbound ORDER BY id") == before, "the rows differ")
        # The same signed message in a new envelope: the replay memory came along.
        ciphertext = email.message_from_bytes(first).get_payload()[1].get_payload(decode=True)
        net.send(net.w.wrap(ciphertext, net.w.p["AT"].mailbox, net.gateway_persona.email, "...", net.now,
                            harness.mm.message_id("bmi.at.example")).eml)
        net.send(net.mail_from("IT", "[REQUEST] Migration training", BODY.format(i=3)))
        net.start_gateway()
        net.wait_rows("SELECT id FROM inbound WHERE imap_state = 'filed'", 5)
        net.wait_outbox_sent(5 + 1 + 2)  # a replay notice; a forward and an acknowledgement
        after = net.rows("SELECT verdict, reason, reference FROM inbound ORDER BY id")[3:]
        year = time.gmtime().tm_year
        check(after == [("quarantined", "replay", None), ("accepted", None, f"BSM-{year}-000003")], f"{after}")
        check(net.stop_gateway() == 0, "SIGTERM")
    finally:
        net.close()


SCENARIOS = [three_instances_share_one_store, copy_a_sqlite_store_to_postgres]
