// fault.v1.Control over gRPC, inside fault-grpc.so: the server hands each
// call to the host (control_api.h) and checks the token; the client sends
// serialized requests for `fault ctl`. No policy logic lives here.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "fault/v1/control.grpc.pb.h"
#include "supervisor/grpc/control_api.h"

namespace fault::grpc_module {
namespace {

namespace pb = ::fault::v1;

constexpr char kAuthorization[] = "authorization";
constexpr char kBearer[] = "Bearer ";

// Compares without returning early, so that the time taken does not tell
// how much of a guessed token was right.
bool SameToken(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

class ControlService final : public pb::Control::Service {
 public:
  ControlService(ControlHost* host, std::string token)
      : host_(host), token_(std::move(token)) {}

  grpc::Status Status(grpc::ServerContext* c, const pb::StatusRequest* q,
                      pb::StatusResponse* r) override {
    return Forward(c, "Status", *q, r);
  }
  grpc::Status ListPolicies(grpc::ServerContext* c,
                            const pb::ListPoliciesRequest* q,
                            pb::ListPoliciesResponse* r) override {
    return Forward(c, "ListPolicies", *q, r);
  }
  grpc::Status GetPolicy(grpc::ServerContext* c, const pb::GetPolicyRequest* q,
                         pb::PolicyInfo* r) override {
    return Forward(c, "GetPolicy", *q, r);
  }
  grpc::Status PutPolicies(grpc::ServerContext* c,
                           const pb::PutPoliciesRequest* q,
                           pb::ChangeResponse* r) override {
    return Forward(c, "PutPolicies", *q, r);
  }
  grpc::Status DeletePolicy(grpc::ServerContext* c,
                            const pb::DeletePolicyRequest* q,
                            pb::ChangeResponse* r) override {
    return Forward(c, "DeletePolicy", *q, r);
  }
  grpc::Status Clear(grpc::ServerContext* c, const pb::ClearRequest* q,
                     pb::ChangeResponse* r) override {
    return Forward(c, "Clear", *q, r);
  }
  grpc::Status GetCounters(grpc::ServerContext* c,
                           const pb::GetCountersRequest* q,
                           pb::GetCountersResponse* r) override {
    return Forward(c, "GetCounters", *q, r);
  }
  grpc::Status WaitGeneration(grpc::ServerContext* c,
                              const pb::WaitGenerationRequest* q,
                              pb::WaitGenerationResponse* r) override {
    return Forward(c, "WaitGeneration", *q, r);
  }

  grpc::Status WatchEvents(
      grpc::ServerContext* c, const pb::WatchEventsRequest* q,
      grpc::ServerWriter<pb::WatchEventsResponse>* writer) override {
    if (grpc::Status s = Authorize(c); !s.ok()) return s;
    std::string error;
    std::unique_ptr<EventSubscription> sub =
        host_->Watch(q->SerializeAsString(), &error);
    if (sub == nullptr)
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, error);
    std::string bytes;
    pb::WatchEventsResponse message;
    while (!c->IsCancelled()) {
      bytes.clear();
      if (!sub->Next(&bytes, 100)) return grpc::Status::OK;  // the run ended
      if (bytes.empty()) continue;
      if (!message.ParseFromString(bytes)) {
        return grpc::Status(grpc::StatusCode::INTERNAL,
                            "malformed event batch from fault");
      }
      if (!writer->Write(message))
        return grpc::Status::OK;  // the client went away
    }
    return grpc::Status::OK;
  }

 private:
  grpc::Status Authorize(grpc::ServerContext* c) const {
    if (token_.empty()) return grpc::Status::OK;
    const auto& md = c->client_metadata();
    auto it = md.find(kAuthorization);
    if (it == md.end()) {
      return grpc::Status(
          grpc::StatusCode::UNAUTHENTICATED,
          "this control plane needs a token: send the metadata "
          "\"authorization: Bearer TOKEN\" (fault ctl --token-file FILE)");
    }
    std::string value(it->second.data(), it->second.size());
    const std::string prefix = kBearer;
    if (value.compare(0, prefix.size(), prefix) != 0 ||
        !SameToken(value.substr(prefix.size()), token_)) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "wrong token");
    }
    return grpc::Status::OK;
  }

  template <typename Request, typename Response>
  grpc::Status Forward(grpc::ServerContext* c, const char* method,
                       const Request& request, Response* response) {
    if (grpc::Status s = Authorize(c); !s.ok()) return s;
    CallResult r = host_->Call(method, request.SerializeAsString());
    if (r.code != 0)
      return grpc::Status(static_cast<grpc::StatusCode>(r.code), r.message);
    if (!response->ParseFromString(r.response)) {
      return grpc::Status(grpc::StatusCode::INTERNAL,
                          "malformed response from fault");
    }
    return grpc::Status::OK;
  }

  ControlHost* host_;
  const std::string token_;
};

class Server final : public ControlServer {
 public:
  Server(std::unique_ptr<ControlService> service,
         std::unique_ptr<grpc::Server> server, int port)
      : service_(std::move(service)), server_(std::move(server)), port_(port) {}
  ~Server() override { Shutdown(0); }

  int port() const override { return port_; }
  void Shutdown(int grace_ms) override {
    if (server_ == nullptr) return;
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(grace_ms));
    server_->Wait();
    server_.reset();
  }

 private:
  std::unique_ptr<ControlService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_;
};

std::unique_ptr<ControlServer> StartServer(const ControlServerOptions& options,
                                           ControlHost* host,
                                           std::string* error) {
  auto service = std::make_unique<ControlService>(host, options.token);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.address, grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(service.get());
  // Batches of events are small, but a PolicySet may be large.
  builder.SetMaxReceiveMessageSize(4 << 20);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    *error =
        "cannot listen on " + options.address +
        " (the address is in use, malformed, or its directory is not writable)";
    return nullptr;
  }
  return std::make_unique<Server>(std::move(service), std::move(server), port);
}

// ---- the client ----

class Client final : public ControlClient {
 public:
  explicit Client(const ControlClientOptions& options)
      : token_(options.token),
        stub_(pb::Control::NewStub(grpc::CreateChannel(
            options.address, grpc::InsecureChannelCredentials()))) {
    Add("Status", &pb::Control::Stub::Status);
    Add("ListPolicies", &pb::Control::Stub::ListPolicies);
    Add("GetPolicy", &pb::Control::Stub::GetPolicy);
    Add("PutPolicies", &pb::Control::Stub::PutPolicies);
    Add("DeletePolicy", &pb::Control::Stub::DeletePolicy);
    Add("Clear", &pb::Control::Stub::Clear);
    Add("GetCounters", &pb::Control::Stub::GetCounters);
    Add("WaitGeneration", &pb::Control::Stub::WaitGeneration);
  }

  CallResult Call(const std::string& method, const std::string& request,
                  int timeout_ms) override {
    auto it = methods_.find(method);
    if (it == methods_.end())
      return {12, "no such method: " + method, ""};  // UNIMPLEMENTED
    grpc::ClientContext context;
    Prepare(&context);
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(timeout_ms));
    return it->second(&context, request);
  }

  CallResult Watch(
      const std::string& request,
      const std::function<bool(const std::string&)>& on_message) override {
    pb::WatchEventsRequest q;
    if (!q.ParseFromString(request)) return {3, "malformed request", ""};
    grpc::ClientContext context;
    Prepare(&context);
    std::unique_ptr<grpc::ClientReader<pb::WatchEventsResponse>> reader =
        stub_->WatchEvents(&context, q);
    pb::WatchEventsResponse m;
    while (reader->Read(&m)) {
      if (!on_message(m.SerializeAsString())) {
        context.TryCancel();
        while (reader->Read(&m)) {
        }
        reader->Finish();
        return {};
      }
    }
    grpc::Status s = reader->Finish();
    return {static_cast<int>(s.error_code()), s.error_message(), ""};
  }

 private:
  using Handler =
      std::function<CallResult(grpc::ClientContext*, const std::string&)>;

  template <typename Request, typename Response>
  void Add(const char* name,
           grpc::Status (pb::Control::Stub::*method)(grpc::ClientContext*,
                                                     const Request&,
                                                     Response*)) {
    methods_[name] = [this, method](grpc::ClientContext* c,
                                    const std::string& bytes) {
      Request q;
      if (!q.ParseFromString(bytes))
        return CallResult{3, "malformed request", ""};
      Response r;
      grpc::Status s = (stub_.get()->*method)(c, q, &r);
      if (!s.ok())
        return CallResult{static_cast<int>(s.error_code()), s.error_message(),
                          ""};
      return CallResult{0, "", r.SerializeAsString()};
    };
  }

  void Prepare(grpc::ClientContext* context) const {
    if (!token_.empty()) context->AddMetadata(kAuthorization, kBearer + token_);
  }

  const std::string token_;
  std::unique_ptr<pb::Control::Stub> stub_;
  std::map<std::string, Handler> methods_;
};

std::unique_ptr<ControlClient> Connect(const ControlClientOptions& options) {
  return std::make_unique<Client>(options);
}

}  // namespace

const ControlApi& TheControlApi() {
  static const ControlApi api = {&StartServer, &Connect};
  return api;
}

}  // namespace fault::grpc_module
