#!/usr/bin/env python3
"""Compares two trees of scripts/same-bytes.sh: identical bytes, except the
fields that are timings (seconds, images/s) and the report schema; exits 1
and names each file that differs."""
import json, re, sys, pathlib
a, b = map(pathlib.Path, sys.argv[1:3])
def strip(o):
    if isinstance(o, dict):
        return {k: strip(v) for k, v in o.items() if k not in ("seconds", "images_per_sec", "images_per_s", "schema")}
    if isinstance(o, list):
        return [strip(v) for v in o]
    return o
bad = 0
for f in sorted(p for p in a.rglob("*") if p.is_file() and "cache" not in p.parts and p.name != ".mixco.lock"):
    rel = f.relative_to(a); g = b / rel
    if not g.exists():
        print("missing", rel); bad += 1; continue
    x, y = f.read_bytes(), g.read_bytes()
    if rel.suffix in (".json",):
        same = strip(json.loads(x)) == strip(json.loads(y))
    elif rel.suffix == ".jsonl":
        same = [strip(json.loads(l)) for l in x.splitlines()] == [strip(json.loads(l)) for l in y.splitlines()]
    elif rel.suffix in (".stdout", ".stderr", ".svg"):
        t = lambda s: re.sub(rb" *\d+\.\d \xe2\x94\x82\n", b"T\n", re.sub(rb"[0-9]+(\.[0-9]+)? ?(s|img/s|images/s|ms)\b", b"T", re.sub(rb"\d+\.\d s|\d+m\d+s", b"T", s)))
        same = x == y or t(x) == t(y)
    else:
        same = x == y
    if not same:
        print("DIFF", rel); bad += 1
print("compared; differences:", bad)
sys.exit(1 if bad else 0)
