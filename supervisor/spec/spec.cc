#include "supervisor/spec/spec.h"

#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "supervisor/policy/units.h"
#include "supervisor/spec/builtins.h"

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

class InterfaceValue : public sl::HostValue {
 public:
  InterfaceValue(std::shared_ptr<ServiceDef> s, std::string port)
      : svc_(std::move(s)), port_(std::move(port)) {}
  std::string Type() const override { return "interface"; }
  std::string Repr() const override {
    return absl::StrCat("interface(", svc_->name, ".", port_, ")");
  }
  Value Attr(sl::Thread&, std::string_view name) override {
    auto it = svc_->current_ports.find(port_);
    int port = it == svc_->current_ports.end() ? 0 : it->second;
    if (name == "host") return sl::Str("127.0.0.1");
    if (name == "port") return sl::Int(port);
    if (name == "name") return sl::Str(port_);
    if (name == "addr") return sl::Str(absl::StrCat("127.0.0.1:", port));
    if (name == "url") return sl::Str(absl::StrCat("http://127.0.0.1:", port));
    return Value();
  }
  std::vector<std::string> AttrNames() const override {
    return {"addr", "host", "name", "port", "url"};
  }

 private:
  std::shared_ptr<ServiceDef> svc_;
  std::string port_;
};

class ServiceValue : public sl::HostValue {
 public:
  explicit ServiceValue(std::shared_ptr<ServiceDef> s) : svc_(std::move(s)) {}
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
    if (name == "dir") return sl::Str(svc_->current_dir);
    for (auto& [p, port] : svc_->ports)
      if (p == name) return sl::NewHost<InterfaceValue>(svc_, p);
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

[[noreturn]] void FailAt(sl::Thread& th, absl::string_view fname,
                         absl::string_view msg) {
  (void)fname;  // the backtrace names the builtin
  sl::Fail(absl::StrCat(CallPosition(th), ": ", msg));
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
nlohmann::json ToJson(sl::Thread& th, absl::string_view fname,
                      absl::string_view param, const Value& v) {
  switch (v.kind()) {
    case sl::Kind::kNone:
      return nullptr;
    case sl::Kind::kBool:
      return sl::Truth(v);
    case sl::Kind::kInt: {
      int64_t i;
      if (!sl::IntToInt64(v, &i))
        FailAt(th, fname, absl::StrCat(param, ": integer too large"));
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
        a.push_back(ToJson(th, fname, param, x));
      return a;
    }
    case sl::Kind::kDict: {
      nlohmann::json o = nlohmann::json::object();
      sl::DictOf(v)->t.ForEach([&](const sl::HashTable::Entry& e) {
        if (!e.key.Is(sl::Kind::kString))
          FailAt(th, fname,
                 absl::StrCat(param, ": dict keys must be strings, got ",
                              sl::TypeName(e.key)));
        o[sl::StrOf(e.key)] = ToJson(
            th, fname, absl::StrCat(param, ".", sl::StrOf(e.key)), e.value);
      });
      return o;
    }
    default:
      FailAt(th, fname,
             absl::StrCat(param, ": got ", sl::TypeName(v),
                          ", want string, number, bool, list or dict"));
  }
}

std::vector<std::string> StringList(sl::Thread& th, absl::string_view fname,
                                    absl::string_view param, const Value& v) {
  std::vector<std::string> out;
  if (!v.Is(sl::Kind::kList) && !v.Is(sl::Kind::kTuple))
    FailAt(th, fname,
           absl::StrCat("for parameter \"", param, "\": got ", sl::TypeName(v),
                        ", want list of strings"));
  for (const Value& x : sl::ToVector(th, v)) {
    if (!x.Is(sl::Kind::kString))
      FailAt(th, fname,
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

  void Install(sl::StringDict* p) {
    AddCommonBuiltins(p);
    (*p)["service"] = Builtin("service", &Loader::Service);
    (*p)["deny"] = Builtin("deny", &Loader::Deny);
    (*p)["delay"] = Builtin("delay", &Loader::Delay);
    (*p)["partition"] = Builtin("partition", &Loader::Partition);
    (*p)["fault_assumption"] =
        Builtin("fault_assumption", &Loader::FaultAssumption);
    (*p)["scenario"] = Builtin("scenario", &Loader::Scenario);
    (*p)["fault_matrix"] = Builtin("fault_matrix", &Loader::FaultMatrix);
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

 public:
  void Finish() { finished_ = true; }

 private:
  bool finished_ = false;

  Value Service(sl::Thread& th, const sl::Args& args) {
    std::string name;
    Value command, env, ports, ready, ready_timeout = sl::Str("10s");
    sl::UnpackArgs("service", args,
                   {{"name", &name},
                    {"command", &command},
                    {"env?", &env},
                    {"ports?", &ports},
                    {"ready?", &ready},
                    {"ready_timeout?", &ready_timeout}});
    auto svc = std::make_shared<ServiceDef>();
    svc->name = name;
    svc->where = CallPosition(th);
    if (!ValidName(name))
      FailAt(th, "service",
             absl::StrCat("name \"", name,
                          "\": use 1 to 63 letters, digits, '_', '-' or '.'"));
    for (auto& s : spec_->services)
      if (s->name == name)
        FailAt(th, "service",
               absl::StrCat("\"", name, "\" is already defined at ", s->where));
    svc->command = StringList(th, "service", "command", command);
    if (svc->command.empty()) FailAt(th, "service", "command is empty");
    for (auto& a : svc->command)
      a = absl::StrReplaceAll(a, {{"{spec_dir}", spec_dir_}});
    std::string& prog = svc->command[0];
    if (prog.find('/') != std::string::npos && prog[0] != '/')
      prog = absl::StrCat(spec_dir_, "/", prog);
    std::string resolved =
        prog.find('/') == std::string::npos ? ResolveOnPath(prog) : prog;
    if (resolved.empty() || access(resolved.c_str(), X_OK) != 0)
      FailAt(th, "service",
             absl::StrCat("\"", name, "\": command \"", prog,
                          "\" is not an executable file"));
    svc->static_binary = IsStaticBinary(resolved);
    if (!env.IsNull() && !env.IsNone()) {
      if (!env.Is(sl::Kind::kDict))
        FailAt(th, "service",
               absl::StrCat("for parameter \"env\": got ", sl::TypeName(env),
                            ", want dict"));
      sl::DictOf(env)->t.ForEach([&](const sl::HashTable::Entry& e) {
        if (!e.key.Is(sl::Kind::kString) || !e.value.Is(sl::Kind::kString))
          FailAt(th, "service", "env: keys and values must be strings");
        svc->env.emplace_back(sl::StrOf(e.key), sl::StrOf(e.value));
      });
    }
    if (!ports.IsNull() && !ports.IsNone()) {
      if (!ports.Is(sl::Kind::kDict))
        FailAt(th, "service",
               absl::StrCat("for parameter \"ports\": got ",
                            sl::TypeName(ports), ", want dict"));
      sl::DictOf(ports)->t.ForEach([&](const sl::HashTable::Entry& e) {
        int64_t port;
        if (!e.key.Is(sl::Kind::kString) || !e.value.Is(sl::Kind::kInt) ||
            !sl::IntToInt64(e.value, &port))
          FailAt(th, "service",
                 "ports: want {\"name\": port}, port an int (0: a free port "
                 "per cell)");
        if (port < 0 || port > 65535)
          FailAt(th, "service", absl::StrCat("ports: ", port, " out of range"));
        std::string pn = sl::StrOf(e.key);
        if (pn == "name" || pn == "dir")
          FailAt(th, "service",
                 absl::StrCat("ports: \"", pn, "\" is reserved"));
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
        FailAt(th, "service",
               absl::StrCat("ready: \"", svc->ready_port,
                            "\" is not one of its ports"));
    } else {
      svc->ready_command = StringList(th, "service", "ready", ready);
      if (svc->ready_command.empty())
        FailAt(th, "service", "ready: the command is empty");
    }
    svc->ready_timeout = DurationArg("service", "ready_timeout", ready_timeout);
    spec_->services.push_back(svc);
    return sl::NewHost<ServiceValue>(svc);
  }

  Value SyscallFault(sl::Thread& th, const sl::Args& args, const char* kind) {
    Value first, probability, path, when;
    sl::UnpackArgs(
        kind, args,
        {{absl::string_view(kind) == "deny" ? "errno" : "duration", &first},
         {"probability?", &probability},
         {"path?", &path},
         {"when?", &when}});
    SyscallRule rule = nlohmann::json::object();
    if (absl::string_view(kind) == "deny") {
      if (!first.Is(sl::Kind::kString))
        FailAt(th, kind,
               absl::StrCat("errno: got ", sl::TypeName(first),
                            ", want a name like \"EIO\""));
      absl::StatusOr<int> e = fault::policy::ErrnoFromName(sl::StrOf(first));
      if (!e.ok()) FailAt(th, kind, e.status().message());
      rule["deny"] = sl::StrOf(first);
    } else {
      if (!first.Is(sl::Kind::kString))
        FailAt(th, kind,
               absl::StrCat("duration: got ", sl::TypeName(first),
                            ", want a duration like \"2s\""));
      absl::StatusOr<int64_t> d =
          fault::policy::ParseDuration(sl::StrOf(first));
      if (!d.ok()) FailAt(th, kind, d.status().message());
      rule["delay"] = sl::StrOf(first);
    }
    if (!probability.IsNull() && !probability.IsNone()) {
      nlohmann::json p = ToJson(th, kind, "probability", probability);
      if (p.is_string()) {
        absl::StatusOr<uint32_t> ppm =
            fault::policy::ParseProbability(p.get<std::string>());
        if (!ppm.ok())
          FailAt(th, kind,
                 absl::StrCat("probability: ", ppm.status().message()));
      }
      rule["probability"] = p;
    }
    if (!path.IsNull() && !path.IsNone())
      rule["path"] = ToJson(th, kind, "path", path);
    if (!when.IsNull() && !when.IsNone())
      rule["when"] = ToJson(th, kind, "when", when);
    return sl::NewHost<SyscallFaultValue>(kind, std::move(rule));
  }
  Value Deny(sl::Thread& th, const sl::Args& a) {
    return SyscallFault(th, a, "deny");
  }
  Value Delay(sl::Thread& th, const sl::Args& a) {
    return SyscallFault(th, a, "delay");
  }

  Value Partition(sl::Thread& th, const sl::Args& args) {
    Value a, b;
    sl::UnpackArgs("partition", args, {{"a", &a}, {"b", &b}});
    FailAt(th, "partition",
           "not supported by `fault test` yet: each service runs under its own "
           "supervisor, and a "
           "partition needs both programs under one (use fault exec with a "
           "policy file)");
  }

  Value FaultAssumption(sl::Thread& th, const sl::Args& args) {
    static constexpr const char* kF = "fault_assumption";
    std::string where = CallPosition(th);
    auto a = std::make_shared<Assumption>();
    a->where = where;
    if (args.pos.size() > 1)
      FailAt(th, kF, "takes the name as its only positional argument");
    Value name_v = args.pos.empty() ? Value() : args.pos[0];
    std::vector<std::pair<std::string, Value>> kws;
    for (auto& [k, v] : args.kw) {
      std::string key = sl::StrOf(k);
      if (key == "name") {
        if (!name_v.IsNull())
          FailAt(th, kF, "got multiple values for parameter \"name\"");
        name_v = v;
        continue;
      }
      kws.emplace_back(key, v);
    }
    if (name_v.IsNull()) FailAt(th, kF, "missing argument for name");
    if (!name_v.Is(sl::Kind::kString))
      FailAt(th, kF,
             absl::StrCat("for parameter \"name\": got ", sl::TypeName(name_v),
                          ", want string"));
    a->name = sl::StrOf(name_v);
    if (!ValidName(a->name))
      FailAt(th, kF,
             absl::StrCat("name \"", a->name,
                          "\": use 1 to 63 letters, digits, '_', '-' or '.'"));
    for (auto& other : spec_->assumptions)
      if (other->name == a->name)
        FailAt(th, kF,
               absl::StrCat("\"", a->name, "\" is already defined at ",
                            other->where));
    std::string origin = a->name;
    auto check = [&](absl::Status st) {
      if (!st.ok())
        FailAt(th, kF, absl::StrCat("\"", a->name, "\": ", st.message()));
    };
    std::vector<std::shared_ptr<Assumption>> composed;
    for (auto& [key, v] : kws) {
      if (key == "description") {
        if (!v.Is(sl::Kind::kString))
          FailAt(th, kF,
                 absl::StrCat("for parameter \"description\": got ",
                              sl::TypeName(v), ", want string"));
        a->description = sl::StrOf(v);
      } else if (key == "expect_events") {
        a->expect_events = sl::Truth(v);
      } else if (key == "target") {
        std::vector<Value> ts;
        if (v.Is(sl::Kind::kList) || v.Is(sl::Kind::kTuple))
          ts = sl::ToVector(th, v);
        else
          ts.push_back(v);
        for (const Value& t : ts) {
          auto* s = HostAs<ServiceValue>(t, "service");
          if (s == nullptr)
            FailAt(
                th, kF,
                absl::StrCat("for parameter \"target\": got ", sl::TypeName(t),
                             ", want service or list of services"));
          a->targets.push_back(s->def());
        }
      } else if (key == "faults") {
        if (!v.Is(sl::Kind::kList) && !v.Is(sl::Kind::kTuple))
          FailAt(th, kF,
                 absl::StrCat("for parameter \"faults\": got ", sl::TypeName(v),
                              ", want list of fault_assumption"));
        for (const Value& f : sl::ToVector(th, v)) {
          auto* fa = HostAs<AssumptionValue>(f, "fault_assumption");
          if (fa == nullptr)
            FailAt(
                th, kF,
                absl::StrCat("for parameter \"faults\": got ", sl::TypeName(f),
                             " in list, want fault_assumption"));
          composed.push_back(fa->def());
        }
      } else if (key == "targets") {
        check(a->set.SetTargets(ToJson(th, kF, key, v), origin));
      } else if (IsSyscallFamily(key)) {
        std::vector<Value> rules;
        if (v.Is(sl::Kind::kList) || v.Is(sl::Kind::kTuple))
          rules = sl::ToVector(th, v);
        else
          rules.push_back(v);
        std::vector<SyscallRule> json_rules;
        for (const Value& r : rules) {
          auto* sf = HostAs<SyscallFaultValue>(r, "syscall_fault");
          if (sf == nullptr)
            FailAt(th, kF,
                   absl::StrCat(key, ": got ", sl::TypeName(r),
                                ", want deny(...) or delay(...)"));
          json_rules.push_back(sf->rule());
        }
        check(a->set.SetSyscallRules(key, std::move(json_rules), origin));
      } else if (std::optional<std::string> path = EffectFieldPath(key)) {
        if (v.Is(sl::Kind::kHost))
          FailAt(th, kF,
                 absl::StrCat(key, ": got ", sl::TypeName(v),
                              "; deny(...) and delay(...) go with a syscall "
                              "family such as write= or connect="));
        check(a->set.SetField(*path, ToJson(th, kF, key, v), origin));
      } else {
        std::string hint = SuggestKeyword(key, AssumptionKeywords());
        FailAt(th, kF,
               absl::StrCat("unexpected keyword argument \"", key, "\"",
                            hint.empty() ? ""
                                         : absl::StrCat(" (did you mean \"",
                                                        hint, "\"?)")));
      }
    }
    for (auto& c : composed) {
      check(Merge(&a->set, c->set));
      if (a->targets.empty())
        a->targets = c->targets;
      else if (!c->targets.empty()) {
        for (auto& t : c->targets) {
          bool have = false;
          for (auto& mine : a->targets) have |= mine == t;
          if (!have) a->targets.push_back(t);
        }
      }
      if (!c->expect_events) a->expect_events = false;
    }
    if (a->targets.empty()) {
      if (spec_->services.size() == 1)
        a->targets = spec_->services;
      else
        FailAt(
            th, kF,
            absl::StrCat("\"", a->name, "\": no target: give target=SERVICE (",
                         spec_->services.size(), " services are defined)"));
    }
    if (a->set.empty())
      FailAt(th, kF, absl::StrCat("\"", a->name, "\": no fault effect given"));
    for (auto& t : a->targets) {
      if (t->static_binary && a->set.HasShimOnlyEffects())
        FailAt(th, kF,
               absl::StrCat(
                   "\"", a->name, "\": service \"", t->name,
                   "\" is a static binary (", t->command[0],
                   "): only syscall faults reach it (through the seccomp "
                   "layer); network and DNS effects need the preload shim"));
    }
    absl::StatusOr<fault::v1::Policy> p = ToPolicy(a->name, a->set, where);
    if (!p.ok()) sl::Fail(std::string(p.status().message()));
    a->policy = *p;
    spec_->assumptions.push_back(a);
    return sl::NewHost<AssumptionValue>(a);
  }

  Value Scenario(sl::Thread& th, const sl::Args& args) {
    std::string name, description;
    Value run, check;
    sl::UnpackArgs("scenario", args,
                   {{"name", &name},
                    {"run", &run},
                    {"check?", &check},
                    {"description?", &description}});
    if (check.IsNone()) check = Value();
    if (!check.IsNull() && !check.Is(sl::Kind::kFunction) &&
        !check.Is(sl::Kind::kBuiltin))
      FailAt(th, "scenario",
             absl::StrCat("for parameter \"check\": got ", sl::TypeName(check),
                          ", want function"));
    if (!run.Is(sl::Kind::kFunction) && !run.Is(sl::Kind::kBuiltin))
      FailAt(th, "scenario",
             absl::StrCat("for parameter \"run\": got ", sl::TypeName(run),
                          ", want function"));
    if (!ValidName(name))
      FailAt(th, "scenario",
             absl::StrCat("name \"", name,
                          "\": use 1 to 63 letters, digits, '_', '-' or '.'"));
    for (auto& s : scenarios_)
      if (s->name == name)
        FailAt(th, "scenario",
               absl::StrCat("\"", name, "\" is already defined at ", s->where));
    auto s = std::make_shared<ScenarioDef>();
    s->name = name;
    s->description = description;
    s->run = run;
    s->check = check;
    s->where = CallPosition(th);
    scenarios_.push_back(s);
    return sl::NewHost<ScenarioValue>(s);
  }

  Value FaultMatrix(sl::Thread& th, const sl::Args& args) {
    static constexpr const char* kF = "fault_matrix";
    Value scenarios, faults, overrides;
    sl::UnpackArgs(kF, args,
                   {{"scenarios", &scenarios},
                    {"faults", &faults},
                    {"overrides?", &overrides}});
    auto list = [&](const Value& v, const char* param) {
      if (!v.Is(sl::Kind::kList) && !v.Is(sl::Kind::kTuple))
        FailAt(th, kF,
               absl::StrCat("for parameter \"", param, "\": got ",
                            sl::TypeName(v), ", want list"));
      return sl::ToVector(th, v);
    };
    std::vector<std::shared_ptr<ScenarioDef>> ss;
    for (const Value& v : list(scenarios, "scenarios")) {
      auto* s = HostAs<ScenarioValue>(v, "scenario");
      if (s == nullptr)
        FailAt(th, kF,
               absl::StrCat("scenarios: got ", sl::TypeName(v),
                            ", want scenario"));
      ss.push_back(s->def());
    }
    std::vector<std::shared_ptr<Assumption>> fs;
    for (const Value& v : list(faults, "faults")) {
      if (v.IsNone()) {
        fs.push_back(nullptr);
        continue;
      }
      auto* f = HostAs<AssumptionValue>(v, "fault_assumption");
      if (f == nullptr)
        FailAt(th, kF,
               absl::StrCat("faults: got ", sl::TypeName(v),
                            ", want fault_assumption or None"));
      fs.push_back(f->def());
    }
    struct Override {
      ScenarioDef* s;
      Assumption* f;
      Value check;
      bool used = false;
    };
    std::vector<Override> ovs;
    if (!overrides.IsNull() && !overrides.IsNone()) {
      if (!overrides.Is(sl::Kind::kDict))
        FailAt(th, kF,
               absl::StrCat("for parameter \"overrides\": got ",
                            sl::TypeName(overrides), ", want dict"));
      sl::DictOf(overrides)->t.ForEach([&](const sl::HashTable::Entry& e) {
        if (!e.key.Is(sl::Kind::kTuple) || sl::TupleOf(e.key)->v.size() != 2)
          FailAt(th, kF, "overrides: keys are (scenario, fault) tuples");
        auto* s = HostAs<ScenarioValue>(sl::TupleOf(e.key)->v[0], "scenario");
        const Value& fv = sl::TupleOf(e.key)->v[1];
        auto* f = HostAs<AssumptionValue>(fv, "fault_assumption");
        if (s == nullptr || (f == nullptr && !fv.IsNone()))
          FailAt(th, kF, "overrides: keys are (scenario, fault) tuples");
        if (!e.value.Is(sl::Kind::kFunction) && !e.value.Is(sl::Kind::kBuiltin))
          FailAt(
              th, kF,
              absl::StrCat("overrides: got ", sl::TypeName(e.value), " for (",
                           s->def()->name, ", ", f ? f->def()->name : "None",
                           "), want a function of the scenario's result"));
        ovs.push_back({s->def().get(), f ? f->def().get() : nullptr, e.value});
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
            FailAt(th, kF,
                   absl::StrCat("cell ", c.name(), " is already in a matrix"));
        spec_->cells.push_back(std::move(c));
      }
    }
    for (auto& o : ovs)
      if (!o.used)
        FailAt(th, kF,
               absl::StrCat("overrides: (", o.s->name, ", ",
                            o.f ? o.f->name : "None",
                            ") is not a cell of this matrix"));
    return sl::None();
  }

  Spec* spec_;
  std::string spec_dir_;
  std::vector<std::shared_ptr<ScenarioDef>> scenarios_;
};

}  // namespace

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
  sl::StringDict pre;
  loader->Install(&pre);
  Value vars_dict = sl::NewDict();
  for (auto& [k, v] : vars)
    sl::DictOf(vars_dict)->t.Insert(sl::Str(k), sl::Str(v));
  pre["vars"] = vars_dict;
  sl::Thread th;
  th.name = "load";
  th.max_steps = 10'000'000;
  th.print = [](sl::Thread&, const std::string& s) {
    fprintf(stderr, "%s\n", s.c_str());
  };
  absl::StatusOr<sl::StringDict> globals =
      sl::ExecFile(th, std::string_view(filename.data(), filename.size()),
                   std::string_view(source.data(), source.size()), pre);
  loader->Finish();
  if (!globals.ok()) return globals.status();
  if (spec->cells.empty())
    return absl::InvalidArgumentError(absl::StrCat(
        filename,
        ": no cells: call fault_matrix(scenarios=[...], faults=[...])"));
  spec->globals = std::move(*globals);
  return spec;
}

}  // namespace fault::spec
