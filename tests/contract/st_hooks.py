"""Schemathesis hooks for the catalogue's contract run (loaded through SCHEMATHESIS_HOOKS).

1. The run signs in once (as an admin, or as the officer of one trust: CATALOGUE_USER_ID is the
   signed-in user's id). `PATCH /v1/users/{id}` aimed at that user could disable it or change its
   role, which ends its token and turns the rest of the run into 401s that prove nothing. Such a
   request is re-aimed at a user id that does not exist, so the operation is still exercised on
   every other user (and answers 404 for that one). `POST /v1/me/password` needs the current
   password, which schemathesis never has, so it cannot lock the run out and is left alone.

2. `positive_data_acceptance` fails a schema-valid request that the API refuses. Most refusals of
   that kind are gaps in the document (a length, a pattern or a bound the server enforces and the
   schema does not say, or a rule across fields that `if`/`then` can state) and must fail the run.
   A few rules cannot be written in JSON Schema at all: references to records that do not exist,
   comparisons between fields or parameters, and rules on the stored state or on today's date.
   INHERENT_REJECTIONS names each of them by the `detail` of its problem response AND by the
   operations (method and path template) where the server really applies it, found in
   api/src/routes and db/src. The same text from any other operation still fails the run, and so
   does a refusal that matches no entry.

   A 404 is excused only where it is the answer to a generated path parameter naming no record
   (the detail names the resource of that path segment, e.g. `standard version not found`), or
   where NOT_FOUND_BEYOND_PATH says (a query parameter naming no record; in the officer's run,
   another organisation's data, which officers are answered 404 for, never revealing it), and
   never "organisation not found" for a request naming the officer's own organisation.
   A foreign-key violation that reaches the database (`a referenced record does not exist`) or a
   check violation is never excused: every reference a client sends is checked by name before
   anything is written, so either one means a missing check.

Each excused refusal is appended to CONTRACT_ST_EXCUSED (a file) when that is set, to show what
the rules let through.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import schemathesis

SIGNED_IN_USER_ID = os.environ.get("CATALOGUE_USER_ID", "")
UNKNOWN_USER_ID = 9_000_000_000
# sqlite or postgres: the engine of the server under test; admin or officer: the signed-in
# user's role (schemathesis.sh sets both).
ENGINE = os.environ.get("CATALOGUE_ENGINE", "")
ROLE = os.environ.get("CATALOGUE_ROLE", "")
# The signed-in officer's organisation, when there is one: it exists and is theirs, so a request
# that names it is never answered "organisation not found" for a good reason.
OWN_ORGANISATION = os.environ.get("CATALOGUE_ORGANISATION", "").upper()
EXCUSED_LOG = os.environ.get("CONTRACT_ST_EXCUSED", "")

DOCUMENT = json.loads((Path(__file__).resolve().parents[2] / "openapi" / "openapi.json").read_text())
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
OPERATIONS = {
    f"{method.upper()} {path}": operation
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
    if method in _METHODS
}


def _having(test) -> frozenset[str]:
    return frozenset(name for name, operation in OPERATIONS.items() if test(operation))


def _parameters(operation, where: str) -> list[str]:
    return [p["name"] for p in operation.get("parameters", []) if p.get("in") == where]


# The operations a rule applies to, by method and path template.
CLAIM = "POST /v1/entitlements/{id}/allocations"
BULK_CLAIM = "POST /v1/entitlements/{id}/allocations/bulk"
RELEASE = "POST /v1/allocations/{id}/release"
SUCCESSION = "POST /v1/organisations/{code}/succession"
CREATE_AGREEMENT = "POST /v1/agreements"
UPDATE_AGREEMENT = "PATCH /v1/agreements/{id}"
CREATE_ENTITLEMENT = "POST /v1/agreements/{id}/entitlements"
UPDATE_ENTITLEMENT = "PATCH /v1/entitlements/{id}"
CREATE_PRODUCT = "POST /v1/products"
UPDATE_PRODUCT = "PATCH /v1/products/{id}"
CREATE_ADVISORY = "POST /v1/advisories"
UPDATE_ADVISORY = "PATCH /v1/advisories/{id}"
CREATE_PURCHASE = "POST /v1/organisations/{code}/purchases"
CREATE_RISK_ACCEPTANCE = "POST /v1/organisations/{code}/risk-acceptances"
CREATE_STANDARD = "POST /v1/standards"
UPDATE_VERSION = "PATCH /v1/standards/{id}/versions/{n}"
PUBLISH_VERSION = "POST /v1/standards/{id}/versions/{n}/publish"
CREATE_ASSESSMENT = "POST /v1/standards/{id}/versions/{n}/assessments"
CREATE_USER = "POST /v1/users"
UPDATE_USER = "PATCH /v1/users/{id}"
CHANGE_PASSWORD = "POST /v1/me/password"
COVERAGE = "GET /v1/coverage"
REPLACE_LIFECYCLE_SOURCES = "PUT /v1/products/{id}/lifecycle-sources"
ODS_IMPORT = "POST /v1/ods/imports"
REFUSE_SEAT_REQUEST = "POST /v1/seat-requests/{id}/refuse"
REPLACE_NHSMAIL_SERVICE = "PUT /v1/organisations/{code}/nhsmail-service"
CONFIRM_ODS_SUCCESSION = "POST /v1/ods/successions/{id}/confirm"
IMPORT_ESTATE = "POST /v1/organisations/{code}/estate"
SET_ICB_ACTING_GRANT = "PUT /v1/organisations/{code}/acting-grant"
MAP_SOFTWARE_NAME = "POST /v1/estate/mappings"
SEAT_CHANGES = "POST /v1/organisations/{code}/seat-changes"
CHANGES = "GET /v1/changes"
CREATE_SUBSCRIPTION = "POST /v1/subscriptions"
# Derived from the document: where a parameter or a body exists, the rule about it exists.
WITH_CURSOR = _having(lambda operation: "cursor" in _parameters(operation, "query"))
WITH_TEXT_IN_PATH_OR_QUERY = _having(
    lambda operation: any(
        p.get("in") in ("path", "query") and "string" in json.dumps(p.get("schema", {}).get("type", ""))
        for p in operation.get("parameters", [])
    )
)
WITH_JSON_BODY = _having(lambda operation: "application/json" in operation.get("requestBody", {}).get("content", {}))

# (pattern of the problem's `detail`, the operations that apply the rule, why no schema can express it)
INHERENT_REJECTIONS: list[tuple[str, frozenset[str], str]] = [
    # References in a body: a generated id or code names no record. The server names the field.
    (r"^supplier -?\d+ does not exist$", {CREATE_AGREEMENT, CREATE_PRODUCT, UPDATE_PRODUCT}, "reference to a missing supplier"),
    (r"^reseller -?\d+ is not a known supplier$", {CREATE_AGREEMENT, UPDATE_AGREEMENT}, "reference to a missing supplier"),
    (
        r"^product -?\d+ does not exist$",
        {CREATE_ENTITLEMENT, CREATE_PURCHASE, CREATE_RISK_ACCEPTANCE, CREATE_ASSESSMENT, MAP_SOFTWARE_NAME},
        "reference to a missing product",
    ),
    (r"^affected product -?\d+ does not exist$", {CREATE_ADVISORY, UPDATE_ADVISORY}, "reference to a missing product"),
    (r"^standard -?\d+ does not exist$", {CREATE_PURCHASE}, "reference to a missing standard"),
    # Another organisation's purchase is answered alike, so as not to tell which ids are taken.
    (r"^purchase -?\d+ does not exist$", {CREATE_PURCHASE}, "reference to a missing purchase (supersedes)"),
    (r"^organisation [A-Za-z0-9]+ does not exist$", {CREATE_USER, UPDATE_USER, CLAIM, BULK_CLAIM}, "reference to a missing organisation"),
    (r"^the successor [A-Za-z0-9]+ does not exist$", {SUCCESSION}, "reference to a missing organisation"),
    (r"^the publisher [\s\S]* does not exist$", {CREATE_STANDARD}, "reference to a missing organisation"),
    # The cursor is opaque: only a value the API returned as next_cursor is one.
    (r"^cursor is not valid: ", WITH_CURSOR, "opaque cursor"),
    (r"^cursor is not valid: ", {CHANGES}, "opaque cursor (the feed's is named after)"),
    # Comparisons across parameters or fields, and the path against the body.
    (r"^give exactly one of product and category$", {COVERAGE}, "exactly one of two query parameters"),
    (r"^release applies to a product, not a category$", {COVERAGE}, "one query parameter only with another"),
    (
        r"^release [\s\S]+ or endoflife.date release [\s\S]+ is mapped twice$",
        {REPLACE_LIFECYCLE_SOURCES},
        "names unique across items by field (uniqueItems compares whole items)",
    ),
    (
        r"^(release_name|eol_release) must not be empty$",
        {REPLACE_LIFECYCLE_SOURCES},
        "blank as Unicode defines white space, wider than the pattern's \\s",
    ),
    # An ODS national file's layout (27 quoted fields, ODS codes, YYYYMMDD dates, no code twice)
    # is a CSV format, not JSON: no schema keyword describes it. The problem names the line.
    (r"^ODS \S+ file, line \d+: ", {ODS_IMPORT}, "the ODS CSV layout"),
    (r"^the ODS \S+ file holds no records$", {ODS_IMPORT}, "the ODS CSV layout"),
    # An inventory export's layout (its source's named columns, whole-number counts) is a CSV
    # format too; the problem names the missing columns or the invalid lines.
    (r"^a \S+ file needs the columns ", {IMPORT_ESTATE}, "the export's CSV layout"),
    (r"^the file's header row cannot be read: ", {IMPORT_ESTATE}, "the export's CSV layout"),
    (r"^\d+ of \d+ rows are invalid, so nothing was imported ", {IMPORT_ESTATE}, "the export's CSV layout"),
    (r"^taken_on is in the future$", {IMPORT_ESTATE}, "a date against today"),
    # A file of seat changes is a CSV format as well; each row goes through the ledger's rules.
    (r"^the header must name entitlement_id, change and quantity", {SEAT_CHANGES}, "the seat changes' CSV layout"),
    (r"^the file's header could not be read: ", {SEAT_CHANGES}, "the seat changes' CSV layout"),
    (r"^the file has no rows$", {SEAT_CHANGES}, "the seat changes' CSV layout"),
    (r"^line \d+ could not be read: ", {SEAT_CHANGES}, "the seat changes' CSV layout"),
    (r"^a file may hold at most \d+ rows$", {SEAT_CHANGES}, "the seat changes' CSV layout"),
    (r"^\d+ of \d+ rows refused, so none was applied ", {SEAT_CHANGES}, "the seat changes' CSV layout and the ledger's rules"),
    (r"^[A-Za-z0-9]+ has closed$", {SET_ICB_ACTING_GRANT}, "stored organisation closed"),
    (
        r"^\S+ is not an integrated care board: only an ICB grants its officers",
        {SET_ICB_ACTING_GRANT},
        "kind of the stored organisation",
    ),
    (r"^successor product -?\d+ does not exist$", {CREATE_PRODUCT, UPDATE_PRODUCT}, "reference to a missing product"),
    (
        r"^successor_id (would make a product its own successor|leads through too many successors)$",
        {UPDATE_PRODUCT},
        "the stored chain of successors",
    ),
    (
        r"^ends_on is before starts_on$",
        {CREATE_AGREEMENT, UPDATE_AGREEMENT, CREATE_ENTITLEMENT, UPDATE_ENTITLEMENT},
        "date order across fields (and, on an update, against the stored dates)",
    ),
    (
        r"^mainstream support cannot end after extended support$",
        {CREATE_PRODUCT, UPDATE_PRODUCT},
        "date order across fields (and, on an update, against the stored dates)",
    ),
    (r"^an organisation cannot succeed itself$", {SUCCESSION}, "path against body"),
    (
        r"^an extension with decided_on needs a decision$",
        {CREATE_AGREEMENT, UPDATE_AGREEMENT},
        "one field of an extension option requires another",
    ),
    (r"^requirement code [\s\S]+ appears twice$", {CREATE_STANDARD, UPDATE_VERSION}, "codes unique across requirements (uniqueItems compares whole items)"),
    # Where a webhook URL leads: its scheme for this server (https only in production), and the
    # addresses its host resolves to (loopback, private and link-local refused unless allowed).
    (
        r"^(the address |\S+ is .*; webhooks go only to public addresses|\S+ resolves to |\S+ does not resolve )",
        {CREATE_SUBSCRIPTION},
        "where a webhook URL leads (DNS, address ranges, the server's scheme setting)",
    ),
    (r"^organisation \S+ does not exist$", {CREATE_SUBSCRIPTION}, "reference to a missing organisation"),
    (r"^you may subscribe only to your own organisation's events$", {CREATE_SUBSCRIPTION}, "another organisation (officers)"),
    # Rules on the stored state, or on today's date.
    (r"^an entitlement's dates must lie within its agreement's dates$", {CREATE_ENTITLEMENT, UPDATE_ENTITLEMENT}, "dates against the stored agreement"),
    (r"^the agreement does not admit organisations of kind \S+$", {CREATE_ENTITLEMENT, UPDATE_ENTITLEMENT}, "kinds against the stored agreement's"),
    # The body alone is in CreateUser's and UpdateUser's if/then; an update can also leave the
    # stored officer or exemplar without one, or give a stored admin an officer's role.
    (r"^a user with role (officer|exemplar) needs an organisation$", {UPDATE_USER}, "role or organisation of the stored user"),
    (r"^organisation [A-Za-z0-9]+ is closed$", {CREATE_USER, UPDATE_USER}, "stored organisation closed"),
    (r"^organisation [A-Za-z0-9]+ is not an exemplar$", {CREATE_USER, UPDATE_USER}, "stored organisation is no exemplar"),
    (r"^quantity must be between 1 and \d+$", {RELEASE}, "bound from the stored allocation"),
    (r"^organisation [A-Za-z0-9]+ has closed$", {CLAIM, BULK_CLAIM}, "stored organisation closed"),
    (r"^the successor [A-Za-z0-9]+ has closed$", {SUCCESSION, CONFIRM_ODS_SUCCESSION}, "stored organisation closed"),
    (r"^entitlement \d+ is not in force on \d{4}-\d{2}-\d{2}$", {CLAIM, BULK_CLAIM}, "entitlement dates against today"),
    (r"^organisations of kind \S+ are not eligible for entitlement \d+$", {CLAIM, BULK_CLAIM}, "eligibility of the stored organisation"),
    (r"^this Idempotency-Key was used with a different request", {CLAIM}, "key reused with another body"),
    (
        r"^entitlement \d+ is the national provision for NHSmail \S+ Service organisations; ",
        {CLAIM, BULK_CLAIM},
        "NHSmail service of the stored organisation on today's date",
    ),
    (
        r"^per_organisation_cap \(\d+\) is more than the line's seat_cap \(\d+\)$",
        {CREATE_ENTITLEMENT, UPDATE_ENTITLEMENT},
        "one field against another (and, on an update, against the stored line)",
    ),
    (r"^a refusal needs a reason$", {REFUSE_SEAT_REQUEST}, "blank as Unicode defines white space, wider than the pattern's \\s"),
    (
        r"^(the period starting \S+ overlaps the one starting \S+|periods\[\d+\]: ends_on is before starts_on)$",
        {REPLACE_NHSMAIL_SERVICE},
        "date order within and across the items of a list",
    ),
    (
        r"^periods\[\d+\]: the NHSmail Standard and Enhanced Services began on \d{4}-\d{2}-\d{2}$",
        {REPLACE_NHSMAIL_SERVICE},
        "a lower bound on a date (JSON Schema has none for format date)",
    ),
    (r"^\S+ cannot publish standards$", {CREATE_STANDARD}, "stored organisation may not publish"),
    (r"^standard \d+ is for \S+, not \S+$", {CREATE_PURCHASE}, "category of the stored standard"),
    (r"^product \d+ is in category \S+, not \S+$", {CREATE_PURCHASE}, "category of the stored product"),
    (r"^no version of standard \d+ was published on \d{4}-\d{2}-\d{2}$", {CREATE_PURCHASE}, "publication history"),
    (r"^version -?\d+ was not the published version on \d{4}-\d{2}-\d{2}: version \d+ was", {CREATE_PURCHASE}, "publication history"),
    (r"^[\s\S]* is not a requirement of version \d+$", {CREATE_PURCHASE, CREATE_ASSESSMENT}, "requirements of the stored version"),
    (r"^requirement [\s\S]+ needs an outcome$", {CREATE_PURCHASE, CREATE_ASSESSMENT}, "an outcome for each requirement of the stored version"),
    (r"^a version needs at least one requirement to be published$", {PUBLISH_VERSION}, "stored version's requirements"),
    (r"^expires_on must be in the future$", {CREATE_RISK_ACCEPTANCE}, "a date against today"),
    # A NUL character in the path or query is refused at the edge on both engines; in a body,
    # PostgreSQL cannot store it in text and the service answers 422 (SQLite stores it).
    (r"^the path or query contains a NUL character$", WITH_TEXT_IN_PATH_OR_QUERY, "NUL in a path or query"),
    *([(r"^text must not contain NUL characters$", WITH_JSON_BODY, "NUL in text on PostgreSQL")] if ENGINE == "postgres" else []),
    # Lifecycle names refuse a NUL on both engines (SQLite's length() stops at one, so the
    # CHECK on a non-empty name would refuse a name that starts with one).
    (r"^text must not contain NUL characters$", {REPLACE_LIFECYCLE_SOURCES}, "NUL in a lifecycle name"),
    # The password policy (NCSC, ASVS 2.1): common, predictable and personal passwords are refused.
    # The field's description says so; a list of breached passwords is no JSON Schema keyword.
    (
        r"^the password (is too easy to guess|must not contain|must not be only spaces)",
        {CREATE_USER, CHANGE_PASSWORD},
        "password policy",
    ),
]

# A 404 for a path parameter: the resource each path segment before a `{parameter}` names.
RESOURCE_OF_SEGMENT = {
    "advisories": "advisory",
    "agreements": "agreement",
    "allocations": "allocation",
    "entitlements": "entitlement",
    "organisations": "organisation",
    "products": "product",
    "holds": "lifecycle hold",
    "seat-requests": "seat request",
    "successions": "ODS succession",
    "standards": "standard",
    "versions": "standard version",
    "users": "user",
    "subscriptions": "subscription",
    "deliveries": "delivery",
    "webhook-hosts": "allowed host",
}
# Other 404s, each where the server answers it: (operations, resources, why).
REPORTS_BY_ORGANISATION = {
    "GET /v1/reports/advisories",
    "GET /v1/reports/compliance",
    "GET /v1/reports/obligations",
    "GET /v1/reports/unsupported",
    "GET /v1/reports/reconciliation",
}
NOT_FOUND_BEYOND_PATH = [
    ({COVERAGE}, ("organisation", "product", "category", "release"), "a query parameter names no record (or another organisation)"),
]
if ROLE in ("officer", "exemplar"):
    # Another organisation's data answers 404 to officers and exemplars, never revealing it; an
    # admin gets 404 only for what does not exist, or 422 when a body names it.
    NOT_FOUND_BEYOND_PATH += [
        (REPORTS_BY_ORGANISATION, ("organisation",), "another organisation's report (never revealed)"),
        ({CLAIM}, ("organisation",), "a claim for another organisation (never revealed)"),
        ({RELEASE}, ("organisation",), "another organisation's allocation (never revealed)"),
    ]


def _not_found_rules() -> list[tuple[str, frozenset[str], str]]:
    rules = []
    for name in OPERATIONS:
        segments = name.split(" ", 1)[1].split("/")
        nouns = [RESOURCE_OF_SEGMENT[before] for before, segment in zip(segments, segments[1:]) if segment.startswith("{")]
        if nouns:
            rules.append((rf"^({'|'.join(nouns)}) not found$", {name}, "a generated path parameter names no record"))
    for operations, nouns, why in NOT_FOUND_BEYOND_PATH:
        rules.append((rf"^({'|'.join(nouns)}) not found$", operations, why))
    return rules


def _compile(rules):
    compiled = []
    for pattern, operations, why in rules:
        unknown = set(operations) - OPERATIONS.keys()
        if unknown or not operations:
            raise ValueError(f"INHERENT_REJECTIONS {pattern!r}: no such operation in the document: {sorted(unknown)}")
        compiled.append((re.compile(pattern), frozenset(operations), why))
    return compiled


_INHERENT = _compile(INHERENT_REJECTIONS + _not_found_rules())


def _problem_detail(response) -> str:
    try:
        return str(json.loads(response.content).get("detail", ""))
    except (ValueError, AttributeError):
        return ""


def _names_own_organisation(case) -> bool:
    named = [(case.path_parameters or {}).get("code"), (case.query or {}).get("organisation")]
    if isinstance(case.body, dict):
        named.append(case.body.get("organisation"))
    return bool(OWN_ORGANISATION) and any(isinstance(code, str) and code.upper() == OWN_ORGANISATION for code in named)


@schemathesis.hook
def before_call(ctx, case, kwargs):
    if (
        SIGNED_IN_USER_ID
        and case.operation.method.upper() == "PATCH"
        and case.operation.path == "/v1/users/{id}"
        and str((case.path_parameters or {}).get("id")) == SIGNED_IN_USER_ID
    ):
        case.path_parameters["id"] = UNKNOWN_USER_ID


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    """Keep every failure except a positive-data refusal by a rule no schema can express, on an
    operation that applies that rule."""
    if getattr(failure, "code", None) != "ST202" or response is None:
        return True
    operation = f"{case.operation.method.upper()} {case.operation.path}"
    detail = _problem_detail(response)
    if operation == BULK_CLAIM:
        # A bulk claim names the failing line first: "claims[3]: <the single claim's detail>".
        detail = re.sub(r"^claims\[\d+\]: ", "", detail)
    if detail == "organisation not found" and _names_own_organisation(case):
        return True
    why = next((why for pattern, operations, why in _INHERENT if operation in operations and pattern.search(detail)), None)
    if why is None:
        return True
    if EXCUSED_LOG:
        with open(EXCUSED_LOG, "a", encoding="utf-8") as log:
            log.write(f"{operation} {response.status_code} {detail!r}: {why}\n")
    return False
