"""Validates OCDS release packages served by the catalogue against the OCDS 1.1 schemas.

Usage: ocds_validate.py SCHEMA_DIR PACKAGE.json [PACKAGE.json ...] [--prefix ocds-xxxxxx] [--count N]

A package with `records` is a record package: it is validated against record-package-schema.json
(OCDS 1.1.5, dereferenced, from ocdskit 1.7.0's fixtures), whose releases are checked against the
1.1.4 core release schema (see load_record_validators).

SCHEMA_DIR holds release-package-schema.json (OCDS 1.1.5, from the ocdskit 1.7.0 source
distribution) and release-schema-1__1__4.json (OCDS 1.1.4, from ocdsmerge 0.8.0's), which
tests/contract/ocds.sh takes from PyPI. The package schema's reference to the 1.1.5 release schema
is served the 1.1.4 one: no package on PyPI ships the 1.1.5 release schema on its own (ocdskit's
copies carry extensions), and the patch releases of 1.1 change descriptions and codelists, not the
structure a release must have. Nothing is fetched from the network here.

Draft 4 with format checking: date-time (rfc3339-validator) and uri (rfc3986-validator) must be
installed, or the run fails rather than pass formats unchecked. Beyond the schema it checks what
the schema cannot: every ocid carries the prefix, ocids are unique in a package, release ids are
unique per ocid, and (with --count) the package holds that many releases.
"""

import argparse
import json
import sys
from pathlib import Path

from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4


def load_validator(schema_dir: Path) -> Draft4Validator:
    package_schema = json.loads((schema_dir / "release-package-schema.json").read_text())
    release_schema = json.loads((schema_dir / "release-schema-1__1__4.json").read_text())
    release_ref = package_schema["properties"]["releases"]["items"]["$ref"]
    release = Resource(contents=release_schema, specification=DRAFT4)
    registry = Registry().with_resources([(release_ref, release), (release_schema["id"], release)])
    checker = FormatChecker()
    for needed in ("date-time", "uri"):
        if needed not in checker.checkers:
            sys.exit(f"ocds: the {needed} format checker is missing: install rfc3339-validator and rfc3986-validator")
    Draft4Validator.check_schema(package_schema)
    Draft4Validator.check_schema(release_schema)
    return Draft4Validator(package_schema, registry=registry, format_checker=checker)


def load_record_validators(schema_dir: Path) -> tuple[Draft4Validator, Draft4Validator]:
    """The record package's layout from ocdskit's fixture, its releases checked by the core schema.

    The fixture is dereferenced with a profile's release schema (OCDS for PPPs: initiationType
    `ppp` only), so its embedded releases and compiled release are replaced by references to the
    core 1.1.4 release schema, and its versioned release (which this catalogue does not publish)
    is dropped. What stays is the 1.1.5 record package and record structure.
    """
    record_schema = json.loads((schema_dir / "record-package-schema.json").read_text())
    release_schema = json.loads((schema_dir / "release-schema-1__1__4.json").read_text())
    release = {"$ref": release_schema["id"]}
    record = record_schema["properties"]["records"]["items"]
    record.pop("records", None)  # an example the fixture carries, not a keyword
    record["properties"]["compiledRelease"] = release
    record["properties"].pop("versionedRelease", None)
    embedded = [o for o in record["properties"]["releases"]["oneOf"] if o.get("title") == "Embedded releases"]
    if len(embedded) != 1:
        sys.exit("ocds: the record package schema has no 'Embedded releases' alternative")
    embedded[0]["items"] = release
    registry = Registry().with_resources([(release_schema["id"], Resource(contents=release_schema, specification=DRAFT4))])
    Draft4Validator.check_schema(record_schema)
    checker = FormatChecker()
    return (
        Draft4Validator(record_schema, registry=registry, format_checker=checker),
        Draft4Validator(release_schema, format_checker=checker),
    )


def record_problems(validators: tuple[Draft4Validator, Draft4Validator], package: dict, prefix: str) -> list[str]:
    package_validator, release_validator = validators
    found = [
        f"{'/'.join(map(str, error.absolute_path)) or '(package)'}: {error.message}"
        for error in package_validator.iter_errors(package)
    ]
    for n, record in enumerate(package.get("records") or []):
        ocid = record.get("ocid", "")
        if not ocid.startswith(f"{prefix}-"):
            found.append(f"records/{n}: ocid {ocid!r} does not start with {prefix}-")
        embedded = [("releases/" + str(i), r) for i, r in enumerate(record.get("releases") or [])]
        for where, release in embedded + [("compiledRelease", record.get("compiledRelease") or {})]:
            found += [f"records/{n}/{where}: {error.message}" for error in release_validator.iter_errors(release)]
            if release.get("ocid") != ocid:
                found.append(f"records/{n}/{where}: ocid differs from the record's")
        if "compiled" not in (record.get("compiledRelease") or {}).get("tag", []):
            found.append(f"records/{n}/compiledRelease: not tagged compiled")
    return found


def problems(validator: Draft4Validator, package: dict, prefix: str, count: int | None) -> list[str]:
    found = [
        f"{'/'.join(map(str, error.absolute_path)) or '(package)'}: {error.message}"
        for error in sorted(validator.iter_errors(package), key=lambda e: list(map(str, e.absolute_path)))
    ]
    releases = package.get("releases") or []
    ocids = [release.get("ocid", "") for release in releases]
    found += [f"ocid {ocid!r} does not start with {prefix}-" for ocid in ocids if not ocid.startswith(f"{prefix}-")]
    if len(set(ocids)) != len(ocids):
        found.append("an ocid is repeated: one release per agreement")
    ids = [(release.get("ocid"), release.get("id")) for release in releases]
    if len(set(ids)) != len(ids):
        found.append("a release id is repeated within its ocid")
    if count is not None and len(releases) != count:
        found.append(f"{len(releases)} releases, expected {count}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("schema_dir", type=Path)
    parser.add_argument("packages", type=Path, nargs="+")
    parser.add_argument("--prefix", default="ocds-xxxxxx")
    parser.add_argument("--count", type=int, help="releases the first package must hold")
    args = parser.parse_args()
    validator = load_validator(args.schema_dir)
    failed = 0
    record_validators = None
    for index, path in enumerate(args.packages):
        package = json.loads(path.read_text())
        if "records" in package:
            record_validators = record_validators or load_record_validators(args.schema_dir)
            found = record_problems(record_validators, package, args.prefix)
            if found:
                failed += 1
                print(f"ocds: {path.name}: INVALID record package")
                for problem in found[:50]:
                    print(f"ocds:   {problem}")
            else:
                print(f"ocds: {path.name}: valid OCDS 1.1 record package ({len(package['records'])} records)")
            # The record validators refuse too: a record without releases must fail.
            broken = json.loads(path.read_text())
            del broken["records"][0]["releases"]
            if not record_problems(record_validators, broken, args.prefix):
                print("ocds: the validator accepted a record without releases: it checks nothing")
                failed += 1
            continue
        found = problems(validator, package, args.prefix, args.count if index == 0 else None)
        releases = len(package.get("releases") or [])
        if found:
            failed += 1
            print(f"ocds: {path.name}: INVALID ({releases} releases)")
            for problem in found[:50]:
                print(f"ocds:   {problem}")
        else:
            print(f"ocds: {path.name}: valid OCDS 1.1 release package ({releases} releases)")
    # Also proves the validator refuses: a package whose release lacks its ocid must fail.
    broken = json.loads(args.packages[0].read_text())
    if broken.get("releases"):
        del broken["releases"][0]["ocid"]
        if not problems(validator, broken, args.prefix, None):
            print("ocds: the validator accepted a release without an ocid: it checks nothing")
            failed += 1
    passed = len(args.packages) - min(failed, len(args.packages))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
