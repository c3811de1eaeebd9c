// redis_upper: a fault plugin (the PluginService of proto/plugin/plugin.proto)
// for TCP mappings to Redis. Every reply Redis sends has its bulk strings in
// upper case: `GET greeting` answers HELLO where Redis holds "hello". What
// the client sends goes on unchanged.
//
//   redis_upper_plugin 127.0.0.1:50052
//   fault run --disable-http-proxy --proxy 6380=127.0.0.1:6379
//             --grpc-plugin http://127.0.0.1:50052
//   redis-cli -p 6380 GET greeting
//
// A synchronous gRPC server: fault calls a plugin without blocking its own
// loop, so a plugin may take a thread per call.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>

#include "plugin.grpc.pb.h"
#include "resp.h"

namespace {

class RedisUpper final : public plugin::PluginService::Service {
  grpc::Status HealthCheck(grpc::ServerContext*, const plugin::HealthCheckRequest*,
                           plugin::HealthCheckResponse* out) override {
    out->set_healthy(true);
    return grpc::Status::OK;
  }

  grpc::Status GetPluginInfo(grpc::ServerContext*, const plugin::GetPluginInfoRequest*,
                             plugin::GetPluginInfoResponse* out) override {
    out->set_name("redis-upper");
    out->set_version("1.0");
    // The server side: what the proxy reads from Redis is ingress.
    out->set_side(plugin::GetPluginInfoResponse::SERVER);
    out->set_direction(plugin::GetPluginInfoResponse::INGRESS);
    return grpc::Status::OK;
  }

  grpc::Status GetPluginCapabilities(grpc::ServerContext*,
                                     const plugin::GetPluginCapabilitiesRequest*,
                                     plugin::GetPluginCapabilitiesResponse* out) override {
    out->set_can_handle_http_forward(false);
    out->set_can_handle_tunnel(true);
    return grpc::Status::OK;
  }

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

  grpc::Status ProcessTunnelData(grpc::ServerContext*, const plugin::ProcessTunnelDataRequest* in,
                                 plugin::ProcessTunnelDataResponse* out) override {
    if (in->side() != plugin::ProcessTunnelDataRequest::SERVER ||
        in->direction() != plugin::ProcessTunnelDataRequest::INGRESS) {
      out->mutable_pass_through();  // no chunk: as it was
      return grpc::Status::OK;
    }
    std::string upper;
    if (!redis_upper::UpperBulkStrings(in->chunk(), &upper)) {
      out->mutable_pass_through();
      return grpc::Status::OK;
    }
    out->mutable_replace()->set_modified_chunk(std::move(upper));
    return grpc::Status::OK;
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
    return 2;
  }
  // SIGTERM and SIGINT end it: blocked before gRPC starts its threads, and
  // waited for on this one.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  RedisUpper service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(argv[1], grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "redis_upper: cannot listen on %s\n", argv[1]);
    return 1;
  }
  std::fprintf(stderr, "redis_upper: listening on %s\n", argv[1]);
  int sig = 0;
  sigwait(&set, &sig);
  server->Shutdown();
  return 0;
}
