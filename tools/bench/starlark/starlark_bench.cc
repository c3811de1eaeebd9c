// Google Benchmark: the interpreter on the classic programs in this
// directory (in-process; bench.sh compares against python3).
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>

#include "starlark/starlark.h"

namespace {

std::string ReadFile(const std::string& name) {
  std::ifstream in(std::string(FAULT_STARLARK_BENCH_DIR) + "/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void RunProgram(benchmark::State& state, const char* file) {
  std::string src = ReadFile(file);
  for (auto _ : state) {
    fault::starlark::Thread th;
    th.print = [](fault::starlark::Thread&, const std::string&) {};
    auto r = fault::starlark::ExecFile(th, file, src, {});
    if (!r.ok()) state.SkipWithError(std::string(r.status().message()).c_str());
  }
}

void BM_FibLoop(benchmark::State& s) { RunProgram(s, "fib.star"); }
void BM_StringBuild(benchmark::State& s) { RunProgram(s, "strings.star"); }
void BM_DictHeavy(benchmark::State& s) { RunProgram(s, "dicts.star"); }
void BM_Sorting(benchmark::State& s) { RunProgram(s, "sort.star"); }
BENCHMARK(BM_FibLoop)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StringBuild)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DictHeavy)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Sorting)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
