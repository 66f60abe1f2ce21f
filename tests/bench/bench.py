#!/usr/bin/env python3
"""Benchmarks of the catalogue at national scale, side by side with the ceiling of the stack.

    python3 tests/bench/bench.py            # the full run (about 20-25 minutes on 2 cores)
    python3 tests/bench/bench.py --quick    # smaller data and shorter runs, to try it out

What it does (standard library only):
  1. installs what it needs when missing (Debian `wrk`, `sqlite3`);
  2. builds the release binary (`cargo build --release -p api --bin catalogue`) and copies it to a
     temporary folder, so that a later build in the shared target folder cannot swap it mid-run;
  3. for each engine (a SQLite file in a temporary folder; a fresh PostgreSQL database on
     postgres://postgres@127.0.0.1:5432) measures start-to-ready on an EMPTY database, then for
     each data set (1x and 10x) generates it with `catalogue seed --synthetic`, adds an admin,
     starts `catalogue serve`, measures start-to-ready on the large database, and drives it with
     wrk (2 threads, 64 connections, loopback, a bounded time per endpoint): GET /healthz (the
     ceiling), GET /v1/coverage, product text search, GET /v1/entitlements/{id}, and contended seat
     claims on one entitlement whose cap is first set 500 seats above what is allocated; then
     checks the ledger invariant in the database, and reads the server's peak resident memory;
  4. writes tests/bench/results.md, results.json and results.svg (a --quick run writes to
     tests/bench/quick/ instead, which git ignores), and prints the table.

Every server it starts is stopped and every temporary database removed, also on errors and ^C.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import http.client
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432"
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", "5432", "postgres"
DB_PREFIX = "catbench_"
ADMIN_EMAIL = "bench@nhs.uk"

FULL_SCALES = {
    "1x": dict(organisations=25_000, products=20_000, entitlements=500, allocations=200_000),
    "10x": dict(organisations=250_000, products=200_000, entitlements=5_000, allocations=2_000_000),
}
QUICK_SCALES = {
    "1x": dict(organisations=2_500, products=2_000, entitlements=50, allocations=20_000),
    "10x": dict(organisations=25_000, products=20_000, entitlements=500, allocations=200_000),
}
ENDPOINTS = ["healthz", "coverage", "search", "entitlement", "healthz_after", "claims"]
LABELS = {
    "healthz": "GET /healthz (ceiling, first)",
    "healthz_after": "GET /healthz (ceiling, again)",
    "coverage": "GET /v1/coverage",
    "search": "GET /v1/products?q= (text search)",
    "entitlement": "GET /v1/entitlements/{id}",
    "claims": "POST /v1/entitlements/{id}/allocations (contended)",
}
SHORT = {"coverage": "coverage", "search": "product search", "entitlement": "entitlement", "claims": "seat claims"}
ENGINE_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
CLAIM_HEADROOM = 500

T0 = time.monotonic()
CHILDREN: list[subprocess.Popen] = []
PG_DATABASES: set[str] = set()


# ----------------------------------------------------------------------------------------------
# Small helpers


def log(message: str) -> None:
    elapsed = int(time.monotonic() - T0)
    print(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {message}", flush=True)


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def busy_compilers() -> int:
    """How many rustc/cc processes run on the machine (other sessions' builds add noise)."""
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("rustc", "cc", "cc1", "ld", "cargo"):
                    count += 1
            except OSError:
                pass
    return count


def run(cmd: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, text=True, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_children() -> None:
    for proc in CHILDREN:
        if proc.poll() is None:
            try:
                proc.terminate()
                proc.wait(timeout=10)
            except Exception:
                try:
                    proc.kill()
                    proc.wait(timeout=5)
                except Exception:
                    pass
    CHILDREN.clear()


def drop_pg_databases() -> None:
    for name in sorted(PG_DATABASES):
        psql(None, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', check=False)
    PG_DATABASES.clear()


def on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


class HttpError(Exception):
    pass


def call(port: int, method: str, path: str, body=None, token: str | None = None, headers=None,
         timeout: float = 30.0):
    """One request; returns (status, parsed JSON or text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        send = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            send["Content-Type"] = "application/json"
        if token:
            send["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=data, headers=send)
        response = conn.getresponse()
        raw = response.read().decode("utf-8", "replace")
        try:
            return response.status, json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return response.status, raw
    finally:
        conn.close()


def expect(port, method, path, status=200, **kwargs):
    got, payload = call(port, method, path, **kwargs)
    if got != status:
        raise HttpError(f"{method} {path}: expected {status}, got {got}: {str(payload)[:400]}")
    return payload


# ----------------------------------------------------------------------------------------------
# Setup: tools, build, databases


def apt_install(package: str) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log(f"installing Debian package {package}")
    if run(["apt-get", "install", "-y", "-qq", package], check=False, env=env,
           stdout=subprocess.DEVNULL).returncode != 0:
        run(["apt-get", "update", "-qq"], env=env, stdout=subprocess.DEVNULL)
        run(["apt-get", "install", "-y", "-qq", package], env=env, stdout=subprocess.DEVNULL)


def ensure_tools(engines: list[str]) -> None:
    for tool, package in (("wrk", "wrk"), ("sqlite3", "sqlite3")):
        if shutil.which(tool) is None:
            apt_install(package)
        if shutil.which(tool) is None:
            sys.exit(f"bench: {tool} is still missing after apt-get install {package}")
    if "postgres" in engines and shutil.which("psql") is None:
        apt_install("postgresql-client")


def postgres_answers() -> bool:
    if shutil.which("pg_isready") is None:
        return False
    return run(["pg_isready", "-q", "-h", PG_HOST, "-p", PG_PORT], check=False).returncode == 0


def ensure_postgres() -> str | None:
    """None when PostgreSQL answers on loopback (starting an installed cluster if need be)."""
    if postgres_answers():
        return None
    if shutil.which("pg_ctlcluster") and Path("/etc/postgresql").is_dir():
        for version in sorted(os.listdir("/etc/postgresql")):
            log(f"starting the installed PostgreSQL {version} cluster")
            run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False)
        for _ in range(30):
            if postgres_answers():
                return None
            time.sleep(1)
    return "no PostgreSQL answers on 127.0.0.1:5432 (run `bash .ci/run` once, or start one)"


def psql(database: str | None, sql: str, check: bool = True) -> str:
    cmd = ["psql", "-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER, "-d", database or "postgres",
           "-v", "ON_ERROR_STOP=1", "-At", "-c", sql]
    result = run(cmd, check=False, capture_output=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"psql failed: {sql}: {result.stderr.strip()}")
    return result.stdout.strip()


def drop_stale_pg_databases() -> None:
    """Databases left by an earlier run that was killed (their process is gone)."""
    names = psql(None, f"SELECT datname FROM pg_database WHERE datname LIKE '{DB_PREFIX}%'", check=False)
    for name in names.split():
        match = re.match(rf"{DB_PREFIX}(\d+)_", name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            log(f"dropping {name}, left by an earlier run")
            psql(None, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', check=False)


def fresh_database(engine: str, label: str, tmp: Path) -> tuple[str, str]:
    """(database URL, name): a fresh SQLite file or PostgreSQL database."""
    if engine == "sqlite":
        path = tmp / f"{label}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return str(path), str(path)
    name = f"{DB_PREFIX}{os.getpid()}_{label}"
    psql(None, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(None, f'CREATE DATABASE "{name}"')
    PG_DATABASES.add(name)
    return f"{PG_ADMIN_URL}/{name}?sslmode=disable", name


def remove_database(engine: str, name: str) -> None:
    if engine == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{name}{suffix}").unlink(missing_ok=True)
    else:
        psql(None, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', check=False)
        PG_DATABASES.discard(name)


def database_size(engine: str, name: str) -> int | None:
    try:
        if engine == "sqlite":
            return sum(Path(f"{name}{s}").stat().st_size for s in ("", "-wal") if Path(f"{name}{s}").exists())
        return int(psql(None, f"SELECT pg_database_size('{name}')"))
    except Exception:
        return None


def build(args, tmp: Path) -> tuple[Path, float]:
    # Where cargo builds: CARGO_TARGET_DIR when set (relative to the repository, as cargo takes it).
    binary = REPO / os.environ.get("CARGO_TARGET_DIR", "target") / "release" / "catalogue"
    started = time.monotonic()
    if args.no_build:
        if not binary.exists():
            sys.exit(f"bench: --no-build, but {binary} does not exist")
        log(f"--no-build: using {binary} as it is")
    else:
        cmd = ["cargo", "build", "--release", "-p", "api", "--bin", "catalogue"]
        for attempt in range(1, args.build_attempts + 1):
            log(f"building: {' '.join(cmd)} (attempt {attempt}; waits for cargo's lock if another build runs)")
            result = run(cmd, check=False, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if result.returncode == 0:
                break
            tail = "\n".join(result.stdout.strip().splitlines()[-15:])
            log(f"the build failed (exit {result.returncode}):\n{tail}")
            if attempt == args.build_attempts:
                sys.exit("bench: the release build failed; see above")
            log(f"retrying in {args.build_wait} s (the working tree may be mid-edit)")
            time.sleep(args.build_wait)
    copy = tmp / "catalogue"
    shutil.copy2(binary, copy)
    return copy, time.monotonic() - started


def git_facts() -> dict:
    def git(*argv):
        result = run(["git", "--no-optional-locks", *argv], check=False, cwd=REPO, capture_output=True)
        return result.stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted_changes": bool(dirty)}


# ----------------------------------------------------------------------------------------------
# The server


class Server:
    def __init__(self, binary: Path, url: str, log_path: Path, secret: str, workers: int | None):
        self.port = free_port()
        self.log_path = log_path
        env = dict(os.environ, CATALOGUE_JWT_SECRET=secret, CATALOGUE_LOG_FORMAT="json", RUST_LOG="warn")
        env.pop("DATABASE_URL", None)
        cmd = [str(binary), "serve", "--bind", f"127.0.0.1:{self.port}", "--database-url", url]
        if workers:
            cmd += ["--workers", str(workers)]
        self.log_file = open(log_path, "w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=log_path.parent)
        CHILDREN.append(self.proc)

    def wait_ready(self, timeout: float) -> float:
        """Seconds from process start to /readyz answering 200."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode} before it was ready; "
                                   f"log: {self.log_path}\n{self.log_tail()}")
            try:
                status, _ = call(self.port, "GET", "/readyz", timeout=2)
                if status == 200:
                    return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"the server was not ready within {timeout:.0f} s; log: {self.log_path}")

    def memory(self) -> dict:
        values = {}
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                key, _, rest = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    values[key] = int(rest.split()[0]) * 1024
        except OSError:
            pass
        return values

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log_file.close()
        if self.proc in CHILDREN:
            CHILDREN.remove(self.proc)

    def log_findings(self) -> dict:
        """Panics, errors and 5xx-looking lines in the server's log."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        levels: dict[str, int] = {}
        samples = []
        panics = text.count(" panicked at ")
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            level = str(record.get("level", "?")).upper()
            levels[level] = levels.get(level, 0) + 1
            if level in ("ERROR", "WARN") and len(samples) < 5:
                samples.append(line[:300])
        return {"levels": levels, "panics": panics, "samples": samples}


# ----------------------------------------------------------------------------------------------
# wrk

LUA_COMMON = r"""
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
local function q(s) return '"' .. s .. '"' end
function done(summary, latency, requests)
  local c = {c201 = 0, c409 = 0, c4xx = 0, c5xx = 0, cother = 0}
  for _, t in ipairs(threads) do
    for k, _ in pairs(c) do c[k] = c[k] + (tonumber(t:get(k)) or 0) end
  end
  local e = summary.errors
  local f = assert(io.open(OUT_PATH, "w"))
  f:write("{")
  f:write(q("requests") .. ":" .. summary.requests .. ",")
  f:write(q("duration_us") .. ":" .. summary.duration .. ",")
  f:write(q("bytes") .. ":" .. summary.bytes .. ",")
  f:write(q("errors") .. ":{" .. q("connect") .. ":" .. e.connect .. "," .. q("read") .. ":" .. e.read .. ","
          .. q("write") .. ":" .. e.write .. "," .. q("status") .. ":" .. e.status .. ","
          .. q("timeout") .. ":" .. e.timeout .. "},")
  f:write(q("latency_us") .. ":{" .. q("mean") .. ":" .. string.format("%.1f", latency.mean) .. ","
          .. q("p50") .. ":" .. latency:percentile(50) .. "," .. q("p90") .. ":" .. latency:percentile(90) .. ","
          .. q("p99") .. ":" .. latency:percentile(99) .. "," .. q("max") .. ":" .. latency.max .. "},")
  f:write(q("statuses") .. ":{" .. q("201") .. ":" .. c.c201 .. "," .. q("409") .. ":" .. c.c409 .. ","
          .. q("other_4xx") .. ":" .. c.c4xx .. "," .. q("5xx") .. ":" .. c.c5xx .. ","
          .. q("other") .. ":" .. c.cother .. "}")
  f:write("}\n")
  f:close()
end
"""

LUA_CLAIMS = r"""
local codes = {%(codes)s}
local counter = 0
function init(args)
  c201, c409, c4xx, c5xx, cother = 0, 0, 0, 0, 0
  counter = math.random(#codes)
end
function request()
  counter = counter + 1
  local body = '{"organisation":"' .. codes[(counter %% #codes) + 1] .. '","quantity":1}'
  return wrk.format(nil, nil, nil, body)
end
function response(status, headers, body)
  if status == 201 then c201 = c201 + 1
  elseif status == 409 then c409 = c409 + 1
  elseif status >= 500 then c5xx = c5xx + 1
  elseif status >= 400 then c4xx = c4xx + 1
  else cother = cother + 1 end
end
"""


def lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal here (ASCII)


def organisation_code(i: int) -> str:
    """As db/src/synthetic.rs: `S` and six base-36 digits."""
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = []
    for _ in range(6):
        out.append(digits[i % 36])
        i //= 36
    return "S" + "".join(reversed(out))


def wrk_run(args, work: Path, name: str, port: int, path: str, token: str | None = None,
            method: str = "GET", body: str | None = None, claims_orgs: list[str] | None = None,
            duration: int | None = None) -> dict:
    duration = duration or args.duration
    out = work / f"wrk-{name}.json"
    out.unlink(missing_ok=True)
    lua = [f"OUT_PATH = {lua_string(str(out))}", f"wrk.method = {lua_string(method)}"]
    if token:
        lua.append(f'wrk.headers["Authorization"] = {lua_string("Bearer " + token)}')
    if body is not None:
        lua.append('wrk.headers["Content-Type"] = "application/json"')
        lua.append(f"wrk.body = {lua_string(body)}")
    lua.append(LUA_COMMON)
    if claims_orgs:
        lua.append(LUA_CLAIMS % {"codes": ", ".join(lua_string(c) for c in claims_orgs)})
    script = work / f"wrk-{name}.lua"
    script.write_text("\n".join(lua))
    cmd = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{duration}s", "--latency",
           "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{port}{path}"]
    load = loadavg()
    result = run(cmd, check=False, capture_output=True, timeout=duration + 60)
    (work / f"wrk-{name}.txt").write_text(result.stdout + result.stderr)
    if result.returncode != 0 or not out.exists():
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    data = json.loads(out.read_text())
    seconds = data["duration_us"] / 1e6
    data["rps"] = data["requests"] / seconds if seconds else 0.0
    data["p50_ms"] = data["latency_us"]["p50"] / 1000
    data["p99_ms"] = data["latency_us"]["p99"] / 1000
    data["non_2xx_3xx"] = data["errors"]["status"]
    data["socket_errors"] = sum(data["errors"][k] for k in ("connect", "read", "write", "timeout"))
    data["path"] = path
    data["load_before"] = load
    data["method"] = method
    return data


# ----------------------------------------------------------------------------------------------
# One engine and data set


def seed_synthetic(binary: Path, url: str, size: dict, log_path: Path) -> dict:
    cmd = [str(binary), "seed", "--synthetic", "--organisations", str(size["organisations"]),
           "--products", str(size["products"]), "--entitlements", str(size["entitlements"]),
           "--allocations", str(size["allocations"]), "--seed", "1", "--database-url", url]
    started = time.monotonic()
    with open(log_path, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=dict(os.environ, RUST_LOG="warn"))
        CHILDREN.append(proc)
        last = started
        while proc.poll() is None:
            time.sleep(0.5)
            if time.monotonic() - last >= 15:
                last = time.monotonic()
                log(f"    ... still generating ({last - started:.0f} s)")
        CHILDREN.remove(proc)
    seconds = time.monotonic() - started
    text = log_path.read_text(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"catalogue seed --synthetic failed ({proc.returncode}):\n{text[-2000:]}")
    match = re.search(r"allocations \(seed \d+\) in ([\d.]+)s", text)
    return {"seconds": seconds, "generate_seconds": float(match.group(1)) if match else None}


def add_admin(binary: Path, url: str, password: str) -> None:
    env = dict(os.environ, CATALOGUE_PASSWORD=password, RUST_LOG="warn")
    result = run([str(binary), "user", "add", "--email", ADMIN_EMAIL, "--role", "admin", "--database-url", url],
                 check=False, capture_output=True, env=env, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"catalogue user add failed: {result.stderr.strip()}")


def ledger_snapshot(engine: str, name: str, entitlement_id: int) -> dict:
    """The entitlement's stored totals and the sum of its live allocations, in one statement (one snapshot)."""
    eid = int(entitlement_id)
    sql = (f"SELECT seats_allocated, COALESCE(seat_cap, -1), (SELECT COALESCE(SUM(quantity), 0) FROM allocations "
           f"WHERE entitlement_id = {eid} AND status = 'live') FROM entitlements WHERE id = {eid}")
    if engine == "sqlite":
        out = run(["sqlite3", "-readonly", "-separator", "|", name, sql], capture_output=True).stdout.strip()
    else:
        out = psql(name, sql)
    allocated, cap, live = (int(x) for x in out.split("|"))
    return {"seats_allocated": allocated, "seat_cap": None if cap < 0 else cap, "sum_live_allocations": live}


def settled_ledger(engine: str, name: str, port: int, token: str, entitlement_id: int, timeout: float = 60) -> dict:
    """Waits until the claims still in flight when wrk stopped have finished (the same numbers twice,
    half a second apart), then returns the API's and the database's view of the ledger."""
    started = time.monotonic()
    previous = None
    while True:
        api = expect(port, "GET", f"/v1/entitlements/{entitlement_id}", token=token)
        db = ledger_snapshot(engine, name, entitlement_id)
        now = (api["seats_allocated"], api["seat_cap"], db["seats_allocated"], db["sum_live_allocations"])
        if now == previous or time.monotonic() - started > timeout:
            return {"api": api, "db": db, "settle_seconds": time.monotonic() - started, "stable": now == previous}
        previous = now
        time.sleep(0.5)


def find_product(port: int, token: str, sku: str) -> dict:
    page = expect(port, "GET", f"/v1/products?q={sku}", token=token)
    for item in page["items"]:
        if item.get("sku") == sku:
            return item
    raise RuntimeError(f"product {sku} not found by GET /v1/products?q={sku}")


def empty_start(args, binary: Path, engine: str, tmp: Path, work: Path) -> dict:
    url, name = fresh_database(engine, "empty", tmp)
    server = Server(binary, url, work / f"server-{engine}-empty.log", secrets.token_urlsafe(48), args.workers)
    try:
        ready = server.wait_ready(args.ready_timeout)
        memory = server.memory()
        return {"ready_seconds": ready, "peak_rss_bytes": memory.get("VmHWM")}
    finally:
        server.stop()
        remove_database(engine, name)


def bench_dataset(args, binary: Path, engine: str, scale: str, size: dict, tmp: Path, work: Path) -> dict:
    result: dict = {"engine": engine, "scale": scale, "size": size, "load_before": loadavg(),
                    "compilers_running_before": busy_compilers(), "runs": {}}
    label = f"{scale}"
    url, name = fresh_database(engine, label, tmp)
    server = None
    try:
        log(f"  generating {scale}: {size['organisations']:,} organisations, {size['products']:,} products, "
            f"{size['entitlements']:,} entitlements, {size['allocations']:,} allocations")
        result["seed"] = seed_synthetic(binary, url, size, work / f"seed-{engine}-{scale}.log")
        log(f"  generated in {result['seed']['seconds']:.1f} s")
        result["database_bytes"] = database_size(engine, name)
        password = secrets.token_urlsafe(24)
        add_admin(binary, url, password)

        server = Server(binary, url, work / f"server-{engine}-{scale}.log", secrets.token_urlsafe(48), args.workers)
        result["ready_seconds"] = server.wait_ready(args.ready_timeout)
        result["rss_at_ready_bytes"] = server.memory().get("VmRSS")
        log(f"  ready in {result['ready_seconds']:.2f} s on the {scale} database")
        port = server.port
        token = expect(port, "POST", "/v1/auth/token", body={"email": ADMIN_EMAIL, "password": password})[
            "access_token"]

        # A synthetic organisation, a covered product (entitlement j covers product j * stride),
        # and the entitlement that covers it.
        organisation = organisation_code(min(123, size["organisations"] - 1))
        stride = size["products"] // size["entitlements"]
        j = size["entitlements"] // 2 + 1  # mid-range, and capped (every tenth line is uncapped)
        product = find_product(port, token, f"SYN-{j * stride:07d}")
        coverage_path = f"/v1/coverage?organisation={organisation}&product={product['id']}"
        answer = expect(port, "GET", coverage_path, token=token)
        if answer.get("decision") != "nationally_licensed" or not answer.get("licences"):
            raise RuntimeError(f"coverage of {product['sku']} for {organisation} is {answer.get('decision')}, "
                               "not nationally_licensed")
        entitlement_id = answer["licences"][0]["entitlement_id"]
        # The contended entitlement: the next capped synthetic line.
        k = j + 1 if (j + 1) % 10 else j + 2
        claim_product = find_product(port, token, f"SYN-{k * stride:07d}")
        claim_answer = expect(port, "GET", f"/v1/coverage?organisation={organisation}&product={claim_product['id']}",
                              token=token)
        claim_id = claim_answer["licences"][0]["entitlement_id"]
        search_path = "/v1/products?q=Synthetic%20Product%2012"
        search = expect(port, "GET", search_path, token=token)
        expect(port, "GET", f"/v1/entitlements/{entitlement_id}", token=token)
        result["subjects"] = {"organisation": organisation, "product_id": product["id"], "product_sku": product["sku"],
                              "entitlement_id": entitlement_id, "claim_entitlement_id": claim_id,
                              "search_items": len(search.get("items", []))}

        plan = [
            ("healthz", "/healthz", None),
            ("coverage", coverage_path, token),
            ("search", search_path, token),
            ("entitlement", f"/v1/entitlements/{entitlement_id}", token),
            ("healthz_after", "/healthz", None),
        ]
        for key, path, auth in plan:
            if args.warmup:
                wrk_run(args, work, f"{engine}-{scale}-{key}-warmup", port, path, auth, duration=args.warmup)
            run_result = wrk_run(args, work, f"{engine}-{scale}-{key}", port, path, auth)
            result["runs"][key] = run_result
            log(f"  {key:<12} {run_result['rps']:>10,.0f} req/s  p50 {run_result['p50_ms']:.2f} ms  "
                f"p99 {run_result['p99_ms']:.2f} ms  non-2xx {run_result['non_2xx_3xx']}")

        # Contended claims: cap the entitlement 500 seats above what it holds, then 64 connections claim.
        before = expect(port, "GET", f"/v1/entitlements/{claim_id}", token=token)
        cap = before["seats_allocated"] + CLAIM_HEADROOM
        expect(port, "PATCH", f"/v1/entitlements/{claim_id}", body={"seat_cap": cap}, token=token,
               headers={"If-Match": "*"})
        orgs = [organisation_code(i) for i in range(0, size["organisations"], max(1, size["organisations"] // 100))]
        claims = wrk_run(args, work, f"{engine}-{scale}-claims", port, f"/v1/entitlements/{claim_id}/allocations",
                         token, method="POST", body='{"organisation":"S000000","quantity":1}', claims_orgs=orgs[:100])
        result["runs"]["claims"] = claims
        settled = settled_ledger(engine, name, port, token, claim_id)
        after, stored = settled["api"], settled["db"]
        live_sum = stored["sum_live_allocations"]
        created = claims["statuses"]["201"]
        invariant = {
            "seats_allocated_before": before["seats_allocated"],
            "seat_cap": after["seat_cap"],
            "seats_allocated_after": after["seats_allocated"],
            "sum_live_allocations": live_sum,
            "db_seats_allocated": stored["seats_allocated"],
            "db_seat_cap": stored["seat_cap"],
            "settle_seconds": round(settled["settle_seconds"], 2),
            "claims_201": created,
            # GET /v1/entitlements/{id} and the stored row agree, are within the cap, and equal the
            # sum of live allocations.
            "holds": settled["stable"] and after["seat_cap"] is not None
            and after["seats_allocated"] <= after["seat_cap"]
            and after["seats_allocated"] == live_sum == stored["seats_allocated"]
            and after["seat_cap"] == stored["seat_cap"],
            # Claims in flight when wrk stopped finish on the server unseen by wrk: then this is
            # more than the 201s counted (information, not a failure).
            "seats_taken": after["seats_allocated"] - before["seats_allocated"],
        }
        result["ledger"] = invariant
        s = claims["statuses"]
        log(f"  {'claims':<12} {claims['rps']:>10,.0f} req/s  p50 {claims['p50_ms']:.2f} ms  "
            f"p99 {claims['p99_ms']:.2f} ms  201 {s['201']}  409 {s['409']}  other 4xx {s['other_4xx']}  "
            f"5xx {s['5xx']}; ledger {'holds' if invariant['holds'] else 'BROKEN'} "
            f"({after['seats_allocated']} allocated, cap {after['seat_cap']}, live sum {live_sum})")

        memory = server.memory()
        result["peak_rss_bytes"] = memory.get("VmHWM")
        log(f"  peak resident memory {mib(result['peak_rss_bytes'])}")
    except Exception as error:  # recorded, and the run goes on with the next data set
        result["error"] = f"{type(error).__name__}: {error}"
        log(f"  FAILED: {result['error']}")
        traceback.print_exc()
    finally:
        if server is not None:
            server.stop()
            result["server_log"] = server.log_findings()
        remove_database(engine, name)
    # The ceiling: the mean of /healthz measured first and again after the read endpoints, as the
    # machine's load drifts during a run.
    ceilings = [result["runs"][k]["rps"] for k in ("healthz", "healthz_after") if k in result["runs"]]
    healthz = sum(ceilings) / len(ceilings) if ceilings else None
    result["ceiling_rps"] = healthz
    for run_result in result["runs"].values():
        run_result["ratio_to_healthz"] = run_result["rps"] / healthz if healthz else None
    result["load_after"] = loadavg()
    return result


# ----------------------------------------------------------------------------------------------
# Reporting


def mib(value) -> str:
    return "n/a" if value is None else f"{value / 1048576:.0f} MiB"


def fmt_ms(value) -> str:
    return "n/a" if value is None else (f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms")


def fmt_ratio(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def targets(report: dict) -> list[dict]:
    rows = []
    sets = report["datasets"]
    for ds in sets:
        engine, scale = ds["engine"], ds["scale"]
        cov = ds["runs"].get("coverage")
        need = 0.5 if engine == "sqlite" else 0.3
        if cov:
            ratio = cov.get("ratio_to_healthz")
            rows.append({"target": f"coverage throughput >= {need}x /healthz", "engine": engine, "scale": scale,
                         "measured": f"{fmt_ratio(ratio)}x ({cov['rps']:,.0f} req/s)",
                         "pass": ratio is not None and ratio >= need})
            rows.append({"target": "coverage p99 < 10 ms at 64 connections", "engine": engine, "scale": scale,
                         "measured": fmt_ms(cov["p99_ms"]), "pass": cov["p99_ms"] < 10})
        claims = ds["runs"].get("claims")
        if claims:
            rows.append({"target": "contended claims >= 2,000 responses/s", "engine": engine, "scale": scale,
                         "measured": f"{claims['rps']:,.0f} /s", "pass": claims["rps"] >= 2000})
            ledger = ds.get("ledger", {})
            rows.append({"target": "ledger invariant after the claim run", "engine": engine, "scale": scale,
                         "measured": (f"{ledger.get('seats_allocated_after')} allocated <= cap "
                                      f"{ledger.get('seat_cap')}, = live sum {ledger.get('sum_live_allocations')}"),
                         "pass": bool(ledger.get("holds"))})
        if scale == "10x" and ds.get("peak_rss_bytes"):
            rows.append({"target": "server memory < 150 MB at 10x", "engine": engine, "scale": scale,
                         "measured": f"{ds['peak_rss_bytes'] / 1e6:.0f} MB ({mib(ds['peak_rss_bytes'])})",
                         "pass": ds["peak_rss_bytes"] < 150e6})
    for engine, ratio in report["coverage_p50_10x_over_1x"].items():
        rows.append({"target": "10x coverage p50 <= 1.2x the 1x figure", "engine": engine, "scale": "10x/1x",
                     "measured": f"{ratio:.2f}x", "pass": ratio <= 1.2})
    return rows


def dataset_title(ds: dict) -> str:
    s = ds["size"]
    return (f"{ENGINE_NAMES[ds['engine']]}, {ds['scale']} ({s['organisations']:,} organisations, "
            f"{s['products']:,} products, {s['entitlements']:,} entitlements, {s['allocations']:,} allocations)")


def markdown(report: dict) -> str:
    m = report["machine"]
    out = ["# Benchmark results", ""]
    if report["quick"]:
        out += ["**A `--quick` run: smaller data and shorter runs; not the reference numbers.**", ""]
    out += [
        f"- Command: `{report['command']}`",
        f"- Date: {report['date']}",
        f"- Git commit: `{report['git']['commit']}`"
        + (" (the working tree had uncommitted changes when the binary was built)"
           if report["git"]["uncommitted_changes"] else ""),
        f"- Machine: {m['cpu_count']} cores (`os.cpu_count()`), {m['platform']}; load average (1, 5, 15 min) "
        f"{m['load_start']} at the start and {m['load_end']} at the end; the machine is shared, so numbers are noisy",
        f"- Load: wrk {report['wrk']['version']}, {report['wrk']['threads']} threads, "
        f"{report['wrk']['connections']} connections, {report['wrk']['duration']} s per endpoint "
        f"(after a {report['wrk']['warmup']} s warm-up, none for claims), on loopback, sharing the cores with the "
        f"server; server: `catalogue serve` release build, default workers (one per core) and pool (16)",
        "- Ratio: requests/s over the ceiling, the mean of the two `/healthz` runs of the same server (first, and "
        "again after the read endpoints); requests/s counts all responses (for claims: 201 and 409 alike)",
        "",
        "## Targets (issue 9)",
        "",
        "| Target | Engine | Data set | Measured | Result |",
        "|---|---|---|---|---|",
    ]
    for row in report["targets"]:
        out.append(f"| {row['target']} | {ENGINE_NAMES.get(row['engine'], row['engine'])} | {row['scale']} | "
                   f"{row['measured']} | {'pass' if row['pass'] else '**miss**'} |")
    out.append("")
    for ds in report["datasets"]:
        out += [f"## {dataset_title(ds)}", ""]
        if ds.get("error"):
            out += [f"**Failed:** `{ds['error']}`", ""]
        facts = []
        if ds.get("seed"):
            facts.append(f"generation (`catalogue seed --synthetic`, with the shipped seeds) "
                         f"{ds['seed']['seconds']:.1f} s")
        if ds.get("database_bytes"):
            facts.append(f"database {ds['database_bytes'] / 1e6:.0f} MB")
        if ds.get("ready_seconds") is not None:
            facts.append(f"start to ready {ds['ready_seconds']:.2f} s")
        if ds.get("peak_rss_bytes"):
            facts.append(f"server peak resident memory (VmHWM) {mib(ds['peak_rss_bytes'])}")
        facts.append(f"load average before {ds['load_before']}, after {ds.get('load_after')}")
        out += ["; ".join(facts) + ".", ""]
        out += ["| Endpoint | Requests/s | p50 | p99 | Ratio to /healthz | Non-2xx/3xx | Socket errors | Load (1 min) |",
                "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for key in ENDPOINTS:
            r = ds["runs"].get(key)
            if not r:
                continue
            out.append(f"| `{LABELS[key]}` | {r['rps']:,.0f} | {fmt_ms(r['p50_ms'])} | {fmt_ms(r['p99_ms'])} | "
                       f"{fmt_ratio(r.get('ratio_to_healthz'))} | {r['non_2xx_3xx']:,} | {r['socket_errors']:,} | "
                       f"{(r.get('load_before') or ['?'])[0]} |")
        out.append("")
        claims = ds["runs"].get("claims")
        if claims:
            s, ledger = claims["statuses"], ds.get("ledger", {})
            out += [f"Claims on entitlement {ds['subjects']['claim_entitlement_id']} (cap set to seats allocated + "
                    f"{CLAIM_HEADROOM}): {s['201']:,} × 201, {s['409']:,} × 409, {s['other_4xx']:,} other 4xx, "
                    f"{s['5xx']:,} × 5xx. Ledger after the run: seats_allocated {ledger.get('seats_allocated_after')} "
                    f"(was {ledger.get('seats_allocated_before')}), seat_cap {ledger.get('seat_cap')}, "
                    f"SUM(quantity) of live allocations {ledger.get('sum_live_allocations')}: invariant "
                    f"{'holds' if ledger.get('holds') else '**BROKEN**'} (checked once the numbers were stable, "
                    f"{ledger.get('settle_seconds')} s after the run); seats taken {ledger.get('seats_taken')} "
                    f"(201 responses seen by wrk: {s['201']:,}; claims still in flight when wrk stops finish "
                    f"unseen).", ""]
        findings = ds.get("server_log") or {}
        if findings.get("panics") or any(k in findings.get("levels", {}) for k in ("ERROR",)):
            out += [f"Server log: {findings.get('levels')}, {findings.get('panics')} panic(s).", ""]
    out += ["## Start to ready", "", "| Engine | Empty database (migrate + shipped seeds) | 1x database | 10x database |",
            "|---|---:|---:|---:|"]
    for engine in report["engines"]:
        empty = report["empty_start"].get(engine, {})
        cells = [f"{empty['ready_seconds']:.2f} s" if empty.get("ready_seconds") is not None else "n/a"]
        for scale in ("1x", "10x"):
            ds = next((d for d in report["datasets"] if d["engine"] == engine and d["scale"] == scale), None)
            cells.append(f"{ds['ready_seconds']:.2f} s" if ds and ds.get("ready_seconds") is not None else "n/a")
        out.append(f"| {ENGINE_NAMES[engine]} | " + " | ".join(cells) + " |")
    out += ["", "## Coverage p50, 10x over 1x", "", "| Engine | 1x p50 | 10x p50 | Ratio |", "|---|---:|---:|---:|"]
    for engine in report["engines"]:
        p = {d["scale"]: d["runs"]["coverage"]["p50_ms"] for d in report["datasets"]
             if d["engine"] == engine and "coverage" in d["runs"]}
        ratio = report["coverage_p50_10x_over_1x"].get(engine)
        out.append(f"| {ENGINE_NAMES[engine]} | {fmt_ms(p.get('1x'))} | {fmt_ms(p.get('10x'))} | "
                   f"{'n/a' if ratio is None else f'{ratio:.2f}x'} |")
    out += ["", "## Phases", "", "| Phase | Seconds |", "|---|---:|"]
    for phase, seconds in report["phases"].items():
        out.append(f"| {phase} | {seconds:.0f} |")
    if report.get("notes"):
        out += ["", "## Notes", ""] + [f"- {note}" for note in report["notes"]]
    out += ["", "![Throughput as a ratio of /healthz](results.svg)", ""]
    return "\n".join(out)


def svg_chart(report: dict) -> str:
    keys = ["coverage", "search", "entitlement", "claims"]
    series = [d for d in report["datasets"] if d["runs"].get("healthz")]
    colours = {("sqlite", "1x"): "#4e79a7", ("sqlite", "10x"): "#a0cbe8",
               ("postgres", "1x"): "#e15759", ("postgres", "10x"): "#ff9d9a"}
    width, height = 980, 520
    left, right, top, bottom = 70, 250, 60, 70
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [d["runs"][k].get("ratio_to_healthz") or 0 for d in series for k in keys if k in d["runs"]]
    ymax = max([0.6] + [v * 1.15 for v in values])
    ymax = (int(ymax * 10) + 1) / 10
    step = 0.1 if ymax <= 1.2 else 0.2 if ymax <= 2.4 else 0.5

    def y(v: float) -> float:
        return top + plot_h - v / ymax * plot_h

    def esc(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="13">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{left}" y="26" font-size="17" font-weight="bold">Throughput as a ratio of GET /healthz '
             f'(same server, same run)</text>',
             f'<text x="{left}" y="46" fill="#555">wrk {report["wrk"]["threads"]} threads, '
             f'{report["wrk"]["connections"]} connections, {report["wrk"]["duration"]} s each; '
             f'{report["machine"]["cpu_count"]} cores; {esc(report["date"])}; commit {report["git"]["commit"]}'
             f'{" (quick run)" if report["quick"] else ""}</text>']
    tick = 0.0
    while tick <= ymax + 1e-9:
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                     f'stroke="#ddd"/>')
        parts.append(f'<text x="{left - 8}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.1f}x</text>')
        tick = round(tick + step, 2)
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="#333"/>')
    parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#333"/>')
    group_w = plot_w / len(keys)
    bar_w = min(38.0, (group_w - 30) / max(1, len(series)))
    for gi, key in enumerate(keys):
        gx = left + gi * group_w
        start = gx + (group_w - bar_w * len(series)) / 2
        for si, ds in enumerate(series):
            r = ds["runs"].get(key)
            if not r or r.get("ratio_to_healthz") is None:
                continue
            v = r["ratio_to_healthz"]
            x = start + si * bar_w
            colour = colours.get((ds["engine"], ds["scale"]), "#888")
            parts.append(f'<rect x="{x + 2:.1f}" y="{y(v):.1f}" width="{bar_w - 4:.1f}" '
                         f'height="{top + plot_h - y(v):.1f}" fill="{colour}"><title>{esc(ENGINE_NAMES[ds["engine"]])} '
                         f'{ds["scale"]} {esc(LABELS[key])}: {v:.3f}x, {r["rps"]:,.0f} req/s</title></rect>')
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{y(v) - 4:.1f}" text-anchor="middle" '
                         f'font-size="11">{v:.2f}</text>')
        if key == "coverage":
            for need, engine in ((0.5, "SQLite"), (0.3, "PostgreSQL")):
                parts.append(f'<line x1="{gx + 6:.1f}" x2="{gx + group_w - 6:.1f}" y1="{y(need):.1f}" '
                             f'y2="{y(need):.1f}" stroke="#333" stroke-dasharray="5,4"/>')
                parts.append(f'<text x="{gx + group_w - 6:.1f}" y="{y(need) - 4:.1f}" text-anchor="end" '
                             f'font-size="11" fill="#333" stroke="white" stroke-width="3" paint-order="stroke">'
                             f'target {engine} {need}x</text>')
        parts.append(f'<text x="{gx + group_w / 2:.1f}" y="{top + plot_h + 22}" text-anchor="middle">'
                     f'{esc(SHORT[key])}</text>')
        parts.append(f'<text x="{gx + group_w / 2:.1f}" y="{top + plot_h + 40}" text-anchor="middle" '
                     f'font-size="11" fill="#555">{esc(LABELS[key].split(" (")[0])}</text>')
    lx = left + plot_w + 20
    parts.append(f'<text x="{lx}" y="{top + 4}" font-weight="bold">Engine, data set</text>')
    for si, ds in enumerate(series):
        ly = top + 24 + si * 42
        colour = colours.get((ds["engine"], ds["scale"]), "#888")
        parts.append(f'<rect x="{lx}" y="{ly - 11}" width="14" height="14" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 20}" y="{ly}">{ENGINE_NAMES[ds["engine"]]} {ds["scale"]}</text>')
        parts.append(f'<text x="{lx + 20}" y="{ly + 16}" font-size="11" fill="#555">/healthz '
                     f'{ds["ceiling_rps"]:,.0f} req/s = 1.0x</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python3 tests/bench/bench.py",
        description="Benchmark the catalogue at national scale on SQLite and PostgreSQL, side by side with "
                    "GET /healthz, and write tests/bench/results.{md,json,svg}.",
        epilog="Data sets: 1x = 25,000 organisations, 20,000 products, 500 entitlements, 200,000 allocations; "
               "10x = ten times that (--quick: a tenth of each). PostgreSQL: postgres://postgres@127.0.0.1:5432 "
               "(trust on loopback); a fresh database per data set, dropped afterwards. Needs root for apt-get "
               "when wrk or sqlite3 is missing.")
    parser.add_argument("--quick", action="store_true",
                        help="a tenth of the data, 3 s per endpoint, 1 s warm-up; results go to tests/bench/quick/")
    parser.add_argument("--engines", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    parser.add_argument("--scales", default="1x,10x", help="comma-separated: 1x,10x")
    parser.add_argument("--duration", type=int, help="seconds of load per endpoint (default 10; 3 with --quick)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up per read endpoint (default 2; 1 with --quick)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--workers", type=int, help="server worker threads (default: the server's, one per core)")
    parser.add_argument("--out", type=Path, help="folder for results.md/json/svg (default tests/bench, or "
                                                  "tests/bench/quick with --quick)")
    parser.add_argument("--no-build", action="store_true", help="use the release build as it is ($CARGO_TARGET_DIR/release/catalogue, else target/)")
    parser.add_argument("--build-attempts", type=int, default=4,
                        help="tries of the release build (another engineer's edits may be mid-way; default 4)")
    parser.add_argument("--build-wait", type=int, default=180, help="seconds between build attempts (default 180)")
    parser.add_argument("--ready-timeout", type=float, default=300, help="seconds to wait for /readyz (default 300)")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the server, seed and wrk logs (copied to OUT/logs/)")
    args = parser.parse_args()
    args.duration = args.duration or (3 if args.quick else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    args.out = args.out or (HERE / "quick" if args.quick else HERE)
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    args.scales = [s.strip() for s in args.scales.split(",") if s.strip()]
    for engine in args.engines:
        if engine not in ENGINE_NAMES:
            parser.error(f"unknown engine {engine}")
    for scale in args.scales:
        if scale not in FULL_SCALES:
            parser.error(f"unknown scale {scale}")
    return args


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    atexit.register(kill_children)
    atexit.register(drop_pg_databases)
    scales = QUICK_SCALES if args.quick else FULL_SCALES
    command = "python3 tests/bench/bench.py" + ("" if len(sys.argv) == 1 else " " + " ".join(sys.argv[1:]))
    phases: dict[str, float] = {}
    notes: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="catalogue-bench-"))
    work = tmp / "logs"
    work.mkdir()
    load_start = loadavg()
    log(f"catalogue benchmark: {command}; {os.cpu_count()} cores, load average {load_start}; temp {tmp}")
    report: dict = {}
    try:
        started = time.monotonic()
        ensure_tools(args.engines)
        phases["install tools"] = time.monotonic() - started
        engines = list(args.engines)
        if "postgres" in engines:
            problem = ensure_postgres()
            if problem:
                log(f"SKIPPING PostgreSQL: {problem}")
                notes.append(f"PostgreSQL skipped: {problem}")
                engines.remove("postgres")
            else:
                drop_stale_pg_databases()
        git = git_facts()
        binary, build_seconds = build(args, tmp)
        phases["release build"] = build_seconds
        wrk_version = run(["wrk", "--version"], check=False, capture_output=True).stdout.split("\n")[0]
        wrk_version = (re.search(r"wrk (\S+)", wrk_version) or re.search(r"(.*)", "?")).group(1)

        empty: dict = {}
        datasets: list[dict] = []
        for engine in engines:
            started = time.monotonic()
            log(f"{ENGINE_NAMES[engine]}: start to ready on an empty database (migrate, load the shipped seeds)")
            try:
                empty[engine] = empty_start(args, binary, engine, tmp, work)
                log(f"  ready in {empty[engine]['ready_seconds']:.2f} s, "
                    f"peak memory {mib(empty[engine]['peak_rss_bytes'])}")
            except Exception as error:
                empty[engine] = {"error": f"{type(error).__name__}: {error}"}
                log(f"  FAILED: {error}")
            phases[f"{ENGINE_NAMES[engine]} empty start"] = time.monotonic() - started
        for scale in args.scales:
            for engine in engines:
                started = time.monotonic()
                log(f"{ENGINE_NAMES[engine]}, {scale} data set (load average {loadavg()})")
                ds = bench_dataset(args, binary, engine, scale, scales[scale], tmp, work)
                datasets.append(ds)
                total = time.monotonic() - started
                seed_seconds = ds.get("seed", {}).get("seconds", 0.0)
                phases[f"{ENGINE_NAMES[engine]} {scale}: generate"] = seed_seconds
                phases[f"{ENGINE_NAMES[engine]} {scale}: serve and measure"] = total - seed_seconds

        ratios = {}
        for engine in engines:
            p = {d["scale"]: d["runs"]["coverage"]["p50_ms"] for d in datasets
                 if d["engine"] == engine and "coverage" in d["runs"]}
            if "1x" in p and "10x" in p and p["1x"]:
                ratios[engine] = p["10x"] / p["1x"]
        for ds in datasets:
            if ds.get("error"):
                notes.append(f"{ENGINE_NAMES[ds['engine']]} {ds['scale']} failed: {ds['error']}")
            for key, r in ds["runs"].items():
                if r["non_2xx_3xx"] and key != "claims":
                    notes.append(f"{ENGINE_NAMES[ds['engine']]} {ds['scale']} {key}: {r['non_2xx_3xx']} non-2xx/3xx")
                if r["socket_errors"]:
                    notes.append(f"{ENGINE_NAMES[ds['engine']]} {ds['scale']} {key}: socket errors {r['errors']}")
            claims = ds["runs"].get("claims")
            if claims and (claims["statuses"]["5xx"] or claims["statuses"]["other_4xx"]):
                notes.append(f"{ENGINE_NAMES[ds['engine']]} {ds['scale']} claims: {claims['statuses']}")
            findings = ds.get("server_log") or {}
            if findings.get("panics") or findings.get("levels", {}).get("ERROR"):
                notes.append(f"{ENGINE_NAMES[ds['engine']]} {ds['scale']} server log: {findings['levels']}, "
                             f"{findings['panics']} panic(s); e.g. {findings['samples'][:1]}")
        phases["total"] = time.monotonic() - T0
        report = {
            "command": command,
            "quick": args.quick,
            "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "git": git,
            "machine": {"cpu_count": os.cpu_count(), "platform": f"{platform.system()} {platform.release()}",
                        "load_start": load_start, "load_end": loadavg()},
            "wrk": {"version": wrk_version, "threads": args.threads, "connections": args.connections,
                    "duration": args.duration, "warmup": args.warmup},
            "engines": engines,
            "scales": {k: scales[k] for k in args.scales},
            "empty_start": empty,
            "datasets": datasets,
            "coverage_p50_10x_over_1x": ratios,
            "phases": phases,
            "notes": notes,
        }
        report["targets"] = targets(report)
        args.out.mkdir(parents=True, exist_ok=True)
        if args.out != HERE:
            (args.out / ".gitignore").write_text("*\n")
        text = markdown(report)
        (args.out / "results.md").write_text(text)
        (args.out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
        (args.out / "results.svg").write_text(svg_chart(report))
        if args.keep_logs:
            shutil.copytree(work, args.out / "logs", dirs_exist_ok=True)
        print("\n" + text, flush=True)
        log(f"wrote {args.out / 'results.md'}, results.json and results.svg")
        failed = any(ds.get("error") for ds in datasets) or any(e.get("error") for e in empty.values())
        return 1 if failed else 0
    except KeyboardInterrupt:
        log("interrupted: stopping servers and removing databases")
        return 130
    finally:
        kill_children()
        drop_pg_databases()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
