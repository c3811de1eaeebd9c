// fault::testing: change a running `fault exec --control`'s faults from the
// test code it runs (docs/control.md, "From C++ tests").
//
//   TEST(Client, RetriesASlowServer) {
//     fault::testing::ScopedFault slow(
//         "slow:\n  latency: 200ms\n  targets: [\"tcp://127.0.0.1:6379\"]\n");
//     ASSERT_TRUE(slow.ok()) << slow.error();
//     ... the client under test sees 200 ms more per round trip ...
//   }  // the policy is gone again
//
// The test binary runs under `fault exec --control unix -- ./test` (the CMake
// helper fault_add_test() does that), which exports FAULT_CONTROL. Links
// Debian's shared gRPC and protobuf: a binary that uses it must not link
// fault's own (static) protobuf libraries.
//
// Thread-safety: a Control may be used from several threads (gRPC stubs
// are); a ScopedFault belongs to one scope.
#ifndef FAULT_SUPERVISOR_CONTROL_TESTING_FAULT_TESTING_H_
#define FAULT_SUPERVISOR_CONTROL_TESTING_FAULT_TESTING_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fault/v1/control.grpc.pb.h"

namespace fault::testing {

class Control {
 public:
  // `address` as FAULT_CONTROL holds it (unix:PATH or tcp:HOST:PORT);
  // `token` sent with every call when not empty.
  explicit Control(const std::string& address, std::string token = "");

  // From FAULT_CONTROL and FAULT_CONTROL_TOKEN_FILE. When the variable is
  // missing (not under fault exec --control) every call fails with
  // FAILED_PRECONDITION saying so.
  static Control& FromEnvironment();

  // Adds or replaces the policies of a policy file's text (YAML or JSON, as
  // `fault policy validate` reads it); in effect when it returns OK.
  // `response` (optional) gets the generation and the names put.
  grpc::Status Put(const std::string& policy_text,
                   fault::v1::ChangeResponse* response = nullptr);
  grpc::Status Delete(const std::string& name);
  grpc::Status Clear();
  grpc::Status Status(fault::v1::StatusResponse* response);
  grpc::Status Counters(std::vector<fault::v1::RuleCounters>* counters);
  grpc::Status WaitGeneration(uint64_t generation);

  // The whole service, for what the helpers above do not cover.
  fault::v1::Control::Stub* stub() { return stub_.get(); }
  // A context with the token and the per-call deadline.
  std::unique_ptr<grpc::ClientContext> Context() const;

  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }

 private:
  Control() = default;
  std::string error_;  // set: every call fails with this
  std::string token_;
  std::chrono::milliseconds timeout_{10000};
  std::unique_ptr<fault::v1::Control::Stub> stub_;
};

// Puts policies on construction and waits until they are in effect; deletes
// what it put when it goes out of scope. A policy of the same name that was
// in effect before (from the command line) is replaced, and gone afterwards
// too: give scoped policies names of their own.
class ScopedFault {
 public:
  ScopedFault(Control& control, const std::string& policy_text);
  explicit ScopedFault(const std::string& policy_text)
      : ScopedFault(Control::FromEnvironment(), policy_text) {}
  ~ScopedFault();
  ScopedFault(const ScopedFault&) = delete;
  ScopedFault& operator=(const ScopedFault&) = delete;

  bool ok() const { return status_.ok(); }
  const grpc::Status& status() const { return status_; }
  // "INVALID_ARGUMENT: control:2:12: policy \"slow\": latency: ...".
  std::string error() const;
  // The generation that made the policies effective.
  uint64_t generation() const { return generation_; }
  const std::vector<std::string>& names() const { return names_; }

 private:
  Control& control_;
  grpc::Status status_;
  uint64_t generation_ = 0;
  std::vector<std::string> names_;
};

}  // namespace fault::testing

#endif  // FAULT_SUPERVISOR_CONTROL_TESTING_FAULT_TESTING_H_
