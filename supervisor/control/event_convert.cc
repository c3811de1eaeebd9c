#include "supervisor/control/event_convert.h"

#include <cstring>

#include "supervisor/exec/event_log.h"

namespace fault::control {

void ConvertEvent(const HubEvent& e, fault::v1::Event* out) {
  out->set_sequence(e.sequence);
  out->set_time_ns(e.raw.time_ns);
  out->set_pid(static_cast<uint32_t>(e.raw.pid));
  out->set_tid(static_cast<uint32_t>(e.raw.tid));
  out->set_layer(fault::exec::LayerName(e.raw.layer));
  out->set_op(fault::exec::OpName(e.raw.op));
  out->set_effect(fault::exec::EffectName(e.raw.effect));
  out->set_policy(e.policy());
  out->set_target(
      std::string(e.raw.target, strnlen(e.raw.target, sizeof(e.raw.target))));
  out->set_value(e.raw.value);
  out->set_value_key(fault::exec::ValueKey(e.raw.effect, e.raw.op));
  out->set_generation(e.raw.generation);
}

int EffectNumber(const std::string& name) {
  for (int effect = 1; effect < FAULT_EFFECT_COUNT; ++effect) {
    if (fault::exec::EffectName(static_cast<uint16_t>(effect)) == name)
      return effect;
  }
  return -1;
}

}  // namespace fault::control
