#!/usr/bin/python3
"""A small HTTP service for the spec tests of cross-service addresses.

usage: fetch_server.py PORT NAME [UPSTREAM]

GET / answers "NAME:PORT". GET /fetch fetches UPSTREAM/ (a URL or a
HOST:PORT, from the third argument or $UPSTREAM_ADDR) and answers
"NAME fetched BODY", or 502 with the error.
"""
import http.server
import os
import sys
import urllib.request

PORT, NAME = int(sys.argv[1]), sys.argv[2]
UPSTREAM = sys.argv[3] if len(sys.argv) > 3 else os.environ.get("UPSTREAM_ADDR", "")


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, status, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/":
            self.answer(200, f"{NAME}:{PORT}")
            return
        if self.path != "/fetch":
            self.answer(404, "not found")
            return
        url = UPSTREAM if UPSTREAM.startswith("http://") else "http://" + UPSTREAM
        try:
            with urllib.request.urlopen(url + "/", timeout=5) as r:
                self.answer(200, f"{NAME} fetched {r.read().decode()}")
        except Exception as e:  # the scenario shows what went wrong
            self.answer(502, f"{NAME} could not fetch {url!r}: {e}")

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
