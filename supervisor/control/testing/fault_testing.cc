#include "supervisor/control/testing/fault_testing.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "supervisor/grpc/status_name.h"

namespace fault::testing {
namespace {

std::string Trim(const std::string& s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// gRPC's form of a FAULT_CONTROL value; "" when it is neither form.
std::string Target(const std::string& address) {
  if (address.rfind("unix:", 0) == 0) return address;
  if (address.rfind("tcp:", 0) == 0) return address.substr(4);
  return "";
}

}  // namespace

Control::Control(const std::string& address, std::string token)
    : token_(std::move(token)) {
  const std::string target = Target(address);
  if (target.empty()) {
    error_ = address + ": expected unix:PATH or tcp:HOST:PORT";
    return;
  }
  stub_ = fault::v1::Control::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
}

Control& Control::FromEnvironment() {
  static Control* control = [] {
    const char* address = std::getenv("FAULT_CONTROL");
    if (address == nullptr || *address == '\0') {
      auto* c = new Control();
      c->error_ =
          "FAULT_CONTROL is not set: run the test under fault exec --control "
          "unix (the CMake "
          "helper fault_add_test() does)";
      return c;
    }
    std::string token;
    if (const char* file = std::getenv("FAULT_CONTROL_TOKEN_FILE");
        file && *file) {
      std::ifstream in(file);
      std::stringstream text;
      text << in.rdbuf();
      token = Trim(text.str());
    }
    return new Control(address, token);
  }();
  return *control;
}

std::unique_ptr<grpc::ClientContext> Control::Context() const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (!token_.empty())
    context->AddMetadata("authorization", "Bearer " + token_);
  context->set_deadline(std::chrono::system_clock::now() + timeout_);
  return context;
}

grpc::Status Control::Put(const std::string& policy_text,
                          fault::v1::ChangeResponse* response) {
  if (!error_.empty())
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, error_);
  fault::v1::PutPoliciesRequest q;
  q.set_text(policy_text);
  fault::v1::ChangeResponse r;
  grpc::Status s = stub_->PutPolicies(Context().get(), q, &r);
  if (response != nullptr) *response = std::move(r);
  return s;
}

grpc::Status Control::Delete(const std::string& name) {
  if (!error_.empty())
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, error_);
  fault::v1::DeletePolicyRequest q;
  q.set_name(name);
  fault::v1::ChangeResponse r;
  return stub_->DeletePolicy(Context().get(), q, &r);
}

grpc::Status Control::Clear() {
  if (!error_.empty())
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, error_);
  fault::v1::ChangeResponse r;
  return stub_->Clear(Context().get(), fault::v1::ClearRequest(), &r);
}

grpc::Status Control::Status(fault::v1::StatusResponse* response) {
  if (!error_.empty())
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, error_);
  return stub_->Status(Context().get(), fault::v1::StatusRequest(), response);
}

grpc::Status Control::Counters(std::vector<fault::v1::RuleCounters>* counters) {
  if (!error_.empty())
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, error_);
  fault::v1::GetCountersResponse r;
  grpc::Status s =
      stub_->GetCounters(Context().get(), fault::v1::GetCountersRequest(), &r);
  counters->assign(r.counters().begin(), r.counters().end());
  return s;
}

grpc::Status Control::WaitGeneration(uint64_t generation) {
  if (!error_.empty())
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, error_);
  fault::v1::WaitGenerationRequest q;
  q.set_generation(generation);
  q.set_timeout_ns(
      std::chrono::duration_cast<std::chrono::nanoseconds>(timeout_).count());
  fault::v1::WaitGenerationResponse r;
  auto context = Context();
  // The call's deadline a little after the wait's own.
  context->set_deadline(std::chrono::system_clock::now() + timeout_ +
                        std::chrono::seconds(1));
  return stub_->WaitGeneration(context.get(), q, &r);
}

ScopedFault::ScopedFault(Control& control, const std::string& policy_text)
    : control_(control) {
  fault::v1::ChangeResponse r;
  status_ = control_.Put(policy_text, &r);
  if (!status_.ok()) return;
  generation_ = r.generation();
  names_.assign(r.put().begin(), r.put().end());
  // A put returns once its generation is published; waiting for it keeps
  // that guarantee explicit (and holds for any later server).
  status_ = control_.WaitGeneration(generation_);
}

ScopedFault::~ScopedFault() {
  for (const std::string& name : names_) control_.Delete(name);
}

std::string ScopedFault::error() const {
  if (status_.ok()) return "";
  return grpc_status::StatusCodeName(status_.error_code()) + ": " +
         status_.error_message();
}

}  // namespace fault::testing
