#!/usr/bin/python3
"""Latency of two pubsub-cache calls through Libervia 0.9's D-Bus bridge.

The same client (python3-dbus, as Libervia's own frontends use) times N calls of

- psItemsGet(service, node, 20, [], "", "{}", profile): 20 items of a cached node;
- psCacheSearch(query): a full-text search in the cache, limited to that node,

against whichever backend owns org.libervia.Libervia on the bus given (perchd with its
Libervia bridge, or Debian's libervia-backend), and prints p50 and p90 in milliseconds
as one JSON object. The backend must have the profile connected and the node cached
(`libervia-cli pubsub cache sync`); `perch-bench --libervia-bridge` prepares both
backends that way and runs this script on each.

Run it with Debian's python3 (/usr/bin/python3), which has python3-dbus:

    /usr/bin/python3 bench/scripts/libervia_bridge.py --address unix:path=/tmp/…/bus \
        --profile test --service alice@localhost --node urn:xmpp:microblog:0 \
        --fts benchword -n 200
"""

import argparse
import json
import statistics
import sys
import time

try:
    import dbus
except ImportError:
    sys.exit("python3-dbus is missing: apt-get install -y python3-dbus")

NAME = "org.libervia.Libervia"
PATH = "/org/libervia/Libervia/bridge"
PLUGIN = "org.libervia.Libervia.plugin"
TIMEOUT = 120


def percentile(values, q):
    """The q-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    rank = max(1, int(round(q / 100.0 * len(ordered) + 0.5)))
    return ordered[min(rank, len(ordered)) - 1]


def timed(call, n):
    """Runs call() n times; returns the durations in milliseconds and the last result."""
    durations = []
    result = None
    for _ in range(n):
        start = time.perf_counter()
        result = call()
        durations.append((time.perf_counter() - start) * 1000.0)
    return durations, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", help="bus address (default: the session bus)")
    parser.add_argument("--profile", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--fts", required=True, help="a word every item contains")
    parser.add_argument("-n", "--iterations", type=int, default=200)
    parser.add_argument("--label", default="", help="a name for the backend, echoed")
    args = parser.parse_args()

    if args.address:
        bus = dbus.bus.BusConnection(args.address)
    else:
        bus = dbus.SessionBus()
    plugin = dbus.Interface(bus.get_object(NAME, PATH), PLUGIN)

    def items_get():
        return plugin.psItemsGet(
            args.service,
            args.node,
            20,
            dbus.Array([], signature="s"),
            "",
            "{}",
            args.profile,
            timeout=TIMEOUT,
        )

    query = json.dumps(
        {
            "fts": args.fts,
            "profiles": [args.profile],
            "services": [args.service],
            "nodes": [args.node],
            "limit": 20,
        }
    )

    def cache_search():
        return plugin.psCacheSearch(query, timeout=TIMEOUT)

    # Warm-up (and a check that the calls answer what they should).
    got = json.loads(items_get())
    count = len(got.get("items", []))
    if count != 20:
        sys.exit(f"psItemsGet returned {count} items, expected 20: prepare the node first")
    found = json.loads(cache_search())
    if not found:
        sys.exit(f"psCacheSearch found nothing for {args.fts!r}: is the node cached?")
    for _ in range(5):
        items_get()
        cache_search()

    items_ms, _ = timed(items_get, args.iterations)
    search_ms, last = timed(cache_search, args.iterations)
    report = {
        "backend": args.label,
        "iterations": args.iterations,
        "psItemsGet_20": {
            "p50_ms": round(statistics.median(items_ms), 3),
            "p90_ms": round(percentile(items_ms, 90), 3),
        },
        "psCacheSearch": {
            "results": len(json.loads(last)),
            "p50_ms": round(statistics.median(search_ms), 3),
            "p90_ms": round(percentile(search_ms, 90), 3),
        },
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
