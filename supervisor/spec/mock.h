// Mock services of a spec: canned HTTP or TCP replies, with delays and
// dropped connections (docs/spec.md, "Mock services").
//
//   mock_service("payments", http = {"GET /health": respond(200, "ok")})
//
// The spec loader turns mock_service(...) into a MockConfig; the runner
// writes it as JSON into the service's directory and starts
// `fault mock FILE PORT` under `fault exec` like any other service, so
// faults, windows, events and depends_on apply to a mock as to a program.
//
// Thread safety: a MockConfig is a plain value; ServeMock serves each
// connection on its own thread, reading the config only.
#ifndef FAULT_SUPERVISOR_SPEC_MOCK_H_
#define FAULT_SUPERVISOR_SPEC_MOCK_H_

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace fault::spec {

// One canned reply. HTTP: status, headers and body; TCP: body only (written
// as given). `close`: the connection is closed without a reply.
struct MockReply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  absl::Duration delay = absl::ZeroDuration();
  bool close = false;
};

struct MockConfig {
  enum class Protocol { kHttp, kTcp };
  Protocol protocol = Protocol::kHttp;
  // HTTP: "METHOD /path" or "/path" (any method), the path an fnmatch
  // glob, matched against the request's path without its query, then with
  // it. TCP: a received line (without its line end), an fnmatch glob.
  // Tried in order; the first that matches answers.
  std::vector<std::pair<std::string, MockReply>> routes;
  std::optional<MockReply> fallback;  // for what no route matches
};

// Why a route key cannot be one ("" when it can).
std::string CheckRouteKey(MockConfig::Protocol protocol, absl::string_view key);

// The reply to an HTTP request, or to a line of TCP; null: none.
const MockReply* MatchHttp(const MockConfig& config, absl::string_view method,
                           absl::string_view target);
const MockReply* MatchLine(const MockConfig& config, absl::string_view line);

nlohmann::json MockConfigToJson(const MockConfig& config);
absl::StatusOr<MockConfig> MockConfigFromJson(const nlohmann::json& j);

// Listens on 127.0.0.1:port and answers until the process is signalled.
// Returns only on a setup error (the message).
std::string ServeMock(const MockConfig& config, int port);

}  // namespace fault::spec

#endif  // FAULT_SUPERVISOR_SPEC_MOCK_H_
