#!/usr/bin/python3
"""A fault plugin (proto/plugin/plugin.proto, the Rust fault's PluginService)
that answers 503 Service Unavailable, without the upstream, to every HTTP
request whose path matches a regular expression; other requests go on
unchanged.

    ./block_path.py --port 50051 --pattern '^/api/'
    fault run --grpc-plugin http://127.0.0.1:50051 --upstream '*'
    curl -x http://127.0.0.1:3180 http://example.com/api/x   # 503

Needs python3-grpcio and python3-protobuf, and protoc with
grpc_python_plugin to generate the stubs (plugin_stubs.py).
"""

import argparse
import concurrent.futures
import re
import signal
import sys
import threading

import grpc

import plugin_stubs

pb, pb_grpc = plugin_stubs.load()


class BlockPath(pb_grpc.PluginServiceServicer):
    def __init__(self, pattern, body):
        self.pattern = re.compile(pattern)
        self.body = body.encode()

    def HealthCheck(self, request, context):
        return pb.HealthCheckResponse(healthy=True, message="ok")

    def GetPluginInfo(self, request, context):
        return pb.GetPluginInfoResponse(name="block-path", version="1.0",
                                        side=pb.GetPluginInfoResponse.SERVER)

    def GetPluginCapabilities(self, request, context):
        return pb.GetPluginCapabilitiesResponse(can_handle_http_forward=True,
                                                can_handle_tunnel=False)

    def ProcessHttpRequest(self, request, context):
        if self.pattern.search(request.request.path):
            return pb.ProcessHttpRequestResponse(
                action=pb.ProcessHttpRequestResponse.ABORT,
                abort_response=pb.HttpResponse(
                    status_code=503,
                    headers=[pb.HttpHeader(name="Content-Type", value="text/plain"),
                             pb.HttpHeader(name="Retry-After", value="1")],
                    body=self.body))
        return pb.ProcessHttpRequestResponse(action=pb.ProcessHttpRequestResponse.CONTINUE)

    def ProcessHttpResponse(self, request, context):
        return pb.ProcessHttpResponseResponse(action=pb.ProcessHttpResponseResponse.CONTINUE)

    def ProcessTunnelData(self, request, context):
        return pb.ProcessTunnelDataResponse(pass_through=pb.PassThrough())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=50051)
    ap.add_argument("--pattern", required=True, help="a Python regular expression")
    ap.add_argument("--body", default="blocked by the block-path plugin\n")
    args = ap.parse_args()
    try:
        pattern = re.compile(args.pattern)
    except re.error as e:
        sys.exit("--pattern %r: %s" % (args.pattern, e))
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=8))
    pb_grpc.add_PluginServiceServicer_to_server(BlockPath(pattern.pattern, args.body), server)
    if server.add_insecure_port("%s:%d" % (args.host, args.port)) == 0:
        sys.exit("cannot listen on %s:%d" % (args.host, args.port))
    server.start()
    print("block-path plugin on %s:%d, 503 for %s" % (args.host, args.port, args.pattern),
          flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    server.stop(0.5).wait()


if __name__ == "__main__":
    main()
