// pass_plugin: the smallest complete fault plugin (proto/plugin/plugin.proto).
// It takes HTTP requests and responses and tunnel data, and passes all of it
// on unchanged: a template for new plugins, and what tools/bench/plugins.py
// measures fault's own cost per plugin call with.
//
//   pass_plugin 127.0.0.1:50053
//   fault run --grpc-plugin http://127.0.0.1:50053 --upstream '*'
//
// `pass_plugin --ping HOST:PORT N` is a client instead: N ProcessHttpRequest
// calls to a plugin, one at a time, with gRPC's blocking API and then its
// asynchronous API on a completion queue (what fault uses); it prints the
// median round trip of each, the floor under what a plugin call can cost
// fault.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

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

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

int Ping(const char* target, int n) {
  auto stub = plugin::PluginService::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  using Clock = std::chrono::steady_clock;
  std::vector<double> blocking, queued;
  for (int i = 0; i < n + 100; ++i) {  // the first 100 warm up
    grpc::ClientContext ctx;
    plugin::ProcessHttpRequestRequest req;
    plugin::ProcessHttpRequestResponse res;
    const Clock::time_point t0 = Clock::now();
    grpc::Status s = stub->ProcessHttpRequest(&ctx, req, &res);
    if (!s.ok()) {
      std::fprintf(stderr, "pass_plugin --ping: %s\n", s.error_message().c_str());
      return 1;
    }
    if (i >= 100)
      blocking.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  grpc::CompletionQueue cq;
  for (int i = 0; i < n; ++i) {
    grpc::ClientContext ctx;
    plugin::ProcessHttpRequestRequest req;
    plugin::ProcessHttpRequestResponse res;
    grpc::Status status;
    const Clock::time_point t0 = Clock::now();
    auto reader = stub->PrepareAsyncProcessHttpRequest(&ctx, req, &cq);
    reader->StartCall();
    reader->Finish(&res, &status, &res);
    void* tag = nullptr;
    bool ok = false;
    if (!cq.Next(&tag, &ok) || tag != &res) return 1;
    queued.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
  std::printf("blocking p50 %.0f us, completion queue p50 %.0f us\n", Median(blocking),
              Median(queued));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--ping") return Ping(argv[2], std::atoi(argv[3]));
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s HOST:PORT | --ping HOST:PORT N\n", argv[0]);
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
