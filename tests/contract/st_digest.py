"""Condense a Schemathesis text report into one entry per distinct failure.

    python st_digest.py OUTPUT.txt [BASE_URL]

Reads the FAILURES section that `schemathesis run` prints, groups the failures by check code,
operation and message (with numbers, timestamps and quoted values masked), and prints each group
once: the operation, the check, the message, the response status and body, and one curl
reproduction (with the Authorization header written as "$TOKEN" so that it can be pasted).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

SECTION = re.compile(r"^_{3,} (.+?) _{3,}$")
CASE = re.compile(r"^\d+\. Test Case ID: (\S+)")
CHECK = re.compile(r"^- (ST\d+) (.+)$")
STATUS = re.compile(r"^\[(\d{3})\] ")
# Lines of the schema and value dumps inside a check's message.
JSON_FRAGMENT = re.compile(r'^([\[\]{}],?|Value:|"[^"]*":.*|"[^"]*",?|-?\d+(\.\d+)?,?|true,?|false,?|null,?)$')


@dataclass
class Failure:
    operation: str
    case_id: str
    checks: list[tuple[str, str, list[str]]] = field(default_factory=list)
    status: str = ""
    body: str = ""
    curls: list[str] = field(default_factory=list)


def parse(lines: list[str]) -> list[Failure]:
    failures: list[Failure] = []
    in_failures = False
    operation = ""
    current: Failure | None = None
    mode = ""
    for raw in lines:
        line = raw.rstrip("\n")
        if re.match(r"^=+ FAILURES =+$", line):
            in_failures = True
            continue
        if re.match(r"^=+ (WARNINGS|SUMMARY|ERRORS) =+$", line):
            in_failures = False
            continue
        if not in_failures:
            continue
        if m := SECTION.match(line):
            operation = m.group(1)
            continue
        if m := CASE.match(line):
            current = Failure(operation, m.group(1))
            failures.append(current)
            mode = ""
            continue
        if current is None:
            continue
        if m := CHECK.match(line):
            current.checks.append((m.group(1), m.group(2), []))
            mode = "check"
            continue
        if m := STATUS.match(line):
            current.status = line.strip().rstrip(":")
            mode = "body"
            continue
        if line.startswith("Reproduce with"):
            mode = "curl"
            continue
        text = line.strip()
        if not text:
            continue
        if mode == "check" and current.checks:
            current.checks[-1][2].append(text)
        elif mode == "body" and not current.body:
            current.body = text.strip("`")
        elif mode == "curl" and text.startswith("curl "):
            current.curls.append(text)
    return failures


def mask(text: str) -> str:
    text = re.sub(r'"[^"]*"', '"…"', text)
    return re.sub(r"\d+", "N", text)


def digest(failures: list[Failure], base_url: str) -> list[str]:
    groups: dict[tuple[str, str, str], list[tuple[Failure, str, list[str]]]] = {}
    for failure in failures:
        for code, title, message in failure.checks:
            # The first lines of a check's message say what was wrong; schema violations also name
            # the schema location, which tells one violation from another.
            summary = [m for m in message if not m.startswith(("{", "}", '"', "Value:"))][:3]
            where = next((m for m in message if m.startswith("Schema at ")), "")
            key = (code, failure.operation, mask(" ".join(summary[:1]) + " " + where))
            groups.setdefault(key, []).append((failure, title, message))
    out: list[str] = []
    for n, ((code, operation, _), items) in enumerate(sorted(groups.items()), 1):
        failure, title, message = items[0]
        out.append(f"{n}. {operation}: {code} {title} ({len(items)} case(s), e.g. {failure.case_id})")
        for line in [m for m in message if not JSON_FRAGMENT.match(m)][:10]:
            out.append(f"     {line}")
        if failure.status:
            out.append(f"   response: {failure.status} {failure.body[:400]}")
        for curl in failure.curls:
            curl = re.sub(r"'Authorization: (Bearer [^']*|\[Filtered\])'", '"Authorization: Bearer $TOKEN"', curl)
            if base_url:
                curl = curl.replace(base_url, "$BASE_URL")
            out.append(f"   $ {curl}")
        out.append("")
    return out


def main() -> int:
    path = sys.argv[1]
    base_url = sys.argv[2] if len(sys.argv) > 2 else ""
    with open(path, encoding="utf-8", errors="replace") as handle:
        failures = parse(handle.readlines())
    lines = digest(failures, base_url)
    groups = sum(1 for line in lines if re.match(r"^\d+\. ", line))
    print(f"{groups} distinct failure(s) in {len(failures)} failing test case(s):\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
