// The evaluator: threads, frames, functions and modules.
#ifndef FAULT_STARLARK_INTERP_H_
#define FAULT_STARLARK_INTERP_H_

#include <any>
#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "starlark/syntax.h"
#include "starlark/value.h"

namespace fault::starlark {

// Owns a parsed and resolved file; functions keep it alive.
struct Program {
  std::unique_ptr<File> file;
};

struct ModuleObj : Container {
  ModuleObj() : Container(Kind::kModule) {}
  void VisitRefs(Visitor& vis) override {
    for (auto& g : globals)
      if (!g.IsNull()) vis.Visit(g);
    for (auto& p : predeclared)
      if (!p.IsNull()) vis.Visit(p);
  }
  void ClearRefs() override {
    std::vector<Value>().swap(globals);
    std::vector<Value>().swap(predeclared);
  }
  std::string name;
  std::shared_ptr<Program> program;
  std::vector<Value> globals;
  std::vector<Value> predeclared;
};

struct FunctionObj : Container {
  FunctionObj() : Container(Kind::kFunction) {}
  void VisitRefs(Visitor& vis) override {
    vis.Visit(module);
    for (auto& d : defaults)
      if (!d.IsNull()) vis.Visit(d);
    for (auto& f : freevars) vis.Visit(f);
  }
  void ClearRefs() override {
    module = Value();
    std::vector<Value>().swap(defaults);
    std::vector<Value>().swap(freevars);
  }
  const FuncDecl* decl = nullptr;
  std::shared_ptr<Program> program;
  Value module;                 // ModuleObj
  std::vector<Value> defaults;  // per parameter slot; null = required
  std::vector<Value> freevars;  // CellObj values
};

using StringDict = std::map<std::string, Value, std::less<>>;

// An execution context. Not thread-safe: one OS thread at a time.
class Thread {
 public:
  Thread();
  ~Thread();

  // ---- options set by the host ----
  std::string name;
  Dialect dialect;
  // 0 = unlimited. Counts statements, loop iterations and calls.
  uint64_t max_steps = 0;
  // Maximum depth of Starlark calls (also bounds native stack use).
  int max_call_depth = 200;
  // Native stack the evaluator may use below its entry point; deeper
  // evaluation fails with "maximum recursion depth exceeded". Lower it for
  // threads with small stacks.
  size_t max_native_stack = size_t{4} << 20;
  // print() output. Default: writes the line to stderr.
  std::function<void(Thread&, const std::string&)> print;
  // load(): returns the globals of the named module. An error whose message
  // is a backtrace (the module failed while it ran, e.g. ExecFile's status)
  // continues the loading file's backtrace; any other error reads
  // "cannot load MODULE: message" at the load statement.
  std::function<absl::StatusOr<StringDict>(Thread&, const std::string&)> load;

  // Host data for builtins, keyed by name (like starlark-go's
  // Thread.SetLocal): e.g. the spec runner's context.
  void SetLocal(const std::string& key, std::any value) {
    locals_[key] = std::move(value);
  }
  // Returns null if absent or of another type.
  template <typename T>
  T* Local(const std::string& key) {
    auto it = locals_.find(key);
    return it == locals_.end() ? nullptr : std::any_cast<T>(&it->second);
  }

  // Asks a running evaluation to stop at the next step (any thread).
  void Cancel(std::string reason);
  uint64_t steps() const { return steps_; }

  // ---- internals ----
  struct Frame {
    const std::string* name;  // function name
    const File* file;         // null for builtins
    Pos pos;
  };
  std::deque<Frame> stack;  // deque: frames keep their addresses
  std::string Backtrace(const std::string& msg) const;

  // Fails if the native stack used since the API entry point exceeds
  // max_native_stack (stacks grow down on every supported platform).
  void CheckStack() {
    char here;
    uintptr_t cur = reinterpret_cast<uintptr_t>(&here);
    if (stack_base_ && stack_base_ > cur &&
        stack_base_ - cur > max_native_stack)
      StackOverflow();
  }
  // Records the stack position of an API entry point (outermost only).
  class StackScope {
   public:
    explicit StackScope(Thread& th) : th_(th), outer_(th.stack_base_ == 0) {
      char here;
      if (outer_) th_.stack_base_ = reinterpret_cast<uintptr_t>(&here);
    }
    ~StackScope() {
      if (outer_) th_.stack_base_ = 0;
    }

   private:
    Thread& th_;
    bool outer_;
  };

  void Step() {
    if (++steps_ >= next_check_) StepSlow();
  }
  // Adds n steps (for builtins doing work proportional to n).
  void Charge(uint64_t n) {
    steps_ += n;
    if (steps_ >= next_check_) StepSlow();
  }

 private:
  void StepSlow();
  [[noreturn]] void StackOverflow();
  uintptr_t stack_base_ = 0;
  uint64_t steps_ = 0;
  uint64_t next_check_ = 1024;
  std::atomic<bool> cancelled_{false};
  std::string cancel_reason_;
  std::atomic<bool> reason_set_{false};
  std::map<std::string, std::any> locals_;
};

// Parses, resolves and executes a file; returns the (frozen) module globals.
absl::StatusOr<StringDict> ExecFile(Thread& thread, std::string_view filename,
                                    std::string_view source,
                                    const StringDict& predeclared);
// Same, but returns the module object (for REPL-style continued use).
absl::StatusOr<Value> ExecFileModule(Thread& thread, std::string_view filename,
                                     std::string_view source,
                                     const StringDict& predeclared,
                                     bool freeze = true);

// Calls a callable Value.
absl::StatusOr<Value> Call(
    Thread& thread, const Value& fn, std::span<const Value> args,
    const std::vector<std::pair<std::string, Value>>& kwargs = {});

// ---- used by the library and tests ----
Value CallValue(Thread& th, const Value& fn, const Args& args);
const std::string& FunctionName(const Value& fn);
std::string ModuleName(const Value& m);
const std::vector<std::pair<std::string, Value>>& Universe();
int UniverseIndex(std::string_view name, const Dialect& d);
// Attribute lookup (methods of builtin types, host attributes). Returns null if
// none.
Value GetAttr(Thread& th, const Value& x, std::string_view name);
std::vector<std::string> AttrNames(const Value& x);
BuiltinPtr FindMethod(Kind k, std::string_view name);
struct MethodEntry {
  Kind kind;
  std::string name;
  BuiltinPtr fn;
};
const MethodEntry* FindMethodEntry(Kind k, std::string_view name);
Value Binary(Tok op, const Value& x, const Value& y);
Value Unary(Tok op, const Value& x);
Value IndexValue(Thread& th, const Value& x, const Value& index);
Value SliceValue(const Value& x, const Value& lo, const Value& hi,
                 const Value& step);
bool Contains(const Value& container, const Value& x);
std::string StringFormat(std::string_view fmt, const Value& args);  // %

// Iterator with a mutation guard; throws if x is not iterable.
class Iterator {
 public:
  explicit Iterator(const Value& x);
  ~Iterator();
  Iterator(const Iterator&) = delete;
  Iterator& operator=(const Iterator&) = delete;
  bool Next(Value* out) {
    // Lists (the common case of a for loop) inline.
    if (kind_ == Kind::kList) {
      auto& v = ListOf(x_)->v;
      if (i_ >= v.size()) return false;
      *out = v[i_++];
      return true;
    }
    return NextSlow(out);
  }

 private:
  bool NextSlow(Value* out);
  Value x_;
  Kind kind_;
  size_t i_ = 0;
  int64_t n_ = 0;
};

}  // namespace fault::starlark

#endif  // FAULT_STARLARK_INTERP_H_
