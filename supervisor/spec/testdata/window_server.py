#!/usr/bin/python3
"""An HTTP service that reads its configuration file when it starts and on
every GET /config, for the spec tests of fault windows.

usage: window_server.py PORT CONFIG

At start it writes CONFIG ("mode=test") when it is missing, then reads it
back: a read that fails ends it with exit status 1 and the line
"cannot read window.conf: <strerror>" before it listens, so a read fault
in force from its start keeps it from ever being ready.

GET /config   200 with the file's contents, or 500 "ERR <strerror>"
GET /ping     200 "pong" (touches no file)
"""
import http.server
import os
import sys

PORT, CONFIG = int(sys.argv[1]), sys.argv[2]


def read_config():
    with open(CONFIG) as f:
        return f.read()


if not os.path.exists(CONFIG):
    with open(CONFIG, "w") as f:
        f.write("mode=test\n")
try:
    read_config()
except OSError as e:
    print("cannot read %s: %s" % (os.path.basename(CONFIG), e.strerror), flush=True)
    sys.exit(1)


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, status, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/ping":
            self.answer(200, "pong")
        elif self.path == "/config":
            try:
                self.answer(200, read_config())
            except OSError as e:
                self.answer(500, "ERR " + (e.strerror or str(e)))
        else:
            self.answer(404, "not found")

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
