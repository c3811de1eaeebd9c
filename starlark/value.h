// Starlark values.
//
// A Value is one machine word: either a tagged small integer (63 bits,
// low bit set) or a pointer to a reference-counted Object. The null Value
// (all bits zero) means "unbound" and never reaches Starlark code.
//
// Reference counting and threads: a value that is not frozen belongs to the
// one Thread that created it and its count is updated with plain (relaxed
// load/store) operations. Freezing switches an object to atomic counting,
// so frozen values may be shared between threads and released from any of
// them. None, True, False and other static singletons are immortal.
//
// Cycles (a list that contains itself, a module and its functions) are
// reclaimed by CollectCycles(), a trial-deletion collector over the
// container objects (see gc in value.cc); it must run while no other thread
// executes Starlark.
#ifndef FAULT_STARLARK_VALUE_H_
#define FAULT_STARLARK_VALUE_H_

#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "starlark/bigint.h"

namespace fault::starlark {

enum class Kind : uint8_t {
  kNone,
  kBool,
  kInt,  // small ints are not objects; big ints are BigIntObj
  kFloat,
  kString,
  kBytes,
  kList,
  kTuple,
  kDict,
  kSet,
  kRange,
  kFunction,
  kBuiltin,
  kModule,
  kCell,
  kHost,
  kStringElems,  // the iterable views returned by elems()/codepoints()
};

class Object;
class Thread;
enum class Tok : uint8_t;  // syntax.h

// Thrown inside the interpreter; converted to absl::Status at the API.
struct EvalError {
  std::string msg;
  std::string trace;  // "Traceback ..." lines, filled when unwinding
  bool has_trace = false;
};
[[noreturn]] void Fail(std::string msg);

class Value {
 public:
  static constexpr int64_t kSmallMax = (int64_t{1} << 61) - 1;
  static constexpr int64_t kSmallMin = -(int64_t{1} << 61);

  Value() = default;
  Value(const Value& o) : bits_(o.bits_) { IncRef(); }
  Value(Value&& o) noexcept : bits_(o.bits_) { o.bits_ = 0; }
  [[gnu::always_inline]] Value& operator=(const Value& o) {
    if (bits_ != o.bits_) {
      uintptr_t old = bits_;
      bits_ = o.bits_;
      IncRef();
      DecRefBits(old);
    }
    return *this;
  }
  [[gnu::always_inline]] Value& operator=(Value&& o) noexcept {
    if (this != &o) {
      uintptr_t old = bits_;
      bits_ = o.bits_;
      o.bits_ = 0;
      DecRefBits(old);
    }
    return *this;
  }
  ~Value() { DecRefBits(bits_); }

  // Takes a new reference to o.
  explicit Value(Object* o);
  // Adopts o without incrementing (for freshly created objects: rc==0 ->1).
  static Value Adopt(Object* o);

  static Value SmallInt(int64_t v) {
    Value r;
    r.bits_ = (static_cast<uintptr_t>(v) << 1) | 1;
    return r;
  }
  static bool FitsSmall(int64_t v) { return v >= kSmallMin && v <= kSmallMax; }

  bool IsNull() const { return bits_ == 0; }
  explicit operator bool() const = delete;
  bool IsSmallInt() const { return bits_ & 1; }
  int64_t small() const { return static_cast<int64_t>(bits_) >> 1; }
  Object* obj() const { return reinterpret_cast<Object*>(bits_); }
  uintptr_t bits() const { return bits_; }
  Kind kind() const;
  bool Is(Kind k) const { return kind() == k; }
  bool IsNone() const;
  bool IsInt() const { return kind() == Kind::kInt; }

  template <typename T>
  T* as() const {
    return static_cast<T*>(obj());
  }

  // A Value with v's bits that holds no reference of its own: the caller
  // guarantees v outlives it and must Release() it instead of destroying it.
  static Value Borrow(const Value& v) {
    Value r;
    r.bits_ = v.bits_;
    return r;
  }

  Object* Release() {
    Object* o = obj();
    bits_ = 0;
    return o;
  }

 private:
  inline void IncRef() const;
  static inline void DecRefBits(uintptr_t b);
  uintptr_t bits_ = 0;
};

class Visitor {
 public:
  virtual ~Visitor() = default;
  virtual void Visit(Value& v) = 0;
};

class Object {
 public:
  enum Mode : uint8_t { kLocal = 0, kShared = 1, kImmortal = 2 };
  explicit Object(Kind k) : kind_(k) {}
  virtual ~Object() = default;
  Object(const Object&) = delete;
  Object& operator=(const Object&) = delete;

  Kind kind() const { return kind_; }
  bool frozen() const { return mode_ != kLocal; }
  uint32_t refcount() const { return rc_.load(std::memory_order_relaxed); }

  // Containers report their children (for freezing and cycle collection).
  virtual void VisitRefs(Visitor& v) {}
  // Drops references to children (cycle collection).
  virtual void ClearRefs() {}
  virtual bool IsContainer() const { return false; }

  void IncRef() {
    if (mode_ == kLocal) {
      rc_.store(rc_.load(std::memory_order_relaxed) + 1,
                std::memory_order_relaxed);
    } else if (mode_ == kShared) {
      rc_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  void DecRef() {
    if (mode_ == kLocal) {
      uint32_t n = rc_.load(std::memory_order_relaxed) - 1;
      rc_.store(n, std::memory_order_relaxed);
      if (n == 0) Destroy(this);
    } else if (mode_ == kShared) {
      if (rc_.fetch_sub(1, std::memory_order_acq_rel) == 1) Destroy(this);
    }
  }
  void MakeImmortal() { mode_ = kImmortal; }
  void MarkFrozen() {
    if (mode_ == kLocal) mode_ = kShared;
  }
  // Frees o; containers are freed iteratively (no deep recursion).
  static inline void Destroy(Object* o);

  // Small objects come from per-thread free lists (see value.cc). Inline so
  // that the size class of a concrete type folds to a constant.
  static inline void* operator new(size_t size);
  static inline void operator delete(void* p, size_t size);

  std::atomic<uint32_t> rc_{0};
  Kind kind_;
  uint8_t mode_ = kLocal;
  // Per-object flags used by the cycle collector.
  uint8_t gc_flag_ = 0;
};

inline Value::Value(Object* o) : bits_(reinterpret_cast<uintptr_t>(o)) {
  IncRef();
}
inline Value Value::Adopt(Object* o) {
  Value v;
  v.bits_ = reinterpret_cast<uintptr_t>(o);
  o->IncRef();
  return v;
}
inline void Value::IncRef() const {
  if (bits_ && !(bits_ & 1)) obj()->IncRef();
}
inline void Value::DecRefBits(uintptr_t b) {
  if (b && !(b & 1)) reinterpret_cast<Object*>(b)->DecRef();
}
inline Kind Value::kind() const {
  if (bits_ & 1) return Kind::kInt;
  return obj()->kind();
}

// ---- small-object allocation ----
// Sanitizer builds use plain new/delete so that they still see every bug.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FAULT_STARLARK_NO_FREELIST 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define FAULT_STARLARK_NO_FREELIST 1
#endif
#endif
namespace alloc {
inline constexpr size_t kClassSize[] = {32, 64, 96, 128};
inline constexpr int kClasses = 4;
// Heads of this thread's free lists. Trivially initialised, so no TLS
// wrapper call on access; the lists go to a process-wide pool at thread exit
// once Register() has run on the thread (see value.cc).
extern thread_local constinit void* t_head[kClasses];
extern thread_local constinit bool t_registered;
[[gnu::noinline]] void* Refill(int c);
[[gnu::noinline]] void Register();
// Objects above the largest class (out of line: plain ::operator new).
void* NewLarge(size_t size);
void DeleteLarge(void* p, size_t size);
[[gnu::always_inline]] inline int SizeClass(size_t size) {
  for (int c = 0; c < kClasses; c++)
    if (size <= kClassSize[c]) return c;
  return -1;
}
// The general (container) path of Object::Destroy.
void DestroySlow(Object* o);
}  // namespace alloc

inline void* Object::operator new(size_t size) {
#ifndef FAULT_STARLARK_NO_FREELIST
  int c = alloc::SizeClass(size);
  if (c >= 0) {
    if (void* p = alloc::t_head[c]) {
      alloc::t_head[c] = *static_cast<void**>(p);
      return p;
    }
    return alloc::Refill(c);
  }
#endif
  return alloc::NewLarge(size);
}

inline void Object::operator delete(void* p, size_t size) {
#ifndef FAULT_STARLARK_NO_FREELIST
  int c = alloc::SizeClass(size);
  if (c >= 0) {
    if (!alloc::t_registered) alloc::Register();
    *static_cast<void**>(p) = alloc::t_head[c];
    alloc::t_head[c] = p;
    return;
  }
#endif
  alloc::DeleteLarge(p, size);
}

// Objects that may take part in reference cycles; linked into a global list.
class Container : public Object {
 public:
  explicit Container(Kind k);
  ~Container() override;
  bool IsContainer() const override { return true; }
  Container* gc_prev_ = nullptr;
  Container* gc_next_ = nullptr;
  int64_t gc_refs_ = 0;
  bool tracked_ = false;
  void Track();
};

// Reclaims unreachable cycles. Returns the number of objects freed.
size_t CollectCycles();
// Number of live tracked containers (tests).
size_t TrackedContainers();

// ---- Concrete objects ----

struct NoneObj : Object {
  NoneObj() : Object(Kind::kNone) {}
};
struct BoolObj : Object {
  explicit BoolObj(bool b) : Object(Kind::kBool), v(b) {}
  bool v;
};
struct BigIntObj : Object {
  explicit BigIntObj(BigInt b) : Object(Kind::kInt), v(std::move(b)) {}
  BigInt v;
};
struct FloatObj final : Object {
  explicit FloatObj(double d) : Object(Kind::kFloat), v(d) {}
  double v;
};
struct StringObj final : Object {
  explicit StringObj(std::string&& str, Kind k = Kind::kString)
      : Object(k), s(std::move(str)) {}
  StringObj(std::string_view str, Kind k) : Object(k), s(str) {}
  std::string s;
  uint64_t hash = 0;  // 0: not computed
};

// Strings and floats hold no references, so freeing one cannot free
// anything else: they skip the deferred-destruction queue and the virtual
// destructor.
inline void Object::Destroy(Object* o) {
  switch (o->kind_) {
    case Kind::kString:
    case Kind::kBytes:
      delete static_cast<StringObj*>(o);
      return;
    case Kind::kFloat:
      delete static_cast<FloatObj*>(o);
      return;
    default:
      alloc::DestroySlow(o);
  }
}

// An insertion-ordered hash table keyed by hashable Values.
class HashTable {
 public:
  struct Entry {
    Value key;
    Value value;
    uint64_t hash;
  };
  size_t size() const { return live_; }
  // Returns the entry or nullptr.
  Entry* Find(const Value& key, uint64_t hash) {
    size_t slot;
    int64_t e = Lookup(key, hash, &slot);
    return e < 0 ? nullptr : &entries_[e];
  }
  inline Entry* Find(const Value& key);
  // Inserts or overwrites. Returns true if inserted.
  bool Insert(const Value& key, Value value);
  bool Insert(const Value& key, uint64_t hash, Value value);
  bool Erase(const Value& key, Value* old_value = nullptr);
  void Clear();
  // Iteration over live entries in insertion order.
  template <typename F>
  void ForEach(F f) {
    for (auto& e : entries_)
      if (!e.key.IsNull()) f(e);
  }
  template <typename F>
  void ForEach(F f) const {
    for (auto& e : entries_)
      if (!e.key.IsNull()) f(e);
  }
  std::vector<Entry>& raw_entries() { return entries_; }
  const std::vector<Entry>& raw_entries() const { return entries_; }
  void Compact();

 private:
  void Rehash(size_t cap);
  int64_t Lookup(const Value& key, uint64_t hash, size_t* slot) const;
  std::vector<Entry> entries_;  // with holes (null keys) after erase
  std::vector<int32_t> index_;  // -1 empty, -2 deleted, else entry index
  size_t live_ = 0;
};

struct ListObj : Container {
  ListObj() : Container(Kind::kList) {}
  explicit ListObj(std::vector<Value> e)
      : Container(Kind::kList), v(std::move(e)) {}
  void VisitRefs(Visitor& vis) override {
    for (auto& x : v) vis.Visit(x);
  }
  void ClearRefs() override { std::vector<Value>().swap(v); }
  std::vector<Value> v;
  int32_t iterating = 0;
};
struct TupleObj : Container {
  explicit TupleObj(std::vector<Value> e);
  void VisitRefs(Visitor& vis) override {
    for (auto& x : v) vis.Visit(x);
  }
  void ClearRefs() override { std::vector<Value>().swap(v); }
  std::vector<Value> v;
};
struct DictObj : Container {
  DictObj() : Container(Kind::kDict) {}
  void VisitRefs(Visitor& vis) override {
    for (auto& e : t.raw_entries()) {
      if (!e.key.IsNull()) {
        vis.Visit(e.key);
        vis.Visit(e.value);
      }
    }
  }
  void ClearRefs() override { t.Clear(); }
  HashTable t;
  int32_t iterating = 0;
};
struct SetObj : Container {
  SetObj() : Container(Kind::kSet) {}
  void VisitRefs(Visitor& vis) override {
    for (auto& e : t.raw_entries())
      if (!e.key.IsNull()) vis.Visit(e.key);
  }
  void ClearRefs() override { t.Clear(); }
  HashTable t;
  int32_t iterating = 0;
};
struct RangeObj : Object {
  RangeObj(int64_t a, int64_t b, int64_t c)
      : Object(Kind::kRange), start(a), stop(b), step(c) {}
  int64_t start, stop, step;
  int64_t Len() const;
  int64_t At(int64_t i) const { return start + i * step; }
};
struct CellObj : Container {
  CellObj() : Container(Kind::kCell) {}
  void VisitRefs(Visitor& vis) override { vis.Visit(v); }
  void ClearRefs() override { v = Value(); }
  Value v;
};
struct StringElemsObj : Object {
  StringElemsObj(Value s, bool cps, bool ords)
      : Object(Kind::kStringElems),
        str(std::move(s)),
        codepoints(cps),
        ords(ords) {}
  Value str;
  bool codepoints, ords;
};

// Arguments of a call to a builtin.
struct Args {
  std::span<const Value> pos;
  std::span<const std::pair<Value, Value>> kw;  // (name string, value)
};

using BuiltinFn = std::function<Value(Thread&, const Value& recv, const Args&)>;
using BuiltinPtr = Value (*)(Thread&, const Value& recv, const Args&);

struct BuiltinObj : Container {
  BuiltinObj(std::string n, BuiltinFn f, Value r = Value())
      : Container(Kind::kBuiltin),
        name(std::move(n)),
        fn(std::move(f)),
        recv(std::move(r)) {}
  BuiltinObj(std::string n, BuiltinPtr p, Value r)
      : Container(Kind::kBuiltin),
        name(std::move(n)),
        ptr(p),
        recv(std::move(r)) {}
  void VisitRefs(Visitor& vis) override {
    if (!recv.IsNull()) vis.Visit(recv);
  }
  void ClearRefs() override { recv = Value(); }
  std::string name;
  BuiltinFn fn;
  BuiltinPtr ptr = nullptr;
  Value recv;  // bound receiver of a method, or null
};

// Host-defined values. Derive and override what the type supports.
class HostValue : public Object {
 public:
  HostValue() : Object(Kind::kHost) {}
  virtual std::string Type() const = 0;
  // Returns the attribute or a null Value if there is none.
  virtual Value Attr(Thread& thread, std::string_view name) { return Value(); }
  virtual std::vector<std::string> AttrNames() const { return {}; }
  virtual std::string Repr() const;
  virtual bool Truth() const { return true; }
  // Hash; the default makes the value unhashable.
  virtual bool Hash(uint64_t* out) const { return false; }
  // Operators of host types (e.g. the time module's durations). Binary
  // returns `this op other` (left) or `other op this` (!left), or a null
  // Value when unsupported. CompareTo orders this against another host
  // value (<0, 0, >0) and returns false when the two are not comparable;
  // == uses it too (else identity).
  virtual Value Binary(Tok op, const Value& other, bool left) {
    return Value();
  }
  virtual bool CompareTo(const HostValue& other, int* out) const {
    return false;
  }
  // Called when a module holding this value is frozen.
  virtual void Freeze() {}
};

// ---- Construction helpers ----
extern NoneObj g_none;
extern BoolObj g_true, g_false;
inline Value None() { return Value(&g_none); }
inline Value Bool(bool b) { return Value(b ? &g_true : &g_false); }
inline bool Value::IsNone() const {
  return bits_ == reinterpret_cast<uintptr_t>(&g_none);
}
Value IntSlow(int64_t v);
[[gnu::always_inline]] inline Value Int(int64_t v) {
  if (Value::FitsSmall(v)) return Value::SmallInt(v);
  return IntSlow(v);
}
Value Int(BigInt v);  // normalizes to small int when it fits
Value Float(double d);
Value Str(std::string&& s);
inline Value Str(const std::string& s) {
  return Value::Adopt(new StringObj(std::string_view(s), Kind::kString));
}
inline Value Str(std::string_view s) {
  return Value::Adopt(new StringObj(s, Kind::kString));
}
// a + b without intermediate copies.
Value StrConcat(std::string_view a, std::string_view b, Kind k = Kind::kString);
inline Value Str(const char* s) { return Str(std::string_view(s)); }
Value Bytes(std::string s);
Value NewList(std::vector<Value> v = {});
Value NewTuple(std::vector<Value> v);
Value EmptyTuple();
Value NewDict();
Value NewSet();
Value NewBuiltin(std::string name, BuiltinFn fn);
template <typename T, typename... A>
Value NewHost(A&&... a) {
  return Value::Adopt(new T(std::forward<A>(a)...));
}

// ---- Accessors (caller checks kind) ----
inline const std::string& StrOf(const Value& v) { return v.as<StringObj>()->s; }
inline double FloatOf(const Value& v) { return v.as<FloatObj>()->v; }
inline ListObj* ListOf(const Value& v) { return v.as<ListObj>(); }
inline TupleObj* TupleOf(const Value& v) { return v.as<TupleObj>(); }
inline DictObj* DictOf(const Value& v) { return v.as<DictObj>(); }
inline SetObj* SetOf(const Value& v) { return v.as<SetObj>(); }

// ---- Generic operations (throw EvalError) ----
std::string TypeName(const Value& v);
bool Truth(const Value& v);
uint64_t HashSlow(const Value& v);
// FNV-1a over the bytes, never 0 (0 marks "not computed").
inline uint64_t HashStringBytes(std::string_view s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h ^= h >> 29;
  return h ? h : 1;
}
// Fails for unhashable values. Strings cache their hash; frozen strings
// may be shared between threads, so they get theirs when frozen and are
// never written afterwards.
inline uint64_t Hash(const Value& v) {
  if (!v.IsSmallInt() && v.kind() == Kind::kString) {
    auto* so = v.as<StringObj>();
    if (so->hash != 0) return so->hash;
    if (!so->frozen()) return so->hash = HashStringBytes(so->s);
  }
  return HashSlow(v);
}
inline HashTable::Entry* HashTable::Find(const Value& key) {
  return Find(key, Hash(key));
}
bool Equal(const Value& a, const Value& b);
// Ordering; fails for unordered types. Returns <0, 0, >0.
int Compare(const Value& a, const Value& b);
std::string Repr(const Value& v);
std::string ToStr(const Value& v);  // str(): strings unquoted
void ReprTo(std::string* out, const Value& v);
void Freeze(const Value& v);
// " (did you mean NAME?)" with the candidate closest to x, ignoring case and
// underscores, if one is within half of x's length in edits (as
// starlark-go's suggestions); otherwise "". prefix goes before NAME (".").
std::string DidYouMean(std::string_view x,
                       const std::vector<std::string>& candidates,
                       std::string_view prefix = "");
bool IsFrozen(const Value& v);
std::string FormatFloat(double d, char conv = 'r', int prec = -1);

// Integer helpers.
bool IntToInt64(const Value& v, int64_t* out);
BigInt ToBigInt(const Value& v);  // v must be int
double IntToDouble(
    const Value& v);  // may fail "int too large to convert to float"

// Charges `n` execution steps to the Thread running on this OS thread (if
// any), for builtins whose work is proportional to the size of their data.
void ChargeCurrent(uint64_t n);

// Mutation checks with the reference implementation's messages.
void CheckListMutable(ListObj* l, const char* what);  // what: "append to"
// what: "insert into" (the default), "delete from" or "clear".
void CheckDictMutable(DictObj* d, const char* what = "insert into");
// what: "insert into" (the default), "delete from" or "clear".
void CheckSetMutable(SetObj* s, const char* what = "insert into");

// Iteration: calls f(value) for each element; holds the iterating guard.
// Returns false if v is not iterable.
bool Iterate(Thread& th, const Value& v,
             const std::function<void(const Value&)>& f);
// Collects elements of an iterable. Not iterable: fails with
// "FNAME: for parameter PARAM: got T, want iterable" (starlark-go's
// wording), or "T value is not iterable" without a function name.
std::vector<Value> ToVector(Thread& th, const Value& v,
                            const char* fname = nullptr,
                            const char* param = "1");
int64_t Length(const Value& v);  // -1 if no length

}  // namespace fault::starlark

#endif  // FAULT_STARLARK_VALUE_H_
