#!/usr/bin/env python3
"""Checks of three `catalogue serve` instances on one PostgreSQL behind nginx.

Started by tests/cluster/run.sh, which makes the database, the users, the instances and nginx and
passes them in the environment (CLUSTER_*). Python 3.11 standard library only. Each check prints
PASS or FAIL with its details; the last line is `cluster: N passed, N failed`; the exit status is
non-zero when any check (or the setup) failed. All traffic goes to 127.0.0.x; every request has a
timeout.
"""

from __future__ import annotations

import collections
import concurrent.futures
import datetime
import http.client
import json
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
import traceback
import urllib.parse


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"cluster: {name} is not set (run tests/cluster/run.sh)")
    return value


NGINX = env("CLUSTER_NGINX")
INSTANCES = env("CLUSTER_INSTANCES").split(",")
INSTANCE_PIDS = [int(p) for p in env("CLUSTER_INSTANCE_PIDS").split(",")]
ARTIFACTS = env("CLUSTER_ARTIFACTS")
ADMIN = (env("CLUSTER_ADMIN_EMAIL"), env("CLUSTER_ADMIN_PASSWORD"))
OFFICER = (env("CLUSTER_OFFICER_EMAIL"), env("CLUSTER_OFFICER_PASSWORD"))
VICTIM = (env("CLUSTER_VICTIM_EMAIL"), env("CLUSTER_VICTIM_PASSWORD"))
RUN = secrets.token_hex(4)
OFFICER_ORG = "RR8"

# Throttling contract: 5 failures per email, 20 per client address, per 15 minutes.
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_ADDRESS = 20


# --- HTTP -------------------------------------------------------------------------------------


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

    def problem(self) -> bool:
        """An RFC 9457 problem of this response's status."""
        body = self.json
        return (
            self.headers.get("content-type", "").startswith("application/problem+json")
            and isinstance(body, dict)
            and body.get("status") == self.status
            and isinstance(body.get("type"), str)
            and isinstance(body.get("detail"), str)
        )

    def detail(self) -> str:
        body = self.json
        if isinstance(body, dict) and "detail" in body:
            return str(body["detail"])
        return self.body[:200].decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"{self.status} from {self.via}: {self.body[:200].decode('utf-8', 'replace')}"


def call(
    base: str,
    method: str,
    path: str,
    body=None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    source: str | None = None,
    timeout: float = 10.0,
) -> Response:
    """One request on a new connection (optionally from a chosen 127.0.0.x source address)."""
    host, port = base.rsplit(":", 1)
    conn = http.client.HTTPConnection(
        host, int(port), timeout=timeout, source_address=(source, 0) if source else None
    )
    try:
        sent = {"Accept": "application/json", "Connection": "close"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        if token:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        payload = response.read()
        return Response(
            response.status, {k.lower(): v for k, v in response.getheaders()}, payload, base
        )
    finally:
        conn.close()


def expect_status(response: Response, *statuses: int):
    if response.status not in statuses:
        raise AssertionError(f"expected {statuses}, got {response!r}")
    return response.json


def sign_in(base: str, credentials: tuple[str, str], source: str | None = None) -> Response:
    email, password = credentials
    return call(base, "POST", "/v1/auth/token", {"email": email, "password": password}, source=source)


def token_for(credentials: tuple[str, str]) -> str:
    return expect_status(sign_in(INSTANCES[0], credentials), 200)["access_token"]


def query(path: str, **params) -> str:
    params = {k: v for k, v in params.items() if v is not None}
    return f"{path}?{urllib.parse.urlencode(params)}" if params else path


def all_allocations(base: str, token: str, entitlement_id: int) -> list[dict]:
    items, cursor = [], None
    for _ in range(1000):
        page = expect_status(
            call(
                base,
                "GET",
                query(f"/v1/entitlements/{entitlement_id}/allocations", limit=500, include_ended="true", cursor=cursor),
                token=token,
                timeout=20,
            ),
            200,
        )
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items
    raise AssertionError("allocation pages never ended")


ACCESS_LINE = re.compile(r'"(?P<method>\S+) (?P<path>\S+) [^"]*" (?P<status>\d+) upstream=(?P<upstream>.*?) upstream_status=')


def served_by(method: str, path_prefix: str, key_prefix: str | None = None) -> tuple[collections.Counter, int]:
    """From nginx's access log: how many matching requests each instance answered last, and how
    many nginx passed on to another instance after an error (several upstreams on one line)."""
    counts: collections.Counter = collections.Counter()
    passed_on = 0
    with open(os.path.join(ARTIFACTS, "nginx-access.log"), encoding="utf-8", errors="replace") as log:
        for line in log:
            match = ACCESS_LINE.search(line)
            if not match or match["method"] != method or not match["path"].startswith(path_prefix):
                continue
            if key_prefix is not None and f"key={key_prefix}" not in line:
                continue
            upstreams = [u.strip() for u in match["upstream"].split(",")]
            counts[upstreams[-1]] += 1
            passed_on += len(upstreams) > 1
    return counts, passed_on


# --- checks -----------------------------------------------------------------------------------


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


def run_check(name: str, function, *args, record: bool = True):
    check = Check(name)
    started = time.monotonic()
    try:
        function(check, *args)
    except Exception as error:  # an unexpected answer or error ends the check as failed
        check.failures += 1
        check.lines.append(f"    FAILED: {type(error).__name__}: {error}")
        for line in traceback.format_exc().rstrip().splitlines()[-6:]:
            check.lines.append(f"      {line}")
    passed = check.failures == 0
    print(f"{'PASS' if passed else 'FAIL'} {name} ({time.monotonic() - started:.1f}s)", flush=True)
    for line in check.lines:
        print(line, flush=True)
    if record:
        RESULTS.append((name, passed))
    return passed


class Fixture:
    """What the setup made: tokens, a product, an agreement and its entitlements."""

    admin: str
    officer: str
    trusts: list[str]
    product_id: int
    agreement_id: int
    storm_line: int
    storm_cap: int
    propagation_line: int
    kill_line: int


def create_line(fx: Fixture, tier: str, seat_cap: int | None) -> int:
    """A line of the run's agreement for its product (one per tier: they are unique together)."""
    starts_on = (datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=30)).isoformat()
    body = {
        "product_id": fx.product_id,
        "tier": tier,
        "metric": "per_device",
        "seat_cap": seat_cap,
        "over_allocation_policy": "block",
        "eligible_kinds": ["trust"],
        "starts_on": starts_on,
        "how_to_claim": "Cluster test line",
    }
    line = expect_status(
        call(NGINX, "POST", f"/v1/agreements/{fx.agreement_id}/entitlements", body, token=fx.admin), 201
    )
    return line["id"]


def setup(check: Check, fx: Fixture):
    fx.admin = token_for(ADMIN)
    fx.officer = token_for(OFFICER)
    openapi = expect_status(call(NGINX, "GET", "/openapi.json"), 200)
    check.expect(
        "/v1/entitlements/{id}/allocations" in openapi.get("paths", {}),
        "the OpenAPI document has the claim route",
    )
    orgs = expect_status(call(NGINX, "GET", query("/v1/organisations", kind="trust", limit=50), token=fx.admin), 200)
    fx.trusts = [o["code"] for o in orgs["items"] if not o["closed"] and o["code"] != OFFICER_ORG][:8]
    check.expect(len(fx.trusts) >= 3, f"at least 3 open trusts besides {OFFICER_ORG}: {fx.trusts}")
    supplier = expect_status(
        call(NGINX, "POST", "/v1/suppliers", {"name": f"Cluster test supplier {RUN}"}, token=fx.admin), 201
    )
    product = expect_status(
        call(
            NGINX,
            "POST",
            "/v1/products",
            {
                "supplier_id": supplier["id"],
                "name": f"Cluster test product {RUN}",
                "edition": "Standard",
                "version": "1",
                "category": "cluster-test",
                "sku": f"CLUSTER-{RUN.upper()}",
            },
            token=fx.admin,
        ),
        201,
    )
    fx.product_id = product["id"]
    starts_on = (datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=30)).isoformat()
    agreement = expect_status(
        call(
            NGINX,
            "POST",
            "/v1/agreements",
            {
                "supplier_id": supplier["id"],
                "reference": f"CLUSTER-{RUN.upper()}",
                "title": f"Cluster test agreement {RUN}",
                "starts_on": starts_on,
                "funding_model": "central",
                "status": "active",
                "eligible_kinds": ["trust"],
            },
            token=fx.admin,
        ),
        201,
    )
    fx.agreement_id = agreement["id"]
    fx.storm_cap = 10
    # The propagation line is the national provision, which coverage reports.
    fx.propagation_line = create_line(fx, "national_provision", 100_000)
    fx.storm_line = create_line(fx, "top_up", fx.storm_cap)
    fx.kill_line = create_line(fx, "add_on", None)
    check.info(
        f"run {RUN}: product {fx.product_id}, agreement {fx.agreement_id}, lines: storm {fx.storm_line} "
        f"(cap {fx.storm_cap}), propagation {fx.propagation_line}, kill {fx.kill_line} (uncapped); "
        f"trusts {fx.trusts}"
    )


# 1 ---------------------------------------------------------------------------------------------


def check_claim_storm(check: Check, fx: Fixture):
    claims, threads = 300, 32
    path = f"/v1/entitlements/{fx.storm_line}/allocations"

    def claim(i: int):
        if i % 2 == 0:
            token, org = fx.officer, OFFICER_ORG
        else:
            token, org = fx.admin, fx.trusts[i % len(fx.trusts)]
        body = {"organisation": org, "quantity": 1, "reference": f"storm-{RUN}-{i}"}
        try:
            return call(NGINX, "POST", path, body, token=token, timeout=15)
        except Exception as error:  # noqa: BLE001 - reported
            return error

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        answers = list(pool.map(claim, range(claims)))
    elapsed = time.monotonic() - started
    statuses = collections.Counter(a.status if isinstance(a, Response) else type(a).__name__ for a in answers)
    check.info(f"{claims} claims of 1 seat, {threads} threads, through nginx in {elapsed:.2f}s: {dict(statuses)}")
    created = [a for a in answers if isinstance(a, Response) and a.status == 201]
    refused = [a for a in answers if isinstance(a, Response) and a.status == 409]
    others = [a for a in answers if not isinstance(a, Response) or a.status not in (201, 409)]
    check.expect(len(created) == fx.storm_cap, f"201 answers {len(created)} == cap {fx.storm_cap}")
    check.expect(not others, f"every other answer is 409; others: {others[:5]}")
    bad_problems = [a for a in refused if not a.problem()]
    check.expect(not bad_problems, f"every 409 is a problem+json body; not: {bad_problems[:3]}")
    if refused:
        remaining = collections.Counter(a.json.get("seats_remaining") for a in refused if a.json)
        check.info(f"409 seats_remaining values: {dict(remaining)}; e.g. {refused[-1].detail()!r}")

    line = expect_status(call(NGINX, "GET", f"/v1/entitlements/{fx.storm_line}", token=fx.admin), 200)
    allocations = all_allocations(NGINX, fx.admin, fx.storm_line)
    live = [a for a in allocations if a["status"] == "live"]
    live_seats = sum(a["quantity"] for a in live)
    check.info(
        f"entitlement: seats_allocated {line['seats_allocated']}, seat_cap {line['seat_cap']}; "
        f"{len(live)} live allocations holding {live_seats} seats"
    )
    check.expect(
        line["seats_allocated"] == fx.storm_cap == live_seats,
        f"seats_allocated {line['seats_allocated']} == cap {fx.storm_cap} == live seats {live_seats}",
    )
    acknowledged = {a.json["id"] for a in created}
    check.expect(
        acknowledged == {a["id"] for a in live},
        f"the live allocations are exactly the acknowledged claims ({sorted(acknowledged)})",
    )
    counts, _ = served_by("POST", path)
    check.info(f"nginx sent the claims to: {dict(counts)}")
    check.expect(all(counts[base] > 0 for base in INSTANCES), "every instance answered some of the storm")
    for base in INSTANCES:
        seen = expect_status(call(base, "GET", f"/v1/entitlements/{fx.storm_line}", token=fx.admin), 200)
        check.expect(
            seen["seats_allocated"] == fx.storm_cap,
            f"instance {base} reads seats_allocated {seen['seats_allocated']} == {fx.storm_cap}",
        )


# 2 ---------------------------------------------------------------------------------------------


def wait_for(condition, bases: list[str], deadline_s: float, started: float) -> dict[str, float | None]:
    """Polls each base (in its own thread) until condition(base) holds; seconds from `started`."""
    seen: dict[str, float | None] = {}

    def poll(base: str):
        while time.monotonic() - started < deadline_s:
            try:
                if condition(base):
                    seen[base] = time.monotonic() - started
                    return
            except Exception:  # noqa: BLE001 - keep polling until the deadline
                pass
            time.sleep(0.01)
        seen[base] = None

    pollers = [threading.Thread(target=poll, args=(base,)) for base in bases]
    for poller in pollers:
        poller.start()
    for poller in pollers:
        poller.join()
    return seen


def seats_remaining(base: str, fx: Fixture) -> int | None:
    coverage = expect_status(
        call(base, "GET", query("/v1/coverage", organisation=OFFICER_ORG, product=fx.product_id), token=fx.admin, timeout=2),
        200,
    )
    for licence in coverage.get("licences", []):
        if licence["entitlement_id"] == fx.propagation_line:
            return licence["seats_remaining"]
    return None


def report_rounds(check: Check, rounds: list[tuple[str, dict]], what: str, limit: float = 1.0):
    worst = 0.0
    for writer, seen in rounds:
        shown = ", ".join(f"{b}: {'never' if t is None else f'{t * 1000:.0f} ms'}" for b, t in seen.items())
        check.info(f"written through {writer}; {what} on {shown}")
        for base, t in seen.items():
            if check.expect(t is not None and t < limit, f"{base} answered the change from {writer} within {limit} s"):
                worst = max(worst, t)
    check.info(f"slowest: {worst * 1000:.0f} ms (limit {limit * 1000:.0f} ms)")


def check_seat_propagation(check: Check, fx: Fixture):
    # Wait until every instance shows the line (it was made at setup), all agreeing.
    settle = time.monotonic()
    agreed = wait_for(lambda b: seats_remaining(b, fx) is not None, INSTANCES, 5.0, settle)
    check.expect(all(t is not None for t in agreed.values()), f"every instance's coverage shows line {fx.propagation_line}")
    rounds = []
    for n in range(5):
        writer = INSTANCES[n % 3]
        readers = [b for b in INSTANCES if b != writer]
        before = seats_remaining(writer, fx)
        quantity = n + 1
        claimed = call(
            writer,
            "POST",
            f"/v1/entitlements/{fx.propagation_line}/allocations",
            {"organisation": OFFICER_ORG, "quantity": quantity, "reference": f"propagation-{RUN}-{n}"},
            token=fx.officer,
        )
        acknowledged = time.monotonic()
        expect_status(claimed, 201)
        expected = before - quantity
        check.expect(seats_remaining(writer, fx) == expected, f"the writer {writer} answers {expected} at once")
        seen = wait_for(lambda b: seats_remaining(b, fx) == expected, readers, 3.0, acknowledged)
        rounds.append((writer, seen))
    report_rounds(check, rounds, "coverage seats_remaining after a claim")


def check_product_propagation(check: Check, fx: Fixture):
    rounds = []
    for n in range(3):
        writer = INSTANCES[(n + 1) % 3]
        readers = [b for b in INSTANCES if b != writer]
        current = call(writer, "GET", f"/v1/products/{fx.product_id}", token=fx.admin)
        expect_status(current, 200)
        marker = f"Cluster{RUN}r{n}x{secrets.token_hex(3)}"
        updated = call(
            writer,
            "PATCH",
            f"/v1/products/{fx.product_id}",
            {"edition": marker},
            token=fx.admin,
            headers={"If-Match": current.headers.get("etag", "")},
        )
        acknowledged = time.monotonic()
        expect_status(updated, 200)

        def found(base: str) -> bool:
            page = expect_status(
                call(base, "GET", query("/v1/products", q=marker), token=fx.admin, timeout=2), 200
            )
            return [p["id"] for p in page["items"]] == [fx.product_id]

        check.expect(found(writer), f"the writer {writer} finds edition {marker} at once")
        seen = wait_for(found, readers, 3.0, acknowledged)
        rounds.append((writer, seen))
    report_rounds(check, rounds, "the product text search finds the new edition")


# 3 ---------------------------------------------------------------------------------------------


def retry_after_ok(response: Response) -> bool:
    value = response.headers.get("retry-after", "")
    return response.status == 429 and value.isdigit() and int(value) > 0 and response.problem()


def summarise(statuses: list[int]) -> str:
    return " ".join(str(s) for s in statuses)


def expect_throttled_after(check: Check, answers: list[Response], allowed: int, why_not_per_instance: str = ""):
    """The first `allowed` answers are 401; every later one is a 429 with Retry-After and a problem body."""
    check.expect([a.status for a in answers[:allowed]] == [401] * allowed, f"the first {allowed} are 401")
    check.expect(
        all(retry_after_ok(a) for a in answers[allowed:]),
        f"attempt {allowed + 1} and later are 429 with Retry-After and a problem body{why_not_per_instance}",
    )


def check_email_throttle(check: Check, fx: Fixture):
    email, password = VICTIM
    statuses = []
    answers = []
    for attempt in range(MAX_FAILURES_PER_EMAIL + 3):
        base = INSTANCES[attempt % 3]
        answer = sign_in(base, (email, f"wrong-{secrets.token_hex(8)}"), source="127.0.0.6")
        answers.append(answer)
        statuses.append(answer.status)
    check.info(f"wrong passwords for {email}, round-robin over the 3 instances from 127.0.0.6: {summarise(statuses)}")
    expect_throttled_after(
        check,
        answers,
        MAX_FAILURES_PER_EMAIL,
        f" (a per-instance throttle would have seen only {-(-len(statuses) // 3)} per instance)",
    )
    late = answers[MAX_FAILURES_PER_EMAIL:]
    if late and late[0].status == 429:
        check.info(f"Retry-After: {late[0].headers.get('retry-after')}")
    # The email is throttled wherever it is tried from, even with the right password.
    right = [sign_in(base, VICTIM, source="127.0.0.7").status for base in INSTANCES]
    check.info(f"the right password from 127.0.0.7 on each instance: {summarise(right)}")
    check.expect(right == [429, 429, 429], "the throttled email gets 429 on every instance, right password or not")


def check_address_throttle_behind_nginx(check: Check, fx: Fixture):
    statuses, answers = [], []
    attempts = MAX_FAILURES_PER_ADDRESS + 3
    for attempt in range(attempts):
        answer = sign_in(NGINX, (f"nobody-{RUN}-{attempt}@cluster.test", "wrong-password-x"), source="127.0.0.3")
        answers.append(answer)
        statuses.append(answer.status)
    check.info(f"{attempts} wrong sign-ins with different unknown emails through nginx from 127.0.0.3: {summarise(statuses)}")
    expect_throttled_after(check, answers, MAX_FAILURES_PER_ADDRESS)
    forged = sign_in_forged(NGINX, "127.0.0.3", "10.9.9.9")
    check.info(f"127.0.0.3 through nginx with a forged X-Forwarded-For 10.9.9.9: {forged.status}")
    check.expect(forged.status == 429, "a forged X-Forwarded-For through nginx does not escape (nginx appends the real address)")
    other = sign_in(NGINX, (f"nobody-{RUN}-other@cluster.test", "wrong-password-x"), source="127.0.0.4")
    check.info(f"a wrong sign-in through nginx from 127.0.0.4: {other.status}")
    check.expect(other.status == 401, "another client address behind the same nginx is not throttled (401, not 429)")
    good = sign_in(NGINX, ADMIN, source="127.0.0.4")
    check.expect(good.status == 200, f"the admin signs in through nginx from 127.0.0.4: {good.status}")


def sign_in_forged(base: str, source: str, forwarded_for: str) -> Response:
    return call(
        base,
        "POST",
        "/v1/auth/token",
        {"email": f"nobody-{RUN}-{secrets.token_hex(4)}@cluster.test", "password": "wrong-password-x"},
        headers={"X-Forwarded-For": forwarded_for, "X-Forwarded-Proto": "https"},
        source=source,
    )


def check_forged_forwarded_for(check: Check, fx: Fixture):
    statuses, answers = [], []
    attempts = MAX_FAILURES_PER_ADDRESS + 1
    for attempt in range(attempts):
        answer = sign_in_forged(INSTANCES[attempt % 3], "127.0.0.5", "10.9.9.9")
        answers.append(answer)
        statuses.append(answer.status)
    check.info(
        f"{attempts} wrong sign-ins directly to the instances (round-robin) from 127.0.0.5, "
        f"each with X-Forwarded-For: 10.9.9.9: {summarise(statuses)}"
    )
    check.expect(
        statuses[:MAX_FAILURES_PER_ADDRESS] == [401] * MAX_FAILURES_PER_ADDRESS,
        f"the first {MAX_FAILURES_PER_ADDRESS} are 401",
    )
    check.expect(retry_after_ok(answers[-1]), f"attempt {attempts} is 429 (keyed on 127.0.0.5 across instances)")
    escapes = [sign_in_forged(base, "127.0.0.5", "10.8.8.8").status for base in INSTANCES]
    plain = [sign_in(base, (f"nobody-{RUN}-plain@cluster.test", "wrong-password-x"), source="127.0.0.5").status for base in INSTANCES]
    check.info(f"then X-Forwarded-For: 10.8.8.8 on each instance: {summarise(escapes)}; no header: {summarise(plain)}")
    check.expect(escapes == [429, 429, 429], "a different forged X-Forwarded-For does not escape the 429 (127.0.0.5 is not a trusted proxy)")
    check.expect(plain == [429, 429, 429], "127.0.0.5 stays throttled on every instance")


# 4 ---------------------------------------------------------------------------------------------


def port_refuses(base: str) -> bool:
    host, port = base.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        return False
    except OSError:
        return True


def check_kill_under_load(check: Check, fx: Fixture):
    threads = 8
    kill_after, stop_new_after, hard_deadline = 1.0, 4.0, 30.0
    victim_index = 1
    victim, victim_pid = INSTANCES[victim_index], INSTANCE_PIDS[victim_index]
    path = f"/v1/entitlements/{fx.kill_line}/allocations"
    lock = threading.Lock()
    acknowledged: dict[str, tuple[int, int, float]] = {}  # key -> (allocation id, quantity, when)
    requests: dict[str, tuple[str, dict]] = {}  # key -> (token, body), to send it again
    mismatched: list[str] = []
    unexpected: list[str] = []
    unresolved: list[str] = []
    retries = collections.Counter()
    replays = [0]
    in_flight = [0]
    killed_at: list[float] = []
    started = time.monotonic()

    def worker(t: int):
        token, org = (fx.officer, OFFICER_ORG) if t % 2 == 0 else (fx.admin, fx.trusts[t % len(fx.trusts)])
        n = 0
        while time.monotonic() - started < stop_new_after:
            key = f"kill-{RUN}-{t}-{n}"
            quantity = 1 + n % 3
            n += 1
            body = {"organisation": org, "quantity": quantity, "reference": key}
            with lock:
                requests[key] = (token, body)
            while True:  # the same key until acknowledged
                if time.monotonic() - started > hard_deadline:
                    with lock:
                        unresolved.append(key)
                    return
                with lock:
                    in_flight[0] += 1
                try:
                    answer = call(NGINX, "POST", path, body, token=token, headers={"Idempotency-Key": key}, timeout=12)
                except Exception as error:  # noqa: BLE001 - retried with the same key
                    with lock:
                        retries[type(error).__name__] += 1
                    time.sleep(0.05)
                    continue
                finally:
                    with lock:
                        in_flight[0] -= 1
                if answer.status == 201:
                    allocation = answer.json or {}
                    with lock:
                        acknowledged[key] = (allocation.get("id"), quantity, time.monotonic() - started)
                        if answer.headers.get("idempotent-replayed") == "true":
                            replays[0] += 1
                        if allocation.get("reference") != key or allocation.get("quantity") != quantity:
                            mismatched.append(f"{key}: {answer!r}")
                    break
                if answer.status >= 500 or (answer.status == 409 and "in progress" in answer.detail()):
                    with lock:
                        retries[f"{answer.status} {answer.detail()[:60]}"] += 1
                    time.sleep(0.05)
                    continue
                with lock:
                    unexpected.append(f"{key}: {answer!r}")
                    unresolved.append(key)
                break

    def killer():
        time.sleep(kill_after)
        with lock:
            flying = in_flight[0]
        os.kill(victim_pid, signal.SIGKILL)
        killed_at.append(time.monotonic() - started)
        check.info(f"kill -9 instance {victim} (pid {victim_pid}) at {killed_at[0]:.2f}s with {flying} claims in flight")

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    kill_thread = threading.Thread(target=killer)
    for thread in workers:
        thread.start()
    kill_thread.start()
    kill_thread.join()
    for thread in workers:
        thread.join()
    elapsed = time.monotonic() - started

    after_kill = sum(1 for _, _, when in acknowledged.values() if killed_at and when > killed_at[0])
    check.info(
        f"{len(acknowledged)} claims acknowledged in {elapsed:.1f}s by {threads} threads "
        f"({after_kill} after the kill), {replays[0]} answered as replays; client retries: {dict(retries) or 'none'}"
    )
    check.expect(bool(killed_at) and port_refuses(victim), f"instance {victim} is dead")
    check.expect(after_kill > 0, "claims were still acknowledged after the kill")
    check.expect(not unexpected, f"no unexpected answers: {unexpected[:5]}")
    check.expect(not unresolved, f"every claim was acknowledged in the end: unresolved {unresolved[:5]}")
    check.expect(not mismatched, f"every 201 carries its own reference and quantity: {mismatched[:5]}")

    # What nginx did: which instance answered, and how often it passed a claim on after an error.
    counts, passed_on = served_by("POST", path, key_prefix=f"kill-{RUN}-")
    check.info(
        f"nginx: answered by {dict(counts)}; {passed_on} claims passed on to another instance "
        f"after an error (proxy_next_upstream non_idempotent)"
    )

    # Retries, made on purpose, on the instances left: (a) acknowledged claims sent again to
    # another instance get the first answer back; (b) one new key sent by several clients at once
    # to every instance left (as a proxy retrying while the first attempt still runs) takes seats
    # once. Both are counted in the ledger below.
    living = [base for base in INSTANCES if base != victim] + [NGINX]
    resent = list(acknowledged)[:: max(1, len(acknowledged) // 20)][:20]
    replay_faults = []
    for n, key in enumerate(resent):
        token, body = requests[key]
        again = call(living[n % len(living)], "POST", path, body, token=token, headers={"Idempotency-Key": key})
        if not (
            again.status == 201
            and again.headers.get("idempotent-replayed") == "true"
            and (again.json or {}).get("id") == acknowledged[key][0]
        ):
            replay_faults.append(f"{key}: {again!r}")
    check.info(f"{len(resent)} acknowledged claims sent again to other instances: {len(resent) - len(replay_faults)} replayed")
    check.expect(not replay_faults, f"a repeated key answers the first allocation again: {replay_faults[:3]}")

    def until_acknowledged(base: str, token: str, body: dict, key: str) -> Response | Exception:
        for _ in range(100):
            try:
                answer = call(base, "POST", path, body, token=token, headers={"Idempotency-Key": key})
            except Exception as error:  # noqa: BLE001 - reported
                return error
            if not (answer.status == 409 and "in progress" in answer.detail()):
                return answer
            with lock:
                in_progress[0] += 1
            time.sleep(0.05)
        return answer

    race_faults: list[str] = []
    in_progress = [0]
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        for n in range(5):
            key = f"kill-{RUN}-race-{n}"
            body = {"organisation": OFFICER_ORG, "quantity": 2, "reference": key}
            futures = [pool.submit(until_acknowledged, living[i % len(living)], fx.officer, body, key) for i in range(12)]
            answers = [f.result() for f in futures]
            ids = {a.json.get("id") for a in answers if isinstance(a, Response) and a.status == 201 and a.json}
            if len(ids) == 1 and all(isinstance(a, Response) and a.status == 201 for a in answers):
                acknowledged[key] = (ids.pop(), 2, time.monotonic() - started)
            else:
                race_faults.append(f"{key}: {answers[:3]}")
                unresolved.append(key)
    check.info(
        f"5 new keys, each sent 12 times at once to {', '.join(living)}: {5 - len(race_faults)} gave one allocation "
        f"({in_progress[0]} answers of 409 'still in progress' on the way, retried)"
    )
    check.expect(not race_faults, f"concurrent sends of one key all answer the same allocation: {race_faults[:2]}")

    line = expect_status(call(NGINX, "GET", f"/v1/entitlements/{fx.kill_line}", token=fx.admin), 200)
    allocations = all_allocations(NGINX, fx.admin, fx.kill_line)
    live = [a for a in allocations if a["status"] == "live"]
    by_reference = collections.Counter(a.get("reference") for a in allocations)
    doubled = {ref: count for ref, count in by_reference.items() if count > 1}
    by_id = {a["id"]: a for a in allocations}
    lost = [
        key
        for key, (allocation_id, quantity, _) in acknowledged.items()
        if allocation_id not in by_id
        or by_id[allocation_id].get("reference") != key
        or by_id[allocation_id]["quantity"] != quantity
        or by_id[allocation_id]["status"] != "live"
    ]
    strays = [a["reference"] for a in allocations if a.get("reference") not in acknowledged]
    live_seats = sum(a["quantity"] for a in live)
    acknowledged_seats = sum(quantity for _, quantity, _ in acknowledged.values())
    check.info(
        f"{len(allocations)} allocations ({len(live)} live, {live_seats} seats); seats_allocated "
        f"{line['seats_allocated']}; {len(acknowledged)} distinct acknowledged keys for {acknowledged_seats} seats"
    )
    check.expect(not lost, f"every acknowledged claim's allocation exists as acknowledged: missing {lost[:5]}")
    check.expect(not doubled, f"no reference appears twice (no double claim): {dict(list(doubled.items())[:5])}")
    check.expect(not strays, f"no allocation without an acknowledged key: {strays[:5]}")
    check.expect(
        line["seats_allocated"] == live_seats == acknowledged_seats,
        f"seats_allocated {line['seats_allocated']} == live seats {live_seats} == acknowledged seats {acknowledged_seats}",
    )


# --- main -------------------------------------------------------------------------------------


def main() -> int:
    print(f"cluster: nginx {NGINX}, instances {', '.join(INSTANCES)}", flush=True)
    fx = Fixture()
    if not run_check("setup: users sign in, a product, an agreement and three lines", setup, fx, record=False):
        print("cluster: 0 passed, 1 failed")
        return 1
    checks = [
        ("1 claim storm across instances never over-allocates", check_claim_storm),
        ("2a a claim through one instance shows in the others' coverage within 1 s", check_seat_propagation),
        ("2b a product change through one instance shows in the others' search within 1 s", check_product_propagation),
        ("3a sign-in throttling per email holds across instances", check_email_throttle),
        ("3b sign-in throttling behind nginx is keyed on the real client address", check_address_throttle_behind_nginx),
        ("3c a forged X-Forwarded-For from an untrusted peer does not escape the throttle", check_forged_forwarded_for),
        ("4 killing an instance under load loses no acknowledged claim and doubles none", check_kill_under_load),
    ]
    for name, function in checks:
        run_check(name, function, fx)
    passed = sum(1 for _, ok in RESULTS if ok)
    failed = len(RESULTS) - passed
    print(f"cluster: {passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
