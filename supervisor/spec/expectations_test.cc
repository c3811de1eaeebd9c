#include "supervisor/spec/expectations.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "supervisor/spec/builtins.h"

namespace fault::spec {
namespace {
namespace sl = ::fault::starlark;

// The value of `expr`, evaluated with the spec's common builtins.
sl::Value Eval(sl::Thread& th, const std::string& expr) {
  sl::StringDict pre;
  AddCommonBuiltins(&pre);
  absl::StatusOr<sl::StringDict> g =
      sl::ExecFile(th, "t.star", "x = " + expr + "\n", pre);
  EXPECT_TRUE(g.ok()) << g.status();
  return g.ok() ? (*g)["x"] : sl::None();
}

std::string LoadError(const std::string& expr) {
  sl::Thread th;
  sl::StringDict pre;
  AddCommonBuiltins(&pre);
  absl::StatusOr<sl::StringDict> g =
      sl::ExecFile(th, "t.star", "x = " + expr + "\n", pre);
  if (g.ok()) return "";
  std::string m(g.status().message());
  return m.substr(m.rfind('\n') + 1);
}

RunOutcome Returned(sl::Value v, double seconds) {
  RunOutcome o;
  o.value = v;
  o.elapsed = absl::Seconds(seconds);
  return o;
}

RunOutcome Failed(double seconds) {
  RunOutcome o;
  o.end = RunOutcome::End::kFailed;
  o.error = "Traceback (most recent call last):\nError in fail: boom";
  o.elapsed = absl::Seconds(seconds);
  return o;
}

RunOutcome Hung() {
  RunOutcome o;
  o.end = RunOutcome::End::kHung;
  o.error = "cell timed out after 2s (--cell-timeout)";
  o.elapsed = absl::Seconds(2);
  return o;
}

TEST(SpecExpectationsTest, ResultErrors) {
  sl::Thread th;
  EXPECT_EQ(ResultError(th, Eval(th, "struct(status = 503, error = \"\")")),
            "HTTP status 503");
  EXPECT_EQ(ResultError(th, Eval(th, "struct(status = 404, error = \"\")")),
            "");
  EXPECT_EQ(ResultError(th, Eval(th,
                                 "struct(status = 0, error = \"connect: "
                                 "Connection refused\")")),
            "connect: Connection refused");
  EXPECT_EQ(ResultError(th, Eval(th, "struct(ok = False, error = \"\")")),
            "ok = False");
  EXPECT_EQ(ResultError(th, Eval(th, "struct(exit_code = 3)")), "exit code 3");
  EXPECT_EQ(ResultError(th, Eval(th, "{\"status\": 500}")), "HTTP status 500");
  EXPECT_EQ(ResultError(th, Eval(th, "{\"ok\": True}")), "");
  EXPECT_EQ(ResultError(th, Eval(th, "None")), "");
  EXPECT_EQ(ResultError(th, Eval(th, "[1, 2]")), "");
}

TEST(SpecExpectationsTest, ExpectSuccess) {
  sl::Thread th;
  sl::Value e = Eval(th, "expect_success()");
  ASSERT_TRUE(IsExpectation(e));
  EXPECT_FALSE(ExpectsHang(e));
  EXPECT_EQ(sl::Repr(e), "expect_success()");
  EXPECT_EQ(CheckExpectation(th, e, Returned(sl::None(), 0.1)), "");
  EXPECT_EQ(
      CheckExpectation(th, e, Returned(Eval(th, "struct(status = 201)"), 0.1)),
      "");
  EXPECT_EQ(
      CheckExpectation(th, e, Returned(Eval(th, "struct(status = 502)"), 0.25)),
      "expect_success() (t.star:1:19): run() returned an error after 250ms: "
      "HTTP status 502; it returned struct(status = 502)");
  EXPECT_EQ(CheckExpectation(th, e, Failed(1)),
            "expect_success() (t.star:1:19): run() failed after 1s:\n"
            "Traceback (most recent call last):\nError in fail: boom");
  EXPECT_TRUE(absl::StrContains(CheckExpectation(th, e, Hung()),
                                "run() did not finish"));
}

TEST(SpecExpectationsTest, ExpectErrorWithin) {
  sl::Thread th;
  sl::Value e = Eval(th, "expect_error_within(\"1s\")");
  ASSERT_TRUE(IsExpectation(e));
  EXPECT_EQ(sl::Repr(e), "expect_error_within(\"1s\")");
  sl::Value refused =
      Eval(th, "struct(status = 0, error = \"connect: refused\")");
  EXPECT_EQ(CheckExpectation(th, e, Returned(refused, 0.2)), "");
  EXPECT_EQ(CheckExpectation(th, e, Failed(0.9)), "");
  EXPECT_EQ(
      CheckExpectation(th, e, Returned(refused, 1.5)),
      "expect_error_within(\"1s\") (t.star:1:24): run() returned an error "
      "after 1.5s, later than 1s: connect: refused");
  EXPECT_EQ(CheckExpectation(th, e, Failed(3)),
            "expect_error_within(\"1s\") (t.star:1:24): run() failed after "
            "3s, later than 1s:\nTraceback (most recent call last):\nError "
            "in fail: boom");
  EXPECT_EQ(
      CheckExpectation(th, e, Returned(Eval(th, "struct(status = 200)"), 0.1)),
      "expect_error_within(\"1s\") (t.star:1:24): run() returned without an "
      "error after 100ms, want an error within 1s; it returned "
      "struct(status = 200)");
  EXPECT_EQ(CheckExpectation(th, e, Hung()),
            "expect_error_within(\"1s\") (t.star:1:24): run() did not finish "
            "(cell timed out after 2s (--cell-timeout)), want an error within "
            "1s");
  EXPECT_EQ(sl::Repr(Eval(th, "expect_error_within(0.5)")),
            "expect_error_within(\"500ms\")");
}

TEST(SpecExpectationsTest, ExpectHang) {
  sl::Thread th;
  sl::Value e = Eval(th, "expect_hang()");
  ASSERT_TRUE(ExpectsHang(e));
  EXPECT_EQ(CheckExpectation(th, e, Hung()), "");
  EXPECT_EQ(CheckExpectation(th, e, Returned(sl::Int(7), 0.05)),
            "expect_hang() (t.star:1:16): run() returned after 50ms, want it "
            "still running when the cell times out; it returned 7");
  EXPECT_TRUE(absl::StartsWith(
      CheckExpectation(th, e, Failed(0.3)),
      "expect_hang() (t.star:1:16): run() failed after 300ms, want it still "
      "running when the cell times out:\nTraceback"));
}

TEST(SpecExpectationsTest, BadArguments) {
  // The position of the argument at fault leads, as for the spec builtins.
  EXPECT_EQ(LoadError("expect_error_within()"),
            "Error in expect_error_within: t.star:1:24: missing argument for "
            "within");
  EXPECT_EQ(LoadError("expect_error_within(\"soon\")"),
            "Error in expect_error_within: t.star:1:25: for parameter "
            "\"within\": \"soon\" is not a duration: expected a number at "
            "\"soon\"");
  EXPECT_EQ(LoadError("expect_error_within(within = 0)"),
            "Error in expect_error_within: t.star:1:25: for parameter "
            "\"within\": want a duration above 0 (\"2s\")");
  EXPECT_EQ(LoadError("expect_success(1)"),
            "Error in expect_success: t.star:1:19: got 1 arguments, want at "
            "most 0");
  EXPECT_FALSE(IsExpectation(sl::Int(1)));
}

}  // namespace
}  // namespace fault::spec
