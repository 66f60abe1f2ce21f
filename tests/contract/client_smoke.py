"""Smoke test of a Python client generated from openapi/openapi.json, used as a real user would.

Run by client_smoke.sh after it has generated the client package `nhs_catalogue_client` with
openapi-python-client and installed it. Only the generated typed functions are used (their
`sync` / `sync_detailed` forms), never raw HTTP. Environment: BASE_URL, ADMIN_EMAIL,
ADMIN_PASSWORD, OPENAPI_DOCUMENT.

Each step prints `ok` or `FAIL` with the reason; a step whose input a failed step should have
produced is skipped. The exit status is 1 when any step failed.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from nhs_catalogue_client import AuthenticatedClient, Client
from nhs_catalogue_client.api.allocations import claim_seats
from nhs_catalogue_client.api.auth import create_token
from nhs_catalogue_client.api.coverage import get_coverage
from nhs_catalogue_client.api.products import get_product, list_products
from nhs_catalogue_client.models import ClaimRequest, Coverage, Problem, TokenRequest
from nhs_catalogue_client.models.decision import Decision

BASE_URL = os.environ["BASE_URL"]
ADMIN_EMAIL = os.environ["ADMIN_EMAIL"]
ADMIN_PASSWORD = os.environ["ADMIN_PASSWORD"]
DOCUMENT = os.environ["OPENAPI_DOCUMENT"]

ORGANISATION = "RR8"  # Leeds Teaching Hospitals NHS Trust
# Microsoft 365 E3 Frontline Restricted: the Enhanced tier of the 2023 agreement, the national
# provision for trusts (seeds/agreements.json). Windows is not licensed nationally today.
SKU = "MS-M365-E3"

failures: list[str] = []
state: dict[str, Any] = {}


def step(name: str, needs: tuple[str, ...] = ()) -> Callable[[Callable[[], str]], None]:
    """Run the decorated function as one step now; it returns what it found, or raises."""

    def run(function: Callable[[], str]) -> None:
        missing = [key for key in needs if key not in state]
        if missing:
            print(f"skip  {name}: an earlier step did not give {', '.join(missing)}")
            failures.append(name)
            return
        try:
            found = function()
        except Exception as error:  # noqa: BLE001 - every failure of a step is reported
            print(f"FAIL  {name}: {type(error).__name__}: {error}")
            frames = traceback.extract_tb(error.__traceback__)
            generated = [f for f in frames if "nhs_catalogue_client" in f.filename]
            if generated:
                last = generated[-1]
                print(f"      in the generated client: {last.filename.split('nhs_catalogue_client')[-1]}:{last.lineno}: {last.line}")
            failures.append(name)
            return
        print(f"ok    {name}: {found}")

    return run


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def describe(response: Any) -> str:
    body = response.content.decode("utf-8", "replace")[:300]
    return f"HTTP {int(response.status_code)}: {body}"


client = Client(base_url=BASE_URL, raise_on_unexpected_status=True)


@step("create_token: sign in as the admin")
def _() -> str:
    response = create_token.sync_detailed(client=client, body=TokenRequest(email=ADMIN_EMAIL, password=ADMIN_PASSWORD))
    expect(response.status_code == 200, describe(response))
    token = response.parsed
    expect(token is not None and not isinstance(token, Problem), f"not a TokenResponse: {token!r}")
    expect(token.token_type == "Bearer" and token.access_token, f"unexpected token: {token!r}")
    state["api"] = AuthenticatedClient(base_url=BASE_URL, token=token.access_token, raise_on_unexpected_status=True)
    return f"a {token.token_type} token for {token.expires_in} s"


@step(f"list_products q={SKU}", needs=("api",))
def _() -> str:
    page = list_products.sync(client=state["api"], q=SKU)
    expect(page is not None and not isinstance(page, Problem), f"not a ProductPage: {page!r}")
    matches = [product for product in page.items if product.sku == SKU]
    expect(len(matches) == 1, f"expected one product with sku {SKU}, got {[p.sku for p in page.items]}")
    state["product"] = matches[0]
    product = matches[0]
    return f"product {product.id}: {product.name} {product.edition} ({product.support_status.value})"


@step(f"get_coverage organisation={ORGANISATION} product={SKU}", needs=("api", "product"))
def _() -> str:
    coverage = get_coverage.sync(client=state["api"], organisation=ORGANISATION, product=state["product"].id)
    expect(isinstance(coverage, Coverage), f"not a Coverage: {coverage!r}")
    expect(coverage.decision == Decision.NATIONALLY_LICENSED, f"decision is {coverage.decision!r}")
    expect(len(coverage.licences) > 0, "a nationally licensed answer with no licence")
    expect(coverage.action.code.value == "claim_national_seats", f"the action is {coverage.action.code!r}")
    licence = coverage.licences[0]
    state["entitlement_id"] = licence.entitlement_id
    return (
        f"{coverage.decision.value} for {coverage.organisation_name}: entitlement {licence.entitlement_id} "
        f"of {licence.agreement_reference}, seats remaining {licence.seats_remaining}"
    )


@step(f"claim_seats 1 seat for {ORGANISATION} (as the admin)", needs=("api", "entitlement_id"))
def _() -> str:
    key = f"contract-smoke-{uuid.uuid4()}"
    body = ClaimRequest(organisation=ORGANISATION, quantity=1, reference="contract smoke test")
    first = claim_seats.sync_detailed(state["entitlement_id"], client=state["api"], body=body, idempotency_key=key)
    expect(first.status_code == 201, describe(first))
    allocation = first.parsed
    expect(allocation is not None and not isinstance(allocation, Problem), f"not an Allocation: {allocation!r}")
    expect(allocation.organisation_code == ORGANISATION and allocation.quantity >= 1, f"unexpected: {allocation!r}")
    # A retry with the same key returns the first result and takes no more seats.
    retry = claim_seats.sync_detailed(state["entitlement_id"], client=state["api"], body=body, idempotency_key=key)
    expect(retry.status_code == 201, describe(retry))
    expect(retry.parsed is not None and retry.parsed.id == allocation.id, f"the retry made another allocation: {retry.parsed!r}")
    return f"allocation {allocation.id}: {allocation.quantity} seat(s) of entitlement {allocation.entitlement_id}, status {allocation.status}; the retry replayed it"


def document_has(operation_id: str) -> bool:
    with open(DOCUMENT, encoding="utf-8") as handle:
        document = json.load(handle)
    return any(
        isinstance(operation, dict) and operation.get("operationId") == operation_id
        for item in document.get("paths", {}).values()
        for operation in item.values()
    )


if document_has("list_standards"):

    @step("list_standards", needs=("api",))
    def _() -> str:
        from nhs_catalogue_client.api.standards import list_standards

        page = list_standards.sync(client=state["api"])
        expect(page is not None and not isinstance(page, Problem), f"not a page of standards: {page!r}")
        titles = [standard.title for standard in page.items]
        return f"{len(titles)} standard(s): {'; '.join(titles[:3])}{' ...' if len(titles) > 3 else ''}"

else:
    print("note  list_standards: not in openapi.json yet, skipped")


@step("create_ods_import dry run of one trust, sent as bytes", needs=("api",))
def _() -> str:
    import io

    from nhs_catalogue_client.api.organisations import create_ods_import
    from nhs_catalogue_client.types import File

    etr = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(DOCUMENT))), "seeds", "ods", "etr.csv")
    with open(etr, "rb") as handle:
        first_line = handle.readline()
    report = create_ods_import.sync(client=state["api"], body=File(payload=io.BytesIO(first_line)), dry_run=True)
    expect(report is not None and not isinstance(report, Problem), f"not a report: {report!r}")
    expect(report.dry_run and report.records == 1, f"unexpected: {report!r}")
    return f"{report.records} record, dry run: {len(report.added)} to add, {report.unchanged} unchanged"


@step("get_product with an id that does not exist -> 404 as the typed Problem", needs=("api",))
def _() -> str:
    missing_id = 2_000_000_000
    response = get_product.sync_detailed(missing_id, client=state["api"])
    expect(response.status_code == 404, describe(response))
    problem = response.parsed
    expect(isinstance(problem, Problem), f"the 404 body was not parsed into Problem: {problem!r}")
    expect(problem.status == 404, f"Problem.status is {problem.status!r}")
    expect(problem.type_.startswith("urn:") and problem.title, f"incomplete problem: {problem!r}")
    return f"Problem(status={problem.status}, type={problem.type_}, detail={problem.detail!r})"


if failures:
    print(f"client smoke test: {len(failures)} step(s) failed: {', '.join(failures)}")
    sys.exit(1)
print("client smoke test: every step passed")
