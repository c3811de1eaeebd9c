// The configuration of `fault run` (the fault proxy), from its flags and
// FAULT_* environment variables: the flags and variables of the Rust `fault
// run` proxy (rebound 0.12; where its docs and code disagree both spellings
// are accepted, see docs/run.md), plus our own --policy FILE,
// effect flags, --seed, --events, --quiet and --expect-faults.
//
//   CLI::App* run = app.add_subcommand("run", "...");
//   auto flags = std::make_shared<RunFlags>();
//   RegisterRunFlags(run, flags.get());
//   ... app.parse(argc, argv) ...
//   absl::StatusOr<RunConfig> config = BuildRunConfig(*flags, std::getenv);
//   // !ok(): a usage error (exit 2), one line per problem, each naming the
//   // flag ("--latency-mean: ...") or variable ("FAULT_LATENCY_MEAN=abc: ...")
//
// Each --with-X fault becomes its own policy (named "latency", "jitter",
// "bandwidth", "packet-loss", "blackhole", "http-response", "dns"), with its
// own schedule. The command line wins over the environment, value by value.
// A fault's flags given on the command line without its --with-X are an
// error (the Rust tool ignores them); in the environment they are ignored,
// so that a FAULT_WITH_X variable can switch a configured fault off.
//
// Thread-compatible; no I/O besides reading --policy files.
#ifndef FAULT_SUPERVISOR_RUN_RUN_CONFIG_H_
#define FAULT_SUPERVISOR_RUN_RUN_CONFIG_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "supervisor/control/control_address.h"
#include "absl/status/statusor.h"
#include "fault/v1/policy.pb.h"
#include "supervisor/policy/loader.h"
#include "supervisor/run/proxy_syntax.h"

namespace fault::run {

// `--stealth`: capture the connections of processes selected on the
// machine (eBPF, ebpf/capture.h) and relay them through the same faults.
struct StealthConfig {
  std::vector<std::string> processes;   // exact process names, or "prefix*"
  std::vector<int> pids;                // PID trees
  std::vector<std::string> exec_names;  // captured from exec on
  std::vector<std::string> cgroups;     // cgroup2 directories
  bool all_netns = false;               // every network namespace
  uint16_t port = 0;                    // the capture listeners' port; 0: any
};

struct RunConfig {
  // The HTTP forward proxy's listener; nullopt with --disable-http-proxy.
  std::optional<ListenAddress> proxy_address;
  std::vector<Mapping> mappings;
  // --upstream values, normalised (NormalizeUpstream): which forward-proxy
  // and CONNECT targets the flag faults apply to; see UpstreamMatches.
  // Empty: none (mappings are always faulted).
  std::vector<std::string> upstreams;
  int64_t duration_ns = 0;  // 0: until interrupted
  bool no_ui = false;
  bool tail = false;
  bool quiet = false;
  std::string events_path;
  bool expect_faults = false;
  // Event loops (threads) of the proxy; 0: half the cores, at least one.
  int event_loops = 0;
  // Connections open at a time; 0: as many as the descriptor limit allows.
  size_t max_connections = 0;
  std::optional<uint64_t> seed;

  // Every flag fault, one policy each, in the order latency, jitter,
  // bandwidth, packet-loss, blackhole, http-response, dns; then the policies
  // of the --policy files; then the inline policy of our effect flags
  // ("cli"). Uplink is client -> upstream, downlink upstream -> client.
  // Flag faults apply together: a connection gets the effects of every flag
  // policy active at the time (their schedules overlap and compose), not
  // the one policy the table's priority rule would pick.
  fault::v1::PolicySet policies;
  // The names in `policies` that came from --with-* flags (applied to every
  // mapping and to forward/CONNECT targets that match `upstreams`); the
  // others select connections by their own targets.
  std::vector<std::string> flag_policies;
  // --http-response-body by policy name (also in Policy.http_error.body),
  // for the HTTP path, which does not read bodies from the table.
  std::map<std::string, std::string> http_bodies;
  std::optional<StealthConfig> stealth;
  // --control: the control plane (docs/control.md); with a token, every
  // call needs it.
  std::optional<fault::control::ControlEndpoint> control;
  std::string control_token;

  // gRPC plugins (--grpc-plugin), in order, as given (checked with
  // grpc_module::PluginTarget); docs/plugins.md.
  std::vector<std::string> plugins;
  bool plugin_fail_closed = false;           // --plugin-failure closed
  int64_t plugin_timeout_ns = 1'000'000'000;  // --plugin-timeout
  int64_t plugin_health_interval_ns = 10'000'000'000;  // --plugin-health-interval
};

// Raw flag values as CLI11 fills them: strings, so that the environment can
// fill what the command line left out and errors quote the input. An empty
// string or vector, or a false flag, means "not given on the command line".
struct RunFlags {
  // Listeners, upstreams, lifecycle.
  std::string proxy_address;           // --proxy-address
  bool disable_http_proxy = false;     // --disable-http-proxy
  std::vector<std::string> mappings;   // --proxy (repeatable)
  std::vector<std::string> upstreams;  // -u/--upstream (repeatable, a,b,c)
  std::string duration;                // --duration
  bool no_ui = false;                  // --no-ui
  bool tail = false;                   // --tail

  // --with-latency and its values.
  bool with_latency = false;
  bool latency_per_read_write = false;
  std::string latency_side, latency_direction, latency_distribution;
  std::string latency_mean, latency_stddev, latency_shape, latency_scale;
  std::string latency_min, latency_max, latency_sched;

  // --with-jitter.
  bool with_jitter = false;
  std::string jitter_direction, jitter_side, jitter_amplitude;
  std::string jitter_frequency, jitter_sched;

  // --with-bandwidth.
  bool with_bandwidth = false;
  std::string bandwidth_side, bandwidth_direction, bandwidth_rate;
  std::string bandwidth_unit, bandwidth_sched;

  // --with-packet-loss (--packet-loss-rate is ours).
  bool with_packet_loss = false;
  std::string packet_loss_side, packet_loss_direction, packet_loss_rate;
  std::string packet_loss_sched;

  // --with-blackhole.
  bool with_blackhole = false;
  std::string blackhole_side, blackhole_direction, blackhole_sched;

  // --with-http-response (--http-response-direction: accepted, no effect).
  bool with_http_response = false;
  std::string http_response_status, http_response_body;
  std::string http_response_trigger_probability, http_response_sched;
  std::string http_response_direction;

  // --with-dns.
  bool with_dns = false;
  std::string dns_rate, dns_sched;

  // Stealth capture.
  bool stealth = false;                          // --stealth
  std::vector<std::string> capture_processes;   // --capture-process (repeatable, a,b)
  std::vector<std::string> capture_pids;        // --capture-pid
  std::vector<std::string> capture_execs;       // --capture-exec
  std::vector<std::string> capture_cgroups;     // --capture-cgroup
  bool capture_all_netns = false;               // --capture-all-netns
  std::string ebpf_proxy_port;                  // --ebpf-proxy-port
  std::string ebpf_programs_dir;                // accepted: the programs are built in
  std::string ebpf_proxy_ip, ebpf_proxy_iface;  // accepted: capture uses loopback

  // gRPC plugins.
  std::vector<std::string> grpc_plugins;  // -g/--grpc-plugin (repeatable, a,b)
  std::string plugin_failure;             // --plugin-failure open|closed
  std::string plugin_timeout;             // --plugin-timeout
  std::string plugin_health_interval;     // --plugin-health-interval

  // Ours.
  std::vector<std::string> policy_files;  // --policy (repeatable)
  fault::policy::EffectFlags effects;     // --latency, --packet-loss, ...
  std::string seed;                       // --seed
  std::string events_path;                // --events
  std::string control;                    // --control
  std::string control_token_file;         // --control-token-file
  std::string event_loops;                // --event-loops
  std::string max_connections;            // --max-connections
  bool quiet = false;                     // -q/--quiet
  bool expect_faults = false;             // --expect-faults
};

// Registers every flag of RunFlags on `run` (the `fault run` subcommand);
// CLI11 fills `flags` while it parses. The effect flags of fault::policy
// whose names the Rust flags take (--latency-distribution, --latency-min,
// --latency-max, --latency-mean, --latency-stddev, --latency-shape,
// --latency-scale) and its --seed are left out.
void RegisterRunFlags(CLI::App* run, RunFlags* flags);

// The configuration `flags` and the environment describe; `getenv` reads a
// variable (nullptr: unset; std::getenv in the command). Every problem is
// reported (InvalidArgument, one line each); on error nothing is returned.
absl::StatusOr<RunConfig> BuildRunConfig(
    const RunFlags& flags,
    const std::function<const char*(const char*)>& getenv);

}  // namespace fault::run

#endif  // FAULT_SUPERVISOR_RUN_RUN_CONFIG_H_
