#!/usr/bin/env python3
"""The benchmark scripts' result table, from the JSON files postward-bench --json-out wrote.

    table.py DIR "SERVER..." [LABEL=NUM/DEN...]

Reads DIR/SERVER-CONNS.json and DIR/SERVER-CONNS.queries (DNS queries the fixture counted
during that run) for 1, 10 and 50 connections and prints one row per server and run, then
for each LABEL=NUM/DEN the ratio of NUM's requests/s to DEN's at that connection count.
"""
import json
import os
import sys


def load(d, s, c):
    p = f"{d}/{s}-{c}.json"
    return json.load(open(p)) if os.path.exists(p) else None


def queries(d, s, c):
    p = f"{d}/{s}-{c}.queries"
    return int(open(p).read()) if os.path.exists(p) else 0


def main():
    d, servers, ratios = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
    print(f"{'conns':>5} {'server':>11} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'q/req':>6}  answers")
    for c in (1, 10, 50):
        for s in servers:
            r = load(d, s, c)
            if not r:
                print(f"{c:>5} {s:>11}   (no result)")
                continue
            ans = " ".join(f"{k}={v}" for k, v in sorted(r["answers"].items()))
            qpr = queries(d, s, c) / max(r["requests"], 1)
            lat = r["latency_ms"]
            print(f"{c:>5} {s:>11} {r['requests_per_s']:>9.0f} {lat['p50']:>8.3f} {lat['p99']:>8.3f} {r['errors']:>7} {qpr:>6.2f}  {ans}")
        parts = []
        for spec in ratios:
            label, pair = spec.split("=", 1)
            num, den = (load(d, s, c) for s in pair.split("/", 1))
            if num and den and den["requests_per_s"]:
                parts.append(f"{label} {num['requests_per_s'] / den['requests_per_s']:.2f}")
        if parts:
            print(f"{c:>5}  " + ", ".join(parts))


if __name__ == "__main__":
    main()
