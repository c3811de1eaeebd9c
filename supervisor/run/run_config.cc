#include "supervisor/run/run_config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "supervisor/exec/table_compiler.h"
#include "supervisor/grpc/plugin_address.h"
#include "supervisor/policy/loader.h"
#include "supervisor/policy/strings.h"
#include "supervisor/policy/units.h"

namespace fault::run {
namespace {

using fault::policy::Av;
using fault::policy::Cat;
using fault::policy::Quote;
using fault::v1::Direction;
using fault::v1::Latency;
using fault::v1::LinkProfile;
using fault::v1::Policy;
using Getenv = std::function<const char*(const char*)>;

constexpr char kDefaultProxyAddress[] = "127.0.0.1:3180";
constexpr size_t kMaxHttpBody = 4096;  // fault.v1.HttpError.body

std::string Lower(std::string_view s) { return absl::AsciiStrToLower(Av(s)); }

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c));
  });
}

// `s` as a plain decimal number from `lo` to `hi`; nullopt otherwise.
std::optional<uint64_t> NumberIn(std::string_view s, uint64_t lo, uint64_t hi) {
  uint64_t n = 0;
  if (!AllDigits(s) || !absl::SimpleAtoi(Av(s), &n) || n < lo || n > hi) return std::nullopt;
  return n;
}

// --- Inputs: a value and where it came from ----------------------------------

struct Input {
  std::string value;
  std::string flag;  // "--latency-mean"
  std::string env;   // the variable it came from; "" for the command line
  bool given = false;
  bool on = false;  // switches: the value under clap's falsey rule

  bool from_env() const { return !env.empty(); }
  bool from_command_line() const { return given && env.empty(); }
  // How messages name it: "--latency-mean" or "FAULT_LATENCY_MEAN=abc".
  std::string Where() const { return from_env() ? Cat(env, "=", value) : flag; }
};

class Env {
 public:
  explicit Env(const Getenv& getenv) : getenv_(getenv) {}

  // The command line's value, else the first variable set (and not empty).
  Input Value(const std::string& cli, std::string_view flag,
              std::initializer_list<std::string_view> envs) const {
    Input in;
    in.flag = std::string(flag);
    if (!cli.empty()) {
      in.value = cli;
      in.given = true;
      return in;
    }
    for (std::string_view name : envs) {
      const std::string n(name);
      const char* v = getenv_ ? getenv_(n.c_str()) : nullptr;
      if (v != nullptr && *v != '\0') {
        in.value = v;
        in.env = n;
        in.given = true;
        return in;
      }
    }
    return in;
  }

  // A flag, else the variable under clap's FalseyValueParser: "", 0, false,
  // no, off, n and f (any case) are false; anything else is true.
  Input Switch(bool cli, std::string_view flag, std::string_view env) const {
    Input in;
    in.flag = std::string(flag);
    if (cli) {
      in.given = in.on = true;
      in.value = "true";
      return in;
    }
    const std::string n(env);
    const char* v = getenv_ ? getenv_(n.c_str()) : nullptr;
    if (v == nullptr) return in;
    in.given = true;
    in.env = n;
    in.value = v;
    const std::string l = Lower(in.value);
    in.on = !(l.empty() || l == "0" || l == "false" || l == "no" ||
              l == "off" || l == "n" || l == "f");
    return in;
  }

 private:
  const Getenv& getenv_;
};

// Every problem, one line each, then one status.
class Problems {
 public:
  void Add(std::string_view where, std::string_view why) {
    lines_.push_back(Cat(where, ": ", why));
  }
  void Add(const Input& in, std::string_view why) { Add(in.Where(), why); }
  void Add(const Input& in, const absl::Status& s) {
    Add(in.Where(), std::string(s.message()));
  }
  // Lines that name their own origin (policy files, effect flags).
  void AddLines(const absl::Status& s) {
    const std::string text(s.message());
    size_t start = 0;
    while (start < text.size()) {
      size_t nl = text.find('\n', start);
      if (nl == std::string::npos) nl = text.size();
      lines_.push_back(text.substr(start, nl - start));
      start = nl + 1;
    }
  }
  bool empty() const { return lines_.empty(); }
  size_t size() const { return lines_.size(); }
  absl::Status ToStatus() const {
    std::string text;
    for (const std::string& l : lines_) {
      if (!text.empty()) text += '\n';
      text += l;
    }
    return lines_.empty() ? absl::OkStatus() : absl::InvalidArgumentError(text);
  }

 private:
  std::vector<std::string> lines_;
};

// --- Pieces shared by the faults ---------------------------------------------

// What every fault builder needs besides its flags.
struct Context {
  const Env* env;
  Problems* problems;
  int64_t run_duration_ns = 0;
  bool run_duration_ok = true;  // false: --duration was wrong (reported)
};

// Where each field of a flag policy came from, so that the validator's
// problems name flags, not fields.
struct Origins {
  std::vector<std::pair<std::string, std::string>> by_path;  // path -> where
  std::string fallback;                                      // --with-X

  void Add(std::string path, const Input& in) {
    if (in.given) by_path.emplace_back(std::move(path), in.Where());
  }

  std::string For(std::string path) const {
    for (std::string_view dir : {"uplink", "downlink"}) {
      if (path == dir) {
        path.clear();
      } else if (path.size() > dir.size() &&
                 path.compare(0, dir.size(), dir) == 0 &&
                 path[dir.size()] == '.') {
        path.erase(0, dir.size() + 1);
      }
    }
    const std::string* best = nullptr;
    size_t best_len = 0;
    for (const auto& [p, where] : by_path) {
      const bool covers =
          path == p ||
          (path.size() > p.size() && path.compare(0, p.size(), p) == 0 &&
           (path[p.size()] == '.' || path[p.size()] == '['));
      if (covers && (best == nullptr || p.size() > best_len)) {
        best = &where;
        best_len = p.size();
      }
    }
    return best != nullptr ? *best : fallback;
  }
};

// Runs the policy validator on a flag policy; its problems name flags.
void Validate(const Policy& policy, const Origins& origins,
              Problems& problems) {
  for (const fault::policy::PolicyProblem& p :
       fault::policy::PolicyProblems(policy)) {
    problems.Add(origins.For(p.path), p.message);
  }
}

// A fault's flags given on the command line without its --with-X do
// nothing: say so. In the environment they are ignored, so that a
// FAULT_WITH_X=false can switch a configured fault off.
void CheckOrphans(const Input& with, std::initializer_list<const Input*> inputs,
                  Problems& problems) {
  for (const Input* in : inputs) {
    if (!in->from_command_line()) continue;
    problems.Add(
        *in, Cat("has no effect without ", with.flag,
                 with.from_env() ? Cat(" (", with.Where(), " switches it off)")
                                 : std::string()));
  }
}

// --*-side and --*-direction -> where the effect goes. Side picks the
// socket (client: client <-> proxy, server: proxy <-> upstream), direction
// the proxy's read (ingress) or write (egress) half on it.
std::optional<Direction> SideDirection(const Input& side, const Input& dir,
                                       Problems& problems) {
  bool ok = true;
  bool server = true;
  if (side.given) {
    if (side.value == "server") {
      server = true;
    } else if (side.value == "client") {
      server = false;
    } else {
      problems.Add(side, Cat(Quote(side.value),
                             " is not a side (use client or server)"));
      ok = false;
    }
  }
  std::string way = dir.given ? dir.value : "ingress";
  if (way != "ingress" && way != "egress" && way != "both") {
    problems.Add(dir, Cat(Quote(dir.value),
                          " is not a direction (use ingress, egress or both)"));
    ok = false;
  }
  if (!ok) return std::nullopt;
  if (way == "both") return fault::v1::DIRECTION_BOTH;
  // server/ingress: upstream -> proxy -> client; client/egress: proxy ->
  // client. Both are downlink; the other two are uplink.
  const bool downlink = server == (way == "ingress");
  return downlink ? fault::v1::DIRECTION_DOWNLINK : fault::v1::DIRECTION_UPLINK;
}

LinkProfile* Profile(Policy* p, Direction d) {
  switch (d) {
    case fault::v1::DIRECTION_UPLINK:
      return p->mutable_uplink();
    case fault::v1::DIRECTION_DOWNLINK:
      return p->mutable_downlink();
    default:
      return p->mutable_link();
  }
}

// --*-sched -> the policy's schedule.
void ApplySchedule(const Input& sched, const Context& ctx, Policy* p,
                   Origins* origins) {
  if (!sched.given || !ctx.run_duration_ok) return;
  absl::StatusOr<fault::v1::Schedule> s =
      ParseProxySchedule(sched.value, ctx.run_duration_ns);
  if (!s.ok()) {
    ctx.problems->Add(sched, s.status());
    return;
  }
  *p->mutable_schedule() = *std::move(s);
  origins->Add("schedule", sched);
}

// A value parsed into `out`; problems name the input. False when not given
// or wrong.
template <typename T, typename F>
bool Parse(const Input& in, F parse, T* out, Problems& problems) {
  if (!in.given) return false;
  auto v = parse(in.value);
  if (!v.ok()) {
    problems.Add(in, v.status());
    return false;
  }
  *out = *v;
  return true;
}

// A probability in the units of units.h ("0.5", "50%", "1"), above 0.
absl::StatusOr<uint32_t> ParseNonZeroProbability(std::string_view text) {
  absl::StatusOr<uint32_t> ppm = fault::policy::ParseProbability(text);
  if (ppm.ok() && *ppm == 0) {
    return absl::InvalidArgumentError(
        Cat(Quote(text), ": a probability of 0 does nothing"));
  }
  return ppm;
}

// --- The faults --------------------------------------------------------------

struct Built {
  std::vector<Policy> policies;
  std::map<std::string, std::string> http_bodies;
};

void AddLatency(const RunFlags& f, const Context& ctx, Built* out) {
  const Env& env = *ctx.env;
  Problems& problems = *ctx.problems;
  const Input with =
      env.Switch(f.with_latency, "--with-latency", "FAULT_WITH_LATENCY");
  const Input per_rw =
      env.Switch(f.latency_per_read_write, "--latency-per-read-write",
                 "FAULT_LATENCY_PER_READ_WRITE");
  const Input side =
      env.Value(f.latency_side, "--latency-side", {"FAULT_LATENCY_SIDE"});
  const Input dir = env.Value(f.latency_direction, "--latency-direction",
                              {"FAULT_LATENCY_DIRECTION"});
  const Input dist = env.Value(f.latency_distribution, "--latency-distribution",
                               {"FAULT_LATENCY_DISTRIBUTION"});
  const Input mean =
      env.Value(f.latency_mean, "--latency-mean", {"FAULT_LATENCY_MEAN"});
  const Input stddev = env.Value(f.latency_stddev, "--latency-stddev",
                                 {"FAULT_LATENCY_STANDARD_DEVIATION"});
  const Input shape =
      env.Value(f.latency_shape, "--latency-shape", {"FAULT_LATENCY_SHAPE"});
  const Input scale =
      env.Value(f.latency_scale, "--latency-scale", {"FAULT_LATENCY_SCALE"});
  const Input min =
      env.Value(f.latency_min, "--latency-min", {"FAULT_LATENCY_MIN"});
  const Input max =
      env.Value(f.latency_max, "--latency-max", {"FAULT_LATENCY_MAX"});
  const Input sched =
      env.Value(f.latency_sched, "--latency-sched", {"FAULT_LATENCY_SCHED"});
  if (!with.on) {
    CheckOrphans(with,
                 {&per_rw, &side, &dir, &dist, &mean, &stddev, &shape, &scale,
                  &min, &max, &sched},
                 problems);
    return;
  }
  const size_t before = problems.size();
  std::optional<Direction> d = SideDirection(side, dir, problems);

  // The distribution and the parameters it takes.
  struct Kind {
    std::string_view name;
    Latency::Distribution proto;
    std::vector<const Input*> params;
  };
  const Kind kinds[] = {
      {"normal", Latency::DISTRIBUTION_NORMAL, {&mean, &stddev}},
      {"uniform", Latency::DISTRIBUTION_UNIFORM, {&min, &max}},
      {"pareto", Latency::DISTRIBUTION_PARETO, {&scale, &shape}},
      {"pareto-normal",
       Latency::DISTRIBUTION_PARETO_NORMAL,
       {&mean, &stddev, &scale, &shape}},
  };
  const Kind* kind = &kinds[0];
  if (dist.given) {
    std::string name = dist.value;
    if (name == "pareto_normal" || name == "paretonormal") {
      name = "pareto-normal";
    }
    kind = nullptr;
    for (const Kind& k : kinds) {
      if (k.name == name) kind = &k;
    }
    if (kind == nullptr) {
      problems.Add(dist, Cat(Quote(dist.value),
                             " is not a distribution (use uniform, normal, "
                             "pareto or pareto-normal)"));
      return;
    }
  }
  auto takes = [&](const Input* in) {
    return std::find(kind->params.begin(), kind->params.end(), in) !=
           kind->params.end();
  };
  std::string takes_list;
  for (size_t i = 0; i < kind->params.size(); ++i) {
    takes_list += Cat(i == 0                         ? ""
                      : i + 1 == kind->params.size() ? " and "
                                                     : ", ",
                      kind->params[i]->flag);
  }
  for (const Input* in : {&mean, &stddev, &min, &max, &scale, &shape}) {
    if (in->from_command_line() && !takes(in)) {
      problems.Add(*in, Cat("does not apply to the ", kind->name,
                            " distribution (it takes ", takes_list, ")"));
    }
  }
  // The ones it needs: all four for pareto-normal; otherwise stddev and min
  // may be left out (0).
  const bool all = kind->proto == Latency::DISTRIBUTION_PARETO_NORMAL;
  std::vector<std::string> missing;
  for (const Input* in : kind->params) {
    if (!in->given && (all || (in != &stddev && in != &min))) {
      missing.push_back(in->flag);
    }
  }
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size(); ++i) {
      list += Cat(i == 0                    ? ""
                  : i + 1 == missing.size() ? " and "
                                            : ", ",
                  missing[i]);
    }
    if (kind->proto == Latency::DISTRIBUTION_NORMAL) {
      problems.Add(with.Where(),
                   "the latency would be 0: add --latency-mean MS (e.g. "
                   "--latency-mean 300)");
    } else {
      problems.Add(dist.given ? dist.Where() : with.Where(),
                   Cat(kind->name, " latency needs ", list));
    }
  }

  Latency lat;
  lat.set_distribution(kind->proto);
  int64_t v = 0;
  double x = 0;
  if (takes(&mean) && Parse(mean, ParseMilliseconds, &v, problems)) {
    if (v <= 0) {
      problems.Add(mean, "must be above 0");
    }
    lat.set_mean_ns(v);
  }
  if (takes(&stddev) && Parse(stddev, ParseMilliseconds, &v, problems)) {
    lat.set_stddev_ns(v);
  }
  if (takes(&min) && Parse(min, ParseMilliseconds, &v, problems)) {
    lat.set_min_ns(v);
  }
  if (takes(&max) && Parse(max, ParseMilliseconds, &v, problems)) {
    lat.set_max_ns(v);
    if (v <= lat.min_ns()) {
      problems.Add(max, Cat(fault::policy::FormatDuration(v),
                            " is not above --latency-min ",
                            fault::policy::FormatDuration(lat.min_ns()),
                            " (uniform latency needs min < max)"));
    }
  }
  if (takes(&scale) && Parse(scale, ParseMilliseconds, &v, problems)) {
    if (v <= 0) problems.Add(scale, "must be above 0");
    lat.set_scale_ns(v);
  }
  if (takes(&shape) && Parse(shape, ParseProxyNumber, &x, problems)) {
    if (!(x > 0)) problems.Add(shape, "must be above 0");
    lat.set_shape(x);
  }
  if (kind->proto == Latency::DISTRIBUTION_PARETO_NORMAL) {
    // The Rust tool adds a Pareto sample (at least `scale`) to the normal
    // one; our pareto_normal adds the sample's excess over `scale`, so its
    // mean carries the `scale` the Rust sum starts from.
    if (lat.mean_ns() <= std::numeric_limits<int64_t>::max() - lat.scale_ns()) {
      lat.set_mean_ns(lat.mean_ns() + lat.scale_ns());
    }  // else the validator's 24h limit refuses them
  }

  Policy p;
  p.set_name("latency");
  Origins origins;
  origins.fallback = with.Where();
  ApplySchedule(sched, ctx, &p, &origins);
  if (problems.size() != before || !d.has_value()) return;
  *Profile(&p, *d)->mutable_latency() = lat;
  // The Rust default ("global") delays each half-stream once; ours once
  // per flight. --latency-per-read-write: every read and write.
  if (per_rw.on) p.set_per_operation(true);
  origins.Add("latency", dist.given ? dist : with);
  origins.Add("latency.mean", mean);
  origins.Add("latency.stddev", stddev);
  origins.Add("latency.min", min);
  origins.Add("latency.max", max);
  origins.Add("latency.scale", scale);
  origins.Add("latency.shape", shape);
  Validate(p, origins, problems);
  out->policies.push_back(std::move(p));
}

void AddJitter(const RunFlags& f, const Context& ctx, Built* out) {
  const Env& env = *ctx.env;
  Problems& problems = *ctx.problems;
  const Input with =
      env.Switch(f.with_jitter, "--with-jitter", "FAULT_WITH_JITTER");
  const Input dir = env.Value(f.jitter_direction, "--jitter-direction",
                              {"FAULT_JITTER_DIRECTION"});
  const Input side =
      env.Value(f.jitter_side, "--jitter-side", {"FAULT_JITTER_SIDE"});
  const Input amplitude = env.Value(f.jitter_amplitude, "--jitter-amplitude",
                                    {"FAULT_JITTER_AMPLITUDE"});
  const Input frequency = env.Value(f.jitter_frequency, "--jitter-frequency",
                                    {"FAULT_JITTER_FREQ"});
  const Input sched =
      env.Value(f.jitter_sched, "--jitter-sched", {"FAULT_JITTER_SCHED"});
  if (!with.on) {
    CheckOrphans(with, {&dir, &side, &amplitude, &frequency, &sched}, problems);
    return;
  }
  const size_t before = problems.size();
  std::optional<Direction> d = SideDirection(side, dir, problems);
  int64_t amp_ns = 20'000'000;
  if (Parse(amplitude, ParseMilliseconds, &amp_ns, problems) && amp_ns == 0) {
    problems.Add(amplitude, "an amplitude of 0 does nothing");
  }
  double freq = 5;
  if (Parse(frequency, ParseProxyNumber, &freq, problems) && freq == 0) {
    problems.Add(frequency, "a frequency of 0 does nothing");
  }
  Policy p;
  p.set_name("jitter");
  Origins origins;
  origins.fallback = with.Where();
  ApplySchedule(sched, ctx, &p, &origins);
  if (problems.size() != before || !d.has_value()) return;
  // The Rust tool sleeps a uniform 0..amplitude: a fixed amplitude/2 with
  // jitter amplitude/2 around it is that range.
  LinkProfile* link = Profile(&p, *d);
  link->mutable_latency()->set_distribution(Latency::DISTRIBUTION_FIXED);
  link->mutable_latency()->set_fixed_ns(amp_ns / 2);
  link->set_jitter_ns(amp_ns - amp_ns / 2);
  origins.Add("latency", amplitude);
  origins.Add("jitter", amplitude);
  Validate(p, origins, problems);
  out->policies.push_back(std::move(p));
}

absl::StatusOr<uint64_t> ParseBandwidthRate(std::string_view text) {
  uint64_t v = 0;
  if (!AllDigits(text) || !absl::SimpleAtoi(Av(text), &v) || v == 0) {
    return absl::InvalidArgumentError(
        Cat(Quote(text), " is not a positive whole number"));
  }
  return v;
}

void AddBandwidth(const RunFlags& f, const Context& ctx, Built* out) {
  const Env& env = *ctx.env;
  Problems& problems = *ctx.problems;
  const Input with =
      env.Switch(f.with_bandwidth, "--with-bandwidth", "FAULT_WITH_BANDWIDTH");
  const Input side =
      env.Value(f.bandwidth_side, "--bandwidth-side", {"FAULT_BANDWIDTH_SIDE"});
  const Input dir = env.Value(f.bandwidth_direction, "--bandwidth-direction",
                              {"FAULT_BANDWIDTH_DIRECTION"});
  const Input rate =
      env.Value(f.bandwidth_rate, "--bandwidth-rate", {"FAULT_BANDWIDTH_RATE"});
  const Input unit =
      env.Value(f.bandwidth_unit, "--bandwidth-unit", {"FAULT_BANDWIDTH_UNIT"});
  const Input sched = env.Value(f.bandwidth_sched, "--bandwidth-sched",
                                {"FAULT_BANDWIDTH_SCHED"});
  if (!with.on) {
    CheckOrphans(with, {&side, &dir, &rate, &unit, &sched}, problems);
    return;
  }
  const size_t before = problems.size();
  std::optional<Direction> d = SideDirection(side, dir, problems);
  uint64_t amount = 1000;
  Parse(rate, ParseBandwidthRate, &amount, problems);
  // Bytes per second, decimal multipliers, any case (the docs write kbps
  // and mbps for KBps and MBps: bytes, not bits).
  uint64_t bytes_per_unit = 1;
  if (unit.given) {
    const std::string u = Lower(unit.value);
    if (u == "bps") {
      bytes_per_unit = 1;
    } else if (u == "kbps") {
      bytes_per_unit = 1'000;
    } else if (u == "mbps") {
      bytes_per_unit = 1'000'000;
    } else if (u == "gbps") {
      bytes_per_unit = 1'000'000'000;
    } else {
      problems.Add(unit, Cat(Quote(unit.value),
                             " is not a unit (use Bps, KBps, MBps or GBps: "
                             "bytes per second)"));
    }
  }
  if (problems.size() == before &&
      amount > std::numeric_limits<uint64_t>::max() / 8 / bytes_per_unit) {
    problems.Add(rate.given ? rate : unit, "too large");
  }
  Policy p;
  p.set_name("bandwidth");
  Origins origins;
  origins.fallback = with.Where();
  ApplySchedule(sched, ctx, &p, &origins);
  if (problems.size() != before || !d.has_value()) return;
  Profile(&p, *d)->mutable_rate()->set_rate_bps(amount * bytes_per_unit * 8);
  origins.Add("rate", rate.given ? rate : unit);
  Validate(p, origins, problems);
  out->policies.push_back(std::move(p));
}

void AddPacketLoss(const RunFlags& f, const Context& ctx, Built* out) {
  const Env& env = *ctx.env;
  Problems& problems = *ctx.problems;
  const Input with = env.Switch(f.with_packet_loss, "--with-packet-loss",
                                "FAULT_WITH_PACKET_LOSS");
  const Input side = env.Value(f.packet_loss_side, "--packet-loss-side",
                               {"FAULT_PACKET_LOSS_SIDE"});
  const Input dir =
      env.Value(f.packet_loss_direction, "--packet-loss-direction",
                {"FAULT_PACKET_LOSS_DIRECTION"});
  const Input rate = env.Value(f.packet_loss_rate, "--packet-loss-rate", {});
  const Input sched = env.Value(f.packet_loss_sched, "--packet-loss-sched",
                                {"FAULT_PACKET_LOSS_SCHED"});
  if (!with.on) {
    CheckOrphans(with, {&side, &dir, &rate, &sched}, problems);
    return;
  }
  const size_t before = problems.size();
  std::optional<Direction> d = SideDirection(side, dir, problems);
  // The Rust model starts in its "good" state, which loses 10%.
  uint32_t ppm = 100'000;
  Parse(rate, ParseNonZeroProbability, &ppm, problems);
  Policy p;
  p.set_name("packet-loss");
  Origins origins;
  origins.fallback = with.Where();
  ApplySchedule(sched, ctx, &p, &origins);
  if (problems.size() != before || !d.has_value()) return;
  Profile(&p, *d)->set_packet_loss_ppm(ppm);
  origins.Add("packet_loss", rate);
  Validate(p, origins, problems);
  out->policies.push_back(std::move(p));
}

void AddBlackhole(const RunFlags& f, const Context& ctx, Built* out) {
  const Env& env = *ctx.env;
  Problems& problems = *ctx.problems;
  const Input with =
      env.Switch(f.with_blackhole, "--with-blackhole", "FAULT_WITH_BLACKHOLE");
  const Input side =
      env.Value(f.blackhole_side, "--blackhole-side", {"FAULT_BLACKHOLE_SIDE"});
  const Input dir = env.Value(f.blackhole_direction, "--blackhole-direction",
                              {"FAULT_BLACKHOLE_DIRECTION"});
  const Input sched = env.Value(f.blackhole_sched, "--blackhole-sched",
                                {"FAULT_BLACKHOLE_SCHED"});
  if (!with.on) {
    CheckOrphans(with, {&side, &dir, &sched}, problems);
    return;
  }
  const size_t before = problems.size();
  std::optional<Direction> d = SideDirection(side, dir, problems);
  Policy p;
  p.set_name("blackhole");
  Origins origins;
  origins.fallback = with.Where();
  ApplySchedule(sched, ctx, &p, &origins);
  if (problems.size() != before || !d.has_value()) return;
  p.set_blackhole(true);
  p.set_blackhole_direction(*d);
  Validate(p, origins, problems);
  out->policies.push_back(std::move(p));
}

absl::StatusOr<uint32_t> ParseHttpStatus(std::string_view text) {
  uint32_t v = 0;
  if (!AllDigits(text) || text.size() > 3 || !absl::SimpleAtoi(Av(text), &v) ||
      v < 100 || v > 599) {
    return absl::InvalidArgumentError(
        Cat(Quote(text), " is not an HTTP status (100..599)"));
  }
  return v;
}

void AddHttpResponse(const RunFlags& f, const Context& ctx, Built* out) {
  const Env& env = *ctx.env;
  Problems& problems = *ctx.problems;
  const Input with = env.Switch(f.with_http_response, "--with-http-response",
                                "FAULT_WITH_HTTP_FAULT");
  const Input status =
      env.Value(f.http_response_status, "--http-response-status",
                {"FAULT_HTTP_FAULT_STATUS"});
  const Input body = env.Value(f.http_response_body, "--http-response-body",
                               {"FAULT_HTTP_FAULT_BODY"});
  const Input prob = env.Value(f.http_response_trigger_probability,
                               "--http-response-trigger-probability",
                               {"FAULT_HTTP_FAULT_PROBABILITY"});
  const Input sched = env.Value(f.http_response_sched, "--http-response-sched",
                                {"FAULT_HTTP_FAULT_SCHED"});
  // --http-response-direction is documented but has no meaning: ignored.
  if (!with.on) {
    CheckOrphans(with, {&status, &body, &prob, &sched}, problems);
    return;
  }
  const size_t before = problems.size();
  uint32_t code = 500;
  Parse(status, ParseHttpStatus, &code, problems);
  uint32_t ppm = 1'000'000;
  Parse(prob, ParseNonZeroProbability, &ppm, problems);
  if (body.given && body.value.size() > kMaxHttpBody) {
    problems.Add(body.from_env() ? body.env : body.flag,
                 Cat(body.value.size(), " bytes; a body is at most ",
                     kMaxHttpBody, " bytes"));
  }
  Policy p;
  p.set_name("http-response");
  Origins origins;
  origins.fallback = with.Where();
  ApplySchedule(sched, ctx, &p, &origins);
  if (problems.size() != before) return;
  fault::v1::HttpError* e = p.mutable_http_error();
  e->set_status(code);
  e->set_probability_ppm(ppm);
  if (body.given) {
    e->set_body(body.value);
    out->http_bodies[p.name()] = body.value;
  }
  origins.Add("http_error.status", status);
  origins.Add("http_error.probability", prob);
  Validate(p, origins, problems);
  out->policies.push_back(std::move(p));
}

void AddDns(const RunFlags& f, const Context& ctx, Built* out) {
  const Env& env = *ctx.env;
  Problems& problems = *ctx.problems;
  const Input with = env.Switch(f.with_dns, "--with-dns", "FAULT_WITH_DNS");
  const Input rate =
      env.Value(f.dns_rate, "--dns-rate", {"FAULT_DNS_PROBABILITY"});
  const Input sched =
      env.Value(f.dns_sched, "--dns-sched", {"FAULT_DNS_SCHED"});
  if (!with.on) {
    CheckOrphans(with, {&rate, &sched}, problems);
    return;
  }
  const size_t before = problems.size();
  uint32_t ppm = 500'000;
  Parse(rate, ParseNonZeroProbability, &ppm, problems);
  Policy p;
  p.set_name("dns");
  Origins origins;
  origins.fallback = with.Where();
  ApplySchedule(sched, ctx, &p, &origins);
  if (problems.size() != before) return;
  // No targets: the validator asks DNS effects for hostname-only targets
  // only when a policy has targets, and a policy without any applies to
  // every lookup, which is what the proxy's resolver fault does.
  p.mutable_dns()->set_nxdomain_ppm(ppm);
  origins.Add("dns", rate);
  Validate(p, origins, problems);
  out->policies.push_back(std::move(p));
}

// Whether two listeners would take the same address: the same port, and the
// same host or a wildcard that covers the other ("::" takes IPv4 too).
bool Overlap(const ListenAddress& a, const ListenAddress& b) {
  if (a.port == 0 || b.port == 0 || a.port != b.port) return false;
  if (a.host == b.host || a.host == "::" || b.host == "::") return true;
  auto v4 = [](const std::string& h) {
    return h.find(':') == std::string::npos;
  };
  return (a.host == "0.0.0.0" && v4(b.host)) ||
         (b.host == "0.0.0.0" && v4(a.host));
}

}  // namespace

// --- The command line --------------------------------------------------------

void RegisterRunFlags(CLI::App* run, RunFlags* f) {
  auto opt = [&](const std::string& name, std::string* value,
                 const std::string& help, const std::string& type,
                 const std::string& group) {
    run->add_option(name, *value, help)->type_name(type)->group(group);
  };
  auto many = [&](const std::string& name, std::vector<std::string>* values,
                  const std::string& help, const std::string& type,
                  const std::string& group) {
    run->add_option(name, *values, help)
        ->type_name(type)
        ->group(group)
        ->allow_extra_args(false);
  };
  auto flag = [&](const std::string& name, bool* value, const std::string& help,
                  const std::string& group) {
    run->add_flag(name, *value, help)->group(group)->disable_flag_override();
  };
  // Side and direction: the same words and the same meaning for every fault.
  auto side_direction = [&](const std::string& fault, std::string* side,
                            std::string* direction, const std::string& env,
                            const std::string& group) {
    opt("--" + fault + "-side", side,
        "client (the client <-> proxy socket) or server (proxy <-> "
        "upstream; default) (env FAULT_" +
            env + "_SIDE)",
        "client|server", group);
    opt("--" + fault + "-direction", direction,
        "ingress (what the proxy reads on that side; default), egress (what "
        "it writes) or both. server/ingress and client/egress slow "
        "upstream -> client; server/egress and client/ingress client -> "
        "upstream (env FAULT_" +
            env + "_DIRECTION)",
        "ingress|egress|both", group);
  };
  auto sched = [&](const std::string& fault, std::string* value,
                   const std::string& env, const std::string& group) {
    opt("--" + fault + "-sched", value,
        "When the fault is on: \"start:5%,duration:30%;start:90%\" (periods "
        "separated by ';'; start defaults to 0, duration to the end of the "
        "run; N% of --duration, a duration like 30s, or seconds) (env " +
            env + ")",
        "SCHEDULE", group);
  };

  const std::string proxy = "Proxy";
  opt("--proxy-address", &f->proxy_address,
      "The HTTP forward proxy's address, IPV4:PORT or [IPV6]:PORT (default "
      "127.0.0.1:3180; env FAULT_HTTP_PROXY_ADDRESS or FAULT_PROXY_ADDRESS)",
      "ADDR:PORT", proxy);
  flag("--disable-http-proxy", &f->disable_http_proxy,
       "Run only the --proxy mappings (env FAULT_DISABLE_HTTP_PROXY)", proxy);
  many("--proxy", &f->mappings,
       "A TCP relay, faulted on every connection: [tcp:]LISTEN=UPSTREAM, "
       "e.g. 9090=127.0.0.1:6379. A bare port listens on 127.0.0.1 only "
       "(0.0.0.0:9090 for every interface; [::1]:9090 for IPv6); UPSTREAM is "
       "HOST:PORT, [IPV6]:PORT or SCHEME://HOST:PORT (relayed as plain TCP); "
       "repeatable",
       "MAPPING", proxy);
  many("-u,--upstream", &f->upstreams,
       "Forward-proxy and CONNECT targets that get the faults: HOST (any "
       "port), HOST:PORT, http://HOST[:PORT], https://HOST[:PORT] or '*' "
       "for all; host names are not resolved (localhost is not 127.0.0.1); "
       "repeatable and comma-separated (env FAULT_UPSTREAMS)",
       "HOST", proxy);
  opt("--duration", &f->duration,
      "Stop after this long (exit 0): 60s, 10m, 1m30s, or seconds; "
      "percentages in schedules are of it (env FAULT_PROXY_DURATION)",
      "DURATION", proxy);
  flag("--no-ui", &f->no_ui, "No start-up summary (env FAULT_PROXY_NO_UI)",
       proxy);
  flag("--tail", &f->tail, "Print every event (env FAULT_PROXY_TAILING)",
       proxy);

  const std::string plugins = "Plugins";
  many("-g,--grpc-plugin", &f->grpc_plugins,
       "A gRPC plugin (the Rust fault's PluginService, docs/plugins.md): "
       "http://HOST:PORT or HOST:PORT; repeatable and comma-separated, called "
       "in order (env FAULT_GRPC_PLUGINS)",
       "ADDR", plugins);
  opt("--plugin-failure", &f->plugin_failure,
      "When a plugin call fails, times out or the plugin is down: open (default: "
      "the traffic goes on unchanged) or closed (the request is answered 502, "
      "the connection reset) (env FAULT_PLUGIN_FAILURE)",
      "open|closed", plugins);
  opt("--plugin-timeout", &f->plugin_timeout,
      "Deadline of each plugin call (default 1s; e.g. 100ms) (env FAULT_PLUGIN_TIMEOUT)",
      "DURATION", plugins);
  opt("--plugin-health-interval", &f->plugin_health_interval,
      "How often each plugin's health is checked; a plugin that is down is "
      "disabled, one that comes back enabled (default 10s) (env "
      "FAULT_PLUGIN_HEALTH_INTERVAL)",
      "DURATION", plugins);

  const std::string latency = "Latency";
  flag("--with-latency", &f->with_latency,
       "Delay traffic (env FAULT_WITH_LATENCY)", latency);
  flag("--latency-per-read-write", &f->latency_per_read_write,
       "A delay for every read and write, not once per flight of bytes (env "
       "FAULT_LATENCY_PER_READ_WRITE)",
       latency);
  side_direction("latency", &f->latency_side, &f->latency_direction, "LATENCY",
                 latency);
  opt("--latency-distribution", &f->latency_distribution,
      "normal (default: --latency-mean, --latency-stddev), uniform "
      "(--latency-min, --latency-max), pareto (--latency-scale, "
      "--latency-shape) or pareto-normal (all four) (env "
      "FAULT_LATENCY_DISTRIBUTION)",
      "KIND", latency);
  const std::string ms =
      " (milliseconds, e.g. 300 or 0.5, or a duration like 250us)";
  opt("--latency-mean", &f->latency_mean,
      "Mean delay, above 0" + ms + " (env FAULT_LATENCY_MEAN)", "MS", latency);
  opt("--latency-stddev", &f->latency_stddev,
      "Standard deviation" + ms + " (env FAULT_LATENCY_STANDARD_DEVIATION)",
      "MS", latency);
  opt("--latency-min", &f->latency_min,
      "Uniform: lower bound, default 0" + ms + " (env FAULT_LATENCY_MIN)", "MS",
      latency);
  opt("--latency-max", &f->latency_max,
      "Uniform: upper bound, above --latency-min" + ms +
          " (env FAULT_LATENCY_MAX)",
      "MS", latency);
  opt("--latency-scale", &f->latency_scale,
      "Pareto: scale (the smallest delay), above 0" + ms +
          " (env FAULT_LATENCY_SCALE)",
      "MS", latency);
  opt("--latency-shape", &f->latency_shape,
      "Pareto: shape (alpha), above 0 (env FAULT_LATENCY_SHAPE)", "NUMBER",
      latency);
  sched("latency", &f->latency_sched, "FAULT_LATENCY_SCHED", latency);

  const std::string jitter = "Jitter";
  flag("--with-jitter", &f->with_jitter,
       "Add a random delay, uniform from 0 to --jitter-amplitude (env "
       "FAULT_WITH_JITTER)",
       jitter);
  side_direction("jitter", &f->jitter_side, &f->jitter_direction, "JITTER",
                 jitter);
  opt("--jitter-amplitude", &f->jitter_amplitude,
      "Largest added delay, default 20" + ms + " (env FAULT_JITTER_AMPLITUDE)",
      "MS", jitter);
  opt("--jitter-frequency", &f->jitter_frequency,
      "Accepted for compatibility (default 5): our jitter applies to every "
      "flight of bytes, whatever the frequency (env FAULT_JITTER_FREQ)",
      "HZ", jitter);
  sched("jitter", &f->jitter_sched, "FAULT_JITTER_SCHED", jitter);

  const std::string bandwidth = "Bandwidth";
  flag("--with-bandwidth", &f->with_bandwidth,
       "Limit the throughput of each connection (env FAULT_WITH_BANDWIDTH)",
       bandwidth);
  side_direction("bandwidth", &f->bandwidth_side, &f->bandwidth_direction,
                 "BANDWIDTH", bandwidth);
  opt("--bandwidth-rate", &f->bandwidth_rate,
      "Rate in --bandwidth-unit, a whole number above 0 (default 1000; env "
      "FAULT_BANDWIDTH_RATE)",
      "N", bandwidth);
  opt("--bandwidth-unit", &f->bandwidth_unit,
      "Bps, KBps, MBps or GBps: BYTES per second, decimal (K = 1000), any "
      "case, so mbps is megabytes here (default Bps; env "
      "FAULT_BANDWIDTH_UNIT)",
      "UNIT", bandwidth);
  sched("bandwidth", &f->bandwidth_sched, "FAULT_BANDWIDTH_SCHED", bandwidth);

  const std::string loss = "Packet loss";
  flag("--with-packet-loss", &f->with_packet_loss,
       "Lose packets: on TCP a lost packet is a retransmission stall, not "
       "missing or truncated data (env FAULT_WITH_PACKET_LOSS)",
       loss);
  side_direction("packet-loss", &f->packet_loss_side, &f->packet_loss_direction,
                 "PACKET_LOSS", loss);
  opt("--packet-loss-rate", &f->packet_loss_rate,
      "Loss probability, e.g. 5% or 0.05 (default 10%, the loss of the Rust "
      "tool's starting state)",
      "PROB", loss);
  sched("packet-loss", &f->packet_loss_sched, "FAULT_PACKET_LOSS_SCHED", loss);

  const std::string blackhole = "Blackhole";
  flag("--with-blackhole", &f->with_blackhole,
       "Swallow traffic: sent bytes vanish, nothing arrives (env "
       "FAULT_WITH_BLACKHOLE)",
       blackhole);
  side_direction("blackhole", &f->blackhole_side, &f->blackhole_direction,
                 "BLACKHOLE", blackhole);
  sched("blackhole", &f->blackhole_sched, "FAULT_BLACKHOLE_SCHED", blackhole);

  const std::string http = "HTTP response";
  flag("--with-http-response", &f->with_http_response,
       "Answer forward-proxy HTTP requests with an error response (env "
       "FAULT_WITH_HTTP_FAULT)",
       http);
  opt("--http-response-status", &f->http_response_status,
      "Status code, 100..599 (default 500; env FAULT_HTTP_FAULT_STATUS)",
      "CODE", http);
  opt("--http-response-body", &f->http_response_body,
      "Response body, at most 4096 bytes (env FAULT_HTTP_FAULT_BODY)", "TEXT",
      http);
  opt("--http-response-trigger-probability",
      &f->http_response_trigger_probability,
      "Share of requests answered so, 0..1 or N% (default 1; env "
      "FAULT_HTTP_FAULT_PROBABILITY)",
      "PROB", http);
  opt("--http-response-direction", &f->http_response_direction,
      "Accepted and ignored: documented for the Rust tool, which has no such "
      "flag; it has no effect",
      "DIRECTION", http);
  sched("http-response", &f->http_response_sched, "FAULT_HTTP_FAULT_SCHED",
        http);

  const std::string dns = "DNS";
  flag("--with-dns", &f->with_dns,
       "Fail the forward proxy's name lookups with NXDOMAIN (env "
       "FAULT_WITH_DNS)",
       dns);
  opt("--dns-rate", &f->dns_rate,
      "Share of lookups that fail, 0..1 or N% (default 0.5; env "
      "FAULT_DNS_PROBABILITY)",
      "PROB", dns);
  sched("dns", &f->dns_sched, "FAULT_DNS_SCHED", dns);

  const std::string stealth = "Stealth (eBPF capture, root or CAP_BPF + CAP_NET_ADMIN)";
  flag("--stealth", &f->stealth,
       "Capture the connections and UDP datagrams of the processes the --capture-* "
       "flags select, running or started later, and give them the faults "
       "(env FAULT_ENABLE_STEALTH)",
       stealth);
  many("--capture-process", &f->capture_processes,
       "Process name (as ps -o comm shows it, at most 15 bytes) captured at every "
       "connect; NAME* for every name starting with NAME; repeatable and "
       "comma-separated (env FAULT_EBPF_PROCESS_NAME)",
       "NAME", stealth);
  many("--capture-pid", &f->capture_pids,
       "A running process captured with every child it starts from now on; repeatable",
       "PID", stealth);
  many("--capture-exec", &f->capture_execs,
       "Programs captured from their exec on, with their children: the program "
       "file's base name (at most 15 bytes); repeatable",
       "NAME", stealth);
  many("--capture-cgroup", &f->capture_cgroups,
       "A cgroup2 directory whose processes are captured: its path, or its path "
       "below the cgroup2 mount as /proc/PID/cgroup shows it; repeatable",
       "PATH", stealth);
  flag("--capture-all-netns", &f->capture_all_netns,
       "Capture in every network namespace (default: only fault's own)", stealth);
  opt("--ebpf-proxy-port", &f->ebpf_proxy_port,
      "Port of the capture listeners on 127.0.0.1 and [::1] (default: any free "
      "port; env FAULT_EBPF_PROXY_PORT)",
      "PORT", stealth);
  opt("--ebpf-programs-dir", &f->ebpf_programs_dir,
      "Accepted for compatibility; the programs are built into fault "
      "(env FAULT_EBPF_PROGRAMS_DIR)",
      "DIR", stealth);
  opt("--ebpf-proxy-ip", &f->ebpf_proxy_ip,
      "Accepted for compatibility; captured traffic goes to loopback listeners "
      "(env FAULT_EBPF_PROXY_IP)",
      "IP", stealth);
  opt("--ebpf-proxy-iface", &f->ebpf_proxy_iface,
      "Accepted for compatibility, as --ebpf-proxy-ip (env FAULT_EBPF_PROXY_IFACE)",
      "IFACE", stealth);

  const std::string ours = "Policies";
  many("--policy", &f->policy_files,
       "Policy file (YAML or JSON), applied to the connections its targets "
       "select; repeatable",
       "FILE", ours);
  fault::policy::AddEffectFlags(
      run, &f->effects,
      {"latency-distribution", "latency-min", "latency-max", "latency-mean",
       "latency-stddev", "latency-shape", "latency-scale", "blackhole-direction", "seed"});
  opt("--seed", &f->seed,
      "Seed for every policy without its own (default: random, printed in "
      "the summary)",
      "N", ours);
  opt("--events", &f->events_path,
      "Write every injected fault as a JSON line to FILE", "FILE.jsonl", ours);
  opt("--max-connections", &f->max_connections,
      "Connections open at a time; beyond it new clients wait in the accept queue "
      "(default: what the descriptor limit allows)",
      "N", ours);
  opt("--event-loops", &f->event_loops,
      "Event loops (threads) of the proxy (default: half the cores, at least one; "
      "more pays where the proxy has cores of its own)",
      "N", ours);
  flag("-q,--quiet", &f->quiet, "No summary on exit", ours);
  opt("--control", &f->control,
      "Serve the gRPC control plane (fault ctl, docs/control.md) on unix, unix:PATH or "
      "tcp:HOST:PORT (needs --control-token-file)",
      "ADDRESS", ours);
  opt("--control-token-file", &f->control_token_file,
      "A file holding the token every control call must send", "FILE", ours);
  flag("--expect-faults", &f->expect_faults,
       "Exit with status 3 when some policy never fired", ours);
}

// --- The configuration -------------------------------------------------------

absl::StatusOr<RunConfig> BuildRunConfig(const RunFlags& f,
                                         const Getenv& getenv) {
  const Env env(getenv);
  Problems problems;
  RunConfig config;

  // The forward proxy.
  const Input disable = env.Switch(f.disable_http_proxy, "--disable-http-proxy",
                                   "FAULT_DISABLE_HTTP_PROXY");
  const Input address =
      env.Value(f.proxy_address, "--proxy-address",
                {"FAULT_HTTP_PROXY_ADDRESS", "FAULT_PROXY_ADDRESS"});
  if (address.env == "FAULT_HTTP_PROXY_ADDRESS") {
    const char* docs = getenv ? getenv("FAULT_PROXY_ADDRESS") : nullptr;
    if (docs != nullptr && *docs != '\0' && address.value != docs) {
      problems.Add(address, Cat("FAULT_PROXY_ADDRESS=", docs,
                                " says otherwise (set one of them)"));
    }
  }
  if (disable.on) {
    if (address.from_command_line()) {
      problems.Add(address, Cat("has no effect with ", disable.Where()));
    }
  } else {
    absl::StatusOr<ListenAddress> listen = ParseListenAddress(
        address.given ? address.value : kDefaultProxyAddress, true);
    if (listen.ok()) {
      config.proxy_address = *listen;
    } else {
      problems.Add(address, listen.status());
    }
  }

  // Mappings: one listener each, none shared.
  for (const std::string& text : f.mappings) {
    const std::string where = Cat("--proxy ", Quote(text));
    absl::StatusOr<Mapping> m = ParseMapping(text);
    if (!m.ok()) {
      problems.Add("--proxy", std::string(m.status().message()));
      continue;
    }
    bool clash = false;
    for (const Mapping& other : config.mappings) {
      if (other.udp == m->udp && Overlap(other.listen, m->listen)) {
        problems.Add(where, Cat("listens on ", m->listen.ToString(),
                                ", as --proxy ", Quote(other.text), " does"));
        clash = true;
        break;
      }
    }
    if (!clash && !m->udp && config.proxy_address.has_value() &&
        Overlap(*config.proxy_address, m->listen)) {
      problems.Add(where, Cat("listens on ", m->listen.ToString(),
                              ", the HTTP proxy's address (",
                              address.given ? address.Where()
                                            : std::string("--proxy-address"),
                              "; move one, or --disable-http-proxy)"));
      clash = true;
    }
    if (!clash) config.mappings.push_back(*std::move(m));
  }
  // Stealth capture.
  const Input stealth = env.Switch(f.stealth, "--stealth", "FAULT_ENABLE_STEALTH");
  {
    StealthConfig st;
    std::vector<std::string> names;
    std::string names_where = "--capture-process";
    if (!f.capture_processes.empty()) {
      names = f.capture_processes;
    } else if (const char* v = getenv ? getenv("FAULT_EBPF_PROCESS_NAME") : nullptr;
               v != nullptr && *v != '\0') {
      names.emplace_back(v);
      names_where = Cat("FAULT_EBPF_PROCESS_NAME=", v);
    }
    for (const std::string& item : names) {
      for (absl::string_view one : absl::StrSplit(Av(item), ',')) {
        one = absl::StripAsciiWhitespace(one);
        std::string name(one.data(), one.size());
        const std::string bare = !name.empty() && name.back() == '*'
                                     ? name.substr(0, name.size() - 1) : name;
        if (bare.empty()) {
          problems.Add(names_where, Cat(Quote(item), " has an empty name"));
        } else if (bare.size() > 15) {
          problems.Add(names_where,
                       Cat(Quote(name), " is longer than 15 bytes; the kernel keeps only the "
                           "first 15 of a process name (use ", Quote(bare.substr(0, 15)),
                           ", or a shorter prefix with *)"));
        } else if (bare.find('/') != std::string::npos || bare.find('*') != std::string::npos) {
          problems.Add(names_where,
                       Cat(Quote(name), " is not a process name (no '/'; '*' only at the "
                           "end, for a prefix)"));
        } else {
          st.processes.push_back(name);
        }
      }
    }
    for (const std::string& text : f.capture_pids) {
      if (std::optional<uint64_t> pid = NumberIn(text, 1, 4194304)) {
        st.pids.push_back(static_cast<int>(*pid));
      } else {
        problems.Add("--capture-pid", Cat(Quote(text), " is not a process ID"));
      }
    }
    for (const std::string& name : f.capture_execs) {
      if (name.empty() || name.size() > 15 || name.find('/') != std::string::npos) {
        problems.Add("--capture-exec",
                     Cat(Quote(name), " is not a program name of 1 to 15 bytes without '/' "
                         "(the kernel names a process after its file's base name, cut to "
                         "15 bytes)"));
      } else {
        st.exec_names.push_back(name);
      }
    }
    for (const std::string& path : f.capture_cgroups) {
      if (path.empty() || path[0] != '/') {
        problems.Add("--capture-cgroup",
                     Cat(Quote(path), " is not a path (an absolute directory, or the path "
                         "below the cgroup2 mount as /proc/PID/cgroup shows it)"));
      } else {
        st.cgroups.push_back(path);
      }
    }
    st.all_netns = f.capture_all_netns;
    const Input port = env.Value(f.ebpf_proxy_port, "--ebpf-proxy-port",
                                 {"FAULT_EBPF_PROXY_PORT"});
    if (port.given) {
      if (std::optional<uint64_t> n = NumberIn(port.value, 1, 65535)) {
        st.port = static_cast<uint16_t>(*n);
      } else {
        problems.Add(port, Cat(Quote(port.value), " is not a port from 1 to 65535"));
      }
    }
    const bool any_capture_flag = !f.capture_processes.empty() || !f.capture_pids.empty() ||
                                  !f.capture_execs.empty() || !f.capture_cgroups.empty() ||
                                  f.capture_all_netns || !f.ebpf_proxy_port.empty();
    if (stealth.on) {
      if (names.empty() && f.capture_pids.empty() && f.capture_execs.empty() &&
          f.capture_cgroups.empty()) {
        problems.Add(stealth,
                     "selects no process: add --capture-process NAME, --capture-pid PID, "
                     "--capture-exec NAME or --capture-cgroup PATH");
      }
      config.stealth = std::move(st);
    } else if (any_capture_flag) {
      problems.Add(!f.capture_processes.empty() ? "--capture-process"
                   : !f.capture_pids.empty()    ? "--capture-pid"
                   : !f.capture_execs.empty()   ? "--capture-exec"
                   : !f.capture_cgroups.empty() ? "--capture-cgroup"
                   : f.capture_all_netns        ? "--capture-all-netns"
                                                : "--ebpf-proxy-port",
                   "needs --stealth");
    }
  }

  if (disable.on && f.mappings.empty() && !stealth.on) {
    problems.Add(disable,
                 "nothing to run: no --proxy mapping, no HTTP proxy and no --stealth");
  }

  // Upstreams: repeatable and comma-separated.
  {
    std::vector<std::string> items;
    std::string where = "--upstream";
    if (!f.upstreams.empty()) {
      items = f.upstreams;
    } else if (const char* v = getenv ? getenv("FAULT_UPSTREAMS") : nullptr;
               v != nullptr && *v != '\0') {
      items.emplace_back(v);
      where = Cat("FAULT_UPSTREAMS=", v);
    }
    for (const std::string& item : items) {
      size_t start = 0;
      while (start <= item.size()) {
        size_t comma = item.find(',', start);
        if (comma == std::string::npos) comma = item.size();
        absl::string_view one = absl::StripAsciiWhitespace(
            Av(std::string_view(item).substr(start, comma - start)));
        absl::StatusOr<std::string> u =
            NormalizeUpstream(std::string_view(one.data(), one.size()));
        if (!u.ok()) {
          problems.Add(where, one.empty()
                                  ? Cat(Quote(item), " has an empty item")
                                  : std::string(u.status().message()));
        } else if (std::find(config.upstreams.begin(), config.upstreams.end(),
                             *u) == config.upstreams.end()) {
          config.upstreams.push_back(*u);
        }
        start = comma + 1;
      }
    }
  }

  // gRPC plugins: repeatable and comma-separated, in order.
  {
    std::vector<std::string> items = f.grpc_plugins;
    std::string where = "--grpc-plugin";
    if (items.empty()) {
      if (const char* v = getenv ? getenv("FAULT_GRPC_PLUGINS") : nullptr;
          v != nullptr && *v != '\0') {
        items.emplace_back(v);
        where = Cat("FAULT_GRPC_PLUGINS=", v);
      }
    }
    for (const std::string& item : items) {
      for (absl::string_view one : absl::StrSplit(Av(item), ',')) {
        one = absl::StripAsciiWhitespace(one);
        std::string target, why;
        if (one.empty()) {
          problems.Add(where, Cat(Quote(item), " has an empty item"));
        } else if (!fault::grpc_module::PluginTarget(std::string_view(one.data(), one.size()),
                                                     &target, &why)) {
          problems.Add(where, Cat(Quote(std::string(one)), " ", why));
        } else {
          config.plugins.emplace_back(one);
        }
      }
    }
    const Input failure =
        env.Value(f.plugin_failure, "--plugin-failure", {"FAULT_PLUGIN_FAILURE"});
    if (failure.given) {
      const std::string v = Lower(failure.value);
      if (v == "closed") {
        config.plugin_fail_closed = true;
      } else if (v != "open") {
        problems.Add(failure, Cat(Quote(failure.value), " is not open or closed"));
      }
    }
    auto duration_of = [&](const std::string& cli, std::string_view flag, std::string_view var,
                           int64_t max_ns, std::string_view max_text, int64_t* out) {
      const Input in = env.Value(cli, flag, {var});
      if (!in.given) return;
      absl::StatusOr<int64_t> ns = ParseProxyDuration(in.value);
      if (!ns.ok()) {
        problems.Add(in, ns.status());
      } else if (*ns <= 0 || *ns > max_ns) {
        problems.Add(in, Cat(Quote(in.value), " is not above 0 and at most ", max_text));
      } else {
        *out = *ns;
      }
    };
    duration_of(f.plugin_timeout, "--plugin-timeout", "FAULT_PLUGIN_TIMEOUT",
                600'000'000'000, "10m", &config.plugin_timeout_ns);
    duration_of(f.plugin_health_interval, "--plugin-health-interval",
                "FAULT_PLUGIN_HEALTH_INTERVAL", 3'600'000'000'000, "1h",
                &config.plugin_health_interval_ns);
    if (config.plugins.empty()) {
      for (const auto& [value, name] :
           {std::pair{&f.plugin_failure, "--plugin-failure"},
            std::pair{&f.plugin_timeout, "--plugin-timeout"},
            std::pair{&f.plugin_health_interval, "--plugin-health-interval"}}) {
        if (!value->empty()) problems.Add(name, "has no effect without --grpc-plugin");
      }
    }
  }

  // Lifecycle.
  Context ctx{&env, &problems};
  const Input duration =
      env.Value(f.duration, "--duration", {"FAULT_PROXY_DURATION"});
  if (duration.given) {
    absl::StatusOr<int64_t> ns = ParseProxyDuration(duration.value);
    if (!ns.ok()) {
      problems.Add(duration, ns.status());
      ctx.run_duration_ok = false;
    } else if (*ns == 0) {
      problems.Add(duration,
                   "must be above 0 (leave it out to run until "
                   "interrupted)");
      ctx.run_duration_ok = false;
    } else {
      config.duration_ns = ctx.run_duration_ns = *ns;
    }
  }
  config.no_ui = env.Switch(f.no_ui, "--no-ui", "FAULT_PROXY_NO_UI").on;
  config.tail = env.Switch(f.tail, "--tail", "FAULT_PROXY_TAILING").on;
  config.quiet = f.quiet;
  config.expect_faults = f.expect_faults;
  config.events_path = f.events_path;
  if (!f.control.empty()) {
    absl::StatusOr<fault::control::ControlEndpoint> endpoint =
        fault::control::ParseControlAddress(f.control);
    if (!endpoint.ok()) {
      problems.Add("--control", std::string(endpoint.status().message()));
    } else if (endpoint->tcp && f.control_token_file.empty()) {
      problems.Add("--control", Cat(Quote(f.control),
                                    ": a TCP control plane needs --control-token-file FILE "
                                    "(anyone who can reach the port could change the faults)"));
    } else {
      config.control = *endpoint;
    }
  }
  if (!f.control_token_file.empty()) {
    absl::StatusOr<std::string> token = fault::control::ReadTokenFile(f.control_token_file);
    if (f.control.empty()) {
      problems.Add("--control-token-file", "needs --control ADDRESS");
    } else if (!token.ok()) {
      problems.Add("--control-token-file", std::string(token.status().message()));
    } else {
      config.control_token = *token;
    }
  }
  if (!f.event_loops.empty()) {
    if (std::optional<uint64_t> n = NumberIn(f.event_loops, 1, 64)) {
      config.event_loops = static_cast<int>(*n);
    } else {
      problems.Add("--event-loops", Cat(Quote(f.event_loops), " is not a number from 1 to 64"));
    }
  }
  if (!f.max_connections.empty()) {
    if (std::optional<uint64_t> n = NumberIn(f.max_connections, 1, 10'000'000)) {
      config.max_connections = static_cast<size_t>(*n);
    } else {
      problems.Add("--max-connections",
                   Cat(Quote(f.max_connections), " is not a number from 1 to 10000000"));
    }
  }
  if (!f.seed.empty()) {
    uint64_t seed = 0;
    if (!AllDigits(f.seed) || !absl::SimpleAtoi(Av(f.seed), &seed)) {
      problems.Add("--seed",
                   Cat(Quote(f.seed), " is not an unsigned 64-bit integer"));
    } else {
      config.seed = seed;
    }
  }

  // The faults, one policy each.
  Built built;
  AddLatency(f, ctx, &built);
  AddJitter(f, ctx, &built);
  AddBandwidth(f, ctx, &built);
  AddPacketLoss(f, ctx, &built);
  AddBlackhole(f, ctx, &built);
  AddHttpResponse(f, ctx, &built);
  AddDns(f, ctx, &built);
  std::map<std::string, std::string> defined;  // name -> where from
  for (Policy& p : built.policies) {
    config.flag_policies.push_back(p.name());
    defined.emplace(p.name(), Cat("--with-", p.name()));
    *config.policies.add_policies() = std::move(p);
  }
  config.http_bodies = std::move(built.http_bodies);

  // Ours: policy files, then the effect flags' inline policy.
  if (!f.policy_files.empty()) {
    absl::StatusOr<fault::v1::PolicySet> set =
        fault::policy::LoadPolicyFiles(f.policy_files);
    if (!set.ok()) {
      problems.AddLines(set.status());
    } else {
      for (const Policy& p : set->policies()) {
        auto [prev, inserted] = defined.emplace(p.name(), "--policy");
        if (!inserted) {
          problems.Add(
              "--policy",
              Cat("policy ", Quote(p.name()), " has the name of the ",
                  prev->second, " fault's policy (rename it in its file)"));
          continue;
        }
        *config.policies.add_policies() = p;
      }
    }
  }
  absl::StatusOr<std::optional<Policy>> inline_policy =
      fault::policy::PolicyFromFlags(f.effects, "cli");
  if (!inline_policy.ok()) {
    problems.AddLines(inline_policy.status());
  } else if (inline_policy->has_value()) {
    if (defined.count("cli") != 0) {
      problems.Add("--policy",
                   "policy \"cli\" has the name of the effect flags' inline "
                   "policy (rename it in its file)");
    } else {
      *config.policies.add_policies() = **std::move(inline_policy);
    }
  }

  // The table's bounds (policies, targets, intervals, ...), as the proxy
  // will compile them.
  if (problems.empty() && config.policies.policies_size() > 0) {
    fault::exec::CompileOptions options;
    options.global_seed = config.seed.value_or(0);
    options.run_duration_ns = config.duration_ns;
    absl::StatusOr<fault::exec::CompiledTable> table =
        fault::exec::CompileTable(config.policies, options);
    if (!table.ok()) {
      problems.Add("the flag faults, --policy files and effect flags together",
                   std::string(table.status().message()));
    }
  }
  if (!problems.empty()) return problems.ToStatus();
  return config;
}

}  // namespace fault::run
