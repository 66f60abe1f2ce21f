"""Schemathesis hooks for the catalogue's contract run (loaded through SCHEMATHESIS_HOOKS).

1. The run signs in once as an admin (CATALOGUE_ADMIN_ID). `PATCH /v1/users/{id}` aimed at that
   admin could disable it or change its role, which ends its token and turns the rest of the run
   into 401s that prove nothing. Such a request is re-aimed at a user id that does not exist, so
   the operation is still exercised on every other user (and answers 404 for that one).
   `POST /v1/me/password` needs the current password, which schemathesis never has, so it cannot
   lock the run out and is left alone.

2. `positive_data_acceptance` fails a schema-valid request that the API refuses. Most refusals of
   that kind are gaps in the document (a length, a pattern or a bound the server enforces and the
   schema does not say) and must fail the run. A few rules cannot be written in JSON Schema at all:
   references to records that do not exist, rules across fields or across parameters, and rules on
   the stored state. INHERENT_REJECTIONS names each of them by the `detail` of its problem
   response; a refusal that matches none of them still fails the run.
"""

from __future__ import annotations

import json
import os
import re

import schemathesis

ADMIN_ID = os.environ.get("CATALOGUE_ADMIN_ID", "")
UNKNOWN_USER_ID = 9_000_000_000

# (pattern of the problem's `detail`, why no schema can express it)
INHERENT_REJECTIONS: list[tuple[str, str]] = [
    # References: a generated id or code names no record.
    (r"\b(supplier|product|standard|purchase|organisation|successor) \S* ?does not exist\b", "reference to a missing record"),
    (r"^a referenced record does not exist$", "reference to a missing record"),
    (r"^an affected product does not exist$", "reference to a missing record"),
    # The cursor is opaque: only a value the API returned as next_cursor is one.
    (r"^cursor is not valid", "opaque cursor"),
    # Rules across parameters or fields.
    (r"^give exactly one of product and category$", "exactly one of two query parameters"),
    (r"^ends_on is before starts_on$", "date order across fields"),
    (r"dates must lie within its agreement's dates", "dates against the parent agreement"),
    (r"^mainstream support cannot end after extended support$", "date order across fields"),
    (r"^give a product_id, or a description", "one of two fields"),
    (r"^an organisation cannot succeed itself$", "path against body"),
    (r"^a user with role \S+ needs an organisation$", "field required by the value of another"),
    (r"^the agreement does not admit organisations of kind ", "entitlement kinds against its agreement's"),
    (r"^quantity must be between 1 and \d+$", "bound from the stored allocation"),
    (r"^requirement code [\s\S]+ appears twice$", "codes unique across requirements (uniqueItems compares whole items)"),
    # Rules on the stored state, or on today's date.
    (r"was not the published version on \d{4}-\d{2}-\d{2}: version \d+ was", "publication history"),
    (r"^expires_on must be in the future$", "a date against today"),
    (r"is not in force on \d{4}-\d{2}-\d{2}$", "entitlement dates against today"),
    (r"are not eligible for entitlement \d+$", "eligibility of the stored organisation"),
    (r"\b(has|is) closed$", "stored organisation closed"),
    (r"is not an exemplar$", "stored organisation is no exemplar"),
    (r"cannot publish standards$", "stored organisation may not publish"),
    (r"^standard \d+ is for \S+, not \S+$", "category of the stored standard"),
    (r"^product \d+ is in category \S+, not \S+$", "category of the stored product"),
    (r"^no version of standard \d+ was published on ", "publication history"),
    (r"is not a requirement of version \d+$", "requirements of the stored version"),
    (r"^a version needs at least one requirement to be published$", "stored version's requirements"),
    (r"^this Idempotency-Key was used with a different request", "key reused with another body"),
    (r"^requirement \S+ needs an outcome$", "an outcome for every requirement of the stored version"),
    # PostgreSQL cannot store a NUL character in text; the service answers 422 rather than fail.
    # (SQLite stores it: the engines differ here, noted in the issue.)
    (r"^text must not contain NUL characters$", "NUL in text on PostgreSQL"),
    (r"^the path or query contains a NUL character$", "NUL in a path or query: refused at the edge on both engines"),
    # The password policy (NCSC, ASVS 2.1): common, predictable and personal passwords are refused.
    # The field's description says so; a list of breached passwords is no JSON Schema keyword.
    (r"^the password (is too easy to guess|must not contain|must not be only spaces)", "password policy"),
]
_INHERENT = [(re.compile(pattern), why) for pattern, why in INHERENT_REJECTIONS]


def _problem_detail(response) -> str:
    try:
        return str(json.loads(response.content).get("detail", ""))
    except (ValueError, AttributeError):
        return ""


@schemathesis.hook
def before_call(ctx, case, kwargs):
    if (
        ADMIN_ID
        and case.operation.method.upper() == "PATCH"
        and case.operation.path == "/v1/users/{id}"
        and str((case.path_parameters or {}).get("id")) == ADMIN_ID
    ):
        case.path_parameters["id"] = UNKNOWN_USER_ID


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    """Keep every failure except a positive-data refusal by a rule no schema can express."""
    if getattr(failure, "code", None) != "ST202" or response is None:
        return True
    # A bulk claim names the failing line first: "claims[3]: <the single claim's detail>".
    detail = re.sub(r"^claims\[\d+\]: ", "", _problem_detail(response))
    return not any(pattern.search(detail) for pattern, _ in _INHERENT)
