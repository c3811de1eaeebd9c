// Where the arguments of a builtin call are in the spec's source, so that
// errors point at the argument at fault (`write = deny("EIOX")` → the column
// of "EIOX") rather than at the call.
//
//   CallIndex index;  // one per load: caches the calls of each file
//   Value Deny(sl::Thread& th, const sl::Args& args) {
//     CallSite site(th, args, &index);
//     ... FailAt(site.Positional(0), "\"EIOX\" is not an errno name");
//
// The interpreter records, in the innermost Starlark frame, the position of
// the call being evaluated (its opening parenthesis). CallIndex finds the
// call expression at that position in the file's syntax tree, which holds
// the position of every argument; nothing is added to the evaluator. The
// call found is used only when its arguments match the ones the builtin got
// (same positional count, same keyword names in order; a `*args` or
// `**kwargs` call matches what can be told apart). Otherwise, and for a
// builtin called from host code, every position is the call's.
//
// Thread safety: a CallIndex belongs to one loading thread.
#ifndef FAULT_SUPERVISOR_SPEC_CALL_SITE_H_
#define FAULT_SUPERVISOR_SPEC_CALL_SITE_H_

#include <map>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "starlark/interp.h"
#include "starlark/starlark.h"
#include "starlark/syntax.h"

namespace fault::spec {

// The call expressions of the files a thread runs, by position.
class CallIndex {
 public:
  // The call whose opening parenthesis is at `pos` in `file`, or null.
  const starlark::CallExpr* Find(const starlark::File* file, starlark::Pos pos);

 private:
  using Key = std::pair<int32_t, int32_t>;
  std::map<const starlark::File*, std::map<Key, const starlark::CallExpr*>>
      files_;
};

class CallSite {
 public:
  CallSite(starlark::Thread& th, const starlark::Args& args, CallIndex* index);

  // "file:line:col" of the call ("<unknown>" outside Starlark code).
  const std::string& Call() const { return call_; }
  // The i-th positional argument.
  std::string Positional(size_t i) const;
  // The keyword argument `name=` (the position of the name).
  std::string Keyword(absl::string_view name) const;
  // A parameter given either way: positional index `i` or `name=`.
  std::string Param(size_t i, absl::string_view name) const;
  // Element `i` of a list or tuple written out as the value of parameter
  // (i, name); the parameter's position when the value is not a display.
  std::string Element(size_t i, absl::string_view name, size_t element) const;
  // The key of entry `entry` (in order) of a dict written out as the value
  // of parameter (i, name).
  std::string DictEntry(size_t i, absl::string_view name, size_t entry) const;
  // The key `key` of a dict written out as the value of parameter (i, name).
  std::string DictKey(size_t i, absl::string_view name,
                      absl::string_view key) const;

 private:
  const starlark::CallArg* Arg(size_t i, absl::string_view name) const;
  std::string Format(starlark::Pos pos) const;

  std::string call_;
  const starlark::File* file_ = nullptr;
  const starlark::CallExpr* expr_ = nullptr;  // null: positions unknown
  size_t npos_ = 0;                           // positional args given
};

}  // namespace fault::spec

#endif  // FAULT_SUPERVISOR_SPEC_CALL_SITE_H_
