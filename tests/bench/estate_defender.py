#!/usr/bin/env python3
"""Writes a synthetic Microsoft Defender for Endpoint software inventory in the
DeviceTvmSoftwareInventory columns (tests/fixtures/estates/README.md): DEVICES devices with
PROGRAMS programs each, one row per device and program, to standard output. Program names mix
ones the catalogue matches (windows_server_2019, ...) with ones it does not (so the queue fills).
Deterministic: the same arguments give the same file.

usage: estate_defender.py DEVICES PROGRAMS > defender.csv
"""
import csv
import random
import sys

COLUMNS = ["DeviceId", "DeviceName", "OSPlatform", "OSVersion", "OSArchitecture", "SoftwareVendor",
           "SoftwareName", "SoftwareVersion", "EndOfSupportStatus", "EndOfSupportDate", "ProductCodeCpe"]
KNOWN = [("microsoft", "windows_server_2019", "10.0.17763.5696"), ("microsoft", "windows_server_2022", "10.0.20348.2402"),
         ("microsoft", "windows_server_2016", "10.0.14393.6897"), ("microsoft", "sql_server_2005", "9.00.5000.00")]


def main() -> None:
    devices, programs = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(18)
    others = [(f"vendor{n % 97}", f"program_{n}", f"{n % 7}.{n % 13}.{n % 5}") for n in range(2000)]
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(COLUMNS)
    for device in range(devices):
        device_id = f"{rng.getrandbits(128):032x}"
        name = f"pc{device:06d}.trust.nhs.uk"
        chosen = [KNOWN[device % len(KNOWN)]] + rng.sample(others, programs - 1)
        for vendor, program, version in chosen:
            out.writerow([device_id, name, "Windows10", "10.0.19045.4291", "x64", vendor, program, version,
                          "", "", f"cpe:2.3:a:{vendor}:{program}:{version}:*:*:*:*:*:*:*"])


if __name__ == "__main__":
    main()
