// fault_starlark_conformance DIR|FILE...: runs chunked Starlark test files in
// the format of starlark-go's starlark/testdata/*.star against this
// interpreter and prints, per file, the chunks that pass and every mismatch.
//
// The format (as starlark-go's test runner reads it):
//   - a file splits into chunks at lines that are exactly `---`; each chunk
//     runs as its own module, padded with newlines so that positions are
//     those of the file;
//   - `### "regexp"` (a Go string literal) on a line expects an error whose
//     innermost position in the chunk is on that line and whose message
//     matches; an error elsewhere, or an expected error that does not occur,
//     is a mismatch;
//   - `option:NAME` anywhere in a chunk turns on a dialect option (while,
//     recursion, toplevelcontrol, globalreassign, set);
//   - load("assert.star", "assert", "freeze") gives the assert module:
//     eq, ne, true, lt, contains, fails, fail. A failed assertion is reported
//     and the chunk goes on (as starlark-go's assert.error does); freeze(x)
//     freezes x. load("json.star"|"math.star"|"time.star", NAME) gives the
//     library modules, which are also predeclared (benchmark.star uses
//     json unloaded). `struct` and `hasfields` are predeclared; starlark-go's
//     `fibonacci` (an iterable host type) and the proto module are not here.
//
// Exit status: 0 when every chunk passes, 1 otherwise, 2 on a usage error.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "starlark/lib/lib.h"
#include "starlark/starlark.h"

namespace fault::starlark {
namespace {

// ------------------------------------------------------------ reporting

// Failures of the chunk being run (assertions append to it).
struct Report {
  std::vector<std::string> failures;
};

// The innermost position of the running Starlark code, "file:line".
std::string CallerPosition(Thread& th) {
  for (auto it = th.stack.rbegin(); it != th.stack.rend(); ++it)
    if (it->file != nullptr)
      return absl::StrCat(it->file->filename, ":", it->pos.line);
  return "<unknown>";
}

void ReportFailure(Thread& th, const std::string& msg) {
  Report* r = th.Local<Report>("conformance.report");
  if (r != nullptr) r->failures.push_back(CallerPosition(th) + ": " + msg);
}

// Go regular expressions (RE2) are close enough to ECMAScript for the test
// data; a pattern std::regex refuses is matched as a substring.
bool MatchesExactly(const std::string& pattern, const std::string& text);

// starlark-go's builtins begin their messages with their name ("add: ...");
// here the backtrace names the builtin instead ("Error in add: ..."), so a
// pattern that begins with a name and a colon also matches without them.
bool Matches(const std::string& pattern, const std::string& text) {
  if (MatchesExactly(pattern, text)) return true;
  static const std::regex name_prefix("^[A-Za-z_][A-Za-z_0-9.]*: ");
  std::smatch m;
  if (std::regex_search(pattern, m, name_prefix))
    return MatchesExactly(pattern.substr(m.length(0)), text);
  return false;
}

bool MatchesExactly(const std::string& pattern, const std::string& text) {
  try {
    return std::regex_search(text, std::regex(pattern));
  } catch (const std::regex_error&) {
    return text.find(pattern) != std::string::npos;
  }
}

// ------------------------------------------------------------ assert module

bool IsNumber(const Value& v) { return v.Is(Kind::kFloat) || v.IsInt(); }

// Within one unit in the last place, as starlark-go's floateq.
bool FloatNear(double x, double y) {
  if (x == y) return true;
  if (std::isnan(x) || std::isnan(y)) return std::isnan(x) && std::isnan(y);
  return std::nextafter(x, y) == y;
}

double AsDouble(Thread& th, const Value& v) {
  static const Value float_fn = [] {
    for (auto& [n, f] : Universe())
      if (n == "float") return f;
    return Value();
  }();
  Value args[1] = {v};
  return FloatOf(CallValue(th, float_fn, Args{args, {}}));
}

Value AssertEq(Thread& th, const Value&, const Args& a) {
  CheckArgCount("assert.eq", a, 2, 2);
  const Value& x = a.pos[0];
  const Value& y = a.pos[1];
  if (Equal(x, y)) return None();
  if ((x.Is(Kind::kFloat) && IsNumber(y)) ||
      (y.Is(Kind::kFloat) && IsNumber(x))) {
    if (!FloatNear(AsDouble(th, x), AsDouble(th, y)))
      ReportFailure(
          th, "floats: " + Repr(x) + " != " + Repr(y) + " (delta > 1 ulp)");
    return None();
  }
  ReportFailure(th, Repr(x) + " != " + Repr(y));
  return None();
}

Value AssertNe(Thread& th, const Value&, const Args& a) {
  CheckArgCount("assert.ne", a, 2, 2);
  if (Equal(a.pos[0], a.pos[1]))
    ReportFailure(th, Repr(a.pos[0]) + " == " + Repr(a.pos[1]));
  return None();
}

Value AssertTrue(Thread& th, const Value&, const Args& a) {
  CheckArgCount("assert.true", a, 1, 2);
  if (!Truth(a.pos[0]))
    ReportFailure(th, a.pos.size() > 1 ? ToStr(a.pos[1]) : "assertion failed");
  return None();
}

Value AssertLt(Thread& th, const Value&, const Args& a) {
  CheckArgCount("assert.lt", a, 2, 2);
  if (!(Compare(a.pos[0], a.pos[1]) < 0))
    ReportFailure(th, ToStr(a.pos[0]) + " is not less than " + ToStr(a.pos[1]));
  return None();
}

Value AssertContains(Thread& th, const Value&, const Args& a) {
  CheckArgCount("assert.contains", a, 2, 2);
  if (!Contains(a.pos[0], a.pos[1]))
    ReportFailure(th, ToStr(a.pos[0]) + " does not contain " + ToStr(a.pos[1]));
  return None();
}

Value AssertFail(Thread& th, const Value&, const Args& a) {
  CheckArgCount("assert.fail", a, 1, 1);
  ReportFailure(th, ToStr(a.pos[0]));
  return None();
}

Value AssertFails(Thread& th, const Value&, const Args& a) {
  CheckArgCount("assert.fails", a, 2, 2);
  std::string pattern = ToStr(a.pos[1]);
  size_t depth = th.stack.size();
  try {
    CallValue(th, a.pos[0], Args{});
  } catch (EvalError& e) {
    // starlark-go's builtins put their name before the message; here the
    // backtrace does ("Error in add: ..."): accept either form.
    std::string qualified = e.msg;
    if (th.stack.size() > depth && th.stack.back().file == nullptr)
      qualified = *th.stack.back().name + ": " + e.msg;
    th.stack.resize(depth);
    if (!Matches(pattern, e.msg) && !Matches(pattern, qualified))
      ReportFailure(th, "regular expression (" + pattern +
                            ") did not match error (" + e.msg + ")");
    return None();
  }
  ReportFailure(th, "evaluation succeeded unexpectedly (want error matching " +
                        Repr(a.pos[1]) + ")");
  return None();
}

class AssertModule : public HostValue {
 public:
  AssertModule() {
    Add("eq", AssertEq);
    Add("ne", AssertNe);
    Add("true", AssertTrue);
    Add("lt", AssertLt);
    Add("contains", AssertContains);
    Add("fails", AssertFails);
    Add("fail", AssertFail);
  }
  std::string Type() const override { return "module"; }
  std::string Repr() const override { return "<module \"assert\">"; }
  Value Attr(Thread&, std::string_view name) override {
    auto it = fns_.find(name);
    return it == fns_.end() ? Value() : it->second;
  }
  std::vector<std::string> AttrNames() const override {
    std::vector<std::string> out;
    for (auto& [k, v] : fns_) out.push_back(k);
    return out;
  }

 private:
  void Add(const char* name, BuiltinPtr f) {
    fns_[name] = Value::Adopt(new BuiltinObj(name, f, Value()));
  }
  std::map<std::string, Value, std::less<>> fns_;
};

// ------------------------------------------------------------ host types

// struct(k = v, ...): an immutable value with attributes, as
// starlarkstruct.Make.
class StructValue : public HostValue {
 public:
  explicit StructValue(std::map<std::string, Value, std::less<>> fields)
      : fields_(std::move(fields)) {}
  std::string Type() const override { return "struct"; }
  std::string Repr() const override {
    std::string out = "struct(";
    const char* sep = "";
    for (auto& [k, v] : fields_) {
      absl::StrAppend(&out, sep, k, " = ", starlark::Repr(v));
      sep = ", ";
    }
    return out + ")";
  }
  Value Attr(Thread&, std::string_view name) override {
    auto it = fields_.find(name);
    return it == fields_.end() ? Value() : it->second;
  }
  std::vector<std::string> AttrNames() const override {
    std::vector<std::string> out;
    for (auto& [k, v] : fields_) out.push_back(k);
    return out;
  }
  void Freeze() override {
    for (auto& [k, v] : fields_) starlark::Freeze(v);
  }

 private:
  std::map<std::string, Value, std::less<>> fields_;
};

// hasfields(): a host value with no attributes; starlark-go's runner lets
// Starlark code set any field on it, which host values here cannot offer.
class HasFields : public HostValue {
 public:
  std::string Type() const override { return "hasfields"; }
  std::string Repr() const override { return "hasfields"; }
  bool Hash(uint64_t* out) const override {
    *out = 42;
    return true;
  }
};

StringDict Predeclared() {
  StringDict d;
  // starlark-go's benchmark runner puts json in the universe.
  AddLibraryModules(&d);
  d["struct"] = NewBuiltin("struct", [](Thread&, const Value&, const Args& a) {
    if (!a.pos.empty()) Fail("struct: unexpected positional arguments");
    std::map<std::string, Value, std::less<>> fields;
    for (auto& [k, v] : a.kw) fields[StrOf(k)] = v;
    return NewHost<StructValue>(std::move(fields));
  });
  d["hasfields"] =
      NewBuiltin("hasfields", [](Thread&, const Value&, const Args& a) {
        CheckArgCount("hasfields", a, 0, 0);
        return NewHost<HasFields>();
      });
  return d;
}

absl::StatusOr<StringDict> Load(Thread&, const std::string& module) {
  if (module == "assert.star") {
    StringDict d;
    d["assert"] = NewHost<AssertModule>();
    d["freeze"] =
        NewBuiltin("freeze", [](Thread&, const Value&, const Args& a) {
          CheckArgCount("freeze", a, 1, 1);
          Freeze(a.pos[0]);
          return a.pos[0];
        });
    return d;
  }
  StringDict lib;
  AddLibraryModules(&lib);
  for (const char* name : {"json", "math", "time"})
    if (module == absl::StrCat(name, ".star"))
      return StringDict{{name, lib[name]}};
  return absl::NotFoundError("no module " + module + " in this runner");
}

// ------------------------------------------------------------ chunks

// Unquotes a Go string literal ("..." with escapes, or `...`).
bool UnquoteGo(absl::string_view s, std::string* out) {
  out->clear();
  if (s.size() >= 2 && s.front() == '`' && s.back() == '`') {
    *out = std::string(s.substr(1, s.size() - 2));
    return true;
  }
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') return false;
  for (size_t i = 1; i + 1 < s.size(); i++) {
    char c = s[i];
    if (c != '\\') {
      out->push_back(c);
      continue;
    }
    if (++i >= s.size() - 1) return false;  // the closing quote escaped
    switch (s[i]) {
      case 'n':
        out->push_back('\n');
        break;
      case 't':
        out->push_back('\t');
        break;
      case '\\':
      case '"':
      case '\'':
        out->push_back(s[i]);
        break;
      default:
        return false;
    }
  }
  return true;
}

struct Chunk {
  std::string source;                      // padded to the file's lines
  std::map<int, std::string> want_errors;  // line -> pattern
};

std::vector<Chunk> ReadChunks(const std::string& text,
                              std::vector<std::string>* problems,
                              const std::string& filename) {
  std::vector<Chunk> out;
  int linenum = 1;
  for (absl::string_view part : absl::StrSplit(text, "\n---\n")) {
    Chunk c;
    c.source = std::string(linenum - 1, '\n') + std::string(part);
    for (absl::string_view line : absl::StrSplit(part, '\n')) {
      size_t k = line.find("###");
      if (k != absl::string_view::npos) {
        absl::string_view rest = line.substr(k + 3);
        while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t'))
          rest.remove_prefix(1);
        while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t' ||
                                 rest.back() == '\r'))
          rest.remove_suffix(1);
        std::string pattern;
        if (UnquoteGo(rest, &pattern))
          c.want_errors[linenum] = pattern;
        else
          problems->push_back(absl::StrCat(filename, ":", linenum,
                                           ": not a quoted regexp: ", rest));
      }
      linenum++;
    }
    linenum++;  // the `---` line
    out.push_back(std::move(c));
  }
  return out;
}

bool HasOption(const std::string& src, const char* name) {
  return src.find(std::string("option:") + name) != std::string::npos;
}

// Splits an error of ExecFile into the line of its innermost position in
// `filename` (0 if none) and its message.
void ParseError(const std::string& err, const std::string& filename, int* line,
                std::string* msg, std::string* qualified) {
  *line = 0;
  std::string prefix = filename + ":";
  if (err.rfind("Traceback (most recent call last):\n", 0) != 0) {
    // A static error: "file:line:col: message".
    *msg = err;
    if (err.rfind(prefix, 0) == 0) {
      size_t a = prefix.size();
      size_t b = err.find(':', a);
      size_t c = b == std::string::npos ? b : err.find(": ", b + 1);
      if (c != std::string::npos) {
        *line = std::atoi(err.c_str() + a);
        *msg = err.substr(c + 2);
      }
    }
    *qualified = *msg;
    return;
  }
  std::vector<absl::string_view> lines = absl::StrSplit(err, '\n');
  size_t last = 0;
  for (size_t i = 1; i < lines.size(); i++) {
    absl::string_view l = lines[i];
    if (l.rfind("  ", 0) != 0) {
      last = i;
      break;
    }
    l.remove_prefix(2);
    if (l.rfind(prefix, 0) == 0) *line = std::atoi(l.data() + prefix.size());
  }
  std::string tail;
  for (size_t i = last; i < lines.size(); i++)
    absl::StrAppend(&tail, i > last ? "\n" : "", lines[i]);
  if (tail.rfind("Error: ", 0) == 0) {
    *msg = tail.substr(7);
    *qualified = *msg;
  } else if (tail.rfind("Error in ", 0) == 0) {
    size_t c = tail.find(": ");
    *msg = tail.substr(c + 2);
    *qualified = tail.substr(9);  // "name: message"
  } else {
    *msg = *qualified = tail;
  }
}

// Runs one chunk; returns its mismatches.
std::vector<std::string> RunChunk(Chunk& c, const std::string& filename) {
  Thread th;
  th.dialect.allow_while = HasOption(c.source, "while");
  th.dialect.allow_recursion = HasOption(c.source, "recursion");
  th.dialect.allow_toplevel_control = HasOption(c.source, "toplevelcontrol");
  th.dialect.allow_global_reassign = HasOption(c.source, "globalreassign");
  if (th.dialect.allow_recursion) th.max_call_depth = 1000;
  th.max_steps = 500'000'000;
  th.load = Load;
  th.print = [](Thread&, const std::string&) {};
  th.SetLocal("conformance.report", Report{});
  auto r = ExecFile(th, filename, c.source, Predeclared());
  std::vector<std::string> out =
      th.Local<Report>("conformance.report")->failures;
  for (auto& f : out) f = "assertion: " + f;
  if (!r.ok()) {
    int line;
    std::string msg, qualified;
    ParseError(std::string(r.status().message()), filename, &line, &msg,
               &qualified);
    auto it = c.want_errors.find(line);
    if (it == c.want_errors.end()) {
      out.push_back(
          absl::StrCat(filename, ":", line, ": unexpected error: ", msg));
    } else {
      if (!Matches(it->second, msg) && !Matches(it->second, qualified))
        out.push_back(absl::StrCat(filename, ":", line, ": error \"", msg,
                                   "\" does not match \"", it->second, "\""));
      c.want_errors.erase(it);
    }
  }
  for (auto& [line, pattern] : c.want_errors)
    out.push_back(absl::StrCat(filename, ":", line,
                               ": expected error matching \"", pattern,
                               "\" did not occur"));
  return out;
}

int Main(int argc, char** argv) {
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; i++) {
    std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      for (auto& e : std::filesystem::directory_iterator(p))
        if (e.path().extension() == ".star") files.push_back(e.path());
    } else {
      files.push_back(p);
    }
  }
  if (files.empty()) {
    std::fprintf(stderr,
                 "usage: fault_starlark_conformance DIR|FILE.star...\n"
                 "  (e.g. a starlark-go checkout's starlark/testdata)\n");
    return 2;
  }
  std::sort(files.begin(), files.end());
  int total = 0, passed = 0, mismatches = 0;
  for (auto& p : files) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string filename = p.filename().string();
    std::vector<std::string> problems;
    std::vector<Chunk> chunks = ReadChunks(ss.str(), &problems, filename);
    int ok = 0;
    for (Chunk& c : chunks) {
      std::vector<std::string> m = RunChunk(c, filename);
      if (m.empty()) ok++;
      problems.insert(problems.end(), m.begin(), m.end());
    }
    CollectCycles();
    std::printf("%-22s %3d/%-3d chunks pass, %zu mismatches\n",
                filename.c_str(), ok, static_cast<int>(chunks.size()),
                problems.size());
    for (auto& m : problems) std::printf("    %s\n", m.c_str());
    total += static_cast<int>(chunks.size());
    passed += ok;
    mismatches += static_cast<int>(problems.size());
  }
  std::printf("total: %zu files, %d/%d chunks pass, %d mismatches\n",
              files.size(), passed, total, mismatches);
  return passed == total && mismatches == 0 ? 0 : 1;
}

}  // namespace
}  // namespace fault::starlark

int main(int argc, char** argv) { return fault::starlark::Main(argc, argv); }
