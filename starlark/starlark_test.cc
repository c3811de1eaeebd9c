// Runs the chunked Starlark test data in tests/starlark/*.star and tests the
// embedding API.
//
// Test data format: chunks separated by lines that are exactly `---`. Each
// chunk runs in a fresh module with assert_eq, assert_ne, assert_true,
// assert_fails(fn, "regexp") and an `assert` module (eq, ne, true, fails,
// contains) predeclared. A chunk containing `### "regexp"` must fail with an
// error (static or dynamic) matching the regexp. `# option:NAME` lines turn
// on dialect options: while, recursion, toplevel, globalreassign, noset,
// steps=N. The library modules json, math and time are predeclared too.
#include "starlark/starlark.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "gtest/gtest.h"
#include "starlark/lib/lib.h"

namespace fault::starlark {
namespace {

std::atomic<int64_t> g_assertions{0};

bool Search(const std::string& text, const std::string& pattern) {
  try {
    return std::regex_search(text, std::regex(pattern));
  } catch (const std::regex_error&) {
    return text.find(pattern) != std::string::npos;
  }
}

Value AssertEq(Thread&, const Value&, const Args& a) {
  CheckArgCount("assert_eq", a, 2, 3);
  g_assertions++;
  if (!Equal(a.pos[0], a.pos[1])) {
    std::string extra = a.pos.size() > 2 ? " (" + ToStr(a.pos[2]) + ")" : "";
    Fail("assertion failed: " + Repr(a.pos[0]) + " != " + Repr(a.pos[1]) +
         extra);
  }
  return None();
}
Value AssertNe(Thread&, const Value&, const Args& a) {
  CheckArgCount("assert_ne", a, 2, 3);
  g_assertions++;
  if (Equal(a.pos[0], a.pos[1]))
    Fail("assertion failed: " + Repr(a.pos[0]) + " == " + Repr(a.pos[1]));
  return None();
}
Value AssertTrue(Thread&, const Value&, const Args& a) {
  CheckArgCount("assert_true", a, 1, 2);
  g_assertions++;
  if (!Truth(a.pos[0])) {
    std::string msg =
        a.pos.size() > 1 ? ToStr(a.pos[1]) : Repr(a.pos[0]) + " is not true";
    Fail("assertion failed: " + msg);
  }
  return None();
}
Value AssertContains(Thread&, const Value&, const Args& a) {
  CheckArgCount("assert.contains", a, 2, 2);
  g_assertions++;
  if (!Contains(a.pos[0], a.pos[1]))
    Fail("assertion failed: " + Repr(a.pos[0]) + " does not contain " +
         Repr(a.pos[1]));
  return None();
}
Value AssertFails(Thread& th, const Value&, const Args& a) {
  CheckArgCount("assert_fails", a, 2, 2);
  g_assertions++;
  if (!a.pos[1].Is(Kind::kString)) Fail("assert_fails: want pattern string");
  size_t depth = th.stack.size();
  try {
    CallValue(th, a.pos[0], Args{});
  } catch (EvalError& e) {
    th.stack.resize(depth);
    if (!Search(e.msg, StrOf(a.pos[1])))
      Fail("assert_fails: error \"" + e.msg + "\" does not match \"" +
           StrOf(a.pos[1]) + "\"");
    return Str(e.msg);
  }
  Fail(
      "assert_fails: evaluation succeeded unexpectedly (want error matching "
      "\"" +
      StrOf(a.pos[1]) + "\")");
}

class AssertModule : public HostValue {
 public:
  std::string Type() const override { return "module"; }
  std::string Repr() const override { return "<module assert>"; }
  Value Attr(Thread&, std::string_view name) override {
    if (name == "eq") return Get(0, "assert.eq", AssertEq);
    if (name == "ne") return Get(1, "assert.ne", AssertNe);
    if (name == "true") return Get(2, "assert.true", AssertTrue);
    if (name == "fails") return Get(3, "assert.fails", AssertFails);
    if (name == "contains") return Get(4, "assert.contains", AssertContains);
    return Value();
  }
  std::vector<std::string> AttrNames() const override {
    return {"contains", "eq", "fails", "ne", "true"};
  }

 private:
  Value Get(int i, const char* n, BuiltinPtr f) {
    if (fns_[i].IsNull()) fns_[i] = Value::Adopt(new BuiltinObj(n, f, Value()));
    return fns_[i];
  }
  Value fns_[5];
};

StringDict Predeclared() {
  StringDict d;
  d["assert_eq"] = Value::Adopt(new BuiltinObj("assert_eq", AssertEq, Value()));
  d["assert_ne"] = Value::Adopt(new BuiltinObj("assert_ne", AssertNe, Value()));
  d["assert_true"] =
      Value::Adopt(new BuiltinObj("assert_true", AssertTrue, Value()));
  d["assert_fails"] =
      Value::Adopt(new BuiltinObj("assert_fails", AssertFails, Value()));
  d["assert"] = NewHost<AssertModule>();
  AddLibraryModules(&d);  // json, math, time
  d["freeze"] = NewBuiltin("freeze", [](Thread&, const Value&, const Args& a) {
    CheckArgCount("freeze", a, 1, 1);
    Freeze(a.pos[0]);
    return a.pos[0];
  });
  return d;
}

absl::StatusOr<StringDict> TestLoader(Thread& parent,
                                      const std::string& module) {
  Thread th;
  th.dialect = parent.dialect;
  std::string src;
  if (module == "fixture.star") {
    src =
        "a = 1\nb = [1, 2]\nc = {'k': 'v'}\ndef double(x):\n  return x * "
        "2\n_private = 3\n";
  } else if (module == "chain.star") {
    th.load = TestLoader;
    src = "load('fixture.star', 'a', dbl = 'double')\nz = dbl(a) + 40\n";
  } else if (module == "broken.star") {
    src = "x = 1 // 0\n";
  } else {
    return absl::NotFoundError("no such module: " + module);
  }
  return ExecFile(th, module, src, {});
}

struct Chunk {
  std::string file;
  int first_line;
  std::string src;
};

std::vector<Chunk> LoadChunks() {
  std::vector<Chunk> out;
  std::vector<std::filesystem::path> files;
  for (auto& e : std::filesystem::directory_iterator(FAULT_STARLARK_TESTDATA))
    if (e.path().extension() == ".star") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (auto& p : files) {
    std::ifstream in(p);
    std::string line, cur;
    int lineno = 0, start = 1;
    while (std::getline(in, line)) {
      lineno++;
      if (line == "---") {
        out.push_back({p.filename().string(), start, cur});
        cur.clear();
        start = lineno + 1;
        continue;
      }
      cur += line + "\n";
    }
    out.push_back({p.filename().string(), start, cur});
  }
  return out;
}

std::string RunChunk(const Chunk& c) {
  Thread th;
  th.load = TestLoader;
  std::string printed;
  th.print = [&](Thread&, const std::string& s) { printed += s + "\n"; };
  std::string expect;
  bool want_error = false;
  {
    std::istringstream ls(c.src);
    std::string line;
    while (std::getline(ls, line)) {
      size_t k = line.find("### ");
      if (k != std::string::npos && !want_error) {
        std::string rest = line.substr(k + 4);
        if (rest.size() >= 2 && rest.front() == '"' && rest.back() == '"') {
          expect = rest.substr(1, rest.size() - 2);
          // The pattern is a string literal: unescape \" and \\.
          std::string un;
          for (size_t i = 0; i < expect.size(); i++) {
            if (expect[i] == '\\' && i + 1 < expect.size() &&
                (expect[i + 1] == '"' || expect[i + 1] == '\\')) {
              un.push_back(expect[i + 1]);
              i++;
            } else {
              un.push_back(expect[i]);
            }
          }
          expect = un;
          want_error = true;
        }
      }
      size_t o = line.find("# option:");
      if (o != std::string::npos) {
        std::string opt = line.substr(o + 9);
        if (opt == "while") th.dialect.allow_while = true;
        if (opt == "recursion") th.dialect.allow_recursion = true;
        if (opt == "toplevel") th.dialect.allow_toplevel_control = true;
        if (opt == "globalreassign") th.dialect.allow_global_reassign = true;
        if (opt == "noset") th.dialect.allow_set = false;
        if (opt.rfind("steps=", 0) == 0)
          th.max_steps = std::stoull(opt.substr(6));
      }
    }
  }
  std::string src = std::string(c.first_line - 1, '\n') + c.src;
  auto r = ExecFile(th, c.file, src, Predeclared());
  std::string where = c.file + ":" + std::to_string(c.first_line);
  if (want_error) {
    if (r.ok())
      return where + ": chunk succeeded, want error matching \"" + expect +
             "\"";
    std::string msg(r.status().message());
    if (!Search(msg, expect))
      return where + ": error\n" + msg + "\ndoes not match \"" + expect + "\"";
    return "";
  }
  if (!r.ok()) return where + ": " + std::string(r.status().message());
  return "";
}

TEST(StarlarkDataTest, AllChunksPass) {
  auto chunks = LoadChunks();
  EXPECT_GT(chunks.size(), 100u);
  int failures = 0;
  for (auto& c : chunks) {
    std::string err = RunChunk(c);
    if (!err.empty()) {
      ADD_FAILURE() << err;
      if (++failures > 60) break;
    }
  }
  std::printf("[ starlark ] %zu chunks, %lld assertions executed\n",
              chunks.size(), static_cast<long long>(g_assertions.load()));
  EXPECT_GE(g_assertions.load(), 1500);
  CollectCycles();
}

// ---------------------------------------------------------------- embedding
// API

TEST(StarlarkApiTest, ExecFileReturnsFrozenGlobals) {
  Thread th;
  auto r = ExecFile(th, "m.star",
                    "x = [1, 2]\ndef f(a, b=2):\n  return a + b\n", {});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->count("x"));
  EXPECT_TRUE(IsFrozen((*r)["x"]));
  auto c = Call(th, (*r)["f"], std::vector<Value>{Int(40)});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(Repr(*c), "42");
  auto k = Call(th, (*r)["f"], std::vector<Value>{Int(1)}, {{"b", Int(9)}});
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(Repr(*k), "10");
  auto bad = Call(th, (*r)["f"], {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("function f missing 1 argument (a)"),
            std::string::npos)
      << bad.status().message();
}

TEST(StarlarkApiTest, BuiltinArgumentErrorsNameTheParameter) {
  Thread th;
  StringDict pre;
  pre["sleep"] = NewBuiltin("sleep", [](Thread&, const Value&, const Args& a) {
    int64_t timeout = 0;
    std::string label = "x";
    UnpackArgs("sleep", a, {{"timeout", &timeout}, {"label?", &label}});
    return Str(label + ":" + std::to_string(timeout));
  });
  auto r = ExecFile(th, "a.star", "x = sleep('5')\n", pre);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(
      r.status().message(),
      "Traceback (most recent call last):\n  a.star:1:10: in <toplevel>\n"
      "Error in sleep: sleep: for parameter \"timeout\": got string, want int");
  auto ok = ExecFile(th, "b.star", "x = sleep(label='y', timeout=3)\n", pre);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(StrOf((*ok)["x"]), "y:3");
  auto missing = ExecFile(th, "c.star", "x = sleep()\n", pre);
  EXPECT_NE(
      missing.status().message().find("sleep: missing argument for timeout"),
      std::string::npos);
  auto extra = ExecFile(th, "d.star", "x = sleep(1, 'a', 3)\n", pre);
  EXPECT_NE(
      extra.status().message().find("sleep: got 3 arguments, want at most 2"),
      std::string::npos);
  auto kw = ExecFile(th, "e.star", "x = sleep(1, nope=2)\n", pre);
  EXPECT_NE(
      kw.status().message().find("sleep: unexpected keyword argument \"nope\""),
      std::string::npos);
}

class Point : public HostValue {
 public:
  Point(int64_t x, int64_t y) : x_(x), y_(y) {}
  std::string Type() const override { return "point"; }
  Value Attr(Thread&, std::string_view n) override {
    if (n == "x") return Int(x_);
    if (n == "y") return Int(y_);
    return Value();
  }
  std::vector<std::string> AttrNames() const override { return {"x", "y"}; }
  std::string Repr() const override {
    return "point(" + std::to_string(x_) + ", " + std::to_string(y_) + ")";
  }

 private:
  int64_t x_, y_;
};

TEST(StarlarkApiTest, NativeStackLimitStopsDeepRecursion) {
  Thread th;
  th.dialect.allow_recursion = true;
  th.max_call_depth = 1000000;
  th.max_native_stack = 256 << 10;
  auto r =
      ExecFile(th, "deep.star", "def f(n):\n  return f(n + 1)\nf(0)\n", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(
                "maximum recursion depth exceeded (native stack limit)"),
            std::string::npos);
}

TEST(StarlarkApiTest, ThreadLocalsReachBuiltins) {
  Thread th;
  th.SetLocal("calls", 0);
  StringDict pre;
  pre["tick"] = NewBuiltin("tick", [](Thread& t, const Value&, const Args& a) {
    CheckArgCount("tick", a, 0, 0);
    int* n = t.Local<int>("calls");
    if (!n) Fail("tick: no counter");
    return Int(++*n);
  });
  auto r = ExecFile(th, "t.star", "a = tick()\nb = tick()\n", pre);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Repr((*r)["b"]), "2");
  EXPECT_EQ(*th.Local<int>("calls"), 2);
  EXPECT_EQ(th.Local<std::string>("calls"), nullptr);
}

TEST(StarlarkApiTest, HostValuesHaveAttributes) {
  Thread th;
  StringDict pre{{"p", NewHost<Point>(3, 4)}};
  auto r = ExecFile(
      th, "h.star",
      "s = p.x * p.x + p.y * p.y\nt = type(p)\nd = dir(p)\nr = repr(p)\n"
      "h = hasattr(p, 'z')\n",
      pre);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Repr((*r)["s"]), "25");
  EXPECT_EQ(StrOf((*r)["t"]), "point");
  EXPECT_EQ(Repr((*r)["d"]), "[\"x\", \"y\"]");
  EXPECT_EQ(StrOf((*r)["r"]), "point(3, 4)");
  EXPECT_EQ(Repr((*r)["h"]), "False");
  auto e = ExecFile(th, "h2.star", "z = p.z\n", pre);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("point has no .z field or method"),
            std::string::npos);
}

TEST(StarlarkApiTest, StepLimitStopsRunawayLoops) {
  Thread th;
  th.max_steps = 10000;
  auto r =
      ExecFile(th, "loop.star",
               "def f():\n  for i in range(1000000):\n    pass\nf()\n", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("too many steps"), std::string::npos)
      << r.status();
  EXPECT_LE(th.steps(), 10001u);
}

TEST(StarlarkApiTest, CancellationFromAnotherThread) {
  Thread th;
  th.dialect.allow_while = true;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    th.Cancel("deadline");
  });
  auto start = std::chrono::steady_clock::now();
  auto r =
      ExecFile(th, "spin.star", "def f():\n  while True:\n    pass\nf()\n", {});
  canceller.join();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cancelled: deadline"), std::string::npos)
      << r.status();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(StarlarkApiTest, FrozenValuesSharedBetweenThreads) {
  Thread th;
  auto r = ExecFile(th, "shared.star",
                    "table = {str(i): [i, i * 2] for i in range(100)}\n"
                    "def total(t):\n  return sum_values(t)\n"
                    "def sum_values(t):\n  s = 0\n  for k, v in t.items():\n   "
                    " s += v[1]\n  return s\n",
                    {});
  ASSERT_TRUE(r.ok()) << r.status();
  Value fn = (*r)["total"], table = (*r)["table"];
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; i++) {
    ts.emplace_back([&] {
      for (int k = 0; k < 50; k++) {
        Thread local;
        Value t = table;  // refcount traffic on a shared frozen value
        auto v = Call(local, fn, std::vector<Value>{t});
        if (v.ok() && Repr(*v) == "9900") ok++;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 200);
}

TEST(StarlarkApiTest, LoadUsesHostLoader) {
  Thread th;
  th.load = TestLoader;
  auto r = ExecFile(th, "l.star",
                    "load('chain.star', 'z')\nload('fixture.star', bb = "
                    "'b')\nw = z + len(bb)\n",
                    {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Repr((*r)["w"]), "44");
}

TEST(StarlarkApiTest, LoadErrorContinuesTheBacktrace) {
  // The loaded module's frames follow the load statement's, so the error
  // keeps the module's own position.
  Thread th;
  th.load = TestLoader;
  auto r = ExecFile(th, "l.star", "a = 1\nload('broken.star', 'x')\n", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "Traceback (most recent call last):\n"
            "  l.star:2:1: in <toplevel>\n"
            "  broken.star:1:7: in <toplevel>\n"
            "Error: integer division by zero");
  // Any other error of the host's loader is at the load statement.
  r = ExecFile(th, "l.star", "a = 1\nload('missing.star', 'x')\n", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "Traceback (most recent call last):\n"
            "  l.star:2:1: in <toplevel>\n"
            "Error: cannot load missing.star: no such module: missing.star");
}

TEST(StarlarkApiTest, BacktraceListsFrames) {
  Thread th;
  auto r = ExecFile(
      th, "bt.star",
      "def f(x):\n  return g(x)\ndef g(y):\n  return y + 'a'\nf(1)\n", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "Traceback (most recent call last):\n"
            "  bt.star:5:2: in <toplevel>\n"
            "  bt.star:2:11: in f\n"
            "  bt.star:4:12: in g\n"
            "Error: unknown binary op: int + string");
}

TEST(StarlarkApiTest, CyclesAreCollected) {
  {
    Thread th;
    auto r = ExecFile(
        th, "cyc.star",
        "def f():\n  a = []\n  a.append(a)\n  return 1\nx = f()\n", {});
    ASSERT_TRUE(r.ok());
  }
  CollectCycles();
  size_t before = TrackedContainers();
  {
    Thread th;
    auto r = ExecFile(th, "cyc2.star",
                      "def f():\n  a = []\n  a.append(a)\n  d = {}\n  d['d'] = "
                      "d\n  return 1\nx = f()\n",
                      {});
    ASSERT_TRUE(r.ok());
  }
  size_t freed = CollectCycles();
  EXPECT_GE(freed, 2u);
  EXPECT_EQ(TrackedContainers(), before);
}

}  // namespace
}  // namespace fault::starlark
