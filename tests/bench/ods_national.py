#!/usr/bin/env python3
"""Writes synthetic ODS national files at national size, in the published layouts (no header row,
every field quoted, CRLF), for tests/bench/ods_import.sh: 42 ICBs (icb.csv), 106 sub-ICB
locations (eccg.csv), 250 trusts (etr.csv), 7,600 GP practices and other prescribing cost
centres (epraccur.csv) - about 8,000 organisations, as England has - and 400 successions
(succ.csv). Codes and names are made up (S-prefixed ICBs and so on); the layouts are those of
tests/fixtures/ods/README.md. Deterministic: the same files every run.

usage: ods_national.py DIR [--changed]
  --changed  the next month's files: 2% of trusts and practices renamed, 2% re-parented, 1% closed
"""
import os
import random
import sys

REGIONS = ["Y56", "Y58", "Y59", "Y60", "Y61", "Y62", "Y63"]


def row(fields):
    return ",".join('"%s"' % f for f in fields) + "\r\n"


def standard(code, name, region, parent, postcode, opened, closed="", extra=None):
    f = [""] * 27
    f[0], f[1], f[2], f[3] = code, name, region, parent
    f[4], f[7] = "SYNTHETIC HOUSE", "SYNTHETIC TOWN"
    f[9], f[10], f[11], f[21] = postcode, opened, closed, "0"
    for k, v in (extra or {}).items():
        f[k] = v
    return row(f)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out, changed = sys.argv[1], "--changed" in sys.argv[2:]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(19)
    later = random.Random(20)

    def vary(code, name, parent, parents, closed):
        """The next month's version of a record."""
        if not changed:
            return name, parent, closed
        roll = later.random()
        if roll < 0.02:
            return name + " (RENAMED)", parent, closed
        if roll < 0.04:
            return name, rng_choice(parents, parent), closed
        if roll < 0.05 and not closed:
            return name, parent, "20261130"
        return name, parent, closed

    def rng_choice(options, not_this):
        others = [o for o in options if o != not_this]
        return later.choice(others)

    icbs = [("S%02dX" % i, REGIONS[i % len(REGIONS)]) for i in range(42)]
    with open(os.path.join(out, "icb.csv"), "w", newline="") as f:
        for code, region in icbs:
            f.write(standard(code, "NHS SYNTHETIC %s INTEGRATED CARE BOARD" % code, region, region, "ZZ1 1ZZ", "20220701"))

    locations = []
    with open(os.path.join(out, "eccg.csv"), "w", newline="") as f:
        for i in range(106):
            icb, region = icbs[i % len(icbs)]
            code = "%02dS" % i
            locations.append((code, icb, region))
            f.write(standard(code, "NHS SYNTHETIC ICB - %s" % code, region, icb, "ZZ1 1ZZ", "20130401", extra={13: "C"}))

    icb_codes = [c for c, _ in icbs]
    closed_trusts = []
    with open(os.path.join(out, "etr.csv"), "w", newline="") as f:
        for i in range(250):
            icb, region = icbs[i % len(icbs)]
            code = "T%03d" % i
            closed = "20200331" if i % 25 == 0 else ""
            if closed:
                closed_trusts.append(code)
            name, parent, closed = vary(code, "SYNTHETIC %s NHS TRUST" % code, icb, icb_codes, closed)
            f.write(standard(code, name, region, parent, "ZZ%d 1ZZ" % (i % 99), "19980401", closed, extra={23: "H"}))

    practices = []
    with open(os.path.join(out, "epraccur.csv"), "w", newline="") as f:
        for i in range(7600):
            location, icb, region = locations[rng.randrange(len(locations))]
            code = "P%05d" % i
            closed = "20250331" if i % 40 == 0 else ""
            setting = "4" if i % 20 else "1"
            name, parent, closed = vary(code, "SYNTHETIC %s SURGERY" % code, icb, icb_codes, closed)
            practices.append((code, closed))
            f.write(standard(code, name, region, parent, "ZZ%d 2ZZ" % (i % 99), "19740401", closed,
                             extra={12: "C" if closed else "A", 13: "B", 14: location, 15: "19740401",
                                    23: location, 25: setting}))

    # Each closed trust or practice is succeeded by the next one in code order, so that the same
    # closure has the same successor in every month's file (as in ODS).
    with open(os.path.join(out, "succ.csv"), "w", newline="") as f:
        for code in closed_trusts:
            f.write(row([code, "T%03d" % ((int(code[1:]) + 1) % 250), "R", "20200401", ""]))
        for code, closed in practices:
            if closed:
                f.write(row([code, "P%05d" % ((int(code[1:]) + 1) % 7600), "R", "20250401", ""]))
        # Successions of codes the catalogue does not hold, as the national file has many.
        for i in range(200):
            f.write(row(["Q%04d" % i, "R%04d" % i, "R", "20130401", ""]))


if __name__ == "__main__":
    main()
