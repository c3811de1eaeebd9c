// Serving a ControlPlane: loads the gRPC module (only now), prepares the
// socket's private directory, starts the server, restricts the socket and
// removes it again at the end. Shared by `fault exec` and `fault run`.
//
//   absl::StatusOr<std::unique_ptr<ControlListener>> l =
//       ControlListener::Start(endpoint, token, &plane);
//   ... (*l)->endpoint().Text() is what FAULT_CONTROL holds ...
//   (*l)->Stop();
//
// Thread-compatible.
#ifndef FAULT_SUPERVISOR_CONTROL_CONTROL_LISTENER_H_
#define FAULT_SUPERVISOR_CONTROL_CONTROL_LISTENER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "supervisor/control/control_address.h"
#include "supervisor/grpc/control_api.h"

namespace fault::control {

class ControlListener {
 public:
  // Errors say what failed (the module, the directory, the address); the
  // caller prefixes its flag.
  static absl::StatusOr<std::unique_ptr<ControlListener>> Start(
      ControlEndpoint endpoint, const std::string& token,
      grpc_module::ControlHost* host);
  ~ControlListener() { Stop(); }

  // With the socket's path or the bound port filled in.
  const ControlEndpoint& endpoint() const { return endpoint_; }

  // Ends open calls and streams (after a grace period), closes the
  // listener and removes the socket. Idempotent.
  void Stop();

  // How long open calls and event streams get at Stop().
  static constexpr int kGraceMs = 1000;

 private:
  ControlListener() = default;
  ControlEndpoint endpoint_;
  std::unique_ptr<grpc_module::ControlServer> server_;
  bool stopped_ = false;
};

}  // namespace fault::control

#endif  // FAULT_SUPERVISOR_CONTROL_CONTROL_LISTENER_H_
