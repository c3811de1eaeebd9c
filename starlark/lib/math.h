// The `math` module of Starlark, as google/starlark-go's lib/math defines
// it, plus a few names from Python's math module:
//
//   ceil(x) floor(x)          -> int (x itself when it is an int)
//   round(x)                  -> float, halves away from zero
//   fabs(x) sqrt(x) exp(x) gamma(x)
//   sin cos tan asin acos atan sinh cosh tanh asinh acosh atanh  (x)
//   degrees(x) radians(x)
//   atan2(y, x) hypot(x, y) pow(x, y) copysign(x, y)
//   mod(x, y)        C fmod: the sign of x
//   remainder(x, y)  IEEE 754 remainder
//   log(x[, base])   natural logarithm by default; base 1 fails
//   is_nan(x) is_inf(x) is_finite(x)  -> bool    (extensions)
//   e, pi, inf, nan                               (inf, nan: extensions)
//
// Every function takes ints or floats, positionally. Domain errors follow
// IEEE 754 as starlark-go does (sqrt(-1) and log(-1) are nan, log(0) is
// -inf), except that ceil/floor of inf or nan fail like int() does.
//
// Thread safety: the module value is frozen and may be shared by Threads.
#ifndef FAULT_STARLARK_LIB_MATH_H_
#define FAULT_STARLARK_LIB_MATH_H_

#include "starlark/value.h"

namespace fault::starlark {

// The frozen `math` module value.
Value NewMathModule();

}  // namespace fault::starlark

#endif  // FAULT_STARLARK_LIB_MATH_H_
