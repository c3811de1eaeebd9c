// A named, read-only collection of members (functions and constants), the
// value of a predeclared library module such as `json` or `math`.
//
//   StringDict members = {{"pi", Float(M_PI)}};
//   predeclared["math"] = NewModule("math", std::move(members));
//
// `dir(m)` lists the member names in sorted order; `m.name` returns a
// member; the repr is `<module NAME>`. The members are frozen when the
// module is built, so one module value may be shared by several Threads.
#ifndef FAULT_STARLARK_LIB_MODULE_H_
#define FAULT_STARLARK_LIB_MODULE_H_

#include <string>
#include <string_view>
#include <vector>

#include "starlark/interp.h"
#include "starlark/value.h"

namespace fault::starlark {

class LibraryModule : public HostValue {
 public:
  LibraryModule(std::string name, StringDict members);
  std::string Type() const override { return "module"; }
  std::string Repr() const override { return "<module " + name_ + ">"; }
  Value Attr(Thread& thread, std::string_view name) override;
  std::vector<std::string> AttrNames() const override;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  StringDict members_;
};

// Builds a frozen module value.
Value NewModule(std::string name, StringDict members);

}  // namespace fault::starlark

#endif  // FAULT_STARLARK_LIB_MODULE_H_
