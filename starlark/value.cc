#include "starlark/value.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "starlark/interp.h"

namespace fault::starlark {

NoneObj g_none;
BoolObj g_true(true), g_false(false);

namespace {
struct ImmortalInit {
  ImmortalInit() {
    g_none.MakeImmortal();
    g_true.MakeImmortal();
    g_false.MakeImmortal();
  }
} g_immortal_init;

// ---- deferred destruction (no deep recursion when freeing long chains) ----
thread_local int t_destroy_depth = 0;
thread_local std::vector<Object*> t_pending;

// ---- cycle collector registry ----
std::mutex& GcMu() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}
Container* g_gc_head = nullptr;
size_t g_gc_count = 0;
}  // namespace

void Fail(std::string msg) { throw EvalError{std::move(msg), "", false}; }

// ---- small-object allocation ----
// Interpreters allocate many short-lived objects of a few sizes; per-thread
// free lists of fixed-size blocks avoid most malloc/free traffic. A block
// freed on another thread (a shared frozen object) joins that thread's list.
// The fast paths (Object::operator new/delete) are inline in value.h.
namespace alloc {
thread_local constinit void* t_head[kClasses] = {};
thread_local constinit bool t_registered = false;
}  // namespace alloc

namespace {
constexpr size_t kSlabBlocks = 128;  // blocks carved from one malloc

// Blocks are carved from slabs and never returned to malloc: a freed block
// goes to the free list of the thread that frees it, and a thread's lists
// go to a process-wide pool when the thread exits (like CPython's object
// arenas, memory is kept for reuse rather than returned).
struct Pool {
  std::mutex mu;
  void* head[alloc::kClasses] = {};
};
Pool& GlobalPool() {
  static Pool* p = new Pool();
  return *p;
}

// Moves this thread's lists to the pool when the thread exits.
struct FreeListsOwner {
  ~FreeListsOwner() {
    Pool& pool = GlobalPool();
    std::lock_guard<std::mutex> l(pool.mu);
    for (int c = 0; c < alloc::kClasses; c++) {
      void*& head = alloc::t_head[c];
      while (head) {
        void* next = *static_cast<void**>(head);
        *static_cast<void**>(head) = pool.head[c];
        pool.head[c] = head;
        head = next;
      }
    }
  }
};
thread_local FreeListsOwner t_free_owner;
}  // namespace

namespace alloc {
void Register() {
  // Touching the thread_local constructs it, which registers its destructor.
  static_cast<void>(&t_free_owner);
  t_registered = true;
}

void* Refill(int c) {
  if (!t_registered) Register();
  {
    Pool& pool = GlobalPool();
    std::lock_guard<std::mutex> l(pool.mu);
    if (void* p = pool.head[c]) {
      // Take the whole pooled list.
      pool.head[c] = nullptr;
      t_head[c] = *static_cast<void**>(p);
      return p;
    }
  }
  size_t sz = kClassSize[c];
  char* slab = static_cast<char*>(::operator new(sz* kSlabBlocks));
  void* head = nullptr;
  for (size_t i = kSlabBlocks - 1; i >= 1; i--) {
    void* b = slab + i * sz;
    *static_cast<void**>(b) = head;
    head = b;
  }
  t_head[c] = head;
  return slab;
}

void* NewLarge(size_t size) { return ::operator new(size); }
void DeleteLarge(void* p, size_t size) { ::operator delete(p); }

void DestroySlow(Object* o) {
  if (t_destroy_depth > 0) {
    t_pending.push_back(o);
    return;
  }
  t_destroy_depth++;
  delete o;
  while (!t_pending.empty()) {
    Object* p = t_pending.back();
    t_pending.pop_back();
    delete p;
  }
  t_destroy_depth--;
}
}  // namespace alloc

Container::Container(Kind k) : Object(k) {}

void Container::Track() {
  if (tracked_) return;
  std::lock_guard<std::mutex> l(GcMu());
  tracked_ = true;
  gc_next_ = g_gc_head;
  if (g_gc_head) g_gc_head->gc_prev_ = this;
  g_gc_head = this;
  g_gc_count++;
}

Container::~Container() {
  if (!tracked_) return;
  std::lock_guard<std::mutex> l(GcMu());
  if (gc_prev_)
    gc_prev_->gc_next_ = gc_next_;
  else
    g_gc_head = gc_next_;
  if (gc_next_) gc_next_->gc_prev_ = gc_prev_;
  g_gc_count--;
}

size_t TrackedContainers() {
  std::lock_guard<std::mutex> l(GcMu());
  return g_gc_count;
}

size_t CollectCycles() {
  std::vector<Container*> all;
  {
    std::lock_guard<std::mutex> l(GcMu());
    for (Container* c = g_gc_head; c; c = c->gc_next_) all.push_back(c);
  }
  for (Container* c : all) {
    c->gc_refs_ =
        c->mode_ == Object::kImmortal ? (int64_t{1} << 40) : c->refcount();
    c->gc_flag_ = 1;  // candidate
  }
  struct Sub : Visitor {
    void Visit(Value& v) override {
      if (v.IsNull() || v.IsSmallInt()) return;
      Object* o = v.obj();
      if (o->IsContainer() && o->gc_flag_)
        static_cast<Container*>(o)->gc_refs_--;
    }
  } sub;
  for (Container* c : all) c->VisitRefs(sub);
  // Mark everything reachable from externally referenced containers.
  std::vector<Container*> stack;
  for (Container* c : all)
    if (c->gc_refs_ > 0) {
      c->gc_flag_ = 2;
      stack.push_back(c);
    }
  struct Mark : Visitor {
    std::vector<Container*>* stack;
    void Visit(Value& v) override {
      if (v.IsNull() || v.IsSmallInt()) return;
      Object* o = v.obj();
      if (o->IsContainer() && o->gc_flag_ == 1) {
        o->gc_flag_ = 2;
        stack->push_back(static_cast<Container*>(o));
      }
    }
  } mark;
  mark.stack = &stack;
  while (!stack.empty()) {
    Container* c = stack.back();
    stack.pop_back();
    c->VisitRefs(mark);
  }
  std::vector<Value> garbage;
  for (Container* c : all) {
    if (c->gc_flag_ == 1) garbage.emplace_back(static_cast<Object*>(c));
    c->gc_flag_ = 0;
  }
  size_t n = garbage.size();
  for (auto& g : garbage) g.obj()->ClearRefs();
  garbage.clear();
  return n;
}

// ---- constructors ----
Value IntSlow(int64_t v) { return Value::Adopt(new BigIntObj(BigInt(v))); }
Value Int(BigInt v) {
  int64_t x;
  if (v.ToInt64(&x) && Value::FitsSmall(x)) return Value::SmallInt(x);
  return Value::Adopt(new BigIntObj(std::move(v)));
}
Value Float(double d) { return Value::Adopt(new FloatObj(d)); }
Value Str(std::string&& s) { return Value::Adopt(new StringObj(std::move(s))); }
Value StrConcat(std::string_view a, std::string_view b, Kind k) {
  auto* o = new StringObj(std::string_view(), k);
  o->s.reserve(a.size() + b.size());
  o->s.append(a);
  o->s.append(b);
  return Value::Adopt(o);
}
Value Bytes(std::string s) {
  return Value::Adopt(new StringObj(std::move(s), Kind::kBytes));
}
Value NewList(std::vector<Value> v) {
  auto* l = new ListObj(std::move(v));
  l->Track();
  return Value::Adopt(l);
}
TupleObj::TupleObj(std::vector<Value> e)
    : Container(Kind::kTuple), v(std::move(e)) {
  // A tuple of non-containers can never be part of a cycle.
  for (auto& x : v) {
    if (!x.IsSmallInt() && x.obj()->IsContainer()) {
      Track();
      break;
    }
  }
}
Value NewTuple(std::vector<Value> v) {
  return Value::Adopt(new TupleObj(std::move(v)));
}
Value EmptyTuple() {
  static TupleObj* t = [] {
    auto* t = new TupleObj({});
    t->MakeImmortal();
    return t;
  }();
  return Value(t);
}
Value NewDict() {
  auto* d = new DictObj();
  d->Track();
  return Value::Adopt(d);
}
Value NewSet() {
  auto* s = new SetObj();
  s->Track();
  return Value::Adopt(s);
}
Value NewBuiltin(std::string name, BuiltinFn fn) {
  return Value::Adopt(new BuiltinObj(std::move(name), std::move(fn)));
}

int64_t RangeObj::Len() const {
  if (step > 0) {
    if (start >= stop) return 0;
    return static_cast<int64_t>(
        (static_cast<__int128>(stop) - start - 1) / step + 1);
  }
  if (start <= stop) return 0;
  return static_cast<int64_t>((static_cast<__int128>(start) - stop - 1) /
                                  (-static_cast<__int128>(step)) +
                              1);
}

std::string HostValue::Repr() const { return absl::StrCat("<", Type(), ">"); }

// ---- hash table ----
int64_t HashTable::Lookup(const Value& key, uint64_t hash, size_t* slot) const {
  if (index_.empty()) {
    *slot = 0;
    return -1;
  }
  size_t mask = index_.size() - 1;
  size_t i = hash & mask;
  size_t first_deleted = SIZE_MAX;
  const int32_t* index = index_.data();
  const Entry* entries = entries_.data();
  // String keys (the common case) are compared inline: equal hashes,
  // lengths and bytes.
  const std::string* key_str =
      !key.IsSmallInt() && key.obj()->kind() == Kind::kString
          ? &key.as<StringObj>()->s
          : nullptr;
  for (size_t perturb = hash;; perturb >>= 5) {
    int32_t e = index[i];
    if (e >= 0) {
      const Entry& en = entries[e];
      if (en.hash == hash) {
        if (en.key.bits() == key.bits()) {
          *slot = i;
          return e;
        }
        if (key_str) {
          if (!en.key.IsSmallInt() && en.key.obj()->kind() == Kind::kString) {
            const std::string& s = en.key.as<StringObj>()->s;
            if (s.size() == key_str->size() &&
                std::memcmp(s.data(), key_str->data(), s.size()) == 0) {
              *slot = i;
              return e;
            }
          }
        } else if (Equal(en.key, key)) {
          *slot = i;
          return e;
        }
      }
    } else if (e == -1) {
      *slot = first_deleted != SIZE_MAX ? first_deleted : i;
      return -1;
    } else if (first_deleted == SIZE_MAX) {
      first_deleted = i;
    }
    i = (i * 5 + 1 + perturb) & mask;
  }
}

void HashTable::Rehash(size_t cap) {
  Compact();
  index_.assign(cap, -1);
  size_t mask = cap - 1;
  for (size_t k = 0; k < entries_.size(); k++) {
    size_t i = entries_[k].hash & mask;
    for (size_t perturb = entries_[k].hash; index_[i] != -1; perturb >>= 5)
      i = (i * 5 + 1 + perturb) & mask;
    index_[i] = static_cast<int32_t>(k);
  }
}

void HashTable::Compact() {
  if (live_ == entries_.size()) return;
  size_t j = 0;
  for (size_t i = 0; i < entries_.size(); i++) {
    if (!entries_[i].key.IsNull()) {
      if (i != j) entries_[j] = std::move(entries_[i]);
      j++;
    }
  }
  entries_.resize(j);
}

bool HashTable::Insert(const Value& key, Value value) {
  return Insert(key, Hash(key), std::move(value));
}

bool HashTable::Insert(const Value& key, uint64_t hash, Value value) {
  if (index_.empty() || (entries_.size() + 1) * 3 > index_.size() * 2) {
    size_t cap = 8;
    while ((live_ + 1) * 2 > cap) cap *= 2;
    Rehash(cap);
  }
  size_t slot;
  int64_t e = Lookup(key, hash, &slot);
  if (e >= 0) {
    entries_[e].value = std::move(value);
    return false;
  }
  index_[slot] = static_cast<int32_t>(entries_.size());
  entries_.push_back(Entry{key, std::move(value), hash});
  live_++;
  return true;
}

bool HashTable::Erase(const Value& key, Value* old_value) {
  uint64_t hash = Hash(key);
  size_t slot;
  int64_t e = Lookup(key, hash, &slot);
  if (e < 0) return false;
  if (old_value) *old_value = std::move(entries_[e].value);
  entries_[e].key = Value();
  entries_[e].value = Value();
  index_[slot] = -2;
  live_--;
  if (live_ == 0) {
    entries_.clear();
    index_.clear();
  }
  return true;
}

void HashTable::Clear() {
  std::vector<Entry> old;
  old.swap(entries_);
  index_.clear();
  live_ = 0;
}

// ---- generic operations ----
std::string TypeName(const Value& v) {
  switch (v.kind()) {
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "string";
    case Kind::kBytes:
      return "bytes";
    case Kind::kList:
      return "list";
    case Kind::kTuple:
      return "tuple";
    case Kind::kDict:
      return "dict";
    case Kind::kSet:
      return "set";
    case Kind::kRange:
      return "range";
    case Kind::kFunction:
      return "function";
    case Kind::kBuiltin:
      return "builtin_function_or_method";
    case Kind::kModule:
      return "module";
    case Kind::kCell:
      return "cell";
    case Kind::kHost:
      return v.as<HostValue>()->Type();
    case Kind::kStringElems: {
      auto* e = v.as<StringElemsObj>();
      if (e->str.Is(Kind::kBytes)) return "bytes.elems";
      return e->codepoints ? "string.codepoints" : "string.elems";
    }
  }
  return "?";
}

bool Truth(const Value& v) {
  if (v.IsSmallInt()) return v.small() != 0;
  switch (v.kind()) {
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return v.as<BoolObj>()->v;
    case Kind::kInt:
      return !v.as<BigIntObj>()->v.IsZero();
    case Kind::kFloat:
      return FloatOf(v) != 0.0;
    case Kind::kString:
    case Kind::kBytes:
      return !StrOf(v).empty();
    case Kind::kList:
      return !ListOf(v)->v.empty();
    case Kind::kTuple:
      return !TupleOf(v)->v.empty();
    case Kind::kDict:
      return DictOf(v)->t.size() != 0;
    case Kind::kSet:
      return SetOf(v)->t.size() != 0;
    case Kind::kRange:
      return v.as<RangeObj>()->Len() != 0;
    case Kind::kHost:
      return v.as<HostValue>()->Truth();
    default:
      return true;
  }
}

namespace {
uint64_t MixInt(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}
thread_local int t_depth = 0;
struct DepthGuard {
  DepthGuard() {
    // The guards being unwound restore the count; this one undoes only its
    // own step (resetting to 0 here left the count negative afterwards, so
    // each failure allowed 1000 more levels of native recursion).
    if (++t_depth > 1000) {
      t_depth--;
      Fail("maximum recursion depth exceeded");
    }
  }
  ~DepthGuard() { t_depth--; }
};
}  // namespace

uint64_t HashSlow(const Value& v) {
  if (v.IsSmallInt()) return MixInt(static_cast<uint64_t>(v.small()));
  switch (v.kind()) {
    case Kind::kNone:
      return 0x1234567;
    case Kind::kBool:
      return v.as<BoolObj>()->v ? MixInt(1) : MixInt(0);
    case Kind::kInt:
      return v.as<BigIntObj>()->v.Hash();
    case Kind::kFloat: {
      double d = FloatOf(v);
      if (std::isfinite(d) && d == std::trunc(d)) {
        if (std::fabs(d) < 9.2e18) {
          int64_t i = static_cast<int64_t>(d);
          if (Value::FitsSmall(i)) return MixInt(static_cast<uint64_t>(i));
          return BigInt(i).Hash();
        }
        auto b = BigInt::FromDouble(d);
        return b->Hash();
      }
      uint64_t bits;
      std::memcpy(&bits, &d, sizeof bits);
      return MixInt(bits);
    }
    case Kind::kString:
    case Kind::kBytes: {
      auto* s = v.as<StringObj>();
      if (s->hash != 0) return s->hash;
      uint64_t h =
          HashStringBytes(s->s) ^ (v.kind() == Kind::kBytes ? 0x55 : 0);
      if (h == 0) h = 1;
      // Frozen strings may be shared between threads: they get their hash
      // when frozen, and are never written afterwards.
      if (!s->frozen()) s->hash = h;
      return h;
    }
    case Kind::kTuple: {
      DepthGuard g;
      uint64_t h = 0x345678;
      for (auto& x : TupleOf(v)->v) h = (h ^ Hash(x)) * 1000003ull;
      return h;
    }
    case Kind::kRange: {
      auto* r = v.as<RangeObj>();
      int64_t n = r->Len();
      if (n == 0) return MixInt(0x7261);
      uint64_t h = MixInt(static_cast<uint64_t>(n)) ^
                   (MixInt(static_cast<uint64_t>(r->start)) * 31);
      if (n > 1) h ^= MixInt(static_cast<uint64_t>(r->step)) * 1000003ull;
      return h;
    }
    case Kind::kFunction:
    case Kind::kBuiltin:
    case Kind::kModule:
      return MixInt(v.bits());
    case Kind::kHost: {
      uint64_t h;
      if (v.as<HostValue>()->Hash(&h)) return h;
      break;
    }
    default:
      break;
  }
  Fail(absl::StrCat("unhashable type: ", TypeName(v)));
}

bool IntToInt64(const Value& v, int64_t* out) {
  if (v.IsSmallInt()) {
    *out = v.small();
    return true;
  }
  return v.as<BigIntObj>()->v.ToInt64(out);
}
BigInt ToBigInt(const Value& v) {
  if (v.IsSmallInt()) return BigInt(v.small());
  return v.as<BigIntObj>()->v;
}
double IntToDouble(const Value& v) {
  if (v.IsSmallInt()) return static_cast<double>(v.small());
  double d = v.as<BigIntObj>()->v.ToDouble();
  if (!std::isfinite(d)) Fail("int too large to convert to float");
  return d;
}

namespace {
bool IsNumber(Kind k) { return k == Kind::kInt || k == Kind::kFloat; }

// Compares int and float exactly.
int CompareIntFloat(const Value& i, double f) {
  if (std::isnan(f)) return 2;  // unordered
  if (std::isinf(f)) return f > 0 ? -1 : 1;
  if (i.IsSmallInt()) {
    double d = static_cast<double>(i.small());
    if (d < f) return -1;
    if (d > f) return 1;
    // d == f, but the int may have lost precision converting.
    auto b = BigInt::FromDouble(f);
    return BigInt::Compare(BigInt(i.small()), *b);
  }
  double ft = std::floor(f);
  auto b = BigInt::FromDouble(ft);
  int c = BigInt::Compare(i.as<BigIntObj>()->v, *b);
  if (c != 0) return c;
  return ft == f ? 0 : -1;
}

int CompareNumbers(const Value& a, const Value& b) {
  if (a.IsSmallInt() && b.IsSmallInt())
    return a.small() < b.small() ? -1 : (a.small() > b.small() ? 1 : 0);
  Kind ka = a.kind(), kb = b.kind();
  if (ka == Kind::kInt && kb == Kind::kInt)
    return BigInt::Compare(ToBigInt(a), ToBigInt(b));
  if (ka == Kind::kFloat && kb == Kind::kFloat) {
    double x = FloatOf(a), y = FloatOf(b);
    // Starlark orders NaN above all other floats and equal to itself.
    if (std::isnan(x) || std::isnan(y)) {
      if (std::isnan(x) && std::isnan(y)) return 0;
      return std::isnan(x) ? 1 : -1;
    }
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (ka == Kind::kInt) {
    double f = FloatOf(b);
    if (std::isnan(f)) return -1;
    return CompareIntFloat(a, f);
  }
  double f = FloatOf(a);
  if (std::isnan(f)) return 1;
  return -CompareIntFloat(b, f);
}
}  // namespace

bool Equal(const Value& a, const Value& b) {
  if (a.bits() == b.bits()) {
    if (a.kind() == Kind::kFloat) return !std::isnan(FloatOf(a));
    return true;
  }
  Kind ka = a.kind(), kb = b.kind();
  if (IsNumber(ka) && IsNumber(kb)) {
    if (ka == Kind::kFloat && std::isnan(FloatOf(a))) return false;
    if (kb == Kind::kFloat && std::isnan(FloatOf(b))) return false;
    return CompareNumbers(a, b) == 0;
  }
  if (ka != kb) return false;
  switch (ka) {
    case Kind::kString:
    case Kind::kBytes: {
      auto* x = a.as<StringObj>();
      auto* y = b.as<StringObj>();
      if (x->hash && y->hash && x->hash != y->hash) return false;
      return x->s == y->s;
    }
    case Kind::kList:
    case Kind::kTuple: {
      DepthGuard g;
      const auto& x = ka == Kind::kList ? ListOf(a)->v : TupleOf(a)->v;
      const auto& y = ka == Kind::kList ? ListOf(b)->v : TupleOf(b)->v;
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); i++)
        if (x[i].bits() != y[i].bits() && !Equal(x[i], y[i])) return false;
      return true;
    }
    case Kind::kDict: {
      DepthGuard g;
      auto* x = DictOf(a);
      auto* y = DictOf(b);
      if (x->t.size() != y->t.size()) return false;
      bool eq = true;
      x->t.ForEach([&](HashTable::Entry& e) {
        if (!eq) return;
        auto* f = y->t.Find(e.key, e.hash);
        if (!f || !Equal(f->value, e.value)) eq = false;
      });
      return eq;
    }
    case Kind::kSet: {
      auto* x = SetOf(a);
      auto* y = SetOf(b);
      if (x->t.size() != y->t.size()) return false;
      bool eq = true;
      x->t.ForEach([&](HashTable::Entry& e) {
        if (eq && !y->t.Find(e.key, e.hash)) eq = false;
      });
      return eq;
    }
    case Kind::kRange: {
      auto* x = a.as<RangeObj>();
      auto* y = b.as<RangeObj>();
      int64_t n = x->Len();
      if (n != y->Len()) return false;
      if (n == 0) return true;
      if (x->start != y->start) return false;
      return n == 1 || x->step == y->step;
    }
    case Kind::kHost: {
      int c;
      return a.as<HostValue>()->CompareTo(*b.as<HostValue>(), &c) && c == 0;
    }
    case Kind::kBool:
    case Kind::kNone:
      return false;
    default:
      return false;
  }
}

int Compare(const Value& a, const Value& b) {
  Kind ka = a.kind(), kb = b.kind();
  if (IsNumber(ka) && IsNumber(kb)) return CompareNumbers(a, b);
  if (ka == kb) {
    switch (ka) {
      case Kind::kString:
      case Kind::kBytes: {
        int c = StrOf(a).compare(StrOf(b));
        return c < 0 ? -1 : (c > 0 ? 1 : 0);
      }
      case Kind::kBool:
        return static_cast<int>(a.as<BoolObj>()->v) -
               static_cast<int>(b.as<BoolObj>()->v);
      case Kind::kList:
      case Kind::kTuple: {
        DepthGuard g;
        const auto& x = ka == Kind::kList ? ListOf(a)->v : TupleOf(a)->v;
        const auto& y = ka == Kind::kList ? ListOf(b)->v : TupleOf(b)->v;
        for (size_t i = 0; i < x.size() && i < y.size(); i++) {
          if (x[i].IsSmallInt() && y[i].IsSmallInt()) {
            if (x[i].small() != y[i].small())
              return x[i].small() < y[i].small() ? -1 : 1;
            continue;
          }
          if (!Equal(x[i], y[i])) return Compare(x[i], y[i]);
        }
        return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
      }
      case Kind::kHost: {
        int c;
        if (a.as<HostValue>()->CompareTo(*b.as<HostValue>(), &c)) return c;
        break;
      }
      default:
        Fail(absl::StrCat(TypeName(a), " < ", TypeName(b), " not implemented"));
    }
  }
  Fail(absl::StrCat(TypeName(a), " < ", TypeName(b), " not implemented"));
}

// ---- formatting ----
namespace {

// Code points that repr() escapes although they are valid: those Go's
// strconv.IsPrint rejects among the assigned ones, namely C1 controls,
// spaces other than U+0020, line and paragraph separators, format
// characters (Cf) and private use. (Unassigned code points are kept.)
bool IsInvisible(uint32_t cp) {
  static constexpr std::pair<uint32_t, uint32_t> kRanges[] = {
      {0x80, 0xA0},       {0xAD, 0xAD},        {0x600, 0x605},
      {0x61C, 0x61C},     {0x6DD, 0x6DD},      {0x70F, 0x70F},
      {0x890, 0x891},     {0x8E2, 0x8E2},      {0x1680, 0x1680},
      {0x180E, 0x180E},   {0x2000, 0x200F},    {0x2028, 0x202F},
      {0x205F, 0x2064},   {0x2066, 0x206F},    {0x3000, 0x3000},
      {0xE000, 0xF8FF},   {0xFEFF, 0xFEFF},    {0xFFF9, 0xFFFB},
      {0x110BD, 0x110BD}, {0x110CD, 0x110CD},  {0x13430, 0x1343F},
      {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A},  {0xE0001, 0xE0001},
      {0xE0020, 0xE007F}, {0xF0000, 0x10FFFF},
  };
  if (cp < 0x80) return false;
  for (auto [lo, hi] : kRanges)
    if (cp >= lo && cp <= hi) return true;
  return false;
}

void QuoteString(std::string* out, std::string_view s, bool bytes) {
  if (bytes) out->push_back('b');
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    switch (c) {
      case '"':
        out->append("\\\"");
        i++;
        continue;
      case '\\':
        out->append("\\\\");
        i++;
        continue;
      case '\n':
        out->append("\\n");
        i++;
        continue;
      case '\r':
        out->append("\\r");
        i++;
        continue;
      case '\t':
        out->append("\\t");
        i++;
        continue;
      case '\a':
        out->append("\\a");
        i++;
        continue;
      case '\b':
        out->append("\\b");
        i++;
        continue;
      case '\f':
        out->append("\\f");
        i++;
        continue;
      case '\v':
        out->append("\\v");
        i++;
        continue;
      default:
        break;
    }
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out->append(buf);
      i++;
      continue;
    }
    if (c < 0x80) {
      out->push_back(static_cast<char>(c));
      i++;
      continue;
    }
    // Multi-byte: copy a valid UTF-8 sequence, escape invalid bytes.
    int n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    bool ok = n > 0 && i + n <= s.size();
    for (int k = 1; ok && k < n; k++)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) ok = false;
    if (ok && n == 3) {
      unsigned c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0)) ok = false;
    }
    if (ok && n == 4) {
      unsigned c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xf0 && c1 < 0x90) || c > 0xf4 || (c == 0xf4 && c1 >= 0x90))
        ok = false;
    }
    if (ok) {
      uint32_t cp = c & (0x7F >> n);
      for (int k = 1; k < n; k++)
        cp = cp << 6 | (static_cast<unsigned char>(s[i + k]) & 0x3F);
      if (IsInvisible(cp)) {
        char buf[16];
        std::snprintf(buf, sizeof buf, cp < 0x10000 ? "\\u%04x" : "\\U%08x",
                      cp);
        out->append(buf);
      } else {
        out->append(s.substr(i, n));
      }
      i += n;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out->append(buf);
      i++;
    }
  }
  out->push_back('"');
}

thread_local std::vector<const Object*> t_repr_stack;
}  // namespace

std::string FormatFloat(double d, char conv, int prec) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "+inf" : "-inf";
  char buf[512];
  if (conv == 'r') {
    // Shortest round-trip digits, Python repr layout.
    char digits[64];
    auto res = std::to_chars(digits, digits + sizeof digits, d,
                             std::chars_format::scientific);
    std::string sci(digits, res.ptr);
    // sci like "-1.2345e+05"
    size_t e = sci.find('e');
    std::string mant = sci.substr(0, e);
    int exp = std::stoi(sci.substr(e + 1));
    bool neg = mant[0] == '-';
    if (neg) mant = mant.substr(1);
    std::string ds;
    for (char c : mant)
      if (c != '.') ds.push_back(c);
    std::string out = neg ? "-" : "";
    if (exp < -4 || exp >= 16) {
      out += ds.substr(0, 1);
      if (ds.size() > 1) out += "." + ds.substr(1);
      std::snprintf(buf, sizeof buf, "e%c%02d", exp < 0 ? '-' : '+',
                    exp < 0 ? -exp : exp);
      out += buf;
    } else if (exp < 0) {
      out += "0." + std::string(-exp - 1, '0') + ds;
    } else {
      if (static_cast<int>(ds.size()) <= exp + 1) {
        out += ds + std::string(exp + 1 - ds.size(), '0') + ".0";
      } else {
        out += ds.substr(0, exp + 1) + "." + ds.substr(exp + 1);
      }
    }
    return out;
  }
  if (prec < 0) prec = 6;
  if (prec > 400) prec = 400;
  char fmt[16];
  std::snprintf(fmt, sizeof fmt, "%%.%d%c", prec, conv);
  std::snprintf(buf, sizeof buf, fmt, d);
  return buf;
}

void ReprTo(std::string* out, const Value& v) {
  if (v.IsSmallInt()) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v.small());
    out->append(buf, r.ptr);
    return;
  }
  switch (v.kind()) {
    case Kind::kNone:
      out->append("None");
      return;
    case Kind::kBool:
      out->append(v.as<BoolObj>()->v ? "True" : "False");
      return;
    case Kind::kInt:
      out->append(v.as<BigIntObj>()->v.ToString());
      return;
    case Kind::kFloat:
      out->append(FormatFloat(FloatOf(v)));
      return;
    case Kind::kString:
      QuoteString(out, StrOf(v), false);
      return;
    case Kind::kBytes:
      QuoteString(out, StrOf(v), true);
      return;
    case Kind::kList:
    case Kind::kTuple:
    case Kind::kDict:
    case Kind::kSet: {
      const Object* o = v.obj();
      for (const Object* p : t_repr_stack) {
        if (p == o) {
          out->append(v.kind() == Kind::kList   ? "[...]"
                      : v.kind() == Kind::kDict ? "{...}"
                                                : "...");
          return;
        }
      }
      if (t_repr_stack.size() > 500)
        Fail("maximum recursion depth exceeded in repr");
      t_repr_stack.push_back(o);
      struct Pop {
        ~Pop() { t_repr_stack.pop_back(); }
      } pop;
      if (v.kind() == Kind::kList || v.kind() == Kind::kTuple) {
        bool list = v.kind() == Kind::kList;
        const auto& e = list ? ListOf(v)->v : TupleOf(v)->v;
        out->push_back(list ? '[' : '(');
        for (size_t i = 0; i < e.size(); i++) {
          if (i) out->append(", ");
          ReprTo(out, e[i]);
        }
        if (!list && e.size() == 1) out->push_back(',');
        out->push_back(list ? ']' : ')');
      } else if (v.kind() == Kind::kDict) {
        out->push_back('{');
        bool first = true;
        DictOf(v)->t.ForEach([&](HashTable::Entry& e) {
          if (!first) out->append(", ");
          first = false;
          ReprTo(out, e.key);
          out->append(": ");
          ReprTo(out, e.value);
        });
        out->push_back('}');
      } else {
        out->append("set([");
        bool first = true;
        SetOf(v)->t.ForEach([&](HashTable::Entry& e) {
          if (!first) out->append(", ");
          first = false;
          ReprTo(out, e.key);
        });
        out->append("])");
      }
      return;
    }
    case Kind::kRange: {
      auto* r = v.as<RangeObj>();
      if (r->step == 1)
        absl::StrAppend(out, "range(", r->start, ", ", r->stop, ")");
      else
        absl::StrAppend(out, "range(", r->start, ", ", r->stop, ", ", r->step,
                        ")");
      return;
    }
    case Kind::kFunction:
      absl::StrAppend(out, "<function ", FunctionName(v), ">");
      return;
    case Kind::kBuiltin: {
      auto* b = v.as<BuiltinObj>();
      if (!b->recv.IsNull())
        absl::StrAppend(out, "<built-in method ", b->name, " of ",
                        TypeName(b->recv), " value>");
      else
        absl::StrAppend(out, "<built-in function ", b->name, ">");
      return;
    }
    case Kind::kModule:
      absl::StrAppend(out, "<module ", ModuleName(v), ">");
      return;
    case Kind::kCell:
      out->append("<cell>");
      return;
    case Kind::kHost:
      out->append(v.as<HostValue>()->Repr());
      return;
    case Kind::kStringElems: {
      auto* e = v.as<StringElemsObj>();
      ReprTo(out, e->str);
      out->append(e->codepoints
                      ? (e->ords ? ".codepoint_ords()" : ".codepoints()")
                      : (e->ords && !e->str.Is(Kind::kBytes) ? ".elem_ords()"
                                                             : ".elems()"));
      return;
    }
  }
}

std::string Repr(const Value& v) {
  std::string s;
  ReprTo(&s, v);
  return s;
}

std::string ToStr(const Value& v) {
  if (v.kind() == Kind::kString) return StrOf(v);
  return Repr(v);
}

// ---- freezing ----
void Freeze(const Value& root) {
  if (root.IsNull() || root.IsSmallInt() || root.obj()->frozen()) return;
  std::vector<Object*> stack{root.obj()};
  struct Push : Visitor {
    std::vector<Object*>* s;
    void Visit(Value& v) override {
      if (!v.IsNull() && !v.IsSmallInt() && !v.obj()->frozen())
        s->push_back(v.obj());
    }
  } push;
  push.s = &stack;
  while (!stack.empty()) {
    Object* o = stack.back();
    stack.pop_back();
    if (o->frozen()) continue;
    // Freezing a function freezes its defaults and captured cells, not the
    // globals of the module it was defined in (that module may still be
    // running); a module freezes only when it is the root.
    if (o->kind() == Kind::kModule && o != root.obj()) continue;
    if (o->kind() == Kind::kString || o->kind() == Kind::kBytes) {
      Value tmp(o);
      Hash(tmp);  // cache the hash before the object becomes shareable
    }
    o->MarkFrozen();
    if (o->kind() == Kind::kHost) static_cast<HostValue*>(o)->Freeze();
    if (o->kind() == Kind::kStringElems) {
      push.Visit(static_cast<StringElemsObj*>(o)->str);
    }
    o->VisitRefs(push);
  }
}

std::string DidYouMean(std::string_view x,
                       const std::vector<std::string>& candidates,
                       std::string_view prefix) {
  auto fold = [](std::string_view s) {
    std::string out;
    for (char c : s)
      if (c != '_')
        out.push_back(
            static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    return out;
  };
  // Levenshtein distance over bytes, one row at a time.
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); j++) row[j] = j;
    for (size_t i = 1; i <= a.size(); i++) {
      size_t diag = row[0];
      row[0] = i;
      for (size_t j = 1; j <= b.size(); j++) {
        size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                           diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
        diag = up;
      }
    }
    return row[b.size()];
  };
  std::string fx = fold(x);
  size_t best_d = (fx.size() + 1) / 2;
  const std::string* best = nullptr;
  for (const std::string& c : candidates) {
    std::string fc = fold(c);
    if (fc.size() > fx.size() + best_d || fx.size() > fc.size() + best_d)
      continue;
    size_t d = distance(fx, fc);
    if (d < best_d) {
      best_d = d;
      best = &c;
    }
  }
  if (best == nullptr) return "";
  return absl::StrCat(" (did you mean ", std::string(prefix), *best, "?)");
}

bool IsFrozen(const Value& v) { return v.IsSmallInt() || v.obj()->frozen(); }

void CheckListMutable(ListObj* l, const char* what) {
  if (l->frozen()) Fail(absl::StrCat("cannot ", what, " frozen list"));
  if (l->iterating)
    Fail(absl::StrCat("cannot ", what, " list during iteration"));
}
void CheckDictMutable(DictObj* d, const char* what) {
  if (d->frozen()) Fail(absl::StrCat("cannot ", what, " frozen hash table"));
  if (d->iterating)
    Fail(absl::StrCat("cannot ", what, " hash table during iteration"));
}
void CheckSetMutable(SetObj* s, const char* what) {
  if (s->frozen()) Fail(absl::StrCat("cannot ", what, " frozen hash table"));
  if (s->iterating)
    Fail(absl::StrCat("cannot ", what, " hash table during iteration"));
}

int64_t Length(const Value& v) {
  switch (v.kind()) {
    case Kind::kString:
    case Kind::kBytes:
      return static_cast<int64_t>(StrOf(v).size());
    case Kind::kList:
      return static_cast<int64_t>(ListOf(v)->v.size());
    case Kind::kTuple:
      return static_cast<int64_t>(TupleOf(v)->v.size());
    case Kind::kDict:
      return static_cast<int64_t>(DictOf(v)->t.size());
    case Kind::kSet:
      return static_cast<int64_t>(SetOf(v)->t.size());
    case Kind::kRange:
      return v.as<RangeObj>()->Len();
    default:
      return -1;
  }
}

}  // namespace fault::starlark
