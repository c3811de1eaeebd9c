// The value grammars of `fault run` (the fault proxy's flags): listen
// addresses, --proxy mappings, --upstream hosts, parse_duration durations,
// --*-sched schedules and millisecond values. Pure functions, shared by
// BuildRunConfig (run_config.h), the command and the fuzz target
// (run_syntax_fuzz.cc). Errors quote the value and say what is
// wrong with it; callers prefix the flag or variable.
//
//   absl::StatusOr<Mapping> m = ParseMapping("9090=127.0.0.1:6379");
//   // m->listen: 127.0.0.1:9090, m->upstream: 127.0.0.1:6379
//
// Thread-safe: no state.
#ifndef FAULT_SUPERVISOR_RUN_PROXY_SYNTAX_H_
#define FAULT_SUPERVISOR_RUN_PROXY_SYNTAX_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "fault/v1/policy.pb.h"

namespace fault::run {

// Where a listener binds: an IPv4 or IPv6 address (no host names) and a
// port (0: any free port; only --proxy-address may ask for it).
struct ListenAddress {
  std::string host;  // canonical: "127.0.0.1", "::1", "0.0.0.0", "::"
  uint16_t port = 0;

  std::string ToString() const;  // "127.0.0.1:3180", "[::1]:3180"
};

// An upstream: a host name or an IP literal, and a port.
struct Upstream {
  std::string host;  // IPv6 literals without brackets
  uint16_t port = 0;
};

// --proxy "[tcp:][ADDR:]PORT=[SCHEME://]HOST:PORT": a TCP relay from `listen`
// to `upstream`, faulted by every flag fault (--upstream does not apply).
struct Mapping {
  std::string text;      // as given, for messages
  ListenAddress listen;  // a bare PORT listens on 127.0.0.1 only; write
                         // 0.0.0.0:PORT for every interface
  Upstream upstream;
  // The right side's scheme ("", "http", "https", "psql", "tls", ...), kept
  // for reports: the relay is plain TCP whatever it says (as in the Rust
  // tool, which discards it).
  std::string scheme;
};

// "127.0.0.1:3180", "[::1]:3180", "0.0.0.0:0" (port 0 only when
// `allow_port_zero`).
absl::StatusOr<ListenAddress> ParseListenAddress(std::string_view text,
                                                 bool allow_port_zero);

// "9090=127.0.0.1:6379", "tcp:0.0.0.0:9090=db:5432",
// "[::1]:9090=https://example.com:443". Left protocols other than tcp: are
// refused ("not supported: ...").
absl::StatusOr<Mapping> ParseMapping(std::string_view text);

// One --upstream value (no commas) in the form UpstreamMatches reads:
// "http://h:p" -> "h:p", "https://h" -> "h:443", "http://h" -> "h:80",
// "h:p" -> "h:p", "[::1]:p" -> "[::1]:p", "h" -> "h" (any port), "*" -> "*".
// Host names are lower-cased, IPv6 literals canonical.
absl::StatusOr<std::string> NormalizeUpstream(std::string_view text);

// Whether a forward-proxy or CONNECT target `host`:`port` gets the flag
// faults: exact host equality (no resolution: "localhost" and "127.0.0.1"
// do not match each other; names compare case-insensitively; IPv6 with or
// without brackets), the port when the entry has one; "*" matches all.
bool UpstreamMatches(const std::vector<std::string>& upstreams,
                     std::string_view host, uint16_t port);

// The proxy's duration syntax (Rust parse_duration): "60s", "10m", "500ms",
// "1h", "1m30s", "1m 30s", "2 minutes", "1.5h", "1d"; a bare number is
// seconds ("90", "0.5").
absl::StatusOr<int64_t> ParseProxyDuration(std::string_view text);

// A --*-sched value, "start:5%,duration:30%;start:90%" (the `fault` proxy
// CLI's schedule syntax): a missing start is 0, a missing duration lasts until the end of the
// run; values are N%, durations (ParseProxyDuration) or bare seconds;
// percentages need `run_duration_ns` (--duration). At most
// FAULT_MAX_INTERVALS periods. -> a KIND_INTERVALS schedule.
absl::StatusOr<fault::v1::Schedule> ParseProxySchedule(std::string_view text,
                                                       int64_t run_duration_ns);

// A latency value: a number of milliseconds ("300", "0.25") as the Rust
// flags take it, or a duration ("250us", "1.5ms", "2s").
absl::StatusOr<int64_t> ParseMilliseconds(std::string_view text);

// A plain non-negative decimal number ("5", "1.5", ".5"), for the Rust
// tool's floating-point flags without a unit (--latency-shape,
// --jitter-frequency). No sign, exponent, inf or nan.
absl::StatusOr<double> ParseProxyNumber(std::string_view text);

}  // namespace fault::run

#endif  // FAULT_SUPERVISOR_RUN_PROXY_SYNTAX_H_
