"""What the integration tests share: where `fault` and the test programs are,
and running `fault exec` with a timeout.

ctest sets FAULT_BIN and FAULT_TARGETS_DIR; run by hand, the default build
tree is used.
"""

import http.server
import json
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
FAULT = os.environ.get("FAULT_BIN", os.path.join(HERE, "../../build/default/bin/fault"))
TARGETS = os.environ.get("FAULT_TARGETS_DIR", os.path.dirname(FAULT))
PY = "/usr/bin/python3"


def target(name):
    """A static test program the build makes (tests/targets/seccomp)."""
    path = os.path.join(TARGETS, "seccomp_" + name)
    if not os.path.exists(path):
        raise AssertionError("%s is not built (the test build makes it)" % path)
    return path


def fault_exec(args, timeout=60):
    return subprocess.run([FAULT, "exec", *args], capture_output=True, text=True,
                          timeout=timeout)


def read_events(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with a short fixed body and logs nothing."""

    BODY = b"hello from the test server\n"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.BODY)))
        self.end_headers()
        self.wfile.write(self.BODY)

    def log_message(self, *args):
        pass
