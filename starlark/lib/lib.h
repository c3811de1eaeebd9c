// The optional library modules of Starlark (google/starlark-go's lib/json,
// lib/math and lib/time), for hosts to predeclare:
//
//   StringDict predeclared;
//   AddLibraryModules(&predeclared);  // json, math, time
//   ExecFile(thread, "x.star", src, predeclared);
#ifndef FAULT_STARLARK_LIB_LIB_H_
#define FAULT_STARLARK_LIB_LIB_H_

#include "starlark/interp.h"

namespace fault::starlark {

// Adds `json`, `math` and `time` to *predeclared (replacing entries of the
// same names).
void AddLibraryModules(StringDict* predeclared);

}  // namespace fault::starlark

#endif  // FAULT_STARLARK_LIB_LIB_H_
