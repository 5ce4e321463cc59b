#!/usr/bin/env python3
"""Decode revdoor's Avro single-object messages with fastavro (a third-party
decoder, DESIGN §3).

Reads JSON lines on stdin, each {"schema": <schema JSON>, "message_hex": "..."},
and prints one JSON line per input:

  {"fingerprint": "<16 hex digits, little-endian as in the header>",
   "record": <decoded datum>}

or {"error": "..."} when the header is not C3 01, the header's fingerprint is
not fastavro's CRC-64-AVRO of the schema's Parsing Canonical Form, or the
datum does not decode (or leaves bytes over). Decoded values are made JSON:
bytes as lowercase hex, decimal.Decimal as plain text with all its scale
digits, datetime (timestamp-micros) as integer microseconds since the epoch,
floats as their repr() text (so a reader parses them exactly). Exits 1 if any
line failed.
"""

import datetime
import decimal
import io
import json
import sys

from fastavro import parse_schema, schemaless_reader
from fastavro.schema import fingerprint, to_parsing_canonical_form

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def plain(v):
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        return (v - EPOCH) // datetime.timedelta(microseconds=1)
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    raise TypeError(f"cannot make {type(v).__name__} JSON")


def decode(line):
    msg = json.loads(line)
    schema = parse_schema(msg["schema"])
    data = bytes.fromhex(msg["message_hex"])
    if len(data) < 10:
        return {"error": f"message of {len(data)} bytes is shorter than the header"}
    if data[:2] != b"\xc3\x01":
        return {"error": f"bad magic {data[:2].hex()}"}
    expected = fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO")
    got = data[2:10].hex()
    if got != expected:
        return {"error": f"header fingerprint {got} != fastavro's {expected}"}
    body = io.BytesIO(data[10:])
    record = schemaless_reader(body, schema, None)
    left = len(data) - 10 - body.tell()
    if left:
        return {"error": f"{left} bytes left after the datum"}
    return {"fingerprint": got, "record": plain(record)}


def main():
    failed = False
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            out = decode(line)
        except Exception as e:  # report every line, keep going
            out = {"error": f"{type(e).__name__}: {e}"}
        failed = failed or "error" in out
        print(json.dumps(out, ensure_ascii=False), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
