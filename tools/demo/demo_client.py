#!/usr/bin/python3
"""The demo's client: N requests to the demo server, each on a new
connection, and one line of timings.

  demo_client.py PORT [--requests N] [--host 127.0.0.1]

Prints e.g. "20 requests in 0.031 s: median 1.4 ms, p90 2.0 ms, max 2.6 ms,
0 failed". Exit status 1 if any request failed.
"""
import argparse
import http.client
import sys
import time


def main():
    parser = argparse.ArgumentParser(description="fault demo HTTP client")
    parser.add_argument("port", type=int)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    times, failed = [], 0
    start = time.monotonic()
    for i in range(args.requests):
        t0 = time.monotonic()
        try:
            conn = http.client.HTTPConnection(args.host, args.port, timeout=10)
            conn.request("GET", "/item/%d" % i)
            response = conn.getresponse()
            response.read()
            conn.close()
            if response.status != 200:
                failed += 1
        except OSError as e:
            failed += 1
            print("request %d: %s" % (i, e), file=sys.stderr)
        times.append(time.monotonic() - t0)
    total = time.monotonic() - start
    times.sort()
    ms = lambda s: "%.1f ms" % (s * 1000)
    print("%d requests in %.3f s: median %s, p90 %s, max %s, %d failed" % (
        args.requests, total, ms(times[len(times) // 2]),
        ms(times[min(len(times) - 1, int(len(times) * 0.9))]), ms(times[-1]), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
