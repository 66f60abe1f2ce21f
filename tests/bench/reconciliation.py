#!/usr/bin/env python3
"""Times the reconciliation report (issue 18) at national scale, beside GET /healthz.

    python3 tests/bench/reconciliation.py                    # build, then 1x and 10x on both engines
    python3 tests/bench/reconciliation.py --no-build --engines sqlite --scales 1x
    python3 tests/bench/reconciliation.py --help

For each engine (a SQLite file in a temporary folder; a fresh PostgreSQL database on
postgres://postgres@127.0.0.1:5432, dropped at the end) and data set (1x: 25,000 organisations,
20,000 products, 500 entitlements, 200,000 allocations and 2,500 organisations with estate
snapshots; 10x: ten times each), it generates the data with `catalogue seed --synthetic --seed 1`
(timed), adds an admin, starts `catalogue serve` and, as the admin, sends each request below
`--requests` times one after another (after two not counted), reading curl's `time_total`:

    GET /healthz                                             the ceiling of the stack, first and last
    GET /v1/reports/reconciliation?limit=50                  the national report's first page
    GET /v1/reports/reconciliation?limit=50&cursor=MID:0     a page halfway through the codes
    GET /v1/reports/reconciliation?organisation=CODE         one organisation's report
    GET /v1/reports/reconciliation?flag=running_unsupported  a page of a flag that a tenth of rows have
    GET /v1/reports/reconciliation?format=csv                    the whole report as CSV (timed once)

It prints a table of medians, with each one's ratio to /healthz in the same run (the machine is
shared: ratios move less than milliseconds), and writes it to tests/bench/reconciliation-results.md
with the date, the commit, the cores, the load average before each data set, the server's peak
memory and the command. With `--baseline BINARY` it also times another build (say, of the commit
before a change) on the same databases, `--baseline-requests` times each; a request it answers
with an error is reported as such.
Standard library only (and curl, psql); every server it starts is stopped and every database it
made is removed, also on errors and ^C. A benchmark, not a test: the target is a first page under
200 ms at 10x.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PG_URL = "postgres://postgres@127.0.0.1:5432"
ADMIN_EMAIL = "bench@nhs.uk"
SCALES = {
    "1x": dict(organisations=25_000, products=20_000, entitlements=500, allocations=200_000),
    "10x": dict(organisations=250_000, products=200_000, entitlements=5_000, allocations=2_000_000),
}
ENGINE_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
REPORT = "/v1/reports/reconciliation"

T0 = time.monotonic()
CHILDREN: list[subprocess.Popen] = []
PG_DATABASES: set[str] = set()


def log(message: str) -> None:
    elapsed = int(time.monotonic() - T0)
    print(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {message}", flush=True)


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def organisation_code(i: int) -> str:
    """As db/src/synthetic.rs: `S` and six base-36 digits."""
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    code = ""
    for _ in range(6):
        code = digits[i % 36] + code
        i //= 36
    return "S" + code


def psql(sql: str, check: bool = True) -> None:
    result = subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres",
                             "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"psql: {sql}: {result.stderr.strip()}")


def cleanup() -> None:
    for proc in CHILDREN:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    CHILDREN.clear()
    for name in sorted(PG_DATABASES):
        psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', check=False)
    PG_DATABASES.clear()


def call(port: int, method: str, path: str, body=None, token: str | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read().decode("utf-8", "replace")
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status}: {raw[:300]}")
        return json.loads(raw) if raw.startswith(("{", "[")) else raw
    finally:
        conn.close()


class Refused(Exception):
    """A request answered with something other than 200."""


def curl_seconds(port: int, path: str, token: str | None) -> tuple[float, int]:
    """One request's curl `time_total` (seconds) and body size; refuses anything but 200."""
    cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total} %{size_download}",
           "--max-time", "900", f"http://127.0.0.1:{port}{path}"]
    if token:
        cmd[1:1] = ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
    if out[0] != "200":
        raise Refused(f"HTTP {out[0]}")
    return float(out[1]), int(out[2])


def timed(port: int, path: str, token: str | None, requests: int) -> dict:
    try:
        for _ in range(2):
            curl_seconds(port, path, token)
    except Refused as refused:
        return {"error": str(refused)}
    samples = [curl_seconds(port, path, token) for _ in range(requests)]
    seconds = [s for s, _ in samples]
    return {"median_ms": statistics.median(seconds) * 1000, "min_ms": min(seconds) * 1000,
            "max_ms": max(seconds) * 1000, "bytes": samples[-1][1], "requests": requests}


def build(args, work: Path) -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    binary = Path(args.binary) if args.binary else target / "release" / "catalogue"
    if not args.no_build and not args.binary:
        log("building: cargo build --release -p api --bin catalogue")
        subprocess.run(["cargo", "build", "-q", "--release", "-p", "api", "--bin", "catalogue"], cwd=REPO,
                       check=True)
    if not binary.exists():
        sys.exit(f"reconciliation bench: {binary} does not exist")
    # A copy, so that a concurrent build cannot swap it mid-run.
    copy = work / "catalogue"
    shutil.copy2(binary, copy)
    return copy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_quiet(cmd: list[str], log_path: Path, env=None) -> None:
    with open(log_path, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=dict(os.environ, RUST_LOG="warn", **(env or {})))
        CHILDREN.append(proc)
        proc.wait()
        CHILDREN.remove(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed:\n{log_path.read_text(errors='replace')[-2000:]}")


def bench_dataset(args, binaries: list[tuple[str, Path]], engine: str, scale: str, work: Path) -> dict:
    size = SCALES[scale]
    result = {"engine": engine, "scale": scale, "load_before": loadavg(), "binaries": {}}
    if engine == "sqlite":
        url = str(work / f"{scale}.db")
    else:
        name = f"recon_bench_{os.getpid()}_{scale}"
        psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        psql(f'CREATE DATABASE "{name}"')
        PG_DATABASES.add(name)
        url = f"{PG_URL}/{name}"
    try:
        binary = binaries[0][1]
        log(f"{ENGINE_NAMES[engine]} {scale}: generating (load {result['load_before']})")
        started = time.monotonic()
        run_quiet([str(binary), "seed", "--synthetic", "--organisations", str(size["organisations"]),
                   "--products", str(size["products"]), "--entitlements", str(size["entitlements"]),
                   "--allocations", str(size["allocations"]), "--seed", "1", "--database-url", url],
                  work / f"seed-{engine}-{scale}.log")
        result["generate_seconds"] = time.monotonic() - started
        log(f"  generated in {result['generate_seconds']:.0f} s")
        password = secrets.token_urlsafe(24)
        run_quiet([str(binary), "user", "add", "--email", ADMIN_EMAIL, "--role", "admin", "--database-url", url],
                  work / f"user-{engine}-{scale}.log", env={"CATALOGUE_PASSWORD": password})
        subjects: dict = {}
        for label, binary in binaries:
            requests = args.requests if label == "this" else args.baseline_requests
            log(f"  {label}: {binary}")
            result["binaries"][label] = measure(args, binary, url, password, size, requests, subjects,
                                                work / f"server-{engine}-{scale}-{label}.log")
    finally:
        if engine == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{url}{suffix}").unlink(missing_ok=True)
        else:
            psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', check=False)
            PG_DATABASES.discard(name)
    return result


def measure(args, binary: Path, url: str, password: str, size: dict, requests: int, subjects: dict,
            log_path: Path) -> dict:
    """Starts `binary` on the database and times the requests (see the module's comment). The
    first binary chooses the page halfway and the organisation (into `subjects`); the others
    time the same."""
    result: dict = {"runs": {}}
    port = free_port()
    server_log = open(log_path, "w")
    env = dict(os.environ, CATALOGUE_JWT_SECRET=secrets.token_urlsafe(48), CATALOGUE_LOG_FORMAT="json",
               RUST_LOG="warn")
    env.pop("DATABASE_URL", None)
    server = subprocess.Popen([str(binary), "serve", "--bind", f"127.0.0.1:{port}", "--database-url", url],
                              env=env, stdout=server_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    CHILDREN.append(server)
    try:
        deadline = time.monotonic() + 600
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited with {server.returncode}; see {log_path}")
            try:
                call(port, "GET", "/readyz")
                break
            except (OSError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        token = call(port, "POST", "/v1/auth/token", body={"email": ADMIN_EMAIL, "password": password})[
            "access_token"]
        middle = organisation_code(size["organisations"] // 2)
        if not subjects:
            mid_page = call(port, "GET", f"{REPORT}?limit=50&cursor={middle}:0", token=token)
            subjects["one"] = mid_page["items"][0]["organisation_code"]
        one = subjects["one"]
        plan = [
            ("healthz", "/healthz", None),
            ("first", f"{REPORT}?limit=50", token),
            ("middle", f"{REPORT}?limit=50&cursor={middle}:0", token),
            ("one", f"{REPORT}?organisation={one}", token),
            ("flag", f"{REPORT}?limit=50&flag=running_unsupported", token),
            ("healthz_after", "/healthz", None),
        ]
        for key, path, auth in plan:
            run = timed(port, path, auth, requests)
            run["path"] = path
            result["runs"][key] = run
            if "error" in run:
                log(f"    {key:<14} {run['error']}")
            else:
                log(f"    {key:<14} median {run['median_ms']:8.1f} ms  ({run['min_ms']:.1f}-{run['max_ms']:.1f})  "
                    f"{run['bytes']:,} bytes")
        if not args.no_export:
            try:
                seconds, size_bytes = curl_seconds(port, f"{REPORT}?format=csv", token)
                rows = call(port, "GET", f"{REPORT}?format=csv", token=token).count("\n") - 1
                result["export"] = {"seconds": seconds, "bytes": size_bytes, "rows": rows}
                log(f"    export         {seconds:8.2f} s  {rows:,} rows, {size_bytes:,} bytes")
            except Refused as refused:
                result["export"] = {"error": str(refused)}
                log(f"    export         {refused}")
        try:
            for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    result["peak_rss_mb"] = int(line.split()[1]) / 1024
        except OSError:
            pass
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        CHILDREN.remove(server)
        server_log.close()
    errors = [line for line in log_path.read_text(errors="replace").splitlines() if "ERROR" in line]
    if errors:
        result["server_error"] = errors[-1][-300:]
    return result


LABELS = {
    "first": "first page, national (`?limit=50`)",
    "middle": "a page halfway (`?limit=50&cursor=MID:0`)",
    "one": "one organisation (`?organisation=CODE`)",
    "flag": "first page of `flag=running_unsupported`",
}


def table(results: list[dict]) -> str:
    lines = ["| engine | data set | binary | request | median | min-max | x /healthz |",
             "|---|---|---|---|---|---|---|"]
    for result in results:
        for label, measured in result["binaries"].items():
            runs = measured["runs"]
            ceiling = (runs["healthz"]["median_ms"] + runs["healthz_after"]["median_ms"]) / 2
            where = f"| {ENGINE_NAMES[result['engine']]} | {result['scale']} | {label} "
            low = min(runs["healthz"]["min_ms"], runs["healthz_after"]["min_ms"])
            high = max(runs["healthz"]["max_ms"], runs["healthz_after"]["max_ms"])
            lines.append(f"{where}| `GET /healthz` (mean of the first and last medians) | {ceiling:.2f} ms "
                         f"| {low:.2f}-{high:.2f} ms | 1 |")
            for key, text in LABELS.items():
                run = runs[key]
                if "error" in run:
                    lines.append(f"{where}| {text} | {run['error']} | | |")
                    continue
                lines.append(f"{where}| {text} | {run['median_ms']:.1f} ms | {run['min_ms']:.1f}-{run['max_ms']:.1f} "
                             f"ms | {run['median_ms'] / ceiling:,.0f} |")
            export = measured.get("export")
            if export and "error" in export:
                lines.append(f"{where}| export, the whole report (once) | {export['error']} | | |")
            elif export:
                lines.append(f"{where}| export, the whole report (once): {export['rows']:,} rows, "
                             f"{export['bytes'] / 1e6:.1f} MB | {export['seconds']:.2f} s | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    parser.add_argument("--scales", default="1x,10x", help="comma-separated: 1x,10x")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per URL (default 20)")
    parser.add_argument("--no-build", action="store_true", help="use the release binary as it is")
    parser.add_argument("--binary", help="time this binary instead (implies --no-build)")
    parser.add_argument("--baseline", help="also time this binary (say, the code before a change) on each data set")
    parser.add_argument("--baseline-requests", type=int, default=5, help="timed requests per URL for it (default 5)")
    parser.add_argument("--no-export", action="store_true", help="skip the whole-report export")
    parser.add_argument("--out", default=str(HERE / "reconciliation-results.md"), help="the results file")
    args = parser.parse_args()
    engines = [e for e in args.engines.split(",") if e]
    scales = [s for s in args.scales.split(",") if s]
    if any(e not in ENGINE_NAMES for e in engines) or any(s not in SCALES for s in scales):
        sys.exit("reconciliation bench: engines are sqlite and postgres, data sets 1x and 10x")
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(f"signal {signum}"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    command = "python3 tests/bench/reconciliation.py " + " ".join(sys.argv[1:])
    results = []
    with tempfile.TemporaryDirectory(prefix="recon-bench-") as folder:
        work = Path(folder)
        try:
            binaries = [("this", build(args, work))]
            if args.baseline:
                baseline = work / "baseline"
                shutil.copy2(args.baseline, baseline)
                binaries.append(("baseline", baseline))
            for engine in engines:
                for scale in scales:
                    results.append(bench_dataset(args, binaries, engine, scale, work))
        finally:
            cleanup()
    out = [
        "# Reconciliation report at national scale (issue 18)",
        "",
        f"Measured {dt.datetime.now().strftime('%Y-%m-%d %H:%M')} on commit {commit}"
        f"{' with uncommitted changes' if dirty else ''}, {os.cpu_count()} cores (shared), release binary"
        f"{f' {args.binary}' if args.binary else ''}"
        f"{f' (baseline: {args.baseline}, {args.baseline_requests} requests each)' if args.baseline else ''}. "
        f"Command: `{command.strip()}`.",
        "",
        "Data: `catalogue seed --synthetic --seed 1` (1x: 25,000 organisations, 20,000 products, 500 "
        "entitlements, 200,000 allocations, 2,500 organisations with estate snapshots; 10x: ten times "
        f"each). Each request timed {args.requests} times in a row by curl (`time_total`, loopback, "
        "after two not counted), as the admin. Target: the first page under 200 ms at 10x.",
        "",
        table(results),
        "",
        "| engine | data set | generation | load average before (1, 5, 15 min) | server peak memory |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        peaks = ", ".join(f"{label} {measured['peak_rss_mb']:.0f} MB" for label, measured in result["binaries"].items()
                          if "peak_rss_mb" in measured)
        out.append(f"| {ENGINE_NAMES[result['engine']]} | {result['scale']} | {result['generate_seconds']:.0f} s "
                   f"| {result['load_before']} | {peaks or '?'} |")
    for result in results:
        for label, measured in result["binaries"].items():
            if "server_error" in measured:
                out += ["", f"{ENGINE_NAMES[result['engine']]} {result['scale']}, {label}: the server logged "
                            f"`{measured['server_error'].replace('`', chr(39))}`"]
    text = "\n".join(out) + "\n"
    Path(args.out).write_text(text)
    print()
    print(text)
    log(f"written to {args.out}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        cleanup()
        sys.exit(130)
