#include "supervisor/control/control_listener.h"

#include <sys/stat.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "supervisor/grpc/loader.h"
#include "supervisor/grpc/module.h"

namespace fault::control {

absl::StatusOr<std::unique_ptr<ControlListener>> ControlListener::Start(
    ControlEndpoint endpoint, const std::string& token,
    grpc_module::ControlHost* host) {
  absl::StatusOr<const grpc_module::Module*> module = grpc_module::Load();
  if (!module.ok()) return module.status();
  if ((*module)->control == nullptr) {
    return absl::FailedPreconditionError(
        "this build's gRPC module has no control plane");
  }
  std::unique_ptr<ControlListener> l(new ControlListener());
  l->endpoint_ = std::move(endpoint);
  if (absl::Status s = PrepareUnixSocket(&l->endpoint_); !s.ok()) {
    l->stopped_ = true;  // nothing of ours to remove
    return s;
  }
  grpc_module::ControlServerOptions options;
  options.address = l->endpoint_.GrpcAddress();
  options.token = token;
  std::string error;
  // The socket is made mode 0600 as gRPC binds it (the directory is
  // private already; this keeps the socket's own mode right from the
  // start, not only after the chmod below). Nothing else of fault creates
  // files meanwhile.
  const mode_t old_mask = umask(0177);
  l->server_ = (*module)->control->start_server(options, host, &error);
  umask(old_mask);
  if (l->server_ == nullptr) return absl::UnavailableError(error);
  if (l->endpoint_.tcp && l->endpoint_.port == 0)
    l->endpoint_.port = l->server_->port();
  if (absl::Status s = RestrictSocket(l->endpoint_); !s.ok()) return s;
  return l;
}

void ControlListener::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (server_ != nullptr) server_->Shutdown(kGraceMs);
  server_.reset();
  RemoveUnixSocket(endpoint_);
}

}  // namespace fault::control
