// Fault events as the user sees them: names for the numbers of table.h and
// one JSON object per event (the lines of `fault exec --events FILE.jsonl`).
//
//   {"time":"2026-11-24T01:02:03.123456789Z","time_ns":1795...,"pid":42,
//    "tid":42,"layer":"shim","op":"send","effect":"latency","rule":"slow",
//    "target":"127.0.0.1:8080","delay_ns":200000000}
//
// The sampled value is written under a key that names its unit, chosen by
// the effect (see ValueKey). Stateless; thread-safe.
#ifndef FAULT_SUPERVISOR_EXEC_EVENT_LOG_H_
#define FAULT_SUPERVISOR_EXEC_EVENT_LOG_H_

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fault/table.h"

namespace fault::exec {

// "connect", "send", ...; "op<N>" for numbers this build does not know.
std::string OpName(uint16_t op);
// "latency", "deny", ...; "effect<N>" when unknown.
std::string EffectName(uint16_t effect);
// "shim", "seccomp"; "layer<N>" when unknown.
std::string LayerName(uint8_t layer);

// The JSON key of fault_event.value for `effect` on `op`: "delay_ns",
// "errno", "eai" (getaddrinfo's error code), "status" (an HTTP status),
// "bytes", or "value" where the unit depends on more than the event says
// (loss: ns on TCP, bytes on UDP).
std::string ValueKey(uint16_t effect, uint16_t op);

// `rule_names[event.rule]` names the rule (events of rules not in the list
// get "rule<N>").
nlohmann::json EventToJson(const fault_event& event,
                           const std::vector<std::string>& rule_names);

}  // namespace fault::exec

#endif  // FAULT_SUPERVISOR_EXEC_EVENT_LOG_H_
