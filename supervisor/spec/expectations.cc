#include "supervisor/spec/expectations.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "supervisor/policy/units.h"
#include "supervisor/spec/builtins.h"
#include "supervisor/spec/call_site.h"

namespace fault::spec {
namespace sl = ::fault::starlark;
using sl::Value;

namespace {

enum class Want { kSuccess, kErrorWithin, kHang };

class Expectation : public sl::HostValue {
 public:
  Expectation(Want want, absl::Duration within, std::string where)
      : want_(want), within_(within), where_(std::move(where)) {}
  std::string Type() const override { return "expectation"; }
  std::string Repr() const override {
    switch (want_) {
      case Want::kSuccess:
        return "expect_success()";
      case Want::kErrorWithin:
        return absl::StrCat("expect_error_within(\"", WithinText(), "\")");
      case Want::kHang:
        return "expect_hang()";
    }
    return "expectation";
  }
  Want want() const { return want_; }
  absl::Duration within() const { return within_; }
  std::string WithinText() const {
    return fault::policy::FormatDuration(absl::ToInt64Nanoseconds(within_));
  }
  // "expect_hang() (spec.star:12:30)".
  std::string Named() const { return absl::StrCat(Repr(), " (", where_, ")"); }

 private:
  Want want_;
  absl::Duration within_;
  std::string where_;  // where the spec wrote it
};

const Expectation* AsExpectation(const Value& v) {
  if (v.IsNull() || !v.Is(sl::Kind::kHost)) return nullptr;
  auto* h = v.as<sl::HostValue>();
  if (h->Type() != "expectation") return nullptr;
  return static_cast<const Expectation*>(h);
}

// The field `name` of a struct-like value or a dict; null when it has none.
Value Field(sl::Thread& th, const Value& v, const char* name) {
  if (v.Is(sl::Kind::kHost)) return v.as<sl::HostValue>()->Attr(th, name);
  if (v.Is(sl::Kind::kDict)) {
    sl::HashTable::Entry* e = sl::DictOf(v)->t.Find(sl::Str(name));
    if (e != nullptr) return e->value;
  }
  return Value();
}

// "603ms", "1.25s" (to the millisecond).
std::string Elapsed(absl::Duration d) {
  int64_t ms = absl::ToInt64Milliseconds(d);
  return ms == 0 ? "0ms" : fault::policy::FormatDuration(ms * 1'000'000);
}

// "; it returned VALUE" (its repr, cut after 120 characters).
std::string Returned(const Value& v) {
  std::string r = sl::Repr(v);
  if (r.size() > 120) r = absl::StrCat(r.substr(0, 120), "...");
  return absl::StrCat("; it returned ", r);
}

// Fails at `where` ("file:line:col"), as the spec's other builtins do:
// their errors lead with the position of the argument at fault.
[[noreturn]] void FailAt(const std::string& where, absl::string_view fname,
                         absl::string_view msg) {
  absl::ConsumePrefix(&msg, absl::StrCat(fname, ": "));
  sl::Fail(absl::StrCat(where, ": ", msg));
}

// sl::UnpackArgs with its errors at the call's position.
void Unpack(const CallSite& site, absl::string_view fname, const sl::Args& args,
            std::initializer_list<sl::ArgTarget> targets) {
  try {
    sl::UnpackArgs(std::string_view(fname.data(), fname.size()), args, targets);
  } catch (const sl::EvalError& e) {
    FailAt(site.Call(), fname, e.msg);
  }
}

// An expectation without parameters: expect_success(), expect_hang().
sl::BuiltinFn Plain(std::string fname, Want want) {
  return [fname = std::move(fname), want](sl::Thread& th, const Value&, const sl::Args& args) {
    CallIndex index;  // one call: its file's calls are indexed once
    CallSite site(th, args, &index);
    Unpack(site, fname, args, {});
    return sl::NewHost<Expectation>(want, absl::ZeroDuration(), site.Call());
  };
}

Value ExpectErrorWithin(sl::Thread& th, const Value&, const sl::Args& args) {
  static constexpr absl::string_view kF = "expect_error_within";
  CallIndex index;
  CallSite site(th, args, &index);
  Value within;
  Unpack(site, kF, args, {{"within", &within}});
  const std::string at = site.Param(0, "within");
  absl::Duration d;
  try {
    d = DurationArg(kF, "within", within);
  } catch (const sl::EvalError& e) {
    FailAt(at, kF, e.msg);
  }
  if (d <= absl::ZeroDuration())
    FailAt(at, kF,
           "for parameter \"within\": want a duration above 0 (\"2s\")");
  return sl::NewHost<Expectation>(Want::kErrorWithin, d, site.Call());
}

}  // namespace

bool IsExpectation(const Value& v) { return AsExpectation(v) != nullptr; }

bool ExpectsHang(const Value& v) {
  const Expectation* e = AsExpectation(v);
  return e != nullptr && e->want() == Want::kHang;
}

std::string ResultError(sl::Thread& th, const Value& result) {
  if (result.IsNull()) return "";
  Value error = Field(th, result, "error");
  if (!error.IsNull() && error.Is(sl::Kind::kString) &&
      !sl::StrOf(error).empty())
    return sl::StrOf(error);
  int64_t n;
  Value status = Field(th, result, "status");
  if (!status.IsNull() && status.Is(sl::Kind::kInt) &&
      sl::IntToInt64(status, &n) && n >= 500)
    return absl::StrCat("HTTP status ", n);
  Value ok = Field(th, result, "ok");
  if (!ok.IsNull() && ok.Is(sl::Kind::kBool) && !sl::Truth(ok))
    return "ok = False";
  Value code = Field(th, result, "exit_code");
  if (!code.IsNull() && code.Is(sl::Kind::kInt) && sl::IntToInt64(code, &n) &&
      n != 0)
    return absl::StrCat("exit code ", n);
  return "";
}

std::string CheckExpectation(sl::Thread& th, const Value& v,
                             const RunOutcome& o) {
  const Expectation* e = AsExpectation(v);
  if (e == nullptr) return "not an expectation";
  const std::string after = Elapsed(o.elapsed);
  using End = RunOutcome::End;
  const std::string error =
      o.end == End::kReturned ? ResultError(th, o.value) : "";
  const std::string still_running =
      "want it still running when the cell times out";
  switch (e->want()) {
    case Want::kSuccess:
      if (o.end == End::kReturned && error.empty()) return "";
      if (o.end == End::kReturned)
        return absl::StrCat(e->Named(), ": run() returned an error after ",
                            after, ": ", error, Returned(o.value));
      if (o.end == End::kFailed)
        return absl::StrCat(e->Named(), ": run() failed after ", after, ":\n",
                            o.error);
      return absl::StrCat(e->Named(), ": run() did not finish: ", o.error);
    case Want::kErrorWithin: {
      const std::string want =
          absl::StrCat("want an error within ", e->WithinText());
      if (o.end == End::kHung)
        return absl::StrCat(e->Named(), ": run() did not finish (", o.error,
                            "), ", want);
      if (o.end == End::kReturned && error.empty())
        return absl::StrCat(e->Named(),
                            ": run() returned without an error after ", after,
                            ", ", want, Returned(o.value));
      if (o.elapsed <= e->within()) return "";
      if (o.end == End::kReturned)
        return absl::StrCat(e->Named(), ": run() returned an error after ",
                            after, ", later than ", e->WithinText(), ": ",
                            error);
      return absl::StrCat(e->Named(), ": run() failed after ", after,
                          ", later than ", e->WithinText(), ":\n", o.error);
    }
    case Want::kHang:
      if (o.end == End::kHung) return "";
      if (o.end == End::kReturned)
        return absl::StrCat(e->Named(), ": run() returned after ", after, ", ",
                            still_running, Returned(o.value));
      return absl::StrCat(e->Named(), ": run() failed after ", after, ", ",
                          still_running, ":\n", o.error);
  }
  return "";
}

void AddExpectationBuiltins(sl::StringDict* pre) {
  auto& p = *pre;
  p["expect_success"] =
      sl::NewBuiltin("expect_success", Plain("expect_success", Want::kSuccess));
  p["expect_error_within"] =
      sl::NewBuiltin("expect_error_within", ExpectErrorWithin);
  p["expect_hang"] =
      sl::NewBuiltin("expect_hang", Plain("expect_hang", Want::kHang));
}

}  // namespace fault::spec
