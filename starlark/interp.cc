// Tree-walking evaluator over the resolved syntax tree. Locals live in
// slot-indexed frames; globals in the module's slot vector.
#include "starlark/interp.h"

#include <cstdio>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace fault::starlark {

// ---------------------------------------------------------------- Thread

Thread::Thread() {
  print = [](Thread&, const std::string& s) {
    std::fprintf(stderr, "%s\n", s.c_str());
  };
}
Thread::~Thread() = default;

void Thread::Cancel(std::string reason) {
  if (!reason_set_.exchange(true)) cancel_reason_ = std::move(reason);
  cancelled_.store(true, std::memory_order_release);
}

void Thread::StepSlow() {
  if (cancelled_.load(std::memory_order_acquire)) {
    Fail(absl::StrCat("Starlark computation cancelled: ", cancel_reason_));
  }
  if (max_steps && steps_ >= max_steps) {
    Fail(absl::StrCat("Starlark computation cancelled: too many steps (limit ",
                      max_steps, ")"));
  }
  next_check_ = steps_ + 1024;
  if (max_steps && next_check_ > max_steps) next_check_ = max_steps;
}

void Thread::StackOverflow() {
  Fail("maximum recursion depth exceeded (native stack limit)");
}

std::string Thread::Backtrace(const std::string& msg) const {
  std::string out = "Traceback (most recent call last):\n";
  const std::string* builtin = nullptr;
  for (const Frame& f : stack) {
    if (!f.file) {
      builtin = f.name;
      continue;
    }
    builtin = nullptr;
    absl::StrAppend(&out, "  ", f.file->filename, ":", f.pos.line, ":",
                    f.pos.col, ": in ", *f.name, "\n");
  }
  if (builtin)
    absl::StrAppend(&out, "Error in ", *builtin, ": ", msg);
  else
    absl::StrAppend(&out, "Error: ", msg);
  return out;
}

// ---------------------------------------------------------------- Iterator

Iterator::Iterator(const Value& x) : x_(x), kind_(x.kind()) {
  switch (kind_) {
    case Kind::kList:
      ListOf(x_)->iterating++;
      break;
    case Kind::kDict:
      DictOf(x_)->iterating++;
      break;
    case Kind::kSet:
      SetOf(x_)->iterating++;
      break;
    case Kind::kTuple:
      break;
    case Kind::kRange:
      n_ = x_.as<RangeObj>()->Len();
      break;
    case Kind::kStringElems:
      break;
    default:
      Fail(absl::StrCat(TypeName(x), " value is not iterable"));
  }
}

Iterator::~Iterator() {
  switch (kind_) {
    case Kind::kList:
      ListOf(x_)->iterating--;
      break;
    case Kind::kDict:
      DictOf(x_)->iterating--;
      break;
    case Kind::kSet:
      SetOf(x_)->iterating--;
      break;
    default:
      break;
  }
}

namespace {
// The code point at s[i] and its length; a byte that does not start a valid
// sequence (truncated, overlong, a surrogate, beyond U+10FFFF) is U+FFFD of
// length 1, as Go decodes.
uint32_t DecodeUtf8(std::string_view s, size_t i, int* len) {
  unsigned char c = s[i];
  *len = 1;
  if (c < 0x80) return c;
  int n = c >= 0xF5 ? 0 : c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 ? 1 : 0;
  static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
  if (n == 0 || i + n >= s.size()) return 0xfffd;
  uint32_t cp = c & (0x3F >> n);
  for (int k = 1; k <= n; k++) {
    unsigned char d = s[i + k];
    if ((d & 0xc0) != 0x80) return 0xfffd;
    cp = (cp << 6) | (d & 0x3f);
  }
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0xfffd;
  *len = n + 1;
  return cp;
}
}  // namespace

bool Iterator::NextSlow(Value* out) {
  switch (kind_) {
    case Kind::kList: {
      auto& v = ListOf(x_)->v;
      if (i_ >= v.size()) return false;
      *out = v[i_++];
      return true;
    }
    case Kind::kTuple: {
      auto& v = TupleOf(x_)->v;
      if (i_ >= v.size()) return false;
      *out = v[i_++];
      return true;
    }
    case Kind::kDict:
    case Kind::kSet: {
      auto& e = kind_ == Kind::kDict ? DictOf(x_)->t.raw_entries()
                                     : SetOf(x_)->t.raw_entries();
      while (i_ < e.size() && e[i_].key.IsNull()) i_++;
      if (i_ >= e.size()) return false;
      *out = e[i_++].key;
      return true;
    }
    case Kind::kRange: {
      if (static_cast<int64_t>(i_) >= n_) return false;
      *out = Int(x_.as<RangeObj>()->At(static_cast<int64_t>(i_++)));
      return true;
    }
    case Kind::kStringElems: {
      auto* e = x_.as<StringElemsObj>();
      const std::string& s = StrOf(e->str);
      if (i_ >= s.size()) return false;
      if (!e->codepoints) {
        unsigned char c = s[i_];
        *out = e->ords ? Int(c)
                       : (e->str.Is(Kind::kBytes)
                              ? Int(c)
                              : Str(std::string(1, static_cast<char>(c))));
        i_++;
        return true;
      }
      int len;
      uint32_t cp = DecodeUtf8(s, i_, &len);
      // An invalid byte is U+FFFD, both as a code point and as a string.
      *out = e->ords                    ? Int(cp)
             : cp == 0xfffd && len == 1 ? Str("\xEF\xBF\xBD")
                                        : Str(std::string(s.substr(i_, len)));
      i_ += len;
      return true;
    }
    default:
      return false;
  }
}

bool Iterate(Thread& th, const Value& v,
             const std::function<void(const Value&)>& f) {
  switch (v.kind()) {
    case Kind::kList:
    case Kind::kTuple:
    case Kind::kDict:
    case Kind::kSet:
    case Kind::kRange:
    case Kind::kStringElems:
      break;
    default:
      return false;
  }
  Iterator it(v);
  Value x;
  while (it.Next(&x)) {
    th.Step();
    f(x);
  }
  return true;
}

std::vector<Value> ToVector(Thread& th, const Value& v, const char* fname,
                            const char* param) {
  if (v.Is(Kind::kList)) {
    th.Charge(ListOf(v)->v.size() / 256);
    return ListOf(v)->v;
  }
  if (v.Is(Kind::kTuple)) {
    th.Charge(TupleOf(v)->v.size() / 256);
    return TupleOf(v)->v;
  }
  std::vector<Value> out;
  if (!Iterate(th, v, [&](const Value& x) { out.push_back(x); })) {
    if (fname)
      Fail(absl::StrCat(fname, ": for parameter ", param, ": got ", TypeName(v),
                        ", want iterable"));
    Fail(absl::StrCat(TypeName(v), " value is not iterable"));
  }
  return out;
}

// x += y on a list and x |= y on a dict update x in place, so that every
// alias sees the change (as starlark-go does). Returns false when x op y is
// an ordinary binary operation; a list += of a non-iterable is left to it.
bool UpdateInPlace(Thread& th, const Value& x, Tok op, const Value& y) {
  if (op == Tok::kPlus && x.Is(Kind::kList)) {
    std::vector<Value> items;
    if (!Iterate(th, y, [&](const Value& e) { items.push_back(e); }))
      return false;
    auto* l = ListOf(x);
    CheckListMutable(l, "apply += to");
    l->v.insert(l->v.end(), items.begin(), items.end());
    return true;
  }
  if (op == Tok::kPipe && x.Is(Kind::kDict) && y.Is(Kind::kDict)) {
    auto* d = DictOf(x);
    CheckDictMutable(d);
    std::vector<std::tuple<Value, uint64_t, Value>> entries;
    DictOf(y)->t.ForEach([&](HashTable::Entry& e) {
      entries.emplace_back(e.key, e.hash, e.value);
    });
    for (auto& [k, h, v] : entries) d->t.Insert(k, h, v);
    return true;
  }
  return false;
}

// ---------------------------------------------------------------- evaluator

namespace {

enum class Flow { kNormal, kBreak, kContinue, kReturn };

struct Frame {
  Value* locals;
  FunctionObj* fn;  // null at top level
  ModuleObj* module;
  const FuncDecl* decl;
  Thread::Frame* tf;  // position tracking in the thread stack
  Value result;
};

thread_local Thread* t_current_thread = nullptr;

class Eval {
 public:
  explicit Eval(Thread& th) : th_(th), saved_(t_current_thread) {
    t_current_thread = &th;
  }
  ~Eval() { t_current_thread = saved_; }

  Value Expr(Frame& fr, const starlark::Expr* e);
  [[gnu::noinline]] Value ExprSlow(Frame& fr, const starlark::Expr* e);
  [[gnu::always_inline]] inline Flow Exec(Frame& fr, const Stmts& ss);
  Value CallFunction(FunctionObj* fn, const Args& args);

 private:
  [[gnu::always_inline]] inline Value Ident(Frame& fr, const IdentExpr* id);
  void Assign(Frame& fr, const starlark::Expr* target, Value v);
  [[gnu::always_inline]] inline void AssignFast(Frame& fr,
                                                const starlark::Expr* target,
                                                Value&& v) {
    if (target->kind == EK::kIdent) {
      auto* id = static_cast<const IdentExpr*>(target);
      if (id->scope == Scope::kLocal) {
        fr.locals[id->index] = std::move(v);
        return;
      }
    }
    Assign(fr, target, std::move(v));
  }
  // Pointer to the value of a bound local or a literal, or null.
  [[gnu::always_inline]] static inline const Value* Peek(
      Frame& fr, const starlark::Expr* e) {
    if (e->kind == EK::kLiteral)
      return &static_cast<const LiteralExpr*>(e)->value;
    return PeekLocal(fr, e);
  }
  // Pointer to a bound local for `e`, or null (avoids a copy on reads).
  [[gnu::always_inline]] static inline const Value* PeekLocal(
      Frame& fr, const starlark::Expr* e) {
    if (e->kind != EK::kIdent) return nullptr;
    auto* id = static_cast<const IdentExpr*>(e);
    if (id->scope != Scope::kLocal) return nullptr;
    const Value* v = &fr.locals[id->index];
    return v->IsNull() ? nullptr : v;
  }
  void SetIdent(Frame& fr, const IdentExpr* id, Value v);
  [[gnu::noinline]] Value EvalCall(Frame& fr, const CallExpr* c);
  [[gnu::noinline]] Value EvalBinary(Frame& fr, const BinaryExpr* b);
  // Fills argv[0..n) with the positional arguments of c; bound locals and
  // literals are borrowed (no reference taken; see BorrowedArgs).
  [[gnu::always_inline]] inline void EvalArgs(Frame& fr, const CallExpr* c,
                                              Value* argv, unsigned* borrowed);
  [[gnu::noinline]] Value EvalCallGeneral(Frame& fr, const CallExpr* c,
                                          const Value& fn, const Value& recv,
                                          BuiltinPtr method,
                                          const std::string* method_name);
  [[gnu::always_inline]] inline Value Invoke(const CallExpr* c, const Value& fn,
                                             const Value& recv,
                                             BuiltinPtr method,
                                             const std::string* method_name,
                                             const Args& args);
  [[gnu::always_inline]] inline Value CallBuiltin(BuiltinObj* b,
                                                  const Args& args);
  void Comprehension(Frame& fr, const CompExpr* c, size_t clause,
                     const Value& result);
  Value MakeFunction(Frame& fr, const std::shared_ptr<FuncDecl>& decl);
  Flow ExecStmt(Frame& fr, const Stmt* s);
  [[gnu::noinline]] Flow ExecStmtSlow(Frame& fr, const Stmt* s);
  void Load(Frame& fr, const LoadStmt* l);

  Thread& th_;
  Thread* saved_;
};

[[noreturn]] void Unbound(const IdentExpr* id, bool global) {
  Fail(absl::StrCat(global ? "global" : "local", " variable ", id->name,
                    " referenced before assignment"));
}

inline Value Eval::Ident(Frame& fr, const IdentExpr* id) {
  switch (id->scope) {
    case Scope::kLocal: {
      const Value& v = fr.locals[id->index];
      if (v.IsNull()) Unbound(id, false);
      return v;
    }
    case Scope::kCell: {
      const Value& c = fr.locals[id->index];
      if (c.IsNull() || c.as<CellObj>()->v.IsNull()) Unbound(id, false);
      return c.as<CellObj>()->v;
    }
    case Scope::kFree: {
      const Value& v = fr.fn->freevars[id->index].as<CellObj>()->v;
      if (v.IsNull()) Unbound(id, false);
      return v;
    }
    case Scope::kGlobal: {
      const Value& v = fr.module->globals[id->index];
      if (v.IsNull()) Unbound(id, true);
      return v;
    }
    case Scope::kPredeclared:
      return fr.module->predeclared[id->index];
    case Scope::kUniversal:
      return Universe()[id->index].second;
    case Scope::kUndefined:
      break;
  }
  Fail(absl::StrCat("undefined: ", id->name));
}

void Eval::SetIdent(Frame& fr, const IdentExpr* id, Value v) {
  switch (id->scope) {
    case Scope::kLocal:
      fr.locals[id->index] = std::move(v);
      return;
    case Scope::kCell: {
      Value& c = fr.locals[id->index];
      if (c.IsNull()) {
        auto* cell = new CellObj();
        cell->Track();
        c = Value::Adopt(cell);
      }
      c.as<CellObj>()->v = std::move(v);
      return;
    }
    case Scope::kFree:
      fr.fn->freevars[id->index].as<CellObj>()->v = std::move(v);
      return;
    case Scope::kGlobal:
      if (fr.module->frozen())
        Fail(absl::StrCat("cannot reassign global ", id->name,
                          " in frozen module"));
      fr.module->globals[id->index] = std::move(v);
      return;
    default:
      Fail(absl::StrCat("cannot assign to ", id->name));
  }
}

void SetIndex(const Value& x, const Value& k, Value v) {
  switch (x.kind()) {
    case Kind::kList: {
      auto* l = ListOf(x);
      if (l->frozen()) Fail("cannot assign to element of frozen list");
      if (l->iterating)
        Fail("cannot assign to element of list during iteration");
      if (!k.IsInt())
        Fail(absl::StrCat("list index: got ", TypeName(k), ", want int"));
      int64_t i;
      int64_t n = static_cast<int64_t>(l->v.size());
      if (!IntToInt64(k, &i) || (i < 0 ? i + n : i) < 0 ||
          (i < 0 ? i + n : i) >= n)
        Fail(absl::StrCat("list index ", Repr(k), " out of range [", -n, ":", n,
                          "]"));
      if (i < 0) i += n;
      l->v[i] = std::move(v);
      return;
    }
    case Kind::kDict: {
      auto* d = DictOf(x);
      uint64_t h = Hash(k);
      if (d->frozen() || d->iterating) CheckDictMutable(d);
      d->t.Insert(k, h, std::move(v));
      return;
    }
    default:
      Fail(
          absl::StrCat(TypeName(x), " value does not support item assignment"));
  }
}

void Eval::Assign(Frame& fr, const starlark::Expr* target, Value v) {
  switch (target->kind) {
    case EK::kIdent:
      SetIdent(fr, static_cast<const IdentExpr*>(target), std::move(v));
      return;
    case EK::kIndex: {
      auto* ix = static_cast<const IndexExpr*>(target);
      Value x = Expr(fr, ix->x.get());
      Value k = Expr(fr, ix->index.get());
      fr.tf->pos = ix->pos;
      SetIndex(x, k, std::move(v));
      return;
    }
    case EK::kDot: {
      auto* d = static_cast<const DotExpr*>(target);
      Value x = Expr(fr, d->x.get());
      Fail(absl::StrCat("cannot assign to field .", d->name, " of ",
                        TypeName(x)));
    }
    case EK::kList:
    case EK::kTuple: {
      auto* l = static_cast<const ListExpr*>(target);
      if (v.Is(Kind::kTuple)) {
        // Tuples are immutable: unpack in place, no copy.
        const auto& e = TupleOf(v)->v;
        if (e.size() == l->elems.size()) {
          for (size_t i = 0; i < e.size(); i++)
            Assign(fr, l->elems[i].get(), e[i]);
          return;
        }
      }
      std::vector<Value> items;
      switch (v.kind()) {
        case Kind::kList:
        case Kind::kTuple:
        case Kind::kDict:
        case Kind::kSet:
        case Kind::kRange:
        case Kind::kStringElems:
          items = ToVector(th_, v);
          break;
        default:
          Fail(absl::StrCat("got ", TypeName(v), " in sequence assignment"));
      }
      if (items.size() != l->elems.size()) {
        if (items.size() > l->elems.size())
          Fail(absl::StrCat("too many values to unpack (got ", items.size(),
                            ", want ", l->elems.size(), ")"));
        Fail(absl::StrCat("too few values to unpack (got ", items.size(),
                          ", want ", l->elems.size(), ")"));
      }
      for (size_t i = 0; i < items.size(); i++)
        Assign(fr, l->elems[i].get(), std::move(items[i]));
      return;
    }
    default:
      Fail("invalid assignment target");
  }
}

inline bool BothSmall(const Value& a, const Value& b) {
  return (a.bits() & b.bits() & 1) != 0;
}

// Small-int fast paths of binary operators; false means "take the slow path".
[[gnu::always_inline]] inline bool SmallIntOp(Tok op, int64_t a, int64_t c,
                                              Value* out) {
  switch (op) {
    case Tok::kPlus:
      *out = Int(a + c);
      return true;
    case Tok::kMinus:
      *out = Int(a - c);
      return true;
    case Tok::kLt:
      *out = Bool(a < c);
      return true;
    case Tok::kLe:
      *out = Bool(a <= c);
      return true;
    case Tok::kGt:
      *out = Bool(a > c);
      return true;
    case Tok::kGe:
      *out = Bool(a >= c);
      return true;
    case Tok::kEqEq:
      *out = Bool(a == c);
      return true;
    case Tok::kNe:
      *out = Bool(a != c);
      return true;
    case Tok::kStar: {
      int64_t r;
      if (__builtin_mul_overflow(a, c, &r)) return false;
      *out = Int(r);
      return true;
    }
    case Tok::kPercent:
    case Tok::kSlashSlash: {
      if (c == 0) return false;
      int64_t q = a / c, r = a % c;
      if (r != 0 && ((r < 0) != (c < 0))) {
        q -= 1;
        r += c;
      }
      *out = Int(op == Tok::kPercent ? r : q);
      return true;
    }
    case Tok::kAmp:
      *out = Value::SmallInt(a & c);
      return true;
    case Tok::kPipe:
      *out = Value::SmallInt(a | c);
      return true;
    case Tok::kCaret:
      *out = Value::SmallInt(a ^ c);
      return true;
    default:
      return false;
  }
}

// The common, cheap node kinds; everything else is in ExprSlow so that this
// function keeps a small stack frame.
Value Eval::Expr(Frame& fr, const starlark::Expr* e) {
  switch (e->kind) {
    case EK::kIdent:
      return Ident(fr, static_cast<const IdentExpr*>(e));
    case EK::kLiteral:
      return static_cast<const LiteralExpr*>(e)->value;
    case EK::kBinary: {
      auto* b = static_cast<const BinaryExpr*>(e);
      const Value* px = PeekLocal(fr, b->x.get());
      if (px && px->IsSmallInt()) {
        const Value* py = PeekLocal(fr, b->y.get());
        if (!py && b->y->kind == EK::kLiteral)
          py = &static_cast<const LiteralExpr*>(b->y.get())->value;
        if (py && py->IsSmallInt()) {
          Value r;
          if (SmallIntOp(b->op, px->small(), py->small(), &r)) return r;
        }
      }
      return EvalBinary(fr, b);
    }
    case EK::kCall:
      return EvalCall(fr, static_cast<const CallExpr*>(e));
    default:
      return ExprSlow(fr, e);
  }
}

Value Eval::EvalBinary(Frame& fr, const BinaryExpr* b) {
  th_.CheckStack();
  if (b->op == Tok::kAnd) {
    Value x = Expr(fr, b->x.get());
    if (!Truth(x)) return x;
    return Expr(fr, b->y.get());
  }
  if (b->op == Tok::kOr) {
    Value x = Expr(fr, b->x.get());
    if (Truth(x)) return x;
    return Expr(fr, b->y.get());
  }
  {
    const Value* px = PeekLocal(fr, b->x.get());
    if (px && px->IsSmallInt()) {
      const Value* py = PeekLocal(fr, b->y.get());
      if (!py) {
        if (b->y->kind == EK::kLiteral)
          py = &static_cast<const LiteralExpr*>(b->y.get())->value;
      }
      if (py && py->IsSmallInt()) {
        Value r;
        if (SmallIntOp(b->op, px->small(), py->small(), &r)) return r;
      }
    }
  }
  // Locals and literals are used in place (see BorrowedArgs).
  Value xo, yo;
  const Value* px = Peek(fr, b->x.get());
  if (!px) px = &(xo = Expr(fr, b->x.get()));
  const Value* py = Peek(fr, b->y.get());
  if (!py) py = &(yo = Expr(fr, b->y.get()));
  const Value& x = *px;
  const Value& y = *py;
  if (BothSmall(x, y)) {
    Value r;
    if (SmallIntOp(b->op, x.small(), y.small(), &r)) return r;
  }
  // Short string concatenation (no step charge, far below the cap).
  if (b->op == Tok::kPlus && x.Is(Kind::kString) && y.Is(Kind::kString) &&
      StrOf(x).size() + StrOf(y).size() < 256)
    return StrConcat(StrOf(x), StrOf(y));
  fr.tf->pos = b->pos;
  return Binary(b->op, x, y);
}

Value Eval::ExprSlow(Frame& fr, const starlark::Expr* e) {
  th_.CheckStack();
  switch (e->kind) {
    case EK::kIdent:
      return Ident(fr, static_cast<const IdentExpr*>(e));
    case EK::kLiteral:
      return static_cast<const LiteralExpr*>(e)->value;
    case EK::kBinary:
      return EvalBinary(fr, static_cast<const BinaryExpr*>(e));
    case EK::kCall:
      return EvalCall(fr, static_cast<const CallExpr*>(e));
    case EK::kDot: {
      auto* d = static_cast<const DotExpr*>(e);
      Value x = Expr(fr, d->x.get());
      fr.tf->pos = d->pos;
      Value r = GetAttr(th_, x, d->name);
      if (r.IsNull())
        Fail(absl::StrCat(TypeName(x), " has no .", d->name, " field or method",
                          DidYouMean(d->name, AttrNames(x), ".")));
      return r;
    }
    case EK::kIndex: {
      auto* ix = static_cast<const IndexExpr*>(e);
      Value x = Expr(fr, ix->x.get());
      Value k = Expr(fr, ix->index.get());
      if (x.Is(Kind::kList) && k.IsSmallInt()) {
        auto& v = ListOf(x)->v;
        int64_t i = k.small();
        if (i < 0) i += static_cast<int64_t>(v.size());
        if (i >= 0 && i < static_cast<int64_t>(v.size())) return v[i];
      }
      fr.tf->pos = ix->pos;
      return IndexValue(th_, x, k);
    }
    case EK::kSlice: {
      auto* s = static_cast<const SliceExpr*>(e);
      Value x = Expr(fr, s->x.get());
      Value lo = s->lo ? Expr(fr, s->lo.get()) : None();
      Value hi = s->hi ? Expr(fr, s->hi.get()) : None();
      Value st = s->step ? Expr(fr, s->step.get()) : None();
      fr.tf->pos = s->pos;
      return SliceValue(x, lo, hi, st);
    }
    case EK::kUnary: {
      auto* u = static_cast<const UnaryExpr*>(e);
      Value x = Expr(fr, u->x.get());
      if (u->op == Tok::kNot) return Bool(!Truth(x));
      fr.tf->pos = u->pos;
      return Unary(u->op, x);
    }
    case EK::kCond: {
      auto* c = static_cast<const CondExpr*>(e);
      return Truth(Expr(fr, c->cond.get())) ? Expr(fr, c->then.get())
                                            : Expr(fr, c->els.get());
    }
    case EK::kList: {
      auto* l = static_cast<const ListExpr*>(e);
      std::vector<Value> v;
      v.reserve(l->elems.size());
      for (auto& x : l->elems) v.push_back(Expr(fr, x.get()));
      return NewList(std::move(v));
    }
    case EK::kTuple: {
      auto* l = static_cast<const ListExpr*>(e);
      if (l->elems.empty()) return EmptyTuple();
      std::vector<Value> v;
      v.reserve(l->elems.size());
      for (auto& x : l->elems) v.push_back(Expr(fr, x.get()));
      return NewTuple(std::move(v));
    }
    case EK::kDict: {
      auto* d = static_cast<const DictExpr*>(e);
      Value r = NewDict();
      auto* dict = DictOf(r);
      for (auto& [k, v] : d->entries) {
        Value kv = Expr(fr, k.get());
        Value vv = Expr(fr, v.get());
        fr.tf->pos = k->pos;
        uint64_t h = Hash(kv);
        if (dict->t.Find(kv, h))
          Fail(absl::StrCat("duplicate key: ", Repr(kv)));
        dict->t.Insert(kv, h, std::move(vv));
      }
      return r;
    }
    case EK::kComp: {
      auto* c = static_cast<const CompExpr*>(e);
      Value r = c->dict ? NewDict() : NewList();
      Comprehension(fr, c, 0, r);
      return r;
    }
    case EK::kLambda:
      return MakeFunction(fr, static_cast<const LambdaExpr*>(e)->fn);
  }
  Fail("unknown expression");
}

void Eval::Comprehension(Frame& fr, const CompExpr* c, size_t clause,
                         const Value& result) {
  if (clause == c->clauses.size()) {
    if (c->dict) {
      Value k = Expr(fr, c->body.get());
      Value v = Expr(fr, c->value.get());
      fr.tf->pos = c->body->pos;
      DictOf(result)->t.Insert(k, std::move(v));
    } else {
      ListOf(result)->v.push_back(Expr(fr, c->body.get()));
    }
    return;
  }
  const CompClause& cl = c->clauses[clause];
  if (cl.is_if) {
    if (Truth(Expr(fr, cl.expr.get())))
      Comprehension(fr, c, clause + 1, result);
    return;
  }
  Value seq = Expr(fr, cl.expr.get());
  fr.tf->pos = cl.pos;
  Iterator it(seq);
  Value x;
  while (it.Next(&x)) {
    th_.Step();
    Assign(fr, cl.target.get(), std::move(x));
    Comprehension(fr, c, clause + 1, result);
  }
}

Value Eval::MakeFunction(Frame& fr, const std::shared_ptr<FuncDecl>& decl) {
  auto* f = new FunctionObj();
  f->Track();
  Value fv = Value::Adopt(f);
  f->decl = decl.get();
  f->program = fr.module->program;
  f->module = Value(static_cast<Object*>(fr.module));
  int nparams = decl->num_params + decl->num_kwonly;
  f->defaults.resize(nparams);
  // Defaults in parameter order: positional ones first, then keyword-only.
  int plain = 0, kwonly = 0;
  bool star = false;
  for (auto& p : decl->params) {
    if (p.kind == Param::kStar) {
      star = true;
      continue;
    }
    if (p.kind == Param::kStarStar) continue;
    int slot = star ? decl->num_params + kwonly++ : plain++;
    if (p.kind == Param::kDefault) f->defaults[slot] = Expr(fr, p.dflt.get());
  }
  for (auto& fv2 : decl->freevars) {
    if (fv2.scope == Scope::kCell) {
      Value& c = fr.locals[fv2.index];
      if (c.IsNull()) {
        auto* cell = new CellObj();
        cell->Track();
        c = Value::Adopt(cell);
      }
      f->freevars.push_back(c);
    } else {
      f->freevars.push_back(fr.fn->freevars[fv2.index]);
    }
  }
  return fv;
}

// Positional arguments that are bound locals or literals are passed without
// taking a reference: nothing can rebind a slot of the calling frame or free
// the syntax tree while the call runs. This releases them (instead of
// dropping a reference) when the argument array goes away, also on errors.
struct BorrowedArgs {
  Value* argv;
  unsigned mask = 0;
  ~BorrowedArgs() {
    for (unsigned m = mask; m; m &= m - 1) argv[__builtin_ctz(m)].Release();
  }
};

inline void Eval::EvalArgs(Frame& fr, const CallExpr* c, Value* argv,
                           unsigned* borrowed) {
  size_t nargs = c->args.size();
  for (size_t i = 0; i < nargs; i++) {
    const starlark::Expr* a = c->args[i].value.get();
    if (const Value* p = Peek(fr, a)) {
      argv[i] = Value::Borrow(*p);
      *borrowed |= 1u << i;
    } else {
      argv[i] = Expr(fr, a);
    }
  }
}

Value Eval::EvalCall(Frame& fr, const CallExpr* c) {
  th_.CheckStack();
  // Method call fast path: x.name(args) without creating a bound method.
  Value fn, recv_own;
  const Value* recvp = &recv_own;
  BuiltinPtr method = nullptr;
  const std::string* method_name = nullptr;
  if (c->fn->kind == EK::kDot) {
    auto* d = static_cast<const DotExpr*>(c->fn.get());
    // A local or literal receiver is used in place (see BorrowedArgs).
    recvp = Peek(fr, d->x.get());
    if (!recvp) {
      recv_own = Expr(fr, d->x.get());
      recvp = &recv_own;
    }
    const Value& recv = *recvp;
    // Acquire/release: another thread may have filled the cache with an
    // entry of a method table it initialised (frozen code is shared).
    auto* cached = static_cast<const MethodEntry*>(
        d->method_cache.load(std::memory_order_acquire));
    if (cached && cached->kind == recv.kind()) {
      method = cached->fn;
    } else if (const MethodEntry* me = FindMethodEntry(recv.kind(), d->name)) {
      d->method_cache.store(me, std::memory_order_release);
      method = me->fn;
    }
    if (!method) {
      fr.tf->pos = d->pos;
      fn = GetAttr(th_, recv, d->name);
      if (fn.IsNull())
        Fail(absl::StrCat(TypeName(recv), " has no .", d->name,
                          " field or method",
                          DidYouMean(d->name, AttrNames(recv), ".")));
    } else {
      method_name = &d->name;
    }
  } else if (c->fn->kind == EK::kIdent &&
             static_cast<const IdentExpr*>(c->fn.get())->scope ==
                 Scope::kUniversal) {
    // A builtin such as str or len: called straight from the universe
    // table (immortal values, no reference taken).
    const Value& b =
        Universe()[static_cast<const IdentExpr*>(c->fn.get())->index].second;
    if (c->simple && c->args.size() <= 4 && b.Is(Kind::kBuiltin) &&
        b.as<BuiltinObj>()->ptr) {
      size_t nargs = c->args.size();
      Value argv[4];
      BorrowedArgs guard{argv};
      EvalArgs(fr, c, argv, &guard.mask);
      fr.tf->pos = c->pos;
      th_.Step();
      return CallBuiltin(b.as<BuiltinObj>(),
                         Args{std::span<const Value>(argv, nargs), {}});
    }
    fn = b;
  } else {
    fn = Expr(fr, c->fn.get());
  }
  // Up to four positional arguments (the common case): a fixed array.
  size_t nargs = c->args.size();
  if (c->simple && nargs <= 4) {
    Value argv[4];
    BorrowedArgs guard{argv};
    EvalArgs(fr, c, argv, &guard.mask);
    fr.tf->pos = c->pos;
    th_.Step();
    return Invoke(c, fn, *recvp, method, method_name,
                  Args{std::span<const Value>(argv, nargs), {}});
  }
  return EvalCallGeneral(fr, c, fn, *recvp, method, method_name);
}

Value Eval::EvalCallGeneral(Frame& fr, const CallExpr* c, const Value& fn,
                            const Value& recv, BuiltinPtr method,
                            const std::string* method_name) {
  absl::InlinedVector<Value, 6> pos;
  std::vector<std::pair<Value, Value>> kw;
  for (auto& a : c->args) {
    switch (a.kind) {
      case CallArg::kPositional:
        pos.push_back(Expr(fr, a.value.get()));
        break;
      case CallArg::kNamed:
        kw.emplace_back(a.name_str, Expr(fr, a.value.get()));
        break;
      case CallArg::kStar: {
        Value v = Expr(fr, a.value.get());
        fr.tf->pos = a.pos;
        if (!Iterate(th_, v, [&](const Value& x) { pos.push_back(x); }))
          Fail(absl::StrCat("argument after * must be iterable, not ",
                            TypeName(v)));
        break;
      }
      case CallArg::kStarStar: {
        Value v = Expr(fr, a.value.get());
        fr.tf->pos = a.pos;
        if (!v.Is(Kind::kDict))
          Fail(absl::StrCat("argument after ** must be a mapping, not ",
                            TypeName(v)));
        bool err = false;
        DictOf(v)->t.ForEach([&](HashTable::Entry& en) {
          if (!en.key.Is(Kind::kString)) err = true;
          kw.emplace_back(en.key, en.value);
        });
        if (err) Fail("keywords must be strings");
        for (size_t i = 0; i < kw.size(); i++)
          for (size_t j = i + 1; j < kw.size(); j++)
            if (StrOf(kw[i].first) == StrOf(kw[j].first))
              Fail(absl::StrCat("got multiple values for parameter \"",
                                StrOf(kw[i].first), "\""));
        break;
      }
    }
  }
  fr.tf->pos = c->pos;
  th_.Step();
  Args args{std::span<const Value>(pos.data(), pos.size()),
            std::span<const std::pair<Value, Value>>(kw.data(), kw.size())};
  return Invoke(c, fn, recv, method, method_name, args);
}

inline Value Eval::Invoke(const CallExpr* c, const Value& fn, const Value& recv,
                          BuiltinPtr method, const std::string* method_name,
                          const Args& args) {
  if (method) {
    // No frame is pushed on the happy path; the builtin's frame is added
    // to the backtrace only if it fails.
    try {
      return method(th_, recv, args);
    } catch (EvalError& e) {
      if (!e.has_trace) {
        th_.stack.push_back(Thread::Frame{method_name, nullptr, c->pos});
        e.trace = th_.Backtrace(e.msg);
        e.has_trace = true;
        th_.stack.pop_back();
      }
      throw;
    }
  }
  if (fn.Is(Kind::kFunction)) return CallFunction(fn.as<FunctionObj>(), args);
  if (fn.Is(Kind::kBuiltin) && fn.as<BuiltinObj>()->ptr)
    return CallBuiltin(fn.as<BuiltinObj>(), args);
  return CallValue(th_, fn, args);
}

// As CallValue, without the extra call.
inline Value Eval::CallBuiltin(BuiltinObj* b, const Args& args) {
  try {
    Value r = b->ptr(th_, b->recv, args);
    if (r.IsNull()) return None();
    return r;
  } catch (EvalError& e) {
    if (!e.has_trace) {
      th_.stack.push_back(Thread::Frame{&b->name, nullptr, Pos{}});
      e.trace = th_.Backtrace(e.msg);
      e.has_trace = true;
      th_.stack.pop_back();
    }
    throw;
  }
}

inline Flow Eval::Exec(Frame& fr, const Stmts& ss) {
  for (auto& s : ss) {
    Flow f = ExecStmt(fr, s.get());
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

Flow Eval::ExecStmt(Frame& fr, const Stmt* s) {
  th_.Step();
  fr.tf->pos = s->pos;
  switch (s->kind) {
    case SK::kExpr:
      Expr(fr, static_cast<const ExprStmt*>(s)->x.get());
      return Flow::kNormal;
    case SK::kAssign: {
      auto* a = static_cast<const AssignStmt*>(s);
      if (a->op == Tok::kEq) {
        if (a->lhs->kind == EK::kIdent) {
          AssignFast(fr, a->lhs.get(), Expr(fr, a->rhs.get()));
          return Flow::kNormal;
        }
        // `x[k] = v`: the value first, then the operands, as Assign does.
        if (a->lhs->kind == EK::kIndex) {
          Value v = Expr(fr, a->rhs.get());
          auto* ix = static_cast<const IndexExpr*>(a->lhs.get());
          // Locals and literals are used in place (see BorrowedArgs).
          Value xo, ko;
          const Value* px = Peek(fr, ix->x.get());
          if (!px) px = &(xo = Expr(fr, ix->x.get()));
          const Value* pk = Peek(fr, ix->index.get());
          if (!pk) pk = &(ko = Expr(fr, ix->index.get()));
          fr.tf->pos = ix->pos;
          SetIndex(*px, *pk, std::move(v));
          return Flow::kNormal;
        }
        // `a, b = x, y`: both right-hand values first, no tuple.
        if (a->lhs->kind == EK::kTuple && a->rhs->kind == EK::kTuple) {
          auto* l = static_cast<const ListExpr*>(a->lhs.get());
          auto* r = static_cast<const ListExpr*>(a->rhs.get());
          if (l->elems.size() == 2 && r->elems.size() == 2) {
            Value v0 = Expr(fr, r->elems[0].get());
            Value v1 = Expr(fr, r->elems[1].get());
            AssignFast(fr, l->elems[0].get(), std::move(v0));
            AssignFast(fr, l->elems[1].get(), std::move(v1));
            return Flow::kNormal;
          }
        }
      } else if (a->op == Tok::kPlusEq && a->lhs->kind == EK::kIdent &&
                 static_cast<const IdentExpr*>(a->lhs.get())->scope ==
                     Scope::kLocal) {
        // `n += 1` and `s += "x"` on a local with a local or literal right
        // side; anything else (including an unbound local) takes the
        // general path.
        Value& slot =
            fr.locals[static_cast<const IdentExpr*>(a->lhs.get())->index];
        const Value* py = Peek(fr, a->rhs.get());
        if (py && BothSmall(slot, *py)) {
          slot = Int(slot.small() + py->small());
          return Flow::kNormal;
        }
        if (py && !slot.IsNull() && slot.Is(Kind::kString) &&
            py->Is(Kind::kString) && slot.obj()->refcount() == 1 &&
            !slot.obj()->frozen()) {
          auto* so = slot.as<StringObj>();
          so->s += StrOf(*py);
          so->hash = 0;
          return Flow::kNormal;
        }
      }
      return ExecStmtSlow(fr, s);
    }
    case SK::kIf: {
      auto* i = static_cast<const IfStmt*>(s);
      if (Truth(Expr(fr, i->cond.get()))) return Exec(fr, i->then);
      return Exec(fr, i->els);
    }
    case SK::kReturn: {
      auto* r = static_cast<const ReturnStmt*>(s);
      fr.result = r->result ? Expr(fr, r->result.get()) : None();
      return Flow::kReturn;
    }
    case SK::kBreak:
      return Flow::kBreak;
    case SK::kContinue:
      return Flow::kContinue;
    case SK::kPass:
      return Flow::kNormal;
    default:
      return ExecStmtSlow(fr, s);
  }
}

Flow Eval::ExecStmtSlow(Frame& fr, const Stmt* s) {
  switch (s->kind) {
    case SK::kExpr:
      Expr(fr, static_cast<const ExprStmt*>(s)->x.get());
      return Flow::kNormal;
    case SK::kAssign: {
      auto* a = static_cast<const AssignStmt*>(s);
      if (a->op == Tok::kEq) {
        // Parallel assignment `a, b = x, y` without building a tuple.
        if ((a->lhs->kind == EK::kTuple || a->lhs->kind == EK::kList) &&
            a->rhs->kind == EK::kTuple) {
          auto* l = static_cast<const ListExpr*>(a->lhs.get());
          auto* r = static_cast<const ListExpr*>(a->rhs.get());
          size_t n = r->elems.size();
          if (n == l->elems.size() && n <= 8) {
            Value tmp[8];
            for (size_t i = 0; i < n; i++) tmp[i] = Expr(fr, r->elems[i].get());
            for (size_t i = 0; i < n; i++)
              AssignFast(fr, l->elems[i].get(), std::move(tmp[i]));
            return Flow::kNormal;
          }
        }
        AssignFast(fr, a->lhs.get(), Expr(fr, a->rhs.get()));
        return Flow::kNormal;
      }
      Tok op;
      switch (a->op) {
        case Tok::kPlusEq:
          op = Tok::kPlus;
          break;
        case Tok::kMinusEq:
          op = Tok::kMinus;
          break;
        case Tok::kStarEq:
          op = Tok::kStar;
          break;
        case Tok::kSlashEq:
          op = Tok::kSlash;
          break;
        case Tok::kSlashSlashEq:
          op = Tok::kSlashSlash;
          break;
        case Tok::kPercentEq:
          op = Tok::kPercent;
          break;
        case Tok::kAmpEq:
          op = Tok::kAmp;
          break;
        case Tok::kPipeEq:
          op = Tok::kPipe;
          break;
        case Tok::kCaretEq:
          op = Tok::kCaret;
          break;
        case Tok::kLtLtEq:
          op = Tok::kLtLt;
          break;
        default:
          op = Tok::kGtGt;
          break;
      }
      // Evaluate the target's operands once.
      if (a->lhs->kind == EK::kIdent) {
        auto* id = static_cast<const IdentExpr*>(a->lhs.get());
        if (id->scope == Scope::kLocal) {
          Value& slot = fr.locals[id->index];
          if (slot.IsNull()) Unbound(id, false);
          Value y = Expr(fr, a->rhs.get());
          fr.tf->pos = a->op_pos;
          if (BothSmall(slot, y) && op == Tok::kPlus) {
            slot = Int(slot.small() + y.small());
            return Flow::kNormal;
          }
          if (slot.Is(Kind::kString) && y.Is(Kind::kString) &&
              op == Tok::kPlus && slot.obj()->refcount() == 1 &&
              !slot.obj()->frozen()) {
            // Sole owner: append in place (the string is not observable
            // elsewhere).
            auto* so = slot.as<StringObj>();
            so->s += StrOf(y);
            so->hash = 0;
            return Flow::kNormal;
          }
          if (UpdateInPlace(th_, slot, op, y)) return Flow::kNormal;
          Value x = slot;
          slot = Binary(op, x, y);
          return Flow::kNormal;
        }
        Value x = Ident(fr, id);
        Value y = Expr(fr, a->rhs.get());
        fr.tf->pos = a->op_pos;
        if (UpdateInPlace(th_, x, op, y)) return Flow::kNormal;
        SetIdent(fr, id, Binary(op, x, y));
        return Flow::kNormal;
      }
      if (a->lhs->kind == EK::kIndex) {
        auto* ix = static_cast<const IndexExpr*>(a->lhs.get());
        Value obj = Expr(fr, ix->x.get());
        Value k = Expr(fr, ix->index.get());
        fr.tf->pos = ix->pos;
        Value x = IndexValue(th_, obj, k);
        Value y = Expr(fr, a->rhs.get());
        fr.tf->pos = a->op_pos;
        if (UpdateInPlace(th_, x, op, y)) return Flow::kNormal;
        SetIndex(obj, k, Binary(op, x, y));
        return Flow::kNormal;
      }
      // x.f op= y
      Value x = Expr(fr, a->lhs.get());
      Value y = Expr(fr, a->rhs.get());
      if (UpdateInPlace(th_, x, op, y)) return Flow::kNormal;
      Assign(fr, a->lhs.get(), Binary(op, x, y));
      return Flow::kNormal;
    }
    case SK::kDef: {
      auto* d = static_cast<const DefStmt*>(s);
      SetIdent(fr, d->name.get(), MakeFunction(fr, d->fn));
      return Flow::kNormal;
    }
    case SK::kIf: {
      auto* i = static_cast<const IfStmt*>(s);
      if (Truth(Expr(fr, i->cond.get()))) return Exec(fr, i->then);
      return Exec(fr, i->els);
    }
    case SK::kFor: {
      auto* f = static_cast<const ForStmt*>(s);
      Value seq = Expr(fr, f->x.get());
      fr.tf->pos = f->pos;
      // Fast path: a local variable over a range.
      if (seq.Is(Kind::kRange) && f->vars->kind == EK::kIdent &&
          static_cast<const IdentExpr*>(f->vars.get())->scope ==
              Scope::kLocal) {
        auto* r = seq.as<RangeObj>();
        int64_t n = r->Len();
        Value& slot =
            fr.locals[static_cast<const IdentExpr*>(f->vars.get())->index];
        for (int64_t i = 0; i < n; i++) {
          th_.Step();
          slot = Int(r->At(i));
          Flow fl = Exec(fr, f->body);
          if (fl == Flow::kBreak) break;
          if (fl == Flow::kReturn) return fl;
        }
        return Flow::kNormal;
      }
      Iterator it(seq);
      Value x;
      while (it.Next(&x)) {
        th_.Step();
        AssignFast(fr, f->vars.get(), std::move(x));
        Flow fl = Exec(fr, f->body);
        if (fl == Flow::kBreak) break;
        if (fl == Flow::kReturn) return fl;
      }
      return Flow::kNormal;
    }
    case SK::kWhile: {
      auto* w = static_cast<const WhileStmt*>(s);
      while (Truth(Expr(fr, w->cond.get()))) {
        th_.Step();
        Flow fl = Exec(fr, w->body);
        if (fl == Flow::kBreak) break;
        if (fl == Flow::kReturn) return fl;
      }
      return Flow::kNormal;
    }
    case SK::kReturn: {
      auto* r = static_cast<const ReturnStmt*>(s);
      fr.result = r->result ? Expr(fr, r->result.get()) : None();
      return Flow::kReturn;
    }
    case SK::kBreak:
      return Flow::kBreak;
    case SK::kContinue:
      return Flow::kContinue;
    case SK::kPass:
      return Flow::kNormal;
    case SK::kLoad:
      Load(fr, static_cast<const LoadStmt*>(s));
      return Flow::kNormal;
  }
  return Flow::kNormal;
}

void Eval::Load(Frame& fr, const LoadStmt* l) {
  if (!th_.load) Fail("load not implemented by this application");
  absl::StatusOr<StringDict> mod = th_.load(th_, l->module);
  if (!mod.ok()) {
    // The module failed while it ran: its backtrace continues this one, as
    // Python shows an import, so the error keeps the module's own position.
    static constexpr absl::string_view kHead =
        "Traceback (most recent call last):\n";
    static constexpr absl::string_view kTail = "Error: ";
    absl::string_view inner = mod.status().message();
    std::string outer = th_.Backtrace("");
    if (absl::StartsWith(inner, kHead) && absl::EndsWith(outer, kTail)) {
      EvalError e;
      e.msg = std::string(inner.substr(inner.rfind('\n') + 1));
      e.trace = absl::StrCat(
          absl::string_view(outer).substr(0, outer.size() - kTail.size()),
          inner.substr(kHead.size()));
      e.has_trace = true;
      throw e;
    }
    Fail(absl::StrCat("cannot load ", l->module, ": ", inner));
  }
  for (size_t i = 0; i < l->to.size(); i++) {
    auto it = mod->find(l->from[i]);
    if (it == mod->end()) {
      fr.tf->pos = l->from_pos[i];
      std::vector<std::string> names;
      for (auto& [k, v] : *mod) names.push_back(k);
      Fail(absl::StrCat("load: name ", l->from[i], " not found in module ",
                        l->module, DidYouMean(l->from[i], names)));
    }
    SetIdent(fr, l->to[i].get(), it->second);
  }
}

std::string ArgCountError(const FunctionObj* fn, size_t got) {
  const FuncDecl* d = fn->decl;
  return absl::StrCat("function ", d->name, " accepts ",
                      d->num_defaults > 0 ? "at most " : "", d->num_params,
                      " positional argument", d->num_params == 1 ? "" : "s",
                      " (", got, " given)");
}

Value Eval::CallFunction(FunctionObj* fn, const Args& args) {
  const FuncDecl* d = fn->decl;
  th_.CheckStack();
  if (static_cast<int>(th_.stack.size()) >= th_.max_call_depth)
    Fail("maximum recursion depth exceeded");
  if (!th_.dialect.allow_recursion) {
    for (auto& f : th_.stack)
      if (f.name == &d->name)
        Fail(absl::StrCat("function ", d->name, " called recursively"));
  }
  absl::InlinedVector<Value, 12> locals(d->nlocals);
  int nparams = d->num_params + d->num_kwonly;
  size_t npos = args.pos.size();
  // Positional arguments.
  size_t direct = std::min<size_t>(npos, d->num_params);
  for (size_t i = 0; i < direct; i++) locals[i] = args.pos[i];
  int slot = nparams;
  if (d->has_varargs) {
    std::vector<Value> extra;
    for (size_t i = direct; i < npos; i++) extra.push_back(args.pos[i]);
    locals[slot++] = extra.empty() ? EmptyTuple() : NewTuple(std::move(extra));
  } else if (npos > direct) {
    Fail(ArgCountError(fn, npos));
  }
  Value kwargs;
  if (d->has_kwargs) {
    kwargs = NewDict();
    locals[slot] = kwargs;
  }
  for (auto& [k, v] : args.kw) {
    const std::string& name = StrOf(k);
    int found = -1;
    for (int i = 0; i < nparams; i++) {
      if (d->param_names[i] == name) {
        found = i;
        break;
      }
    }
    if (found >= 0) {
      if (!locals[found].IsNull())
        Fail(absl::StrCat("function ", d->name,
                          " got multiple values for parameter \"", name, "\""));
      locals[found] = v;
    } else if (d->has_kwargs) {
      auto* dict = DictOf(kwargs);
      if (!dict->t.Insert(k, v))
        Fail(absl::StrCat("function ", d->name,
                          " got multiple values for parameter \"", name, "\""));
    } else {
      Fail(absl::StrCat(
          "function ", d->name, " got an unexpected keyword argument \"", name,
          "\"",
          DidYouMean(name, std::vector<std::string>(
                               d->param_names.begin(),
                               d->param_names.begin() + nparams))));
    }
  }
  if (static_cast<int>(direct) < nparams || !args.kw.empty()) {
    std::vector<std::string> missing;
    for (int i = 0; i < nparams; i++) {
      if (locals[i].IsNull()) {
        if (!fn->defaults[i].IsNull())
          locals[i] = fn->defaults[i];
        else
          missing.push_back(d->param_names[i]);
      }
    }
    if (!missing.empty()) {
      std::string names;
      for (size_t i = 0; i < missing.size(); i++)
        absl::StrAppend(&names, i ? ", " : "", missing[i]);
      Fail(absl::StrCat("function ", d->name, " missing ", missing.size(),
                        " argument", missing.size() == 1 ? "" : "s", " (",
                        names, ")"));
    }
  }
  // Wrap captured parameters in cells.
  for (int i = 0; i < d->nlocals; i++) {
    if (d->local_is_cell[i]) {
      auto* cell = new CellObj();
      cell->Track();
      cell->v = std::move(locals[i]);
      locals[i] = Value::Adopt(cell);
    }
  }
  th_.stack.push_back(Thread::Frame{&d->name, fn->program->file.get(), d->pos});
  Frame fr{locals.data(),     fn,     fn->module.as<ModuleObj>(), d,
           &th_.stack.back(), Value()};
  try {
    Exec(fr, d->body);
  } catch (EvalError& e) {
    if (!e.has_trace) {
      e.trace = th_.Backtrace(e.msg);
      e.has_trace = true;
    }
    th_.stack.pop_back();
    throw;
  }
  th_.stack.pop_back();
  if (fr.result.IsNull()) return None();
  return std::move(fr.result);
}

}  // namespace

void ChargeCurrent(uint64_t n) {
  if (t_current_thread && n) t_current_thread->Charge(n);
}

Value CallValue(Thread& th, const Value& fn, const Args& args) {
  switch (fn.kind()) {
    case Kind::kFunction: {
      Eval ev(th);
      return ev.CallFunction(fn.as<FunctionObj>(), args);
    }
    case Kind::kBuiltin: {
      auto* b = fn.as<BuiltinObj>();
      try {
        Value r = b->ptr ? b->ptr(th, b->recv, args) : b->fn(th, b->recv, args);
        if (r.IsNull()) return None();
        return r;
      } catch (EvalError& e) {
        if (!e.has_trace) {
          th.stack.push_back(Thread::Frame{&b->name, nullptr, Pos{}});
          e.trace = th.Backtrace(e.msg);
          e.has_trace = true;
          th.stack.pop_back();
        }
        throw;
      }
    }
    default:
      Fail(absl::StrCat("invalid call of non-function (", TypeName(fn), ")"));
  }
}

const std::string& FunctionName(const Value& fn) {
  return fn.as<FunctionObj>()->decl->name;
}
std::string ModuleName(const Value& m) { return m.as<ModuleObj>()->name; }

absl::StatusOr<Value> ExecFileModule(Thread& th, std::string_view filename,
                                     std::string_view source,
                                     const StringDict& predeclared,
                                     bool freeze) {
  auto parsed = Parse(filename, source, th.dialect);
  if (!parsed.ok()) return parsed.status();
  auto prog = std::make_shared<Program>();
  prog->file = std::move(*parsed);
  std::vector<std::string> pre_names;
  std::vector<Value> pre_values;
  for (auto& [k, v] : predeclared) {
    pre_names.push_back(k);
    pre_values.push_back(v);
  }
  auto pre_index = [&](std::string_view n) -> int {
    for (size_t i = 0; i < pre_names.size(); i++)
      if (pre_names[i] == n) return static_cast<int>(i);
    return -1;
  };
  const Dialect& d = th.dialect;
  auto uni_index = [&](std::string_view n) { return UniverseIndex(n, d); };
  absl::Status st = Resolve(prog->file.get(), th.dialect, pre_index, uni_index);
  if (!st.ok()) return st;
  auto* mod = new ModuleObj();
  mod->Track();
  Value modv = Value::Adopt(mod);
  mod->name = std::string(filename);
  mod->program = prog;
  mod->globals.resize(prog->file->global_names.size());
  mod->predeclared = std::move(pre_values);
  Thread::StackScope stack_scope(th);
  const FuncDecl* top = prog->file->toplevel.get();
  std::vector<Value> locals(top->nlocals);
  static const std::string kTop = "<toplevel>";
  size_t depth = th.stack.size();
  th.stack.push_back(Thread::Frame{&kTop, prog->file.get(), Pos{1, 1}});
  Frame fr{locals.data(), nullptr, mod, top, &th.stack.back(), Value()};
  try {
    Eval ev(th);
    ev.Exec(fr, prog->file->stmts);
  } catch (EvalError& e) {
    std::string msg = e.has_trace ? e.trace : th.Backtrace(e.msg);
    th.stack.resize(depth);
    locals.clear();
    return absl::UnknownError(msg);
  }
  th.stack.resize(depth);
  if (freeze) Freeze(modv);
  return modv;
}

absl::StatusOr<StringDict> ExecFile(Thread& th, std::string_view filename,
                                    std::string_view source,
                                    const StringDict& predeclared) {
  auto m = ExecFileModule(th, filename, source, predeclared, true);
  if (!m.ok()) return m.status();
  StringDict out;
  auto* mod = m->as<ModuleObj>();
  const auto& names = mod->program->file->global_names;
  for (size_t i = 0; i < names.size(); i++)
    if (!mod->globals[i].IsNull()) out[names[i]] = mod->globals[i];
  return out;
}

absl::StatusOr<Value> Call(
    Thread& th, const Value& fn, std::span<const Value> args,
    const std::vector<std::pair<std::string, Value>>& kwargs) {
  std::vector<std::pair<Value, Value>> kw;
  for (auto& [k, v] : kwargs) kw.emplace_back(Str(k), v);
  size_t depth = th.stack.size();
  Thread::StackScope stack_scope(th);
  try {
    return CallValue(th, fn, Args{args, kw});
  } catch (EvalError& e) {
    th.stack.resize(depth);
    return absl::UnknownError(e.has_trace ? e.trace : th.Backtrace(e.msg));
  }
}

}  // namespace fault::starlark
