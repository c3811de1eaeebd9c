// Drained fault events as the control plane sends them (fault.v1.Event),
// with the names `fault exec --events` uses (supervisor/exec/event_log.h).
// Shared by `fault exec` and `fault run`. Stateless; thread-safe.
#ifndef FAULT_SUPERVISOR_CONTROL_EVENT_CONVERT_H_
#define FAULT_SUPERVISOR_CONTROL_EVENT_CONVERT_H_

#include <string>

#include "fault/v1/control.pb.h"
#include "supervisor/control/event_hub.h"

namespace fault::control {

void ConvertEvent(const HubEvent& event, fault::v1::Event* out);

// The fault_effect number of an effect name ("latency"); -1 when unknown.
int EffectNumber(const std::string& name);

}  // namespace fault::control

#endif  // FAULT_SUPERVISOR_CONTROL_EVENT_CONVERT_H_
