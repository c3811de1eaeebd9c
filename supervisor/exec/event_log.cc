#include "supervisor/exec/event_log.h"

#include <cstring>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "supervisor/policy/units.h"

namespace fault::exec {
namespace {

// Indexed by enum fault_op / fault_effect; keep in the order of table.h.
constexpr const char* kOps[] = {"none",  "connect", "accept",   "send",  "recv",
                                "read",  "write",   "close",    "fsync", "fdatasync",
                                "open",  "dns",     "unlink",   "rename", "mkdir",
                                "ftruncate", "io_uring"};
static_assert(sizeof(kOps) / sizeof(kOps[0]) == FAULT_OP_COUNT);

constexpr const char* kEffects[] = {
    "none",     "latency",      "loss",        "rate",       "timeout",
    "connection_error", "half_open", "blackhole", "reorder",   "duplicate",
    "session_budget",   "payload_mutation", "dns_delay", "dns_timeout",
    "dns_nxdomain", "deny",     "delay",       "partition",  "http_error",
    "redis_error", "postgres_error", "protocol_drop"};
static_assert(sizeof(kEffects) / sizeof(kEffects[0]) == FAULT_EFFECT_COUNT);

std::string BoundedString(const char* s, size_t max) {
  return std::string(s, strnlen(s, max));
}

}  // namespace

std::string OpName(uint16_t op) {
  if (op < FAULT_OP_COUNT) return kOps[op];
  return absl::StrCat("op", op);
}

std::string EffectName(uint16_t effect) {
  if (effect < FAULT_EFFECT_COUNT) return kEffects[effect];
  return absl::StrCat("effect", effect);
}

std::string LayerName(uint8_t layer) {
  switch (layer) {
    case 1:
      return "shim";
    case 2:
      return "seccomp";
    case 3:
      return "stream";
    default:
      return absl::StrCat("layer", layer);
  }
}

std::string ValueKey(uint16_t effect, uint16_t op) {
  switch (effect) {
    case FAULT_EFFECT_LATENCY:
    case FAULT_EFFECT_RATE:
    case FAULT_EFFECT_TIMEOUT:
    case FAULT_EFFECT_REORDER:
    case FAULT_EFFECT_DNS_DELAY:
    case FAULT_EFFECT_DELAY:
      return "delay_ns";
    case FAULT_EFFECT_BLACKHOLE:
      // A black-holed connect stalls; a black-holed send/recv swallows bytes.
      return op == FAULT_OP_CONNECT ? "delay_ns" : "bytes";
    case FAULT_EFFECT_HALF_OPEN:
      return "bytes";  // moved before the peer went silent
    case FAULT_EFFECT_CONNECTION_ERROR:
    case FAULT_EFFECT_DENY:
    case FAULT_EFFECT_PARTITION:
    case FAULT_EFFECT_BUDGET:
      return "errno";
    case FAULT_EFFECT_DNS_TIMEOUT:
    case FAULT_EFFECT_DNS_NXDOMAIN:
      return "eai";
    case FAULT_EFFECT_HTTP_ERROR:
      return "status";  // the HTTP status answered
    default:
      // loss: the stall in ns on TCP, the lost datagram's size on UDP (the
      // event does not say which); duplicate, mutation: per effect.
      return "value";
  }
}

nlohmann::json EventToJson(const fault_event& e,
                           const std::vector<std::string>& rule_names) {
  nlohmann::json j;
  j["time"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", absl::FromUnixNanos(e.time_ns),
                               absl::UTCTimeZone());
  j["time_ns"] = e.time_ns;
  j["pid"] = e.pid;
  j["tid"] = e.tid;
  j["layer"] = LayerName(e.layer);
  j["op"] = OpName(e.op);
  j["effect"] = EffectName(e.effect);
  j["rule"] = e.rule < rule_names.size() ? rule_names[e.rule]
                                         : absl::StrCat("rule", e.rule);
  if (e.syscall_rule != 0) j["syscall_rule"] = e.syscall_rule - 1;
  j["target"] = BoundedString(e.target, sizeof(e.target));
  std::string key = ValueKey(e.effect, e.op);
  j[key] = e.value;
  if (key == "errno" && e.value > 0) {
    std::string_view name = fault::policy::ErrnoName(static_cast<int>(e.value));
    if (!name.empty()) j["errno_name"] = std::string(name);
  }
  return j;
}

}  // namespace fault::exec
