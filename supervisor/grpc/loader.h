// Finds and loads fault-grpc.so (see module.h for why it is separate).
//
//   absl::StatusOr<const grpc_module::Module*> m = grpc_module::Load();
//   if (!m.ok()) { ...print m.status().message()...; }
//   (*m)->control->...
//
// Search order: $FAULT_GRPC_MODULE when set (and only it), else
// ../lib/fault-grpc.so next to the running binary (the build tree and
// `make install` layouts), then /usr/local/lib/fault and /usr/lib/fault.
// The module stays loaded for the life of the process. Thread-safe.
#ifndef FAULT_SUPERVISOR_GRPC_LOADER_H_
#define FAULT_SUPERVISOR_GRPC_LOADER_H_

#include <string>

#include "absl/status/statusor.h"
#include "supervisor/grpc/module.h"

namespace fault::grpc_module {

// The file Load() would open; "" when none exists.
std::string FindModule();

// Loads the module once; later calls return the same result. The error
// names the file (or the places searched) and why it could not be used.
absl::StatusOr<const Module*> Load();

}  // namespace fault::grpc_module

#endif  // FAULT_SUPERVISOR_GRPC_LOADER_H_
