#include "starlark/lib/lib.h"

#include "starlark/lib/json.h"
#include "starlark/lib/math.h"
#include "starlark/lib/time.h"

namespace fault::starlark {

void AddLibraryModules(StringDict* predeclared) {
  // Built once: the modules are frozen and immutable, so every host and
  // Thread may share them.
  static const Value* json = new Value(NewJsonModule());
  static const Value* math = new Value(NewMathModule());
  static const Value* time = new Value(NewTimeModule());
  (*predeclared)["json"] = *json;
  (*predeclared)["math"] = *math;
  (*predeclared)["time"] = *time;
}

}  // namespace fault::starlark
