// libFuzzer target: arbitrary bytes through scanner, parser, resolver and,
// with a step limit, the evaluator. All dialect options are enabled so that
// every statement form is reachable.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "starlark/starlark.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace sl = fault::starlark;
  std::string_view src(reinterpret_cast<const char*>(data), size);
  {
    sl::Thread th;
    th.max_steps = 20000;
    th.max_call_depth = 64;
    th.dialect.allow_while = true;
    th.dialect.allow_recursion = true;
    th.dialect.allow_toplevel_control = true;
    th.dialect.allow_global_reassign = true;
    th.print = [](sl::Thread&, const std::string&) {};
    th.load = [](sl::Thread&,
                 const std::string& m) -> absl::StatusOr<sl::StringDict> {
      sl::StringDict d;
      d["x"] = sl::Int(1);
      return d;
    };
    sl::StringDict pre;
    auto r = sl::ExecFile(th, "fuzz.star", src, pre);
    (void)r;
  }
  sl::CollectCycles();
  return 0;
}
