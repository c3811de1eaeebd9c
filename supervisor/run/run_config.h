// The configuration of `fault run` (the fault proxy), from its flags and
// FAULT_* environment variables, compatible with the documented flags of the
// `fault` proxy CLI (docs/proxy.md), plus our own --policy FILE and effect
// flags.
//
//   RunFlags flags;
//   RegisterRunFlags(run_subcommand, &flags);   // CLI11
//   ... app.parse(argc, argv) ...
//   absl::StatusOr<RunConfig> config = BuildRunConfig(flags, Environment());
//   // !ok(): a usage error (exit 2) whose message names the flag or variable
//
// Thread-compatible; no I/O besides reading --policy files.
#ifndef FAULT_SUPERVISOR_RUN_RUN_CONFIG_H_
#define FAULT_SUPERVISOR_RUN_RUN_CONFIG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/fault/v1/policy.pb.h"

namespace fault::run {

// Where a listener binds: an IPv4 or IPv6 address (no host names) and a
// port (0: any free port).
struct ListenAddress {
  std::string host;  // "127.0.0.1", "::1", "0.0.0.0", "::"
  uint16_t port = 0;
};

// An upstream: a host name or an IP literal, and a port.
struct Upstream {
  std::string host;  // IPv6 literals without brackets
  uint16_t port = 0;
};

// --proxy "[PROTO:][ADDR:]PORT=[SCHEME://]HOST:PORT"
struct Mapping {
  std::string text;       // as given, for messages
  ListenAddress listen;   // a bare port listens on 127.0.0.1 (see docs/proxy.md)
  Upstream upstream;
  std::string scheme;     // right side's scheme if any ("", "http", "https", "psql", "tls", ...)
};

struct RunConfig {
  // The HTTP forward proxy's listener; nullopt with --disable-http-proxy.
  std::optional<ListenAddress> proxy_address;
  std::vector<Mapping> mappings;
  // --upstream values, normalised to "host:port" ("*" stays "*"): which
  // forward-proxy and CONNECT targets the faults apply to. Empty: none
  // (mappings are always faulted).
  std::vector<std::string> upstreams;
  int64_t duration_ns = 0;  // 0: until SIGINT/SIGTERM
  bool no_ui = false;
  bool tail = false;
  bool quiet = false;
  std::string events_path;
  bool expect_faults = false;
  std::optional<uint64_t> seed;

  // Every fault, one policy each, named after it ("latency", "jitter",
  // "bandwidth", "packet-loss", "blackhole", "http-response", "dns"), then
  // the --policy files' policies and the inline policy of our effect flags
  // ("cli"). Flag faults apply together (their schedules compose); uplink
  // is client -> upstream, downlink upstream -> client.
  fault::v1::PolicySet policies;
  // The names in `policies` that came from --with-* flags (applied to every
  // mapping and to forward/CONNECT targets that match `upstreams`); the
  // others select connections by their own targets.
  std::vector<std::string> flag_policies;
  // --http-response-body, kept here because bodies do not go in the table.
  std::map<std::string, std::string> http_bodies;  // policy name -> body
};

// Raw flag values as CLI11 fills them (strings, so that the environment can
// fill what the command line left empty and errors can quote the input).
struct RunFlags;  // defined in run_config.cc

}  // namespace fault::run

#endif  // FAULT_SUPERVISOR_RUN_RUN_CONFIG_H_
