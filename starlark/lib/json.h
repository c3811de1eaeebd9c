// The `json` module of Starlark, as google/starlark-go's lib/json defines
// it:
//
//   json.encode(x)                                  -> string
//   json.encode_indent(x, *, prefix="", indent="\t") -> string
//   json.decode(x[, default])                       -> value
//   json.indent(s, *, prefix="", indent="\t")       -> string
//
// encode: None/True/False -> null/true/false; ints of any size as decimal
// digits; finite floats in their Starlark repr (always with '.' or an
// exponent, so they decode as floats again); strings as JSON strings;
// dicts (string keys only) as objects with the keys sorted; other
// iterables (list, tuple, range, set) as arrays; values with attributes
// (struct, records) as objects of their sorted attributes. A cycle, a
// non-finite float, a non-string key or any other value fails, naming the
// path to the offending element ("at list index 1: in dict key \"x\": ...").
//
// decode: objects become new unfrozen dicts (insertion order kept; a
// repeated key keeps its last value), arrays new lists, numbers without
// '.', 'e' or 'E' ints (any size), other numbers floats. Invalid input
// fails with "json.decode: at offset N, why" unless `default` is given, in
// which case `default` is returned; errors that are not about the JSON
// text (wrong argument type, step limit) fail regardless.
//
// Thread safety: the module value is frozen and may be shared by Threads.
#ifndef FAULT_STARLARK_LIB_JSON_H_
#define FAULT_STARLARK_LIB_JSON_H_

#include "starlark/value.h"

namespace fault::starlark {

// The frozen `json` module value.
Value NewJsonModule();

}  // namespace fault::starlark

#endif  // FAULT_STARLARK_LIB_JSON_H_
