#include "supervisor/policy/loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "supervisor/cli/input_file.h"
#include "supervisor/policy/parser.h"
#include "supervisor/policy/strings.h"

namespace fault::policy {
namespace {

using internal::HasMark;
using internal::Problem;

constexpr size_t kMaxFileBytes = 1 << 20;
constexpr size_t kMaxReported = 50;

std::string Position(std::string_view filename, const YAML::Mark& m) {
  if (!HasMark(m)) return std::string(filename);
  return Cat(filename, ":", m.line + 1, ":", m.column + 1);
}

std::string Describe(const Problem& p) {
  std::string out;
  if (!p.policy.empty()) Append(&out, "policy ", Quote(p.policy), ": ");
  if (!p.path.empty()) Append(&out, p.path, ": ");
  Append(&out, p.message);
  return out;
}

absl::Status Combine(const std::vector<std::string>& messages) {
  if (messages.empty()) return absl::OkStatus();
  std::string text;
  for (size_t i = 0; i < messages.size() && i < kMaxReported; ++i) {
    if (i > 0) text += '\n';
    text += messages[i];
  }
  if (messages.size() > kMaxReported) {
    Append(&text, "\n... and ", messages.size() - kMaxReported, " more errors");
  }
  return absl::InvalidArgumentError(text);
}

bool LooksLikeJson(std::string_view text, std::string_view filename) {
  if (filename.size() >= 5 &&
      EqualsIgnoreCase(filename.substr(filename.size() - 5), ".json")) {
    return true;
  }
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    return c == '{';
  }
  return false;
}

// Strict JSON syntax check without building a document.
class JsonSyntaxCheck : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    failed = true;
    byte = position;
    message = ex.what();
    return false;
  }

  bool failed = false;
  size_t byte = 0;
  std::string message;
};

// "file.json:3:7: syntax error while parsing object - ..." from nlohmann's
// byte position (1-based count of bytes read).
std::optional<std::string> CheckJson(std::string_view text,
                                     std::string_view filename) {
  JsonSyntaxCheck check;
  try {
    nlohmann::json::sax_parse(text.begin(), text.end(), &check);
  } catch (const std::exception& e) {
    return Cat(filename, ": ", e.what());
  }
  if (!check.failed) return std::nullopt;
  size_t index = check.byte == 0 ? 0 : check.byte - 1;
  if (index > text.size()) index = text.size();
  size_t line = 1, column = 1;
  for (size_t i = 0; i < index; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  // nlohmann: "[json.exception.parse_error.101] parse error at line 1,
  // column 5: syntax error while parsing ..." -> keep the reason.
  std::string reason = check.message;
  if (size_t at = reason.find("column "); at != std::string::npos) {
    if (size_t colon = reason.find(": ", at); colon != std::string::npos) {
      reason = reason.substr(colon + 2);
    }
  }
  return Cat(filename, ":", line, ":", column, ": ", reason);
}

// The 1-based line of a "---" that starts a second YAML document, if any: a
// document marker after content (a leading one is allowed).
std::optional<size_t> SecondDocumentLine(std::string_view text) {
  bool content = false;
  size_t line = 0;
  for (absl::string_view l : absl::StrSplit(Av(text), '\n')) {
    ++line;
    const bool marker =
        absl::StartsWith(l, "---") &&
        (l.size() == 3 || l[3] == ' ' || l[3] == '\t' || l[3] == '\r');
    if (marker && content) return line;
    const absl::string_view trimmed = absl::StripAsciiWhitespace(l);
    if (!trimmed.empty() && trimmed[0] != '#' && !marker &&
        !absl::StartsWith(l, "%")) {
      content = true;
    }
  }
  return std::nullopt;
}

}  // namespace

namespace internal {
// The position of the first byte that is not valid UTF-8, if any. Policy
// files are UTF-8 text (YAML and JSON both require it).
std::optional<std::pair<size_t, size_t>> InvalidUtf8(std::string_view text) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xe  ? 3
                 : (c >> 3) == 0x1e ? 4
                                    : 0;
    bool ok = len != 0 && i + len <= text.size();
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
    }
    if (ok && len > 1) {
      // Overlong forms, surrogates and code points above U+10FFFF.
      uint32_t cp = c & (0xff >> (len + 1));
      for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (text[i + k] & 0x3f);
      static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[len] && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
    }
    if (!ok) return std::make_pair(line, column);
    if (c == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
    i += len;
  }
  return std::nullopt;
}
}  // namespace internal

namespace {

struct ParsedFile {
  fault::v1::PolicySet set;
  std::vector<std::string> positions;  // per policy, "file:line:column"
  std::vector<std::string> errors;
};

ParsedFile ParseFile(std::string_view text, std::string_view filename) {
  ParsedFile out;
  auto fail = [&](const YAML::Mark& m, std::string_view msg) {
    out.errors.push_back(Cat(Position(filename, m), ": ", msg));
  };
  if (text.size() > kMaxFileBytes) {
    out.errors.push_back(Cat(filename, ": too large (", text.size(),
                             " bytes; policy files are at most 1mb)"));
    return out;
  }
  if (auto bad = internal::InvalidUtf8(text)) {
    out.errors.push_back(Cat(filename, ":", bad->first, ":", bad->second,
                             ": not UTF-8 text (policy files are UTF-8)"));
    return out;
  }
  if (LooksLikeJson(text, filename)) {
    if (auto err = CheckJson(text, filename)) {
      out.errors.push_back(*err);
      return out;
    }
  }
  // YAML::LoadAll of yaml-cpp 0.7 can loop forever on some malformed input
  // (e.g. a stray ","), so read one document and find a second one by hand.
  if (std::optional<size_t> line = SecondDocumentLine(text)) {
    out.errors.push_back(Cat(filename, ":", *line,
                             ":1: more than one YAML document "
                             "(put every policy under one root map)"));
    return out;
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    fail(e.mark, e.msg);
    return out;
  } catch (const std::exception& e) {
    fail(YAML::Mark::null_mark(), e.what());
    return out;
  }
  if (!root.IsDefined() || root.IsNull()) {
    // A document marker after the text is a second document exactly when
    // the text had content.
    const bool has_content = SecondDocumentLine(Cat(text, "\n---")).has_value();
    fail(YAML::Mark::null_mark(),
         has_content ? "no policies (the text is not a YAML map; check for a "
                       "stray \",\", \"]\" or \"}\")"
                     : "no policies (the file is empty)");
    return out;
  }
  if (!root.IsMap()) {
    fail(root.Mark(),
         Cat("the root must be a map from policy name to policy, got ",
             root.IsSequence() ? std::string("a list") : Quote(root.Scalar())));
    return out;
  }
  if (root.size() == 0) {
    fail(root.Mark(), "no policies (the root map is empty)");
    return out;
  }
  std::vector<Problem> problems;
  std::map<std::string, std::string> defined;  // name -> position
  try {
    for (auto it = root.begin(); it != root.end(); ++it) {
      const YAML::Node key = it->first;
      if (!key.IsScalar()) {
        fail(key.Mark(), "a policy name must be a plain string");
        continue;
      }
      const std::string& name = key.Scalar();
      const std::string position = Position(filename, key.Mark());
      if (absl::Status s = internal::CheckPolicyName(name); !s.ok()) {
        fail(key.Mark(), std::string(s.message()));
        continue;
      }
      if (auto [prev, inserted] = defined.emplace(name, position); !inserted) {
        fail(key.Mark(), Cat("policy ", Quote(name), " is already defined at ",
                             prev->second));
        continue;
      }
      internal::ParseContext ctx(name, key.Mark(), &problems);
      fault::v1::Policy policy;
      policy.set_name(name);
      const size_t before = ctx.problem_count();
      internal::ParsePolicyBody(it->second, ctx, &policy);
      // Model rules only on what parsed: a field that failed to parse would
      // otherwise show up again as, say, "no effect".
      if (ctx.problem_count() == before) internal::ValidateModel(policy, ctx);
      *out.set.add_policies() = std::move(policy);
      out.positions.push_back(position);
    }
  } catch (const std::exception& e) {
    fail(YAML::Mark::null_mark(), Cat("internal error: ", e.what()));
  }
  for (const Problem& p : problems) {
    out.errors.push_back(Cat(Position(filename, p.mark), ": ", Describe(p)));
  }
  return out;
}

// --- Effect flags ----------------------------------------------------------

struct FlagSpec {
  std::string_view name;  // without "--"
  std::string_view type;  // shown in --help; "": a flag without a value
  std::string_view path;  // field path in the policy; "" for special flags
  std::string_view help;
  bool repeated = false;
};

constexpr FlagSpec kFlags[] = {
    {"latency", "DURATION", "latency",
     "Fixed delay per packet/operation, e.g. 50ms"},
    {"latency-distribution", "KIND", "latency.distribution",
     "Latency distribution: fixed, uniform, normal, pareto, pareto_normal"},
    {"latency-min", "DURATION", "latency.min", "Uniform latency: lower bound"},
    {"latency-max", "DURATION", "latency.max", "Uniform latency: upper bound"},
    {"latency-mean", "DURATION", "latency.mean",
     "Normal/pareto_normal latency: mean"},
    {"latency-stddev", "DURATION", "latency.stddev",
     "Normal/pareto_normal latency: standard deviation"},
    {"latency-shape", "NUMBER", "latency.shape",
     "Pareto latency: shape (alpha > 0)"},
    {"latency-scale", "DURATION", "latency.scale",
     "Pareto latency: scale (x_m, a duration)"},
    {"jitter", "DURATION", "jitter", "Latency variation, e.g. 10ms"},
    {"packet-loss", "PROB", "packet_loss",
     "Loss probability, e.g. 1% or 250ppm"},
    {"burst-loss", "N", "burst_loss",
     "Packets lost in a row once a loss starts (needs --packet-loss)"},
    {"rate", "RATE", "rate",
     "Bandwidth per connection and direction, e.g. 2mbps"},
    {"rate-burst", "SIZE", "rate.burst",
     "Token bucket size for --rate, e.g. 16kb"},
    {"packet-duplicate", "PROB", "packet_duplicate",
     "Duplicate probability (UDP), e.g. 1%"},
    {"uplink-latency", "DURATION", "uplink.latency",
     "Latency program -> peer only"},
    {"downlink-latency", "DURATION", "downlink.latency",
     "Latency peer -> program only"},
    {"uplink-jitter", "DURATION", "uplink.jitter",
     "Jitter program -> peer only"},
    {"downlink-jitter", "DURATION", "downlink.jitter",
     "Jitter peer -> program only"},
    {"uplink-packet-loss", "PROB", "uplink.packet_loss",
     "Loss program -> peer only"},
    {"downlink-packet-loss", "PROB", "downlink.packet_loss",
     "Loss peer -> program only"},
    {"uplink-rate", "RATE", "uplink.rate", "Bandwidth program -> peer only"},
    {"downlink-rate", "RATE", "downlink.rate",
     "Bandwidth peer -> program only"},
    {"connect-timeout", "DURATION", "timeout.connect",
     "connect waits this long, then ETIMEDOUT"},
    {"recv-timeout", "DURATION", "timeout.recv",
     "A receive waits this long, then fails"},
    {"connection-error", "KIND[:PROB]", "",
     "KIND[:PROB]: reset, refused or unreachable, e.g. reset:5%"},
    {"blackhole", "", "", "Drop all traffic of the targets"},
    {"blackhole-direction", "DIR", "blackhole_direction",
     "With --blackhole: the direction it swallows, uplink, downlink or both "
     "(default)"},
    {"per-operation", "", "per_operation",
     "Decide latency and loss for every read, not once for bytes that "
     "arrive while earlier ones still wait"},
    {"dns-delay", "DURATION", "dns.delay",
     "Every lookup waits this long first"},
    {"dns-timeout", "PROB", "dns.timeout",
     "Probability a lookup fails with EAI_AGAIN"},
    {"dns-nxdomain", "PROB", "dns.nxdomain",
     "Probability a lookup fails with EAI_NONAME"},
    {"deny", "FAMILY=ERRNO[,..]", "",
     "FAMILY=ERRNO[,path=GLOB][,prob=P][,when=W], e.g. write=ENOSPC", true},
    {"delay", "FAMILY=DURATION[,..]", "",
     "FAMILY=DURATION[,path=GLOB][,prob=P][,when=W], e.g. fsync=200ms", true},
    {"target", "URL", "",
     "Apply only to this destination, e.g. tcp://127.0.0.1:8080", true},
    {"target-hostname", "NAME", "",
     "Apply only to this host name (as resolved), e.g. api.example.com", true},
    {"seed", "N", "seed", "Seed for fault decisions (same seed, same faults)"},
};

const FlagSpec* FindFlag(std::string_view name) {
  for (const FlagSpec& f : kFlags) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// Where each part of the flag-built policy came from.
struct FlagOrigins {
  std::vector<std::pair<std::string, std::string>> by_path;  // path -> "--flag"

  std::string Format(const Problem& p) const {
    const std::pair<std::string, std::string>* best = nullptr;
    for (const auto& o : by_path) {
      const std::string& op = o.first;
      const bool covers =
          p.path == op ||
          (p.path.size() > op.size() && p.path.compare(0, op.size(), op) == 0 &&
           (p.path[op.size()] == '.' || p.path[op.size()] == '['));
      if (covers && (best == nullptr || op.size() > best->first.size()))
        best = &o;
    }
    if (best == nullptr && !p.path.empty()) {
      // A rule about a whole effect ("dns"): name a flag that set part of it.
      for (const auto& o : by_path) {
        if (o.first.size() > p.path.size() &&
            o.first.compare(0, p.path.size(), p.path) == 0 &&
            o.first[p.path.size()] == '.') {
          return Cat(o.second, ": ", p.path, ": ", p.message);
        }
      }
    }
    if (best == nullptr) {
      return Cat("flags: ", p.path.empty() ? "" : Cat(p.path, ": "), p.message);
    }
    std::string rest = p.path.substr(best->first.size());
    if (!rest.empty() && rest[0] == '.') rest.erase(0, 1);
    return Cat(best->second, ": ", rest.empty() ? "" : Cat(rest, ": "),
               p.message);
  }
};

// Sets root[a][b]... = value for a dotted path.
void SetPath(YAML::Node root, std::string_view path, const std::string& value) {
  const size_t dot = path.find('.');
  if (dot == std::string_view::npos) {
    root[std::string(path)] = value;
    return;
  }
  YAML::Node child = root[std::string(path.substr(0, dot))];
  if (!child.IsMap()) {
    child = YAML::Node(YAML::NodeType::Map);
    root[std::string(path.substr(0, dot))] = child;
  }
  SetPath(child, path.substr(dot + 1), value);
}

}  // namespace

absl::StatusOr<fault::v1::PolicySet> ParsePolicyText(
    std::string_view text, std::string_view filename) {
  ParsedFile parsed = ParseFile(text, filename);
  if (!parsed.errors.empty()) return Combine(parsed.errors);
  return std::move(parsed.set);
}

absl::StatusOr<fault::v1::PolicySet> LoadPolicyFiles(
    const std::vector<std::string>& paths) {
  fault::v1::PolicySet all;
  std::vector<std::string> errors;
  std::map<std::string, std::string> defined;  // name -> position
  for (const std::string& path : paths) {
    absl::StatusOr<std::string> text =
        fault::cli::ReadInputFile(path, fault::cli::kMaxPolicyBytes, "policy files");
    if (!text.ok()) {
      errors.push_back(std::string(text.status().message()));
      continue;
    }
    ParsedFile parsed = ParseFile(*text, path);
    errors.insert(errors.end(), parsed.errors.begin(), parsed.errors.end());
    for (int i = 0; i < parsed.set.policies_size(); ++i) {
      const auto& policy = parsed.set.policies(i);
      auto [prev, inserted] =
          defined.emplace(policy.name(), parsed.positions[i]);
      if (!inserted) {
        errors.push_back(Cat(parsed.positions[i], ": policy ",
                             Quote(policy.name()), " is already defined at ",
                             prev->second));
        continue;
      }
      *all.add_policies() = policy;
    }
  }
  if (!errors.empty()) return Combine(errors);
  return all;
}

std::vector<PolicyProblem> PolicyProblems(const fault::v1::Policy& policy) {
  std::vector<Problem> problems;
  internal::ParseContext ctx(policy.name(), YAML::Mark::null_mark(), &problems);
  internal::ValidateModel(policy, ctx);
  std::vector<PolicyProblem> out;
  for (Problem& p : problems) {
    out.push_back(PolicyProblem{std::move(p.path), std::move(p.message)});
  }
  return out;
}

absl::StatusOr<std::vector<fault::v1::Interval>> ParseIntervals(
    std::string_view text, const IntervalGrammar& grammar) {
  return internal::ParseIntervalList(text, grammar);
}

absl::Status ValidatePolicy(const fault::v1::Policy& policy,
                            std::string_view where) {
  std::vector<Problem> problems;
  internal::ParseContext ctx(policy.name(), YAML::Mark::null_mark(), &problems);
  internal::ValidateModel(policy, ctx);
  std::vector<std::string> errors;
  for (const Problem& p : problems)
    errors.push_back(Cat(where, ": ", Describe(p)));
  return Combine(errors);
}

void AddEffectFlags(CLI::App* command, EffectFlags* flags,
                    const std::vector<std::string_view>& except) {
  for (const FlagSpec& f : kFlags) {
    if (std::find(except.begin(), except.end(), f.name) != except.end()) {
      continue;
    }
    const std::string option = Cat("--", f.name);
    const std::string name(f.name);
    if (f.type.empty()) {
      command
          ->add_flag_callback(
              option,
              [flags, name] { flags->given.emplace_back(name, "true"); },
              std::string(f.help))
          ->type_name(std::string(f.type))
          ->group("Effects");
    } else if (f.repeated) {
      command
          ->add_option_function<std::vector<std::string>>(
              option,
              [flags, name](const std::vector<std::string>& values) {
                for (const auto& v : values) flags->given.emplace_back(name, v);
              },
              std::string(f.help))
          ->allow_extra_args(false)
          ->type_name(std::string(f.type))
          ->group("Effects");
    } else {
      command
          ->add_option_function<std::string>(
              option,
              [flags, name](const std::string& v) {
                flags->given.emplace_back(name, v);
              },
              std::string(f.help))
          ->type_name(std::string(f.type))
          ->group("Effects");
    }
  }
}

absl::StatusOr<std::optional<fault::v1::Policy>> PolicyFromFlags(
    const EffectFlags& flags, std::string_view name) {
  if (flags.given.empty()) return std::optional<fault::v1::Policy>();
  std::vector<std::string> errors;
  FlagOrigins origins;
  YAML::Node root(YAML::NodeType::Map);
  YAML::Node syscalls(YAML::NodeType::Sequence);
  YAML::Node targets(YAML::NodeType::Sequence);
  absl::flat_hash_map<std::string, std::string> seen;
  bool latency_params = false, rate_burst = false;
  for (const auto& [flag, value] : flags.given) {
    latency_params |= flag.rfind("latency-", 0) == 0;
    rate_burst |= flag == "rate-burst";
  }
  for (const auto& [flag, value] : flags.given) {
    const FlagSpec* spec = FindFlag(flag);
    const std::string option = Cat("--", flag);
    if (spec == nullptr) {
      errors.push_back(Cat(option, ": not an effect flag"));
      continue;
    }
    if (!spec->repeated) {
      auto [prev, inserted] = seen.emplace(flag, value);
      if (!inserted) {
        errors.push_back(Cat(option, ": given more than once"));
        continue;
      }
    }
    std::string path(spec->path);
    if (flag == "latency" && latency_params) {
      errors.push_back(
          "--latency: cannot be combined with --latency-distribution and its "
          "parameters (--latency is a fixed delay)");
      continue;
    }
    if (flag == "rate" && rate_burst) path = "rate.rate";
    if (!path.empty()) {
      SetPath(root, path, value);
      origins.by_path.emplace_back(path, option);
      continue;
    }
    if (flag == "blackhole") {
      root["blackhole"] = value;
      origins.by_path.emplace_back("blackhole", option);
    } else if (flag == "connection-error") {
      YAML::Node ce(YAML::NodeType::Map);
      const size_t colon = value.find(':');
      ce["kind"] = value.substr(0, colon);
      if (colon != std::string::npos) ce["prob"] = value.substr(colon + 1);
      root["connection_error"] = ce;
      origins.by_path.emplace_back("connection_error", option);
    } else if (flag == "deny" || flag == "delay") {
      // FAMILY=VALUE[,key=value...] -> {FAMILY: {deny|delay: VALUE, key:
      // value}}
      std::vector<std::string> parts;
      for (absl::string_view part : absl::StrSplit(Av(value), ',')) {
        parts.emplace_back(part);
      }
      const size_t eq = parts[0].find('=');
      if (eq == std::string::npos || eq == 0) {
        errors.push_back(Cat(option, " ", Quote(value), ": expected FAMILY=",
                             flag == "deny" ? "ERRNO" : "DURATION",
                             "[,path=GLOB][,prob=P][,when=W], e.g. ",
                             flag == "deny" ? "write=ENOSPC" : "fsync=200ms"));
        continue;
      }
      YAML::Node rule(YAML::NodeType::Map);
      rule[flag] = parts[0].substr(eq + 1);
      bool ok = true;
      for (size_t i = 1; i < parts.size(); ++i) {
        const size_t e = parts[i].find('=');
        if (e == std::string::npos || e == 0) {
          errors.push_back(Cat(option, " ", Quote(value),
                               ": expected key=value after \",\", got ",
                               Quote(parts[i])));
          ok = false;
          break;
        }
        const std::string key = parts[i].substr(0, e);
        if (rule[key]) {
          errors.push_back(
              Cat(option, " ", Quote(value), ": ", key, " given twice"));
          ok = false;
          break;
        }
        rule[key] = parts[i].substr(e + 1);
      }
      if (!ok) continue;
      YAML::Node item(YAML::NodeType::Map);
      item[parts[0].substr(0, eq)] = rule;
      origins.by_path.emplace_back(Cat("syscalls[", syscalls.size(), "]"),
                                   Cat(option, " ", value));
      syscalls.push_back(item);
    } else if (flag == "target" || flag == "target-hostname") {
      YAML::Node t;
      if (flag == "target") {
        t = value;  // a plain string item is a target URL
      } else {
        t = YAML::Node(YAML::NodeType::Map);
        t["hostname"] = value;
      }
      origins.by_path.emplace_back(Cat("targets[", targets.size(), "]"),
                                   Cat(option, " ", value));
      targets.push_back(t);
    }
  }
  if (syscalls.size() > 0) root["syscalls"] = syscalls;
  if (targets.size() > 0) root["targets"] = targets;
  if (!errors.empty()) return Combine(errors);

  std::vector<Problem> problems;
  fault::v1::Policy policy;
  policy.set_name(std::string(name));
  try {
    internal::ParseContext ctx(std::string(name), YAML::Mark::null_mark(),
                               &problems);
    internal::ParsePolicyBody(root, ctx, &policy);
    if (problems.empty()) internal::ValidateModel(policy, ctx);
  } catch (const std::exception& e) {
    return absl::InternalError(Cat("flags: internal error: ", e.what()));
  }
  for (const Problem& p : problems) errors.push_back(origins.Format(p));
  if (!errors.empty()) return Combine(errors);
  return std::optional<fault::v1::Policy>(std::move(policy));
}

absl::Status CheckNamedOrInline(std::string_view use_name,
                                const EffectFlags& flags) {
  if (use_name.empty() || flags.given.empty()) return absl::OkStatus();
  std::string names;
  for (const auto& [flag, value] : flags.given) {
    const std::string option = Cat("--", flag);
    if (names.find(option) != std::string::npos) continue;
    Append(&names, names.empty() ? "" : ", ", option);
  }
  return absl::InvalidArgumentError(
      Cat("--use ", use_name, " cannot be combined with effect flags (", names,
          "): run a named policy from a file, or give the effects inline, not "
          "both"));
}

}  // namespace fault::policy
