#include "supervisor/policy/parser.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "shim/engine/families.h"
#include "supervisor/policy/strings.h"
#include "supervisor/policy/units.h"

namespace fault::policy::internal {

using fault::v1::ConnectionError;
using fault::v1::Latency;
using fault::v1::LinkProfile;
using fault::v1::PayloadMutation;
using fault::v1::Policy;
using fault::v1::Protocol;
using fault::v1::Schedule;
using fault::v1::SessionBudget;
using fault::v1::SyscallFault;
using fault::v1::Target;
using fault::v1::When;

// ---------------------------------------------------------------------------
// ParseContext

void ParseContext::Note(const std::string& path, const YAML::Node& node) {
  if (HasMark(node.Mark())) {
    marks_.emplace(path, node.Mark());
  } else if (HasMark(fallback_)) {
    marks_.emplace(path, fallback_);
  }
}

YAML::Mark ParseContext::Locate(const std::string& path) const {
  std::string p = path;
  while (!p.empty()) {
    auto it = marks_.find(p);
    if (it != marks_.end()) return it->second;
    const size_t cut = p.find_last_of(".[");
    if (cut == std::string::npos) break;
    p.resize(cut);
  }
  return policy_mark_;
}

void ParseContext::Fail(const YAML::Node& node, const std::string& path,
                        std::string message) {
  YAML::Mark m = node.Mark();
  if (!HasMark(m)) m = HasMark(fallback_) ? fallback_ : Locate(path);
  problems_->push_back(Problem{policy_, path, m, std::move(message)});
}

void ParseContext::Fail(const std::string& path, std::string message) {
  problems_->push_back(
      Problem{policy_, path, Locate(path), std::move(message)});
}

// ---------------------------------------------------------------------------
// Small shared pieces

namespace {

std::string Join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : Cat(path, ".", key);
}

std::string Index(const std::string& path, size_t i) {
  return Cat(path, "[", i, "]");
}

std::string Describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return Quote(n.Scalar());
    default:
      return "nothing";
  }
}

std::string JoinWords(const std::vector<std::string_view>& words,
                      std::string_view last_sep) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += (i + 1 == words.size()) ? std::string(last_sep) : ", ";
    out += words[i];
  }
  return out;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t sub = prev[j - 1] + (absl::ascii_tolower(a[i - 1]) !=
                                        absl::ascii_tolower(b[j - 1]));
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

constexpr int kMaxPriority = 1000;
constexpr int64_t kMaxDelayNs = int64_t{24} * 3600 * 1'000'000'000;  // 24h
constexpr uint64_t kMaxBurstLoss = 1000;
constexpr size_t kMaxNameBytes = 63;     // FAULT_NAME_MAX - 1
constexpr size_t kMaxGlobBytes = 255;    // FAULT_GLOB_MAX - 1
constexpr size_t kMaxPatternBytes = 64;  // FAULT_PATTERN_MAX
constexpr uint32_t kMinHttpStatus = 100;
constexpr uint32_t kMaxHttpStatus = 599;
// The body of an HTTP error response: a short message, not a document.
constexpr size_t kMaxHttpBodyBytes = 4096;

struct FamilyEntry {
  std::string_view name;
  SyscallFault::Family family;
  bool file;
};
static_assert(SyscallFault::Family_ARRAYSIZE == fault::engine::kFamilyCount,
              "SyscallFault.Family and shim/engine/families.h disagree");

// The families of shim/engine/families.h, plus the alias "openat".
const std::vector<FamilyEntry>& Families() {
  static const auto* const kFamilies = [] {
    auto* out = new std::vector<FamilyEntry>;
    for (int f = 1; f < fault::engine::kFamilyCount; ++f) {
      const fault::engine::FamilyTraits& t = fault::engine::kFamilies[f];
      out->push_back({t.name, static_cast<SyscallFault::Family>(f), t.file});
      if (f == fault::engine::kFamilyOpen) {
        out->push_back({"openat", SyscallFault::FAMILY_OPEN, t.file});
      }
    }
    return out;
  }();
  return *kFamilies;
}

const FamilyEntry* FindFamily(std::string_view name) {
  for (const FamilyEntry& f : Families()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::vector<std::string_view> FamilyNames() {
  std::vector<std::string_view> out;
  for (const FamilyEntry& f : Families()) out.push_back(f.name);
  return out;
}

// "open, read, ..., ftruncate": the families path globs apply to.
std::string FileFamilyNames() {
  std::string out;
  for (int f = 1; f < fault::engine::kFamilyCount; ++f) {
    if (!fault::engine::kFamilies[f].file) continue;
    Append(&out, out.empty() ? "" : ", ", fault::engine::kFamilies[f].name);
  }
  return out;
}

// Why `host`, made only of digits and dots, is not an IPv4 address
// (inet_pton said no): which of its four parts is wrong.
std::string WhyNotIpv4(std::string_view host) {
  std::vector<absl::string_view> parts = absl::StrSplit(Av(host), '.');
  if (parts.size() != 4) {
    return Cat("an IPv4 address has 4 parts, this has ", parts.size());
  }
  for (absl::string_view part : parts) {
    if (part.empty()) return "a part is empty";
    if (part.size() > 1 && part[0] == '0') {
      return Cat("part ", part, " has a leading zero");
    }
    int value = 0;
    if (part.size() > 3 || !absl::SimpleAtoi(part, &value) || value > 255) {
      return Cat("part ", part, " is above 255");
    }
  }
  return "not a dotted-quad address";
}

// A host made only of digits and dots is meant as an IPv4 address: no DNS
// name is all-numeric, so taking it as a name would silently select nothing.
bool LooksLikeIpv4(std::string_view host) {
  return !host.empty() &&
         std::all_of(host.begin(), host.end(),
                     [](char c) { return absl::ascii_isdigit(c) || c == '.'; });
}

// Host name patterns for hostname and sni selectors: "api.example.com" or
// "*.example.com"; lower-cased.
absl::StatusOr<std::string> CanonicalNamePattern(std::string_view text,
                                                 std::string_view what) {
  std::string name = absl::AsciiStrToLower(Av(text));
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        Cat(Quote(text), " is not a ", what, " pattern: ", why));
  };
  if (name.empty()) return bad("empty");
  if (name.size() > kMaxNameBytes) return bad("longer than 63 bytes");
  std::string_view rest = name;
  if (rest.substr(0, 2) == "*.") rest.remove_prefix(2);
  if (rest.empty()) return bad("\"*.\" needs a domain after it");
  if (LooksLikeIpv4(name)) {
    return bad("digits and dots only: an address, not a name (an address "
               "goes in target, e.g. tcp://10.0.0.1)");
  }
  for (char c : rest) {
    if (c == '*') return bad("'*' is only allowed as a leading \"*.\"");
    if (!absl::ascii_isalnum(c) && c != '-' && c != '.' && c != '_') {
      return bad(Cat("unexpected character ", Quote(std::string_view(&c, 1)),
                     " (use letters, digits, '-', '.' and a leading \"*.\")"));
    }
  }
  if (rest.front() == '.' || rest.back() == '.' ||
      rest.find("..") != std::string_view::npos) {
    return bad("empty label");
  }
  return name;
}

// A tiny reader of the call form "deny(\"EACCES\", path=\"/data/*\")".
class CallReader {
 public:
  explicit CallReader(std::string_view text) : text_(text), rest_(text) {}

  absl::StatusOr<YAML::Node> Read() {
    SkipSpace();
    std::string action = Ident();
    if (action.empty()) {
      return Bad("expected deny(ERRNO) or delay(DURATION), e.g. deny(ENOSPC)");
    }
    if (action != "deny" && action != "delay") {
      return Bad(Cat("unknown action ", Quote(action),
                     " (use deny(ERRNO) or delay(DURATION))"));
    }
    SkipSpace();
    if (!Take('(')) return Bad(Cat("expected \"(\" after ", action));
    YAML::Node node(YAML::NodeType::Map);
    bool positional_done = false;
    SkipSpace();
    if (!Take(')')) {
      while (true) {
        SkipSpace();
        std::string key;
        std::string_view save = rest_;
        std::string ident = Ident();
        SkipSpace();
        if (!ident.empty() && Take('=')) {
          key = ident;
        } else {
          rest_ = save;
        }
        SkipSpace();
        absl::StatusOr<std::string> value = Value();
        if (!value.ok()) return value.status();
        if (key.empty()) {
          if (positional_done) {
            return Bad("only the first argument may be given without a name");
          }
          positional_done = true;
          key = action;
        }
        if (node[key]) return Bad(Cat(key, " given twice"));
        node[key] = *value;
        SkipSpace();
        if (Take(')')) break;
        if (!Take(',')) return Bad("expected \",\" or \")\"");
      }
    }
    SkipSpace();
    if (!rest_.empty())
      return Bad(Cat("unexpected ", Quote(rest_), " after \")\""));
    if (!positional_done) {
      return Bad(action == "deny"
                     ? "deny needs an errno name, e.g. deny(ENOSPC)"
                     : "delay needs a duration, e.g. delay(10ms)");
    }
    return node;
  }

 private:
  absl::Status Bad(std::string_view why) {
    return absl::InvalidArgumentError(
        Cat(Quote(text_), " is not a syscall fault: ", why));
  }
  void SkipSpace() {
    while (!rest_.empty() && (rest_[0] == ' ' || rest_[0] == '\t')) {
      rest_.remove_prefix(1);
    }
  }
  bool Take(char c) {
    if (rest_.empty() || rest_[0] != c) return false;
    rest_.remove_prefix(1);
    return true;
  }
  std::string Ident() {
    size_t n = 0;
    while (n < rest_.size() &&
           (absl::ascii_isalnum(rest_[n]) || rest_[n] == '_')) {
      ++n;
    }
    std::string out(rest_.substr(0, n));
    rest_.remove_prefix(n);
    return out;
  }
  absl::StatusOr<std::string> Value() {
    if (!rest_.empty() && (rest_[0] == '"' || rest_[0] == '\'')) {
      const char q = rest_[0];
      rest_.remove_prefix(1);
      std::string out;
      while (!rest_.empty() && rest_[0] != q) {
        if (rest_[0] == '\\' && rest_.size() > 1) rest_.remove_prefix(1);
        out += rest_[0];
        rest_.remove_prefix(1);
      }
      if (!Take(q)) return Bad("unterminated string");
      return out;
    }
    size_t n = 0;
    while (n < rest_.size() && rest_[n] != ',' && rest_[n] != ')') ++n;
    std::string out(absl::StripAsciiWhitespace(Av(rest_.substr(0, n))));
    rest_.remove_prefix(n);
    if (out.empty()) return Bad("empty argument");
    return out;
  }

  std::string_view text_;
  std::string_view rest_;
};

// ---------------------------------------------------------------------------
// The node -> proto parser.

class Parser {
 public:
  explicit Parser(ParseContext& ctx) : ctx_(ctx) {}

  using Handler = std::function<void(const YAML::Node&, const std::string&)>;
  struct Field {
    std::string_view name;
    Handler parse;
    std::string_view alias = {};
  };

  void Policy(const YAML::Node& body, fault::v1::Policy* out);

 private:
  // Scalars.
  bool Scalar(const YAML::Node& n, const std::string& path, std::string* out) {
    if (n.IsScalar()) {
      *out = n.Scalar();
      return true;
    }
    if (n.IsNull()) {
      ctx_.Fail(n, path, "missing value");
    } else {
      ctx_.Fail(n, path, Cat("expected a single value, got ", Describe(n)));
    }
    return false;
  }

  template <typename T, typename F>
  bool Unit(const YAML::Node& n, const std::string& path, T* out, F parse) {
    std::string text;
    if (!Scalar(n, path, &text)) return false;
    auto v = parse(text);
    if (!v.ok()) {
      ctx_.Fail(n, path, std::string(v.status().message()));
      return false;
    }
    *out = static_cast<T>(*v);
    return true;
  }
  bool Duration(const YAML::Node& n, const std::string& path, int64_t* out) {
    return Unit(n, path, out, ParseDuration);
  }
  bool Probability(const YAML::Node& n, const std::string& path,
                   uint32_t* out) {
    return Unit(n, path, out, ParseProbability);
  }
  bool Rate(const YAML::Node& n, const std::string& path, uint64_t* out) {
    return Unit(n, path, out, ParseRate);
  }
  bool Size(const YAML::Node& n, const std::string& path, uint64_t* out) {
    return Unit(n, path, out, ParseSize);
  }
  bool Count(const YAML::Node& n, const std::string& path,
             std::string_view what, uint64_t max, uint64_t* out) {
    std::string text;
    if (!Scalar(n, path, &text)) return false;
    uint64_t v;
    if (text.empty() || !absl::ascii_isdigit(text[0]) ||
        !absl::SimpleAtoi(Av(text), &v)) {
      ctx_.Fail(
          n, path,
          Cat(Quote(text), " is not ", what, ": expected a whole number"));
      return false;
    }
    if (v > max) {
      ctx_.Fail(n, path, Cat(Quote(text), " is not ", what, ": above ", max));
      return false;
    }
    *out = v;
    return true;
  }
  bool Bool(const YAML::Node& n, const std::string& path, bool* out) {
    std::string text;
    if (!Scalar(n, path, &text)) return false;
    if (text == "true") {
      *out = true;
    } else if (text == "false") {
      *out = false;
    } else {
      ctx_.Fail(n, path,
                Cat(Quote(text), " is not a boolean: use true or false"));
      return false;
    }
    return true;
  }
  bool Errno(const YAML::Node& n, const std::string& path, std::string* out) {
    std::string text;
    if (!Scalar(n, path, &text)) return false;
    absl::StatusOr<int> e = ErrnoFromName(text);
    if (!e.ok()) {
      ctx_.Fail(n, path, std::string(e.status().message()));
      return false;
    }
    *out = text == "EWOULDBLOCK" || text == "EDEADLOCK" || text == "ENOTSUP"
               ? std::string(ErrnoName(*e))
               : text;
    return true;
  }
  bool Number(const YAML::Node& n, const std::string& path, double* out) {
    std::string text;
    if (!Scalar(n, path, &text)) return false;
    double v;
    if (!absl::SimpleAtod(Av(text), &v) || !std::isfinite(v)) {
      ctx_.Fail(n, path, Cat(Quote(text), " is not a number"));
      return false;
    }
    *out = v;
    return true;
  }
  // One of `names`; returns the index.
  bool Choice(const YAML::Node& n, const std::string& path,
              std::string_view what, const std::vector<std::string_view>& names,
              size_t* out) {
    std::string text;
    if (!Scalar(n, path, &text)) return false;
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == text) {
        *out = i;
        return true;
      }
    }
    std::string msg = Cat("unknown ", what, " ", Quote(text), " (use ",
                          JoinWords(names, " or "), ")");
    ctx_.Fail(n, path, msg);
    return false;
  }

  // Maps. Unknown and repeated keys are problems; returns false when `n` is
  // not a map at all.
  bool Map(const YAML::Node& n, const std::string& path,
           const std::vector<Field>& fields) {
    if (!n.IsMap()) {
      ctx_.Fail(n, path, Cat("expected a map, got ", Describe(n)));
      return false;
    }
    absl::flat_hash_map<std::string_view, std::string> seen;
    bool clean = true;
    for (auto it = n.begin(); it != n.end(); ++it) {
      const YAML::Node key = it->first;
      const YAML::Node value = it->second;
      if (!key.IsScalar()) {
        ctx_.Fail(key, path, Cat("expected a field name, got ", Describe(key)));
        clean = false;
        continue;
      }
      const std::string& name = key.Scalar();
      const Field* field = nullptr;
      for (const Field& f : fields) {
        if (f.name == name || (!f.alias.empty() && f.alias == name)) {
          field = &f;
          break;
        }
      }
      if (field == nullptr) {
        std::vector<std::string_view> names;
        for (const Field& f : fields) names.push_back(f.name);
        std::string msg = Cat("unknown field ", Quote(name));
        const std::string suggestion = Suggest(name, names);
        if (!suggestion.empty()) {
          Append(&msg, " (did you mean ", Quote(suggestion), "?)");
        } else if (names.size() <= 12) {
          Append(&msg, " (known fields: ", JoinWords(names, ", "), ")");
        }
        ctx_.Fail(key, path, msg);
        clean = false;
        continue;
      }
      const std::string field_path = Join(path, field->name);
      auto [prev, inserted] = seen.emplace(field->name, name);
      if (!inserted) {
        ctx_.Fail(key, field_path,
                  prev->second == name
                      ? std::string("given more than once")
                      : Cat("given twice (as ", Quote(prev->second), " and ",
                            Quote(name), ")"));
        clean = false;
        continue;
      }
      ctx_.Note(field_path, value);
      field->parse(value, field_path);
    }
    // Unknown or repeated keys: callers skip their "needs ..." checks, which
    // would mostly repeat the same mistake.
    return clean;
  }

  void AddLinkFields(std::vector<Field>* fields, LinkProfile* link);
  void Latency(const YAML::Node& n, const std::string& path,
               fault::v1::Latency* out);
  void Target(const YAML::Node& n, const std::string& path,
              fault::v1::Target* out);
  void Syscalls(const YAML::Node& n, const std::string& path,
                fault::v1::Policy* out);
  void SyscallRule(const YAML::Node& key, const YAML::Node& value,
                   const std::string& path, fault::v1::Policy* out);
  void SyscallSpec(const FamilyEntry& family, const YAML::Node& spec,
                   const std::string& path, fault::v1::Policy* out);
  void Partitions(const YAML::Node& n, const std::string& path,
                  fault::v1::Policy* out);
  void Schedule(const YAML::Node& n, const std::string& path,
                fault::v1::Schedule* out);
  void SessionBudget(const YAML::Node& n, const std::string& path,
                     fault::v1::SessionBudget* out);
  void PayloadMutation(const YAML::Node& n, const std::string& path,
                       fault::v1::PayloadMutation* out);
  void HttpError(const YAML::Node& n, const std::string& path,
                 fault::v1::HttpError* out);
  // http_faults, redis_faults, postgres_faults: a list of maps.
  template <typename Item>
  void FaultList(const YAML::Node& n, const std::string& path,
                 std::string_view example,
                 const std::function<void(const YAML::Node&, const std::string&)>& item);
  void HttpFault(const YAML::Node& n, const std::string& path,
                 fault::v1::HttpFault* out);
  void RedisFault(const YAML::Node& n, const std::string& path,
                  fault::v1::RedisFault* out);
  void PostgresFault(const YAML::Node& n, const std::string& path,
                     fault::v1::PostgresFault* out);

  ParseContext& ctx_;
};

void Parser::Latency(const YAML::Node& n, const std::string& path,
                     fault::v1::Latency* out) {
  if (n.IsScalar()) {
    int64_t v;
    if (Duration(n, path, &v)) {
      out->set_distribution(Latency::DISTRIBUTION_FIXED);
      out->set_fixed_ns(v);
    }
    return;
  }
  size_t dist = 0;
  bool has_dist = false;
  std::map<std::string, std::string> given;  // field -> its path
  auto duration = [&](std::string_view name, auto setter) {
    return Field{name, [this, &given, name, setter, out](const YAML::Node& v,
                                                         const std::string& p) {
                   given[std::string(name)] = p;
                   int64_t ns;
                   if (Duration(v, p, &ns)) (out->*setter)(ns);
                 }};
  };
  static const std::vector<std::string_view> kDistributions = {
      "fixed", "uniform", "normal", "pareto", "pareto_normal"};
  const bool is_map =
      Map(n, path,
          {{"distribution",
            [&](const YAML::Node& v, const std::string& p) {
              has_dist = Choice(v, p, "distribution", kDistributions, &dist);
              if (!has_dist) given["distribution"] = "";  // already reported
            }},
           duration("value", &Latency::set_fixed_ns),
           duration("min", &Latency::set_min_ns),
           duration("max", &Latency::set_max_ns),
           duration("mean", &Latency::set_mean_ns),
           duration("stddev", &Latency::set_stddev_ns),
           {"shape",
            [&](const YAML::Node& v, const std::string& p) {
              given["shape"] = p;
              double d;
              if (Number(v, p, &d)) out->set_shape(d);
            }},
           duration("scale", &Latency::set_scale_ns)});
  if (!is_map) return;
  if (!has_dist) {
    if (given.count("distribution") == 0) {
      ctx_.Fail(n, path,
                "distribution is required (fixed, uniform, normal, pareto or "
                "pareto_normal)");
    }
    return;
  }
  static const std::vector<std::vector<std::string_view>> kFields = {
      {"value"},
      {"min", "max"},
      {"mean", "stddev"},
      {"shape", "scale"},
      {"mean", "stddev", "shape", "scale"}};
  const auto& wanted = kFields[dist];
  out->set_distribution(static_cast<Latency::Distribution>(dist + 1));
  std::vector<std::string_view> missing;
  for (std::string_view f : wanted) {
    if (given.count(std::string(f)) == 0) missing.push_back(f);
  }
  if (!missing.empty()) {
    ctx_.Fail(n, path,
              Cat(kDistributions[dist], " latency needs ",
                  JoinWords(missing, " and ")));
  }
  for (const auto& [name, p] : given) {
    if (name == "distribution") continue;
    if (std::find(wanted.begin(), wanted.end(), name) == wanted.end()) {
      ctx_.Fail(p, Cat(name, " does not apply to ", kDistributions[dist],
                       " latency (it takes ", JoinWords(wanted, " and "), ")"));
    }
  }
}

void Parser::AddLinkFields(std::vector<Field>* fields, LinkProfile* link) {
  fields->push_back(
      {"latency", [this, link](const YAML::Node& v, const std::string& p) {
         Latency(v, p, link->mutable_latency());
       }});
  fields->push_back(
      {"jitter", [this, link](const YAML::Node& v, const std::string& p) {
         int64_t ns;
         if (Duration(v, p, &ns)) link->set_jitter_ns(ns);
       }});
  fields->push_back(
      {"packet_loss", [this, link](const YAML::Node& v, const std::string& p) {
         uint32_t ppm;
         if (Probability(v, p, &ppm)) link->set_packet_loss_ppm(ppm);
       }});
  fields->push_back(
      {"burst_loss", [this, link](const YAML::Node& v, const std::string& p) {
         uint64_t count;
         if (Count(v, p, "a packet count", kMaxBurstLoss, &count)) {
           link->set_burst_loss(static_cast<uint32_t>(count));
         }
       }});
  fields->push_back(
      {"correlated_loss",
       [this, link](const YAML::Node& v, const std::string& p) {
         auto* cl = link->mutable_correlated_loss();
         bool g2b = false, b2g = false, loss_bad = false;
         auto prob = [this](bool* seen, auto setter,
                            fault::v1::CorrelatedLoss* m) {
           return [this, seen, setter, m](const YAML::Node& v,
                                          const std::string& p) {
             uint32_t ppm;
             *seen = true;
             if (Probability(v, p, &ppm)) (m->*setter)(ppm);
           };
         };
         bool loss_good = false;
         if (!Map(
                 v, p,
                 {{"p_good_to_bad",
                   prob(&g2b, &fault::v1::CorrelatedLoss::set_p_good_to_bad_ppm,
                        cl)},
                  {"p_bad_to_good",
                   prob(&b2g, &fault::v1::CorrelatedLoss::set_p_bad_to_good_ppm,
                        cl)},
                  {"loss_good",
                   prob(&loss_good,
                        &fault::v1::CorrelatedLoss::set_loss_good_ppm, cl)},
                  {"loss_bad",
                   prob(&loss_bad, &fault::v1::CorrelatedLoss::set_loss_bad_ppm,
                        cl)}})) {
           return;
         }
         if (!g2b || !b2g) {
           std::vector<std::string_view> missing;
           if (!g2b) missing.push_back("p_good_to_bad");
           if (!b2g) missing.push_back("p_bad_to_good");
           ctx_.Fail(v, p, Cat("needs ", JoinWords(missing, " and ")));
         }
         if (!loss_bad) cl->set_loss_bad_ppm(1'000'000);
       }});
  fields->push_back(
      {"rate", [this, link](const YAML::Node& v, const std::string& p) {
         auto* rate = link->mutable_rate();
         if (v.IsScalar()) {
           uint64_t bps;
           if (Rate(v, p, &bps)) rate->set_rate_bps(bps);
           return;
         }
         bool has_rate = false;
         if (Map(v, p,
                 {{"rate",
                   [&](const YAML::Node& x, const std::string& xp) {
                     has_rate = true;
                     uint64_t bps;
                     if (Rate(x, xp, &bps)) rate->set_rate_bps(bps);
                   }},
                  {"burst",
                   [&](const YAML::Node& x, const std::string& xp) {
                     uint64_t b;
                     if (Size(x, xp, &b)) rate->set_burst_bytes(b);
                   }}}) &&
             !has_rate) {
           ctx_.Fail(v, p, "needs rate, e.g. {rate: 1mbps, burst: 16kb}");
         }
       }});
  fields->push_back(
      {"packet_reorder",
       [this, link](const YAML::Node& v, const std::string& p) {
         auto* r = link->mutable_packet_reorder();
         r->set_window(1);
         if (v.IsScalar()) {
           uint32_t ppm;
           if (Probability(v, p, &ppm)) r->set_probability_ppm(ppm);
           return;
         }
         bool has_prob = false;
         if (Map(v, p,
                 {{"prob",
                   [&](const YAML::Node& x, const std::string& xp) {
                     has_prob = true;
                     uint32_t ppm;
                     if (Probability(x, xp, &ppm)) r->set_probability_ppm(ppm);
                   },
                   "probability"},
                  {"window",
                   [&](const YAML::Node& x, const std::string& xp) {
                     uint64_t w;
                     if (Count(x, xp, "a packet count", 1000, &w)) {
                       r->set_window(static_cast<uint32_t>(w));
                     }
                   }},
                  {"max_delay",
                   [&](const YAML::Node& x, const std::string& xp) {
                     int64_t ns;
                     if (Duration(x, xp, &ns)) r->set_max_delay_ns(ns);
                   }}}) &&
             !has_prob) {
           ctx_.Fail(v, p, "needs prob, e.g. {prob: 5%, window: 3}");
         }
       }});
  fields->push_back(
      {"packet_duplicate",
       [this, link](const YAML::Node& v, const std::string& p) {
         auto* d = link->mutable_packet_duplicate();
         if (v.IsScalar()) {
           uint32_t ppm;
           if (Probability(v, p, &ppm)) d->set_probability_ppm(ppm);
           return;
         }
         bool has_prob = false;
         if (Map(v, p,
                 {{"prob",
                   [&](const YAML::Node& x, const std::string& xp) {
                     has_prob = true;
                     uint32_t ppm;
                     if (Probability(x, xp, &ppm)) d->set_probability_ppm(ppm);
                   },
                   "probability"}}) &&
             !has_prob) {
           ctx_.Fail(v, p, "needs prob, e.g. {prob: 1%}");
         }
       }});
}

void Parser::Target(const YAML::Node& n, const std::string& path,
                    fault::v1::Target* out) {
  std::string url;
  bool has_url = false;
  YAML::Node url_node;
  std::string hostname, sni;
  YAML::Node hostname_node, sni_node;
  if (n.IsScalar()) {
    url = n.Scalar();
    has_url = true;
    url_node = n;
  } else if (!Map(n, path,
                  {{"target",
                    [&](const YAML::Node& v, const std::string& p) {
                      has_url = Scalar(v, p, &url);
                      url_node = v;
                    }},
                   {"hostname",
                    [&](const YAML::Node& v, const std::string& p) {
                      if (!Scalar(v, p, &hostname)) return;
                      auto name = CanonicalNamePattern(hostname, "hostname");
                      if (!name.ok()) {
                        ctx_.Fail(v, p, std::string(name.status().message()));
                        return;
                      }
                      out->set_hostname(*name);
                    }},
                   {"sni",
                    [&](const YAML::Node& v, const std::string& p) {
                      if (!Scalar(v, p, &sni)) return;
                      auto name = CanonicalNamePattern(sni, "sni");
                      if (!name.ok()) {
                        ctx_.Fail(v, p, std::string(name.status().message()));
                        return;
                      }
                      out->set_sni(*name);
                    }},
                   {"priority", [&](const YAML::Node& v, const std::string& p) {
                      std::string text;
                      if (!Scalar(v, p, &text)) return;
                      int64_t prio;
                      if (!absl::SimpleAtoi(Av(text), &prio) || text.empty() ||
                          text[0] == '+' || text[0] == ' ') {
                        ctx_.Fail(
                            v, p,
                            Cat(Quote(text),
                                " is not a priority: expected a whole number"));
                        return;
                      }
                      if (prio < -kMaxPriority || prio > kMaxPriority) {
                        ctx_.Fail(v, p,
                                  Cat(Quote(text),
                                      " is not a priority: out of range (",
                                      -kMaxPriority, "..", kMaxPriority, ")"));
                        return;
                      }
                      out->set_priority(static_cast<int32_t>(prio));
                    }}})) {
    return;
  }
  std::vector<std::string> source;
  if (has_url) {
    absl::StatusOr<fault::v1::Target> t = ParseTargetUrl(url);
    if (!t.ok()) {
      ctx_.Fail(url_node, n.IsScalar() ? path : Join(path, "target"),
                std::string(t.status().message()));
    } else {
      if (!t->hostname().empty() && !hostname.empty()) {
        ctx_.Fail(url_node, Join(path, "target"),
                  Cat(Quote(url),
                      " names a host and hostname is given too; use one"));
      }
      out->set_protocol(t->protocol());
      out->set_cidr(t->cidr());
      if (!t->hostname().empty()) out->set_hostname(t->hostname());
      out->set_port_min(t->port_min());
      out->set_port_max(t->port_max());
    }
    source.push_back(url);
  } else if (hostname.empty() && sni.empty()) {
    if (n.IsMap()) {
      ctx_.Fail(n, path, "needs target, hostname or sni");
    }
    return;
  } else {
    // Without a URL: sni can only be seen on TCP; a hostname on any transport.
    out->set_protocol(sni.empty() ? fault::v1::PROTOCOL_ANY
                                  : fault::v1::PROTOCOL_TCP);
  }
  if (!hostname.empty()) source.push_back(Cat("hostname=", hostname));
  if (!sni.empty()) source.push_back(Cat("sni=", sni));
  std::string joined;
  for (const auto& s : source) Append(&joined, joined.empty() ? "" : " ", s);
  out->set_source(joined);
}

void Parser::SyscallSpec(const FamilyEntry& family, const YAML::Node& spec,
                         const std::string& path, fault::v1::Policy* out) {
  const std::string model_path = Index("syscalls", out->syscalls_size());
  SyscallFault* rule = out->add_syscalls();
  ctx_.Note(model_path, spec);
  rule->set_family(family.family);
  rule->set_probability_ppm(1'000'000);
  bool deny = false, delay = false;
  if (!Map(spec, path,
           {{"deny",
             [&](const YAML::Node& v, const std::string& p) {
               deny = true;
               rule->set_action(SyscallFault::ACTION_DENY);
               std::string name;
               if (Errno(v, p, &name)) rule->set_errno_name(name);
             }},
            {"delay",
             [&](const YAML::Node& v, const std::string& p) {
               delay = true;
               rule->set_action(SyscallFault::ACTION_DELAY);
               int64_t ns;
               if (Duration(v, p, &ns)) rule->set_delay_ns(ns);
             }},
            {"path",
             [&](const YAML::Node& v, const std::string& p) {
               ctx_.Note(model_path + ".path", v);
               std::string glob;
               if (Scalar(v, p, &glob)) rule->set_path_glob(glob);
               if (glob.empty() && v.IsScalar()) {
                 ctx_.Fail(
                     v, p,
                     "empty path glob (leave path out to match every path)");
               }
             }},
            {"probability",
             [&](const YAML::Node& v, const std::string& p) {
               uint32_t ppm;
               if (Probability(v, p, &ppm)) rule->set_probability_ppm(ppm);
             },
             "prob"},
            {"when", [&](const YAML::Node& v, const std::string& p) {
               std::string text;
               if (!Scalar(v, p, &text)) return;
               absl::StatusOr<When> w = ParseWhen(text);
               if (!w.ok()) {
                 ctx_.Fail(v, p, std::string(w.status().message()));
                 return;
               }
               *rule->mutable_when() = *w;
             }}})) {
    return;
  }
  if (deny && delay) {
    ctx_.Fail(
        spec, path,
        "deny and delay cannot be combined in one rule (write two rules)");
  } else if (!deny && !delay) {
    ctx_.Fail(spec, path,
              "needs deny or delay, e.g. {deny: ENOSPC} or {delay: 10ms}");
  }
}

void Parser::SyscallRule(const YAML::Node& key, const YAML::Node& value,
                         const std::string& path, fault::v1::Policy* out) {
  if (!key.IsScalar()) {
    ctx_.Fail(key, path, Cat("expected a syscall family, got ", Describe(key)));
    return;
  }
  const std::string& name = key.Scalar();
  const FamilyEntry* family = FindFamily(name);
  if (family == nullptr) {
    std::string msg = Cat("unknown syscall family ", Quote(name));
    const std::string s = Suggest(name, FamilyNames());
    if (!s.empty()) {
      Append(&msg, " (did you mean ", Quote(s), "?)");
    } else {
      Append(&msg, " (use ", JoinWords(FamilyNames(), " or "), ")");
    }
    ctx_.Fail(key, path, msg);
    return;
  }
  const std::string rule_path = Join(path, name);
  auto one = [&](const YAML::Node& spec, const std::string& p) {
    if (spec.IsScalar()) {
      absl::StatusOr<YAML::Node> call = CallReader(spec.Scalar()).Read();
      if (!call.ok()) {
        ctx_.Fail(spec, p, std::string(call.status().message()));
        return;
      }
      ctx_.set_fallback(spec.Mark());
      SyscallSpec(*family, *call, p, out);
      ctx_.set_fallback(YAML::Mark::null_mark());
    } else {
      SyscallSpec(*family, spec, p, out);
    }
  };
  if (value.IsSequence()) {
    if (value.size() == 0) ctx_.Fail(value, rule_path, "empty list of rules");
    for (size_t i = 0; i < value.size(); ++i) {
      ctx_.Note(Index(rule_path, i), value[i]);
      one(value[i], Index(rule_path, i));
    }
  } else {
    one(value, rule_path);
  }
}

void Parser::Syscalls(const YAML::Node& n, const std::string& path,
                      fault::v1::Policy* out) {
  if (n.IsSequence()) {
    if (n.size() == 0) {
      ctx_.Fail(n, path, "empty list (leave syscalls out for none)");
    }
    for (size_t i = 0; i < n.size(); ++i) {
      const YAML::Node item = n[i];
      const std::string p = Index(path, i);
      ctx_.Note(p, item);
      if (!item.IsMap() || item.size() != 1) {
        ctx_.Fail(item, p,
                  Cat("expected a map with one syscall family, e.g. {write: "
                      "\"deny(ENOSPC)\"}, got ",
                      item.IsMap() ? Cat("a map with ", item.size(), " entries")
                                   : Describe(item)));
        continue;
      }
      auto it = item.begin();
      SyscallRule(it->first, it->second, p, out);
    }
    return;
  }
  if (n.IsMap()) {
    if (n.size() == 0)
      ctx_.Fail(n, path, "empty map (leave syscalls out for none)");
    absl::flat_hash_set<std::string> seen;
    for (auto it = n.begin(); it != n.end(); ++it) {
      if (it->first.IsScalar() && !seen.insert(it->first.Scalar()).second) {
        ctx_.Fail(it->first, Join(path, it->first.Scalar()),
                  "given more than once (give a list of rules instead)");
        continue;
      }
      SyscallRule(it->first, it->second, path, out);
    }
    return;
  }
  ctx_.Fail(n, path,
            Cat("expected a list like [{write: \"deny(ENOSPC)\"}] or a map "
                "like {write: {deny: ENOSPC}}, got ",
                Describe(n)));
}

void Parser::Partitions(const YAML::Node& n, const std::string& path,
                        fault::v1::Policy* out) {
  auto pair = [&](const YAML::Node& item, const std::string& p) {
    std::string a, b;
    if (item.IsSequence()) {
      if (item.size() != 2) {
        ctx_.Fail(item, p,
                  Cat("a partition names two processes, got ", item.size()));
        return;
      }
      if (Scalar(item[0], Index(p, 0), &a) &&
          Scalar(item[1], Index(p, 1), &b)) {
        auto* part = out->add_partitions();
        part->set_a(a);
        part->set_b(b);
      }
      return;
    }
    auto* part = out->add_partitions();
    Map(item, p,
        {{"a",
          [&](const YAML::Node& v, const std::string& vp) {
            if (Scalar(v, vp, &a)) part->set_a(a);
          }},
         {"b", [&](const YAML::Node& v, const std::string& vp) {
            if (Scalar(v, vp, &b)) part->set_b(b);
          }}});
  };
  if (!n.IsSequence()) {
    ctx_.Fail(
        n, path,
        Cat("expected a list: [a, b] or [[a, b], [c, d]], got ", Describe(n)));
    return;
  }
  if (n.size() == 0) {
    ctx_.Fail(n, path, "empty list (leave partition out for none)");
    return;
  }
  // [a, b]: one pair of names.
  if (n.size() == 2 && n[0].IsScalar() && n[1].IsScalar()) {
    pair(n, path);
    return;
  }
  for (size_t i = 0; i < n.size(); ++i) {
    ctx_.Note(Index(path, i), n[i]);
    pair(n[i], Index(path, i));
  }
}

}  // namespace

absl::StatusOr<std::vector<fault::v1::Interval>> ParseIntervalList(
    std::string_view text, const IntervalGrammar& grammar) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        Cat(Quote(text), " is not an interval list: ", why));
  };
  const bool proxy = grammar.proxy_rules;
  // One period as written; a missing key stays unset until the list's kind
  // (percentages or durations) is known.
  struct Bound {
    bool given = false, percent = false;
    uint32_t ppm = 0;
    int64_t ns = 0;
  };
  std::vector<std::pair<Bound, Bound>> periods;  // start, duration
  int kind = 0;  // 1: percentages, 2: durations
  bool mixed = false;
  for (absl::string_view item : absl::StrSplit(Av(text), ';')) {
    item = absl::StripAsciiWhitespace(item);
    if (item.empty())
      return bad("empty interval (expected start:..,duration:..)");
    Bound start, duration;
    for (absl::string_view part : absl::StrSplit(item, ',')) {
      part = absl::StripAsciiWhitespace(part);
      const size_t colon = part.find(':');
      if (colon == absl::string_view::npos) {
        return bad(Cat("expected key:value, got ",
                       Quote(std::string_view(part.data(), part.size()))));
      }
      const absl::string_view k =
          absl::StripAsciiWhitespace(part.substr(0, colon));
      const absl::string_view v =
          absl::StripAsciiWhitespace(part.substr(colon + 1));
      const std::string_view key(k.data(), k.size());
      const std::string_view value(v.data(), v.size());
      if (key != "start" && key != "duration") {
        return bad(
            Cat("unknown key ", Quote(key), " (use start and duration)"));
      }
      Bound& b = key == "start" ? start : duration;
      if (b.given) return bad(Cat(key, " given twice in one interval"));
      b.given = true;
      b.percent = !value.empty() && value.back() == '%';
      if (kind == 0) kind = b.percent ? 1 : 2;
      if ((kind == 1) != b.percent) {
        if (!proxy) {
          return bad("mixes percentages and durations (use one kind)");
        }
        mixed = true;
      }
      if (b.percent) {
        absl::StatusOr<uint32_t> ppm = ParseProbability(value);
        if (!ppm.ok()) return bad(Cat(key, ": ", ppm.status().message()));
        b.ppm = *ppm;
      } else {
        absl::StatusOr<int64_t> ns =
            grammar.duration ? grammar.duration(value) : ParseDuration(value);
        if (!ns.ok()) return bad(Cat(key, ": ", ns.status().message()));
        b.ns = *ns;
      }
    }
    if (!proxy && (!start.given || !duration.given)) {
      return bad(Cat("interval ",
                     Quote(std::string_view(item.data(), item.size())),
                     " needs both start and duration"));
    }
    periods.emplace_back(start, duration);
  }
  const int64_t run = grammar.run_duration_ns;
  if (proxy && kind != 0 && (kind == 1 || mixed) && run <= 0) {
    return bad(Cat("percentages need ", grammar.run_duration_name));
  }
  std::vector<fault::v1::Interval> out;
  for (size_t i = 0; i < periods.size(); ++i) {
    const auto& [start, duration] = periods[i];
    fault::v1::Interval iv;
    if (!mixed && kind == 1) {
      iv.set_start_ppm(start.ppm);
      if (duration.given) {
        iv.set_duration_ppm(duration.ppm);
      } else if (start.ppm < 1'000'000) {
        iv.set_duration_ppm(1'000'000 - start.ppm);
      } else {
        return bad(Cat("interval ", i + 1, " starts at the end of the run"));
      }
    } else {
      // Durations, or (proxy rules) a mix resolved against the run.
      auto ns = [&](const Bound& b) {
        return b.percent ? static_cast<int64_t>(static_cast<__int128>(run) *
                                                b.ppm / 1'000'000)
                         : b.ns;
      };
      iv.set_start_ns(ns(start));
      if (duration.given) {
        iv.set_duration_ns(ns(duration));
      } else if (run <= 0) {
        iv.set_duration_ns(std::numeric_limits<int64_t>::max() - iv.start_ns());
      } else if (iv.start_ns() < run) {
        iv.set_duration_ns(run - iv.start_ns());
      } else {
        return bad(
            Cat("interval ", i + 1, " starts at ",
                FormatDuration(iv.start_ns()), ", after the end of the run (",
                grammar.run_duration_name, " ", FormatDuration(run), ")"));
      }
    }
    out.push_back(iv);
  }
  return out;
}

namespace {

void Parser::Schedule(const YAML::Node& n, const std::string& path,
                      fault::v1::Schedule* out) {
  static const std::vector<std::string_view> kKinds = {
      "always", "ramp", "spike", "flapping", "intervals"};
  size_t kind = 0;
  bool has_kind = false, kind_failed = false;
  std::map<std::string, std::string> given;
  auto duration = [&](std::string_view name, auto setter) {
    return Field{name, [this, &given, name, setter, out](const YAML::Node& v,
                                                         const std::string& p) {
                   given[std::string(name)] = p;
                   int64_t ns;
                   if (Duration(v, p, &ns)) (out->*setter)(ns);
                 }};
  };
  if (!Map(n, path,
           {{"kind",
             [&](const YAML::Node& v, const std::string& p) {
               has_kind = Choice(v, p, "schedule kind", kKinds, &kind);
               kind_failed = !has_kind;
             }},
            duration("every", &Schedule::set_every_ns),
            duration("duration", &Schedule::set_duration_ns),
            duration("on", &Schedule::set_on_ns),
            duration("off", &Schedule::set_off_ns),
            duration("run_duration", &Schedule::set_run_duration_ns),
            {"intervals", [&](const YAML::Node& v, const std::string& p) {
               given["intervals"] = p;
               std::string text;
               if (!Scalar(v, p, &text)) return;
               auto ivs = ParseIntervalList(text, IntervalGrammar{});
               if (!ivs.ok()) {
                 ctx_.Fail(v, p, std::string(ivs.status().message()));
                 return;
               }
               for (const auto& iv : *ivs) *out->add_intervals() = iv;
             }}})) {
    return;
  }
  if (!has_kind) {
    if (!kind_failed) {
      ctx_.Fail(
          n, path,
          "kind is required (always, ramp, spike, flapping or intervals)");
    }
    return;
  }
  out->set_kind(static_cast<Schedule::Kind>(kind + 1));
  static const std::vector<std::vector<std::string_view>> kRequired = {
      {}, {"duration"}, {"every", "duration"}, {"on", "off"}, {"intervals"}};
  static const std::vector<std::vector<std::string_view>> kAllowed = {
      {},
      {"duration"},
      {"every", "duration"},
      {"on", "off"},
      {"intervals", "run_duration"}};
  std::vector<std::string_view> missing;
  for (std::string_view f : kRequired[kind]) {
    if (given.count(std::string(f)) == 0) missing.push_back(f);
  }
  if (!missing.empty()) {
    ctx_.Fail(n, path,
              Cat(kKinds[kind], " needs ", JoinWords(missing, " and ")));
  }
  for (const auto& [name, p] : given) {
    const auto& allowed = kAllowed[kind];
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      ctx_.Fail(
          p, Cat(name, " does not apply to a ", kKinds[kind], " schedule",
                 allowed.empty()
                     ? std::string()
                     : Cat(" (it takes ", JoinWords(allowed, " and "), ")")));
    }
  }
  if (kind == 1) {  // ramp: "duration" is the ramp length
    out->set_ramp_ns(out->duration_ns());
    out->clear_duration_ns();
  }
}

void Parser::SessionBudget(const YAML::Node& n, const std::string& path,
                           fault::v1::SessionBudget* out) {
  auto size = [&](std::string_view name, auto setter) {
    return Field{
        name, [this, setter, out](const YAML::Node& v, const std::string& p) {
          uint64_t b;
          if (Size(v, p, &b)) (out->*setter)(b);
        }};
  };
  auto duration = [&](std::string_view name, auto setter) {
    return Field{
        name, [this, setter, out](const YAML::Node& v, const std::string& p) {
          int64_t ns;
          if (Duration(v, p, &ns)) (out->*setter)(ns);
        }};
  };
  out->set_action(SessionBudget::ACTION_DROP);
  Map(n, path,
      {size("max_tx", &SessionBudget::set_max_tx_bytes),
       size("max_rx", &SessionBudget::set_max_rx_bytes),
       {"max_ops",
        [&](const YAML::Node& v, const std::string& p) {
          uint64_t c;
          if (Count(v, p, "an operation count",
                    std::numeric_limits<uint64_t>::max(), &c)) {
            out->set_max_ops(c);
          }
        }},
       duration("max_duration", &SessionBudget::set_max_duration_ns),
       {"action",
        [&](const YAML::Node& v, const std::string& p) {
          size_t a;
          if (Choice(v, p, "action", {"drop", "timeout", "connection_error"},
                     &a)) {
            out->set_action(static_cast<SessionBudget::Action>(a + 1));
          }
        }},
       duration("budget_timeout", &SessionBudget::set_budget_timeout_ns),
       {"error", [&](const YAML::Node& v, const std::string& p) {
          std::string e;
          if (Errno(v, p, &e)) out->set_error(e);
        }}});
}

void Parser::PayloadMutation(const YAML::Node& n, const std::string& path,
                             fault::v1::PayloadMutation* out) {
  static const std::vector<std::string_view> kKinds = {
      "truncate", "corrupt_bytes", "inject_bytes", "replace_pattern",
      "swap_bytes"};
  bool has_kind = false, kind_failed = false, has_prob = false;
  size_t kind = 0;
  std::map<std::string, std::string> given;
  auto note = [&given](std::string_view name, const std::string& p) {
    given[std::string(name)] = p;
  };
  if (!Map(n, path,
           {{"kind",
             [&](const YAML::Node& v, const std::string& p) {
               has_kind = Choice(v, p, "mutation kind", kKinds, &kind);
               kind_failed = !has_kind;
             }},
            {"prob",
             [&](const YAML::Node& v, const std::string& p) {
               has_prob = true;
               note("prob", p);
               uint32_t ppm;
               if (Probability(v, p, &ppm)) out->set_probability_ppm(ppm);
             },
             "probability"},
            {"every_n",
             [&](const YAML::Node& v, const std::string& p) {
               note("every_n", p);
               uint64_t c;
               if (Count(v, p, "a count", std::numeric_limits<uint32_t>::max(),
                         &c)) {
                 out->set_every_n(static_cast<uint32_t>(c));
               }
             }},
            {"min_size",
             [&](const YAML::Node& v, const std::string& p) {
               uint64_t b;
               if (Size(v, p, &b)) out->set_min_size_bytes(b);
             }},
            {"max_size",
             [&](const YAML::Node& v, const std::string& p) {
               uint64_t b;
               if (Size(v, p, &b)) out->set_max_size_bytes(b);
             }},
            {"direction",
             [&](const YAML::Node& v, const std::string& p) {
               size_t d;
               if (Choice(v, p, "direction", {"both", "uplink", "downlink"},
                          &d)) {
                 out->set_direction(static_cast<fault::v1::Direction>(d + 1));
               }
             }},
            {"dry_run",
             [&](const YAML::Node& v, const std::string& p) {
               bool b;
               if (Bool(v, p, &b)) out->set_dry_run(b);
             }},
            {"truncate_to",
             [&](const YAML::Node& v, const std::string& p) {
               note("truncate_to", p);
               uint64_t b;
               if (Size(v, p, &b)) out->set_truncate_to_bytes(b);
             }},
            {"count",
             [&](const YAML::Node& v, const std::string& p) {
               note("count", p);
               uint64_t c;
               if (Count(v, p, "a byte count", 1'000'000, &c)) {
                 out->set_count(static_cast<uint32_t>(c));
               }
             }},
            {"offset",
             [&](const YAML::Node& v, const std::string& p) {
               note("offset", p);
               uint64_t b;
               if (Size(v, p, &b)) out->set_offset(b);
             }},
            {"pattern",
             [&](const YAML::Node& v, const std::string& p) {
               note("pattern", p);
               std::string s;
               if (Scalar(v, p, &s)) out->set_pattern(s);
             }},
            {"data", [&](const YAML::Node& v, const std::string& p) {
               note("data", p);
               std::string s;
               if (Scalar(v, p, &s)) out->set_data(s);
             }}})) {
    return;
  }
  if (!has_kind) {
    if (!kind_failed) {
      ctx_.Fail(n, path,
                "kind is required (truncate, corrupt_bytes, inject_bytes, "
                "replace_pattern or swap_bytes)");
    }
    return;
  }
  out->set_kind(static_cast<PayloadMutation::Kind>(kind + 1));
  if (!has_prob && given.count("every_n") == 0)
    out->set_probability_ppm(1'000'000);
  if (out->direction() == fault::v1::DIRECTION_UNSPECIFIED) {
    out->set_direction(fault::v1::DIRECTION_BOTH);
  }
  static const std::vector<std::vector<std::string_view>> kRequired = {
      {"truncate_to"}, {}, {"data"}, {"pattern"}, {}};
  static const std::vector<std::vector<std::string_view>> kAllowed = {
      {"truncate_to"},
      {"count"},
      {"data", "offset"},
      {"pattern", "data"},
      {"count"}};
  std::vector<std::string_view> missing;
  for (std::string_view f : kRequired[kind]) {
    if (given.count(std::string(f)) == 0) missing.push_back(f);
  }
  if (!missing.empty()) {
    ctx_.Fail(n, path,
              Cat(kKinds[kind], " needs ", JoinWords(missing, " and ")));
  }
  for (const auto& [name, p] : given) {
    if (name == "prob" || name == "every_n") continue;
    const auto& allowed = kAllowed[kind];
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      ctx_.Fail(p, Cat(name, " does not apply to kind ", kKinds[kind]));
    }
  }
  if ((kind == 1 || kind == 4) && given.count("count") == 0) out->set_count(1);
  if (has_prob && given.count("every_n") != 0) {
    ctx_.Fail(given["every_n"],
              "prob and every_n cannot be combined (use one)");
  }
}

template <typename Item>
void Parser::FaultList(
    const YAML::Node& n, const std::string& path, std::string_view example,
    const std::function<void(const YAML::Node&, const std::string&)>& item) {
  if (!n.IsSequence()) {
    ctx_.Fail(n, path, Cat("expected a list like ", example, ", got ", Describe(n)));
    return;
  }
  if (n.size() == 0) {
    ctx_.Fail(n, path, "empty list (leave it out for none)");
    return;
  }
  for (size_t i = 0; i < n.size(); ++i) {
    const std::string p = Index(path, i);
    ctx_.Note(p, n[i]);
    item(n[i], p);
  }
}

void Parser::HttpFault(const YAML::Node& n, const std::string& path,
                       fault::v1::HttpFault* out) {
  out->set_probability_ppm(1'000'000);
  bool has_route = false;
  Map(n, path,
      {{"route",
        [&](const YAML::Node& v, const std::string& p) {
          std::string text;
          if (!Scalar(v, p, &text)) return;
          has_route = true;
          std::vector<std::string> parts =
              absl::StrSplit(text, ' ', absl::SkipEmpty());
          if (parts.size() == 1 && !parts[0].empty() && parts[0][0] == '/') {
            out->set_path(parts[0]);
          } else if (parts.size() == 2 && parts[1][0] == '/') {
            bool token = !parts[0].empty();
            for (char ch : parts[0]) token &= absl::ascii_isupper(ch) || ch == '*';
            if (!token) {
              ctx_.Fail(v, p, Cat(Quote(text), ": the method ", Quote(parts[0]),
                                  " is not an HTTP method in upper case (or *)"));
              return;
            }
            if (parts[0] != "*") out->set_method(parts[0]);
            out->set_path(parts[1]);
          } else {
            ctx_.Fail(v, p, Cat(Quote(text),
                                " is not a route: expected \"METHOD /path-glob\" or "
                                "\"/path-glob\", e.g. \"GET /api/*\""));
          }
        }},
       {"status",
        [&](const YAML::Node& v, const std::string& p) {
          uint64_t code;
          if (!Count(v, p, "an HTTP status", kMaxHttpStatus, &code)) return;
          if (code < kMinHttpStatus) {
            ctx_.Fail(v, p, Cat(code, " is not an HTTP status: out of range (",
                                kMinHttpStatus, "..", kMaxHttpStatus, ")"));
            return;
          }
          out->set_status(static_cast<uint32_t>(code));
        }},
       {"body",
        [&](const YAML::Node& v, const std::string& p) {
          std::string text;
          if (Scalar(v, p, &text)) out->set_body(text);
        }},
       {"drop",
        [&](const YAML::Node& v, const std::string& p) {
          bool b;
          if (Bool(v, p, &b)) out->set_drop(b);
        }},
       {"delay",
        [&](const YAML::Node& v, const std::string& p) {
          int64_t ns;
          if (Duration(v, p, &ns)) out->set_delay_ns(ns);
        }},
       {"probability",
        [&](const YAML::Node& v, const std::string& p) {
          uint32_t ppm;
          if (Probability(v, p, &ppm)) out->set_probability_ppm(ppm);
        },
        "prob"}});
  if (n.IsMap() && !has_route)
    ctx_.Fail(n, path, "needs route (\"METHOD /path-glob\", e.g. \"GET /api/*\")");
}

void Parser::RedisFault(const YAML::Node& n, const std::string& path,
                        fault::v1::RedisFault* out) {
  out->set_probability_ppm(1'000'000);
  auto command = [&](const YAML::Node& v, const std::string& p) {
    std::string text;
    if (!Scalar(v, p, &text)) return;
    bool ok = !text.empty();
    for (char& ch : text) {
      ok &= absl::ascii_isalpha(ch) || ch == '_' || ch == '.' || ch == '|';
      ch = absl::ascii_toupper(ch);
    }
    if (!ok) {
      ctx_.Fail(v, p, Cat(Quote(text), " is not a Redis command name"));
      return;
    }
    out->add_commands(text);
  };
  Map(n, path,
      {{"command",
        [&](const YAML::Node& v, const std::string& p) {
          if (!v.IsSequence()) return command(v, p);
          if (v.size() == 0) ctx_.Fail(v, p, "empty list (leave command out for any)");
          for (size_t i = 0; i < v.size(); ++i) command(v[i], Index(p, i));
        },
        "commands"},
       {"key",
        [&](const YAML::Node& v, const std::string& p) {
          std::string text;
          if (Scalar(v, p, &text)) out->set_key(text);
        }},
       {"error",
        [&](const YAML::Node& v, const std::string& p) {
          std::string text;
          if (!Scalar(v, p, &text)) return;
          if (absl::StartsWith(text, "-")) text.erase(0, 1);
          out->set_error(text);
        }},
       {"drop",
        [&](const YAML::Node& v, const std::string& p) {
          bool b;
          if (Bool(v, p, &b)) out->set_drop(b);
        }},
       {"delay",
        [&](const YAML::Node& v, const std::string& p) {
          int64_t ns;
          if (Duration(v, p, &ns)) out->set_delay_ns(ns);
        }},
       {"probability",
        [&](const YAML::Node& v, const std::string& p) {
          uint32_t ppm;
          if (Probability(v, p, &ppm)) out->set_probability_ppm(ppm);
        },
        "prob"}});
}

void Parser::PostgresFault(const YAML::Node& n, const std::string& path,
                           fault::v1::PostgresFault* out) {
  out->set_probability_ppm(1'000'000);
  bool has_query = false;
  Map(n, path,
      {{"query",
        [&](const YAML::Node& v, const std::string& p) {
          std::string text;
          if (Scalar(v, p, &text)) {
            has_query = true;
            out->set_query(text);
          }
        }},
       {"sqlstate",
        [&](const YAML::Node& v, const std::string& p) {
          std::string text;
          if (!Scalar(v, p, &text)) return;
          bool ok = text.size() == 5;
          for (char ch : text) ok &= absl::ascii_isdigit(ch) || absl::ascii_isupper(ch);
          if (!ok) {
            ctx_.Fail(v, p, Cat(Quote(text), " is not a SQLSTATE: five digits or "
                                             "upper-case letters, e.g. \"40001\""));
            return;
          }
          out->set_sqlstate(text);
        }},
       {"message",
        [&](const YAML::Node& v, const std::string& p) {
          std::string text;
          if (Scalar(v, p, &text)) out->set_message(text);
        }},
       {"drop",
        [&](const YAML::Node& v, const std::string& p) {
          bool b;
          if (Bool(v, p, &b)) out->set_drop(b);
        }},
       {"delay",
        [&](const YAML::Node& v, const std::string& p) {
          int64_t ns;
          if (Duration(v, p, &ns)) out->set_delay_ns(ns);
        }},
       {"probability",
        [&](const YAML::Node& v, const std::string& p) {
          uint32_t ppm;
          if (Probability(v, p, &ppm)) out->set_probability_ppm(ppm);
        },
        "prob"}});
  if (n.IsMap() && !has_query)
    ctx_.Fail(n, path, "needs query (a glob on the query text, e.g. \"INSERT *\", or \"*\")");
}

void Parser::HttpError(const YAML::Node& n, const std::string& path,
                       fault::v1::HttpError* out) {
  out->set_probability_ppm(1'000'000);
  bool has_status = false;
  if (Map(n, path,
          {{"status",
            [&](const YAML::Node& v, const std::string& p) {
              has_status = true;
              std::string text;
              if (!Scalar(v, p, &text)) return;
              uint64_t code;
              if (text.empty() || !absl::ascii_isdigit(text[0]) ||
                  !absl::SimpleAtoi(Av(text), &code)) {
                ctx_.Fail(
                    v, p,
                    Cat(Quote(text),
                        " is not an HTTP status: expected a whole number"));
                return;
              }
              if (code < kMinHttpStatus || code > kMaxHttpStatus) {
                ctx_.Fail(
                    v, p,
                    Cat(Quote(text), " is not an HTTP status: out of range (",
                        kMinHttpStatus, "..", kMaxHttpStatus, ")"));
                return;
              }
              out->set_status(static_cast<uint32_t>(code));
            }},
           {"body",
            [&](const YAML::Node& v, const std::string& p) {
              std::string text;
              if (Scalar(v, p, &text)) out->set_body(text);
            }},
           {"probability",
            [&](const YAML::Node& v, const std::string& p) {
              uint32_t ppm;
              if (Probability(v, p, &ppm)) out->set_probability_ppm(ppm);
            },
            "prob"}}) &&
      !has_status) {
    ctx_.Fail(n, path,
              Cat("needs status (", kMinHttpStatus, "..", kMaxHttpStatus,
                  "), e.g. {status: 503}"));
  }
}

void Parser::Policy(const YAML::Node& body, fault::v1::Policy* out) {
  std::vector<Field> fields;
  AddLinkFields(&fields, out->mutable_link());
  for (const auto& entry : {std::pair<std::string_view, LinkProfile*>{
                                "uplink", out->mutable_uplink()},
                            std::pair<std::string_view, LinkProfile*>{
                                "downlink", out->mutable_downlink()}}) {
    const std::string_view name = entry.first;
    LinkProfile* const profile = entry.second;
    fields.push_back(
        {name, [this, profile](const YAML::Node& v, const std::string& p) {
           std::vector<Field> link_fields;
           AddLinkFields(&link_fields, profile);
           if (Map(v, p, link_fields) && v.size() == 0) {
             ctx_.Fail(v, p,
                       "empty profile (give latency, packet_loss, rate, ...)");
           }
         }});
  }
  fields.push_back(
      {"timeout", [this, out](const YAML::Node& v, const std::string& p) {
         auto* t = out->mutable_timeout();
         bool any = false;
         bool bad = false;  // a field already reported its own error
         if (Map(v, p,
                 {{"connect",
                   [&](const YAML::Node& x, const std::string& xp) {
                     any = true;
                     int64_t ns;
                     if (Duration(x, xp, &ns)) t->set_connect_ns(ns); else bad = true;
                   }},
                  {"recv",
                   [&](const YAML::Node& x, const std::string& xp) {
                     any = true;
                     int64_t ns;
                     if (Duration(x, xp, &ns)) t->set_recv_ns(ns); else bad = true;
                   }}}) &&
             (!any || (!bad && t->connect_ns() == 0 && t->recv_ns() == 0))) {
           ctx_.Fail(v, p, "needs connect and/or recv, e.g. {connect: 5s}");
         }
       }});
  fields.push_back(
      {"connection_error",
       [this, out](const YAML::Node& v, const std::string& p) {
         auto* ce = out->mutable_connection_error();
         ce->set_probability_ppm(1'000'000);
         static const std::vector<std::string_view> kKinds = {
             "reset", "refused", "unreachable"};
         size_t kind;
         if (v.IsScalar()) {
           if (Choice(v, p, "connection error kind", kKinds, &kind)) {
             ce->set_kind(static_cast<ConnectionError::Kind>(kind + 1));
           }
           return;
         }
         bool has_kind = false;
         if (Map(v, p,
                 {{"kind",
                   [&](const YAML::Node& x, const std::string& xp) {
                     has_kind = true;
                     if (Choice(x, xp, "connection error kind", kKinds,
                                &kind)) {
                       ce->set_kind(
                           static_cast<ConnectionError::Kind>(kind + 1));
                     }
                   }},
                  {"prob",
                   [&](const YAML::Node& x, const std::string& xp) {
                     uint32_t ppm;
                     if (Probability(x, xp, &ppm)) ce->set_probability_ppm(ppm);
                   },
                   "probability"}}) &&
             !has_kind) {
           ctx_.Fail(v, p,
                     "needs kind (reset, refused or unreachable), e.g. {kind: "
                     "reset, prob: 5%}");
         }
       }});
  fields.push_back(
      {"half_open", [this, out](const YAML::Node& v, const std::string& p) {
         auto* h = out->mutable_half_open();
         bool has_after = false;
         if (Map(v, p,
                 {{"after",
                   [&](const YAML::Node& x, const std::string& xp) {
                     has_after = true;
                     std::string text;
                     if (!Scalar(x, xp, &text)) return;
                     if (auto ns = ParseDuration(text); ns.ok()) {
                       h->set_after_ns(*ns);
                     } else if (auto b = ParseSize(text); b.ok()) {
                       h->set_after_bytes(*b);
                     } else {
                       ctx_.Fail(x, xp,
                                 Cat(Quote(text),
                                     " is neither a duration (e.g. 5s) "
                                     "nor a size (e.g. 16kb)"));
                     }
                   }},
                  {"error",
                   [&](const YAML::Node& x, const std::string& xp) {
                     std::string e;
                     if (Errno(x, xp, &e)) h->set_error(e);
                   }}}) &&
             !has_after) {
           ctx_.Fail(v, p,
                     "needs after (a size like 16kb or a duration like 5s)");
         }
       }});
  fields.push_back(
      {"blackhole", [this, out](const YAML::Node& v, const std::string& p) {
         bool b;
         if (Bool(v, p, &b)) out->set_blackhole(b);
       }});
  fields.push_back(
      {"blackhole_direction",
       [this, out](const YAML::Node& v, const std::string& p) {
         size_t d;
         if (Choice(v, p, "direction", {"both", "uplink", "downlink"}, &d)) {
           out->set_blackhole_direction(
               static_cast<fault::v1::Direction>(d + 1));
         }
       }});
  fields.push_back(
      {"per_operation", [this, out](const YAML::Node& v, const std::string& p) {
         bool b;
         if (Bool(v, p, &b)) out->set_per_operation(b);
       }});
  fields.push_back({"session_budget",
                    [this, out](const YAML::Node& v, const std::string& p) {
                      SessionBudget(v, p, out->mutable_session_budget());
                    }});
  fields.push_back({"payload_mutation",
                    [this, out](const YAML::Node& v, const std::string& p) {
                      PayloadMutation(v, p, out->mutable_payload_mutation());
                    }});
  fields.push_back(
      {"http_error", [this, out](const YAML::Node& v, const std::string& p) {
         HttpError(v, p, out->mutable_http_error());
       }});
  fields.push_back(
      {"http_faults", [this, out](const YAML::Node& v, const std::string& p) {
         FaultList<fault::v1::HttpFault>(
             v, p, "[{route: \"GET /api/*\", status: 503}]",
             [&](const YAML::Node& x, const std::string& xp) {
               HttpFault(x, xp, out->add_http_faults());
             });
       }});
  fields.push_back(
      {"redis_faults", [this, out](const YAML::Node& v, const std::string& p) {
         FaultList<fault::v1::RedisFault>(
             v, p, "[{command: SET, error: \"READONLY replica\"}]",
             [&](const YAML::Node& x, const std::string& xp) {
               RedisFault(x, xp, out->add_redis_faults());
             });
       }});
  fields.push_back(
      {"postgres_faults", [this, out](const YAML::Node& v, const std::string& p) {
         FaultList<fault::v1::PostgresFault>(
             v, p, "[{query: \"INSERT *\", sqlstate: \"40001\", message: ...}]",
             [&](const YAML::Node& x, const std::string& xp) {
               PostgresFault(x, xp, out->add_postgres_faults());
             });
       }});
  fields.push_back(
      {"dns", [this, out](const YAML::Node& v, const std::string& p) {
         auto* d = out->mutable_dns();
         bool bad = false;  // a field already reported its own error
         if (Map(v, p,
                 {{"delay",
                   [&](const YAML::Node& x, const std::string& xp) {
                     int64_t ns;
                     if (Duration(x, xp, &ns)) d->set_delay_ns(ns); else bad = true;
                   }},
                  {"timeout",
                   [&](const YAML::Node& x, const std::string& xp) {
                     uint32_t ppm;
                     if (Probability(x, xp, &ppm)) d->set_timeout_ppm(ppm); else bad = true;
                   }},
                  {"nxdomain",
                   [&](const YAML::Node& x, const std::string& xp) {
                     uint32_t ppm;
                     if (Probability(x, xp, &ppm)) d->set_nxdomain_ppm(ppm); else bad = true;
                   }}}) &&
             !bad && d->delay_ns() == 0 && d->timeout_ppm() == 0 && d->nxdomain_ppm() == 0) {
           // All zero is no effect: it would print as {} and not load again.
           ctx_.Fail(v, p, "needs delay, timeout and/or nxdomain");
         }
       }});
  fields.push_back(
      {"syscalls", [this, out](const YAML::Node& v, const std::string& p) {
         Syscalls(v, p, out);
       }});
  fields.push_back(
      {"partition", [this, out](const YAML::Node& v, const std::string& p) {
         Partitions(v, p, out);
       }});
  fields.push_back(
      {"targets", [this, out](const YAML::Node& v, const std::string& p) {
         if (!v.IsSequence()) {
           ctx_.Fail(v, p,
                     Cat("expected a list of targets, got ", Describe(v)));
           return;
         }
         if (v.size() == 0) {
           ctx_.Fail(v, p,
                     "must not be empty (leave targets out to match "
                     "all traffic)");
           return;
         }
         for (size_t i = 0; i < v.size(); ++i) {
           ctx_.Note(Index(p, i), v[i]);
           Target(v[i], Index(p, i), out->add_targets());
         }
       }});
  fields.push_back(
      {"schedule", [this, out](const YAML::Node& v, const std::string& p) {
         Schedule(v, p, out->mutable_schedule());
       }});
  fields.push_back(
      {"seed", [this, out](const YAML::Node& v, const std::string& p) {
         uint64_t seed;
         if (Count(v, p, "a seed", std::numeric_limits<uint64_t>::max(),
                   &seed)) {
           out->set_seed(seed);
         }
       }});
  if (body.IsNull()) {
    ctx_.Fail("", "no effect (give latency, packet_loss, syscalls, ...)");
    return;
  }
  Map(body, "", fields);
  // The field handlers create these as they go; an absent profile stays unset.
  if (out->link().ByteSizeLong() == 0) out->clear_link();
  if (out->uplink().ByteSizeLong() == 0) out->clear_uplink();
  if (out->downlink().ByteSizeLong() == 0) out->clear_downlink();
}

// ---------------------------------------------------------------------------
// Validation

bool ProfileEmpty(const LinkProfile& p) { return p.ByteSizeLong() == 0; }

std::string Describe(const fault::v1::Target& t) {
  return Quote(t.source().empty() ? FormatTargetUrl(t) : t.source());
}

void CheckProbability(ParseContext& ctx, const std::string& path,
                      uint32_t ppm) {
  if (ppm > 1'000'000) {
    ctx.Fail(path, Cat(ppm, "ppm is not a probability: above 100%"));
  }
}

void CheckDelay(ParseContext& ctx, const std::string& path, int64_t ns) {
  if (ns < 0) {
    ctx.Fail(path, Cat(ns, "ns: negative durations are not allowed"));
  } else if (ns > kMaxDelayNs) {
    ctx.Fail(path,
             Cat(FormatDuration(ns), " is above the 24h limit for one delay"));
  }
}

void CheckErrno(ParseContext& ctx, const std::string& path,
                const std::string& name, bool required) {
  if (name.empty()) {
    if (required) ctx.Fail(path, "missing errno name");
    return;
  }
  absl::StatusOr<int> e = ErrnoFromName(name);
  if (!e.ok()) ctx.Fail(path, std::string(e.status().message()));
}

void ValidateLatency(ParseContext& ctx, const std::string& path,
                     const fault::v1::Latency& l) {
  for (auto [name, v] : {std::pair<std::string_view, int64_t>{"", l.fixed_ns()},
                         {".min", l.min_ns()},
                         {".max", l.max_ns()},
                         {".mean", l.mean_ns()},
                         {".stddev", l.stddev_ns()},
                         {".scale", l.scale_ns()}}) {
    CheckDelay(ctx, Cat(path, name), v);
  }
  switch (l.distribution()) {
    case Latency::DISTRIBUTION_UNIFORM:
      if (l.min_ns() > l.max_ns()) {
        ctx.Fail(path, Cat("uniform min ", FormatDuration(l.min_ns()),
                           " is above max ", FormatDuration(l.max_ns())));
      }
      break;
    case Latency::DISTRIBUTION_PARETO:
    case Latency::DISTRIBUTION_PARETO_NORMAL:
      if (!(l.shape() > 0) || !std::isfinite(l.shape())) {
        ctx.Fail(Cat(path, ".shape"),
                 Cat("shape must be above 0, got ", l.shape()));
      }
      if (l.scale_ns() <= 0) {
        ctx.Fail(Cat(path, ".scale"), "scale must be above 0");
      }
      break;
    case Latency::DISTRIBUTION_FIXED:
    case Latency::DISTRIBUTION_NORMAL:
      break;
    default:
      ctx.Fail(path, "unknown latency distribution");
  }
}

void ValidateProfile(ParseContext& ctx, const std::string& prefix,
                     const LinkProfile& p) {
  auto path = [&](std::string_view f) { return Join(prefix, f); };
  if (p.has_latency()) ValidateLatency(ctx, path("latency"), p.latency());
  CheckDelay(ctx, path("jitter"), p.jitter_ns());
  CheckProbability(ctx, path("packet_loss"), p.packet_loss_ppm());
  if (p.burst_loss() > kMaxBurstLoss) {
    ctx.Fail(path("burst_loss"),
             Cat(p.burst_loss(), " is above ", kMaxBurstLoss));
  }
  if (p.has_correlated_loss()) {
    const auto& c = p.correlated_loss();
    for (auto [f, v] : {std::pair<std::string_view, uint32_t>{
                            "p_good_to_bad", c.p_good_to_bad_ppm()},
                        {"p_bad_to_good", c.p_bad_to_good_ppm()},
                        {"loss_good", c.loss_good_ppm()},
                        {"loss_bad", c.loss_bad_ppm()}}) {
      CheckProbability(ctx, Join(path("correlated_loss"), f), v);
    }
  }
  if (p.has_rate()) {
    if (p.rate().rate_bps() == 0) {
      ctx.Fail(path("rate"),
               "rate must be above 0 (use blackhole to stop all traffic)");
    }
    if (p.rate().burst_bytes() > (uint64_t{1} << 30)) {
      ctx.Fail(path("rate.burst"), Cat(FormatSize(p.rate().burst_bytes()),
                                       " is above the 1gb limit for a burst"));
    }
  }
  if (p.has_packet_reorder()) {
    CheckProbability(ctx, path("packet_reorder.prob"),
                     p.packet_reorder().probability_ppm());
    if (p.packet_reorder().window() == 0) {
      ctx.Fail(path("packet_reorder.window"), "window must be at least 1");
    }
    CheckDelay(ctx, path("packet_reorder.max_delay"),
               p.packet_reorder().max_delay_ns());
  }
  if (p.has_packet_duplicate()) {
    CheckProbability(ctx, path("packet_duplicate"),
                     p.packet_duplicate().probability_ppm());
  }
}

// Link effects as they apply in one direction: `link`, overridden field by
// field by the direction's profile.
LinkProfile Effective(const LinkProfile& link, const LinkProfile& dir) {
  LinkProfile out = link;
  out.MergeFrom(dir);
  return out;
}

void ValidateLossRules(ParseContext& ctx, const fault::v1::Policy& policy) {
  struct Named {
    std::string prefix;
    const LinkProfile* own;
    LinkProfile effective;
  };
  std::vector<Named> profiles = {{"", &policy.link(), policy.link()}};
  if (policy.has_uplink()) {
    profiles.push_back({"uplink", &policy.uplink(),
                        Effective(policy.link(), policy.uplink())});
  }
  if (policy.has_downlink()) {
    profiles.push_back({"downlink", &policy.downlink(),
                        Effective(policy.link(), policy.downlink())});
  }
  for (const Named& n : profiles) {
    // Report on the profile that introduced the problem.
    const bool own_loss = n.own->packet_loss_ppm() != 0;
    const bool own_corr = n.own->has_correlated_loss();
    const bool own_burst = n.own->burst_loss() != 0;
    if (n.effective.packet_loss_ppm() != 0 &&
        n.effective.has_correlated_loss() && (own_loss || own_corr)) {
      ctx.Fail(
          Join(n.prefix, own_corr ? "correlated_loss" : "packet_loss"),
          "packet_loss and correlated_loss cannot be combined (correlated_loss "
          "already sets the loss rate)");
    }
    if (n.effective.burst_loss() != 0 && n.effective.packet_loss_ppm() == 0 &&
        own_burst) {
      ctx.Fail(
          Join(n.prefix, "burst_loss"),
          "burst_loss needs packet_loss (it says how many packets are lost in "
          "a row once a loss starts)");
    }
  }
}

bool HasAnyEffect(const fault::v1::Policy& p) {
  return !ProfileEmpty(p.link()) || !ProfileEmpty(p.uplink()) ||
         !ProfileEmpty(p.downlink()) || p.has_timeout() ||
         p.has_connection_error() || p.has_half_open() || p.blackhole() ||
         p.has_session_budget() || p.has_payload_mutation() || p.has_dns() ||
         p.has_http_error() || p.http_faults_size() > 0 ||
         p.redis_faults_size() > 0 || p.postgres_faults_size() > 0 ||
         p.syscalls_size() > 0 || p.partitions_size() > 0;
}

bool HasTcpOnlyEffect(const fault::v1::Policy& p, std::string* which) {
  if (p.timeout().connect_ns() != 0) {
    *which = "timeout.connect";
  } else if (p.has_connection_error()) {
    *which = "connection_error";
  } else if (p.has_half_open()) {
    *which = "half_open";
  } else {
    return false;
  }
  return true;
}

bool HasDatagramOnlyEffect(const fault::v1::Policy& p, std::string* which) {
  for (auto [prefix, prof] :
       {std::pair<std::string_view, const LinkProfile*>{"", &p.link()},
        {"uplink", &p.uplink()},
        {"downlink", &p.downlink()}}) {
    if (prof->has_packet_reorder()) {
      *which = Join(std::string(prefix), "packet_reorder");
      return true;
    }
    if (prof->has_packet_duplicate()) {
      *which = Join(std::string(prefix), "packet_duplicate");
      return true;
    }
  }
  return false;
}

void ValidateTargets(ParseContext& ctx, const fault::v1::Policy& policy) {
  std::string tcp_only, datagram_only;
  const bool has_tcp_only = HasTcpOnlyEffect(policy, &tcp_only);
  const bool has_datagram_only = HasDatagramOnlyEffect(policy, &datagram_only);
  for (int i = 0; i < policy.targets_size(); ++i) {
    const fault::v1::Target& t = policy.targets(i);
    const std::string path = Index("targets", i);
    if (!t.hostname().empty() && !t.sni().empty()) {
      ctx.Fail(path,
               "hostname and sni cannot be combined in one target (use two "
               "targets)");
    }
    if (!t.cidr().empty() && (!t.hostname().empty() || !t.sni().empty())) {
      ctx.Fail(path, Cat("an address (", t.cidr(), ") cannot be combined with ",
                         t.hostname().empty() ? "sni" : "hostname",
                         " (select by address or by name, not both)"));
    }
    if (t.protocol() == fault::v1::PROTOCOL_UNSPECIFIED) {
      ctx.Fail(path, "missing protocol (tcp://, udp:// or any://)");
    }
    if (t.port_max() > 65535 || t.port_min() > 65535) {
      ctx.Fail(path, "port out of range (1..65535)");
    } else if (t.port_min() > t.port_max()) {
      ctx.Fail(path, Cat("port range ", t.port_min(), "-", t.port_max(),
                         " is reversed"));
    } else if (t.port_min() == 0 && t.port_max() != 0) {
      ctx.Fail(path, "port 0 is out of range (1..65535)");
    }
    if (t.priority() < -kMaxPriority || t.priority() > kMaxPriority) {
      ctx.Fail(Join(path, "priority"),
               Cat("priority ", t.priority(), " is out of range (",
                   -kMaxPriority, "..", kMaxPriority, ")"));
    }
    if (!t.sni().empty() && t.protocol() != fault::v1::PROTOCOL_TCP) {
      ctx.Fail(
          path,
          Cat("sni needs a tcp:// target (the TLS ClientHello is only seen "
              "on TCP), and ",
              Describe(t), " is not tcp"));
    }
    for (const std::string* name : {&t.hostname(), &t.sni()}) {
      if (name->empty()) continue;
      auto canon = CanonicalNamePattern(
          *name, name == &t.hostname() ? "hostname" : "sni");
      if (!canon.ok()) ctx.Fail(path, std::string(canon.status().message()));
    }
    if (has_tcp_only && t.protocol() == fault::v1::PROTOCOL_UDP) {
      ctx.Fail(tcp_only,
               Cat(tcp_only, " needs tcp:// or any:// targets, and ", path, " ",
                   Describe(t),
                   " is udp (UDP has no connection to time out, refuse or "
                   "half-close)"));
    }
    if ((policy.http_faults_size() > 0 || policy.redis_faults_size() > 0 ||
         policy.postgres_faults_size() > 0) &&
        t.protocol() == fault::v1::PROTOCOL_UDP) {
      ctx.Fail(policy.http_faults_size() > 0    ? "http_faults"
               : policy.redis_faults_size() > 0 ? "redis_faults"
                                                : "postgres_faults",
               Cat("protocol faults need tcp:// or any:// targets, and ", path, " ",
                   Describe(t), " is udp (their requests come over TCP)"));
    }
    if (policy.has_http_error() && t.protocol() == fault::v1::PROTOCOL_UDP) {
      ctx.Fail("http_error",
               Cat("http_error needs tcp:// or any:// targets, and ", path, " ",
                   Describe(t), " is udp (HTTP requests come over TCP)"));
    }
    if (has_datagram_only && t.protocol() == fault::v1::PROTOCOL_TCP) {
      ctx.Fail(datagram_only,
               Cat(datagram_only, " needs udp:// or any:// targets, and ", path,
                   " ", Describe(t),
                   " is tcp (a TCP stream never shows its packets reordered or "
                   "duplicated)"));
    }
    if (policy.has_dns()) {
      std::string by;
      if (!t.cidr().empty()) {
        by = "an address";
      } else if (!t.sni().empty()) {
        by = "sni";
      } else if (t.port_min() != 0) {
        by = "port";
      } else if (t.hostname().empty()) {
        by = "protocol only";
      } else if (t.protocol() != fault::v1::PROTOCOL_ANY) {
        by = "protocol";
      }
      if (!by.empty()) {
        ctx.Fail("dns",
                 Cat("DNS effects need hostname-only targets (a lookup has no "
                     "address, port or TLS yet), and ",
                     path, " ", Describe(t), " selects by ", by));
      }
    }
  }
}

void ValidateSchedule(ParseContext& ctx, const fault::v1::Schedule& s) {
  const std::string path = "schedule";
  for (auto [f, v] :
       {std::pair<std::string_view, int64_t>{"every", s.every_ns()},
        {"duration", s.duration_ns()},
        {"duration", s.ramp_ns()},
        {"on", s.on_ns()},
        {"off", s.off_ns()},
        {"run_duration", s.run_duration_ns()}}) {
    if (v < 0) ctx.Fail(Join(path, f), "negative durations are not allowed");
  }
  switch (s.kind()) {
    case Schedule::KIND_UNSPECIFIED:
    case Schedule::KIND_ALWAYS:
      break;
    case Schedule::KIND_RAMP:
      if (s.ramp_ns() <= 0)
        ctx.Fail(Join(path, "duration"), "a ramp needs a duration above 0");
      break;
    case Schedule::KIND_SPIKE:
      if (s.every_ns() <= 0) {
        ctx.Fail(Join(path, "every"), "a spike needs every above 0");
      } else if (s.duration_ns() <= 0) {
        ctx.Fail(Join(path, "duration"), "a spike needs a duration above 0");
      } else if (s.duration_ns() > s.every_ns()) {
        ctx.Fail(Join(path, "duration"),
                 Cat("spike duration ", FormatDuration(s.duration_ns()),
                     " is longer than every ", FormatDuration(s.every_ns())));
      }
      break;
    case Schedule::KIND_FLAPPING:
      if (s.on_ns() <= 0)
        ctx.Fail(Join(path, "on"), "flapping needs on above 0");
      if (s.off_ns() <= 0)
        ctx.Fail(Join(path, "off"), "flapping needs off above 0");
      break;
    case Schedule::KIND_INTERVALS: {
      if (s.intervals_size() == 0) {
        ctx.Fail(Join(path, "intervals"), "no intervals");
        break;
      }
      bool pct = false, abs = false;
      for (const auto& iv : s.intervals()) {
        pct |= iv.start_ppm() != 0 || iv.duration_ppm() != 0;
        abs |= iv.start_ns() != 0 || iv.duration_ns() != 0;
      }
      if (pct && abs) {
        ctx.Fail(Join(path, "intervals"),
                 "mixes percentages and durations (use one kind)");
        break;
      }
      if (pct && s.run_duration_ns() <= 0) {
        ctx.Fail(Join(path, "intervals"),
                 "percentages need a run duration: add run_duration (e.g. "
                 "run_duration: 60s)");
      }
      for (int i = 0; i < s.intervals_size(); ++i) {
        const auto& iv = s.intervals(i);
        const std::string p = Join(path, "intervals");
        if (pct) {
          if (iv.duration_ppm() == 0) {
            ctx.Fail(p, Cat("interval ", i + 1, " has a zero duration"));
          } else if (uint64_t{iv.start_ppm()} + iv.duration_ppm() > 1'000'000) {
            ctx.Fail(p, Cat("interval ", i + 1,
                            " ends after 100% of the run (start ",
                            FormatProbability(iv.start_ppm()), " + duration ",
                            FormatProbability(iv.duration_ppm()), ")"));
          }
        } else {
          if (iv.duration_ns() <= 0) {
            ctx.Fail(p, Cat("interval ", i + 1, " has a zero duration"));
          } else if (iv.start_ns() < 0) {
            ctx.Fail(p, Cat("interval ", i + 1, " starts before the run"));
          } else if (s.run_duration_ns() > 0 &&
                     iv.duration_ns() > s.run_duration_ns() - iv.start_ns()) {
            ctx.Fail(p, Cat("interval ", i + 1, " ends after run_duration ",
                            FormatDuration(s.run_duration_ns())));
          }
        }
      }
      break;
    }
    default:
      ctx.Fail(path, "unknown schedule kind");
  }
}

}  // namespace

void ValidateModel(const fault::v1::Policy& policy, ParseContext& ctx) {
  if (absl::Status s = CheckPolicyName(policy.name()); !s.ok()) {
    ctx.Fail("", std::string(s.message()));
  }
  // A direction without a black hole is a mistake worth naming on its own
  // (the policy would otherwise only have "no effect").
  const bool stray_direction =
      policy.blackhole_direction() != fault::v1::DIRECTION_UNSPECIFIED &&
      !policy.blackhole();
  if (stray_direction) {
    ctx.Fail("blackhole_direction",
             "blackhole_direction only applies to a black hole (add "
             "blackhole: true)");
  }
  if (!fault::v1::Direction_IsValid(policy.blackhole_direction())) {
    ctx.Fail("blackhole_direction", "unknown direction");
  }
  if (!HasAnyEffect(policy)) {
    if (!stray_direction) {
      ctx.Fail("", "no effect (give latency, packet_loss, syscalls, ...)");
    }
    return;
  }
  ValidateProfile(ctx, "", policy.link());
  if (policy.has_uplink()) ValidateProfile(ctx, "uplink", policy.uplink());
  if (policy.has_downlink())
    ValidateProfile(ctx, "downlink", policy.downlink());
  ValidateLossRules(ctx, policy);
  if (policy.has_timeout()) {
    const auto& t = policy.timeout();
    if (t.connect_ns() == 0 && t.recv_ns() == 0) {
      ctx.Fail("timeout", "needs connect and/or recv above 0");
    }
    CheckDelay(ctx, "timeout.connect", t.connect_ns());
    CheckDelay(ctx, "timeout.recv", t.recv_ns());
  }
  if (policy.has_connection_error()) {
    const auto& ce = policy.connection_error();
    if (ce.kind() == ConnectionError::KIND_UNSPECIFIED) {
      ctx.Fail("connection_error",
               "needs kind (reset, refused or unreachable)");
    }
    CheckProbability(ctx, "connection_error.prob", ce.probability_ppm());
  }
  if (policy.has_half_open()) {
    const auto& h = policy.half_open();
    if (h.after_bytes() != 0 && h.after_ns() != 0) {
      ctx.Fail("half_open.after", "give a size or a duration, not both");
    }
    if (h.after_ns() < 0)
      ctx.Fail("half_open.after", "negative durations are not allowed");
    CheckErrno(ctx, "half_open.error", h.error(), false);
  }
  if (policy.has_session_budget()) {
    const auto& b = policy.session_budget();
    if (b.max_tx_bytes() == 0 && b.max_rx_bytes() == 0 && b.max_ops() == 0 &&
        b.max_duration_ns() == 0) {
      ctx.Fail("session_budget",
               "needs max_tx, max_rx, max_ops or max_duration");
    }
    CheckDelay(ctx, "session_budget.max_duration", b.max_duration_ns());
    CheckDelay(ctx, "session_budget.budget_timeout", b.budget_timeout_ns());
    if (b.action() == SessionBudget::ACTION_TIMEOUT &&
        b.budget_timeout_ns() <= 0) {
      ctx.Fail("session_budget.action",
               "action timeout needs budget_timeout (how long to stall, e.g. "
               "budget_timeout: 30s)");
    }
    if (b.action() != SessionBudget::ACTION_TIMEOUT &&
        b.budget_timeout_ns() != 0) {
      ctx.Fail("session_budget.budget_timeout",
               "budget_timeout only applies to action timeout");
    }
    if (b.action() != SessionBudget::ACTION_CONNECTION_ERROR &&
        !b.error().empty()) {
      ctx.Fail("session_budget.error",
               "error only applies to action connection_error");
    }
    if (b.action() == SessionBudget::ACTION_UNSPECIFIED) {
      ctx.Fail("session_budget.action", "unknown action");
    }
    CheckErrno(ctx, "session_budget.error", b.error(), false);
  }
  if (policy.has_payload_mutation()) {
    const auto& m = policy.payload_mutation();
    const std::string p = "payload_mutation";
    if (m.kind() == PayloadMutation::KIND_UNSPECIFIED)
      ctx.Fail(p, "needs kind");
    CheckProbability(ctx, Join(p, "prob"), m.probability_ppm());
    if (m.probability_ppm() != 0 && m.every_n() != 0) {
      ctx.Fail(Join(p, "every_n"),
               "prob and every_n cannot be combined (use one)");
    }
    if (m.max_size_bytes() != 0 && m.min_size_bytes() > m.max_size_bytes()) {
      ctx.Fail(Join(p, "min_size"),
               Cat("min_size ", FormatSize(m.min_size_bytes()),
                   " is above max_size ", FormatSize(m.max_size_bytes())));
    }
    if (m.pattern().size() > kMaxPatternBytes) {
      ctx.Fail(Join(p, "pattern"),
               Cat("longer than ", kMaxPatternBytes, " bytes"));
    }
    if (m.data().size() > kMaxPatternBytes) {
      ctx.Fail(Join(p, "data"),
               Cat("longer than ", kMaxPatternBytes, " bytes"));
    }
    if (m.kind() == PayloadMutation::KIND_REPLACE_PATTERN &&
        m.pattern().empty()) {
      ctx.Fail(Join(p, "pattern"), "replace_pattern needs a non-empty pattern");
    }
    if ((m.kind() == PayloadMutation::KIND_CORRUPT_BYTES ||
         m.kind() == PayloadMutation::KIND_SWAP_BYTES) &&
        m.count() == 0) {
      ctx.Fail(Join(p, "count"), "count must be at least 1");
    }
  }
  if (policy.has_http_error()) {
    const auto& h = policy.http_error();
    if (h.status() == 0) {
      ctx.Fail("http_error", Cat("needs status (", kMinHttpStatus, "..",
                                 kMaxHttpStatus, ")"));
    } else if (h.status() < kMinHttpStatus || h.status() > kMaxHttpStatus) {
      ctx.Fail("http_error.status",
               Cat(h.status(), " is not an HTTP status: out of range (",
                   kMinHttpStatus, "..", kMaxHttpStatus, ")"));
    }
    // yaml-cpp decodes the escapes \N and \_ to single bytes, not UTF-8.
    if (InvalidUtf8(h.body()).has_value()) {
      ctx.Fail("http_error.body",
               "not UTF-8 text (write \\u0085 for a next-line character, "
               "\\u00a0 for a no-break space)");
    }
    if (h.body().size() > kMaxHttpBodyBytes) {
      ctx.Fail("http_error.body",
               Cat(h.body().size(), " bytes; a body is at most ",
                   kMaxHttpBodyBytes, " bytes"));
    }
    CheckProbability(ctx, "http_error.probability", h.probability_ppm());
  }
  auto no_line_breaks = [&](const std::string& path, const std::string& text) {
    if (text.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
      ctx.Fail(path, "has a line break or a NUL byte, which the protocol cannot carry");
  };
  for (int i = 0; i < policy.http_faults_size(); ++i) {
    const auto& h = policy.http_faults(i);
    const std::string p = Index("http_faults", i);
    const int answers = (h.status() != 0) + h.drop() + (h.delay_ns() != 0);
    if (answers != 1) {
      ctx.Fail(p, answers > 1 ? "give one of status, drop: true and delay"
                              : Cat("needs status (", kMinHttpStatus, "..",
                                    kMaxHttpStatus, "), drop: true or delay"));
    } else if (h.delay_ns() != 0) {
      CheckDelay(ctx, Join(p, "delay"), h.delay_ns());
    } else if (!h.drop() && (h.status() < kMinHttpStatus || h.status() > kMaxHttpStatus)) {
      ctx.Fail(Join(p, "status"), Cat(h.status(), " is not an HTTP status: out of range (",
                                      kMinHttpStatus, "..", kMaxHttpStatus, ")"));
    }
    if (h.status() == 0 && !h.body().empty())
      ctx.Fail(Join(p, "body"), "a body goes with status (leave body out)");
    if (InvalidUtf8(h.body()).has_value())
      ctx.Fail(Join(p, "body"), "not UTF-8 text");
    if (h.body().size() > kMaxHttpBodyBytes) {
      ctx.Fail(Join(p, "body"), Cat(h.body().size(), " bytes; a body is at most ",
                                    kMaxHttpBodyBytes, " bytes"));
    }
    if (h.path().empty() || h.path()[0] != '/')
      ctx.Fail(Join(p, "route"), "needs a path glob starting with /");
    if (h.path().size() > kMaxGlobBytes)
      ctx.Fail(Join(p, "route"), Cat("path glob longer than ", kMaxGlobBytes, " bytes"));
    CheckProbability(ctx, Join(p, "probability"), h.probability_ppm());
  }
  for (int i = 0; i < policy.redis_faults_size(); ++i) {
    const auto& r = policy.redis_faults(i);
    const std::string p = Index("redis_faults", i);
    const int answers = !r.error().empty() + r.drop() + (r.delay_ns() != 0);
    if (answers != 1) {
      ctx.Fail(p, answers > 1 ? "give one of error, drop: true and delay"
                              : "needs error (the reply, e.g. \"READONLY You can't write "
                                "against a read only replica.\"), drop: true or delay");
    } else if (r.delay_ns() != 0) {
      CheckDelay(ctx, Join(p, "delay"), r.delay_ns());
    }
    no_line_breaks(Join(p, "error"), r.error());
    if (r.key().size() > kMaxGlobBytes)
      ctx.Fail(Join(p, "key"), Cat("key glob longer than ", kMaxGlobBytes, " bytes"));
    CheckProbability(ctx, Join(p, "probability"), r.probability_ppm());
  }
  for (int i = 0; i < policy.postgres_faults_size(); ++i) {
    const auto& g = policy.postgres_faults(i);
    const std::string p = Index("postgres_faults", i);
    const bool answer = !g.sqlstate().empty() || !g.message().empty();
    const int answers = answer + g.drop() + (g.delay_ns() != 0);
    if (answers != 1) {
      ctx.Fail(p, answers > 1 ? "give one of sqlstate and message, drop: true and delay"
                              : "needs sqlstate and message (an ErrorResponse), drop: true "
                                "or delay");
    } else if (g.delay_ns() != 0) {
      CheckDelay(ctx, Join(p, "delay"), g.delay_ns());
    } else if (answer && g.sqlstate().empty()) {
      ctx.Fail(p, "needs sqlstate (five characters, e.g. \"40001\") with message");
    } else if (answer && g.message().empty()) {
      ctx.Fail(p, "needs message with sqlstate");
    }
    if (g.message().find('\0') != std::string::npos)
      ctx.Fail(Join(p, "message"), "has a NUL byte, which the protocol cannot carry");
    if (g.query().empty()) ctx.Fail(Join(p, "query"), "empty (use \"*\" for any query)");
    if (g.query().size() > kMaxGlobBytes)
      ctx.Fail(Join(p, "query"), Cat("query glob longer than ", kMaxGlobBytes, " bytes"));
    CheckProbability(ctx, Join(p, "probability"), g.probability_ppm());
  }
  if (policy.has_dns()) {
    CheckDelay(ctx, "dns.delay", policy.dns().delay_ns());
    CheckProbability(ctx, "dns.timeout", policy.dns().timeout_ppm());
    CheckProbability(ctx, "dns.nxdomain", policy.dns().nxdomain_ppm());
    if (uint64_t{policy.dns().timeout_ppm()} + policy.dns().nxdomain_ppm() >
        1'000'000) {
      ctx.Fail("dns", "timeout and nxdomain together are above 100%");
    }
  }
  for (int i = 0; i < policy.syscalls_size(); ++i) {
    const SyscallFault& r = policy.syscalls(i);
    const std::string p = Index("syscalls", i);
    const std::string_view fam = FamilyName(r.family());
    if (fam.empty()) {
      ctx.Fail(p, "unknown syscall family");
      continue;
    }
    switch (r.action()) {
      case SyscallFault::ACTION_DENY:
        CheckErrno(ctx, p, r.errno_name(), true);
        break;
      case SyscallFault::ACTION_DELAY:
        CheckDelay(ctx, p, r.delay_ns());
        break;
      default:
        ctx.Fail(p, "needs deny or delay");
    }
    CheckProbability(ctx, p, r.probability_ppm());
    if (!r.path_glob().empty() && !IsFileFamily(r.family())) {
      ctx.Fail(Join(p, "path"),
               Cat("path globs only apply to file families (",
                   FileFamilyNames(), "), not ", fam));
    }
    if (InvalidUtf8(r.path_glob()).has_value() ||
        std::any_of(r.path_glob().begin(), r.path_glob().end(), [](char c) {
          return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
        })) {
      ctx.Fail(Join(p, "path"),
               "path glob must be UTF-8 text without control characters");
    }
    if (r.path_glob().size() > kMaxGlobBytes) {
      ctx.Fail(Join(p, "path"),
               Cat("path glob longer than ", kMaxGlobBytes, " bytes"));
    }
    if (r.has_when()) {
      const When& w = r.when();
      if (w.first() == 0 || w.step() == 0 ||
          (w.last() != 0 && w.last() < w.first())) {
        ctx.Fail(Join(p, "when"),
                 Cat("invalid counter ", Quote(FormatWhen(w))));
      }
    }
  }
  for (int i = 0; i < policy.partitions_size(); ++i) {
    const auto& part = policy.partitions(i);
    const std::string p = Index("partition", i);
    if (part.a().empty() || part.b().empty()) {
      ctx.Fail(p, "a partition names two processes");
    } else if (part.a() == part.b()) {
      ctx.Fail(p, Cat("a partition needs two different processes, got ",
                      Quote(part.a()), " twice"));
    } else if (part.a().size() > kMaxNameBytes ||
               part.b().size() > kMaxNameBytes) {
      ctx.Fail(p, "process names are at most 63 bytes");
    }
  }
  ValidateTargets(ctx, policy);
  if (policy.has_schedule()) ValidateSchedule(ctx, policy.schedule());
}

void ParsePolicyBody(const YAML::Node& body, ParseContext& ctx,
                     fault::v1::Policy* out) {
  Parser(ctx).Policy(body, out);
}

absl::Status CheckPolicyName(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("empty policy name");
  if (name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        Cat("policy name ", Quote(name), " is longer than 63 bytes"));
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '-' && c != '.') {
      return absl::InvalidArgumentError(
          Cat("policy name ", Quote(name),
              " has an unexpected character (use letters, digits, '_', '-' and "
              "'.')"));
    }
  }
  return absl::OkStatus();
}

std::string Suggest(std::string_view word,
                    const std::vector<std::string_view>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (std::string_view c : candidates) {
    const size_t d = EditDistance(word, c);
    if (d < best_d) {
      best_d = d;
      best = std::string(c);
    }
  }
  return best;
}

std::string_view FamilyName(SyscallFault::Family family) {
  return fault::engine::FamilyName(static_cast<int>(family));
}

bool IsFileFamily(SyscallFault::Family family) {
  const int f = static_cast<int>(family);
  return f > 0 && f < fault::engine::kFamilyCount &&
         fault::engine::kFamilies[f].file;
}

absl::StatusOr<When> ParseWhen(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        Cat(Quote(text), " is not a when counter: ", why,
            " (use N, N+, N+STEP, FIRST..LAST or FIRST..LAST+STEP)"));
  };
  std::string_view rest = text;
  auto number = [&](uint64_t* out) {
    size_t n = 0;
    while (n < rest.size() && absl::ascii_isdigit(rest[n])) ++n;
    if (n == 0 || n > 18) return false;
    *out = 0;
    for (size_t i = 0; i < n; ++i) *out = *out * 10 + (rest[i] - '0');
    rest.remove_prefix(n);
    return true;
  };
  When w;
  uint64_t first;
  if (!number(&first)) return bad("expected a call number");
  if (first == 0) return bad("calls are counted from 1");
  w.set_first(first);
  w.set_last(first);
  w.set_step(1);
  if (rest.substr(0, 2) == "..") {
    rest.remove_prefix(2);
    uint64_t last;
    if (!number(&last)) return bad("expected a number after \"..\"");
    if (last < first)
      return bad(Cat("range ", first, "..", last, " is reversed"));
    w.set_last(last);
  }
  if (!rest.empty() && rest[0] == '+') {
    rest.remove_prefix(1);
    if (w.last() == w.first() && text.find("..") == std::string_view::npos) {
      w.set_last(0);  // "N+": no end
    }
    if (!rest.empty()) {
      uint64_t step;
      if (!number(&step)) return bad("expected a step after \"+\"");
      if (step == 0) return bad("step must be at least 1");
      w.set_step(step);
    }
  }
  if (!rest.empty()) return bad(Cat("unexpected ", Quote(rest)));
  return w;
}

std::string FormatWhen(const When& w) {
  std::string out = Cat(w.first());
  if (w.last() == 0) {
    Append(&out, "+");
    if (w.step() != 1) Append(&out, w.step());
    return out;
  }
  // "5" alone means first = last = 5 with step 1; any other step needs the
  // range spelled out ("5..5+2") to read back the same.
  if (w.last() != w.first() || w.step() != 1) Append(&out, "..", w.last());
  if (w.step() != 1) Append(&out, "+", w.step());
  return out;
}

absl::StatusOr<fault::v1::Target> ParseTargetUrl(std::string_view url) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        Cat(Quote(url), " is not a target: ", why));
  };
  fault::v1::Target t;
  t.set_source(std::string(url));
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) {
    return bad("missing scheme (use tcp://, udp:// or any://)");
  }
  const std::string_view scheme = url.substr(0, sep);
  if (scheme == "tcp") {
    t.set_protocol(fault::v1::PROTOCOL_TCP);
  } else if (scheme == "udp") {
    t.set_protocol(fault::v1::PROTOCOL_UDP);
  } else if (scheme == "any") {
    t.set_protocol(fault::v1::PROTOCOL_ANY);
  } else {
    return bad(Cat("unknown scheme ", Quote(scheme),
                   " (use tcp://, udp:// or any://)"));
  }
  std::string_view rest = url.substr(sep + 3);
  std::string_view host, prefix, port;
  bool has_prefix = false, has_port = false, v6 = false;
  if (!rest.empty() && rest[0] == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos)
      return bad("missing \"]\" after an IPv6 address");
    host = rest.substr(1, close - 1);
    v6 = true;
    rest.remove_prefix(close + 1);
    if (const size_t slash = host.find('/'); slash != std::string_view::npos) {
      prefix = host.substr(slash + 1);
      host = host.substr(0, slash);
      has_prefix = true;
    }
    if (!rest.empty() && rest[0] == '/') {
      if (has_prefix) return bad("two prefix lengths");
      const size_t colon = rest.find(':');
      prefix = rest.substr(1, colon == std::string_view::npos
                                  ? std::string_view::npos
                                  : colon - 1);
      has_prefix = true;
      rest.remove_prefix(colon == std::string_view::npos ? rest.size() : colon);
    }
    if (!rest.empty()) {
      if (rest[0] != ':')
        return bad(Cat("unexpected ", Quote(rest), " after \"]\""));
      port = rest.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = rest.rfind(':');
    if (colon != std::string_view::npos) {
      if (rest.substr(0, colon).find(':') != std::string_view::npos) {
        return bad("IPv6 addresses need brackets, e.g. tcp://[::1]:80");
      }
      port = rest.substr(colon + 1);
      has_port = true;
      rest = rest.substr(0, colon);
    }
    host = rest;
    if (const size_t slash = host.find('/'); slash != std::string_view::npos) {
      prefix = host.substr(slash + 1);
      host = host.substr(0, slash);
      has_prefix = true;
    }
  }
  if (has_port) {
    if (port.empty()) return bad("empty port after \":\"");
    std::string_view lo_text = port, hi_text = port;
    if (const size_t dash = port.find('-'); dash != std::string_view::npos) {
      lo_text = port.substr(0, dash);
      hi_text = port.substr(dash + 1);
    }
    uint32_t lo, hi;
    auto digits = [](std::string_view s) {
      return !s.empty() && s.size() <= 9 &&
             std::all_of(s.begin(), s.end(),
                         [](char c) { return absl::ascii_isdigit(c); });
    };
    if (!digits(lo_text) || !digits(hi_text) ||
        !absl::SimpleAtoi(Av(lo_text), &lo) ||
        !absl::SimpleAtoi(Av(hi_text), &hi)) {
      return bad(Cat("port ", Quote(port),
                     " is not a number or a range like 8000-8100"));
    }
    for (uint32_t p : {lo, hi}) {
      if (p == 0 || p > 65535)
        return bad(Cat("port ", p, " is out of range (1..65535)"));
    }
    if (lo > hi) return bad(Cat("port range ", lo, "-", hi, " is reversed"));
    t.set_port_min(lo);
    t.set_port_max(hi);
  }
  if (host.empty()) {
    if (has_prefix) return bad("a prefix length needs an address");
    return t;
  }
  const std::string host_str(host);
  unsigned char addr[16] = {};
  const int family = v6 ? AF_INET6 : AF_INET;
  const int bits = v6 ? 128 : 32;
  if (inet_pton(family, host_str.c_str(), addr) != 1) {
    if (v6) return bad(Cat(Quote(host), " is not an IPv6 address"));
    if (has_prefix) return bad(Cat(Quote(host), " is not an IPv4 address"));
    if (LooksLikeIpv4(host)) {
      return bad(Cat(Quote(host), " is not an IPv4 address: ", WhyNotIpv4(host)));
    }
    // A name: matched through getaddrinfo's answers, like `hostname`.
    absl::StatusOr<std::string> name = CanonicalNamePattern(host, "host name");
    if (!name.ok()) {
      return bad(
          Cat(Quote(host),
              " is not an IPv4 address, an [IPv6] address or a host name"));
    }
    t.set_hostname(*name);
    return t;
  }
  int len = bits;
  if (has_prefix) {
    if (prefix.empty() || prefix.size() > 3 ||
        !std::all_of(prefix.begin(), prefix.end(),
                     [](char c) { return absl::ascii_isdigit(c); }) ||
        !absl::SimpleAtoi(Av(prefix), &len) || len > bits) {
      return bad(Cat("prefix length ", Quote(prefix), " is not 0..", bits));
    }
  }
  unsigned char net[16];
  std::copy(addr, addr + 16, net);
  for (int b = len; b < bits; ++b) net[b / 8] &= ~(0x80 >> (b % 8));
  char text[INET6_ADDRSTRLEN];
  inet_ntop(family, net, text, sizeof(text));
  if (!std::equal(addr, addr + 16, net)) {
    char orig[INET6_ADDRSTRLEN];
    inet_ntop(family, addr, orig, sizeof(orig));
    return bad(Cat(orig, "/", len, " has host bits set (did you mean ", text,
                   "/", len, "?)"));
  }
  t.set_cidr(Cat(text, "/", len));
  return t;
}

std::string FormatTargetUrl(const fault::v1::Target& t) {
  std::string out;
  switch (t.protocol()) {
    case fault::v1::PROTOCOL_TCP:
      out = "tcp://";
      break;
    case fault::v1::PROTOCOL_UDP:
      out = "udp://";
      break;
    default:
      out = "any://";
  }
  const std::string& cidr = t.cidr();
  if (!cidr.empty()) {
    const size_t slash = cidr.find('/');
    const std::string addr = cidr.substr(0, slash);
    const std::string len =
        slash == std::string::npos ? "" : cidr.substr(slash + 1);
    const bool v6 = addr.find(':') != std::string::npos;
    const bool host =
        (v6 && len == "128") || (!v6 && len == "32") || len.empty();
    Append(&out, v6 ? "[" : "", addr, v6 ? "]" : "", host ? "" : Cat("/", len));
  }
  if (t.port_min() != 0) {
    Append(&out, ":", t.port_min());
    if (t.port_max() != t.port_min()) Append(&out, "-", t.port_max());
  }
  return out;
}

}  // namespace fault::policy::internal
