#!/usr/bin/python3
"""An HTTP service that needs its upstream when it starts (depends_on tests).

usage: dep_server.py PORT NAME [UPSTREAM_ADDR] [LISTEN_AFTER_SECONDS]

When it starts, it fetches http://UPSTREAM_ADDR/ once; if that fails it
prints why and exits with status 1 (as a service that cannot start without
its database would). Then it waits LISTEN_AFTER_SECONDS and listens.
GET / answers JSON: its name, when it started and began listening (Unix
seconds), and the upstream's answer.
"""
import http.server
import json
import sys
import time
import urllib.request

PORT, NAME = int(sys.argv[1]), sys.argv[2]
UPSTREAM = sys.argv[3] if len(sys.argv) > 3 else ""
LISTEN_AFTER = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
STARTED = time.time()

upstream = None
if UPSTREAM:
    try:
        with urllib.request.urlopen("http://" + UPSTREAM + "/", timeout=2) as r:
            upstream = json.loads(r.read())
    except Exception as e:
        print(f"{NAME}: cannot reach {UPSTREAM} when starting: {e}", flush=True)
        sys.exit(1)

time.sleep(LISTEN_AFTER)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"name": NAME, "started": STARTED, "listening": LISTENING,
                           "upstream": upstream}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
LISTENING = time.time()
server.serve_forever()
