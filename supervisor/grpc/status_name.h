// The name gRPC gives a status code (grpc::StatusCode as an int), for
// messages; the number itself for a code gRPC does not define. Header-only
// and free of gRPC's headers, so that fault-grpc.so and the libraries users
// link (fault_testing) can both use it.
#ifndef FAULT_SUPERVISOR_GRPC_STATUS_NAME_H_
#define FAULT_SUPERVISOR_GRPC_STATUS_NAME_H_

#include <string>

namespace fault::grpc_status {

inline std::string StatusCodeName(int code) {
  static constexpr const char* kNames[] = {
      "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
      "UNAUTHENTICATED"};
  return code >= 0 && code < static_cast<int>(sizeof(kNames) / sizeof(kNames[0]))
             ? kNames[code]
             : std::to_string(code);
}

}  // namespace fault::grpc_status

#endif  // FAULT_SUPERVISOR_GRPC_STATUS_NAME_H_
