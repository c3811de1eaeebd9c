#include "starlark/lib/math.h"

#include <cmath>
#include <limits>
#include <numbers>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "starlark/interp.h"
#include "starlark/lib/module.h"
#include "starlark/starlark.h"

namespace fault::starlark {
namespace {

// An int or float argument as a double.
double Number(std::string_view fname, const char* param, const Value& v) {
  if (v.Is(Kind::kFloat)) return FloatOf(v);
  if (v.IsInt()) {
    try {
      return IntToDouble(v);
    } catch (EvalError& e) {
      e.msg = absl::StrCat(std::string(fname), ": for parameter \"", param,
                           "\": ", e.msg);
      throw;
    }
  }
  Fail(absl::StrCat(std::string(fname), ": for parameter \"", param, "\": got ",
                    TypeName(v), ", want float or int"));
}

using Unary = double (*)(double);
using BinaryFn = double (*)(double, double);

template <Unary F>
Value UnaryBuiltin(std::string name) {
  return NewBuiltin(name, [name](Thread&, const Value&, const Args& a) {
    CheckArgCount(name, a, 1, 1);
    return Float(F(Number(name, "x", a.pos[0])));
  });
}

template <BinaryFn F>
Value BinaryBuiltin(std::string name, const char* p1 = "x",
                    const char* p2 = "y") {
  return NewBuiltin(name, [name, p1, p2](Thread&, const Value&, const Args& a) {
    CheckArgCount(name, a, 2, 2);
    double x = Number(name, p1, a.pos[0]);
    double y = Number(name, p2, a.pos[1]);
    return Float(F(x, y));
  });
}

template <bool (*Pred)(double)>
Value PredicateBuiltin(std::string name) {
  return NewBuiltin(name, [name](Thread&, const Value&, const Args& a) {
    CheckArgCount(name, a, 1, 1);
    return Bool(Pred(Number(name, "x", a.pos[0])));
  });
}

// ceil/floor: an int stays itself (of any size); a float is rounded and
// converted exactly.
Value RoundToInt(std::string_view name, const Args& a,
                 double (*round)(double)) {
  CheckArgCount(name, a, 1, 1);
  const Value& x = a.pos[0];
  if (x.IsInt()) return x;
  if (!x.Is(Kind::kFloat))
    Fail(absl::StrCat(std::string(name), ": for parameter \"x\": got ",
                      TypeName(x), ", want float or int"));
  double d = FloatOf(x);
  if (std::isnan(d))
    Fail(absl::StrCat(std::string(name),
                      ": cannot convert float NaN to integer"));
  if (std::isinf(d))
    Fail(absl::StrCat(std::string(name),
                      ": cannot convert float infinity to integer"));
  d = round(d);
  if (std::fabs(d) < 1e18) return Int(static_cast<int64_t>(d));
  std::optional<BigInt> b = BigInt::FromDouble(d);
  return Int(std::move(*b));
}

double Fabs(double x) { return std::fabs(x); }
double Round(double x) { return std::round(x); }
double Exp(double x) { return std::exp(x); }
double Sqrt(double x) { return std::sqrt(x); }
double Acos(double x) { return std::acos(x); }
double Asin(double x) { return std::asin(x); }
double Atan(double x) { return std::atan(x); }
double Cos(double x) { return std::cos(x); }
double Sin(double x) { return std::sin(x); }
double Tan(double x) { return std::tan(x); }
double Acosh(double x) { return std::acosh(x); }
double Asinh(double x) { return std::asinh(x); }
double Atanh(double x) { return std::atanh(x); }
double Cosh(double x) { return std::cosh(x); }
double Sinh(double x) { return std::sinh(x); }
double Tanh(double x) { return std::tanh(x); }
double Gamma(double x) { return std::tgamma(x); }
// The same expressions as starlark-go, so results agree to the last bit.
double Degrees(double x) { return 360 * x / (2 * std::numbers::pi); }
double Radians(double x) { return 2 * std::numbers::pi * x / 360; }
double Copysign(double x, double y) { return std::copysign(x, y); }
double Mod(double x, double y) { return std::fmod(x, y); }
double Pow(double x, double y) { return std::pow(x, y); }
double Remainder(double x, double y) { return std::remainder(x, y); }
double Atan2(double y, double x) { return std::atan2(y, x); }
double Hypot(double x, double y) { return std::hypot(x, y); }
bool IsNan(double x) { return std::isnan(x); }
bool IsInf(double x) { return std::isinf(x); }
bool IsFinite(double x) { return std::isfinite(x); }

Value Log(Thread&, const Value&, const Args& a) {
  CheckArgCount("math.log", a, 1, 2);
  double x = Number("math.log", "x", a.pos[0]);
  if (a.pos.size() == 1) return Float(std::log(x));
  double base = Number("math.log", "base", a.pos[1]);
  if (base == 1) Fail("math.log: division by zero (log of base 1)");
  return Float(std::log(x) / std::log(base));
}

}  // namespace

Value NewMathModule() {
  StringDict m;
  m["ceil"] = NewBuiltin("math.ceil", [](Thread&, const Value&, const Args& a) {
    return RoundToInt("math.ceil", a, [](double d) { return std::ceil(d); });
  });
  m["floor"] = NewBuiltin("math.floor", [](Thread&, const Value&,
                                           const Args& a) {
    return RoundToInt("math.floor", a, [](double d) { return std::floor(d); });
  });
  m["round"] = UnaryBuiltin<Round>("math.round");
  m["fabs"] = UnaryBuiltin<Fabs>("math.fabs");
  m["exp"] = UnaryBuiltin<Exp>("math.exp");
  m["sqrt"] = UnaryBuiltin<Sqrt>("math.sqrt");
  m["acos"] = UnaryBuiltin<Acos>("math.acos");
  m["asin"] = UnaryBuiltin<Asin>("math.asin");
  m["atan"] = UnaryBuiltin<Atan>("math.atan");
  m["cos"] = UnaryBuiltin<Cos>("math.cos");
  m["sin"] = UnaryBuiltin<Sin>("math.sin");
  m["tan"] = UnaryBuiltin<Tan>("math.tan");
  m["acosh"] = UnaryBuiltin<Acosh>("math.acosh");
  m["asinh"] = UnaryBuiltin<Asinh>("math.asinh");
  m["atanh"] = UnaryBuiltin<Atanh>("math.atanh");
  m["cosh"] = UnaryBuiltin<Cosh>("math.cosh");
  m["sinh"] = UnaryBuiltin<Sinh>("math.sinh");
  m["tanh"] = UnaryBuiltin<Tanh>("math.tanh");
  m["gamma"] = UnaryBuiltin<Gamma>("math.gamma");
  m["degrees"] = UnaryBuiltin<Degrees>("math.degrees");
  m["radians"] = UnaryBuiltin<Radians>("math.radians");
  m["copysign"] = BinaryBuiltin<Copysign>("math.copysign");
  m["mod"] = BinaryBuiltin<Mod>("math.mod");
  m["pow"] = BinaryBuiltin<Pow>("math.pow");
  m["remainder"] = BinaryBuiltin<Remainder>("math.remainder");
  m["atan2"] = BinaryBuiltin<Atan2>("math.atan2", "y", "x");
  m["hypot"] = BinaryBuiltin<Hypot>("math.hypot");
  m["log"] = NewBuiltin("math.log", Log);
  m["is_nan"] = PredicateBuiltin<IsNan>("math.is_nan");
  m["is_inf"] = PredicateBuiltin<IsInf>("math.is_inf");
  m["is_finite"] = PredicateBuiltin<IsFinite>("math.is_finite");
  m["e"] = Float(std::numbers::e);
  m["pi"] = Float(std::numbers::pi);
  m["inf"] = Float(std::numeric_limits<double>::infinity());
  m["nan"] = Float(std::numeric_limits<double>::quiet_NaN());
  return NewModule("math", std::move(m));
}

}  // namespace fault::starlark
