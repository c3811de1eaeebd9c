"""The Python modules of proto/plugin/plugin.proto (plugin_pb2 and
plugin_pb2_grpc), generated on first use into a private directory with
protoc and grpc_python_plugin (Debian: protobuf-compiler,
protobuf-compiler-grpc), so that nothing generated is kept in the
repository.

    plugin_pb2, plugin_pb2_grpc = plugin_stubs.load()

The .proto is looked for at $FAULT_PLUGIN_PROTO, then in this checkout
(../../../proto/plugin/plugin.proto from here).
"""

import atexit
import importlib
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def proto_path():
    env = os.environ.get("FAULT_PLUGIN_PROTO")
    if env:
        return env
    return os.path.normpath(os.path.join(HERE, "../../../proto/plugin/plugin.proto"))


def load():
    """Generates (once per process) and imports the stubs."""
    if "plugin_pb2_grpc" in sys.modules:
        return sys.modules["plugin_pb2"], sys.modules["plugin_pb2_grpc"]
    proto = proto_path()
    if not os.path.exists(proto):
        raise SystemExit("plugin.proto not found at %s (set FAULT_PLUGIN_PROTO)" % proto)
    protoc = shutil.which("protoc")
    grpc_plugin = shutil.which("grpc_python_plugin")
    if protoc is None or grpc_plugin is None:
        raise SystemExit("generating the plugin stubs needs protoc and grpc_python_plugin "
                         "(apt-get install protobuf-compiler protobuf-compiler-grpc)")
    out = tempfile.mkdtemp(prefix="fault-plugin-stubs-")
    atexit.register(shutil.rmtree, out, True)
    subprocess.run([protoc, "-I", os.path.dirname(proto), "--python_out=" + out,
                    "--grpc_python_out=" + out,
                    "--plugin=protoc-gen-grpc_python=" + grpc_plugin, proto],
                   check=True)
    sys.path.insert(0, out)
    return importlib.import_module("plugin_pb2"), importlib.import_module("plugin_pb2_grpc")
