#!/usr/bin/env python3
"""Webhook deliveries with real processes: they survive `kill -9` and are delivered exactly once.

Started by tests/notify/run.sh (which builds the binary):

    python3 tests/notify/delivery_test.py --bin target/release/catalogue \
        --postgres 'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable' \
        --artifacts ci-artifacts/notify

Every check makes its own fresh database (a SQLite file, or a PostgreSQL database created with
psql and dropped on exit), an admin with `catalogue user add`, its own `catalogue serve`
instances and its own webhook receiver: a Python http.server in a thread that verifies every
signature independently (HMAC-SHA256 with hmac, hashlib and base64) and counts each webhook-id.

Python 3.11 standard library only. Each check prints PASS or FAIL with what it measured; the last
line is `notify: N passed, N failed`; the exit status is non-zero when any check failed. All
traffic is on 127.0.0.1; every request has a timeout; instances are stopped by their process ids
on exit. Instance logs go to the artifacts directory.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import collections
import concurrent.futures
import datetime
import hashlib
import hmac
import http.client
import http.server
import json
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

# The worker's settings under test: a short lease so that a killed instance's delivery is taken
# up again soon (15 s is the smallest the CLI allows: it must be well over the 10 s webhook
# timeout), and a first retry after 1 s.
LEASE_SECONDS = 15
FIRST_RETRY_SECONDS = 1
WEBHOOK_TIMEOUT_SECONDS = 10
# Exactly once: this many advisories, created at once through two instances.
EXACTLY_ONCE_MESSAGES = 40
QUIET_SECONDS = 5.0

RUN = secrets.token_hex(4)
ADMIN_EMAIL = "admin@notify.test"
ADMIN_PASSWORD = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(24))
JWT_SECRET = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(48))

OPTIONS: argparse.Namespace
TMP = ""
INSTANCES: list["Instance"] = []
RECEIVERS: list["Receiver"] = []
DATABASES: list[str] = []  # PostgreSQL databases to drop on exit


def log(message: str):
    print(f"notify: {message}", file=sys.stderr, flush=True)


# --- HTTP client ---------------------------------------------------------------------------------


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes, via: str):
        self.status = status
        self.headers = headers
        self.body = body
        self.via = via

    @property
    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def __repr__(self) -> str:
        return f"{self.status} from {self.via}: {self.body[:300].decode('utf-8', 'replace')}"


def call(base: str, method: str, path: str, body=None, token: str | None = None, timeout: float = 10.0) -> Response:
    host, port = base.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        sent = {"Accept": "application/json", "Connection": "close"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        if token:
            sent["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        payload = response.read()
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, payload, base)
    finally:
        conn.close()


def expect_status(response: Response, *statuses: int):
    if response.status not in statuses:
        raise AssertionError(f"expected {statuses}, got {response!r}")
    return response.json


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- databases and instances -------------------------------------------------------------------


def psql(sql: str):
    subprocess.run(
        ["psql", OPTIONS.postgres, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=60,
    )


class Store:
    """One fresh database: a SQLite file, or a PostgreSQL database (dropped on exit)."""

    def __init__(self, engine: str, label: str):
        self.engine = engine
        self.label = label
        if engine == "sqlite":
            self.url = os.path.join(TMP, f"{label}.db")
        else:
            name = f"catalogue_notify_{RUN}_{label.replace('-', '_')}"
            psql(f'create database "{name}"')
            DATABASES.append(name)
            parts = urllib.parse.urlsplit(OPTIONS.postgres)
            self.url = urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
        self.prepare()

    def prepare(self):
        """The schema, the seed data and a known admin, before any instance serves."""
        with open(os.path.join(OPTIONS.artifacts, f"{self.label}-setup.log"), "wb") as out:
            for args, extra in (
                (["migrate"], {}),
                (["seed"], {}),
                (["user", "add", "--email", ADMIN_EMAIL, "--role", "admin", "--name", "Notify admin"],
                 {"CATALOGUE_PASSWORD": ADMIN_PASSWORD}),
            ):
                done = subprocess.run(
                    [OPTIONS.bin, "--database-url", self.url, *args],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={**base_env(), **extra},
                    timeout=600,
                )
                if done.returncode != 0:
                    raise AssertionError(f"`catalogue {' '.join(args[:2])}` failed on {self.label} (see {out.name})")


def base_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    env.update(
        CATALOGUE_JWT_SECRET=JWT_SECRET,
        CATALOGUE_LOG_FORMAT="text",
        RUST_LOG=os.environ.get("NOTIFY_RUST_LOG", "info"),
        CATALOGUE_WORKERS="2",
        CATALOGUE_DB_CONNECTIONS="8",
    )
    return env


class Instance:
    """One `catalogue serve` on its own port, its output in the artifacts directory."""

    def __init__(self, label: str, store: Store, delivery: bool = True):
        self.label = label
        self.store = store
        self.delivery = delivery
        self.base = f"127.0.0.1:{free_port()}"
        self.log_path = os.path.join(OPTIONS.artifacts, f"{label}.log")
        args = [
            OPTIONS.bin,
            "--database-url", store.url,
            "serve",
            "--bind", self.base,
            "--webhooks-allow-http",
            "--delivery-lease-seconds", str(LEASE_SECONDS),
            "--delivery-first-retry-seconds", str(FIRST_RETRY_SECONDS),
        ]
        if not delivery:
            args.append("--no-delivery")
        self.log_file = open(self.log_path, "ab")
        self.log_file.write(f"$ {' '.join(args)}\n".encode())
        self.log_file.flush()
        self.process = subprocess.Popen(args, stdout=self.log_file, stderr=subprocess.STDOUT, env=base_env())
        INSTANCES.append(self)
        self.wait_ready()

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 20) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, seconds: float = 120.0):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.label} exited with {self.process.returncode}:\n{self.tail()}")
            try:
                if call(self.base, "GET", "/readyz", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.label} was not ready within {seconds:.0f} s:\n{self.tail()}")

    def kill9(self):
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log_file.close()

    def attempts_logged(self) -> int:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return sum(1 for line in f if "delivery attempted" in line)


# --- the webhook receiver ----------------------------------------------------------------------


def expected_signature(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """Standard Webhooks: base64(HMAC-SHA256(base64decode(secret without whsec_), id.timestamp.body))."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signature_valid(secret: str, webhook_id: str, timestamp: str, body: bytes, header: str) -> bool:
    expected = expected_signature(secret, webhook_id, timestamp, body)
    for part in header.split():  # several space-separated signatures are allowed
        version, _, value = part.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


class Arrival:
    def __init__(self, webhook_id: str, timestamp: str, signature_ok: bool, payload, at: float, hung: bool, problems: list[str]):
        self.webhook_id = webhook_id
        self.timestamp = timestamp
        self.signature_ok = signature_ok
        self.payload = payload
        self.at = at
        self.hung = hung
        self.problems = problems

    @property
    def subject(self) -> str | None:
        data = self.payload.get("data") if isinstance(self.payload, dict) else None
        return data.get("subject") if isinstance(data, dict) else None


class Receiver:
    """A webhook receiver in a thread. `hang` requests about the watched subjects are read and
    never answered (until `release`); every other request is answered 204 after `delay` s."""

    def __init__(self, label: str, delay: float = 0.0):
        self.label = label
        self.secret = ""
        self.delay = delay
        self.hang = 0
        self.lock = threading.Lock()
        self.arrivals: list[Arrival] = []
        self.release = threading.Event()
        self.closed = False
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # noqa: A002 - quiet
                pass

            def read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length", "0")))

            def do_POST(self):  # noqa: N802 - http.server's name
                self.close_connection = True
                body = self.read_body()
                receiver.received(self, body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"receiver-{label}", daemon=True)
        self.thread.start()
        RECEIVERS.append(self)

    def received(self, handler: http.server.BaseHTTPRequestHandler, body: bytes):
        headers = handler.headers
        webhook_id = headers.get("webhook-id", "")
        timestamp = headers.get("webhook-timestamp", "")
        problems = []
        ok = bool(self.secret) and signature_valid(self.secret, webhook_id, timestamp, body, headers.get("webhook-signature", ""))
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
            problems.append("the body is not JSON")
        if handler.path != "/hook":
            problems.append(f"posted to {handler.path}")
        if not webhook_id.startswith("msg_"):
            problems.append(f"webhook-id {webhook_id!r} is not msg_<id>")
        if not (timestamp.isdigit() and abs(int(timestamp) - time.time()) < 300):
            problems.append(f"webhook-timestamp {timestamp!r} is not now")
        if isinstance(payload, dict):
            data = payload.get("data")
            if payload.get("type") != "advisory.published" or not isinstance(payload.get("timestamp"), str):
                problems.append(f"type/timestamp: {payload.get('type')!r} {payload.get('timestamp')!r}")
            if not isinstance(data, dict) or not {"event_id", "organisation_code", "subject", "summary", "details"} <= set(data):
                problems.append(f"data lacks fields: {sorted(data) if isinstance(data, dict) else data!r}")
        with self.lock:
            hang = self.hang > 0
            if hang:
                self.hang -= 1
            arrival = Arrival(webhook_id, timestamp, ok, payload, time.monotonic(), hang, problems)
            self.arrivals.append(arrival)
        if hang:
            # Read and never answered: the sender's attempt is in flight until it is killed.
            self.release.wait(timeout=LEASE_SECONDS + 60)
            return
        if self.delay:
            time.sleep(self.delay)
        handler.send_response(204)
        handler.send_header("Connection", "close")
        handler.end_headers()

    def snapshot(self) -> list[Arrival]:
        with self.lock:
            return list(self.arrivals)

    def wait_for(self, condition, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition(self.snapshot()):
                return True
            time.sleep(0.1)
        return condition(self.snapshot())

    def close(self):
        self.release.set()
        if self.closed:
            return
        self.closed = True
        self.server.shutdown()
        self.server.server_close()


# --- the service -------------------------------------------------------------------------------


def sign_in(base: str) -> str:
    answer = call(base, "POST", "/v1/auth/token", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    return expect_status(answer, 200)["access_token"]


def subscribe(base: str, token: str, receiver: Receiver) -> int:
    expect_status(call(base, "PUT", "/v1/webhook-hosts/127.0.0.1", token=token), 200)
    created = expect_status(
        call(
            base,
            "POST",
            "/v1/subscriptions",
            {"kinds": ["advisory.published"], "channel": "webhook", "webhook_url": receiver.url},
            token=token,
        ),
        201,
    )
    secret = created.get("webhook_secret") or ""
    if not secret.startswith("whsec_"):
        raise AssertionError(f"the subscription's secret is {secret!r}")
    receiver.secret = secret
    return created["subscription"]["id"]


def a_product(base: str, token: str) -> int:
    page = expect_status(call(base, "GET", "/v1/products?limit=1", token=token), 200)
    if not page.get("items"):
        raise AssertionError("the seeded catalogue has no products")
    return page["items"][0]["id"]


def publish(base: str, token: str, product_id: int, label: str) -> int:
    """An advisory, whose creation writes one advisory.published event; returns its id."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    advisory = expect_status(
        call(
            base,
            "POST",
            "/v1/advisories",
            {
                "reference": f"NOTIFY-{RUN}-{label}",
                "title": f"Notify test {label}",
                "severity": "high",
                "published_at": now,
                "remediation": "Apply the vendor's update.",
                "affected_product_ids": [product_id],
            },
            token=token,
            timeout=20,
        ),
        201,
    )
    return advisory["id"]


def deliveries_of(base: str, token: str, subscription_id: int) -> list[dict]:
    items, cursor = [], None
    for _ in range(100):
        path = f"/v1/subscriptions/{subscription_id}/deliveries?limit=500"
        if cursor:
            path += f"&cursor={urllib.parse.quote(cursor)}"
        page = expect_status(call(base, "GET", path, token=token, timeout=20), 200)
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items
    raise AssertionError("delivery pages never ended")


def subject_of(delivery: dict) -> str | None:
    event = delivery.get("event")
    return event.get("subject") if isinstance(event, dict) else None


# --- checks ------------------------------------------------------------------------------------


class Check:
    def __init__(self, name: str):
        self.name = name
        self.lines: list[str] = []
        self.failures = 0

    def info(self, message: str):
        self.lines.append(f"    {message}")

    def expect(self, condition: bool, message: str) -> bool:
        if not condition:
            self.failures += 1
            self.lines.append(f"    FAILED: {message}")
        return condition


RESULTS: list[tuple[str, bool]] = []


def run_check(name: str, function, *args):
    check = Check(name)
    started = time.monotonic()
    instances_before, receivers_before = len(INSTANCES), len(RECEIVERS)
    try:
        function(check, *args)
    except Exception as error:  # an unexpected answer or error ends the check as failed
        check.failures += 1
        check.lines.append(f"    FAILED: {type(error).__name__}: {error}")
        for line in traceback.format_exc().rstrip().splitlines()[-6:]:
            check.lines.append(f"      {line}")
    finally:
        # Whatever the check left running (when it failed half-way) stops before the next.
        for receiver in RECEIVERS[receivers_before:]:
            receiver.close()
        stop_all(INSTANCES[instances_before:])
    passed = check.failures == 0
    print(f"{'PASS' if passed else 'FAIL'} {name} ({time.monotonic() - started:.1f}s)", flush=True)
    for line in check.lines:
        print(line, flush=True)
    RESULTS.append((name, passed))


def stop_all(instances: list[Instance]):
    for instance in instances:
        instance.stop()


def wait_delivered(base: str, token: str, subscription_id: int, subjects: set[str], seconds: float) -> list[dict]:
    """The subscription's deliveries of these subjects once all are delivered (or at the deadline)."""
    deadline = time.monotonic() + seconds
    while True:
        ours = [d for d in deliveries_of(base, token, subscription_id) if subject_of(d) in subjects]
        if (len(ours) >= len(subjects) and all(d["status"] == "delivered" for d in ours)) or time.monotonic() > deadline:
            return ours
        time.sleep(0.5)


def check_kill_in_flight(check: Check, engine: str):
    """Killed with the webhook in flight: the new instance takes the delivery up once the lease
    runs out and sends the same webhook-id again."""
    store = Store(engine, f"{engine}-in-flight")
    first = Instance(f"{engine}-in-flight-1", store)
    token = sign_in(first.base)
    product = a_product(first.base, token)
    receiver = Receiver(f"{engine}-in-flight")
    subscription = subscribe(first.base, token, receiver)
    receiver.hang = 1
    advisory = publish(first.base, token, product, f"{engine}-in-flight")
    subject = f"advisory/{advisory}"
    committed = time.monotonic()
    check.info(f"{engine}: instance 1 (pid {first.pid}) on {first.base}; subscription {subscription}; advisory {advisory} committed")

    mine = lambda arrivals: [a for a in arrivals if a.subject == subject]  # noqa: E731
    got_first = receiver.wait_for(lambda arrivals: len(mine(arrivals)) >= 1, 30)
    if not check.expect(got_first, "the receiver got the first POST within 30 s of the commit"):
        return
    held = mine(receiver.snapshot())[0]
    check.info(
        f"first POST {held.webhook_id} after {held.at - committed:.1f}s (signature {'valid' if held.signature_ok else 'INVALID'}); "
        "held unanswered; kill -9 instance 1"
    )
    check.expect(held.signature_ok, "the first POST's signature is valid")
    check.expect(not held.problems, f"the first POST is well formed: {held.problems}")
    pending = [d for d in deliveries_of(first.base, token, subscription) if subject_of(d) == subject]
    check.expect(
        len(pending) == 1 and pending[0]["status"] == "pending" and not pending[0]["attempts"],
        f"before the kill the delivery is pending with no attempt recorded: {[(d['status'], len(d['attempts'])) for d in pending]}",
    )
    first.kill9()
    killed = time.monotonic()

    second = Instance(f"{engine}-in-flight-2", store)
    check.info(f"instance 2 (pid {second.pid}) on {second.base} ready {time.monotonic() - killed:.1f}s after the kill")
    limit = LEASE_SECONDS + 20
    again = receiver.wait_for(lambda arrivals: len(mine(arrivals)) >= 2, limit)
    arrivals = mine(receiver.snapshot())
    if check.expect(again, f"the delivery arrived again within {limit} s of the kill (lease {LEASE_SECONDS} s)"):
        redelivered = arrivals[1]
        check.info(
            f"again as {redelivered.webhook_id} {redelivered.at - killed:.1f}s after the kill "
            f"({redelivered.at - held.at:.1f}s after the first POST), answered 204"
        )
        check.expect(redelivered.webhook_id == held.webhook_id, f"the same webhook-id: {redelivered.webhook_id} == {held.webhook_id}")
        check.expect(redelivered.signature_ok, "its signature is valid")
        check.expect(not redelivered.problems, f"it is well formed: {redelivered.problems}")
        check.expect(
            (redelivered.payload or {}).get("data", {}).get("event_id") == (held.payload or {}).get("data", {}).get("event_id"),
            "the same event",
        )
    token = sign_in(second.base)
    ours = wait_delivered(second.base, token, subscription, {subject}, 15)
    states = [(d["id"], d["status"], [a.get("status_code") for a in d["attempts"]]) for d in ours]
    check.info(f"deliveries (id, status, attempts' status codes): {states}")
    check.expect(len(ours) == 1, f"one delivery of the advisory: {len(ours)}")
    if ours:
        delivery = ours[0]
        check.expect(delivery["status"] == "delivered", f"it is delivered: {delivery['status']}")
        check.expect(
            [a.get("status_code") for a in delivery["attempts"]] == [204],
            "one attempt recorded (the killed instance recorded none), answered 204",
        )
        check.expect(held.webhook_id == f"msg_{delivery['id']}", f"webhook-id is msg_{delivery['id']}")
    time.sleep(2)
    check.expect(len(mine(receiver.snapshot())) == 2, f"no further POST after delivery: {len(mine(receiver.snapshot()))} in all")
    receiver.close()
    stop_all([second])


def check_kill_before_delivery(check: Check, engine: str):
    """Killed after the advisory committed and before anything was delivered (the instance runs no
    worker): the next instance delivers the event."""
    store = Store(engine, f"{engine}-undelivered")
    first = Instance(f"{engine}-undelivered-1", store, delivery=False)
    token = sign_in(first.base)
    product = a_product(first.base, token)
    receiver = Receiver(f"{engine}-undelivered")
    subscription = subscribe(first.base, token, receiver)
    advisory = publish(first.base, token, product, f"{engine}-undelivered")
    subject = f"advisory/{advisory}"
    check.info(f"{engine}: instance 1 (pid {first.pid}, --no-delivery) on {first.base}; subscription {subscription}; advisory {advisory} committed")
    time.sleep(2)
    mine = lambda arrivals: [a for a in arrivals if a.subject == subject]  # noqa: E731
    check.expect(not mine(receiver.snapshot()), "nothing was delivered by the instance without a worker")
    first.kill9()
    killed = time.monotonic()
    check.info("kill -9 instance 1")

    second = Instance(f"{engine}-undelivered-2", store)
    check.info(f"instance 2 (pid {second.pid}) on {second.base} ready {time.monotonic() - killed:.1f}s after the kill")
    arrived = receiver.wait_for(lambda arrivals: len(mine(arrivals)) >= 1, 30)
    arrivals = mine(receiver.snapshot())
    if check.expect(arrived, "the event was delivered within 30 s of the kill"):
        check.info(f"delivered as {arrivals[0].webhook_id} {arrivals[0].at - killed:.1f}s after the kill")
        check.expect(all(a.signature_ok for a in arrivals), "its signature is valid")
        check.expect(not arrivals[0].problems, f"it is well formed: {arrivals[0].problems}")
    token = sign_in(second.base)
    ours = wait_delivered(second.base, token, subscription, {subject}, 15)
    states = [(d["id"], d["status"], [a.get("status_code") for a in d["attempts"]]) for d in ours]
    check.info(f"deliveries (id, status, attempts' status codes): {states}")
    check.expect(
        len(ours) == 1 and ours[0]["status"] == "delivered" and [a.get("status_code") for a in ours[0]["attempts"]] == [204],
        "one delivery, delivered at the first attempt",
    )
    time.sleep(2)
    check.expect(len(mine(receiver.snapshot())) == 1, f"delivered once: {len(mine(receiver.snapshot()))} POSTs")
    receiver.close()
    stop_all([second])


def check_exactly_once(check: Check):
    """Two instances with workers on one PostgreSQL database: each message is delivered once."""
    store = Store("postgres", "postgres-exactly-once")
    first = Instance("postgres-exactly-once-1", store)
    second = Instance("postgres-exactly-once-2", store)
    bases = [first.base, second.base]
    check.info(f"instances {first.base} (pid {first.pid}) and {second.base} (pid {second.pid}), both delivering")
    token = sign_in(first.base)
    product = a_product(first.base, token)
    receiver = Receiver("exactly-once", delay=0.1)  # a slow-ish receiver: the workers overlap
    subscription = subscribe(first.base, token, receiver)

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [
            pool.submit(publish, bases[n % 2], token, product, f"once-{n}") for n in range(EXACTLY_ONCE_MESSAGES)
        ]
        advisories = [f.result() for f in futures]
    created = time.monotonic() - started
    subjects = {f"advisory/{a}" for a in advisories}
    check.info(f"{len(advisories)} advisories created in {created:.1f}s, alternately through both instances (8 at a time)")

    mine = lambda arrivals: [a for a in arrivals if a.subject in subjects]  # noqa: E731
    complete = receiver.wait_for(
        lambda arrivals: len({a.webhook_id for a in mine(arrivals)}) >= EXACTLY_ONCE_MESSAGES, 60
    )
    all_in = time.monotonic() - started
    check.expect(complete, f"{EXACTLY_ONCE_MESSAGES} distinct webhook-ids arrived within 60 s")
    # Then quiet: nothing more may come (a second delivery would come now, if at all).
    time.sleep(QUIET_SECONDS)
    arrivals = mine(receiver.snapshot())
    others = [a for a in receiver.snapshot() if a.subject not in subjects]
    counts = collections.Counter(a.webhook_id for a in arrivals)
    by_event = collections.Counter(a.subject for a in arrivals)
    check.info(
        f"{len(arrivals)} POSTs with {len(counts)} distinct webhook-ids, all in {all_in:.1f}s from the first create; "
        f"{QUIET_SECONDS:.0f}s of quiet after; {len(others)} POSTs of other events"
    )
    doubled = {k: v for k, v in counts.items() if v != 1}
    check.expect(not doubled, f"each webhook-id arrived exactly once: repeated {doubled}")
    check.expect(
        set(by_event) == subjects and all(v == 1 for v in by_event.values()),
        f"each advisory's event arrived exactly once: {sorted(k for k, v in by_event.items() if v != 1)[:5]}, "
        f"missing {sorted(subjects - set(by_event))[:5]}",
    )
    bad = [a.webhook_id for a in arrivals if not a.signature_ok]
    check.expect(not bad, f"every signature is valid: invalid on {bad[:5]}")
    malformed = [(a.webhook_id, a.problems) for a in arrivals if a.problems]
    check.expect(not malformed, f"every POST is well formed: {malformed[:3]}")

    ours = [d for d in deliveries_of(second.base, token, subscription) if subject_of(d) in subjects]
    statuses = collections.Counter(d["status"] for d in ours)
    attempt_counts = collections.Counter(len(d["attempts"]) for d in ours)
    check.info(f"deliveries: {len(ours)}, by status {dict(statuses)}, by number of attempts {dict(attempt_counts)}")
    check.expect(len(ours) == EXACTLY_ONCE_MESSAGES, f"{EXACTLY_ONCE_MESSAGES} deliveries (one per advisory): {len(ours)}")
    check.expect(statuses == {"delivered": len(ours)}, "every delivery is delivered")
    check.expect(
        all([a.get("status_code") for a in d["attempts"]] == [204] for d in ours),
        "every delivery has exactly one attempt, answered 204",
    )
    check.expect(
        {f"msg_{d['id']}" for d in ours} == set(counts),
        "the webhook-ids received are exactly msg_<id> of the subscription's deliveries",
    )
    share = [instance.attempts_logged() for instance in (first, second)]
    check.info(f"attempts logged by instance 1 and 2: {share[0]} and {share[1]}")
    receiver.close()
    stop_all([first, second])


# --- main --------------------------------------------------------------------------------------


def cleanup():
    for receiver in RECEIVERS:
        try:
            receiver.close()
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
    for instance in INSTANCES:
        try:
            instance.stop()
        except Exception:  # noqa: BLE001
            try:
                instance.process.kill()
            except OSError:
                pass
    for name in DATABASES:
        try:
            psql(f'drop database if exists "{name}" with (force)')
        except Exception:  # noqa: BLE001
            log(f"could not drop database {name}")
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def main() -> int:
    global OPTIONS, TMP
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="the catalogue binary")
    parser.add_argument("--postgres", required=True, help="an admin URL of the PostgreSQL server (databases are created and dropped)")
    parser.add_argument("--artifacts", default="ci-artifacts/notify")
    OPTIONS = parser.parse_args()
    OPTIONS.bin = os.path.abspath(OPTIONS.bin)
    os.makedirs(OPTIONS.artifacts, exist_ok=True)
    TMP = tempfile.mkdtemp(prefix="catalogue-notify.")
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))

    print(f"notify: {OPTIONS.bin}; lease {LEASE_SECONDS}s, first retry {FIRST_RETRY_SECONDS}s; run {RUN}", flush=True)
    checks = [
        ("1a sqlite: kill -9 with a webhook in flight; redelivered after restart, same webhook-id", check_kill_in_flight, "sqlite"),
        ("1b sqlite: kill -9 after the commit, before any delivery; delivered after restart", check_kill_before_delivery, "sqlite"),
        ("1c postgres: kill -9 with a webhook in flight; redelivered after restart, same webhook-id", check_kill_in_flight, "postgres"),
        ("1d postgres: kill -9 after the commit, before any delivery; delivered after restart", check_kill_before_delivery, "postgres"),
        (f"2 postgres, two instances: {EXACTLY_ONCE_MESSAGES} messages each delivered exactly once", check_exactly_once),
    ]
    only = os.environ.get("NOTIFY_ONLY")  # e.g. NOTIFY_ONLY=2 runs the checks whose names start so
    for name, function, *args in checks:
        if only and not name.startswith(only):
            continue
        run_check(name, function, *args)

    panicked = []
    for instance in INSTANCES:
        with open(instance.log_path, encoding="utf-8", errors="replace") as f:
            if " panicked at " in f.read():
                panicked.append(instance.label)
    if panicked:
        print(f"FAIL no instance panicked\n    FAILED: panics in {', '.join(panicked)} (see {OPTIONS.artifacts})", flush=True)
        RESULTS.append(("no instance panicked", False))
    passed = sum(1 for _, ok in RESULTS if ok)
    failed = len(RESULTS) - passed
    print(f"notify: {passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 and RESULTS else 1


if __name__ == "__main__":
    sys.exit(main())
