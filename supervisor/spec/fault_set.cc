#include "supervisor/spec/fault_set.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "shim/engine/families.h"
#include "supervisor/policy/loader.h"

namespace fault::spec {
namespace {

const std::vector<std::string>& Families() {
  static const auto* const kNames = [] {
    auto* out = new std::vector<std::string>;
    for (int f = 1; f < fault::engine::kFamilyCount; ++f) {
      out->push_back(fault::engine::FamilyName(f));
      if (f == fault::engine::kFamilyOpen) out->push_back("openat");
    }
    return out;
  }();
  return *kNames;
}

// Keyword -> field path in the policy-file format.
const std::vector<std::pair<std::string, std::string>>& EffectKeywords() {
  static const auto* k = new std::vector<std::pair<std::string, std::string>>{
      {"latency", "latency"},
      {"jitter", "jitter"},
      {"packet_loss", "packet_loss"},
      {"burst_loss", "burst_loss"},
      {"correlated_loss", "correlated_loss"},
      {"rate", "rate"},
      {"timeout", "timeout"},
      {"connect_timeout", "timeout.connect"},
      {"recv_timeout", "timeout.recv"},
      {"connection_error", "connection_error"},
      {"half_open", "half_open"},
      {"blackhole", "blackhole"},
      {"blackhole_direction", "blackhole_direction"},
      {"per_operation", "per_operation"},
      {"packet_reorder", "packet_reorder"},
      {"packet_duplicate", "packet_duplicate"},
      {"session_budget", "session_budget"},
      {"payload_mutation", "payload_mutation"},
      {"uplink", "uplink"},
      {"downlink", "downlink"},
      {"dns", "dns"},
      {"dns_delay", "dns.delay"},
      {"dns_timeout", "dns.timeout"},
      {"dns_nxdomain", "dns.nxdomain"},
      {"schedule", "schedule"},
  };
  return *k;
}

// Fields whose parts compose independently.
bool IsPartwise(absl::string_view field) {
  return field == "dns" || field == "timeout" || field == "uplink" ||
         field == "downlink";
}

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1,
                         prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string Conflict(absl::string_view what, const nlohmann::json& a,
                     absl::string_view origin_a, const nlohmann::json& b,
                     absl::string_view origin_b) {
  return absl::StrCat(what, " is set twice differently: ", a.dump(), " by \"",
                      origin_a, "\" and ", b.dump(), " by \"", origin_b, "\"");
}

}  // namespace

std::string NotAppliedByExec(absl::string_view path) {
  absl::string_view field = path;
  for (absl::string_view part : {"uplink.", "downlink."})
    absl::ConsumePrefix(&field, part);
  if (field == "packet_reorder")
    return "fault exec does not reorder packets (neither the preload shim nor "
           "the stream engine implements packet_reorder; the shim only warns "
           "in the service's log), so this fault would do nothing; leave it "
           "out";
  if (field == "payload_mutation")
    return "fault exec does not change payloads (neither the preload shim nor "
           "the stream engine implements payload_mutation; the shim only warns "
           "in the service's log), so this fault would do nothing; leave it "
           "out";
  return "";
}

std::string TargetsCannotNarrow(absl::string_view family) {
  absl::string_view number_of = family == "openat" ? "open" : family;
  int f = 1;
  while (f < fault::engine::kFamilyCount &&
         number_of != fault::engine::FamilyName(f))
    ++f;
  if (f == fault::engine::kFamilyCount) return "";
  if (fault::engine::kFamilies[f].file) {
    // read, write and close act on sockets too: for a socket the shim can
    // narrow them, for a file nothing can.
    bool sockets_too = f == fault::engine::kFamilyRead ||
                       f == fault::engine::kFamilyWrite ||
                       f == fault::engine::kFamilyClose;
    std::string instead =
        f == fault::engine::kFamilyRead    ? "For one connection's traffic "
                                             "use recv= with targets=; for "
                                             "files, "
        : f == fault::engine::kFamilyWrite ? "For one connection's traffic "
                                             "use send= with targets=; for "
                                             "files, "
                                           : "For files, ";
    return absl::StrCat(
        "targets= select connections by their peer, and ", family,
        sockets_too ? " also" : "",
        " acts on files, which have no peer: the rule would apply to every "
        "file the service touches (its own files, /proc, /sys, its "
        "libraries), whatever the targets. ",
        instead,
        "give path= in a fault without targets= (targets= apply to every "
        "rule of a fault, composed faults included)");
  }
  if (f == fault::engine::kFamilyAccept)
    return "targets= select connections by their peer, and an accept is "
           "decided before it has one: the rule would never apply. Leave out "
           "targets= to fault every accept, or fault the accepted "
           "connection's recv= or send= with targets=";
  if (fault::engine::kFamilies[f].seccomp_only)
    return absl::StrCat("targets= select connections by their peer, and ",
                        family,
                        " has none: the rule would never apply; leave "
                        "out targets=");
  return "";
}

bool IsSyscallFamily(absl::string_view name) {
  const auto& f = Families();
  return std::find(f.begin(), f.end(), name) != f.end();
}

std::optional<std::string> EffectFieldPath(absl::string_view keyword) {
  for (const auto& [k, path] : EffectKeywords())
    if (k == keyword) return path;
  return std::nullopt;
}

const std::vector<std::string>& AssumptionKeywords() {
  static const auto* all = [] {
    auto* v = new std::vector<std::string>{
        "name",          "target",    "faults",     "description", "targets",
        "expect_events", "partition", "from_start", "after",       "lasting",
        "http",          "redis",     "postgres"};
    for (const auto& [k, path] : EffectKeywords()) v->push_back(k);
    for (const auto& f : Families()) v->push_back(f);
    return v;
  }();
  return *all;
}

const std::vector<std::string>& WindowKeywords() {
  static const auto* all = [] {
    auto* v = new std::vector<std::string>{
        "service", "assumption", "run", "faults", "targets", "expect_events",
        "http",    "redis",      "postgres"};
    for (const auto& [k, path] : EffectKeywords()) v->push_back(k);
    for (const auto& f : Families()) v->push_back(f);
    return v;
  }();
  return *all;
}

std::string SuggestKeyword(absl::string_view word,
                           const std::vector<std::string>& known) {
  std::string best;
  size_t best_d = 3;
  for (const auto& k : known) {
    size_t d = EditDistance(word, k);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  return best;
}

absl::Status FaultSet::SetField(const std::string& path,
                                const nlohmann::json& value,
                                absl::string_view origin) {
  // A whole part-wise field given as a dict is set part by part, so that
  // dns={"delay": ...} and dns_nxdomain=... compose.
  if (IsPartwise(path) && value.is_object()) {
    for (const auto& [k, v] : value.items()) {
      absl::Status st = SetField(absl::StrCat(path, ".", k), v, origin);
      if (!st.ok()) return st;
    }
    return absl::OkStatus();
  }
  auto it = fields_.find(path);
  if (it != fields_.end()) {
    if (it->second.value == value) return absl::OkStatus();
    return absl::InvalidArgumentError(
        Conflict(path, it->second.value, it->second.origin, value, origin));
  }
  fields_[path] = Field{value, std::string(origin)};
  return absl::OkStatus();
}

absl::Status FaultSet::SetSyscallRules(const std::string& family,
                                       std::vector<SyscallRule> rules,
                                       absl::string_view origin) {
  std::string key = family == "openat" ? "open" : family;
  for (auto& [f, existing] : syscalls_) {
    if (f != key) continue;
    if (existing == rules) return absl::OkStatus();
    return absl::InvalidArgumentError(Conflict(key, nlohmann::json(existing),
                                               syscall_origin_[key],
                                               nlohmann::json(rules), origin));
  }
  syscalls_.emplace_back(key, std::move(rules));
  syscall_origin_[key] = std::string(origin);
  return absl::OkStatus();
}

absl::Status FaultSet::SetTargets(const nlohmann::json& targets,
                                  absl::string_view origin) {
  if (targets_) {
    if (targets_->value == targets) return absl::OkStatus();
    return absl::InvalidArgumentError(Conflict(
        "targets", targets_->value, targets_->origin, targets, origin));
  }
  targets_ = Field{targets, std::string(origin)};
  return absl::OkStatus();
}

void FaultSet::AddPartition(const std::string& a, const std::string& b) {
  for (const auto& [x, y] : partitions_)
    if ((x == a && y == b) || (x == b && y == a)) return;
  partitions_.emplace_back(a, b);
}

nlohmann::json FaultSet::ToJson() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [path, f] : fields_) {
    std::vector<std::string> parts = absl::StrSplit(path, '.');
    nlohmann::json* node = &out;
    for (size_t i = 0; i + 1 < parts.size(); ++i) node = &(*node)[parts[i]];
    (*node)[parts.back()] = f.value;
  }
  if (!syscalls_.empty()) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& [family, rules] : syscalls_)
      for (const auto& r : rules) list.push_back({{family, r}});
    out["syscalls"] = list;
  }
  if (targets_) out["targets"] = targets_->value;
  if (!partitions_.empty()) {
    nlohmann::json pairs = nlohmann::json::array();
    for (const auto& [a, b] : partitions_) pairs.push_back({a, b});
    out["partition"] = pairs;
  }
  return out;
}

absl::Status Merge(FaultSet* into, const FaultSet& from) {
  for (const auto& [path, f] : from.fields_) {
    absl::Status st = into->SetField(path, f.value, f.origin);
    if (!st.ok()) return st;
  }
  for (const auto& [family, rules] : from.syscalls_) {
    auto it = from.syscall_origin_.find(family);
    absl::Status st = into->SetSyscallRules(family, rules, it->second);
    if (!st.ok()) return st;
  }
  if (from.targets_) {
    absl::Status st =
        into->SetTargets(from.targets_->value, from.targets_->origin);
    if (!st.ok()) return st;
  }
  for (const auto& [a, b] : from.partitions_) into->AddPartition(a, b);
  return absl::OkStatus();
}

absl::StatusOr<fault::v1::Policy> ToPolicy(absl::string_view name,
                                           const FaultSet& set,
                                           absl::string_view where) {
  static constexpr absl::string_view kGenerated = "<fault_assumption>";
  nlohmann::json doc = {{std::string(name), set.ToJson()}};
  absl::StatusOr<fault::v1::PolicySet> parsed = fault::policy::ParsePolicyText(
      doc.dump(), std::string_view(kGenerated.data(), kGenerated.size()));
  if (!parsed.ok()) {
    // Each line reads "<fault_assumption>:1:COL: policy "name": field: why";
    // the column is in generated text, so name the spec position instead.
    std::vector<std::string> lines;
    for (absl::string_view line :
         absl::StrSplit(parsed.status().message(), '\n')) {
      if (line.empty()) continue;
      if (absl::StartsWith(line, kGenerated)) {
        size_t p = line.find(": ", kGenerated.size());
        if (p != absl::string_view::npos) line.remove_prefix(p + 2);
      }
      absl::string_view policy_prefix = line;
      std::string expected = absl::StrCat("policy \"", name, "\": ");
      if (absl::StartsWith(policy_prefix, expected))
        line.remove_prefix(expected.size());
      lines.push_back(absl::StrCat(where, ": \"", name, "\": ", line));
    }
    return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
  }
  if (parsed->policies_size() != 1) {
    return absl::InternalError(absl::StrCat(where, ": expected one policy"));
  }
  return parsed->policies(0);
}

}  // namespace fault::spec
