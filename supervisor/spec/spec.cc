#include "supervisor/spec/spec.h"

#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "starlark/lib/lib.h"
#include "supervisor/cli/input_file.h"
#include "supervisor/policy/units.h"
#include "supervisor/spec/builtins.h"
#include "supervisor/spec/call_site.h"
#include "supervisor/spec/expectations.h"
#include "supervisor/spec/mock.h"

namespace fault::spec {
namespace sl = ::fault::starlark;
using sl::Value;

namespace {

// deny(...) / delay(...): one syscall rule.
class SyscallFaultValue : public sl::HostValue {
 public:
  SyscallFaultValue(std::string kind, SyscallRule rule)
      : kind_(std::move(kind)), rule_(std::move(rule)) {}
  std::string Type() const override { return kind_; }
  std::string Repr() const override {
    return absl::StrCat(kind_, "(", rule_.dump(), ")");
  }
  bool Hash(uint64_t* out) const override {
    *out = reinterpret_cast<uintptr_t>(this);
    return true;
  }
  const SyscallRule& rule() const { return rule_; }

 private:
  std::string kind_;
  SyscallRule rule_;
};

// http_error(...), redis_drop(...), ...: one item of a policy's
// http_faults, redis_faults or postgres_faults (`field`), in the
// policy-file format; given to fault_assumption as http=, redis=,
// postgres=.
class ProtocolFaultValue : public sl::HostValue {
 public:
  ProtocolFaultValue(std::string kind, std::string keyword, nlohmann::json item)
      : kind_(std::move(kind)), keyword_(std::move(keyword)), item_(std::move(item)) {}
  std::string Type() const override { return kind_; }
  std::string Repr() const override { return absl::StrCat(kind_, "(", item_.dump(), ")"); }
  bool Hash(uint64_t* out) const override {
    *out = reinterpret_cast<uintptr_t>(this);
    return true;
  }
  const std::string& keyword() const { return keyword_; }  // http, redis, postgres
  const nlohmann::json& item() const { return item_; }

 private:
  std::string kind_;
  std::string keyword_;
  nlohmann::json item_;
};

// svc.PORT: one port of a service. While a cell runs, its attributes are
// the cell's. While the spec loads, a fixed port gives its number, and a
// port chosen per cell (0) gives a reference ("127.0.0.1:{svc.PORT}") that
// the runner expands when the cell starts; .port has no such form and
// fails, rather than give 0.
class InterfaceValue : public sl::HostValue {
 public:
  InterfaceValue(std::shared_ptr<ServiceDef> s, std::string port,
                 std::shared_ptr<const bool> loading)
      : svc_(std::move(s)),
        port_(std::move(port)),
        loading_(std::move(loading)) {}
  std::string Type() const override { return "interface"; }
  std::string Repr() const override {
    return absl::StrCat("interface(", svc_->name, ".", port_, ")");
  }
  Value Attr(sl::Thread&, std::string_view name) override {
    if (name == "host") return sl::Str("127.0.0.1");
    if (name == "name") return sl::Str(port_);
    if (name != "port" && name != "addr" && name != "url") return Value();
    std::string port;  // the number, or a reference to it
    if (!*loading_) {
      const std::map<std::string, int>& ports = CurrentPorts(*svc_);
      auto it = ports.find(port_);
      int n = it == ports.end() ? 0 : it->second;
      if (name == "port") return sl::Int(n);
      port = absl::StrCat(n);
    } else {
      int fixed = 0;
      for (auto& [p, n] : svc_->ports)
        if (p == port_) fixed = n;
      if (name == "port") {
        if (fixed != 0) return sl::Int(fixed);
        const std::string ref = PortRefText(svc_->name, port_);
        sl::Fail(absl::StrCat(
            svc_->name, ".", port_,
            ".port: the port is chosen when each cell starts (ports = {\"",
            port_, "\": 0}), not known while the spec loads; use ", svc_->name,
            ".", port_,
            ".addr or .url (expanded when a cell starts its services), \"", ref,
            "\" in command or env, read .port in a scenario, or give the port "
            "a fixed number"));
      }
      port = fixed != 0 ? absl::StrCat(fixed) : PortRefText(svc_->name, port_);
    }
    if (name == "addr") return sl::Str(absl::StrCat("127.0.0.1:", port));
    return sl::Str(absl::StrCat("http://127.0.0.1:", port));
  }
  std::vector<std::string> AttrNames() const override {
    return {"addr", "host", "name", "port", "url"};
  }

 private:
  std::shared_ptr<ServiceDef> svc_;
  std::string port_;
  std::shared_ptr<const bool> loading_;  // the spec is loading
};

class ServiceValue : public sl::HostValue {
 public:
  ServiceValue(std::shared_ptr<ServiceDef> s,
               std::shared_ptr<const bool> loading)
      : svc_(std::move(s)), loading_(std::move(loading)) {}
  std::string Type() const override { return "service"; }
  std::string Repr() const override {
    return absl::StrCat("service(\"", svc_->name, "\")");
  }
  bool Hash(uint64_t* out) const override {
    *out = reinterpret_cast<uintptr_t>(svc_.get());
    return true;
  }
  Value Attr(sl::Thread&, std::string_view name) override {
    if (name == "name") return sl::Str(svc_->name);
    if (name == "dir") return sl::Str(CurrentDir(*svc_));
    for (auto& [p, port] : svc_->ports)
      if (p == name) return sl::NewHost<InterfaceValue>(svc_, p, loading_);
    return Value();
  }
  std::vector<std::string> AttrNames() const override {
    std::vector<std::string> n = {"dir", "name"};
    for (auto& [p, port] : svc_->ports) n.push_back(p);
    return n;
  }
  const std::shared_ptr<ServiceDef>& def() const { return svc_; }

 private:
  std::shared_ptr<ServiceDef> svc_;
  std::shared_ptr<const bool> loading_;
};

// respond(...): a canned reply of a mock service.
class ReplyValue : public sl::HostValue {
 public:
  ReplyValue(MockReply r, bool status_given, std::string where)
      : r_(std::move(r)),
        status_given_(status_given),
        where_(std::move(where)) {}
  std::string Type() const override { return "mock_reply"; }
  std::string Repr() const override {
    return absl::StrCat("respond(", r_.status, ", ", r_.body.size(), " bytes)");
  }
  const MockReply& reply() const { return r_; }
  bool status_given() const { return status_given_; }
  const std::string& where() const { return where_; }

 private:
  MockReply r_;
  bool status_given_;
  std::string where_;
};

// partition(a, b): two services cut off from each other.
class PartitionValue : public sl::HostValue {
 public:
  PartitionValue(std::shared_ptr<ServiceDef> a, std::shared_ptr<ServiceDef> b)
      : a_(std::move(a)), b_(std::move(b)) {}
  std::string Type() const override { return "partition"; }
  std::string Repr() const override {
    return absl::StrCat("partition(", a_->name, ", ", b_->name, ")");
  }
  const std::shared_ptr<ServiceDef>& a() const { return a_; }
  const std::shared_ptr<ServiceDef>& b() const { return b_; }

 private:
  std::shared_ptr<ServiceDef> a_, b_;
};

class AssumptionValue : public sl::HostValue {
 public:
  explicit AssumptionValue(std::shared_ptr<Assumption> a) : a_(std::move(a)) {}
  std::string Type() const override { return "fault_assumption"; }
  std::string Repr() const override {
    return absl::StrCat("fault_assumption(\"", a_->name, "\")");
  }
  bool Hash(uint64_t* out) const override {
    *out = reinterpret_cast<uintptr_t>(a_.get());
    return true;
  }
  Value Attr(sl::Thread&, std::string_view name) override {
    if (name == "name") return sl::Str(a_->name);
    if (name == "description") return sl::Str(a_->description);
    return Value();
  }
  std::vector<std::string> AttrNames() const override {
    return {"description", "name"};
  }
  const std::shared_ptr<Assumption>& def() const { return a_; }

 private:
  std::shared_ptr<Assumption> a_;
};

class ScenarioValue : public sl::HostValue {
 public:
  explicit ScenarioValue(std::shared_ptr<ScenarioDef> s) : s_(std::move(s)) {}
  std::string Type() const override { return "scenario"; }
  std::string Repr() const override {
    return absl::StrCat("scenario(\"", s_->name, "\")");
  }
  bool Hash(uint64_t* out) const override {
    *out = reinterpret_cast<uintptr_t>(s_.get());
    return true;
  }
  Value Attr(sl::Thread&, std::string_view name) override {
    if (name == "name") return sl::Str(s_->name);
    return Value();
  }
  std::vector<std::string> AttrNames() const override { return {"name"}; }
  const std::shared_ptr<ScenarioDef>& def() const { return s_; }
  void Freeze() override {
    sl::Freeze(s_->run);
    if (!s_->check.IsNull()) sl::Freeze(s_->check);
  }

 private:
  std::shared_ptr<ScenarioDef> s_;
};

template <typename T>
T* HostAs(const Value& v, absl::string_view type) {
  if (!v.Is(sl::Kind::kHost)) return nullptr;
  auto* h = v.as<sl::HostValue>();
  if (h->Type() != type && !(type == "syscall_fault" &&
                             (h->Type() == "deny" || h->Type() == "delay")))
    return nullptr;
  return static_cast<T*>(h);
}

// Fails with the position of the argument at fault ("file:line:col").
[[noreturn]] void FailPos(absl::string_view where, absl::string_view msg) {
  sl::Fail(absl::StrCat(where, ": ", msg));
}

// Why a keyword of fault_assumption has no place in a fault window.
std::string WindowKeywordHint(absl::string_view key) {
  if (key == "target") return "the window's service is the first argument";
  if (key == "description") return "describe the fault in a fault_assumption";
  if (key == "from_start")
    return "a window applies while it is open; from_start belongs to a "
           "fault_assumption given to the matrix";
  return "a partition cannot be applied in a window: fault exec sets it up "
         "when it starts the cell's services; give it to the matrix as a "
         "cell's fault";
}

// sl::UnpackArgs, with every error at the position of the argument at fault
// and a suggestion for a misspelt keyword.
void Unpack(const CallSite& site, absl::string_view fname, const sl::Args& args,
            std::initializer_list<sl::ArgTarget> targets) {
  const sl::ArgTarget* t = targets.begin();
  size_t n = targets.size();
  if (args.pos.size() > n)
    FailPos(site.Positional(n), absl::StrCat("got ", args.pos.size(),
                                             " positional arguments, want at "
                                             "most ",
                                             n));
  auto set = [&](size_t i, const Value& v, const std::string& where) {
    try {
      t[i].Set(std::string_view(fname.data(), fname.size()), v);
    } catch (sl::EvalError& e) {
      absl::string_view m = e.msg;
      absl::ConsumePrefix(&m, absl::StrCat(fname, ": "));
      FailPos(where, m);
    }
  };
  std::vector<bool> given(n, false);
  for (size_t i = 0; i < args.pos.size(); ++i) {
    set(i, args.pos[i], site.Positional(i));
    given[i] = true;
  }
  for (auto& [k, v] : args.kw) {
    const std::string& name = sl::StrOf(k);
    size_t i = 0;
    while (i < n && t[i].name() != name) ++i;
    if (i == n) {
      std::vector<std::string> known;
      for (size_t j = 0; j < n; ++j) known.emplace_back(t[j].name());
      std::string hint = SuggestKeyword(name, known);
      FailPos(site.Keyword(name),
              absl::StrCat("unexpected keyword argument \"", name, "\"",
                           hint.empty() ? ""
                                        : absl::StrCat(" (did you mean \"",
                                                       hint, "\"?)")));
    }
    if (given[i])
      FailPos(site.Keyword(name),
              absl::StrCat("got multiple values for parameter \"", name, "\""));
    set(i, v, site.Keyword(name));
    given[i] = true;
  }
  for (size_t i = 0; i < n; ++i)
    if (!given[i] && !t[i].optional())
      FailPos(site.Call(),
              absl::StrCat("missing argument for ", std::string(t[i].name())));
}

bool ValidName(absl::string_view n) {
  if (n.empty() || n.size() > 63) return false;
  for (char c : n)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
          c == '.'))
      return false;
  return true;
}

// Starlark data -> JSON in the policy-file format.
nlohmann::json ToJson(sl::Thread& th, absl::string_view where,
                      absl::string_view param, const Value& v) {
  switch (v.kind()) {
    case sl::Kind::kNone:
      return nullptr;
    case sl::Kind::kBool:
      return sl::Truth(v);
    case sl::Kind::kInt: {
      int64_t i;
      if (!sl::IntToInt64(v, &i))
        FailPos(where, absl::StrCat(param, ": integer too large"));
      return i;
    }
    case sl::Kind::kFloat:
      return sl::FloatOf(v);
    case sl::Kind::kString:
      return sl::StrOf(v);
    case sl::Kind::kList:
    case sl::Kind::kTuple: {
      nlohmann::json a = nlohmann::json::array();
      for (const Value& x : sl::ToVector(th, v))
        a.push_back(ToJson(th, where, param, x));
      return a;
    }
    case sl::Kind::kDict: {
      nlohmann::json o = nlohmann::json::object();
      sl::DictOf(v)->t.ForEach([&](const sl::HashTable::Entry& e) {
        if (!e.key.Is(sl::Kind::kString))
          FailPos(where,
                  absl::StrCat(param, ": dict keys must be strings, got ",
                               sl::TypeName(e.key)));
        o[sl::StrOf(e.key)] = ToJson(
            th, where, absl::StrCat(param, ".", sl::StrOf(e.key)), e.value);
      });
      return o;
    }
    default:
      FailPos(where, absl::StrCat(param, ": got ", sl::TypeName(v),
                                  ", want string, number, bool, list or dict"));
  }
}

// A list of strings given as parameter (i, param) of a call.
std::vector<std::string> StringList(sl::Thread& th, const CallSite& site,
                                    size_t i, absl::string_view param,
                                    const Value& v) {
  std::vector<std::string> out;
  if (!v.Is(sl::Kind::kList) && !v.Is(sl::Kind::kTuple))
    FailPos(site.Param(i, param),
            absl::StrCat("for parameter \"", param, "\": got ", sl::TypeName(v),
                         ", want list of strings"));
  for (const Value& x : sl::ToVector(th, v)) {
    if (!x.Is(sl::Kind::kString))
      FailPos(site.Element(i, param, out.size()),
              absl::StrCat("for parameter \"", param, "\": got ",
                           sl::TypeName(x), " in list, want string"));
    out.push_back(sl::StrOf(x));
  }
  return out;
}

std::string DirOf(absl::string_view path) {
  size_t s = path.rfind('/');
  if (s == absl::string_view::npos) return ".";
  if (s == 0) return "/";
  return std::string(path.substr(0, s));
}

class Loader {
 public:
  Loader(Spec* spec, std::string spec_dir)
      : spec_(spec), spec_dir_(std::move(spec_dir)) {}

  // The options of every thread that runs a file of the spec.
  void Configure(sl::Thread& th) {
    th.name = "load";
    th.max_steps = 10'000'000;
    th.print = [](sl::Thread&, const std::string& s) {
      fprintf(stderr, "%s\n", s.c_str());
    };
    th.load = [this](sl::Thread& parent, const std::string& module) {
      return Load(parent, module);
    };
  }

  // Runs the spec file itself (`path` as the user gave it).
  absl::StatusOr<sl::StringDict> ExecSpec(const std::string& path,
                                          absl::string_view source) {
    sl::Thread th;
    Configure(th);
    loading_files_.push_back({Canonical(path), path});
    absl::StatusOr<sl::StringDict> globals = sl::ExecFile(
        th, path, std::string_view(source.data(), source.size()), predeclared_);
    loading_files_.pop_back();
    return globals;
  }

  // The predeclared names of every file of the spec: the builtins, and
  // `vars` (`fault test --var KEY=VALUE`).
  void Install(const std::vector<std::pair<std::string, std::string>>& vars) {
    sl::StringDict* p = &predeclared_;
    Value vars_dict = sl::NewDict();
    for (auto& [k, v] : vars)
      sl::DictOf(vars_dict)->t.Insert(sl::Str(k), sl::Str(v));
    (*p)["vars"] = vars_dict;
    AddCommonBuiltins(p);
    sl::AddLibraryModules(p);  // json, math, time
    (*p)["service"] = Builtin("service", &Loader::Service);
    (*p)["mock_service"] = Builtin("mock_service", &Loader::MockService);
    (*p)["respond"] = Builtin("respond", &Loader::Respond);
    // Fault values: also for the windows of a scenario.
    (*p)["deny"] = CellBuiltin("deny", &Loader::Deny);
    (*p)["delay"] = CellBuiltin("delay", &Loader::Delay);
    (*p)["partition"] = Builtin("partition", &Loader::Partition);
    for (const char* kind : {"http_error", "http_drop", "http_delay", "redis_error", "redis_drop",
                             "redis_delay", "postgres_error", "postgres_drop", "postgres_delay"})
      (*p)[kind] = ProtocolBuiltin(kind);
    (*p)["fault_assumption"] =
        Builtin("fault_assumption", &Loader::FaultAssumption);
    (*p)["scenario"] = Builtin("scenario", &Loader::Scenario);
    (*p)["monitor"] = Builtin("monitor", &Loader::Monitor);
    (*p)["fault_matrix"] = Builtin("fault_matrix", &Loader::FaultMatrix);
    (*p)["fault"] = CellBuiltin("fault", &Loader::FaultWindowRun);
    (*p)["fault_start"] = CellBuiltin("fault_start", &Loader::FaultStart);
    (*p)["fault_stop"] = CellBuiltin("fault_stop", &Loader::FaultStop);
  }

 private:
  using Method = Value (Loader::*)(sl::Thread&, const sl::Args&);
  // The builtins outlive the load (scenario functions reference the
  // module); after it they refuse to run.
  Value Builtin(const char* name, Method m) {
    return sl::NewBuiltin(
        name, [this, m, name](sl::Thread& th, const Value&, const sl::Args& a) {
          if (finished_)
            sl::Fail(absl::StrCat(
                name, ": only at the top level of a spec, while it loads"));
          return (this->*m)(th, a);
        });
  }
  Value ProtocolBuiltin(const char* kind) {
    return sl::NewBuiltin(kind, [this, kind](sl::Thread& th, const Value&,
                                             const sl::Args& a) {
      return ProtocolFault(th, a, kind);
    });
  }
  // Builtins that also run after the load: fault values, and the fault
  // windows of a scenario (which check that a cell runs).
  Value CellBuiltin(const char* name, Method m) {
    return sl::NewBuiltin(
        name, [this, m](sl::Thread& th, const Value&, const sl::Args& a) {
          return (this->*m)(th, a);
        });
  }

 public:
  void Finish() {
    finished_ = true;
    *loading_ = false;
  }

  // References to other services' ports in command, env and ready
  // ("{db.main}", db.main.addr): each names a port of that service, and a
  // shared service refers only to ports that stay the same for the run.
  // Checked once the spec has loaded, as a service may refer to one
  // defined after it.
  absl::Status CheckPortRefs() const {
    for (const TemplateUse& use : template_uses_) {
      for (const PortRef& ref : FindPortRefs(use.text, spec_->services)) {
        const ServiceDef& to = *ref.service;
        const std::string& text = use.text;
        if (ref.port.empty()) {
          std::vector<std::string> names;
          for (auto& [p, n] : to.ports)
            names.push_back(absl::StrCat("\"", p, "\""));
          return absl::InvalidArgumentError(absl::StrCat(
              use.where, ": service: \"", use.service->name, "\": ", use.what,
              ": \"", text, "\": service \"", to.name, "\" has no port \"",
              ref.written, "\"",
              names.empty() ? " (it has no ports)"
                            : absl::StrCat(" (its ports: ",
                                           absl::StrJoin(names, ", "), ")")));
        }
        int fixed = 0;
        for (auto& [p, n] : to.ports)
          if (p == ref.port) fixed = n;
        if (use.service->shared && !to.shared && fixed == 0)
          return absl::InvalidArgumentError(absl::StrCat(
              use.where, ": service: \"", use.service->name, "\": ", use.what,
              ": \"", text, "\": a shared service starts once, but port \"",
              ref.port, "\" of \"", to.name,
              "\" (not shared) is chosen again for every cell; make \"",
              to.name, "\" shared too, or give that port a fixed number"));
      }
    }
    return absl::OkStatus();
  }

 private:
  bool finished_ = false;
  std::shared_ptr<bool> loading_ = std::make_shared<bool>(true);
  sl::StringDict predeclared_;  // of every file of the spec

  // A string of a service's command, env or ready command, where it is.
  struct TemplateUse {
    std::shared_ptr<ServiceDef> service;
    std::string text, where, what;
  };
  std::vector<TemplateUse> template_uses_;

  // A file being loaded: its real path (cycles), and as the user sees it.
  struct LoadingFile {
    std::string key, name;
  };
  std::vector<LoadingFile> loading_files_;  // the spec, then nested loads
  std::map<std::string, sl::StringDict> modules_;  // by real path

  static std::string Canonical(const std::string& path) {
    char* real = realpath(path.c_str(), nullptr);
    if (real == nullptr) return path;
    std::string out = real;
    free(real);
    return out;
  }

  // load(module): relative to the directory of the loading file; each file
  // runs once per spec (later loads get the same globals).
  absl::StatusOr<sl::StringDict> Load(sl::Thread& parent,
                                      const std::string& module) {
    std::string from = spec_->path;
    for (auto it = parent.stack.rbegin(); it != parent.stack.rend(); ++it) {
      if (it->file != nullptr) {
        from = it->file->filename;
        break;
      }
    }
    if (module.empty()) return absl::InvalidArgumentError("empty file name");
    std::string path = module;
    if (module[0] != '/' && from.find('/') != std::string::npos)
      path = absl::StrCat(DirOf(from), "/", module);
    path = std::filesystem::path(path).lexically_normal().string();
    std::string key = Canonical(path);
    if (auto it = modules_.find(key); it != modules_.end()) return it->second;
    for (size_t i = 0; i < loading_files_.size(); ++i) {
      if (loading_files_[i].key != key) continue;
      std::string chain = loading_files_[i].name;
      for (size_t j = i + 1; j < loading_files_.size(); ++j)
        absl::StrAppend(&chain, j == i + 1 ? " loads " : ", which loads ",
                        loading_files_[j].name);
      absl::StrAppend(
          &chain, loading_files_.size() == i + 1 ? " loads " : ", which loads ",
          path);
      return absl::InvalidArgumentError(absl::StrCat("load cycle: ", chain));
    }
    absl::StatusOr<std::string> text = fault::cli::ReadInputFile(
        path, fault::cli::kMaxScriptBytes, "spec files");
    if (!text.ok()) return text.status();
    sl::Thread th;
    Configure(th);
    loading_files_.push_back({key, path});
    absl::StatusOr<sl::StringDict> globals =
        sl::ExecFile(th, path, *text, predeclared_);
    loading_files_.pop_back();
    if (!globals.ok()) return globals.status();
    modules_[key] = *globals;
    return globals;
  }

  // A string of a fault's value must not refer to a port: the policy is
  // made once, when the spec loads, and never expanded.
  void CheckNoPortRefs(const nlohmann::json& j, absl::string_view where,
                       absl::string_view param) {
    if (j.is_array() || j.is_object()) {
      for (const auto& x : j) CheckNoPortRefs(x, where, param);
      return;
    }
    if (!j.is_string()) return;
    const std::string& text = j.get_ref<const std::string&>();
    for (const PortRef& ref : FindPortRefs(text, spec_->services)) {
      FailPos(where,
              absl::StrCat(param, ": \"", text, "\" refers to port \"",
                           ref.written, "\" of service \"", ref.service->name,
                           "\": a fault's values become its policy when the "
                           "spec loads, before any cell chooses ports; give "
                           "that port a fixed number (ports = {\"",
                           ref.written, "\": 5432}), then ", ref.service->name,
                           ".", ref.written, ".addr is \"127.0.0.1:5432\""));
    }
  }

  // ToJson, refusing references to ports.
  nlohmann::json Json(sl::Thread& th, absl::string_view where,
                      absl::string_view param, const Value& v) {
    nlohmann::json j = ToJson(th, where, param, v);
    CheckNoPortRefs(j, where, param);
    return j;
  }

  Value Service(sl::Thread& th, const sl::Args& args) {
    CallSite site(th, args, &calls_);
    std::string name;
    Value command, env, ports, ready, ready_timeout = sl::Str("10s");
    Value depends_on;
    bool shared = false;
    Unpack(site, "service", args,
           {{"name", &name},
            {"command", &command},
            {"env?", &env},
            {"ports?", &ports},
            {"ready?", &ready},
            {"ready_timeout?", &ready_timeout},
            {"shared?", &shared},
            {"depends_on?", &depends_on}});
    auto svc = std::make_shared<ServiceDef>();
    svc->name = name;
    svc->shared = shared;
    svc->where = site.Call();
    CheckServiceName(site, name);
    svc->command = StringList(th, site, 1, "command", command);
    if (svc->command.empty())
      FailPos(site.Param(1, "command"), "command is empty");
    for (auto& a : svc->command)
      a = absl::StrReplaceAll(a, {{"{spec_dir}", spec_dir_}});
    std::string& prog = svc->command[0];
    if (prog.find('/') != std::string::npos && prog[0] != '/') {
      // Relative to the spec's directory; one that names no program there
      // but one from the current directory (a path given with --var on
      // the command line) is taken from there.
      std::string in_spec_dir = absl::StrCat(spec_dir_, "/", prog);
      std::error_code ec;
      std::filesystem::path from_cwd = std::filesystem::absolute(prog, ec);
      if (access(in_spec_dir.c_str(), X_OK) != 0 && !ec &&
          access(from_cwd.c_str(), X_OK) == 0)
        prog = from_cwd.lexically_normal().string();
      else
        prog = in_spec_dir;
    }
    std::string resolved =
        prog.find('/') == std::string::npos ? ResolveOnPath(prog) : prog;
    if (resolved.empty() || access(resolved.c_str(), X_OK) != 0)
      FailPos(site.Element(1, "command", 0),
              absl::StrCat("\"", name, "\": command \"", prog,
                           "\" is not an executable file"));
    svc->static_binary = IsStaticBinary(resolved);
    for (size_t i = 0; i < svc->command.size(); ++i)
      template_uses_.push_back(
          {svc, svc->command[i], site.Element(1, "command", i), "command"});
    if (!env.IsNull() && !env.IsNone()) {
      if (!env.Is(sl::Kind::kDict))
        FailPos(site.Param(2, "env"),
                absl::StrCat("for parameter \"env\": got ", sl::TypeName(env),
                             ", want dict"));
      sl::DictOf(env)->t.ForEach([&](const sl::HashTable::Entry& e) {
        if (!e.key.Is(sl::Kind::kString) || !e.value.Is(sl::Kind::kString))
          FailPos(e.key.Is(sl::Kind::kString)
                      ? site.DictKey(2, "env", sl::StrOf(e.key))
                      : site.Param(2, "env"),
                  "env: keys and values must be strings");
        svc->env.emplace_back(sl::StrOf(e.key), sl::StrOf(e.value));
        template_uses_.push_back({svc, sl::StrOf(e.value),
                                  site.DictKey(2, "env", sl::StrOf(e.key)),
                                  absl::StrCat("env ", sl::StrOf(e.key))});
      });
    }
    if (!ports.IsNull() && !ports.IsNone()) {
      if (!ports.Is(sl::Kind::kDict))
        FailPos(site.Param(3, "ports"),
                absl::StrCat("for parameter \"ports\": got ",
                             sl::TypeName(ports), ", want dict"));
      sl::DictOf(ports)->t.ForEach([&](const sl::HashTable::Entry& e) {
        std::string where = e.key.Is(sl::Kind::kString)
                                ? site.DictKey(3, "ports", sl::StrOf(e.key))
                                : site.Param(3, "ports");
        int64_t port;
        if (!e.key.Is(sl::Kind::kString) || !e.value.Is(sl::Kind::kInt) ||
            !sl::IntToInt64(e.value, &port))
          FailPos(where,
                  "ports: want {\"name\": port}, port an int (0: a free port "
                  "per cell)");
        if (port < 0 || port > 65535)
          FailPos(where, absl::StrCat("ports: ", port, " out of range"));
        std::string pn = sl::StrOf(e.key);
        if (pn == "name" || pn == "dir")
          FailPos(where, absl::StrCat("ports: \"", pn, "\" is reserved"));
        svc->ports.emplace_back(pn, static_cast<int>(port));
      });
    }
    if (ready.IsNull() || ready.IsNone()) {
      if (!svc->ports.empty()) svc->ready_port = svc->ports[0].first;
    } else if (ready.Is(sl::Kind::kString)) {
      svc->ready_port = sl::StrOf(ready);
      bool found = false;
      for (auto& [p, n] : svc->ports) found |= p == svc->ready_port;
      if (!found)
        FailPos(site.Param(4, "ready"),
                absl::StrCat("ready: \"", svc->ready_port,
                             "\" is not one of its ports"));
    } else {
      svc->ready_command = StringList(th, site, 4, "ready", ready);
      if (svc->ready_command.empty())
        FailPos(site.Param(4, "ready"), "ready: the command is empty");
      for (size_t i = 0; i < svc->ready_command.size(); ++i)
        template_uses_.push_back(
            {svc, svc->ready_command[i], site.Element(4, "ready", i), "ready"});
    }
    try {
      svc->ready_timeout =
          DurationArg("service", "ready_timeout", ready_timeout);
    } catch (sl::EvalError& e) {
      absl::string_view m = e.msg;
      absl::ConsumePrefix(&m, "service: ");
      FailPos(site.Param(5, "ready_timeout"), m);
    }
    DependsOn(th, site, 7, depends_on, svc.get());
    spec_->services.push_back(svc);
    return sl::NewHost<ServiceValue>(svc, loading_);
  }

  // depends_on (parameter i of service or mock_service): a service or its
  // name, or a list of them. Names may come before their service(...) and
  // are resolved once the spec has loaded.
  void DependsOn(sl::Thread& th, const CallSite& site, size_t i,
                 const Value& depends_on, ServiceDef* svc) {
    if (depends_on.IsNull() || depends_on.IsNone()) return;
    const bool list =
        depends_on.Is(sl::Kind::kList) || depends_on.Is(sl::Kind::kTuple);
    std::vector<Value> deps =
        list ? sl::ToVector(th, depends_on) : std::vector<Value>{depends_on};
    for (size_t k = 0; k < deps.size(); ++k) {
      std::string where =
          list ? site.Element(i, "depends_on", k) : site.Param(i, "depends_on");
      std::string dep;
      if (deps[k].Is(sl::Kind::kString)) {
        dep = sl::StrOf(deps[k]);
      } else if (auto* sv = HostAs<ServiceValue>(deps[k], "service")) {
        dep = sv->def()->name;
      } else {
        FailPos(where, absl::StrCat("depends_on: got ", sl::TypeName(deps[k]),
                                    ", want a service or its name"));
      }
      if (dep == svc->name)
        FailPos(where, absl::StrCat("depends_on: \"", svc->name,
                                    "\" cannot depend on itself"));
      svc->depends_on_written.push_back({dep, where});
    }
  }

  // The name of a new service: valid, and not used yet.
  void CheckServiceName(const CallSite& site, const std::string& name) {
    if (!ValidName(name))
      FailPos(site.Param(0, "name"),
              absl::StrCat("name \"", name,
                           "\": use 1 to 63 letters, digits, '_', '-' or '.'"));
    for (auto& s : spec_->services)
      if (s->name == name)
        FailPos(
            site.Param(0, "name"),
            absl::StrCat("\"", name, "\" is already defined at ", s->where));
  }

  // respond(status=200, body="", headers={}, delay=None, close=False): a
  // canned reply of a mock service. respond("PONG\n") is respond(body =
  // "PONG\n") (for TCP).
  Value Respond(sl::Thread& th, const sl::Args& args) {
    CallSite site(th, args, &calls_);
    Value status, body, headers, delay, close;
    Unpack(site, "respond", args,
           {{"status?", &status},
            {"body?", &body},
            {"headers?", &headers},
            {"delay?", &delay},
            {"close?", &close}});
    MockReply r;
    bool status_given = false;
    if (!status.IsNull() && status.Is(sl::Kind::kString) && body.IsNull() &&
        !args.pos.empty()) {
      body = status;  // respond("PONG\n")
      status = Value();
    }
    if (!status.IsNull() && !status.IsNone()) {
      int64_t n;
      if (!status.Is(sl::Kind::kInt) || !sl::IntToInt64(status, &n))
        FailPos(site.Param(0, "status"),
                absl::StrCat("for parameter \"status\": got ",
                             sl::TypeName(status), ", want an HTTP status"));
      if (n < 100 || n > 599)
        FailPos(
            site.Param(0, "status"),
            absl::StrCat("status ", n, " is not an HTTP status (100 to 599)"));
      r.status = static_cast<int>(n);
      status_given = true;
    }
    if (!body.IsNull() && !body.IsNone()) {
      if (!body.Is(sl::Kind::kString))
        FailPos(site.Param(1, "body"),
                absl::StrCat("for parameter \"body\": got ", sl::TypeName(body),
                             ", want string"));
      r.body = sl::StrOf(body);
    }
    if (!headers.IsNull() && !headers.IsNone()) {
      if (!headers.Is(sl::Kind::kDict))
        FailPos(site.Param(2, "headers"),
                absl::StrCat("for parameter \"headers\": got ",
                             sl::TypeName(headers), ", want dict"));
      sl::DictOf(headers)->t.ForEach([&](const sl::HashTable::Entry& e) {
        if (!e.key.Is(sl::Kind::kString) || !e.value.Is(sl::Kind::kString))
          FailPos(site.Param(2, "headers"),
                  "headers: keys and values must be strings");
        std::string k = sl::StrOf(e.key), v = sl::StrOf(e.value);
        if (k.empty() || k.find_first_of(":\r\n ") != std::string::npos ||
            v.find_first_of("\r\n") != std::string::npos)
          FailPos(site.DictKey(2, "headers", k),
                  absl::StrCat("headers: \"", k,
                               "\": a header name without ':', spaces or line "
                               "ends, and a value on one line"));
        r.headers.emplace_back(k, v);
      });
    }
    if (!delay.IsNull() && !delay.IsNone()) {
      try {
        r.delay = DurationArg("respond", "delay", delay);
      } catch (sl::EvalError& e) {
        absl::string_view m = e.msg;
        absl::ConsumePrefix(&m, "respond: ");
        FailPos(site.Param(3, "delay"), m);
      }
    }
    if (!close.IsNull()) r.close = sl::Truth(close);
    return sl::NewHost<ReplyValue>(r, status_given, site.Call());
  }

  // mock_service(name, http=None, tcp=None, default=None, port=0,
  // shared=False, depends_on=None): a service of canned replies, run as
  // `fault mock FILE PORT` under fault exec (mock.h).
  Value MockService(sl::Thread& th, const sl::Args& args) {
    CallSite site(th, args, &calls_);
    std::string name;
    Value http, tcp, fallback, depends_on;
    int64_t port = 0;
    bool shared = false;
    Unpack(site, "mock_service", args,
           {{"name", &name},
            {"http?", &http},
            {"tcp?", &tcp},
            {"default?", &fallback},
            {"port?", &port},
            {"shared?", &shared},
            {"depends_on?", &depends_on}});
    CheckServiceName(site, name);
    const bool has_http = !http.IsNull() && !http.IsNone();
    const bool has_tcp = !tcp.IsNull() && !tcp.IsNone();
    if (has_http == has_tcp)
      FailPos(
          has_http ? site.Param(2, "tcp") : site.Call(),
          absl::StrCat("\"", name,
                       "\": give http = {...} or tcp = {...} (one of them)"));
    MockConfig config;
    config.protocol =
        has_http ? MockConfig::Protocol::kHttp : MockConfig::Protocol::kTcp;
    const size_t routes_i = has_http ? 1 : 2;
    const char* routes_param = has_http ? "http" : "tcp";
    const Value& routes = has_http ? http : tcp;
    if (!routes.Is(sl::Kind::kDict))
      FailPos(site.Param(routes_i, routes_param),
              absl::StrCat("for parameter \"", routes_param, "\": got ",
                           sl::TypeName(routes),
                           ", want dict of route to respond(...)"));
    // A reply: respond(...), or a string (the body, status 200).
    auto reply = [&](const Value& v, const std::string& where) {
      MockReply r;
      if (v.Is(sl::Kind::kString)) {
        r.body = sl::StrOf(v);
        return r;
      }
      auto* rv = HostAs<ReplyValue>(v, "mock_reply");
      if (rv == nullptr)
        FailPos(where, absl::StrCat("got ", sl::TypeName(v),
                                    ", want respond(...) or a string"));
      if (!has_http && rv->status_given())
        FailPos(where, absl::StrCat("\"", name,
                                    "\": a TCP mock replies with "
                                    "bytes, not an HTTP status (respond at ",
                                    rv->where(), "): leave out the status"));
      if (!has_http && !rv->reply().headers.empty())
        FailPos(where, absl::StrCat("\"", name,
                                    "\": a TCP mock has no "
                                    "headers (respond at ",
                                    rv->where(), ")"));
      return rv->reply();
    };
    sl::DictOf(routes)->t.ForEach([&](const sl::HashTable::Entry& e) {
      if (!e.key.Is(sl::Kind::kString))
        FailPos(site.Param(routes_i, routes_param),
                absl::StrCat(routes_param, ": route keys must be strings, got ",
                             sl::TypeName(e.key)));
      std::string key = sl::StrOf(e.key);
      std::string where = site.DictKey(routes_i, routes_param, key);
      if (std::string why = CheckRouteKey(config.protocol, key); !why.empty())
        FailPos(where, absl::StrCat(routes_param, ": \"", key, "\": ", why));
      config.routes.emplace_back(key, reply(e.value, where));
    });
    if (!fallback.IsNull() && !fallback.IsNone())
      config.fallback = reply(fallback, site.Param(3, "default"));
    if (port < 0 || port > 65535)
      FailPos(site.Param(4, "port"),
              absl::StrCat("port ", port, " out of range"));
    auto svc = std::make_shared<ServiceDef>();
    svc->name = name;
    svc->where = site.Call();
    svc->shared = shared;
    svc->ports.emplace_back(routes_param, static_cast<int>(port));
    svc->ready_port = routes_param;
    svc->command = {"{fault}", "mock", "{dir}/mock.json",
                    absl::StrCat("{", routes_param, "}")};
    svc->mock_config = MockConfigToJson(config).dump();
    DependsOn(th, site, 6, depends_on, svc.get());
    spec_->services.push_back(svc);
    return sl::NewHost<ServiceValue>(svc, loading_);
  }

  Value SyscallFault(sl::Thread& th, const sl::Args& args, const char* kind) {
    CallSite site(th, args, &calls_);
    const bool deny = absl::string_view(kind) == "deny";
    const char* first_name = deny ? "errno" : "duration";
    Value first, probability, path, when;
    Unpack(site, kind, args,
           {{first_name, &first},
            {"probability?", &probability},
            {"path?", &path},
            {"when?", &when}});
    const std::string first_at = site.Param(0, first_name);
    SyscallRule rule = nlohmann::json::object();
    if (deny) {
      if (!first.Is(sl::Kind::kString))
        FailPos(first_at, absl::StrCat("errno: got ", sl::TypeName(first),
                                       ", want a name like \"EIO\""));
      absl::StatusOr<int> e = fault::policy::ErrnoFromName(sl::StrOf(first));
      if (!e.ok()) FailPos(first_at, e.status().message());
      rule["deny"] = sl::StrOf(first);
    } else {
      if (!first.Is(sl::Kind::kString))
        FailPos(first_at, absl::StrCat("duration: got ", sl::TypeName(first),
                                       ", want a duration like \"2s\""));
      absl::StatusOr<int64_t> d =
          fault::policy::ParseDuration(sl::StrOf(first));
      if (!d.ok()) FailPos(first_at, d.status().message());
      rule["delay"] = sl::StrOf(first);
    }
    if (!probability.IsNull() && !probability.IsNone()) {
      const std::string at = site.Param(1, "probability");
      nlohmann::json p = Json(th, at, "probability", probability);
      if (p.is_string()) {
        absl::StatusOr<uint32_t> ppm =
            fault::policy::ParseProbability(p.get<std::string>());
        if (!ppm.ok())
          FailPos(at, absl::StrCat("probability: ", ppm.status().message()));
      }
      rule["probability"] = p;
    }
    if (!path.IsNull() && !path.IsNone())
      rule["path"] = Json(th, site.Param(2, "path"), "path", path);
    if (!when.IsNull() && !when.IsNone())
      rule["when"] = Json(th, site.Param(3, "when"), "when", when);
    return sl::NewHost<SyscallFaultValue>(kind, std::move(rule));
  }
  // http_error(route, status, body=None, probability=None), http_drop(route,
  // probability=None), http_delay(route, delay, probability=None),
  // redis_error(command, error, key=None, probability=None), redis_drop(command,
  // key=None, probability=None), redis_delay(command, delay, key=None,
  // probability=None), postgres_error(query, sqlstate, message,
  // probability=None), postgres_drop(query, probability=None),
  // postgres_delay(query, delay, probability=None). Checked now by the policy
  // parser, with the error at the argument it names.
  Value ProtocolFault(sl::Thread& th, const sl::Args& args, const char* kind) {
    CallSite site(th, args, &calls_);
    const absl::string_view k = kind;
    const bool drop = absl::EndsWith(k, "_drop");
    const std::string keyword(k.substr(0, k.find('_')));
    std::vector<std::string> names;
    Value v[4];
    const bool delay = absl::EndsWith(k, "_delay");
    if (delay && keyword == "redis") {
      names = {"command", "delay", "key?", "probability?"};
      Unpack(site, kind, args,
             {{"command", &v[0]}, {"delay", &v[1]}, {"key?", &v[2]}, {"probability?", &v[3]}});
    } else if (delay) {
      const char* what = keyword == "http" ? "route" : "query";
      names = {what, "delay", "probability?"};
      Unpack(site, kind, args, {{what, &v[0]}, {"delay", &v[1]}, {"probability?", &v[2]}});
    } else if (keyword == "http" && drop) {
      names = {"route", "probability?"};
      Unpack(site, kind, args, {{"route", &v[0]}, {"probability?", &v[1]}});
    } else if (keyword == "http") {
      names = {"route", "status", "body?", "probability?"};
      Unpack(site, kind, args,
             {{"route", &v[0]}, {"status", &v[1]}, {"body?", &v[2]}, {"probability?", &v[3]}});
    } else if (keyword == "redis" && drop) {
      names = {"command", "key?", "probability?"};
      Unpack(site, kind, args, {{"command", &v[0]}, {"key?", &v[1]}, {"probability?", &v[2]}});
    } else if (keyword == "redis") {
      names = {"command", "error", "key?", "probability?"};
      Unpack(site, kind, args,
             {{"command", &v[0]}, {"error", &v[1]}, {"key?", &v[2]}, {"probability?", &v[3]}});
    } else if (drop) {
      names = {"query", "probability?"};
      Unpack(site, kind, args, {{"query", &v[0]}, {"probability?", &v[1]}});
    } else {
      names = {"query", "sqlstate", "message", "probability?"};
      Unpack(site, kind, args,
             {{"query", &v[0]}, {"sqlstate", &v[1]}, {"message", &v[2]}, {"probability?", &v[3]}});
    }
    std::vector<Value> values(v, v + names.size());
    nlohmann::json item = nlohmann::json::object();
    for (size_t i = 0; i < names.size(); ++i) {
      if (values[i].IsNull() || values[i].IsNone()) continue;
      std::string name = names[i];
      if (!name.empty() && name.back() == '?') name.pop_back();
      item[name] = Json(th, site.Param(i, name), name, values[i]);
    }
    if (drop) item["drop"] = true;
    // The parser's checks, on a policy of this one item.
    FaultSet one;
    const std::string field = keyword + "_faults";
    absl::Status set = one.SetField(field, nlohmann::json::array({item}), kind);
    absl::StatusOr<fault::v1::Policy> parsed =
        set.ok() ? ToPolicy(kind, one, "") : absl::StatusOr<fault::v1::Policy>(set);
    if (!parsed.ok()) {
      std::string msg(parsed.status().message());
      msg = msg.substr(0, msg.find('\n'));
      // ": \"KIND\": FIELD[0].ARG: why" -> the position of ARG.
      std::string at = site.Call();
      size_t p = msg.find(field + "[0]");
      std::string why = p == std::string::npos ? msg : msg.substr(p + field.size() + 3);
      if (absl::StartsWith(why, ".")) why.erase(0, 1);
      if (absl::StartsWith(why, ": ")) why.erase(0, 2);
      for (size_t i = 0; i < names.size(); ++i) {
        std::string name = names[i];
        if (!name.empty() && name.back() == '?') name.pop_back();
        if (absl::StartsWith(why, name + ":") || absl::StartsWith(why, name + "[")) {
          at = site.Param(i, name);
          break;
        }
      }
      FailPos(at, why);
    }
    return sl::NewHost<ProtocolFaultValue>(kind, keyword, std::move(item));
  }

  Value Deny(sl::Thread& th, const sl::Args& a) {
    return SyscallFault(th, a, "deny");
  }
  Value Delay(sl::Thread& th, const sl::Args& a) {
    return SyscallFault(th, a, "delay");
  }

  Value Partition(sl::Thread& th, const sl::Args& args) {
    CallSite site(th, args, &calls_);
    Value a, b;
    Unpack(site, "partition", args, {{"a", &a}, {"b", &b}});
    auto* sa = HostAs<ServiceValue>(a, "service");
    if (sa == nullptr)
      FailPos(site.Param(0, "a"), absl::StrCat("for parameter \"a\": got ",
                                               sl::TypeName(a), ", want service"));
    auto* sb = HostAs<ServiceValue>(b, "service");
    if (sb == nullptr)
      FailPos(site.Param(1, "b"), absl::StrCat("for parameter \"b\": got ",
                                               sl::TypeName(b), ", want service"));
    if (sa->def() == sb->def())
      FailPos(site.Param(1, "b"),
              absl::StrCat("partition(a, b): a and b are both service \"",
                           sa->def()->name, "\""));
    return sl::NewHost<PartitionValue>(sa->def(), sb->def());
  }

  Value FaultAssumption(sl::Thread& th, const sl::Args& args) {
    CallSite site(th, args, &calls_);
    std::string where = site.Call();
    auto a = std::make_shared<Assumption>();
    a->where = where;
    if (args.pos.size() > 1)
      FailPos(site.Positional(1),
              "takes the name as its only positional argument");
    Value name_v = args.pos.empty() ? Value() : args.pos[0];
    std::vector<std::pair<std::string, Value>> kws;
    for (auto& [k, v] : args.kw) {
      std::string key = sl::StrOf(k);
      if (key == "name") {
        if (!name_v.IsNull())
          FailPos(site.Keyword(key),
                  "got multiple values for parameter \"name\"");
        name_v = v;
        continue;
      }
      kws.emplace_back(key, v);
    }
    const std::string name_at = site.Param(0, "name");
    if (name_v.IsNull()) FailPos(where, "missing argument for name");
    if (!name_v.Is(sl::Kind::kString))
      FailPos(name_at, absl::StrCat("for parameter \"name\": got ",
                                    sl::TypeName(name_v), ", want string"));
    a->name = sl::StrOf(name_v);
    if (!ValidName(a->name))
      FailPos(name_at,
              absl::StrCat("name \"", a->name,
                           "\": use 1 to 63 letters, digits, '_', '-' or '.'"));
    for (auto& other : spec_->assumptions)
      if (other->name == a->name)
        FailPos(name_at,
                absl::StrCat("\"", a->name, "\" is already defined at ",
                             other->where));
    BuildFault(th, site, a.get(), kws, /*window=*/false);
    spec_->assumptions.push_back(a);
    return sl::NewHost<AssumptionValue>(a);
  }

  // The effects of a fault_assumption, or of a fault window in a scenario
  // (window: a->targets holds its one service), from its keywords and the
  // faults it composes: a->set and a->policy, checked against a->targets.
  // Every error names the argument at fault.
  void BuildFault(sl::Thread& th, const CallSite& site, Assumption* a,
                  const std::vector<std::pair<std::string, Value>>& kws,
                  bool window) {
    const std::string where = site.Call();
    std::string origin = a->name;
    auto check = [&](absl::Status st, const std::string& at) {
      if (!st.ok())
        FailPos(at, absl::StrCat("\"", a->name, "\": ", st.message()));
    };
    // The keywords that set effects, in order, with the set after each: a
    // policy error is reported at the keyword that introduced it.
    std::vector<std::pair<std::string, FaultSet>> effect_steps;
    std::string first_shim_only;  // the first network or DNS keyword
    std::vector<std::shared_ptr<Assumption>> composed;
    bool from_start_given = false;
    std::vector<std::pair<std::string, std::string>> own_timing;  // key, at
    for (auto& [key, v] : kws) {
      const std::string at = site.Keyword(key);
      if (window && (key == "after" || key == "lasting")) {
        FailPos(at, absl::StrCat(
                        "unexpected keyword argument \"", key,
                        "\" (a window is in force where the scenario opens "
                        "and closes it: sleep() before fault_start, or between "
                        "it and fault_stop; give after= and lasting= to a "
                        "fault_assumption of the matrix)"));
      } else if (key == "after" || key == "lasting") {
        absl::Duration d;
        try {
          d = DurationArg("fault_assumption", key, v);
        } catch (sl::EvalError& e) {
          absl::string_view m = e.msg;
          absl::ConsumePrefix(&m, "fault_assumption: ");
          FailPos(at, absl::StrCat("\"", a->name, "\": ", m));
        }
        if (key == "after") {
          a->after = d;
        } else {
          if (d <= absl::ZeroDuration())
            FailPos(at, absl::StrCat("\"", a->name,
                                     "\": lasting: want a duration above 0"));
          a->lasting = d;
        }
        own_timing.emplace_back(key, at);
      } else if (window && (key == "description" || key == "target" ||
                            key == "from_start" || key == "partition")) {
        FailPos(at, absl::StrCat("unexpected keyword argument \"", key, "\" (",
                                 WindowKeywordHint(key), ")"));
      } else if (key == "description") {
        if (!v.Is(sl::Kind::kString))
          FailPos(at, absl::StrCat("for parameter \"description\": got ",
                                   sl::TypeName(v), ", want string"));
        a->description = sl::StrOf(v);
      } else if (key == "expect_events") {
        a->expect_events = sl::Truth(v);
      } else if (key == "from_start") {
        if (!v.Is(sl::Kind::kBool))
          FailPos(at, absl::StrCat("for parameter \"from_start\": got ",
                                   sl::TypeName(v), ", want bool"));
        a->from_start = sl::Truth(v);
        from_start_given = true;
      } else if (key == "target") {
        std::vector<Value> ts;
        bool list = v.Is(sl::Kind::kList) || v.Is(sl::Kind::kTuple);
        if (list)
          ts = sl::ToVector(th, v);
        else
          ts.push_back(v);
        for (size_t i = 0; i < ts.size(); ++i) {
          auto* s = HostAs<ServiceValue>(ts[i], "service");
          if (s == nullptr)
            FailPos(list ? site.Element(SIZE_MAX, key, i) : at,
                    absl::StrCat("for parameter \"target\": got ",
                                 sl::TypeName(ts[i]),
                                 ", want service or list of services"));
          a->targets.push_back(s->def());
        }
      } else if (key == "faults") {
        if (!v.Is(sl::Kind::kList) && !v.Is(sl::Kind::kTuple))
          FailPos(at, absl::StrCat("for parameter \"faults\": got ",
                                   sl::TypeName(v),
                                   ", want list of fault_assumption"));
        std::vector<Value> fs = sl::ToVector(th, v);
        for (size_t i = 0; i < fs.size(); ++i) {
          auto* fa = HostAs<AssumptionValue>(fs[i], "fault_assumption");
          if (fa == nullptr)
            FailPos(site.Element(SIZE_MAX, key, i),
                    absl::StrCat("for parameter \"faults\": got ",
                                 sl::TypeName(fs[i]),
                                 " in list, want fault_assumption"));
          composed.push_back(fa->def());
        }
      } else if (key == "partition") {
        std::vector<Value> ps;
        bool list = v.Is(sl::Kind::kList) || v.Is(sl::Kind::kTuple);
        if (list)
          ps = sl::ToVector(th, v);
        else
          ps.push_back(v);
        for (size_t i = 0; i < ps.size(); ++i) {
          auto* pv = HostAs<PartitionValue>(ps[i], "partition");
          if (pv == nullptr)
            FailPos(list ? site.Element(SIZE_MAX, key, i) : at,
                    absl::StrCat("partition: got ", sl::TypeName(ps[i]),
                                 ", want partition(a, b)"));
          a->set.AddPartition(pv->a()->name, pv->b()->name);
          for (const auto& svc : {pv->a(), pv->b()}) {
            bool have = false;
            for (auto& t : a->targets) have |= t == svc;
            if (!have) a->targets.push_back(svc);
          }
        }
        effect_steps.emplace_back(key, a->set);
      } else if (key == "targets") {
        check(a->set.SetTargets(Json(th, at, key, v), origin), at);
        effect_steps.emplace_back(key, a->set);
      } else if (key == "http" || key == "redis" || key == "postgres") {
        std::vector<Value> items;
        bool list = v.Is(sl::Kind::kList) || v.Is(sl::Kind::kTuple);
        if (list)
          items = sl::ToVector(th, v);
        else
          items.push_back(v);
        nlohmann::json json_items = nlohmann::json::array();
        for (size_t i = 0; i < items.size(); ++i) {
          const ProtocolFaultValue* pf = nullptr;
          if (items[i].Is(sl::Kind::kHost)) {
            auto* h = items[i].as<sl::HostValue>();
            if (absl::StartsWith(h->Type(), key + "_"))
              pf = static_cast<const ProtocolFaultValue*>(h);
          }
          if (pf == nullptr)
            FailPos(list ? site.Element(SIZE_MAX, key, i) : at,
                    absl::StrCat(key, ": got ", sl::TypeName(items[i]), ", want ", key,
                                 "_error(...), ", key, "_drop(...) or ", key, "_delay(...)"));
          json_items.push_back(pf->item());
        }
        if (json_items.empty())
          FailPos(at, absl::StrCat(key, ": empty list (leave it out for none)"));
        check(a->set.SetField(key + "_faults", json_items, origin), at);
        effect_steps.emplace_back(key, a->set);
      } else if (IsSyscallFamily(key)) {
        std::vector<Value> rules;
        bool list = v.Is(sl::Kind::kList) || v.Is(sl::Kind::kTuple);
        if (list)
          rules = sl::ToVector(th, v);
        else
          rules.push_back(v);
        std::vector<SyscallRule> json_rules;
        for (size_t i = 0; i < rules.size(); ++i) {
          auto* sf = HostAs<SyscallFaultValue>(rules[i], "syscall_fault");
          if (sf == nullptr)
            FailPos(list ? site.Element(SIZE_MAX, key, i) : at,
                    absl::StrCat(key, ": got ", sl::TypeName(rules[i]),
                                 ", want deny(...) or delay(...)"));
          json_rules.push_back(sf->rule());
        }
        check(a->set.SetSyscallRules(key, std::move(json_rules), origin), at);
        effect_steps.emplace_back(key, a->set);
      } else if (std::optional<std::string> path = EffectFieldPath(key)) {
        if (v.Is(sl::Kind::kHost))
          FailPos(at, absl::StrCat(key, ": got ", sl::TypeName(v),
                                   "; deny(...) and delay(...) go with a "
                                   "syscall family such as write= or "
                                   "connect="));
        nlohmann::json value = Json(th, at, key, v);
        // Accepted by the policy format, applied by no layer of fault
        // exec: refused rather than run as a fault that does nothing.
        std::string part = *path, why = NotAppliedByExec(part);
        if (why.empty() && value.is_object()) {
          for (const auto& [k, x] : value.items()) {
            part = absl::StrCat(*path, ".", k);
            if (why = NotAppliedByExec(part); !why.empty()) break;
          }
        }
        if (!why.empty())
          FailPos(at, absl::StrCat("\"", a->name, "\": ", part, ": ", why));
        check(a->set.SetField(*path, value, origin), at);
        effect_steps.emplace_back(key, a->set);
        if (first_shim_only.empty()) first_shim_only = key;
      } else {
        std::string hint = SuggestKeyword(
            key, window ? WindowKeywords() : AssumptionKeywords());
        FailPos(at, absl::StrCat(
                        "unexpected keyword argument \"", key, "\"",
                        hint.empty()
                            ? ""
                            : absl::StrCat(" (did you mean \"", hint, "\"?)")));
      }
    }
    const std::string faults_at = site.Keyword("faults");
    for (size_t i = 0; i < composed.size(); ++i) {
      const auto& c = composed[i];
      check(Merge(&a->set, c->set), faults_at);
      if (window) {
        // The window's service, whatever the parts target.
      } else if (a->targets.empty()) {
        a->targets = c->targets;
      } else if (!c->targets.empty()) {
        for (auto& t : c->targets) {
          bool have = false;
          for (auto& mine : a->targets) have |= mine == t;
          if (!have) a->targets.push_back(t);
        }
      }
      if (!c->expect_events) a->expect_events = false;
      // A part needed from the start keeps the whole from the start: the
      // composition is one policy, applied at one time.
      if (!from_start_given && c->from_start) a->from_start = true;
      // Likewise its timing, unless the composition gives its own; parts
      // timed differently cannot be one policy.
      if (!own_timing.empty() || !c->timed()) continue;
      for (size_t j = 0; j < i; ++j) {
        const auto& other = composed[j];
        if (other->timed() &&
            (other->after != c->after || other->lasting != c->lasting))
          FailPos(faults_at,
                  absl::StrCat("\"", a->name, "\": \"", other->name,
                               "\" and \"", c->name,
                               "\" are timed differently (after=, lasting=), "
                               "and a composition is one policy, applied at "
                               "one time: give the composition its own after= "
                               "and lasting="));
      }
      a->after = c->after;
      a->lasting = c->lasting;
      a->timing_where = c->timing_where;
    }
    if (!own_timing.empty()) a->timing_where = own_timing.front().second;
    if (a->timed() && a->from_start && !window) {
      std::string at = own_timing.empty() ? site.Keyword("from_start")
                                          : own_timing.front().second;
      FailPos(at,
              absl::StrCat("\"", a->name,
                           "\": after= and lasting= time a fault within the "
                           "scenario's run, and from_start = True puts it "
                           "in force from the services' start: give one or "
                           "the other"));
    }
    if (a->targets.empty()) {
      if (spec_->services.size() == 1)
        a->targets = spec_->services;
      else
        FailPos(
            where,
            absl::StrCat("\"", a->name, "\": no target: give target=SERVICE (",
                         spec_->services.size(), " services are defined)"));
    }
    if (a->set.empty())
      FailPos(where,
              window
                  ? "no fault effect given: give a fault_assumption or "
                    "effect keywords (read = deny(\"EIO\"), latency = "
                    "\"50ms\", ...)"
                  : absl::StrCat("\"", a->name, "\": no fault effect given"));
    if (a->set.has_partitions()) {
      // fault exec sets a partition up when it starts the services (they
      // run under one supervisor, named); a reload cannot add one.
      if (window)
        FailPos(faults_at,
                absl::StrCat("\"", a->name,
                             "\": a partition cannot be applied in a window: "
                             "fault exec sets it up when it starts the "
                             "cell's services (they run under one "
                             "supervisor); give it to the matrix as a cell's "
                             "fault"));
      if (from_start_given && !a->from_start) {
        FailPos(site.Keyword("from_start"),
                absl::StrCat("\"", a->name,
                             "\": a partition applies from the start of the "
                             "cell's services (fault exec sets it up when it "
                             "starts them; it cannot be added while they "
                             "run): leave out from_start = False"));
      }
      if (a->timed())
        FailPos(own_timing.empty() ? faults_at : own_timing.front().second,
                absl::StrCat("\"", a->name,
                             "\": a partition applies from the start of the "
                             "cell's services (fault exec sets it up when it "
                             "starts them), so it cannot be timed with after= "
                             "or lasting="));
      a->from_start = true;
    }
    if (a->set.has_partitions() && a->set.HasOtherThanPartitions()) {
      bool own = false;
      for (auto& [key, v] : kws) own |= key == "partition";
      FailPos(own ? site.Keyword("partition") : faults_at,
              absl::StrCat("\"", a->name,
                           "\": a partition cannot be combined with other effects in "
                           "one fault: a cell with a partition runs every service under "
                           "one supervisor, so the other effects would reach every "
                           "service; make them separate faults"));
    }
    if (a->set.has_partitions() && a->set.has_targets()) {
      bool own = false;
      for (auto& [key, v] : kws) own |= key == "targets";
      FailPos(own ? site.Keyword("targets") : faults_at,
              absl::StrCat("\"", a->name,
                           "\": targets= cannot narrow a partition: it cuts "
                           "every connection between the two services, "
                           "whatever the targets; leave out targets="));
    }
    if (a->set.has_targets()) {
      // targets= narrow syscall rules by the peer of a connection: refuse
      // a family they cannot narrow. At the family's keyword, else at
      // targets=, else at the composition.
      for (const auto& [family, rules] : a->set.syscalls()) {
        std::string written = family;
        for (auto& [key, v] : kws)
          if (key == family || (family == "open" && key == "openat"))
            written = key;
        std::string why = TargetsCannotNarrow(written);
        if (why.empty()) continue;
        bool own_family = false, own_targets = false;
        for (auto& [key, v] : kws) {
          own_family |= key == written;
          own_targets |= key == "targets";
        }
        FailPos(own_family    ? site.Keyword(written)
                : own_targets ? site.Keyword("targets")
                              : faults_at,
                absl::StrCat("\"", a->name, "\": ", written,
                             "= with targets=: ", why));
      }
    }
    for (auto& t : a->targets) {
      // The seccomp layer alone knows the destination of connect and
      // sendto, never the peer of a receive.
      if (t->static_binary && a->set.has_targets()) {
        for (const auto& [family, rules] : a->set.syscalls()) {
          if (family != "recv") continue;
          bool own = false;
          for (auto& [key, v] : kws) own |= key == family;
          FailPos(own ? site.Keyword(family) : faults_at,
                  absl::StrCat("\"", a->name, "\": service \"", t->name,
                               "\" is a static binary (", t->command[0],
                               "): only the seccomp layer reaches it, which "
                               "knows the destination of connect and sendto "
                               "but not the peer of a receive, so recv= with "
                               "targets= would never apply; fault its "
                               "connect= with targets=, or recv= without "
                               "targets="));
        }
      }
      if (t->static_binary && a->set.HasShimOnlyEffects())
        FailPos(
            first_shim_only.empty() ? faults_at : site.Keyword(first_shim_only),
            absl::StrCat("\"", a->name, "\": service \"", t->name,
                         "\" is a static binary (", t->command[0],
                         "): only syscall faults reach it (through the "
                         "seccomp layer); network and DNS effects need "
                         "the preload shim"));
    }
    absl::StatusOr<fault::v1::Policy> p = ToPolicy(a->name, a->set, "@");
    if (!p.ok()) {
      // Report it at the first keyword whose effects alone give the same
      // error, else at the composition (faults=), else at the call.
      std::string full(p.status().message());
      std::string at = composed.empty() ? where : faults_at;
      for (auto& [key, set] : effect_steps) {
        if (set.empty()) continue;
        absl::StatusOr<fault::v1::Policy> partial = ToPolicy(a->name, set, "@");
        if (partial.ok()) continue;
        std::string first(partial.status().message());
        first = first.substr(0, first.find('\n'));
        if (full.find(first) != std::string::npos) at = site.Keyword(key);
        break;
      }
      p = ToPolicy(a->name, a->set, at);
      sl::Fail(std::string(p.status().message()));
    }
    a->policy = *p;
  }

  // ---- fault windows: fault(), fault_start(), fault_stop() ----

  // The running cell, while its scenario's run function runs; else fails.
  CellContext& WindowCell(const CallSite& site) {
    CellContext* cell = CurrentCell();
    if (cell == nullptr || !cell->open_window)
      FailPos(site.Call(), "only available while a scenario runs");
    if (!cell->in_run)
      FailPos(site.Call(),
              "only inside a scenario's run function: the cell's faults are "
              "removed when it returns, before the check");
    return *cell;
  }

  // A service given as a service value or by name.
  std::shared_ptr<ServiceDef> ServiceArg(const CallSite& site, const Value& v) {
    const std::string at = site.Param(0, "service");
    if (v.Is(sl::Kind::kString)) {
      std::vector<std::string> names;
      for (auto& svc : spec_->services) {
        if (svc->name == sl::StrOf(v)) return svc;
        names.push_back(absl::StrCat("\"", svc->name, "\""));
      }
      FailPos(at,
              absl::StrCat("no service named \"", sl::StrOf(v),
                           "\" (services: ", absl::StrJoin(names, ", "), ")"));
    }
    auto* sv = HostAs<ServiceValue>(v, "service");
    if (sv == nullptr)
      FailPos(at, absl::StrCat("for parameter \"service\": got ",
                               sl::TypeName(v), ", want service"));
    return sv->def();
  }

  // The window of fault(...) or fault_start(...): its service, and its
  // fault from an assumption and/or effect keywords. `run` receives
  // fault's run= (null for fault_start).
  std::pair<std::shared_ptr<ServiceDef>, FaultWindow> WindowArgs(
      sl::Thread& th, const CallSite& site, const sl::Args& args,
      const char* fname, Value* run) {
    if (args.pos.size() > 2)
      FailPos(site.Positional(2),
              absl::StrCat("got ", args.pos.size(),
                           " positional arguments, want at most 2 (the "
                           "service and a fault_assumption)"));
    Value service = args.pos.empty() ? Value() : args.pos[0];
    Value assumption = args.pos.size() < 2 ? Value() : args.pos[1];
    std::vector<std::pair<std::string, Value>> kws;
    for (auto& [k, v] : args.kw) {
      const std::string key = sl::StrOf(k);
      Value* slot = key == "service"                 ? &service
                    : key == "assumption"            ? &assumption
                    : key == "run" && run != nullptr ? run
                                                     : nullptr;
      if (slot == nullptr) {
        kws.emplace_back(key, v);
        continue;
      }
      if (!slot->IsNull())
        FailPos(site.Keyword(key), absl::StrCat("got multiple values for "
                                                "parameter \"",
                                                key, "\""));
      *slot = v;
    }
    if (service.IsNull()) FailPos(site.Call(), "missing argument for service");
    std::shared_ptr<ServiceDef> svc = ServiceArg(site, service);
    if (run != nullptr) {
      if (run->IsNull()) FailPos(site.Call(), "missing argument for run");
      if (!run->Is(sl::Kind::kFunction) && !run->Is(sl::Kind::kBuiltin))
        FailPos(site.Keyword("run"),
                absl::StrCat("for parameter \"run\": got ", sl::TypeName(*run),
                             ", want function"));
    }
    auto a = std::make_shared<Assumption>();
    a->where = site.Call();
    a->targets = {svc};
    bool effects = false;
    for (auto& [key, v] : kws) effects |= key != "expect_events";
    std::shared_ptr<Assumption> from;
    if (!assumption.IsNull() && !assumption.IsNone()) {
      auto* av = HostAs<AssumptionValue>(assumption, "fault_assumption");
      if (av == nullptr)
        FailPos(
            site.Param(1, "assumption"),
            absl::StrCat("for parameter \"assumption\": got ",
                         sl::TypeName(assumption), ", want fault_assumption"));
      from = av->def();
      kws.insert(kws.begin(), {"faults", sl::NewList({assumption})});
    }
    // Events name the assumption when it is the whole fault; otherwise
    // the window is named after where it opens.
    if (from != nullptr && !effects) {
      a->name = from->name;
    } else {
      // "window-LINE-COL" (a policy name has no ':').
      std::vector<std::string> parts = absl::StrSplit(site.Call(), ':');
      a->name = parts.size() >= 3
                    ? absl::StrCat("window-", parts[parts.size() - 2], "-",
                                   parts.back())
                    : "window";
    }
    BuildFault(th, site, a.get(), kws, /*window=*/true);
    // A when counter counts the service's calls of that family since its
    // fault exec started (across earlier windows): it would not start with
    // this window.
    for (const auto& rule : a->policy.syscalls()) {
      if (!rule.has_when()) continue;
      std::string family = fault::v1::SyscallFault::Family_Name(rule.family());
      family = absl::AsciiStrToLower(family.substr(family.find('_') + 1));
      std::string at = site.Param(1, "assumption");
      for (auto& [key, v] : kws)
        if (key == family || (family == "open" && key == "openat"))
          at = site.Keyword(key);
      FailPos(at,
              absl::StrCat("\"", a->name, "\": ", family,
                           "= has a when counter, which a window cannot start "
                           "from zero (it counts the service's calls since it "
                           "started); give the fault to the matrix instead, "
                           "where when counts from the start of the scenario"));
    }
    FaultWindow w;
    w.policy = a->policy;
    w.where = site.Call();
    w.opened_by = fname;
    w.expect_events = a->expect_events;
    return {svc, std::move(w)};
  }

  // fault(service, assumption=None, run=fn, **effects): fn runs with the
  // fault applied to the service; returns what fn returns.
  Value FaultWindowRun(sl::Thread& th, const sl::Args& args) {
    CallSite site(th, args, &calls_);
    CellContext& cell = WindowCell(site);
    Value run;
    auto [svc, window] = WindowArgs(th, site, args, "fault", &run);
    if (std::string err = cell.open_window(*svc, window); !err.empty())
      FailPos(site.Call(), err);
    Value result;
    try {
      result = sl::CallValue(th, run, sl::Args{});
    } catch (...) {
      // The runner removes what is left once run returns; past the
      // deadline the services are stopped anyway.
      if (absl::Now() < cell.deadline) cell.close_window(*svc);
      throw;
    }
    if (std::string err = cell.close_window(*svc); !err.empty())
      FailPos(site.Call(), err);
    return result;
  }

  // fault_start(service, assumption=None, **effects): the fault applies
  // until fault_stop(service) or the end of the scenario's run.
  Value FaultStart(sl::Thread& th, const sl::Args& args) {
    CallSite site(th, args, &calls_);
    CellContext& cell = WindowCell(site);
    auto [svc, window] = WindowArgs(th, site, args, "fault_start", nullptr);
    if (std::string err = cell.open_window(*svc, window); !err.empty())
      FailPos(site.Call(), err);
    return sl::None();
  }

  Value FaultStop(sl::Thread& th, const sl::Args& args) {
    CallSite site(th, args, &calls_);
    CellContext& cell = WindowCell(site);
    Value service;
    Unpack(site, "fault_stop", args, {{"service", &service}});
    std::shared_ptr<ServiceDef> svc = ServiceArg(site, service);
    if (std::string err = cell.close_window(*svc); !err.empty())
      FailPos(site.Call(), err);
    return sl::None();
  }

  // monitor(fn, service=None, kind=None, op=None, rule=None, target=None)
  Value Monitor(sl::Thread& th, const sl::Args& args) {
    CallSite site(th, args, &calls_);
    Value fn, service, kind, op, rule, target;
    Unpack(site, "monitor", args,
           {{"fn", &fn},
            {"service?", &service},
            {"kind?", &kind},
            {"op?", &op},
            {"rule?", &rule},
            {"target?", &target}});
    if (!fn.Is(sl::Kind::kFunction) && !fn.Is(sl::Kind::kBuiltin))
      FailPos(site.Param(0, "fn"),
              absl::StrCat("for parameter \"fn\": got ", sl::TypeName(fn),
                           ", want a function of an event"));
    Value filter = sl::NewDict();
    const std::pair<const char*, Value*> fields[] = {{"service", &service},
                                                     {"kind", &kind},
                                                     {"op", &op},
                                                     {"rule", &rule},
                                                     {"target", &target}};
    FilterNames names;
    for (const auto& s : spec_->services) names.services.push_back(s->name);
    for (const auto& a : spec_->assumptions) names.faults.push_back(a->name);
    // Each field alone first, so that an error names its keyword.
    auto filter_of = [&](const Value& dict, const std::string& at) {
      try {
        return FilterFromValue(th, "monitor", "filter", dict, names);
      } catch (sl::EvalError& e) {
        absl::string_view msg = e.msg;
        absl::ConsumePrefix(&msg, "monitor: for parameter \"filter\": ");
        absl::ConsumePrefix(&msg, "monitor: ");
        FailPos(at, msg);
      }
    };
    for (const auto& [key, v] : fields) {
      if (v->IsNull() || v->IsNone()) continue;
      Value one = sl::NewDict();
      sl::DictOf(one)->t.Insert(sl::Str(key), *v);
      filter_of(one, site.Keyword(key));
      sl::DictOf(filter)->t.Insert(sl::Str(key), *v);
    }
    MonitorDef m;
    m.fn = fn;
    m.where = site.Call();
    m.filter = filter_of(filter, m.where);
    spec_->monitors.push_back(std::move(m));
    return sl::None();
  }

  Value Scenario(sl::Thread& th, const sl::Args& args) {
    CallSite site(th, args, &calls_);
    std::string name, description;
    Value run, check;
    Unpack(site, "scenario", args,
           {{"name", &name},
            {"run", &run},
            {"check?", &check},
            {"description?", &description}});
    if (check.IsNone()) check = Value();
    if (!check.IsNull() && !check.Is(sl::Kind::kFunction) &&
        !check.Is(sl::Kind::kBuiltin) && !IsExpectation(check))
      FailPos(site.Param(2, "check"),
              absl::StrCat("for parameter \"check\": got ", sl::TypeName(check),
                           ", want function or expectation (expect_success(), "
                           "expect_error_within(d), expect_hang())"));
    if (!run.Is(sl::Kind::kFunction) && !run.Is(sl::Kind::kBuiltin))
      FailPos(site.Param(1, "run"),
              absl::StrCat("for parameter \"run\": got ", sl::TypeName(run),
                           ", want function"));
    if (!ValidName(name))
      FailPos(site.Param(0, "name"),
              absl::StrCat("name \"", name,
                           "\": use 1 to 63 letters, digits, '_', '-' or '.'"));
    for (auto& s : scenarios_)
      if (s->name == name)
        FailPos(
            site.Param(0, "name"),
            absl::StrCat("\"", name, "\" is already defined at ", s->where));
    auto s = std::make_shared<ScenarioDef>();
    s->name = name;
    s->description = description;
    s->run = run;
    s->check = check;
    s->where = site.Call();
    scenarios_.push_back(s);
    return sl::NewHost<ScenarioValue>(s);
  }

  Value FaultMatrix(sl::Thread& th, const sl::Args& args) {
    static constexpr const char* kF = "fault_matrix";
    CallSite site(th, args, &calls_);
    Value scenarios, faults, overrides;
    Unpack(site, kF, args,
           {{"scenarios", &scenarios},
            {"faults", &faults},
            {"overrides?", &overrides}});
    auto list = [&](const Value& v, size_t i, const char* param) {
      if (!v.Is(sl::Kind::kList) && !v.Is(sl::Kind::kTuple))
        FailPos(site.Param(i, param),
                absl::StrCat("for parameter \"", param, "\": got ",
                             sl::TypeName(v), ", want list"));
      return sl::ToVector(th, v);
    };
    std::vector<std::shared_ptr<ScenarioDef>> ss;
    std::vector<Value> scenario_values = list(scenarios, 0, "scenarios");
    for (size_t i = 0; i < scenario_values.size(); ++i) {
      auto* s = HostAs<ScenarioValue>(scenario_values[i], "scenario");
      if (s == nullptr)
        FailPos(
            site.Element(0, "scenarios", i),
            absl::StrCat("scenarios: got ", sl::TypeName(scenario_values[i]),
                         ", want scenario"));
      ss.push_back(s->def());
    }
    std::vector<std::shared_ptr<Assumption>> fs;
    std::vector<Value> fault_values = list(faults, 1, "faults");
    for (size_t i = 0; i < fault_values.size(); ++i) {
      const Value& v = fault_values[i];
      if (v.IsNone()) {
        fs.push_back(nullptr);
        continue;
      }
      auto* f = HostAs<AssumptionValue>(v, "fault_assumption");
      if (f == nullptr)
        FailPos(site.Element(1, "faults", i),
                absl::StrCat("faults: got ", sl::TypeName(v),
                             ", want fault_assumption or None"));
      fs.push_back(f->def());
    }
    struct Override {
      ScenarioDef* s;
      Assumption* f;
      Value check;
      std::string where;
      bool used = false;
    };
    std::vector<Override> ovs;
    if (!overrides.IsNull() && !overrides.IsNone()) {
      if (!overrides.Is(sl::Kind::kDict))
        FailPos(site.Param(2, "overrides"),
                absl::StrCat("for parameter \"overrides\": got ",
                             sl::TypeName(overrides), ", want dict"));
      size_t index = 0;
      sl::DictOf(overrides)->t.ForEach([&](const sl::HashTable::Entry& e) {
        const std::string at = site.DictEntry(2, "overrides", index++);
        if (!e.key.Is(sl::Kind::kTuple) || sl::TupleOf(e.key)->v.size() != 2)
          FailPos(at, "overrides: keys are (scenario, fault) tuples");
        auto* s = HostAs<ScenarioValue>(sl::TupleOf(e.key)->v[0], "scenario");
        const Value& fv = sl::TupleOf(e.key)->v[1];
        auto* f = HostAs<AssumptionValue>(fv, "fault_assumption");
        if (s == nullptr || (f == nullptr && !fv.IsNone()))
          FailPos(at, "overrides: keys are (scenario, fault) tuples");
        if (!e.value.Is(sl::Kind::kFunction) &&
            !e.value.Is(sl::Kind::kBuiltin) && !IsExpectation(e.value))
          FailPos(at, absl::StrCat("overrides: got ", sl::TypeName(e.value),
                                   " for (", s->def()->name, ", ",
                                   f ? f->def()->name : "None",
                                   "), want a function of the scenario's "
                                   "result or an expectation "
                                   "(expect_success(), ...)"));
        ovs.push_back(
            {s->def().get(), f ? f->def().get() : nullptr, e.value, at});
      });
    }
    for (auto& s : ss) {
      for (auto& f : fs) {
        Cell c{s, f, Value()};
        for (auto& o : ovs) {
          if (o.s == s.get() && o.f == f.get()) {
            c.check = o.check;
            o.used = true;
          }
        }
        for (auto& existing : spec_->cells)
          if (existing.name() == c.name())
            FailPos(site.Call(),
                    absl::StrCat("cell ", c.name(), " is already in a matrix"));
        spec_->cells.push_back(std::move(c));
      }
    }
    for (auto& o : ovs)
      if (!o.used)
        FailPos(o.where, absl::StrCat("overrides: (", o.s->name, ", ",
                                      o.f ? o.f->name : "None",
                                      ") is not a cell of this matrix"));
    return sl::None();
  }

  Spec* spec_;
  std::string spec_dir_;
  std::vector<std::shared_ptr<ScenarioDef>> scenarios_;
  CallIndex calls_;
};

}  // namespace

std::string PortRefText(absl::string_view service, absl::string_view port) {
  return absl::StrCat("{", service, ".", port, "}");
}

std::vector<PortRef> FindPortRefs(
    absl::string_view s,
    const std::vector<std::shared_ptr<ServiceDef>>& services) {
  std::vector<PortRef> out;
  size_t open = s.find('{');
  while (open != absl::string_view::npos) {
    size_t close = s.find('}', open + 1);
    if (close == absl::string_view::npos) break;
    absl::string_view inside = s.substr(open + 1, close - open - 1);
    // "{a{b.c}": the reference starts at the last '{'.
    if (size_t inner = inside.rfind('{'); inner != absl::string_view::npos) {
      open += inner + 1;
      continue;
    }
    // Service and port names may hold dots: try every split, and prefer one
    // that names a port of the service.
    std::optional<PortRef> ref;
    for (size_t dot = inside.find('.');
         dot != absl::string_view::npos && !(ref && !ref->port.empty());
         dot = inside.find('.', dot + 1)) {
      absl::string_view name = inside.substr(0, dot);
      absl::string_view rest = inside.substr(dot + 1);
      for (const auto& svc : services) {
        if (svc->name != name) continue;
        bool has = false;
        for (auto& [p, n] : svc->ports) has |= p == rest;
        if (has || !ref)
          ref = PortRef{open, close + 1, svc, has ? std::string(rest) : "",
                        std::string(rest)};
      }
    }
    if (ref) out.push_back(*ref);
    open = s.find('{', close + 1);
  }
  return out;
}

std::string ExpandPortRefs(
    absl::string_view s,
    const std::vector<std::shared_ptr<ServiceDef>>& services) {
  std::string out;
  size_t done = 0;
  for (const PortRef& ref : FindPortRefs(s, services)) {
    const std::map<std::string, int>& ports = CurrentPorts(*ref.service);
    auto it = ports.find(ref.port);
    if (ref.port.empty() || it == ports.end()) continue;
    absl::StrAppend(&out, s.substr(done, ref.begin - done), it->second);
    done = ref.end;
  }
  absl::StrAppend(&out, s.substr(done));
  return out;
}

std::string Cell::name() const {
  return absl::StrCat(scenario->name, "/", fault ? fault->name : "none");
}

bool IsStaticBinary(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  Elf64_Ehdr eh;
  if (!f.read(reinterpret_cast<char*>(&eh), sizeof(eh))) return false;
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64)
    return false;
  for (int i = 0; i < eh.e_phnum && i < 256; ++i) {
    Elf64_Phdr ph;
    f.seekg(eh.e_phoff + static_cast<uint64_t>(i) * eh.e_phentsize);
    if (!f.read(reinterpret_cast<char*>(&ph), sizeof(ph))) return false;
    if (ph.p_type == PT_INTERP) return false;
  }
  return true;
}

std::string ResolveOnPath(const std::string& name) {
  const char* path = getenv("PATH");
  for (absl::string_view dir :
       absl::StrSplit(path ? path : "/usr/bin:/bin", ':')) {
    std::string p = absl::StrCat(dir.empty() ? "." : dir, "/", name);
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

namespace {
thread_local const CellInstances* t_instances = nullptr;
}  // namespace

ScopedCellInstances::ScopedCellInstances(const CellInstances* instances) {
  t_instances = instances;
}
ScopedCellInstances::~ScopedCellInstances() { t_instances = nullptr; }

const CellInstances* CurrentCellInstances() { return t_instances; }

const std::map<std::string, int>& CurrentPorts(const ServiceDef& svc) {
  if (t_instances != nullptr) {
    auto it = t_instances->find(&svc);
    if (it != t_instances->end()) return it->second.ports;
  }
  return svc.current_ports;
}

const std::string& CurrentDir(const ServiceDef& svc) {
  if (t_instances != nullptr) {
    auto it = t_instances->find(&svc);
    if (it != t_instances->end()) return it->second.dir;
  }
  return svc.current_dir;
}

namespace {

// Resolves service(..., depends_on = [...]) by name and orders the
// services' start (Spec::start_order).
absl::Status ResolveDependencies(Spec* spec) {
  std::map<std::string, ServiceDef*> by_name;
  for (auto& svc : spec->services) by_name[svc->name] = svc.get();
  for (auto& svc : spec->services) {
    svc->depends_on.clear();
    for (const ServiceDef::Dependency& d : svc->depends_on_written) {
      auto it = by_name.find(d.name);
      if (it == by_name.end()) {
        std::vector<std::string> names;
        for (auto& s : spec->services)
          names.push_back(absl::StrCat("\"", s->name, "\""));
        return absl::InvalidArgumentError(
            absl::StrCat(d.where, ": service: \"", svc->name,
                         "\": depends_on: no service named \"", d.name,
                         "\" (services: ", absl::StrJoin(names, ", "), ")"));
      }
      const ServiceDef* dep = it->second;
      if (svc->shared && !dep->shared)
        return absl::InvalidArgumentError(absl::StrCat(
            d.where, ": service: \"", svc->name, "\": depends_on: \"",
            dep->name, "\" starts again for every cell, but \"", svc->name,
            "\" is shared and starts once; make \"", dep->name,
            "\" shared too, or \"", svc->name, "\" not shared"));
      if (std::find(svc->depends_on.begin(), svc->depends_on.end(), dep) ==
          svc->depends_on.end())
        svc->depends_on.push_back(dep);
    }
  }
  // Cycles: a depth-first walk in definition order; the edge that closes a
  // cycle is reported where it was written, with the whole cycle.
  enum Color { kWhite, kGrey, kBlack };
  std::map<const ServiceDef*, Color> color;
  std::vector<const ServiceDef*> path;
  std::string error;
  std::function<bool(const ServiceDef*)> visit = [&](const ServiceDef* s) {
    color[s] = kGrey;
    path.push_back(s);
    for (size_t i = 0; i < s->depends_on.size(); ++i) {
      const ServiceDef* d = s->depends_on[i];
      if (color[d] == kGrey) {
        auto from = std::find(path.begin(), path.end(), d);
        std::string chain;
        for (auto it = from; it != path.end(); ++it)
          absl::StrAppend(&chain,
                          it == from       ? ""
                          : it == from + 1 ? " depends on "
                                           : ", which depends on ",
                          "\"", (*it)->name, "\"");
        absl::StrAppend(
            &chain,
            path.end() - from == 1 ? " depends on " : ", which depends on ",
            "\"", d->name, "\"");
        std::string where;
        for (const auto& w : s->depends_on_written)
          if (w.name == d->name && where.empty()) where = w.where;
        error = absl::StrCat(
            where, ": service: \"", s->name, "\": depends_on: a cycle: ", chain,
            ": none of them can start first; remove one of these "
            "dependencies");
        return false;
      }
      if (color[d] == kWhite && !visit(d)) return false;
    }
    path.pop_back();
    color[s] = kBlack;
    return true;
  };
  for (auto& svc : spec->services)
    if (color[svc.get()] == kWhite && !visit(svc.get()))
      return absl::InvalidArgumentError(error);
  // The start order: the first service (in definition order) whose
  // dependencies have all started, again and again.
  spec->start_order.clear();
  std::vector<bool> placed(spec->services.size(), false);
  std::map<const ServiceDef*, size_t> index;
  for (size_t i = 0; i < spec->services.size(); ++i)
    index[spec->services[i].get()] = i;
  while (spec->start_order.size() < spec->services.size()) {
    for (size_t i = 0; i < spec->services.size(); ++i) {
      if (placed[i]) continue;
      bool ready = true;
      for (const ServiceDef* d : spec->services[i]->depends_on)
        ready &= placed[index[d]];
      if (!ready) continue;
      placed[i] = true;
      spec->start_order.push_back(i);
      break;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Spec>> LoadSpec(
    absl::string_view filename, absl::string_view source,
    const std::vector<std::pair<std::string, std::string>>& vars) {
  auto spec = std::make_unique<Spec>();
  spec->path = std::string(filename);
  std::string dir = DirOf(filename);
  char* real = realpath(dir.c_str(), nullptr);
  if (real != nullptr) {
    dir = real;
    free(real);
  }
  auto loader = std::make_shared<Loader>(spec.get(), dir);
  spec->loader = loader;  // builtins captured it; the spec keeps it alive
  loader->Install(vars);
  absl::StatusOr<sl::StringDict> globals = loader->ExecSpec(spec->path, source);
  loader->Finish();
  if (!globals.ok()) return globals.status();
  if (absl::Status st = loader->CheckPortRefs(); !st.ok()) return st;
  if (absl::Status st = ResolveDependencies(spec.get()); !st.ok()) return st;
  if (spec->cells.empty())
    return absl::InvalidArgumentError(absl::StrCat(
        filename,
        ": no cells: call fault_matrix(scenarios=[...], faults=[...])"));
  spec->globals = std::move(*globals);
  // Called from the threads that run cells.
  for (MonitorDef& m : spec->monitors) sl::Freeze(m.fn);
  return spec;
}

}  // namespace fault::spec
