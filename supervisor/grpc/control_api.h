// The control plane's side of the module boundary (module.h has the rules).
//
// The module does transport and authentication only. Every call of the
// fault.v1.Control service (proto/fault/v1/control.proto) is handed to a
// ControlHost that `fault` implements (supervisor/control/), as the
// serialized request; the host answers with the serialized response or an
// error. For `fault ctl` the module also offers a client that sends
// serialized requests to a server and returns serialized responses.
//
//   // server, in `fault exec`:
//   std::string error;
//   std::unique_ptr<ControlServer> server =
//       module->control->start_server({.address = "unix:/run/x/control.sock"},
//       &host, &error);
//   ...
//   server->Shutdown();
//
//   // client, in `fault ctl`:
//   std::unique_ptr<ControlClient> client = module->control->connect({...},
//   &error); CallResult r = client->Call("Status", request.SerializeAsString(),
//   5000);
#ifndef FAULT_SUPERVISOR_GRPC_CONTROL_API_H_
#define FAULT_SUPERVISOR_GRPC_CONTROL_API_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace fault::grpc_module {

// The outcome of one call. `code` is a canonical status code (0 OK, 3
// INVALID_ARGUMENT, 5 NOT_FOUND, ...: absl and gRPC use the same numbers);
// `response` is the serialized response message when code is 0.
struct CallResult {
  int code = 0;
  std::string message;
  std::string response;
};

// Events for one WatchEvents stream, implemented by the host.
class EventSubscription {
 public:
  virtual ~EventSubscription() = default;
  // Waits up to `timeout_ms` for something to send and fills `*message`
  // with a serialized fault.v1.WatchEventsResponse (events, new drop
  // counts). Returns false once the run has ended and everything was
  // delivered; true with an empty `*message` when there was nothing new.
  virtual bool Next(std::string* message, int timeout_ms) = 0;
};

// Implemented by `fault`. Called from the module's threads, concurrently.
class ControlHost {
 public:
  virtual ~ControlHost() = default;
  // One unary call: `method` is the RPC's name ("Status", "PutPolicies",
  // ...), `request` its serialized request. May block (a change waits until
  // it is published).
  virtual CallResult Call(const std::string& method,
                          const std::string& request) = 0;
  // A WatchEvents stream; null with *error (an INVALID_ARGUMENT message)
  // for a bad request.
  virtual std::unique_ptr<EventSubscription> Watch(const std::string& request,
                                                   std::string* error) = 0;
};

struct ControlServerOptions {
  // gRPC's URI form: "unix:/abs/path" or "HOST:PORT" (port 0: any).
  std::string address;
  // Non-empty: every call must carry "authorization: Bearer <token>".
  std::string token;
};

class ControlServer {
 public:
  virtual ~ControlServer() = default;
  // The port bound for a TCP address (0 for a Unix socket).
  virtual int port() const = 0;
  // Ends open streams and calls (waiting at most `grace_ms`), then stops.
  virtual void Shutdown(int grace_ms) = 0;
};

struct ControlClientOptions {
  // gRPC's URI form, as ControlServerOptions::address.
  std::string address;
  std::string token;  // sent as "authorization: Bearer <token>" when set
};

class ControlClient {
 public:
  virtual ~ControlClient() = default;
  // A unary call by RPC name, with a deadline. Transport errors come back
  // as UNAVAILABLE/DEADLINE_EXCEEDED with gRPC's message.
  virtual CallResult Call(const std::string& method, const std::string& request,
                          int timeout_ms) = 0;
  // WatchEvents: calls `on_message` with each serialized response until the
  // stream ends, `on_message` returns false, or an error (returned).
  virtual CallResult Watch(
      const std::string& request,
      const std::function<bool(const std::string&)>& on_message) = 0;
};

struct ControlApi {
  // Starts serving fault.v1.Control on options.address; null with *error
  // when it cannot (the address is taken, malformed, ...). `host` must
  // outlive the server.
  std::unique_ptr<ControlServer> (*start_server)(
      const ControlServerOptions& options, ControlHost* host,
      std::string* error);
  // A client; connects lazily (errors come from the calls).
  std::unique_ptr<ControlClient> (*connect)(
      const ControlClientOptions& options);
};

}  // namespace fault::grpc_module

#endif  // FAULT_SUPERVISOR_GRPC_CONTROL_API_H_
