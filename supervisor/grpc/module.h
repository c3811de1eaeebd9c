// The boundary between the `fault` binary and its gRPC module.
//
// gRPC costs a process about 8 ms of start-up when linked as shared
// libraries and about 0.9 ms when linked statically, and `fault exec` starts
// around every test binary. So `fault` does not link it: the control plane
// (`--control`, `fault ctl`) and the plugin client (`fault run
// --grpc-plugin`) live in fault-grpc.so, which `fault` loads with dlopen only
// when a run asks for one of them (supervisor/grpc/loader.h).
//
// Rules for what crosses this boundary:
// - The module links gRPC and protobuf as Debian's shared libraries; `fault`
//   links protobuf and abseil statically. Each has its own copy, so no
//   protobuf message, abseil type or fault library object crosses: messages
//   cross serialized (std::string), everything else as plain types,
//   std::string, std::vector and abstract classes with virtual functions
//   (both sides use the same compiler and libstdc++ ABI).
// - No exception crosses; errors are returned.
// - The module never links a fault library that links protobuf or abseil
//   (fault_proto, fault_policy, ...): two copies of a generated file in one
//   process abort at start. It compiles its own copies of the .proto files.
#ifndef FAULT_SUPERVISOR_GRPC_MODULE_H_
#define FAULT_SUPERVISOR_GRPC_MODULE_H_

#include <cstdint>

namespace fault::grpc_module {

// Bumped whenever Module or anything it points to changes layout or meaning;
// `fault` refuses a module built for another version.
inline constexpr uint32_t kAbiVersion = 3;

struct ControlApi;  // the control plane (supervisor/grpc/control_api.h)
struct PluginApi;   // the plugin client (supervisor/grpc/plugin_api.h)

struct Module {
  uint32_t abi_version;  // kAbiVersion of the module's build
  const char* grpc_version;
  const ControlApi* control;  // null: this build has no control plane
  const PluginApi* plugins;   // null: this build has no plugin client
};

// The module's one exported symbol.
using EntryPoint = const Module* (*)();
inline constexpr const char kEntryPointName[] = "fault_grpc_module_v1";

}  // namespace fault::grpc_module

#endif  // FAULT_SUPERVISOR_GRPC_MODULE_H_
