// fault-grpc.so's entry point: what the module offers, by ABI version.
#include <grpcpp/grpcpp.h>

#include <string>

#include "supervisor/grpc/control_api.h"
#include "supervisor/grpc/module.h"
#include "supervisor/grpc/plugin_api.h"

namespace fault::grpc_module {

const ControlApi& TheControlApi();  // control_server.cc
extern const PluginApi kPluginApi;  // plugin_client.cc

namespace {

const Module& TheModule() {
  static const std::string version = grpc::Version();
  static const Module module = {
      kAbiVersion,
      version.c_str(),
      &TheControlApi(),
      &kPluginApi,
  };
  return module;
}

}  // namespace
}  // namespace fault::grpc_module

extern "C" __attribute__((visibility("default"))) const fault::grpc_module::Module*
fault_grpc_module_v1() {
  return &fault::grpc_module::TheModule();
}
