// A loaded fault spec: services, fault assumptions, scenarios and the cells
// of its fault matrices. docs/spec.md describes the language.
//
//   absl::StatusOr<std::unique_ptr<Spec>> spec = LoadSpec("s.star", source);
//   for (const Cell& cell : (*spec)->cells) ...
//
// Loading executes the file once with the spec builtins predeclared; every
// error (syntax, unknown keyword, wrong type, unknown errno, an effect a
// target cannot observe, a composition conflict) is reported with the
// file:line:column of the argument at fault (call_site.h), and nothing
// runs.
//
// Thread safety: a loaded Spec is read-only except the runtime fields of
// ServiceDef (current_ports, current_dir), which the runner sets for shared
// services while one cell runs; cells that run at the same time keep their
// services' ports in their own CellInstances (ScopedCellInstances). Its
// Starlark values are frozen, so several threads may call them.
#ifndef FAULT_SUPERVISOR_SPEC_SPEC_H_
#define FAULT_SUPERVISOR_SPEC_SPEC_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fault/v1/policy.pb.h"
#include "starlark/starlark.h"
#include "supervisor/spec/events.h"
#include "supervisor/spec/fault_set.h"

namespace fault::spec {

struct ServiceDef {
  std::string name;
  std::string where;  // file:line:column of service(...)
  std::vector<std::string> command;
  std::vector<std::pair<std::string, std::string>> env;
  std::vector<std::pair<std::string, int>> ports;  // 0: a free port per cell
  std::string ready_port;                          // a port name, or ""
  std::vector<std::string> ready_command;          // or a command
  absl::Duration ready_timeout = absl::Seconds(10);
  bool static_binary = false;
  // Started once and kept across cells; each cell's fault is applied by a
  // policy reload (docs/spec.md, "Shared services").
  bool shared = false;
  // Services that must be ready before this one starts
  // (service(..., depends_on = [...])): as written (a name, and where), and
  // resolved once the spec has loaded (a service may name one defined
  // after it).
  struct Dependency {
    std::string name, where;
  };
  std::vector<Dependency> depends_on_written;
  std::vector<const ServiceDef*> depends_on;
  // A mock service (mock_service(...)): its MockConfig as JSON (mock.h),
  // written into its directory when it starts; its command runs
  // `{fault} mock {dir}/mock.json {PORT}`, {fault} being the runner's
  // fault binary. "" for a program.
  std::string mock_config;

  // Set by the runner for a shared service (the same in every cell), and
  // by tests; the runner keeps a fresh service's per cell, in the
  // CellInstances of the thread that runs the cell (CurrentPorts below).
  std::map<std::string, int> current_ports;
  std::string current_dir;
};

// The ports and the directory of one service in one cell.
struct ServiceInstance {
  std::map<std::string, int> ports;
  std::string dir;
};
// Those of the fresh services of a cell: cells that run at the same time
// (fault test --jobs) each have their own.
using CellInstances = std::map<const ServiceDef*, ServiceInstance>;

// Installs `cells` as the instances of the calling thread's cell until
// destroyed.
class ScopedCellInstances {
 public:
  explicit ScopedCellInstances(const CellInstances* instances);
  ~ScopedCellInstances();
  ScopedCellInstances(const ScopedCellInstances&) = delete;
  ScopedCellInstances& operator=(const ScopedCellInstances&) = delete;
};

// The instances installed on the calling thread, or null (for a thread that
// runs part of the same cell: parallel()).
const CellInstances* CurrentCellInstances();

// The ports and directory of `svc` in the calling thread's cell: its entry
// of the installed CellInstances, else svc.current_ports / current_dir.
const std::map<std::string, int>& CurrentPorts(const ServiceDef& svc);
const std::string& CurrentDir(const ServiceDef& svc);

struct Assumption {
  std::string name;
  std::string description;
  std::string where;
  FaultSet set;
  fault::v1::Policy policy;
  std::vector<std::shared_ptr<ServiceDef>> targets;  // where the faults apply
  bool expect_events = true;  // a cell fails when no fault fired
  // In a cell, applied from the start of its target services (as `fault
  // exec --policy`), not only while the scenario runs (docs/spec.md, "Fault
  // windows"). Always true with a partition.
  bool from_start = false;
  // A cell's fault in force from `after` into the scenario's run until
  // `lasting` later (fault_assumption(..., after = "200ms", lasting =
  // "300ms")), and in any case not after run returns (docs/spec.md,
  // "Timed faults").
  absl::Duration after = absl::ZeroDuration();
  absl::Duration lasting = absl::InfiniteDuration();
  std::string timing_where;  // where after= or lasting= was given
  bool timed() const {
    return after > absl::ZeroDuration() || lasting != absl::InfiniteDuration();
  }
};

struct ScenarioDef {
  std::string name;
  std::string description;
  std::string where;
  starlark::Value run;
  starlark::Value check;  // the default expectation, or null
};

struct Cell {
  std::shared_ptr<ScenarioDef> scenario;
  std::shared_ptr<Assumption> fault;  // null: no fault (the baseline)
  starlark::Value check;              // override, or null: the scenario's
  std::string name() const;           // "scenario/fault" ("/none")
};

// monitor(fn, service=, kind=, ...): a function called with every fault
// event of every cell that matches its filter, once the cell's services
// have stopped; an error in it fails the cell (docs/spec.md, "Monitors").
struct MonitorDef {
  starlark::Value fn;
  EventFilter filter;
  std::string where;  // file:line:col of monitor(...)
};

struct Spec {
  std::string path;
  std::vector<MonitorDef> monitors;
  std::vector<std::shared_ptr<ServiceDef>> services;
  std::vector<std::shared_ptr<Assumption>> assumptions;
  std::vector<Cell> cells;
  // Indices into `services` in the order they start: every service after
  // the services it depends on, otherwise in definition order.
  std::vector<size_t> start_order;
  starlark::StringDict globals;
  std::shared_ptr<void> loader;  // state of the load-time builtins
};

// A reference to another service's port: "{SERVICE.PORT}" in a string
// (docs/spec.md, "Addresses of other services"). Reading svc.PORT.addr or
// .url while the spec loads gives "127.0.0.1:{SERVICE.PORT}" for a port
// chosen per cell (0); the runner expands it when a cell starts its
// services (command, env, ready) and in the scenario builtins (the url of
// http.*, exec's argv and env).
struct PortRef {
  size_t begin = 0, end = 0;  // "{...}" is [begin, end) of the string
  std::shared_ptr<ServiceDef> service;
  std::string port;     // the port's name; "" when the service has no such port
  std::string written;  // what follows "SERVICE." ("main")
};

// "{SERVICE.PORT}".
std::string PortRefText(absl::string_view service, absl::string_view port);

// The references in `s` to services of `services`: every "{NAME.REST}"
// whose NAME is one of the services (REST names one of its ports, or not).
// Other text in braces is not a reference.
std::vector<PortRef> FindPortRefs(
    absl::string_view s,
    const std::vector<std::shared_ptr<ServiceDef>>& services);

// `s` with every reference to a port that has a current value (the cell's)
// replaced by the port number.
std::string ExpandPortRefs(
    absl::string_view s,
    const std::vector<std::shared_ptr<ServiceDef>>& services);

// Loads a spec. Errors: the message to print (file:line:column first).
// `vars` become the predeclared dict `vars` (`fault test --var KEY=VALUE`).
// `load("lib.star", ...)` reads files relative to the loading file's
// directory (filename must then name the spec's path).
absl::StatusOr<std::unique_ptr<Spec>> LoadSpec(
    absl::string_view filename, absl::string_view source,
    const std::vector<std::pair<std::string, std::string>>& vars = {});

// True when the ELF file has no program interpreter (statically linked).
bool IsStaticBinary(const std::string& path);

// Resolves a command name on PATH ("" when not found).
std::string ResolveOnPath(const std::string& name);

}  // namespace fault::spec

#endif  // FAULT_SUPERVISOR_SPEC_SPEC_H_
