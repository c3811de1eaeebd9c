// Operators, builtin functions and the methods of the builtin types.
#include <locale.h>
#include <wctype.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "starlark/interp.h"
#include "starlark/starlark.h"
#include "starlark/syntax.h"

namespace fault::starlark {

// ---------------------------------------------------------------- unpacking

std::string_view ArgTarget::name() const {
  std::string_view n(name_);
  if (!n.empty() && n.back() == '?') n.remove_suffix(1);
  return n;
}
bool ArgTarget::optional() const {
  std::string_view n(name_);
  return !n.empty() && n.back() == '?';
}

void ArgTarget::Set(std::string_view fname_sv, const Value& v) const {
  std::string fname(fname_sv);
  std::string name(this->name());
  auto bad = [&](const char* want) {
    Fail(absl::StrCat(fname, ": for parameter \"", name, "\": got ",
                      TypeName(v), ", want ", want));
  };
  switch (type_) {
    case kValue:
      *static_cast<Value*>(ptr_) = v;
      return;
    case kInt: {
      if (!v.IsInt()) bad("int");
      int64_t x;
      if (!IntToInt64(v, &x))
        Fail(absl::StrCat(fname, ": for parameter \"", name,
                          "\": int out of range"));
      *static_cast<int64_t*>(ptr_) = x;
      return;
    }
    case kString:
      if (!v.Is(Kind::kString)) bad("string");
      *static_cast<std::string*>(ptr_) = StrOf(v);
      return;
    case kBool:
      if (!v.Is(Kind::kBool)) bad("bool");
      *static_cast<bool*>(ptr_) = v.as<BoolObj>()->v;
      return;
    case kFloat:
      if (v.Is(Kind::kFloat))
        *static_cast<double*>(ptr_) = FloatOf(v);
      else if (v.IsInt())
        *static_cast<double*>(ptr_) = IntToDouble(v);
      else
        bad("float");
      return;
    default:
      return;
  }
}

void UnpackArgs(std::string_view fname_sv, const Args& args,
                std::initializer_list<ArgTarget> targets) {
  std::string fname(fname_sv);
  const ArgTarget* t = targets.begin();
  size_t n = targets.size();
  if (args.pos.size() > n) {
    Fail(absl::StrCat(fname, ": got ", args.pos.size(),
                      " arguments, want at most ", n));
  }
  std::vector<bool> set(n, false);
  for (size_t i = 0; i < args.pos.size(); i++) {
    t[i].Set(fname, args.pos[i]);
    set[i] = true;
  }
  for (auto& [k, v] : args.kw) {
    const std::string& name = StrOf(k);
    size_t i = 0;
    for (; i < n; i++)
      if (t[i].name() == name) break;
    if (i == n) {
      std::vector<std::string> names;
      for (size_t j = 0; j < n; j++) names.emplace_back(t[j].name());
      Fail(absl::StrCat(fname, ": unexpected keyword argument \"", name, "\"",
                        DidYouMean(name, names)));
    }
    if (set[i])
      Fail(absl::StrCat(fname, ": got multiple values for parameter \"", name,
                        "\""));
    t[i].Set(fname, v);
    set[i] = true;
  }
  for (size_t i = 0; i < n; i++)
    if (!set[i] && !t[i].optional())
      Fail(absl::StrCat(fname, ": missing argument for ",
                        std::string(t[i].name())));
}

void CheckArgCountFailed(std::string_view fname_sv, const Args& args,
                         size_t min, size_t max) {
  std::string fname(fname_sv);
  if (!args.kw.empty())
    Fail(absl::StrCat(fname, ": unexpected keyword arguments"));
  size_t n = args.pos.size();
  if (min == max)
    Fail(absl::StrCat(fname, ": got ", n, " argument", n == 1 ? "" : "s",
                      ", want ", min));
  if (n < min)
    Fail(absl::StrCat(fname, ": got ", n, " arguments, want at least ", min));
  Fail(absl::StrCat(fname, ": got ", n, " arguments, want at most ", max));
}

namespace {

// ---------------------------------------------------------------- numbers

Value IntBinary(Tok op, const Value& x, const Value& y) {
  if (x.IsSmallInt() && y.IsSmallInt()) {
    __int128 a = x.small(), b = y.small();
    switch (op) {
      case Tok::kPlus:
        return Int(static_cast<int64_t>(a + b));
      case Tok::kMinus:
        return Int(static_cast<int64_t>(a - b));
      case Tok::kStar: {
        __int128 r = a * b;
        if (r >= INT64_MIN && r <= INT64_MAX)
          return Int(static_cast<int64_t>(r));
        return Int(BigInt::Mul(BigInt(x.small()), BigInt(y.small())));
      }
      case Tok::kSlashSlash:
      case Tok::kPercent: {
        if (b == 0)
          Fail(op == Tok::kPercent ? "integer modulo by zero"
                                   : "integer division by zero");
        int64_t q = x.small() / y.small(), r = x.small() % y.small();
        if (r != 0 && ((r < 0) != (b < 0))) {
          q -= 1;
          r += b;
        }
        return Int(static_cast<int64_t>(op == Tok::kSlashSlash ? q : r));
      }
      case Tok::kAmp:
        return Int(static_cast<int64_t>(a & b));
      case Tok::kPipe:
        return Int(static_cast<int64_t>(a | b));
      case Tok::kCaret:
        return Int(static_cast<int64_t>(a ^ b));
      default:
        break;
    }
  }
  BigInt a = ToBigInt(x), b = ToBigInt(y);
  switch (op) {
    case Tok::kPlus:
      return Int(BigInt::Add(a, b));
    case Tok::kMinus:
      return Int(BigInt::Sub(a, b));
    case Tok::kStar:
      if (a.Limbs() + b.Limbs() > 40000) Fail("int too large");
      ChargeCurrent(a.Limbs() * b.Limbs() / 64);
      return Int(BigInt::Mul(a, b));
    case Tok::kSlashSlash:
    case Tok::kPercent: {
      if (b.IsZero())
        Fail(op == Tok::kPercent ? "integer modulo by zero"
                                 : "integer division by zero");
      BigInt q, r;
      BigInt::DivMod(a, b, &q, &r);
      return Int(op == Tok::kSlashSlash ? q : r);
    }
    case Tok::kAmp:
      return Int(BigInt::And(a, b));
    case Tok::kPipe:
      return Int(BigInt::Or(a, b));
    case Tok::kCaret:
      return Int(BigInt::Xor(a, b));
    case Tok::kLtLt:
    case Tok::kGtGt: {
      if (b.IsNegative()) Fail("negative shift count: " + b.ToString());
      int64_t n;
      if (!b.ToInt64(&n) || (op == Tok::kLtLt && n >= 512)) {
        if (op == Tok::kGtGt) return Int(a.IsNegative() ? -1 : 0);
        Fail("shift count too large: " + b.ToString());
      }
      if (op == Tok::kLtLt) {
        if (a.BitLength() + n > 100000) Fail("int too large");
        return Int(a.Shl(n));
      }
      return Int(a.Shr(n));
    }
    default:
      break;
  }
  Fail("bad int op");
}

double ToFloatOperand(const Value& v) {
  if (v.Is(Kind::kFloat)) return FloatOf(v);
  return IntToDouble(v);
}

Value FloatBinary(Tok op, double a, double b) {
  switch (op) {
    case Tok::kPlus:
      return Float(a + b);
    case Tok::kMinus:
      return Float(a - b);
    case Tok::kStar:
      return Float(a * b);
    case Tok::kSlash:
      if (b == 0) Fail("floating-point division by zero");
      return Float(a / b);
    case Tok::kSlashSlash:
      if (b == 0) Fail("floored division by zero");
      return Float(std::floor(a / b));
    case Tok::kPercent: {
      if (b == 0) Fail("floating-point modulo by zero");
      double r = std::fmod(a, b);
      if (r != 0 && ((r < 0) != (b < 0))) r += b;
      return Float(r);
    }
    default:
      break;
  }
  Fail("bad float op");
}

Value Repeat(const Value& seq, const Value& count) {
  int64_t n = 0;
  int64_t len = Length(seq);
  // Repeating nothing gives nothing, however many times: no loop over n.
  // Otherwise, as starlark-go: a count beyond 32 bits is "too large" as
  // such, a product beyond the limit an "excessive repeat".
  if (len > 0 && (!IntToInt64(count, &n) || n > INT32_MAX))
    Fail(absl::StrCat("repeat count ", Repr(count), " too large"));
  if (n < 0) n = 0;
  if (len > 0 && n > (int64_t{1} << 28) / len)
    Fail("excessive repeat (" + std::to_string(len) + " * " +
         std::to_string(n) + " elements)");
  ChargeCurrent(static_cast<uint64_t>(len * n) / 256);
  switch (seq.kind()) {
    case Kind::kString:
    case Kind::kBytes: {
      std::string out;
      out.reserve(len * n);
      for (int64_t i = 0; i < n; i++) out += StrOf(seq);
      return seq.Is(Kind::kString) ? Str(std::move(out))
                                   : Bytes(std::move(out));
    }
    case Kind::kList:
    case Kind::kTuple: {
      const auto& src = seq.Is(Kind::kList) ? ListOf(seq)->v : TupleOf(seq)->v;
      std::vector<Value> out;
      out.reserve(src.size() * n);
      for (int64_t i = 0; i < n; i++)
        out.insert(out.end(), src.begin(), src.end());
      if (seq.Is(Kind::kList)) return NewList(std::move(out));
      return out.empty() ? EmptyTuple() : NewTuple(std::move(out));
    }
    default:
      Fail("bad repeat");
  }
}

const char* OpName(Tok op) { return TokString(op); }

[[noreturn]] void BinaryError(Tok op, const Value& x, const Value& y) {
  Fail(absl::StrCat("unknown binary op: ", TypeName(x), " ", OpName(op), " ",
                    TypeName(y)));
}

}  // namespace

bool Contains(const Value& y, const Value& x) {
  switch (y.kind()) {
    case Kind::kString:
      if (!x.Is(Kind::kString))
        Fail(absl::StrCat("'in <string>' requires string as left operand, not ",
                          TypeName(x)));
      return StrOf(y).find(StrOf(x)) != std::string::npos;
    case Kind::kBytes:
      if (x.Is(Kind::kBytes))
        return StrOf(y).find(StrOf(x)) != std::string::npos;
      if (x.IsInt()) {
        int64_t b;
        if (!IntToInt64(x, &b) || b < 0 || b > 255)
          Fail(absl::StrCat("int in bytes: ", Repr(x), " out of range"));
        return StrOf(y).find(static_cast<char>(b)) != std::string::npos;
      }
      Fail(absl::StrCat(
          "'in <bytes>' requires bytes or int as left operand, not ",
          TypeName(x)));
    case Kind::kList:
    case Kind::kTuple: {
      const auto& v = y.Is(Kind::kList) ? ListOf(y)->v : TupleOf(y)->v;
      for (auto& e : v)
        if (Equal(e, x)) return true;
      return false;
    }
    case Kind::kDict:
      return DictOf(y)->t.Find(x) != nullptr;
    case Kind::kSet:
      return SetOf(y)->t.Find(x) != nullptr;
    case Kind::kRange: {
      auto* r = y.as<RangeObj>();
      int64_t i;
      if (x.Is(Kind::kFloat)) {
        double d = FloatOf(x);
        if (d != std::trunc(d) || std::fabs(d) > 9e18) return false;
        i = static_cast<int64_t>(d);
      } else if (!x.IsInt()) {
        return false;
      } else if (!IntToInt64(x, &i)) {
        return false;
      }
      if (r->step > 0 ? (i < r->start || i >= r->stop)
                      : (i > r->start || i <= r->stop))
        return false;
      return (static_cast<__int128>(i) - r->start) % r->step == 0;
    }
    case Kind::kStringElems: {
      Iterator it(y);
      Value e;
      while (it.Next(&e))
        if (Equal(e, x)) return true;
      return false;
    }
    default:
      Fail(absl::StrCat("unknown binary op: ", TypeName(x), " in ",
                        TypeName(y)));
  }
}

Value Binary(Tok op, const Value& x, const Value& y) {
  Kind kx = x.kind(), ky = y.kind();
  switch (op) {
    case Tok::kEqEq:
      return Bool(Equal(x, y));
    case Tok::kNe:
      return Bool(!Equal(x, y));
    case Tok::kLt:
    case Tok::kGt:
    case Tok::kLe:
    case Tok::kGe: {
      bool nan = (kx == Kind::kFloat && std::isnan(FloatOf(x))) ||
                 (ky == Kind::kFloat && std::isnan(FloatOf(y)));
      if (nan && (kx == Kind::kInt || kx == Kind::kFloat) &&
          (ky == Kind::kInt || ky == Kind::kFloat)) {
        // IEEE semantics for ordering operators on NaN.
        return Bool(false);
      }
      if (kx != ky && !((kx == Kind::kInt || kx == Kind::kFloat) &&
                        (ky == Kind::kInt || ky == Kind::kFloat)))
        Fail(absl::StrCat(TypeName(x), " ", OpName(op), " ", TypeName(y),
                          " not implemented"));
      if (kx == Kind::kSet && ky == Kind::kSet) {
        // Subset and superset: <= and >=, proper ones: < and >.
        const Value& small = op == Tok::kLt || op == Tok::kLe ? x : y;
        const Value& big = op == Tok::kLt || op == Tok::kLe ? y : x;
        bool subset = SetOf(small)->t.size() <= SetOf(big)->t.size();
        for (auto& e : SetOf(small)->t.raw_entries()) {
          if (!subset) break;
          if (!e.key.IsNull() && !SetOf(big)->t.Find(e.key, e.hash))
            subset = false;
        }
        bool proper = SetOf(small)->t.size() < SetOf(big)->t.size();
        return Bool(subset && (op == Tok::kLe || op == Tok::kGe || proper));
      }
      int c = Compare(x, y);
      switch (op) {
        case Tok::kLt:
          return Bool(c < 0);
        case Tok::kGt:
          return Bool(c > 0);
        case Tok::kLe:
          return Bool(c <= 0);
        default:
          return Bool(c >= 0);
      }
    }
    case Tok::kIn:
      return Bool(Contains(y, x));
    case Tok::kNotIn:
      return Bool(!Contains(y, x));
    default:
      break;
  }
  bool xnum = kx == Kind::kInt || kx == Kind::kFloat;
  bool ynum = ky == Kind::kInt || ky == Kind::kFloat;
  switch (op) {
    case Tok::kPlus:
      if (kx == Kind::kInt && ky == Kind::kInt) return IntBinary(op, x, y);
      if (xnum && ynum)
        return FloatBinary(op, ToFloatOperand(x), ToFloatOperand(y));
      if (kx == ky) {
        switch (kx) {
          case Kind::kString:
          case Kind::kBytes: {
            size_t n = StrOf(x).size() + StrOf(y).size();
            if (n > (size_t{1} << 28)) Fail("string too large");
            ChargeCurrent(n / 256);
            return StrConcat(StrOf(x), StrOf(y), kx);
          }
          case Kind::kList: {
            ChargeCurrent((ListOf(x)->v.size() + ListOf(y)->v.size()) / 256);
            std::vector<Value> v = ListOf(x)->v;
            v.insert(v.end(), ListOf(y)->v.begin(), ListOf(y)->v.end());
            return NewList(std::move(v));
          }
          case Kind::kTuple: {
            ChargeCurrent((TupleOf(x)->v.size() + TupleOf(y)->v.size()) / 256);
            std::vector<Value> v = TupleOf(x)->v;
            v.insert(v.end(), TupleOf(y)->v.begin(), TupleOf(y)->v.end());
            return v.empty() ? EmptyTuple() : NewTuple(std::move(v));
          }
          default:
            break;
        }
      }
      break;
    case Tok::kMinus:
      if (kx == Kind::kInt && ky == Kind::kInt) return IntBinary(op, x, y);
      if (xnum && ynum)
        return FloatBinary(op, ToFloatOperand(x), ToFloatOperand(y));
      if (kx == Kind::kSet && ky == Kind::kSet) {
        Value r = NewSet();
        SetOf(x)->t.ForEach([&](HashTable::Entry& e) {
          if (!SetOf(y)->t.Find(e.key, e.hash))
            SetOf(r)->t.Insert(e.key, e.hash, None());
        });
        return r;
      }
      break;
    case Tok::kStar:
      if (kx == Kind::kInt && ky == Kind::kInt) return IntBinary(op, x, y);
      if (xnum && ynum)
        return FloatBinary(op, ToFloatOperand(x), ToFloatOperand(y));
      if (kx == Kind::kInt && (ky == Kind::kString || ky == Kind::kBytes ||
                               ky == Kind::kList || ky == Kind::kTuple))
        return Repeat(y, x);
      if (ky == Kind::kInt && (kx == Kind::kString || kx == Kind::kBytes ||
                               kx == Kind::kList || kx == Kind::kTuple))
        return Repeat(x, y);
      break;
    case Tok::kSlash:
      if (xnum && ynum)
        return FloatBinary(op, ToFloatOperand(x), ToFloatOperand(y));
      break;
    case Tok::kSlashSlash:
      if (kx == Kind::kInt && ky == Kind::kInt) return IntBinary(op, x, y);
      if (xnum && ynum)
        return FloatBinary(op, ToFloatOperand(x), ToFloatOperand(y));
      break;
    case Tok::kPercent:
      if (kx == Kind::kInt && ky == Kind::kInt) return IntBinary(op, x, y);
      if (xnum && ynum)
        return FloatBinary(op, ToFloatOperand(x), ToFloatOperand(y));
      if (kx == Kind::kString) {
        return Str(StringFormat(StrOf(x), y));
      }
      break;
    case Tok::kAmp:
    case Tok::kPipe:
    case Tok::kCaret:
      if (kx == Kind::kInt && ky == Kind::kInt) return IntBinary(op, x, y);
      if (kx == Kind::kSet && ky == Kind::kSet) {
        Value r = NewSet();
        auto* a = SetOf(x);
        auto* b = SetOf(y);
        auto* out = SetOf(r);
        if (op == Tok::kPipe) {
          a->t.ForEach([&](HashTable::Entry& e) {
            out->t.Insert(e.key, e.hash, None());
          });
          b->t.ForEach([&](HashTable::Entry& e) {
            out->t.Insert(e.key, e.hash, None());
          });
        } else if (op == Tok::kAmp) {
          a->t.ForEach([&](HashTable::Entry& e) {
            if (b->t.Find(e.key, e.hash)) out->t.Insert(e.key, e.hash, None());
          });
        } else {
          a->t.ForEach([&](HashTable::Entry& e) {
            if (!b->t.Find(e.key, e.hash)) out->t.Insert(e.key, e.hash, None());
          });
          b->t.ForEach([&](HashTable::Entry& e) {
            if (!a->t.Find(e.key, e.hash)) out->t.Insert(e.key, e.hash, None());
          });
        }
        return r;
      }
      if (op == Tok::kPipe && kx == Kind::kDict && ky == Kind::kDict) {
        Value r = NewDict();
        DictOf(x)->t.ForEach([&](HashTable::Entry& e) {
          DictOf(r)->t.Insert(e.key, e.hash, e.value);
        });
        DictOf(y)->t.ForEach([&](HashTable::Entry& e) {
          DictOf(r)->t.Insert(e.key, e.hash, e.value);
        });
        return r;
      }
      break;
    case Tok::kLtLt:
    case Tok::kGtGt:
      if (kx == Kind::kInt && ky == Kind::kInt) {
        if (x.IsSmallInt() && y.IsSmallInt() && y.small() >= 0 &&
            y.small() < 64) {
          int64_t a = x.small(), n = y.small();
          if (op == Tok::kGtGt) return Int(a >> n);
          if (n < 62 && ((a << n) >> n) == a && Value::FitsSmall(a << n))
            return Int(a << n);
        }
        return IntBinary(op, x, y);
      }
      break;
    default:
      break;
  }
  if (kx == Kind::kHost) {
    Value r = x.as<HostValue>()->Binary(op, y, true);
    if (!r.IsNull()) return r;
  }
  if (ky == Kind::kHost) {
    Value r = y.as<HostValue>()->Binary(op, x, false);
    if (!r.IsNull()) return r;
  }
  BinaryError(op, x, y);
}

Value Unary(Tok op, const Value& x) {
  switch (op) {
    case Tok::kMinus:
      if (x.IsSmallInt()) return Int(-x.small());
      if (x.IsInt()) return Int(x.as<BigIntObj>()->v.Neg());
      if (x.Is(Kind::kFloat)) return Float(-FloatOf(x));
      break;
    case Tok::kPlus:
      if (x.IsInt() || x.Is(Kind::kFloat)) return x;
      break;
    case Tok::kTilde:
      if (x.IsSmallInt()) return Int(~x.small());
      if (x.IsInt()) return Int(BigInt::Not(x.as<BigIntObj>()->v));
      break;
    case Tok::kNot:
      return Bool(!Truth(x));
    default:
      break;
  }
  Fail(absl::StrCat("unsupported unary operation: ", OpName(op), TypeName(x)));
}

namespace {
int64_t IndexArg(const Value& index, int64_t n, const char* what) {
  if (!index.IsInt())
    Fail(absl::StrCat(what, " index: got ", TypeName(index), ", want int"));
  int64_t i;
  if (!IntToInt64(index, &i))
    Fail(absl::StrCat(what, " index ", Repr(index), " out of range"));
  int64_t j = i < 0 ? i + n : i;
  if (j < 0 || j >= n) {
    if (n == 0)
      Fail(absl::StrCat(what, " index ", i, " out of range: empty ", what));
    Fail(absl::StrCat(what, " index ", i, " out of range [", -n, ":", n - 1,
                      "]"));
  }
  return j;
}
}  // namespace

Value IndexValue(Thread& th, const Value& x, const Value& index) {
  switch (x.kind()) {
    case Kind::kList: {
      auto& v = ListOf(x)->v;
      return v[IndexArg(index, static_cast<int64_t>(v.size()), "list")];
    }
    case Kind::kTuple: {
      auto& v = TupleOf(x)->v;
      return v[IndexArg(index, static_cast<int64_t>(v.size()), "tuple")];
    }
    case Kind::kString: {
      auto& s = StrOf(x);
      return Str(std::string(
          1, s[IndexArg(index, static_cast<int64_t>(s.size()), "string")]));
    }
    case Kind::kBytes: {
      // A 1-byte bytes, as starlark-go (elems() and elem_ords() give ints).
      auto& s = StrOf(x);
      return Bytes(std::string(
          1, s[IndexArg(index, static_cast<int64_t>(s.size()), "bytes")]));
    }
    case Kind::kRange: {
      auto* r = x.as<RangeObj>();
      return Int(r->At(IndexArg(index, r->Len(), "range")));
    }
    case Kind::kDict: {
      auto* e = DictOf(x)->t.Find(index);
      if (!e) Fail(absl::StrCat("key ", Repr(index), " not in dict"));
      return e->value;
    }
    case Kind::kStringElems: {
      // elems() and elem_ords() are indexable; codepoints() are not.
      auto* e = x.as<StringElemsObj>();
      if (e->codepoints) break;
      auto& s = StrOf(e->str);
      unsigned char c = static_cast<unsigned char>(
          s[IndexArg(index, static_cast<int64_t>(s.size()), "elems")]);
      if (e->ords || e->str.Is(Kind::kBytes)) return Int(c);
      return Str(std::string(1, static_cast<char>(c)));
    }
    default:
      break;
  }
  Fail(absl::StrCat("unhandled index operation ", TypeName(x), "[",
                    TypeName(index), "]"));
}

namespace {
// Computes Python slice indices.
void SliceIndices(int64_t n, const Value& lo, const Value& hi, const Value& st,
                  int64_t* start, int64_t* stop, int64_t* step) {
  *step = 1;
  if (!st.IsNone()) {
    if (!st.IsInt())
      Fail(
          absl::StrCat("invalid slice step: got ", TypeName(st), ", want int"));
    if (!IntToInt64(st, step))
      *step = Truth(Binary(Tok::kLt, st, Int(0))) ? -INT64_MAX : INT64_MAX;
    if (*step == 0) Fail("zero is not a valid slice step");
  }
  auto clamp = [&](const Value& v, int64_t dflt, int64_t* out) {
    if (v.IsNone()) {
      *out = dflt;
      return;
    }
    if (!v.IsInt())
      Fail(
          absl::StrCat("invalid slice index: got ", TypeName(v), ", want int"));
    int64_t i;
    if (!IntToInt64(v, &i))
      i = Truth(Binary(Tok::kLt, v, Int(0))) ? INT64_MIN / 2 : INT64_MAX / 2;
    if (i < 0) i += n;
    if (*step > 0) {
      if (i < 0) i = 0;
      if (i > n) i = n;
    } else {
      if (i < -1) i = -1;
      if (i > n - 1) i = n - 1;
    }
    *out = i;
  };
  if (*step > 0) {
    clamp(lo, 0, start);
    clamp(hi, n, stop);
  } else {
    clamp(lo, n - 1, start);
    clamp(hi, -1, stop);
  }
}
}  // namespace

Value SliceValue(const Value& x, const Value& lo, const Value& hi,
                 const Value& st) {
  int64_t n = Length(x);
  Kind k = x.kind();
  if (k != Kind::kList && k != Kind::kTuple && k != Kind::kString &&
      k != Kind::kBytes && k != Kind::kRange)
    Fail(absl::StrCat("invalid slice operand ", TypeName(x)));
  int64_t start, stop, step;
  SliceIndices(n, lo, hi, st, &start, &stop, &step);
  if (k == Kind::kRange) {
    auto* r = x.as<RangeObj>();
    int64_t cnt = step > 0
                      ? (stop > start ? (stop - start - 1) / step + 1 : 0)
                      : (start > stop ? (start - stop - 1) / (-step) + 1 : 0);
    int64_t nstart = r->start + start * r->step;
    int64_t nstep = r->step * step;
    return Value::Adopt(new RangeObj(nstart, nstart + cnt * nstep, nstep));
  }
  std::vector<int64_t> idx;
  if (step > 0) {
    for (int64_t i = start; i < stop; i += step) idx.push_back(i);
  } else {
    for (int64_t i = start; i > stop; i += step) idx.push_back(i);
  }
  if (k == Kind::kString || k == Kind::kBytes) {
    const std::string& s = StrOf(x);
    std::string out;
    if (step == 1)
      out = s.substr(start, stop > start ? stop - start : 0);
    else
      for (int64_t i : idx) out.push_back(s[i]);
    return k == Kind::kString ? Str(std::move(out)) : Bytes(std::move(out));
  }
  const auto& v = k == Kind::kList ? ListOf(x)->v : TupleOf(x)->v;
  std::vector<Value> out;
  out.reserve(idx.size());
  for (int64_t i : idx) out.push_back(v[i]);
  if (k == Kind::kList) return NewList(std::move(out));
  return out.empty() ? EmptyTuple() : NewTuple(std::move(out));
}

// ---------------------------------------------------------------- formatting

namespace {
std::string FormatInt(const Value& v, int base, bool upper) {
  std::string s = ToBigInt(v).ToString(base);
  if (upper)
    for (auto& c : s)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
}  // namespace

namespace {
uint32_t NextCodePoint(const std::string& s, size_t* i, bool* valid);
}  // namespace

std::string StringFormat(std::string_view fmt, const Value& args) {
  std::string out;
  std::vector<Value> argv;
  bool is_tuple = args.Is(Kind::kTuple);
  if (is_tuple)
    argv = TupleOf(args)->v;
  else
    argv.push_back(args);
  size_t ai = 0;
  bool used_mapping = false;
  for (size_t i = 0; i < fmt.size(); i++) {
    char c = fmt[i];
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    i++;
    if (i >= fmt.size()) Fail("incomplete format");
    Value arg;
    bool have_arg = false;
    if (fmt[i] == '(') {
      size_t j = fmt.find(')', i);
      if (j == std::string_view::npos) Fail("incomplete format key");
      std::string key(fmt.substr(i + 1, j - i - 1));
      if (!args.Is(Kind::kDict)) Fail("format requires a mapping");
      auto* e = DictOf(args)->t.Find(Str(key));
      if (!e) Fail(absl::StrCat("key ", Repr(Str(key)), " not in dict"));
      arg = e->value;
      have_arg = true;
      used_mapping = true;
      i = j + 1;
      if (i >= fmt.size()) Fail("incomplete format");
    }
    // Flags, width and precision (numeric formats only).
    std::string flags;
    while (i < fmt.size() && (fmt[i] == '-' || fmt[i] == '+' || fmt[i] == ' ' ||
                              fmt[i] == '#' || fmt[i] == '0'))
      flags.push_back(fmt[i++]);
    int width = -1, prec = -1;
    while (i < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[i]))) {
      width = (width < 0 ? 0 : width) * 10 + (fmt[i++] - '0');
      if (width > 1000) Fail("format width too large");
    }
    if (i < fmt.size() && fmt[i] == '.') {
      i++;
      prec = 0;
      while (i < fmt.size() &&
             std::isdigit(static_cast<unsigned char>(fmt[i]))) {
        prec = prec * 10 + (fmt[i++] - '0');
        if (prec > 1000) Fail("format precision too large");
      }
    }
    if (i >= fmt.size()) Fail("incomplete format");
    char verb = fmt[i];
    if (verb == '%') {
      out.push_back('%');
      continue;
    }
    if (!have_arg) {
      if (args.Is(Kind::kDict) && !is_tuple) {
        arg = args;
        used_mapping = true;
        if (ai == 0) ai = 1;
      } else {
        if (ai >= argv.size()) Fail("not enough arguments for format string");
        arg = argv[ai++];
      }
    }
    std::string piece;
    switch (verb) {
      case 's':
        piece = ToStr(arg);
        break;
      case 'r':
        piece = Repr(arg);
        break;
      case 'd':
      case 'i':
      case 'o':
      case 'x':
      case 'X': {
        Value iv = arg;
        // starlark-go truncates a float for every integer verb.
        if (arg.Is(Kind::kFloat)) {
          auto b = BigInt::FromDouble(FloatOf(arg));
          if (!b)
            Fail(std::isnan(FloatOf(arg))
                     ? "cannot convert float NaN to integer"
                     : "cannot convert float infinity to integer");
          iv = Int(*b);
        }
        if (!iv.IsInt())
          Fail(absl::StrCat("%", std::string(1, verb),
                            " format requires integer: cannot convert ",
                            TypeName(arg), " to int"));
        int base = verb == 'o' ? 8 : (verb == 'x' || verb == 'X') ? 16 : 10;
        piece = FormatInt(iv, base, verb == 'X');
        bool neg = !piece.empty() && piece[0] == '-';
        std::string digits = neg ? piece.substr(1) : piece;
        if (flags.find('#') != std::string::npos && base != 10)
          digits = (base == 8 ? "0o" : verb == 'X' ? "0X" : "0x") + digits;
        std::string sign = neg                                    ? "-"
                           : flags.find('+') != std::string::npos ? "+"
                           : flags.find(' ') != std::string::npos ? " "
                                                                  : "";
        if (flags.find('0') != std::string::npos &&
            flags.find('-') == std::string::npos && width > 0) {
          while (static_cast<int>(sign.size() + digits.size()) < width)
            digits = "0" + digits;
        }
        piece = sign + digits;
        break;
      }
      case 'e':
      case 'E':
      case 'f':
      case 'F':
      case 'g':
      case 'G': {
        double d;
        if (arg.Is(Kind::kFloat))
          d = FloatOf(arg);
        else if (arg.IsInt())
          d = IntToDouble(arg);
        else
          Fail(absl::StrCat("%", std::string(1, verb),
                            " format requires float, not ", TypeName(arg)));
        piece = FormatFloat(d, verb, prec);
        // %g keeps a float looking like a float, as str() does: 123.0.
        if ((verb == 'g' || verb == 'G') &&
            piece.find_first_of(".eEnN") == std::string::npos)
          piece += ".0";
        if (flags.find('+') != std::string::npos && d >= 0) piece = "+" + piece;
        break;
      }
      case 'c': {
        if (arg.Is(Kind::kString)) {
          piece = StrOf(arg);
          size_t end = 0;
          bool valid = false;
          if (!piece.empty()) NextCodePoint(piece, &end, &valid);
          if (!valid || end != piece.size())
            Fail(absl::StrCat(
                "%c format requires a single-character string, not ",
                Repr(arg)));
        } else if (arg.IsInt()) {
          int64_t cp;
          if (!IntToInt64(arg, &cp) || cp < 0 || cp > 0x10ffff)
            Fail(absl::StrCat(
                "%c format requires a valid Unicode code point, got ",
                Repr(arg)));
          if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd;  // as chr()
          AppendUtf8(&piece, static_cast<uint32_t>(cp));
        } else {
          Fail(absl::StrCat(
              "%c format requires int or single-character string, not ",
              TypeName(arg)));
        }
        break;
      }
      default:
        Fail(absl::StrCat("unknown conversion %", std::string(1, verb)));
    }
    if (width > 0 && static_cast<int>(piece.size()) < width) {
      if (flags.find('-') != std::string::npos)
        piece += std::string(width - piece.size(), ' ');
      else
        piece = std::string(width - piece.size(), ' ') + piece;
    }
    out += piece;
  }
  // A dict operand need not be used: "A" % {"unused": 1} is "A".
  if (!used_mapping && ai < argv.size() &&
      !(ai == 0 && !is_tuple && args.Is(Kind::kDict)))
    Fail("too many arguments for format string");
  return out;
}

// ---------------------------------------------------------------- builtins

namespace {

// Decodes one UTF-8 code point at s[i]; returns -1 for invalid input.
int64_t DecodeCp(std::string_view s, size_t i, int* len) {
  unsigned char c = s[i];
  if (c < 0x80) {
    *len = 1;
    return c;
  }
  int n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
  if (n == 0 || i + n > s.size()) {
    *len = 1;
    return -1;
  }
  uint32_t cp = c & (0xff >> (n + 1));
  for (int k = 1; k < n; k++) {
    unsigned char d = s[i + k];
    if ((d & 0xc0) != 0x80) {
      *len = 1;
      return -1;
    }
    cp = (cp << 6) | (d & 0x3f);
  }
  *len = n;
  return cp;
}

Value B_len(Thread&, const Value&, const Args& a) {
  CheckArgCount("len", a, 1, 1);
  int64_t n = Length(a.pos[0]);
  if (n < 0) {
    // elems() and elem_ords() have the length of the string; codepoints()
    // has none, as in starlark-go (counting would take a pass).
    if (a.pos[0].Is(Kind::kStringElems) &&
        !a.pos[0].as<StringElemsObj>()->codepoints)
      return Int(static_cast<int64_t>(
          StrOf(a.pos[0].as<StringElemsObj>()->str).size()));
    Fail(absl::StrCat("value of type ", TypeName(a.pos[0]), " has no len"));
  }
  return Int(n);
}

Value B_abs(Thread&, const Value&, const Args& a) {
  CheckArgCount("abs", a, 1, 1);
  const Value& x = a.pos[0];
  if (x.IsInt()) {
    if (x.IsSmallInt()) return Int(x.small() < 0 ? -x.small() : x.small());
    auto& b = x.as<BigIntObj>()->v;
    return b.IsNegative() ? Int(b.Neg()) : x;
  }
  if (x.Is(Kind::kFloat)) return Float(std::fabs(FloatOf(x)));
  Fail(absl::StrCat("got ", TypeName(x), ", want int or float"));
}

Value B_any(Thread& th, const Value&, const Args& a) {
  CheckArgCount("any", a, 1, 1);
  for (auto& x : ToVector(th, a.pos[0], "any"))
    if (Truth(x)) return Bool(true);
  return Bool(false);
}
Value B_all(Thread& th, const Value&, const Args& a) {
  CheckArgCount("all", a, 1, 1);
  for (auto& x : ToVector(th, a.pos[0], "all"))
    if (!Truth(x)) return Bool(false);
  return Bool(true);
}
Value B_bool(Thread&, const Value&, const Args& a) {
  CheckArgCount("bool", a, 0, 1);
  return Bool(a.pos.empty() ? false : Truth(a.pos[0]));
}

std::string ValidUtf8(const std::string& s);
uint32_t NextCodePoint(const std::string& s, size_t* i, bool* valid);

Value B_bytes(Thread& th, const Value&, const Args& a) {
  CheckArgCount("bytes", a, 1, 1);
  const Value& x = a.pos[0];
  if (x.Is(Kind::kBytes)) return x;
  if (x.Is(Kind::kString)) {
    // Invalid UTF-8 is replaced by U+FFFD as the spec says for conversions.
    return Bytes(ValidUtf8(StrOf(x)));
  }
  std::string out;
  bool ok = Iterate(th, x, [&](const Value& e) {
    int64_t b;
    if (!e.IsInt() || !IntToInt64(e, &b) || b < 0 || b > 255)
      Fail(absl::StrCat("bytes: at index ", out.size(), ", ",
                        e.IsInt() ? "value " + Repr(e) + " out of range"
                                  : "got " + TypeName(e) + ", want int"));
    out.push_back(static_cast<char>(b));
  });
  if (!ok)
    Fail(absl::StrCat("bytes: got ", TypeName(x),
                      ", want string, bytes, or iterable of ints"));
  return Bytes(std::move(out));
}

Value B_chr(Thread&, const Value&, const Args& a) {
  CheckArgCount("chr", a, 1, 1);
  if (!a.pos[0].IsInt())
    Fail(absl::StrCat("got ", TypeName(a.pos[0]), ", want int"));
  int64_t cp;
  bool fits = IntToInt64(a.pos[0], &cp);
  if (fits && cp < 0)
    Fail(absl::StrCat("Unicode code point ", cp, " out of range (<0)"));
  if (!fits || cp > 0x10ffff) {
    std::string hex = absl::StrCat(absl::Hex(cp, absl::kZeroPad4));
    for (char& c : hex) c = static_cast<char>(std::toupper(c));
    Fail(absl::StrCat("Unicode code point ", fits ? "U+" + hex : Repr(a.pos[0]),
                      " out of range (>0x10FFFF)"));
  }
  if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd;
  std::string s;
  AppendUtf8(&s, static_cast<uint32_t>(cp));
  return Str(std::move(s));
}

Value B_ord(Thread&, const Value&, const Args& a) {
  CheckArgCount("ord", a, 1, 1);
  const Value& x = a.pos[0];
  if (x.Is(Kind::kBytes)) {
    if (StrOf(x).size() != 1)
      Fail(absl::StrCat("bytes has length ", StrOf(x).size(), ", want 1"));
    return Int(static_cast<unsigned char>(StrOf(x)[0]));
  }
  if (!x.Is(Kind::kString))
    Fail(absl::StrCat("got ", TypeName(x), ", want string"));
  const std::string& s = StrOf(x);
  if (s.empty()) Fail("string encodes 0 Unicode code points, want 1");
  int len;
  int64_t cp = DecodeCp(s, 0, &len);
  if (static_cast<size_t>(len) != s.size()) {
    size_t n = 0;
    for (size_t i = 0; i < s.size(); n++) {
      DecodeCp(s, i, &len);
      i += len;
    }
    Fail(absl::StrCat("string encodes ", n, " Unicode code points, want 1"));
  }
  return Int(cp < 0 ? 0xfffd : cp);
}

Value DictFromArgs(Thread& th, const char* fname, const Args& a, Value target) {
  if (a.pos.size() > 1)
    Fail(absl::StrCat(fname, ": got ", a.pos.size(),
                      " arguments, want at most 1"));
  auto* d = DictOf(target);
  if (!a.pos.empty()) {
    const Value& x = a.pos[0];
    if (x.Is(Kind::kDict)) {
      if (x.bits() != target.bits()) {  // d.update(d) changes nothing
        for (auto& e : DictOf(x)->t.raw_entries())
          if (!e.key.IsNull()) d->t.Insert(e.key, e.hash, e.value);
      }
    } else {
      size_t i = 0;
      bool ok = Iterate(th, x, [&](const Value& item) {
        std::vector<Value> kv;
        if (item.Is(Kind::kTuple) || item.Is(Kind::kList))
          kv = ToVector(th, item);
        else
          Fail(absl::StrCat(fname, ": dictionary update sequence element #", i,
                            " is not iterable (", TypeName(item), ")"));
        if (kv.size() != 2)
          Fail(absl::StrCat(fname, ": dictionary update sequence element #", i,
                            " has length ", kv.size(), ", want 2"));
        d->t.Insert(kv[0], kv[1]);
        i++;
      });
      if (!ok)
        Fail(absl::StrCat(fname, ": got ", TypeName(x), ", want iterable"));
    }
  }
  for (auto& [k, v] : a.kw) d->t.Insert(k, v);
  return target;
}

Value B_dict(Thread& th, const Value&, const Args& a) {
  return DictFromArgs(th, "dict", a, NewDict());
}

Value B_dir(Thread&, const Value&, const Args& a) {
  CheckArgCount("dir", a, 1, 1);
  std::vector<Value> out;
  for (auto& n : AttrNames(a.pos[0])) out.push_back(Str(n));
  return NewList(std::move(out));
}

Value B_enumerate(Thread& th, const Value&, const Args& a) {
  Value x;
  int64_t start = 0;
  UnpackArgs("enumerate", a, {{"x", &x}, {"start?", &start}});
  std::vector<Value> out;
  for (auto& e : ToVector(th, x, "enumerate"))
    out.push_back(NewTuple({Int(start++), e}));
  return NewList(std::move(out));
}

Value B_fail(Thread&, const Value&, const Args& a) {
  std::string sep = " ";
  for (auto& [k, v] : a.kw) {
    if (StrOf(k) == "sep" && v.Is(Kind::kString))
      sep = StrOf(v);
    else
      Fail(
          absl::StrCat("fail: unexpected keyword argument \"", StrOf(k), "\""));
  }
  std::string msg;
  for (size_t i = 0; i < a.pos.size(); i++)
    absl::StrAppend(&msg, i ? sep : "", ToStr(a.pos[i]));
  Fail(absl::StrCat("fail: ", msg));
}

Value ParseFloatString(std::string_view s0) {
  std::string s(s0);
  std::string low;
  for (char c : s)
    low.push_back(
        static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  std::string_view l = low;
  bool neg = false;
  std::string_view body = l;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    neg = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body == "inf" || body == "infinity")
    return Float(neg ? -HUGE_VAL : HUGE_VAL);
  if (body == "nan") return Float(std::nan(""));
  bool ok = !body.empty();
  bool digit = false;
  for (char c : body) {
    if (std::isdigit(static_cast<unsigned char>(c)))
      digit = true;
    else if (c != '.' && c != 'e' && c != '+' && c != '-')
      ok = false;
  }
  if (!ok || !digit) Fail(absl::StrCat("invalid float literal: ", s));
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size())
    Fail(absl::StrCat("invalid float literal: ", s));
  if (std::isinf(d)) Fail("floating-point number too large");
  return Float(d);
}

Value B_float(Thread&, const Value&, const Args& a) {
  CheckArgCount("float", a, 0, 1);
  if (a.pos.empty()) return Float(0.0);
  const Value& x = a.pos[0];
  switch (x.kind()) {
    case Kind::kFloat:
      return x;
    case Kind::kInt:
      return Float(IntToDouble(x));
    case Kind::kBool:
      return Float(x.as<BoolObj>()->v ? 1.0 : 0.0);
    case Kind::kString:
      return ParseFloatString(StrOf(x));
    default:
      Fail(absl::StrCat("float: got ", TypeName(x), ", want number or string"));
  }
}

Value B_getattr(Thread& th, const Value&, const Args& a) {
  CheckArgCount("getattr", a, 2, 3);
  if (!a.pos[1].Is(Kind::kString))
    Fail(absl::StrCat("getattr: for parameter name: got ", TypeName(a.pos[1]),
                      ", want string"));
  Value r = GetAttr(th, a.pos[0], StrOf(a.pos[1]));
  if (r.IsNull()) {
    if (a.pos.size() == 3) return a.pos[2];
    Fail(absl::StrCat(TypeName(a.pos[0]), " has no .", StrOf(a.pos[1]),
                      " field or method",
                      DidYouMean(StrOf(a.pos[1]), AttrNames(a.pos[0]), ".")));
  }
  return r;
}
Value B_hasattr(Thread& th, const Value&, const Args& a) {
  CheckArgCount("hasattr", a, 2, 2);
  if (!a.pos[1].Is(Kind::kString))
    Fail(absl::StrCat("hasattr: for parameter name: got ", TypeName(a.pos[1]),
                      ", want string"));
  return Bool(!GetAttr(th, a.pos[0], StrOf(a.pos[1])).IsNull());
}

Value B_hash(Thread&, const Value&, const Args& a) {
  CheckArgCount("hash", a, 1, 1);
  const Value& x = a.pos[0];
  if (!x.Is(Kind::kString) && !x.Is(Kind::kBytes))
    Fail(absl::StrCat("hash: got ", TypeName(x), ", want string or bytes"));
  const std::string& s = StrOf(x);
  if (x.Is(Kind::kBytes)) {
    // 32-bit FNV-1a over the bytes, as starlark-go.
    uint32_t h = 2166136261u;
    for (unsigned char c : s) h = (h ^ c) * 16777619u;
    return Int(static_cast<int64_t>(h));
  }
  // Java's String.hashCode: over the UTF-16 code units of the decoded text
  // (U+FFFD for each invalid byte), so that the value is the same in
  // starlark-go and Java Starlark.
  uint32_t h = 0;
  size_t i = 0;
  while (i < s.size()) {
    bool valid;
    uint32_t cp = NextCodePoint(s, &i, &valid);
    if (!valid) cp = 0xfffd;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      h = h * 31u + (0xd800 + (cp >> 10));
      h = h * 31u + (0xdc00 + (cp & 0x3ff));
    } else {
      h = h * 31u + cp;
    }
  }
  return Int(static_cast<int32_t>(h));
}

Value ParseIntString(std::string_view s, int64_t base, bool explicit_base) {
  std::string_view orig = s;
  auto bad = [&]() {
    Fail(absl::StrCat("invalid literal with base ", base, ": ",
                      std::string(orig)));
  };
  bool neg = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  int b = static_cast<int>(base);
  if (s.size() >= 2 && s[0] == '0') {
    char p = static_cast<char>(std::tolower(static_cast<unsigned char>(s[1])));
    int pb = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
    if (pb) {
      if (b == 0 || b == pb) {
        b = pb;
        s.remove_prefix(2);
      } else if (b != 16 && b < 12) {
        bad();
      }
    } else if (b == 0) {
      for (char c : s)
        if (c != '0') bad();
      b = 10;
    }
  }
  if (b == 0) b = 10;
  (void)explicit_base;
  auto r = BigInt::Parse(s, b);
  if (!r) bad();
  return Int(neg ? r->Neg() : *r);
}

Value B_int(Thread&, const Value&, const Args& a) {
  Value x, basev;
  // x is required, as in starlark-go (Python's int() would give 0).
  UnpackArgs("int", a, {{"x", &x}, {"base?", &basev}});
  if (!basev.IsNull()) {
    if (!x.Is(Kind::kString))
      Fail("int: can't convert non-string with explicit base");
    if (!basev.IsInt())
      Fail(absl::StrCat("int: for parameter \"base\": got ", TypeName(basev),
                        ", want int"));
    int64_t b;
    IntToInt64(basev, &b);
    if (b != 0 && (b < 2 || b > 36))
      Fail("int: base must be an integer >= 2 && <= 36");
    return ParseIntString(StrOf(x), b, true);
  }
  switch (x.kind()) {
    case Kind::kInt:
      return x;
    case Kind::kBool:
      return Int(x.as<BoolObj>()->v ? 1 : 0);
    case Kind::kFloat: {
      double d = FloatOf(x);
      if (std::isnan(d)) Fail("int: cannot convert float NaN to integer");
      if (std::isinf(d)) Fail("int: cannot convert float infinity to integer");
      return Int(*BigInt::FromDouble(d));
    }
    case Kind::kString:
      return ParseIntString(StrOf(x), 10, false);
    default:
      Fail(absl::StrCat("int: got ", TypeName(x),
                        ", want int, float, bool or string"));
  }
}

Value B_list(Thread& th, const Value&, const Args& a) {
  CheckArgCount("list", a, 0, 1);
  if (a.pos.empty()) return NewList();
  return NewList(ToVector(th, a.pos[0], "list"));
}
Value B_tuple(Thread& th, const Value&, const Args& a) {
  CheckArgCount("tuple", a, 0, 1);
  if (a.pos.empty()) return EmptyTuple();
  if (a.pos[0].Is(Kind::kTuple)) return a.pos[0];
  auto v = ToVector(th, a.pos[0], "tuple");
  return v.empty() ? EmptyTuple() : NewTuple(std::move(v));
}
Value B_set(Thread& th, const Value&, const Args& a) {
  CheckArgCount("set", a, 0, 1);
  Value r = NewSet();
  if (!a.pos.empty())
    for (auto& x : ToVector(th, a.pos[0], "set")) SetOf(r)->t.Insert(x, None());
  return r;
}

Value MinMax(Thread& th, const Args& a, const char* name, bool want_max) {
  Value key;
  Value dflt;
  for (auto& [k, v] : a.kw) {
    if (StrOf(k) == "key")
      key = v;
    else if (StrOf(k) == "default")
      dflt = v;
    else
      Fail(absl::StrCat(name, ": unexpected keyword argument \"", StrOf(k),
                        "\"", DidYouMean(StrOf(k), {"key", "default"})));
  }
  std::vector<Value> items;
  if (a.pos.size() == 1) {
    if (!Iterate(th, a.pos[0], [&](const Value& x) { items.push_back(x); }))
      Fail(absl::StrCat(name, ": ", TypeName(a.pos[0]),
                        " value is not iterable"));
  } else if (a.pos.empty())
    Fail(absl::StrCat(name, ": got 0 arguments, want at least 1"));
  else
    items.assign(a.pos.begin(), a.pos.end());
  if (items.empty()) {
    if (!dflt.IsNull()) return dflt;
    Fail(absl::StrCat(name, ": argument is an empty sequence"));
  }
  Value best = items[0];
  Value best_key =
      key.IsNull() || key.IsNone()
          ? best
          : CallValue(th, key, Args{std::span<const Value>(&best, 1), {}});
  for (size_t i = 1; i < items.size(); i++) {
    Value k = key.IsNull() || key.IsNone()
                  ? items[i]
                  : CallValue(th, key,
                              Args{std::span<const Value>(&items[i], 1), {}});
    int c = Compare(k, best_key);
    if (want_max ? c > 0 : c < 0) {
      best = items[i];
      best_key = k;
    }
  }
  return best;
}
Value B_max(Thread& th, const Value&, const Args& a) {
  return MinMax(th, a, "max", true);
}
Value B_min(Thread& th, const Value&, const Args& a) {
  return MinMax(th, a, "min", false);
}

Value B_print(Thread& th, const Value&, const Args& a) {
  std::string sep = " ";
  for (auto& [k, v] : a.kw) {
    if (StrOf(k) == "sep" && v.Is(Kind::kString))
      sep = StrOf(v);
    else
      Fail(absl::StrCat("print: unexpected keyword argument \"", StrOf(k),
                        "\""));
  }
  std::string msg;
  for (size_t i = 0; i < a.pos.size(); i++)
    absl::StrAppend(&msg, i ? sep : "", ToStr(a.pos[i]));
  if (th.print) th.print(th, msg);
  return None();
}

Value B_range(Thread&, const Value&, const Args& a) {
  CheckArgCount("range", a, 1, 3);
  int64_t v[3];
  for (size_t i = 0; i < a.pos.size(); i++) {
    if (!a.pos[i].IsInt())
      Fail(absl::StrCat("range: got ", TypeName(a.pos[i]), ", want int"));
    if (!IntToInt64(a.pos[i], &v[i]) || v[i] > (int64_t{1} << 60) ||
        v[i] < -(int64_t{1} << 60))
      Fail("range: argument out of range");
  }
  int64_t start = 0, stop, step = 1;
  if (a.pos.size() == 1) {
    stop = v[0];
  } else {
    start = v[0];
    stop = v[1];
    if (a.pos.size() == 3) step = v[2];
  }
  if (step == 0) Fail("range: step argument must not be zero");
  return Value::Adopt(new RangeObj(start, stop, step));
}

Value B_repr(Thread&, const Value&, const Args& a) {
  CheckArgCount("repr", a, 1, 1);
  return Str(Repr(a.pos[0]));
}
Value B_str(Thread&, const Value&, const Args& a) {
  CheckArgCount("str", a, 1, 1);
  if (a.pos[0].IsSmallInt()) {
    // Two digits at a time, backwards from the end of the buffer (no
    // length pass, unlike std::to_chars).
    static constexpr char kPairs[] =
        "0001020304050607080910111213141516171819"
        "2021222324252627282930313233343536373839"
        "4041424344454647484950515253545556575859"
        "6061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    char buf[24];
    char* end = buf + sizeof buf;
    char* p = end;
    int64_t v = a.pos[0].small();
    uint64_t u =
        v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
    while (u >= 100) {
      const char* d = kPairs + 2 * (u % 100);
      u /= 100;
      *--p = d[1];
      *--p = d[0];
    }
    if (u >= 10) {
      *--p = kPairs[2 * u + 1];
      *--p = kPairs[2 * u];
    } else {
      *--p = static_cast<char>('0' + u);
    }
    if (v < 0) *--p = '-';
    return Str(std::string_view(p, end - p));
  }
  if (a.pos[0].Is(Kind::kString)) return a.pos[0];
  // str(bytes) decodes them, each invalid byte becoming U+FFFD.
  if (a.pos[0].Is(Kind::kBytes)) return Str(ValidUtf8(StrOf(a.pos[0])));
  return Str(ToStr(a.pos[0]));
}
Value B_type(Thread&, const Value&, const Args& a) {
  CheckArgCount("type", a, 1, 1);
  return Str(TypeName(a.pos[0]));
}
Value B_reversed(Thread& th, const Value&, const Args& a) {
  CheckArgCount("reversed", a, 1, 1);
  auto v = ToVector(th, a.pos[0], "reversed");
  std::reverse(v.begin(), v.end());
  return NewList(std::move(v));
}

Value B_sorted(Thread& th, const Value&, const Args& a) {
  Value x, key;
  bool reverse = false;
  UnpackArgs("sorted", a,
             {{"iterable", &x}, {"key?", &key}, {"reverse?", &reverse}});
  auto v = ToVector(th, x, "sorted", "iterable");
  th.Charge(v.size());
  if (key.IsNull() || key.IsNone()) {
    // All small ints: sort the raw integers (equal ints are
    // indistinguishable, so stability is moot).
    if (std::all_of(v.begin(), v.end(),
                    [](const Value& e) { return e.IsSmallInt(); })) {
      std::vector<int64_t> ints;
      ints.reserve(v.size());
      for (const Value& e : v) ints.push_back(e.small());
      if (reverse)
        std::sort(ints.begin(), ints.end(), std::greater<int64_t>());
      else
        std::sort(ints.begin(), ints.end());
      for (size_t i = 0; i < ints.size(); i++) v[i] = Value::SmallInt(ints[i]);
      return NewList(std::move(v));
    }
    // Tuples are compared element by element, small ints inline; the
    // first other pair of elements falls back to the generic comparison.
    auto less = [](const Value& p, const Value& q) {
      if (p.IsSmallInt() && q.IsSmallInt()) return p.small() < q.small();
      if (!p.IsSmallInt() && !q.IsSmallInt() && p.kind() == Kind::kTuple &&
          q.kind() == Kind::kTuple) {
        const auto& x = TupleOf(p)->v;
        const auto& y = TupleOf(q)->v;
        size_t n = std::min(x.size(), y.size());
        for (size_t i = 0; i < n; i++) {
          if (!x[i].IsSmallInt() || !y[i].IsSmallInt())
            return Compare(p, q) < 0;
          if (x[i].small() != y[i].small()) return x[i].small() < y[i].small();
        }
        return x.size() < y.size();
      }
      return Compare(p, q) < 0;
    };
    if (reverse)
      std::stable_sort(v.begin(), v.end(), [&](const Value& p, const Value& q) {
        return less(q, p);
      });
    else
      std::stable_sort(v.begin(), v.end(), less);
    return NewList(std::move(v));
  }
  std::vector<std::pair<Value, Value>> kv;
  kv.reserve(v.size());
  bool small_keys = v.size() <= UINT32_MAX;
  for (auto& e : v) {
    kv.emplace_back(CallValue(th, key, Args{std::span<const Value>(&e, 1), {}}),
                    e);
    small_keys = small_keys && kv.back().first.IsSmallInt();
  }
  if (small_keys) {
    // Small-int keys: sort (key, original index) pairs; the index as the
    // tie-breaker keeps the sort stable, also when reversed.
    std::vector<std::pair<int64_t, uint32_t>> ki;
    ki.reserve(kv.size());
    for (size_t i = 0; i < kv.size(); i++)
      ki.emplace_back(kv[i].first.small(), static_cast<uint32_t>(i));
    if (reverse)
      std::sort(ki.begin(), ki.end(), [](const auto& p, const auto& q) {
        return p.first != q.first ? p.first > q.first : p.second < q.second;
      });
    else
      std::sort(ki.begin(), ki.end());
    std::vector<Value> out;
    out.reserve(ki.size());
    for (auto& [k, i] : ki) out.push_back(std::move(kv[i].second));
    return NewList(std::move(out));
  }
  std::stable_sort(kv.begin(), kv.end(), [&](const auto& p, const auto& q) {
    return reverse ? Compare(q.first, p.first) < 0
                   : Compare(p.first, q.first) < 0;
  });
  std::vector<Value> out;
  out.reserve(kv.size());
  for (auto& [k, e] : kv) out.push_back(std::move(e));
  return NewList(std::move(out));
}

Value B_zip(Thread& th, const Value&, const Args& a) {
  if (!a.kw.empty()) Fail("zip: unexpected keyword arguments");
  std::vector<std::vector<Value>> seqs;
  size_t n = SIZE_MAX;
  for (auto& x : a.pos) {
    std::vector<Value> seq;
    if (!Iterate(th, x, [&](const Value& e) { seq.push_back(e); }))
      Fail(absl::StrCat("zip: argument #", seqs.size() + 1,
                        " is not iterable: ", TypeName(x)));
    seqs.push_back(std::move(seq));
    n = std::min(n, seqs.back().size());
  }
  if (seqs.empty()) n = 0;
  std::vector<Value> out;
  for (size_t i = 0; i < n; i++) {
    std::vector<Value> t;
    for (auto& s : seqs) t.push_back(s[i]);
    out.push_back(NewTuple(std::move(t)));
  }
  return NewList(std::move(out));
}

// ---------------------------------------------------------------- string
// methods

const std::string& RecvStr(const Value& r) { return StrOf(r); }

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

// s.find(sub, from), with memchr for a one-byte needle (the common case of
// split and replace).
size_t FindSub(std::string_view s, std::string_view sub, size_t from) {
  if (sub.size() == 1) {
    if (from >= s.size()) return std::string::npos;
    const void* p = std::memchr(s.data() + from, sub[0], s.size() - from);
    return p ? static_cast<const char*>(p) - s.data() : std::string::npos;
  }
  return s.find(sub, from);
}

// Optional start/end arguments of find/count/startswith..., clamped.
void StartEnd(const char* fname, const Args& a, size_t first, size_t n,
              size_t* start, size_t* end) {
  *start = 0;
  *end = n;
  auto conv = [&](const Value& v, size_t* out) {
    if (v.IsNone()) return;
    if (!v.IsInt())
      Fail(absl::StrCat(fname, ": got ", TypeName(v), ", want int"));
    int64_t i;
    if (!IntToInt64(v, &i))
      i = v.as<BigIntObj>()->v.IsNegative() ? INT64_MIN / 2 : INT64_MAX / 2;
    if (i < 0) i += static_cast<int64_t>(n);
    if (i < 0) i = 0;
    if (i > static_cast<int64_t>(n)) i = static_cast<int64_t>(n);
    *out = static_cast<size_t>(i);
  };
  if (a.pos.size() > first) conv(a.pos[first], start);
  if (a.pos.size() > first + 1) conv(a.pos[first + 1], end);
}

std::string StrArg(const char* fname, const Value& v,
                   const char* param = nullptr) {
  if (!v.Is(Kind::kString)) {
    if (param)
      Fail(absl::StrCat(fname, ": for parameter \"", param, "\": got ",
                        TypeName(v), ", want string"));
    Fail(absl::StrCat(fname, ": got ", TypeName(v), ", want string"));
  }
  return StrOf(v);
}

Value S_find_impl(const Value& r, const Args& a, const char* fname, bool rev,
                  bool must) {
  CheckArgCount(fname, a, 1, 3);
  const std::string& s = RecvStr(r);
  std::string sub = StrArg(fname, a.pos[0]);
  size_t start, end;
  StartEnd(fname, a, 1, s.size(), &start, &end);
  size_t pos = std::string::npos;
  if (start <= end && end - start >= sub.size()) {
    std::string_view w(s.data() + start, end - start);
    size_t p = rev ? w.rfind(sub) : w.find(sub);
    if (p != std::string::npos) pos = p + start;
  }
  if (pos == std::string::npos) {
    if (must) Fail(absl::StrCat(fname, ": substring not found"));
    return Int(-1);
  }
  return Int(static_cast<int64_t>(pos));
}
Value S_find(Thread&, const Value& r, const Args& a) {
  return S_find_impl(r, a, "find", false, false);
}
Value S_rfind(Thread&, const Value& r, const Args& a) {
  return S_find_impl(r, a, "rfind", true, false);
}
Value S_index(Thread&, const Value& r, const Args& a) {
  return S_find_impl(r, a, "index", false, true);
}
Value S_rindex(Thread&, const Value& r, const Args& a) {
  return S_find_impl(r, a, "rindex", true, true);
}

Value S_count(Thread&, const Value& r, const Args& a) {
  CheckArgCount("count", a, 1, 3);
  const std::string& s = RecvStr(r);
  std::string sub = StrArg("count", a.pos[0]);
  size_t start, end;
  StartEnd("count", a, 1, s.size(), &start, &end);
  if (start > end) return Int(0);
  std::string_view w(s.data() + start, end - start);
  if (sub.empty()) {
    size_t n = 0;
    for (size_t i = 0; i < w.size(); i++)
      if ((static_cast<unsigned char>(w[i]) & 0xc0) != 0x80) n++;
    return Int(static_cast<int64_t>(n + 1));
  }
  int64_t n = 0;
  for (size_t p = w.find(sub); p != std::string::npos;
       p = w.find(sub, p + sub.size()))
    n++;
  return Int(n);
}

// The common form of startswith/endswith: one string argument, no
// start/end. Affixes are short, so the bytes are compared in a loop.
[[gnu::always_inline]] inline bool AffixFast(const Value& r, const Args& a,
                                             bool suffix, bool* result) {
  if (a.pos.size() != 1 || !a.kw.empty() || !a.pos[0].Is(Kind::kString))
    return false;
  const std::string& w = StrOf(r);
  const std::string& c = StrOf(a.pos[0]);
  if (w.size() < c.size()) {
    *result = false;
    return true;
  }
  const char* p = w.data() + (suffix ? w.size() - c.size() : 0);
  for (size_t i = 0; i < c.size(); i++) {
    if (p[i] != c[i]) {
      *result = false;
      return true;
    }
  }
  *result = true;
  return true;
}

Value S_affix(const Value& r, const Args& a, const char* fname, bool suffix) {
  CheckArgCount(fname, a, 1, 3);
  const std::string& s = RecvStr(r);
  size_t start, end;
  StartEnd(fname, a, 1, s.size(), &start, &end);
  std::string_view w = start <= end
                           ? std::string_view(s.data() + start, end - start)
                           : std::string_view();
  auto match = [&](const std::string& c) {
    return suffix ? (w.size() >= c.size() && w.substr(w.size() - c.size()) == c)
                  : w.substr(0, c.size()) == c;
  };
  if (a.pos[0].Is(Kind::kString)) return Bool(match(StrOf(a.pos[0])));
  if (!a.pos[0].Is(Kind::kTuple))
    Fail(absl::StrCat(fname, ": got ", TypeName(a.pos[0]),
                      ", want string or tuple of strings"));
  for (auto& x : TupleOf(a.pos[0])->v) StrArg(fname, x);
  for (auto& x : TupleOf(a.pos[0])->v)
    if (match(StrOf(x))) return Bool(true);
  return Bool(false);
}
Value S_startswith(Thread&, const Value& r, const Args& a) {
  bool result;
  if (AffixFast(r, a, false, &result)) return Bool(result);
  return S_affix(r, a, "startswith", false);
}
Value S_endswith(Thread&, const Value& r, const Args& a) {
  bool result;
  if (AffixFast(r, a, true, &result)) return Bool(result);
  return S_affix(r, a, "endswith", true);
}

template <typename P>
Value S_is(const Value& r, const Args& a, const char* fname, P pred) {
  CheckArgCount(fname, a, 0, 0);
  const std::string& s = RecvStr(r);
  if (s.empty()) return Bool(false);
  for (char c : s)
    if (!pred(static_cast<unsigned char>(c))) return Bool(false);
  return Bool(true);
}
Value S_isalnum(Thread&, const Value& r, const Args& a) {
  return S_is(r, a, "isalnum",
              [](unsigned char c) { return std::isalnum(c) || c >= 0x80; });
}
Value S_isalpha(Thread&, const Value& r, const Args& a) {
  return S_is(r, a, "isalpha",
              [](unsigned char c) { return std::isalpha(c) || c >= 0x80; });
}
Value S_isdigit(Thread&, const Value& r, const Args& a) {
  return S_is(r, a, "isdigit",
              [](unsigned char c) { return std::isdigit(c) != 0; });
}
Value S_isspace(Thread&, const Value& r, const Args& a) {
  return S_is(r, a, "isspace",
              [](unsigned char c) { return IsSpace(static_cast<char>(c)); });
}

// Unicode letters and cases, as starlark-go has them (Go's unicode
// package): glibc's tables through the C.UTF-8 locale, whatever locale the
// process runs in. ASCII strings keep their byte loops.
locale_t UnicodeLocale() {
  static locale_t loc =
      newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
  return loc;
}
bool IsAscii(const std::string& s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return true;
}
// The code point at s[*i], advancing *i; an invalid byte is returned as
// itself (>= 0x80, < 0x100) with `valid` false, and kept as it is.
uint32_t NextCodePoint(const std::string& s, size_t* i, bool* valid) {
  const unsigned char c = static_cast<unsigned char>(s[*i]);
  *valid = true;
  if (c < 0x80) {
    ++*i;
    return c;
  }
  // Continuation bytes after the lead byte, and the least code point each
  // length may encode (shorter encodings are invalid).
  const int n = c >= 0xF5   ? -1
                : c >= 0xF0 ? 3
                : c >= 0xE0 ? 2
                : c >= 0xC2 ? 1
                            : -1;
  static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
  if (n > 0 && *i + n < s.size()) {
    uint32_t cp = c & (0x3F >> n);
    bool ok = true;
    for (int k = 1; k <= n; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[*i + k]);
      if ((d & 0xC0) != 0x80) ok = false;
      cp = cp << 6 | (d & 0x3F);
    }
    if (ok && cp >= kMin[n] && cp <= 0x10FFFF &&
        !(cp >= 0xD800 && cp <= 0xDFFF)) {
      *i += n + 1;
      return cp;
    }
  }
  ++*i;
  *valid = false;
  return c;
}
// s with every byte that is not part of a valid UTF-8 sequence (truncated,
// overlong, a surrogate, beyond U+10FFFF) replaced by U+FFFD, as Go does.
std::string ValidUtf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    bool valid;
    NextCodePoint(s, &i, &valid);
    if (valid)
      out.append(s, start, i - start);
    else
      out.append("\xEF\xBF\xBD");
  }
  return out;
}
enum class Case { kLower, kUpper, kTitle };
uint32_t ToCase(uint32_t cp, Case to) {
  locale_t loc = UnicodeLocale();
  if (loc == static_cast<locale_t>(0)) return cp;
  wint_t w = static_cast<wint_t>(cp);
  switch (to) {
    case Case::kLower:
      return static_cast<uint32_t>(towlower_l(w, loc));
    case Case::kUpper:
      return static_cast<uint32_t>(towupper_l(w, loc));
    case Case::kTitle: {
      static wctrans_t title = wctrans_l("totitle", UnicodeLocale());
      return static_cast<uint32_t>(title != 0 ? towctrans_l(w, title, loc)
                                              : towupper_l(w, loc));
    }
  }
  return cp;
}
bool IsLetter(uint32_t cp) {
  if (cp < 0x80) return std::isalpha(static_cast<int>(cp)) != 0;
  locale_t loc = UnicodeLocale();
  return loc != static_cast<locale_t>(0) &&
         iswalpha_l(static_cast<wint_t>(cp), loc) != 0;
}
bool IsUpperCp(uint32_t cp) { return ToCase(cp, Case::kLower) != cp; }
bool IsLowerCp(uint32_t cp) { return ToCase(cp, Case::kUpper) != cp; }
// Applies `f(cp, index) -> cp` to every valid code point of s.
template <typename F>
std::string MapCodePoints(const std::string& s, F f) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0, index = 0;
  while (i < s.size()) {
    size_t start = i;
    bool valid;
    uint32_t cp = NextCodePoint(s, &i, &valid);
    if (!valid) {
      out.append(s, start, i - start);
    } else {
      AppendUtf8(&out, f(cp, index));
    }
    ++index;
  }
  return out;
}
template <typename F>
void ForCodePoints(const std::string& s, F f) {
  size_t i = 0;
  while (i < s.size()) {
    bool valid;
    uint32_t cp = NextCodePoint(s, &i, &valid);
    f(cp, valid);
  }
}

Value S_iscase(const Value& r, const Args& a, const char* fname, bool upper) {
  CheckArgCount(fname, a, 0, 0);
  bool cased = false, wrong = false;
  ForCodePoints(RecvStr(r), [&](uint32_t cp, bool valid) {
    if (!valid) return;
    if (upper ? IsLowerCp(cp) : IsUpperCp(cp)) wrong = true;
    if (IsUpperCp(cp) || IsLowerCp(cp)) cased = true;
  });
  return Bool(cased && !wrong);
}
Value S_islower(Thread&, const Value& r, const Args& a) {
  return S_iscase(r, a, "islower", false);
}
Value S_isupper(Thread&, const Value& r, const Args& a) {
  return S_iscase(r, a, "isupper", true);
}
Value S_istitle(Thread&, const Value& r, const Args& a) {
  CheckArgCount("istitle", a, 0, 0);
  bool prev_cased = false, any = false, bad = false;
  ForCodePoints(RecvStr(r), [&](uint32_t cp, bool valid) {
    const bool upper = valid && IsUpperCp(cp);
    const bool lower = valid && IsLowerCp(cp);
    if (upper) {
      // A letter whose title case differs (Ǆ, title case ǅ) does not start a
      // titled word, as in starlark-go.
      if (prev_cased || ToCase(cp, Case::kTitle) != cp) bad = true;
      prev_cased = any = true;
    } else if (lower) {
      if (!prev_cased) bad = true;
      prev_cased = any = true;
    } else {
      prev_cased = false;
    }
  });
  return Bool(any && !bad);
}

Value S_lower(Thread&, const Value& r, const Args& a) {
  CheckArgCount("lower", a, 0, 0);
  std::string s = RecvStr(r);
  if (!IsAscii(s))
    return Str(MapCodePoints(
        s, [](uint32_t cp, size_t) { return ToCase(cp, Case::kLower); }));
  // Branch-free so that the compiler vectorises it.
  for (auto& c : s)
    c = static_cast<char>(c +
                          (static_cast<unsigned char>(c - 'A') < 26 ? 32 : 0));
  return Str(std::move(s));
}
Value S_upper(Thread&, const Value& r, const Args& a) {
  CheckArgCount("upper", a, 0, 0);
  std::string s = RecvStr(r);
  if (!IsAscii(s))
    return Str(MapCodePoints(
        s, [](uint32_t cp, size_t) { return ToCase(cp, Case::kUpper); }));
  for (auto& c : s)
    c = static_cast<char>(c -
                          (static_cast<unsigned char>(c - 'a') < 26 ? 32 : 0));
  return Str(std::move(s));
}
Value S_capitalize(Thread&, const Value& r, const Args& a) {
  CheckArgCount("capitalize", a, 0, 0);
  // The first code point in title case, every other one in lower case.
  return Str(MapCodePoints(RecvStr(r), [](uint32_t cp, size_t index) {
    return ToCase(cp, index == 0 ? Case::kTitle : Case::kLower);
  }));
}
Value S_title(Thread&, const Value& r, const Args& a) {
  CheckArgCount("title", a, 0, 0);
  // Title case at the start of a word (after a code point that is not a
  // letter), lower case elsewhere.
  bool prev = false;
  return Str(MapCodePoints(RecvStr(r), [&prev](uint32_t cp, size_t) {
    if (!IsLetter(cp)) {
      prev = false;
      return cp;
    }
    uint32_t out = ToCase(cp, prev ? Case::kLower : Case::kTitle);
    prev = true;
    return out;
  }));
}

Value S_strip_impl(const Value& r, const Args& a, const char* fname, bool left,
                   bool right) {
  CheckArgCount(fname, a, 0, 1);
  const std::string& s = RecvStr(r);
  std::string cut;
  bool ws = true;
  if (!a.pos.empty() && !a.pos[0].IsNone()) {
    cut = StrArg(fname, a.pos[0]);
    ws = cut.empty();  // as starlark-go: "" strips whitespace too
  }
  auto strip = [&](char c) {
    return ws ? IsSpace(c) : cut.find(c) != std::string::npos;
  };
  size_t i = 0, j = s.size();
  if (left)
    while (i < j && strip(s[i])) i++;
  if (right)
    while (j > i && strip(s[j - 1])) j--;
  return Str(s.substr(i, j - i));
}
Value S_strip(Thread&, const Value& r, const Args& a) {
  return S_strip_impl(r, a, "strip", true, true);
}
Value S_lstrip(Thread&, const Value& r, const Args& a) {
  return S_strip_impl(r, a, "lstrip", true, false);
}
Value S_rstrip(Thread&, const Value& r, const Args& a) {
  return S_strip_impl(r, a, "rstrip", false, true);
}

Value S_join(Thread& th, const Value& r, const Args& a) {
  CheckArgCount("join", a, 1, 1);
  const std::string& sep = RecvStr(r);
  std::string out;
  size_t i = 0;
  if (a.pos[0].Is(Kind::kList) || a.pos[0].Is(Kind::kTuple)) {
    const auto& v =
        a.pos[0].Is(Kind::kList) ? ListOf(a.pos[0])->v : TupleOf(a.pos[0])->v;
    size_t total = v.empty() ? 0 : sep.size() * (v.size() - 1);
    for (auto& x : v) {
      if (!x.Is(Kind::kString))
        Fail(absl::StrCat("join: in list, want string, got ", TypeName(x)));
      total += StrOf(x).size();
    }
    if (total > (size_t{1} << 28)) Fail("join: result too large");
    th.Charge(v.size() / 16);
    out.resize(total);
    char* p = out.data();
    for (auto& x : v) {
      if (i++) {
        if (sep.size() == 1) {
          *p++ = sep[0];
        } else {
          std::memcpy(p, sep.data(), sep.size());
          p += sep.size();
        }
      }
      const std::string& xs = StrOf(x);
      std::memcpy(p, xs.data(), xs.size());
      p += xs.size();
    }
    return Str(std::move(out));
  }
  bool ok = Iterate(th, a.pos[0], [&](const Value& x) {
    if (!x.Is(Kind::kString))
      Fail(absl::StrCat("join: in list, want string, got ", TypeName(x)));
    if (i++) out += sep;
    out += StrOf(x);
  });
  if (!ok)
    Fail(absl::StrCat("join: for parameter 1: got ", TypeName(a.pos[0]),
                      ", want iterable"));
  return Str(std::move(out));
}

Value S_partition_impl(const Value& r, const Args& a, const char* fname,
                       bool rev) {
  CheckArgCount(fname, a, 1, 1);
  const std::string& s = RecvStr(r);
  std::string sep = StrArg(fname, a.pos[0]);
  if (sep.empty()) Fail(absl::StrCat(fname, ": empty separator"));
  size_t p = rev ? s.rfind(sep) : s.find(sep);
  if (p == std::string::npos) {
    if (rev) return NewTuple({Str(""), Str(""), r});
    return NewTuple({r, Str(""), Str("")});
  }
  return NewTuple(
      {Str(s.substr(0, p)), Str(sep), Str(s.substr(p + sep.size()))});
}
Value S_partition(Thread&, const Value& r, const Args& a) {
  return S_partition_impl(r, a, "partition", false);
}
Value S_rpartition(Thread&, const Value& r, const Args& a) {
  return S_partition_impl(r, a, "rpartition", true);
}

Value S_removeprefix(Thread&, const Value& r, const Args& a) {
  CheckArgCount("removeprefix", a, 1, 1);
  const std::string& s = RecvStr(r);
  std::string p = StrArg("removeprefix", a.pos[0]);
  if (s.compare(0, p.size(), p) == 0 && s.size() >= p.size())
    return Str(s.substr(p.size()));
  return r;
}
Value S_removesuffix(Thread&, const Value& r, const Args& a) {
  CheckArgCount("removesuffix", a, 1, 1);
  const std::string& s = RecvStr(r);
  std::string p = StrArg("removesuffix", a.pos[0]);
  if (s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0)
    return Str(s.substr(0, s.size() - p.size()));
  return r;
}

Value S_replace(Thread& th, const Value& r, const Args& a) {
  CheckArgCount("replace", a, 2, 3);
  const std::string& s = RecvStr(r);
  std::string old = StrArg("replace", a.pos[0]),
              nw = StrArg("replace", a.pos[1]);
  int64_t count = -1;
  if (a.pos.size() == 3) {
    if (!a.pos[2].IsInt())
      Fail(absl::StrCat("replace: for parameter \"count\": got ",
                        TypeName(a.pos[2]), ", want int"));
    IntToInt64(a.pos[2], &count);
  }
  std::string out;
  if (old.empty()) {
    // Insert between every code point (like Python).
    int64_t n = 0;
    size_t i = 0;
    while (i <= s.size()) {
      if (count < 0 || n < count) {
        out += nw;
        n++;
      }
      if (i == s.size()) break;
      int len;
      DecodeCp(s, i, &len);
      out += s.substr(i, len);
      i += len;
      if (out.size() > (size_t{1} << 28)) Fail("replace: result too large");
    }
    return Str(std::move(out));
  }
  size_t i = 0;
  int64_t n = 0;
  const std::string_view sv(s);
  out.reserve(s.size());
  while (count < 0 || n < count) {
    size_t p = FindSub(sv, old, i);
    if (p == std::string::npos) break;
    out.append(s, i, p - i);
    out += nw;
    i = p + old.size();
    n++;
    if (out.size() > (size_t{1} << 28)) Fail("replace: result too large");
  }
  out.append(s, i, std::string::npos);
  th.Charge(out.size() / 64);
  return Str(std::move(out));
}

Value S_split_impl(const Value& r, const Args& a, const char* fname, bool rev) {
  Value sepv, maxv;
  UnpackArgs(fname, a, {{"sep?", &sepv}, {"maxsplit?", &maxv}});
  const std::string& s = RecvStr(r);
  int64_t maxsplit = -1;
  if (!maxv.IsNull() && !maxv.IsNone()) {
    if (!maxv.IsInt())
      Fail(absl::StrCat(fname, ": for parameter \"maxsplit\": got ",
                        TypeName(maxv), ", want int"));
    IntToInt64(maxv, &maxsplit);
  }
  std::vector<Value> out;
  if (sepv.IsNull() || sepv.IsNone()) {
    // Whitespace splitting.
    std::vector<std::pair<size_t, size_t>> words;
    if (!rev) {
      size_t i = 0;
      while (i < s.size()) {
        while (i < s.size() && IsSpace(s[i])) i++;
        if (i >= s.size()) break;
        if (maxsplit >= 0 && static_cast<int64_t>(words.size()) == maxsplit) {
          words.emplace_back(i, s.size());  // the rest keeps its trailing space
          break;
        }
        size_t j = i;
        while (j < s.size() && !IsSpace(s[j])) j++;
        words.emplace_back(i, j);
        i = j;
      }
      out.reserve(words.size());
      for (auto& [b, e] : words)
        out.push_back(Str(std::string_view(s).substr(b, e - b)));
    } else {
      size_t j = s.size();
      while (j > 0) {
        while (j > 0 && IsSpace(s[j - 1])) j--;
        if (j == 0) break;
        if (maxsplit >= 0 && static_cast<int64_t>(words.size()) == maxsplit) {
          words.emplace_back(0, j);  // the rest keeps its leading space
          break;
        }
        size_t i = j;
        while (i > 0 && !IsSpace(s[i - 1])) i--;
        words.emplace_back(i, j);
        j = i;
      }
      std::reverse(words.begin(), words.end());
      out.reserve(words.size());
      for (auto& [b, e] : words)
        out.push_back(Str(std::string_view(s).substr(b, e - b)));
    }
    return NewList(std::move(out));
  }
  std::string sep = StrArg(fname, sepv, "sep");
  if (sep.empty()) Fail(absl::StrCat(fname, ": empty separator"));
  if (!rev) {
    size_t i = 0;
    int64_t n = 0;
    const std::string_view sv(s);
    for (;;) {
      size_t p = maxsplit >= 0 && n >= maxsplit ? std::string::npos
                                                : FindSub(sv, sep, i);
      if (p == std::string::npos) {
        out.push_back(Str(sv.substr(i)));
        break;
      }
      out.push_back(Str(sv.substr(i, p - i)));
      i = p + sep.size();
      n++;
    }
  } else {
    size_t j = s.size();
    int64_t n = 0;
    for (;;) {
      size_t p = std::string::npos;
      if (!(maxsplit >= 0 && n >= maxsplit) && j >= sep.size())
        p = s.rfind(sep, j - sep.size());
      if (p == std::string::npos) {
        out.push_back(Str(s.substr(0, j)));
        break;
      }
      out.push_back(Str(s.substr(p + sep.size(), j - p - sep.size())));
      j = p;
      n++;
    }
    std::reverse(out.begin(), out.end());
  }
  return NewList(std::move(out));
}
Value S_split(Thread&, const Value& r, const Args& a) {
  return S_split_impl(r, a, "split", false);
}
Value S_rsplit(Thread&, const Value& r, const Args& a) {
  return S_split_impl(r, a, "rsplit", true);
}

Value S_splitlines(Thread&, const Value& r, const Args& a) {
  bool keepends = false;
  UnpackArgs("splitlines", a, {{"keepends?", &keepends}});
  const std::string& s = RecvStr(r);
  std::vector<Value> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && s[j] != '\n' && s[j] != '\r') j++;
    size_t end = j;
    if (j < s.size()) {
      if (s[j] == '\r' && j + 1 < s.size() && s[j + 1] == '\n')
        j += 2;
      else
        j += 1;
    }
    out.push_back(Str(s.substr(i, (keepends ? j : end) - i)));
    i = j;
  }
  return NewList(std::move(out));
}

Value S_elems(Thread&, const Value& r, const Args& a) {
  CheckArgCount("elems", a, 0, 0);
  return Value::Adopt(new StringElemsObj(r, false, false));
}
Value S_elem_ords(Thread&, const Value& r, const Args& a) {
  CheckArgCount("elem_ords", a, 0, 0);
  return Value::Adopt(new StringElemsObj(r, false, true));
}
Value S_codepoints(Thread&, const Value& r, const Args& a) {
  CheckArgCount("codepoints", a, 0, 0);
  return Value::Adopt(new StringElemsObj(r, true, false));
}
Value S_codepoint_ords(Thread&, const Value& r, const Args& a) {
  CheckArgCount("codepoint_ords", a, 0, 0);
  return Value::Adopt(new StringElemsObj(r, true, true));
}

Value S_format(Thread& th, const Value& r, const Args& a) {
  const std::string& f = RecvStr(r);
  std::string out;
  size_t auto_idx = 0;
  bool used_auto = false, used_manual = false;
  for (size_t i = 0; i < f.size(); i++) {
    char c = f[i];
    if (c == '}') {
      if (i + 1 < f.size() && f[i + 1] == '}') {
        out.push_back('}');
        i++;
        continue;
      }
      Fail("format: single '}' in format");
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < f.size() && f[i + 1] == '{') {
      out.push_back('{');
      i++;
      continue;
    }
    size_t j = f.find('}', i);
    if (j == std::string::npos) Fail("format: unmatched '{' in format");
    std::string field = f.substr(i + 1, j - i - 1);
    i = j;
    char conv = 's';
    size_t bang = field.find('!');
    if (bang != std::string::npos) {
      std::string cs = field.substr(bang + 1);
      if (cs != "s" && cs != "r")
        Fail(absl::StrCat("format: unknown conversion \"!", cs, "\""));
      conv = cs[0];
      field = field.substr(0, bang);
    }
    if (field.find(':') != std::string::npos)
      Fail("format: format spec features not supported in replacement fields");
    Value arg;
    if (field.empty()) {
      if (used_manual)
        Fail(
            "format: cannot switch from manual field specification to "
            "automatic field numbering");
      used_auto = true;
      if (auto_idx >= a.pos.size())
        Fail(absl::StrCat("format: tuple index out of range"));
      arg = a.pos[auto_idx++];
    } else if (std::isdigit(static_cast<unsigned char>(field[0]))) {
      if (used_auto)
        Fail(
            "format: cannot switch from automatic field numbering to manual "
            "field specification");
      used_manual = true;
      size_t idx = 0;
      for (char d : field) {
        if (!std::isdigit(static_cast<unsigned char>(d)))
          Fail(absl::StrCat("format: invalid field name \"", field, "\""));
        idx = idx * 10 + (d - '0');
        if (idx > 1000000) break;
      }
      if (idx >= a.pos.size())
        Fail(absl::StrCat("format: tuple index out of range"));
      arg = a.pos[idx];
    } else {
      bool found = false;
      for (auto& [k, v] : a.kw)
        if (StrOf(k) == field) {
          arg = v;
          found = true;
        }
      if (!found) Fail(absl::StrCat("format: keyword ", field, " not found"));
    }
    out += conv == 'r' ? Repr(arg) : ToStr(arg);
  }
  (void)th;
  return Str(std::move(out));
}

Value Bytes_elems(Thread&, const Value& r, const Args& a) {
  CheckArgCount("elems", a, 0, 0);
  return Value::Adopt(new StringElemsObj(r, false, true));
}

// ---------------------------------------------------------------- list methods

Value L_append(Thread&, const Value& r, const Args& a) {
  CheckArgCount("append", a, 1, 1);
  auto* l = ListOf(r);
  if (l->frozen() || l->iterating) CheckListMutable(l, "append to");
  l->v.push_back(a.pos[0]);
  return None();
}
Value L_clear(Thread&, const Value& r, const Args& a) {
  CheckArgCount("clear", a, 0, 0);
  auto* l = ListOf(r);
  CheckListMutable(l, "clear");
  std::vector<Value> old;
  old.swap(l->v);
  return None();
}
Value L_extend(Thread& th, const Value& r, const Args& a) {
  CheckArgCount("extend", a, 1, 1);
  auto* l = ListOf(r);
  CheckListMutable(l, "extend");
  auto items = ToVector(th, a.pos[0], "extend");
  l->v.insert(l->v.end(), items.begin(), items.end());
  return None();
}
Value L_index(Thread&, const Value& r, const Args& a) {
  CheckArgCount("index", a, 1, 3);
  auto& v = ListOf(r)->v;
  size_t start, end;
  StartEnd("index", a, 1, v.size(), &start, &end);
  for (size_t i = start; i < end; i++)
    if (Equal(v[i], a.pos[0])) return Int(static_cast<int64_t>(i));
  Fail(absl::StrCat("index: value not in list"));
}
Value L_insert(Thread&, const Value& r, const Args& a) {
  CheckArgCount("insert", a, 2, 2);
  auto* l = ListOf(r);
  CheckListMutable(l, "insert into");
  if (!a.pos[0].IsInt())
    Fail(absl::StrCat("insert: for parameter \"index\": got ",
                      TypeName(a.pos[0]), ", want int"));
  int64_t n = static_cast<int64_t>(l->v.size()), i;
  if (!IntToInt64(a.pos[0], &i))
    i = a.pos[0].as<BigIntObj>()->v.IsNegative() ? -n - 1 : n;
  if (i < 0) i += n;
  if (i < 0) i = 0;
  if (i > n) i = n;
  l->v.insert(l->v.begin() + i, a.pos[1]);
  return None();
}
Value L_pop(Thread&, const Value& r, const Args& a) {
  CheckArgCount("pop", a, 0, 1);
  auto* l = ListOf(r);
  CheckListMutable(l, "pop from");
  int64_t n = static_cast<int64_t>(l->v.size());
  int64_t i = n - 1;
  if (!a.pos.empty()) {
    if (!a.pos[0].IsInt())
      Fail(absl::StrCat("pop: got ", TypeName(a.pos[0]), ", want int"));
    if (!IntToInt64(a.pos[0], &i)) i = INT64_MAX;
    if (i < 0) i += n;
  }
  if (n == 0) Fail("pop: list is empty");
  if (i < 0 || i >= n)
    Fail(absl::StrCat("pop: index ", Repr(a.pos[0]), " out of range [", -n, ":",
                      n - 1, "]"));
  Value x = std::move(l->v[i]);
  l->v.erase(l->v.begin() + i);
  return x;
}
Value L_remove(Thread&, const Value& r, const Args& a) {
  CheckArgCount("remove", a, 1, 1);
  auto* l = ListOf(r);
  CheckListMutable(l, "remove from");
  for (size_t i = 0; i < l->v.size(); i++) {
    if (Equal(l->v[i], a.pos[0])) {
      l->v.erase(l->v.begin() + i);
      return None();
    }
  }
  Fail(absl::StrCat("remove: element not found"));
}

// ---------------------------------------------------------------- dict methods

Value D_clear(Thread&, const Value& r, const Args& a) {
  CheckArgCount("clear", a, 0, 0);
  auto* d = DictOf(r);
  CheckDictMutable(d, "clear");
  d->t.Clear();
  return None();
}
Value D_get(Thread&, const Value& r, const Args& a) {
  CheckArgCount("get", a, 1, 2);
  auto* e = DictOf(r)->t.Find(a.pos[0]);
  if (e) return e->value;
  return a.pos.size() > 1 ? a.pos[1] : None();
}
Value D_items(Thread&, const Value& r, const Args& a) {
  CheckArgCount("items", a, 0, 0);
  std::vector<Value> out;
  out.reserve(DictOf(r)->t.size());
  DictOf(r)->t.ForEach([&](HashTable::Entry& e) {
    out.push_back(NewTuple({e.key, e.value}));
  });
  return NewList(std::move(out));
}
Value D_keys(Thread&, const Value& r, const Args& a) {
  CheckArgCount("keys", a, 0, 0);
  std::vector<Value> out;
  out.reserve(DictOf(r)->t.size());
  DictOf(r)->t.ForEach([&](HashTable::Entry& e) { out.push_back(e.key); });
  return NewList(std::move(out));
}
Value D_values(Thread&, const Value& r, const Args& a) {
  CheckArgCount("values", a, 0, 0);
  std::vector<Value> out;
  out.reserve(DictOf(r)->t.size());
  DictOf(r)->t.ForEach([&](HashTable::Entry& e) { out.push_back(e.value); });
  return NewList(std::move(out));
}
Value D_pop(Thread&, const Value& r, const Args& a) {
  CheckArgCount("pop", a, 1, 2);
  auto* d = DictOf(r);
  Hash(a.pos[0]);
  CheckDictMutable(d, "delete from");
  Value old;
  if (d->t.Erase(a.pos[0], &old)) return old;
  if (a.pos.size() > 1) return a.pos[1];
  Fail("pop: missing key");
}
Value D_popitem(Thread&, const Value& r, const Args& a) {
  CheckArgCount("popitem", a, 0, 0);
  auto* d = DictOf(r);
  CheckDictMutable(d, "delete from");
  if (d->t.size() == 0) Fail("popitem: empty dict");
  Value k, v;
  for (auto& e : d->t.raw_entries()) {
    if (!e.key.IsNull()) {
      k = e.key;
      break;
    }
  }
  d->t.Erase(k, &v);
  return NewTuple({k, v});
}
Value D_setdefault(Thread&, const Value& r, const Args& a) {
  CheckArgCount("setdefault", a, 1, 2);
  auto* d = DictOf(r);
  auto* e = d->t.Find(a.pos[0]);
  if (e) return e->value;
  CheckDictMutable(d);
  Value v = a.pos.size() > 1 ? a.pos[1] : None();
  d->t.Insert(a.pos[0], v);
  return v;
}
Value D_update(Thread& th, const Value& r, const Args& a) {
  CheckDictMutable(DictOf(r));
  DictFromArgs(th, "update", a, r);
  return None();
}

// ---------------------------------------------------------------- set methods

Value SetArg(Thread& th, const Value& x, const char* fname) {
  if (x.Is(Kind::kSet)) return x;
  Value s = NewSet();
  for (auto& e : ToVector(th, x, fname)) SetOf(s)->t.Insert(e, None());
  return s;
}
Value Set_add(Thread&, const Value& r, const Args& a) {
  CheckArgCount("add", a, 1, 1);
  auto* s = SetOf(r);
  uint64_t h = Hash(a.pos[0]);
  CheckSetMutable(s);  // even when the element is there already
  if (s->t.Find(a.pos[0], h)) return None();
  s->t.Insert(a.pos[0], h, None());
  return None();
}
Value Set_clear(Thread&, const Value& r, const Args& a) {
  CheckArgCount("clear", a, 0, 0);
  if (SetOf(r)->t.size() == 0) return None();  // allowed on a frozen set
  CheckSetMutable(SetOf(r), "clear");
  SetOf(r)->t.Clear();
  return None();
}
Value Set_discard(Thread&, const Value& r, const Args& a) {
  CheckArgCount("discard", a, 1, 1);
  auto* s = SetOf(r);
  Hash(a.pos[0]);
  CheckSetMutable(s, "delete from");  // even when the element is absent
  if (!s->t.Find(a.pos[0])) return None();
  s->t.Erase(a.pos[0]);
  return None();
}
Value Set_remove(Thread&, const Value& r, const Args& a) {
  CheckArgCount("remove", a, 1, 1);
  auto* s = SetOf(r);
  CheckSetMutable(s, "delete from");
  if (!s->t.Find(a.pos[0]))
    Fail(absl::StrCat("remove: missing key ", Repr(a.pos[0])));
  s->t.Erase(a.pos[0]);
  return None();
}
Value Set_pop(Thread&, const Value& r, const Args& a) {
  CheckArgCount("pop", a, 0, 0);
  auto* s = SetOf(r);
  CheckSetMutable(s, "delete from");
  if (s->t.size() == 0) Fail("pop: empty set");
  Value k;
  for (auto& e : s->t.raw_entries())
    if (!e.key.IsNull()) {
      k = e.key;
      break;
    }
  s->t.Erase(k);
  return k;
}
Value Set_binop(Thread& th, const Value& r, const Args& a, const char* fname,
                Tok op) {
  Value acc = r;
  if (a.pos.empty() && op != Tok::kPipe && op != Tok::kAmp && op != Tok::kMinus)
    CheckArgCount(fname, a, 1, 1);
  if (!a.kw.empty())
    Fail(absl::StrCat(fname, ": unexpected keyword arguments"));
  if (a.pos.empty()) return Binary(Tok::kPipe, r, NewSet());
  for (auto& x : a.pos) acc = Binary(op, acc, SetArg(th, x, fname));
  return acc;
}
Value Set_union(Thread& th, const Value& r, const Args& a) {
  return Set_binop(th, r, a, "union", Tok::kPipe);
}
Value Set_intersection(Thread& th, const Value& r, const Args& a) {
  return Set_binop(th, r, a, "intersection", Tok::kAmp);
}
Value Set_difference(Thread& th, const Value& r, const Args& a) {
  return Set_binop(th, r, a, "difference", Tok::kMinus);
}
Value Set_symmetric_difference(Thread& th, const Value& r, const Args& a) {
  CheckArgCount("symmetric_difference", a, 1, 1);
  return Binary(Tok::kCaret, r, SetArg(th, a.pos[0], "symmetric_difference"));
}
Value Set_update_impl(Thread& th, const Value& r, const Args& a,
                      const char* fname, Tok op) {
  auto* s = SetOf(r);
  CheckSetMutable(s);
  Value res =
      op == Tok::kCaret
          ? Binary(op, r,
                   SetArg(th, a.pos.empty() ? NewSet() : a.pos[0], fname))
          : Set_binop(th, r, a, fname, op);
  HashTable nt;
  SetOf(res)->t.ForEach(
      [&](HashTable::Entry& e) { nt.Insert(e.key, e.hash, None()); });
  s->t = std::move(nt);
  return None();
}
Value Set_update(Thread& th, const Value& r, const Args& a) {
  return Set_update_impl(th, r, a, "update", Tok::kPipe);
}
Value Set_intersection_update(Thread& th, const Value& r, const Args& a) {
  return Set_update_impl(th, r, a, "intersection_update", Tok::kAmp);
}
Value Set_difference_update(Thread& th, const Value& r, const Args& a) {
  return Set_update_impl(th, r, a, "difference_update", Tok::kMinus);
}
Value Set_symmetric_difference_update(Thread& th, const Value& r,
                                      const Args& a) {
  CheckArgCount("symmetric_difference_update", a, 1, 1);
  return Set_update_impl(th, r, a, "symmetric_difference_update", Tok::kCaret);
}
Value Set_issubset(Thread& th, const Value& r, const Args& a) {
  CheckArgCount("issubset", a, 1, 1);
  Value o = SetArg(th, a.pos[0], "issubset");
  bool ok = true;
  SetOf(r)->t.ForEach([&](HashTable::Entry& e) {
    if (ok && !SetOf(o)->t.Find(e.key, e.hash)) ok = false;
  });
  return Bool(ok);
}
Value Set_issuperset(Thread& th, const Value& r, const Args& a) {
  CheckArgCount("issuperset", a, 1, 1);
  Value o = SetArg(th, a.pos[0], "issuperset");
  bool ok = true;
  SetOf(o)->t.ForEach([&](HashTable::Entry& e) {
    if (ok && !SetOf(r)->t.Find(e.key, e.hash)) ok = false;
  });
  return Bool(ok);
}
Value Set_isdisjoint(Thread& th, const Value& r, const Args& a) {
  CheckArgCount("isdisjoint", a, 1, 1);
  Value o = SetArg(th, a.pos[0], "isdisjoint");
  bool ok = true;
  SetOf(r)->t.ForEach([&](HashTable::Entry& e) {
    if (ok && SetOf(o)->t.Find(e.key, e.hash)) ok = false;
  });
  return Bool(ok);
}

using MethodTable = std::vector<MethodEntry>;

const MethodTable& Methods(Kind k) {
  static const MethodTable kString = {
      {Kind::kString, "capitalize", S_capitalize},
      {Kind::kString, "codepoint_ords", S_codepoint_ords},
      {Kind::kString, "codepoints", S_codepoints},
      {Kind::kString, "count", S_count},
      {Kind::kString, "elem_ords", S_elem_ords},
      {Kind::kString, "elems", S_elems},
      {Kind::kString, "endswith", S_endswith},
      {Kind::kString, "find", S_find},
      {Kind::kString, "format", S_format},
      {Kind::kString, "index", S_index},
      {Kind::kString, "isalnum", S_isalnum},
      {Kind::kString, "isalpha", S_isalpha},
      {Kind::kString, "isdigit", S_isdigit},
      {Kind::kString, "islower", S_islower},
      {Kind::kString, "isspace", S_isspace},
      {Kind::kString, "istitle", S_istitle},
      {Kind::kString, "isupper", S_isupper},
      {Kind::kString, "join", S_join},
      {Kind::kString, "lower", S_lower},
      {Kind::kString, "lstrip", S_lstrip},
      {Kind::kString, "partition", S_partition},
      {Kind::kString, "removeprefix", S_removeprefix},
      {Kind::kString, "removesuffix", S_removesuffix},
      {Kind::kString, "replace", S_replace},
      {Kind::kString, "rfind", S_rfind},
      {Kind::kString, "rindex", S_rindex},
      {Kind::kString, "rpartition", S_rpartition},
      {Kind::kString, "rsplit", S_rsplit},
      {Kind::kString, "rstrip", S_rstrip},
      {Kind::kString, "split", S_split},
      {Kind::kString, "splitlines", S_splitlines},
      {Kind::kString, "startswith", S_startswith},
      {Kind::kString, "strip", S_strip},
      {Kind::kString, "title", S_title},
      {Kind::kString, "upper", S_upper},
  };
  static const MethodTable kBytes = {{Kind::kBytes, "elems", Bytes_elems}};
  static const MethodTable kList = {
      {Kind::kList, "append", L_append}, {Kind::kList, "clear", L_clear},
      {Kind::kList, "extend", L_extend}, {Kind::kList, "index", L_index},
      {Kind::kList, "insert", L_insert}, {Kind::kList, "pop", L_pop},
      {Kind::kList, "remove", L_remove},
  };
  static const MethodTable kDict = {
      {Kind::kDict, "clear", D_clear},
      {Kind::kDict, "get", D_get},
      {Kind::kDict, "items", D_items},
      {Kind::kDict, "keys", D_keys},
      {Kind::kDict, "pop", D_pop},
      {Kind::kDict, "popitem", D_popitem},
      {Kind::kDict, "setdefault", D_setdefault},
      {Kind::kDict, "update", D_update},
      {Kind::kDict, "values", D_values},
  };
  static const MethodTable kSet = {
      {Kind::kSet, "add", Set_add},
      {Kind::kSet, "clear", Set_clear},
      {Kind::kSet, "difference", Set_difference},
      {Kind::kSet, "difference_update", Set_difference_update},
      {Kind::kSet, "discard", Set_discard},
      {Kind::kSet, "intersection", Set_intersection},
      {Kind::kSet, "intersection_update", Set_intersection_update},
      {Kind::kSet, "isdisjoint", Set_isdisjoint},
      {Kind::kSet, "issubset", Set_issubset},
      {Kind::kSet, "issuperset", Set_issuperset},
      {Kind::kSet, "pop", Set_pop},
      {Kind::kSet, "remove", Set_remove},
      {Kind::kSet, "symmetric_difference", Set_symmetric_difference},
      {Kind::kSet, "symmetric_difference_update",
       Set_symmetric_difference_update},
      {Kind::kSet, "union", Set_union},
      {Kind::kSet, "update", Set_update},
  };
  static const MethodTable kNone = {};
  switch (k) {
    case Kind::kString:
      return kString;
    case Kind::kBytes:
      return kBytes;
    case Kind::kList:
      return kList;
    case Kind::kDict:
      return kDict;
    case Kind::kSet:
      return kSet;
    default:
      return kNone;
  }
}

}  // namespace

const MethodEntry* FindMethodEntry(Kind k, std::string_view name) {
  const MethodTable& t = Methods(k);
  for (auto& e : t)
    if (e.name == name) return &e;
  return nullptr;
}

BuiltinPtr FindMethod(Kind k, std::string_view name) {
  const MethodEntry* e = FindMethodEntry(k, name);
  return e ? e->fn : nullptr;
}

Value GetAttr(Thread& th, const Value& x, std::string_view name) {
  if (x.Is(Kind::kHost)) return x.as<HostValue>()->Attr(th, name);
  BuiltinPtr m = FindMethod(x.kind(), name);
  if (!m) return Value();
  auto* b = new BuiltinObj(std::string(name), m, x);
  b->Track();
  return Value::Adopt(b);
}

std::vector<std::string> AttrNames(const Value& x) {
  std::vector<std::string> out;
  if (x.Is(Kind::kHost)) {
    out = x.as<HostValue>()->AttrNames();
  } else {
    for (auto& e : Methods(x.kind())) out.push_back(e.name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

const std::vector<std::pair<std::string, Value>>& Universe() {
  static const auto* u = [] {
    auto* v = new std::vector<std::pair<std::string, Value>>();
    auto add = [&](const char* n, BuiltinPtr f) {
      auto* b = new BuiltinObj(n, f, Value());
      b->MakeImmortal();
      v->emplace_back(n, Value(static_cast<Object*>(b)));
    };
    v->emplace_back("None", None());
    v->emplace_back("True", Bool(true));
    v->emplace_back("False", Bool(false));
    add("abs", B_abs);
    add("any", B_any);
    add("all", B_all);
    add("bool", B_bool);
    add("bytes", B_bytes);
    add("chr", B_chr);
    add("dict", B_dict);
    add("dir", B_dir);
    add("enumerate", B_enumerate);
    add("fail", B_fail);
    add("float", B_float);
    add("getattr", B_getattr);
    add("hasattr", B_hasattr);
    add("hash", B_hash);
    add("int", B_int);
    add("len", B_len);
    add("list", B_list);
    add("max", B_max);
    add("min", B_min);
    add("ord", B_ord);
    add("print", B_print);
    add("range", B_range);
    add("repr", B_repr);
    add("reversed", B_reversed);
    add("set", B_set);
    add("sorted", B_sorted);
    add("str", B_str);
    add("tuple", B_tuple);
    add("type", B_type);
    add("zip", B_zip);
    return v;
  }();
  return *u;
}

int UniverseIndex(std::string_view name, const Dialect& d) {
  if (name == "set" && !d.allow_set) return -1;
  const auto& u = Universe();
  for (size_t i = 0; i < u.size(); i++)
    if (u[i].first == name) return static_cast<int>(i);
  return -1;
}

}  // namespace fault::starlark
