// Tests of the library modules through the embedding API: the time
// module's clock seam, host-side duration and time values, the Go duration
// syntax, errors as a host sees them, and sharing the modules between
// threads. The Starlark-level behaviour is in tests/starlark/{json,math,
// time}.star.
#include "starlark/lib/lib.h"

#include <atomic>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "starlark/lib/time.h"
#include "starlark/starlark.h"

namespace fault::starlark {
namespace {

StringDict Lib() {
  StringDict p;
  AddLibraryModules(&p);
  return p;
}

TEST(TimeModuleTest, FakeClockDrivesTimeNow) {
  FakeClock clock(absl::FromUnixSeconds(1'600'000'000) +
                  absl::Milliseconds(250));
  Thread th;
  SetClock(th, &clock);
  auto r = ExecFile(
      th, "now.star",
      "t = time.now()\nu = t.unix\nms = t.nanosecond // 1000000\n", Lib());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Repr((*r)["u"]), "1600000000");
  EXPECT_EQ(Repr((*r)["ms"]), "250");

  clock.Advance(absl::Seconds(90));
  auto d = ExecFile(th, "later.star", "d = str(time.now() - t)\n",
                    StringDict{{"t", (*r)["t"]}, {"time", Lib()["time"]}});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(StrOf((*d)["d"]), "1m30s");
}

TEST(TimeModuleTest, WithoutAClockTimeNowReadsTheSystemClock) {
  Thread th;
  SetClock(th, nullptr);
  int64_t before = absl::ToUnixSeconds(absl::Now());
  auto r = ExecFile(th, "now.star", "u = time.now().unix\n", Lib());
  int64_t after = absl::ToUnixSeconds(absl::Now());
  ASSERT_TRUE(r.ok()) << r.status();
  int64_t u = 0;
  ASSERT_TRUE(IntToInt64((*r)["u"], &u));
  EXPECT_GE(u, before);
  EXPECT_LE(u, after);
}

TEST(TimeModuleTest, HostValuesReachStarlark) {
  Thread th;
  StringDict p = Lib();
  p["timeout"] = NewDuration(1'500'000'000);
  p["start"] = NewTime(absl::FromCivil(absl::CivilSecond(2024, 2, 29, 12, 0, 0),
                                       absl::UTCTimeZone()),
                       "Europe/Berlin");
  auto r = ExecFile(th, "host.star",
                    "a = str(timeout)\nb = str(start)\nc = timeout * 2\n"
                    "d = (start + c).format('15:04:05.000')\n",
                    p);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(StrOf((*r)["a"]), "1.5s");
  EXPECT_EQ(StrOf((*r)["b"]), "2024-02-29 13:00:00 +0100 CET");
  int64_t ns = 0;
  ASSERT_TRUE(DurationOf((*r)["c"], &ns));
  EXPECT_EQ(ns, 3'000'000'000);
  EXPECT_FALSE(DurationOf((*r)["a"], &ns));
  EXPECT_EQ(StrOf((*r)["d"]), "13:00:03.000");
}

TEST(TimeModuleTest, GoDurationStringsRoundTrip) {
  const std::pair<int64_t, const char*> cases[] = {
      {0, "0s"},
      {1, "1ns"},
      {999, "999ns"},
      {1'000, "1\xc2\xb5s"},
      {1'500, "1.5\xc2\xb5s"},
      {1'000'000, "1ms"},
      {1'234'567, "1.234567ms"},
      {1'000'000'000, "1s"},
      {61'000'000'000, "1m1s"},
      {3'600'000'000'000, "1h0m0s"},
      {-5'400'000'000'001, "-1h30m0.000000001s"},
      {std::numeric_limits<int64_t>::max(), "2562047h47m16.854775807s"},
      {std::numeric_limits<int64_t>::min(), "-2562047h47m16.854775808s"},
  };
  for (auto& [ns, text] : cases) {
    EXPECT_EQ(FormatGoDuration(ns), text);
    int64_t back = 1;
    std::string err;
    ASSERT_TRUE(ParseGoDuration(text, &back, &err)) << text << ": " << err;
    EXPECT_EQ(back, ns) << text;
  }
  int64_t out;
  std::string err;
  EXPECT_FALSE(ParseGoDuration("1x", &out, &err));
  EXPECT_EQ(err, "unknown unit \"x\" in duration \"1x\"");
  EXPECT_FALSE(ParseGoDuration("12", &out, &err));
  EXPECT_EQ(err, "missing unit in duration \"12\"");
}

TEST(LibraryErrorsTest, DecodeErrorNamesTheOffsetAndTheCall) {
  Thread th;
  auto r = ExecFile(th, "cfg.star",
                    "x = 1\ncfg = json.decode('{\"a\": tru}')\n", Lib());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "Traceback (most recent call last):\n"
            "  cfg.star:2:18: in <toplevel>\n"
            "Error in json.decode: json.decode: at offset 6, unexpected "
            "character 't'");
}

TEST(LibraryErrorsTest, UnknownZoneFromTheHostApi) {
  Thread th;
  auto r = ExecFile(th, "z.star", "t = t0()\n",
                    StringDict{{"t0", NewBuiltin("t0", [](Thread&, const Value&,
                                                          const Args&) {
                                  return NewTime(absl::UnixEpoch(), "No/Where");
                                })}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("time: unknown time zone No/Where"),
            std::string::npos)
      << r.status();
}

// The module values are frozen singletons: threads use them at once.
TEST(LibrarySharingTest, ModulesAreUsedFromSeveralThreads) {
  const std::string src =
      "def run(n):\n"
      "  out = []\n"
      "  for i in range(n):\n"
      "    d = json.decode(json.encode({'i': i, 'r': math.sqrt(i)}))\n"
      "    out.append(d['i'] + math.floor(d['r'] * 0))\n"
      "  return sum_list(out) + time.parse_duration('%ds' % n).seconds\n"
      "def sum_list(xs):\n"
      "  s = 0\n"
      "  for x in xs:\n"
      "    s += x\n"
      "  return s\n";
  Thread loader;
  auto g = ExecFile(loader, "shared.star", src, Lib());
  ASSERT_TRUE(g.ok()) << g.status();
  Value run = (*g)["run"];
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  ts.reserve(4);
  for (int t = 0; t < 4; t++) {
    ts.emplace_back([&] {
      for (int k = 0; k < 20; k++) {
        Thread th;
        auto v = Call(th, run, std::vector<Value>{Int(100)});
        if (v.ok() && Repr(*v) == "5050.0") ok++;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 80);
  CollectCycles();
}

}  // namespace
}  // namespace fault::starlark
