"""What the integration tests share: where `fault` and the test programs are,
and running `fault exec` with a timeout.

ctest sets FAULT_BIN and FAULT_TARGETS_DIR; run by hand, the default build
tree is used.
"""

import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time

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


def need(program):
    """The path of an installed program (also in /usr/sbin and /sbin)."""
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if path is None:
        raise AssertionError("%s is not installed (tools/install-deps installs it)" % program)
    return path


def clean_env(extra=None):
    """This environment without proxy settings (curl would follow them, or
    bypass -x for NO_PROXY hosts) and without FAULT_* variables (fault run
    reads them); then `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FAULT_")
           and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update(extra or {})
    return env


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


class TcpServer:
    """A TCP server on 127.0.0.1 in this process, a thread per connection;
    subclasses answer a connection in _serve(c). It stops by itself after
    `lifetime` seconds at the latest."""

    def __init__(self, lifetime=170):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.lifetime = lifetime
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _serve(self, c):
        raise NotImplementedError

    def _run(self):
        deadline = time.monotonic() + self.lifetime
        while not self.stop and time.monotonic() < deadline:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


class EchoServer(TcpServer):
    """Echoes every connection's bytes back until the peer closes."""

    def _serve(self, c):
        c.settimeout(10)
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                c.sendall(data)
        except OSError:
            pass
        finally:
            c.close()
