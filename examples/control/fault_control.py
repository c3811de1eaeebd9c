"""A small Python client for the control plane of `fault exec --control`
(docs/control.md), with Debian's python3-grpcio and python3-protobuf.

    import fault_control
    c = fault_control.connect()            # FAULT_CONTROL, FAULT_CONTROL_TOKEN_FILE
    c.put("slow:\\n  latency: 100ms\\n")    # in effect when it returns
    ...
    c.delete("slow")
    for batch in c.events(follow=True):     # WatchEventsResponse messages
        ...

The message and stub modules are generated from proto/fault/v1/*.proto with
protoc and grpc_python_plugin (packages protobuf-compiler and
protobuf-compiler-grpc) the first time, into a cache directory
($XDG_CACHE_HOME/fault/python or ~/.cache/fault/python); set FAULT_PROTO_DIR
when the proto files are not two directories above this file.
"""

import hashlib
import importlib
import os
import subprocess
import sys

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.environ.get("FAULT_PROTO_DIR", os.path.join(HERE, "..", "..", "proto"))
PROTOS = ["fault/v1/policy.proto", "fault/v1/control.proto"]


def _stubs():
    """(control_pb2, control_pb2_grpc, policy_pb2), generated when missing or
    out of date (keyed by the proto files' contents)."""
    digest = hashlib.sha256()
    for p in PROTOS:
        with open(os.path.join(PROTO_DIR, p), "rb") as f:
            digest.update(f.read())
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    out = os.path.join(cache, "fault", "python", digest.hexdigest()[:16])
    if not os.path.exists(os.path.join(out, "fault", "v1", "control_pb2_grpc.py")):
        os.makedirs(out, exist_ok=True)
        subprocess.run(["protoc", "-I", PROTO_DIR, "--python_out", out, "--grpc_python_out", out,
                        "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin", *PROTOS],
                       check=True)
    if out not in sys.path:
        sys.path.insert(0, out)
    return (importlib.import_module("fault.v1.control_pb2"),
            importlib.import_module("fault.v1.control_pb2_grpc"),
            importlib.import_module("fault.v1.policy_pb2"))


control_pb2, control_pb2_grpc, policy_pb2 = _stubs()


def grpc_target(address):
    """gRPC's form of a FAULT_CONTROL value (unix:PATH or tcp:HOST:PORT)."""
    if address.startswith("unix:"):
        return address
    if address.startswith("tcp:"):
        return address[len("tcp:"):]
    raise ValueError("%s: expected unix:PATH or tcp:HOST:PORT" % address)


class Control:
    """The Control service with the token attached to every call."""

    def __init__(self, address, token=None, timeout=10.0):
        self.channel = grpc.insecure_channel(grpc_target(address))
        self.stub = control_pb2_grpc.ControlStub(self.channel)
        self.metadata = [("authorization", "Bearer " + token)] if token else []
        self.timeout = timeout

    def _call(self, method, request, timeout=None):
        return getattr(self.stub, method)(request, metadata=self.metadata,
                                          timeout=timeout or self.timeout)

    def status(self):
        return self._call("Status", control_pb2.StatusRequest())

    def policies(self):
        return list(self._call("ListPolicies", control_pb2.ListPoliciesRequest()).policies)

    def put(self, text, filename="control"):
        """Adds or replaces the policies of a policy file's text (YAML or
        JSON); returns the ChangeResponse once they are in effect. Raises
        grpc.RpcError (INVALID_ARGUMENT naming file:line:column and field)."""
        return self._call("PutPolicies", control_pb2.PutPoliciesRequest(text=text,
                                                                        filename=filename))

    def put_policies(self, *policies):
        """The same with policy_pb2.Policy messages."""
        return self._call("PutPolicies", control_pb2.PutPoliciesRequest(
            policies=policy_pb2.PolicySet(policies=list(policies))))

    def delete(self, name):
        return self._call("DeletePolicy", control_pb2.DeletePolicyRequest(name=name))

    def clear(self):
        return self._call("Clear", control_pb2.ClearRequest())

    def counters(self):
        return list(self._call("GetCounters", control_pb2.GetCountersRequest()).counters)

    def wait_generation(self, generation, timeout_s=10.0):
        return self._call("WaitGeneration", control_pb2.WaitGenerationRequest(
            generation=generation, timeout_ns=int(timeout_s * 1e9)), timeout=timeout_s + 1)

    def events(self, policies=(), effects=(), after_sequence=None):
        """WatchEventsResponse messages until the run ends (or the caller
        stops iterating)."""
        request = control_pb2.WatchEventsRequest(policies=list(policies), effects=list(effects))
        if after_sequence is not None:
            request.after_sequence = after_sequence
        return self.stub.WatchEvents(request, metadata=self.metadata)

    def close(self):
        self.channel.close()


def connect(address=None, token_file=None, timeout=10.0):
    """A client for `address`, else $FAULT_CONTROL, with the token of
    `token_file`, else of $FAULT_CONTROL_TOKEN_FILE when set."""
    address = address or os.environ.get("FAULT_CONTROL")
    if not address:
        raise RuntimeError("no control plane: run under fault exec --control, or give the address")
    token_file = token_file or os.environ.get("FAULT_CONTROL_TOKEN_FILE")
    token = None
    if token_file:
        with open(token_file) as f:
            token = f.read().strip()
    return Control(address, token, timeout)
