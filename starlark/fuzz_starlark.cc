// libFuzzer target: arbitrary bytes through scanner, parser, resolver and,
// with a step limit, the evaluator. All dialect options are enabled so that
// every statement form is reachable. The json, math and time modules are
// predeclared (time.now() on a fixed clock, so runs repeat).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "starlark/lib/lib.h"
#include "starlark/lib/time.h"
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
    sl::FakeClock clock(absl::FromUnixSeconds(1'700'000'000));
    sl::SetClock(th, &clock);
    sl::StringDict pre;
    sl::AddLibraryModules(&pre);
    auto r = sl::ExecFile(th, "fuzz.star", src, pre);
    (void)r;
  }
  sl::CollectCycles();
  return 0;
}
