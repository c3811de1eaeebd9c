// pass_plugin: the smallest complete fault plugin (proto/plugin/plugin.proto).
// It takes HTTP requests and responses and tunnel data, and passes all of it
// on unchanged: a template for new plugins, and what tools/bench/plugins.py
// measures fault's own cost per plugin call with.
//
//   pass_plugin 127.0.0.1:50053
//   fault run --grpc-plugin http://127.0.0.1:50053 --upstream '*'
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <cstdio>
#include <memory>

#include "plugin.grpc.pb.h"

namespace {

class Pass final : public plugin::PluginService::Service {
  grpc::Status HealthCheck(grpc::ServerContext*, const plugin::HealthCheckRequest*,
                           plugin::HealthCheckResponse* out) override {
    out->set_healthy(true);
    return grpc::Status::OK;
  }

  grpc::Status GetPluginInfo(grpc::ServerContext*, const plugin::GetPluginInfoRequest*,
                             plugin::GetPluginInfoResponse* out) override {
    out->set_name("pass");
    out->set_version("1.0");
    out->set_side(plugin::GetPluginInfoResponse::SERVER);
    out->set_direction(plugin::GetPluginInfoResponse::BOTH);
    return grpc::Status::OK;
  }

  grpc::Status GetPluginCapabilities(grpc::ServerContext*,
                                     const plugin::GetPluginCapabilitiesRequest*,
                                     plugin::GetPluginCapabilitiesResponse* out) override {
    out->set_can_handle_http_forward(true);
    out->set_can_handle_tunnel(true);
    return grpc::Status::OK;
  }

  // CONTINUE without modified_request: the request goes on as it was.
  grpc::Status ProcessHttpRequest(grpc::ServerContext*, const plugin::ProcessHttpRequestRequest*,
                                  plugin::ProcessHttpRequestResponse* out) override {
    out->set_action(plugin::ProcessHttpRequestResponse::CONTINUE);
    return grpc::Status::OK;
  }

  grpc::Status ProcessHttpResponse(grpc::ServerContext*,
                                   const plugin::ProcessHttpResponseRequest*,
                                   plugin::ProcessHttpResponseResponse* out) override {
    out->set_action(plugin::ProcessHttpResponseResponse::CONTINUE);
    return grpc::Status::OK;
  }

  // pass_through without a chunk: the chunk goes on as it was.
  grpc::Status ProcessTunnelData(grpc::ServerContext*, const plugin::ProcessTunnelDataRequest*,
                                 plugin::ProcessTunnelDataResponse* out) override {
    out->mutable_pass_through();
    return grpc::Status::OK;
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  Pass service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(argv[1], grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "pass_plugin: cannot listen on %s\n", argv[1]);
    return 1;
  }
  int sig = 0;
  sigwait(&set, &sig);
  server->Shutdown();
  return 0;
}
