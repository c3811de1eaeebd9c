#!/usr/bin/python3
"""An HTTP service for the spec tests of expectations and http.patch.

usage: echo_server.py PORT DIR

Any method on any path answers 200 with the JSON {"method", "path", "body"}
of the request, but:
  /status/N    answers status N (with the same JSON)
  POST /write  writes the body to DIR/data and fsyncs it: 201, or 500 with
               the error
"""
import http.server
import json
import os
import sys

PORT, DIR = int(sys.argv[1]), sys.argv[2]


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode() if n else ""
        request = {"method": self.command, "path": self.path, "body": body}
        if self.path.startswith("/status/"):
            self.answer(int(self.path[len("/status/"):]), request)
        elif self.command == "POST" and self.path == "/write":
            try:
                with open(os.path.join(DIR, "data"), "w") as f:
                    f.write(body)
                    f.flush()
                    os.fsync(f.fileno())
                self.answer(201, request)
            except OSError as e:
                self.answer(500, {"error": e.strerror or str(e)})
        else:
            self.answer(200, request)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
