"""`fault run --grpc-plugin` (docs/plugins.md) end to end: plugins written
with Debian's python3-grpcio against proto/plugin/plugin.proto (stubs
generated at test time), run in this process or as the example program,
with curl, sockets and redis through the proxy. Observed from outside:
status codes, bodies, what the upstream received, measured times, exit
statuses, the summary and the events file.

Every server listens on loopback only; every wait is bounded.
"""

import concurrent.futures
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import grpc

from fault_testlib import PY, EchoServer, TcpServer, clean_env, need, read_events
from proxy_test import ProxyTestCase, curl, free_port, wait_for_port

SOURCE = os.environ.get("FAULT_SOURCE_DIR",
                        os.path.normpath(os.path.join(os.path.dirname(__file__), "../..")))
EXAMPLES = os.path.join(SOURCE, "examples/plugins/python")
sys.path.insert(0, EXAMPLES)
os.environ.setdefault("FAULT_PLUGIN_PROTO", os.path.join(SOURCE, "proto/plugin/plugin.proto"))
import plugin_stubs  # noqa: E402

pb, pb_grpc = plugin_stubs.load()

CONTINUE = pb.ProcessHttpRequestResponse.CONTINUE
ABORT = pb.ProcessHttpRequestResponse.ABORT


class Plugin(pb_grpc.PluginServiceServicer):
    """A plugin in this process; tests override the hooks they need. Every
    call is counted by method name."""

    name = "test-plugin"
    http = True
    tunnel = False
    side = pb.GetPluginInfoResponse.SERVER

    def __init__(self):
        self.lock = threading.Lock()
        self.calls = {}
        self.chunks = []

    def count(self, method):
        with self.lock:
            self.calls[method] = self.calls.get(method, 0) + 1

    def HealthCheck(self, request, context):
        self.count("HealthCheck")
        return pb.HealthCheckResponse(healthy=True)

    def GetPluginInfo(self, request, context):
        self.count("GetPluginInfo")
        return pb.GetPluginInfoResponse(name=self.name, version="0.1", side=self.side)

    def GetPluginCapabilities(self, request, context):
        self.count("GetPluginCapabilities")
        return pb.GetPluginCapabilitiesResponse(can_handle_http_forward=self.http,
                                                can_handle_tunnel=self.tunnel)

    def ProcessHttpRequest(self, request, context):
        self.count("ProcessHttpRequest")
        return pb.ProcessHttpRequestResponse(action=CONTINUE)

    def ProcessHttpResponse(self, request, context):
        self.count("ProcessHttpResponse")
        return pb.ProcessHttpResponseResponse(action=CONTINUE)

    def ProcessTunnelData(self, request, context):
        self.count("ProcessTunnelData")
        with self.lock:
            self.chunks.append((request.side, request.direction, request.chunk))
        return pb.ProcessTunnelDataResponse(pass_through=pb.PassThrough(chunk=request.chunk))


class PluginServer:
    """A gRPC server for `servicer` on a loopback port (a free one, or
    `port`)."""

    def __init__(self, servicer, port=None):
        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=16))
        pb_grpc.add_PluginServiceServicer_to_server(servicer, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:%d" % (port or 0))
        if self.port == 0:
            raise AssertionError("the test plugin cannot listen on port %s" % port)
        self.server.start()
        self.address = "http://127.0.0.1:%d" % self.port

    def close(self):
        self.server.stop(0).wait(5)


class UpstreamHttp(TcpServer):
    """An HTTP/1.1 server that records each request it receives (head and
    body) and answers 200 with a fixed body."""

    BODY = b"from the upstream\n"

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        super().__init__()

    def _serve(self, c):
        c.settimeout(10)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = c.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(buf) < length:
                    data = c.recv(65536)
                    if not data:
                        return
                    buf += data
                body, buf = buf[:length], buf[length:]
                with self.lock:
                    self.requests.append((head.decode("latin-1"), body))
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Upstream: yes\r\n"
                          b"Content-Length: %d\r\n\r\n%s"
                          % (len(self.BODY), b"" if head.startswith(b"HEAD ") else self.BODY))
        except OSError:
            pass
        finally:
            c.close()

    def count(self):
        with self.lock:
            return len(self.requests)


class PluginTestCase(ProxyTestCase):
    # The default call deadline (1 s) is for users; a Python plugin on a CI
    # machine busy with builds can take longer than that to answer, and a
    # test that is not about deadlines must not fail open because of it.
    CALL_TIMEOUT = ["--plugin-timeout", "10s"]

    def with_timeout(self, args):
        return args if "--plugin-timeout" in args else [*args, *self.CALL_TIMEOUT]

    def proxy(self, args, **kw):
        return super().proxy(self.with_timeout(args), **kw)

    def mapping(self, args, upstream_port, **kw):
        return super().mapping(self.with_timeout(args), upstream_port, **kw)

    def plugin(self, servicer, port=None):
        s = PluginServer(servicer, port)
        self._closers.append(s.close)
        return s

    def upstream(self):
        u = UpstreamHttp()
        self._closers.append(u.close)
        return u

    def events_path(self):
        f = tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False)
        f.close()
        self._closers.append(lambda: os.unlink(f.name))
        return f.name


# ------------------------------------------------------------------- HTTP ---

class PluginHttpTest(PluginTestCase):
    def test_abort_on_request_answers_without_the_upstream(self):
        class Abort(Plugin):
            def ProcessHttpRequest(self, request, context):
                self.count("ProcessHttpRequest")
                if request.request.path.startswith("/blocked"):
                    return pb.ProcessHttpRequestResponse(
                        action=ABORT,
                        abort_response=pb.HttpResponse(
                            status_code=451,
                            headers=[pb.HttpHeader(name="X-Plugin", value="abort")],
                            body=b"not for you\n"))
                return pb.ProcessHttpRequestResponse(action=CONTINUE)

        servicer = Abort()
        plug = self.plugin(servicer)
        up = self.upstream()
        events = self.events_path()
        p, proxy = self.proxy(["--grpc-plugin", plug.address, "--upstream", "*",
                               "--events", events])
        url = "http://127.0.0.1:%d" % up.port
        rc, status, body, _ = curl(url + "/blocked?x=1", proxy=proxy,
                                   extra=("-D", "/dev/stderr"))
        self.assertEqual((rc, status, body), (0, 451, b"not for you\n"))
        self.assertEqual(up.count(), 0, "the upstream saw the aborted request")
        rc, status, body, _ = curl(url + "/open", proxy=proxy)
        self.assertEqual((rc, status, body), (0, 200, UpstreamHttp.BODY))
        self.assertEqual(up.count(), 1)
        self.assertEqual(servicer.calls.get("ProcessHttpRequest"), 2)
        # Only the request that went upstream has a response to process.
        self.assertEqual(servicer.calls.get("ProcessHttpResponse"), 1)
        rc, out, err = p.stop()
        self.assertEqual(rc, 0, err)
        self.assertRegex(err, r"plugin test-plugin 0\.1 \(%s\): enabled; .*ProcessHttpRequest 2 "
                         r"\(p50 " % plug.address)
        aborts = [e for e in read_events(events) if e.get("outcome") == "abort"]
        self.assertEqual(len(aborts), 1, read_events(events))
        self.assertEqual((aborts[0]["plugin"], aborts[0]["rpc"], aborts[0]["detail"]),
                         ("test-plugin", "ProcessHttpRequest", "status 451"))

    def test_request_changes_reach_the_upstream(self):
        class Rewrite(Plugin):
            def ProcessHttpRequest(self, request, context):
                r = request.request
                headers = list(r.headers) + [pb.HttpHeader(name="X-Added", value="by-plugin")]
                return pb.ProcessHttpRequestResponse(
                    action=CONTINUE,
                    modified_request=pb.HttpRequest(method="POST", path="/rewritten?q=1",
                                                    headers=headers, body=b"new body"))

        plug = self.plugin(Rewrite())
        up = self.upstream()
        p, proxy = self.proxy(["--grpc-plugin", plug.address, "--upstream", "*"])
        rc, status, body, _ = curl("http://127.0.0.1:%d/original" % up.port, proxy=proxy)
        self.assertEqual((rc, status), (0, 200))
        self.assertEqual(up.count(), 1)
        head, sent = up.requests[0]
        self.assertTrue(head.startswith("POST /rewritten?q=1 HTTP/1.1\r\n"), head)
        self.assertIn("\r\nX-Added: by-plugin", head)
        self.assertIn("\r\nHost: 127.0.0.1:%d" % up.port, head)
        self.assertEqual(sent, b"new body")

    def test_chunked_body_arrives_whole_and_decoded(self):
        class Record(Plugin):
            def ProcessHttpRequest(self, request, context):
                self.body = request.request.body
                return pb.ProcessHttpRequestResponse(action=CONTINUE)

        servicer = Record()
        plug = self.plugin(servicer)
        up = self.upstream()
        p, proxy = self.proxy(["--grpc-plugin", plug.address, "--upstream", "*"])
        data = os.urandom(2 << 20)
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
            # curl sends a chunked 2 MiB body with Expect: 100-continue and
            # waits up to 1 s for the 100: the proxy answers it at once.
            rc, status, body, secs = curl(
                "http://127.0.0.1:%d/upload" % up.port, proxy=proxy,
                extra=("--data-binary", "@" + f.name, "-H", "Transfer-Encoding: chunked",
                       "-H", "Expect: 100-continue"))
        self.assertEqual((rc, status), (0, 200))
        self.assertEqual(servicer.body, data)
        head, sent = up.requests[0]
        self.assertIn("\r\nContent-Length: %d" % len(data), head)
        self.assertNotIn("chunked", head.lower())
        self.assertEqual(sent, data)
        self.assertLess(secs, 0.9)

    def test_header_bytes_that_are_not_utf8_reach_the_plugin_lossily(self):
        class Record(Plugin):
            def ProcessHttpRequest(self, request, context):
                self.headers = {h.name: h.value for h in request.request.headers}
                return pb.ProcessHttpRequestResponse(action=CONTINUE)

        servicer = Record()
        plug = self.plugin(servicer)
        up = self.upstream()
        p, proxy = self.proxy(["--grpc-plugin", plug.address, "--upstream", "*"])
        with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
            s.sendall(b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\nX-Raw: caf\xe9\r\n"
                      b"Connection: close\r\n\r\n" % up.port)
            got = b""
            while True:
                data = s.recv(65536)
                if not data:
                    break
                got += data
        self.assertTrue(got.startswith(b"HTTP/1.1 200"), got)
        self.assertEqual(servicer.headers.get("X-Raw"), "caf\ufffd")

    def test_response_rewrite_changes_status_headers_and_body(self):
        class Teapot(Plugin):
            def ProcessHttpResponse(self, request, context):
                self.count("ProcessHttpResponse")
                r = request.response
                assert r.status_code == 200 and r.body == UpstreamHttp.BODY, r
                headers = [h for h in r.headers if h.name.lower() != "x-upstream"]
                headers.append(pb.HttpHeader(name="X-Seen", value=str(r.status_code)))
                return pb.ProcessHttpResponseResponse(
                    action=pb.ProcessHttpResponseResponse.CONTINUE,
                    modified_response=pb.HttpResponse(status_code=418, headers=headers,
                                                      body=b"short and stout\n"))

        plug = self.plugin(Teapot())
        up = self.upstream()
        p, proxy = self.proxy(["--grpc-plugin", plug.address, "--upstream", "*"])
        with tempfile.NamedTemporaryFile() as h:
            rc, status, body, _ = curl("http://127.0.0.1:%d/" % up.port, proxy=proxy,
                                       extra=("-D", h.name))
            with open(h.name) as f:
                headers = f.read()
        self.assertEqual((rc, status, body), (0, 418, b"short and stout\n"))
        self.assertIn("X-Seen: 200", headers)
        self.assertNotIn("X-Upstream", headers)
        self.assertEqual(up.count(), 1)

    def test_head_response_keeps_its_length_and_the_connection(self):
        servicer = Plugin()
        plug = self.plugin(servicer)
        up = self.upstream()
        p, proxy = self.proxy(["--grpc-plugin", plug.address, "--upstream", "*"])
        conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
        try:
            conn.request("HEAD", "http://127.0.0.1:%d/h" % up.port)
            r = conn.getresponse()
            self.assertEqual((r.status, r.getheader("Content-Length"), r.read()),
                             (200, str(len(UpstreamHttp.BODY)), b""))
            conn.request("GET", "http://127.0.0.1:%d/g" % up.port)
            r = conn.getresponse()
            self.assertEqual((r.status, r.read()), (200, UpstreamHttp.BODY))
        finally:
            conn.close()
        self.assertEqual(servicer.calls.get("ProcessHttpResponse"), 2)

    def test_pipelined_requests_are_answered_in_order(self):
        class Slow(Plugin):
            def ProcessHttpRequest(self, request, context):
                self.count("ProcessHttpRequest")
                return pb.ProcessHttpRequestResponse(action=CONTINUE)

            def ProcessHttpResponse(self, request, context):
                self.count("ProcessHttpResponse")
                time.sleep(0.1)  # the next request's call runs meanwhile
                return pb.ProcessHttpResponseResponse(
                    action=pb.ProcessHttpResponseResponse.CONTINUE,
                    modified_response=pb.HttpResponse(status_code=200,
                                                      body=b"seen " + request.response.body))

        servicer = Slow()
        plug = self.plugin(servicer)
        up = self.upstream()
        p, proxy = self.proxy(["--grpc-plugin", plug.address, "--upstream", "*"])
        reqs = b"".join(b"GET http://127.0.0.1:%d/%d HTTP/1.1\r\nHost: x\r\n%s\r\n"
                        % (up.port, i, b"Connection: close\r\n" if i == 2 else b"")
                        for i in range(3))
        with socket.create_connection(("127.0.0.1", p.port), timeout=10) as s:
            s.sendall(reqs)
            got = b""
            while True:
                data = s.recv(65536)
                if not data:
                    break
                got += data
        want = b"seen " + UpstreamHttp.BODY
        self.assertEqual(got.count(b"HTTP/1.1 200 OK"), 3, got)
        self.assertEqual(got.count(want), 3, got)
        self.assertEqual([h.split(" ")[1] for h, _ in up.requests], ["/0", "/1", "/2"])
        self.assertEqual(servicer.calls.get("ProcessHttpResponse"), 3)

    def test_abort_on_response_replaces_it(self):
        class AbortResponse(Plugin):
            def ProcessHttpResponse(self, request, context):
                return pb.ProcessHttpResponseResponse(
                    action=pb.ProcessHttpResponseResponse.ABORT,
                    abort_response=pb.HttpResponse(status_code=503, body=b"aborted\n"))

        plug = self.plugin(AbortResponse())
        up = self.upstream()
        p, proxy = self.proxy(["--grpc-plugin", plug.address, "--upstream", "*"])
        # Twice on one connection: keep-alive goes on after the replaced answer.
        conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
        try:
            for path in ("/a", "/b"):
                conn.request("GET", "http://127.0.0.1:%d%s" % (up.port, path))
                r = conn.getresponse()
                self.assertEqual((r.status, r.read()), (503, b"aborted\n"))
                self.assertFalse(r.will_close)
        finally:
            conn.close()
        self.assertEqual(up.count(), 2)

    def test_response_too_large_for_plugins_is_502(self):
        servicer = Plugin()
        plug = self.plugin(servicer)

        class Big(TcpServer):
            def _serve(self, c):
                try:
                    c.recv(65536)
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (80 << 20))
                    chunk = b"x" * (1 << 20)
                    for _ in range(80):
                        c.sendall(chunk)
                except OSError:
                    pass
                finally:
                    c.close()

        big = Big()
        self._closers.append(big.close)
        p, proxy = self.proxy(["--grpc-plugin", plug.address, "--upstream", "*"])
        rc, status, body, _ = curl("http://127.0.0.1:%d/" % big.port, proxy=proxy)
        self.assertEqual((rc, status), (0, 502))
        self.assertIn(b"up to 64 MiB", body)
        self.assertNotIn("ProcessHttpResponse", servicer.calls)

    def test_requests_outside_upstream_list_pass_untouched(self):
        servicer = Plugin()
        plug = self.plugin(servicer)
        up = self.upstream()
        p, proxy = self.proxy(["--grpc-plugin", plug.address, "--upstream", "example.com"])
        rc, status, body, _ = curl("http://127.0.0.1:%d/" % up.port, proxy=proxy)
        self.assertEqual((rc, status, body), (0, 200, UpstreamHttp.BODY))
        self.assertNotIn("ProcessHttpRequest", servicer.calls)

    def test_example_block_path_plugin(self):
        port = free_port()
        proc = subprocess.Popen([PY, os.path.join(EXAMPLES, "block_path.py"), "--port",
                                 str(port), "--pattern", r"^/admin(/|$)"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=clean_env({"FAULT_PLUGIN_PROTO": os.environ[
                                    "FAULT_PLUGIN_PROTO"]}))

        def stop():
            proc.terminate()
            proc.communicate(timeout=10)
        self._closers.append(stop)
        self.assertTrue(wait_for_port("127.0.0.1", port, 20, proc), "block_path.py did not start")
        up = self.upstream()
        p, proxy = self.proxy(["-g", "127.0.0.1:%d" % port, "--upstream",
                               "127.0.0.1:%d" % up.port])
        base = "http://127.0.0.1:%d" % up.port
        rc, status, body, _ = curl(base + "/admin/users", proxy=proxy)
        self.assertEqual((rc, status, body), (0, 503, b"blocked by the block-path plugin\n"))
        rc, status, body, _ = curl(base + "/administrator", proxy=proxy)
        self.assertEqual((rc, status, body), (0, 200, UpstreamHttp.BODY))
        self.assertEqual(up.count(), 1)


# ---------------------------------------------------------------- tunnels ---

class PluginTunnelTest(PluginTestCase):
    def exchange(self, port, data, timeout=5):
        """Sends `data` on a new connection, half-closes, returns
        (everything read back, seconds)."""
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        return got, time.monotonic() - t0

    def test_replace_in_both_directions(self):
        class Swap(Plugin):
            http = False
            tunnel = True

            def ProcessTunnelData(self, request, context):
                super().ProcessTunnelData(request, context)
                return pb.ProcessTunnelDataResponse(
                    replace=pb.Replace(modified_chunk=request.chunk.replace(b"ping", b"PING")
                                       .replace(b"echo", b"ECHO")))

        servicer = Swap()
        plug = self.plugin(servicer)
        echo = EchoServer()
        self._closers.append(echo.close)
        events = self.events_path()
        p, port = self.mapping(["--grpc-plugin", plug.address, "--events", events, "--tail"],
                               echo.port)
        got, _ = self.exchange(port, b"ping echo")
        # Up: ping -> PING, echo -> ECHO; back down the same rewrite finds nothing.
        self.assertEqual(got, b"PING ECHO")
        sides = {(s, d) for s, d, _ in servicer.chunks}
        self.assertEqual(sides, {(1, 1), (1, 0)}, servicer.chunks)  # server egress, ingress
        rc, out, err = p.stop()
        self.assertEqual(rc, 0, err)
        replaced = [e for e in read_events(events) if e.get("outcome") == "replace"]
        self.assertEqual(len(replaced), 2, read_events(events))
        self.assertEqual({e["rpc"] for e in replaced}, {"ProcessTunnelData"})
        # One connection: the same id on both chunks.
        self.assertEqual(len({e["connection"] for e in replaced}), 1)
        self.assertRegex(replaced[0]["connection"], r"^fault-\d+-\d+-\d+$")
        # --tail prints them too.
        self.assertEqual(out.count('"outcome":"replace"'), 2, out)

    def test_buffer_holds_a_chunk_for_its_time(self):
        class Hold(Plugin):
            http = False
            tunnel = True

            def ProcessTunnelData(self, request, context):
                if request.direction == pb.ProcessTunnelDataRequest.INGRESS:
                    return pb.ProcessTunnelDataResponse(
                        buffer=pb.Buffer(estimated_time_to_release_ms=400))
                return pb.ProcessTunnelDataResponse(pass_through=pb.PassThrough())

        plug = self.plugin(Hold())
        echo = EchoServer()
        self._closers.append(echo.close)
        p, port = self.mapping(["--grpc-plugin", plug.address], echo.port)
        got, secs = self.exchange(port, b"hello")
        self.assertEqual(got, b"hello")
        self.assertGreaterEqual(secs, 0.4)
        self.assertLess(secs, 0.4 + 1.0)

    def test_close_ends_the_connection(self):
        class Close(Plugin):
            http = False
            tunnel = True

            def ProcessTunnelData(self, request, context):
                return pb.ProcessTunnelDataResponse(close=pb.Close(reason="enough"))

        plug = self.plugin(Close())
        echo = EchoServer()
        self._closers.append(echo.close)
        p, port = self.mapping(["--grpc-plugin", plug.address], echo.port)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"hello")
            t0 = time.monotonic()
            self.assertEqual(s.recv(100), b"")  # FIN, nothing echoed
            self.assertLess(time.monotonic() - t0, 3)

    def test_connect_tunnel_through_the_forward_proxy(self):
        class Upper(Plugin):
            http = False
            tunnel = True
            side = pb.GetPluginInfoResponse.CLIENT

            def ProcessTunnelData(self, request, context):
                super().ProcessTunnelData(request, context)
                return pb.ProcessTunnelDataResponse(
                    replace=pb.Replace(modified_chunk=request.chunk.upper()))

        servicer = Upper()
        plug = self.plugin(servicer)
        echo = EchoServer()
        self._closers.append(echo.close)
        p, proxy = self.proxy(["--grpc-plugin", plug.address, "--upstream", "*"])
        with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
            s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n" % echo.port)
            head = b""
            while b"\r\n\r\n" not in head:
                data = s.recv(1)
                self.assertTrue(data, head)
                head += data
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
            s.sendall(b"abc")
            got = b""
            deadline = time.monotonic() + 5
            while len(got) < 3 and time.monotonic() < deadline:
                got += s.recv(100)
        self.assertEqual(got, b"ABC")
        # A client-side plugin: the client's bytes come in (ingress), the
        # echo goes out to the client (egress).
        self.assertEqual({(s, d) for s, d, _ in servicer.chunks}, {(0, 0), (0, 1)})


class RedisPluginTest(PluginTestCase):
    """The C++ example plugin (examples/plugins/cpp) rewrites a Redis reply."""

    def test_cpp_example_rewrites_a_redis_reply(self):
        plugin_bin = os.environ.get("FAULT_REDIS_PLUGIN_BIN")
        if not plugin_bin or not os.path.exists(plugin_bin):
            self.fail("FAULT_REDIS_PLUGIN_BIN is not set to the built example plugin")
        from proxy_test import Redis
        redis = Redis()
        self._closers.append(redis.close)
        port = free_port()
        proc = subprocess.Popen([plugin_bin, "127.0.0.1:%d" % port], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)

        def stop():
            proc.terminate()
            proc.communicate(timeout=10)
        self._closers.append(stop)
        self.assertTrue(wait_for_port("127.0.0.1", port, 10, proc), "the plugin did not start")
        p, mport = self.mapping(["--grpc-plugin", "127.0.0.1:%d" % port], redis.port)
        cli = need("redis-cli")
        r = subprocess.run([cli, "-p", str(mport), "SET", "greeting", "hello"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.stdout.strip(), "OK", r.stderr)
        r = subprocess.run([cli, "-p", str(mport), "GET", "greeting"], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(r.stdout.strip(), "HELLO", r.stderr)
        # Straight to redis: the value itself is unchanged.
        r = subprocess.run([cli, "-p", str(redis.port), "GET", "greeting"], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(r.stdout.strip(), "hello")


# --------------------------------------------------------------- failures ---

class Hang(Plugin):
    """ProcessHttpRequest hangs (a bounded sleep) for paths under /hang."""

    def ProcessHttpRequest(self, request, context):
        self.count("ProcessHttpRequest")
        if request.request.path.startswith("/hang"):
            time.sleep(3)
        return pb.ProcessHttpRequestResponse(action=CONTINUE)


class PluginFailureTest(PluginTestCase):
    def test_hanging_plugin_fails_open_after_its_deadline(self):
        plug = self.plugin(Hang())
        up = self.upstream()
        p, proxy = self.proxy(["--grpc-plugin", plug.address, "--upstream", "*",
                               "--plugin-timeout", "200ms"])
        rc, status, body, secs = curl("http://127.0.0.1:%d/hang" % up.port, proxy=proxy)
        self.assertEqual((rc, status, body), (0, 200, UpstreamHttp.BODY))
        self.assertGreaterEqual(secs, 0.2)
        self.assertLess(secs, 1.5)
        self.assertEqual(up.count(), 1)
        rc, out, err = p.stop()
        self.assertRegex(err, r"ProcessHttpRequest 1 .*; 1 failure \(1 past the deadline\)")
        self.assertIn("1 failed calls passed on unchanged, 0 requests or connections refused "
                      "(--plugin-failure open)", err)

    def test_hanging_plugin_fails_closed_after_its_deadline(self):
        plug = self.plugin(Hang())
        up = self.upstream()
        p, proxy = self.proxy(["--grpc-plugin", plug.address, "--upstream", "*",
                               "--plugin-timeout", "200ms", "--plugin-failure", "closed"])
        rc, status, body, secs = curl("http://127.0.0.1:%d/hang" % up.port, proxy=proxy)
        self.assertEqual((rc, status), (0, 502))
        self.assertIn(b"DEADLINE_EXCEEDED", body)
        self.assertIn(b"--plugin-failure closed", body)
        self.assertLess(secs, 1.5)
        self.assertEqual(up.count(), 0)
        rc, out, err = p.stop()
        self.assertIn("0 failed calls passed on unchanged, 1 requests or connections refused "
                      "(--plugin-failure closed)", err)

    def test_plugin_down_fails_closed(self):
        up = self.upstream()
        port = free_port()
        p, proxy = self.proxy(["--grpc-plugin", "127.0.0.1:%d" % port, "--upstream", "*",
                               "--plugin-failure", "closed"])
        rc, status, body, _ = curl("http://127.0.0.1:%d/" % up.port, proxy=proxy)
        self.assertEqual((rc, status), (0, 502))
        self.assertIn(b"127.0.0.1:%d: disabled (--plugin-failure closed)" % port, body)
        self.assertEqual(up.count(), 0)

    def test_failing_closed_tunnel_is_reset(self):
        class Broken(Plugin):
            http = False
            tunnel = True

            def ProcessTunnelData(self, request, context):
                context.abort(grpc.StatusCode.INTERNAL, "broken on purpose")

        plug = self.plugin(Broken())
        echo = EchoServer()
        self._closers.append(echo.close)
        p, port = self.mapping(["--grpc-plugin", plug.address, "--plugin-failure", "closed"],
                               echo.port)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"hello")
            with self.assertRaises(ConnectionResetError):
                s.recv(100)
        p2, port2 = self.mapping(["--grpc-plugin", plug.address], echo.port)
        with socket.create_connection(("127.0.0.1", port2), timeout=5) as s:
            s.sendall(b"hello")
            self.assertEqual(s.recv(100), b"hello")  # fail open: unchanged

    def test_slow_plugin_does_not_stall_other_connections(self):
        class Slow(Plugin):
            def ProcessHttpRequest(self, request, context):
                if request.request.path.startswith("/slow"):
                    time.sleep(1.5)
                return pb.ProcessHttpRequestResponse(action=CONTINUE)

        plug = self.plugin(Slow())
        up = self.upstream()
        # One event loop: every connection shares the thread the slow call
        # must not block.
        p, proxy = self.proxy(["--grpc-plugin", plug.address, "--upstream", "*",
                               "--plugin-timeout", "5s", "--event-loops", "1"])
        slow = {}

        def slow_request():
            slow["r"] = curl("http://127.0.0.1:%d/slow" % up.port, proxy=proxy)

        t = threading.Thread(target=slow_request)
        t.start()
        time.sleep(0.3)  # the slow call is under way
        fast = [curl("http://127.0.0.1:%d/fast%d" % (up.port, i), proxy=proxy)
                for i in range(3)]
        t.join(10)
        for rc, status, body, secs in fast:
            self.assertEqual((rc, status), (0, 200))
            self.assertLess(secs, 0.6)
        rc, status, body, secs = slow["r"]
        self.assertEqual((rc, status), (0, 200))
        self.assertGreaterEqual(secs, 1.5)


class PluginLifecycleTest(PluginTestCase):
    def test_plugin_down_at_start_is_used_once_it_comes_up(self):
        class Tag(Plugin):
            def ProcessHttpResponse(self, request, context):
                return pb.ProcessHttpResponseResponse(
                    action=pb.ProcessHttpResponseResponse.CONTINUE,
                    modified_response=pb.HttpResponse(status_code=299, body=b"tagged\n"))

        port = free_port()
        up = self.upstream()
        events = self.events_path()
        p, proxy = self.proxy(["--grpc-plugin", "127.0.0.1:%d" % port, "--upstream", "*",
                               "--plugin-health-interval", "200ms", "--events", events],
                              no_ui=False)
        url = "http://127.0.0.1:%d/" % up.port
        rc, status, body, _ = curl(url, proxy=proxy)
        self.assertEqual((rc, status, body), (0, 200, UpstreamHttp.BODY))  # down: fail open
        self.plugin(Tag(), port=port)
        deadline = time.monotonic() + 10
        status = None
        while time.monotonic() < deadline:
            rc, status, body, _ = curl(url, proxy=proxy)
            if status == 299:
                break
            time.sleep(0.1)
        self.assertEqual((status, body), (299, b"tagged\n"))
        rc, out, err = p.stop()
        self.assertIn("fault run: plugin 127.0.0.1:%d is not answering (GetPluginInfo: "
                      "UNAVAILABLE" % port, out)
        self.assertRegex(err, r"plugin test-plugin 0\.1 \(127\.0\.0\.1:%d\): enabled;" % port)
        outcomes = [e["outcome"] for e in read_events(events) if e["layer"] == "plugin"]
        self.assertEqual(outcomes[:2], ["disabled", "enabled"], outcomes)

    def test_plugin_that_goes_down_is_disabled(self):
        servicer = Plugin()
        port = free_port()
        first = PluginServer(servicer, port)
        up = self.upstream()
        events = self.events_path()
        p, proxy = self.proxy(["--grpc-plugin", "127.0.0.1:%d" % port, "--upstream", "*",
                               "--plugin-health-interval", "200ms", "--events", events])
        rc, status, _, _ = curl("http://127.0.0.1:%d/" % up.port, proxy=proxy)
        self.assertEqual(status, 200)
        first.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.2)
            with open(events) as f:
                if '"outcome":"disabled"' in f.read():
                    break
        rc, status, body, _ = curl("http://127.0.0.1:%d/" % up.port, proxy=proxy)
        self.assertEqual((status, body), (200, UpstreamHttp.BODY))
        rc, out, err = p.stop()
        self.assertRegex(err, r"plugin test-plugin 0\.1 \(127\.0\.0\.1:%d\): disabled;.*"
                         r"disabled 1x" % port)


class PluginInputTest(unittest.TestCase):
    def run_fault(self, args, env=None):
        from proxy_test import fault_run_once
        return fault_run_once(args, env=env)

    def test_bad_addresses_are_usage_errors(self):
        for value, why in [("https://127.0.0.1:1", "https:// is not supported"),
                           ("127.0.0.1", "has no port"),
                           ("ftp://h:1", "has the scheme ftp://"),
                           ("h:0", "not a number from 1 to 65535"),
                           ("http://h:1/x", "has a path"),
                           ("h:1,,h:2", "has an empty item")]:
            r = self.run_fault(["--grpc-plugin", value, "--duration", "1"])
            self.assertEqual(r.returncode, 2, (value, r.stderr))
            self.assertIn("--grpc-plugin: ", r.stderr)
            self.assertIn(why, r.stderr)
        r = self.run_fault(["--duration", "1"], env={"FAULT_GRPC_PLUGINS": "a:1,b"})
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn('FAULT_GRPC_PLUGINS=a:1,b: "b" has no port', r.stderr)

    def test_bad_plugin_flags_are_usage_errors(self):
        for args, text in [(["--plugin-failure", "maybe"], '"maybe" is not open or closed'),
                           (["--plugin-timeout", "0s"], "is not above 0"),
                           (["--plugin-timeout", "soon"], "--plugin-timeout")]:
            r = self.run_fault(["-g", "127.0.0.1:1", *args, "--duration", "1"])
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(text, r.stderr)
        r = self.run_fault(["--plugin-timeout", "1s", "--duration", "1"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--plugin-timeout: has no effect without --grpc-plugin", r.stderr)


if __name__ == "__main__":
    unittest.main()
