// Embedding API of the Starlark interpreter.
//
//   fault::starlark::Thread thread;
//   thread.max_steps = 1'000'000;
//   thread.print = [](Thread&, const std::string& s) { std::puts(s.c_str()); };
//   StringDict predeclared = {
//       {"greet", NewBuiltin("greet", [](Thread& th, const Value&, const Args&
//       a) {
//          std::string who;
//          int64_t times = 1;
//          UnpackArgs("greet", a, {{"who", &who}, {"times?", &times}});
//          return Str("hello " + who);
//        })}};
//   absl::StatusOr<StringDict> globals =
//       ExecFile(thread, "spec.star", source, predeclared);
//   absl::StatusOr<Value> r = Call(thread, (*globals)["main"], {Int(1)});
//
// Thread safety: a Thread runs on one OS thread at a time. Values returned
// by ExecFile are frozen and may be shared and used by several Threads
// concurrently (their reference counts are atomic). Mutable values belong to
// the Thread that created them. CollectCycles() must run while no Thread
// executes.
#ifndef FAULT_STARLARK_STARLARK_H_
#define FAULT_STARLARK_STARLARK_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "starlark/interp.h"
#include "starlark/value.h"

namespace fault::starlark {

// One parameter of a builtin for UnpackArgs. A name ending in '?' is
// optional: the target keeps its value when the argument is absent.
class ArgTarget {
 public:
  enum Type { kValue, kInt, kString, kBool, kFloat, kStringOrNone, kIntOrNone };
  ArgTarget(const char* name, Value* v) : name_(name), type_(kValue), ptr_(v) {}
  ArgTarget(const char* name, int64_t* v) : name_(name), type_(kInt), ptr_(v) {}
  ArgTarget(const char* name, std::string* v)
      : name_(name), type_(kString), ptr_(v) {}
  ArgTarget(const char* name, bool* v) : name_(name), type_(kBool), ptr_(v) {}
  ArgTarget(const char* name, double* v)
      : name_(name), type_(kFloat), ptr_(v) {}
  std::string_view name() const;
  bool optional() const;
  // Converts and stores v; fails with
  //   fname: for parameter "name": got string, want int
  void Set(std::string_view fname, const Value& v) const;

 private:
  const char* name_;
  Type type_;
  void* ptr_;
};

// Binds positional and keyword arguments to targets, in order. Errors name
// the function and parameter; they surface as Starlark errors.
void UnpackArgs(std::string_view fname, const Args& args,
                std::initializer_list<ArgTarget> targets);

// Lower-level: the positional arguments only, between min and max.
[[noreturn]] void CheckArgCountFailed(std::string_view fname, const Args& args,
                                      size_t min, size_t max);
inline void CheckArgCount(std::string_view fname, const Args& args, size_t min,
                          size_t max) {
  size_t n = args.pos.size();
  if (!args.kw.empty() || n < min || n > max)
    CheckArgCountFailed(fname, args, min, max);
}

}  // namespace fault::starlark

#endif  // FAULT_STARLARK_STARLARK_H_
