#include "supervisor/run/proxy_syntax.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "fault/table.h"
#include "supervisor/policy/loader.h"
#include "supervisor/policy/strings.h"
#include "supervisor/policy/units.h"

namespace fault::run {
namespace {

using fault::policy::Av;
using fault::policy::Cat;
using fault::policy::Quote;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = absl::ascii_tolower(static_cast<unsigned char>(c));
  return out;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c));
  });
}

// A plain non-negative decimal: "12", "1.5", ".5".
bool PlainDecimal(std::string_view s) {
  size_t digits = 0, dots = 0;
  for (char c : s) {
    if (absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      ++digits;
    } else if (c == '.') {
      ++dots;
    } else {
      return false;
    }
  }
  return digits > 0 && dots <= 1 && s.back() != '.';
}

// "80" -> 80; 1..65535, or 0..65535 with `allow_zero`.
absl::StatusOr<uint16_t> ParsePort(std::string_view text, bool allow_zero) {
  uint32_t port = 0;
  if (!AllDigits(text) || text.size() > 5 ||
      !absl::SimpleAtoi(Av(text), &port) || port > 65535 ||
      (port == 0 && !allow_zero)) {
    return absl::InvalidArgumentError(
        Cat(text.empty() ? std::string("an empty port") : Quote(text),
            " is not a port (", allow_zero ? "0" : "1", "..65535)"));
  }
  return static_cast<uint16_t>(port);
}

// An IP literal, canonical ("::1" for "0:0::1"); "" when `text` is none.
std::string CanonicalIp(std::string_view text, int* family = nullptr) {
  const std::string s(text);
  unsigned char buf[16];
  char out[INET6_ADDRSTRLEN];
  for (int af : {AF_INET, AF_INET6}) {
    if (inet_pton(af, s.c_str(), buf) == 1 &&
        inet_ntop(af, buf, out, sizeof(out)) != nullptr) {
      if (family != nullptr) *family = af;
      return out;
    }
  }
  return "";
}

// A DNS name as the proxy may be asked to reach it: letters, digits, '-',
// '.', '_'; at most 253 bytes.
bool HostNameLike(std::string_view s) {
  if (s.empty() || s.size() > 253 || s.front() == '.' || s.front() == '-') {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
           c == '.' || c == '_';
  });
}

// HOST:PORT | [IPV6]:PORT | HOST (port optional when `port_optional`):
// the host (brackets removed) and the port text ("" when absent).
absl::Status SplitHostPort(std::string_view text, bool port_optional,
                           std::string* host, std::string* port) {
  host->clear();
  port->clear();
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError(
          Cat(Quote(text), ": \"[\" without \"]\""));
    }
    *host = std::string(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (rest.empty() && port_optional) return absl::OkStatus();
    if (rest.empty() || rest.front() != ':') {
      return absl::InvalidArgumentError(
          Cat(Quote(text), ": expected [IPV6]:PORT, e.g. [::1]:8080"));
    }
    *port = std::string(rest.substr(1));
    int family = 0;
    if (CanonicalIp(*host, &family).empty() || family != AF_INET6) {
      return absl::InvalidArgumentError(
          Cat(Quote(*host), " is not an IPv6 address"));
    }
    return absl::OkStatus();
  }
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    *host = std::string(text);
    return absl::OkStatus();
  }
  if (text.find(':') != colon) {
    return absl::InvalidArgumentError(Cat(
        Quote(text), ": write an IPv6 address in brackets, e.g. [::1]:8080"));
  }
  *host = std::string(text.substr(0, colon));
  *port = std::string(text.substr(colon + 1));
  return absl::OkStatus();
}

// One token of a parse_duration value: a unit and its length in ns.
struct DurationUnit {
  std::string_view name;
  std::string_view ours;  // the unit in our syntax (units.h)
  int64_t multiplier;     // of `ours`
};

constexpr DurationUnit kProxyDurationUnits[] = {
    {"ns", "ns", 1},
    {"nsec", "ns", 1},
    {"nanosecond", "ns", 1},
    {"nanoseconds", "ns", 1},
    {"us", "us", 1},
    {"µs", "us", 1},
    {"usec", "us", 1},
    {"microsecond", "us", 1},
    {"microseconds", "us", 1},
    {"ms", "ms", 1},
    {"msec", "ms", 1},
    {"millisecond", "ms", 1},
    {"milliseconds", "ms", 1},
    {"s", "s", 1},
    {"sec", "s", 1},
    {"secs", "s", 1},
    {"second", "s", 1},
    {"seconds", "s", 1},
    {"m", "m", 1},
    {"min", "m", 1},
    {"mins", "m", 1},
    {"minute", "m", 1},
    {"minutes", "m", 1},
    {"h", "h", 1},
    {"hr", "h", 1},
    {"hrs", "h", 1},
    {"hour", "h", 1},
    {"hours", "h", 1},
    {"d", "h", int64_t{24}},
    {"day", "h", 24},
    {"days", "h", 24},
    {"w", "h", int64_t{24} * 7},
    {"week", "h", int64_t{24} * 7},
    {"weeks", "h", int64_t{24} * 7},
};

}  // namespace

std::string ListenAddress::ToString() const {
  return host.find(':') != std::string::npos ? Cat("[", host, "]:", port)
                                             : Cat(host, ":", port);
}

absl::StatusOr<ListenAddress> ParseListenAddress(std::string_view text,
                                                 bool allow_port_zero) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(Cat(Quote(text), ": ", why));
  };
  std::string host, port;
  if (absl::Status s = SplitHostPort(text, false, &host, &port); !s.ok()) {
    return s;
  }
  if (text.empty() ||
      (text.front() != '[' && text.find(':') == std::string_view::npos)) {
    return bad(
        "expected IPV4:PORT or [IPV6]:PORT, e.g. 127.0.0.1:3180 or [::1]:3180");
  }
  int family = 0;
  const std::string ip = CanonicalIp(host, &family);
  if (ip.empty()) {
    return bad(Cat(Quote(host),
                   " is not an IP address (listeners take an address, not a "
                   "name: 127.0.0.1, 0.0.0.0, [::1], [::])"));
  }
  absl::StatusOr<uint16_t> p = ParsePort(port, allow_port_zero);
  if (!p.ok()) return bad(std::string(p.status().message()));
  return ListenAddress{ip, *p};
}

absl::StatusOr<Mapping> ParseMapping(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(Cat(Quote(text), ": ", why));
  };
  const size_t eq = text.find('=');
  if (eq == std::string_view::npos) {
    return bad("expected LISTEN=UPSTREAM, e.g. 9090=127.0.0.1:6379");
  }
  Mapping m;
  m.text = std::string(text);
  std::string_view left = text.substr(0, eq);
  std::string_view right = text.substr(eq + 1);

  // Left: [PROTO:]PORT | [PROTO:]IPV4:PORT | [PROTO:][IPV6]:PORT.
  if (const size_t colon = left.find(':');
      colon != std::string_view::npos && !left.empty() && left.front() != '[') {
    const std::string_view proto = left.substr(0, colon);
    const bool word = std::all_of(proto.begin(), proto.end(), [](char c) {
      return absl::ascii_isalpha(static_cast<unsigned char>(c));
    });
    if (word && !proto.empty()) {
      if (proto == "http" || proto == "https") {
        const std::string_view port = left.substr(colon + 1);
        return bad(
            Cat("not supported: ", proto,
                ": mappings (an HTTP reverse proxy); use a TCP mapping (", port,
                "=HOST:PORT) or the HTTP forward proxy "
                "(--proxy-address)"));
      }
      if (proto == "psql" || proto == "psqls" || proto == "tls") {
        return bad(Cat("not supported: ", proto,
                       ": mappings (the Rust tool does not start them either); "
                       "use a TCP mapping (",
                       left.substr(colon + 1), "=HOST:PORT)"));
      }
      if (proto != "tcp") {
        return bad(Cat("not supported: the listen side ", Quote(left),
                       " (use PORT, IPV4:PORT or [IPV6]:PORT, optionally "
                       "after tcp:)"));
      }
      left.remove_prefix(colon + 1);
    }
  }
  if (AllDigits(left)) {
    absl::StatusOr<uint16_t> port = ParsePort(left, false);
    if (!port.ok()) return bad(Cat("listen port ", port.status().message()));
    m.listen = ListenAddress{"127.0.0.1", *port};
  } else {
    absl::StatusOr<ListenAddress> listen = ParseListenAddress(left, false);
    if (!listen.ok()) {
      return bad(Cat("listen side ", listen.status().message()));
    }
    m.listen = *listen;
  }

  // Right: HOST:PORT | [IPV6]:PORT | SCHEME://HOST:PORT.
  if (const size_t sep = right.find("://"); sep != std::string_view::npos) {
    const std::string_view scheme = right.substr(0, sep);
    const bool ok =
        !scheme.empty() &&
        absl::ascii_isalpha(static_cast<unsigned char>(scheme.front())) &&
        std::all_of(scheme.begin(), scheme.end(), [](char c) {
          return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                 c == '+' || c == '-' || c == '.';
        });
    if (!ok) return bad(Cat(Quote(scheme), " is not a scheme"));
    m.scheme = Lower(scheme);
    right.remove_prefix(sep + 3);
    if (!right.empty() && right.back() == '/') right.remove_suffix(1);
  }
  if (right.find_first_of("/?#@") != std::string_view::npos) {
    return bad(Cat("the upstream ", Quote(right),
                   " is HOST:PORT (no path, query or user)"));
  }
  std::string host, port;
  if (absl::Status s = SplitHostPort(right, false, &host, &port); !s.ok()) {
    return bad(Cat("upstream ", s.message()));
  }
  if (port.empty()) {
    return bad(Cat("the upstream ", Quote(right),
                   " has no port: give the port (HOST:PORT, e.g. ",
                   host.empty() ? std::string("example.com") : host,
                   m.scheme == "https" ? ":443" : ":80", ")"));
  }
  absl::StatusOr<uint16_t> p = ParsePort(port, false);
  if (!p.ok()) return bad(Cat("upstream port ", p.status().message()));
  if (std::string ip = CanonicalIp(host); !ip.empty()) {
    host = ip;
  } else if (!HostNameLike(host)) {
    return bad(Cat(Quote(host), " is not a host name or IP address"));
  }
  m.upstream = Upstream{host, *p};
  return m;
}

absl::StatusOr<std::string> NormalizeUpstream(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(Cat(Quote(text), ": ", why));
  };
  std::string_view rest = text;
  if (rest == "*") return std::string("*");
  if (rest.empty()) return bad("empty upstream");
  std::string scheme;
  if (const size_t sep = rest.find("://"); sep != std::string_view::npos) {
    scheme = Lower(rest.substr(0, sep));
    rest.remove_prefix(sep + 3);
    // A path is allowed and ignored, as by the Rust tool.
    if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
      rest = rest.substr(0, slash);
    }
  }
  if (rest.find_first_of("/?#@") != std::string_view::npos) {
    return bad("expected HOST, HOST:PORT or SCHEME://HOST[:PORT]");
  }
  std::string host, port;
  const bool bare_ipv6 = rest.find(':') != rest.rfind(':') &&
                         rest.front() != '[' && scheme.empty();
  if (bare_ipv6) {
    host = std::string(rest);  // "::1": an IPv6 literal on any port
  } else if (absl::Status s = SplitHostPort(rest, true, &host, &port);
             !s.ok()) {
    return bad(std::string(s.message()));
  }
  int family = 0;
  if (std::string ip = CanonicalIp(host, &family); !ip.empty()) {
    host = family == AF_INET6 ? Cat("[", ip, "]") : ip;
  } else if (bare_ipv6) {
    return bad("write an IPv6 address in brackets, e.g. [::1]:8080");
  } else if (HostNameLike(host)) {
    host = Lower(host);
  } else {
    return bad(Cat(Quote(host), " is not a host name or IP address"));
  }
  if (port.empty() && !scheme.empty()) {
    if (scheme == "http" || scheme == "ws") {
      port = "80";
    } else if (scheme == "https" || scheme == "wss") {
      port = "443";
    } else {
      return bad(
          Cat("no port, and ", scheme, ":// has no default: give the port"));
    }
  }
  if (port.empty()) return host;  // any port
  absl::StatusOr<uint16_t> p = ParsePort(port, false);
  if (!p.ok()) return bad(std::string(p.status().message()));
  return Cat(host, ":", *p);
}

bool UpstreamMatches(const std::vector<std::string>& upstreams,
                     std::string_view host, uint16_t port) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::string want(host);
  if (std::string ip = CanonicalIp(host); !ip.empty()) want = ip;
  for (const std::string& u : upstreams) {
    if (u == "*") return true;
    std::string h, p;
    if (!SplitHostPort(u, true, &h, &p).ok()) continue;
    if (!fault::policy::EqualsIgnoreCase(h, want)) continue;
    if (p.empty() || p == std::to_string(port)) return true;
  }
  return false;
}

absl::StatusOr<int64_t> ParseProxyDuration(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        Cat(Quote(text), " is not a duration: ", why,
            " (e.g. 60s, 10m, 1m30s, 500ms, or 90 for seconds)"));
  };
  absl::string_view s = absl::StripAsciiWhitespace(Av(text));
  if (s.empty()) return bad("empty value");
  if (s.front() == '-') return bad("negative");
  const std::string_view whole(s.data(), s.size());
  if (PlainDecimal(whole)) {
    absl::StatusOr<int64_t> ns = fault::policy::ParseDuration(Cat(whole, "s"));
    if (!ns.ok()) return bad(Cat("as seconds, ", ns.status().message()));
    return *ns;
  }
  // Number-unit pairs, optionally separated by blanks: "1m30s", "1m 30s",
  // "2 minutes", "1.5h".
  int64_t total = 0;
  size_t i = 0;
  while (i < whole.size()) {
    while (i < whole.size() &&
           absl::ascii_isspace(static_cast<unsigned char>(whole[i])))
      ++i;
    const size_t num_start = i;
    while (i < whole.size() &&
           (absl::ascii_isdigit(static_cast<unsigned char>(whole[i])) ||
            whole[i] == '.')) {
      ++i;
    }
    const std::string_view number = whole.substr(num_start, i - num_start);
    if (!PlainDecimal(number)) {
      return bad(number.empty() ? Cat("expected a number at ",
                                      Quote(whole.substr(num_start)))
                                : Cat(Quote(number), " is not a number"));
    }
    while (i < whole.size() &&
           absl::ascii_isspace(static_cast<unsigned char>(whole[i])))
      ++i;
    const size_t unit_start = i;
    while (i < whole.size() &&
           !absl::ascii_isdigit(static_cast<unsigned char>(whole[i])) &&
           whole[i] != '.' &&
           !absl::ascii_isspace(static_cast<unsigned char>(whole[i]))) {
      ++i;
    }
    const std::string unit = Lower(whole.substr(unit_start, i - unit_start));
    if (unit.empty()) return bad(Cat("missing unit after ", number));
    const DurationUnit* u = nullptr;
    for (const DurationUnit& d : kProxyDurationUnits) {
      if (d.name == unit) u = &d;
    }
    if (u == nullptr) {
      return bad(Cat("unknown unit ", Quote(unit),
                     " (use ns, us, ms, s, m, h, d or w)"));
    }
    absl::StatusOr<int64_t> ns =
        fault::policy::ParseDuration(Cat(number, u->ours));
    if (!ns.ok()) return bad(std::string(ns.status().message()));
    if (*ns > std::numeric_limits<int64_t>::max() / u->multiplier ||
        *ns * u->multiplier > std::numeric_limits<int64_t>::max() - total) {
      return bad("too long");
    }
    total += *ns * u->multiplier;
  }
  return total;
}

absl::StatusOr<fault::v1::Schedule> ParseProxySchedule(
    std::string_view text, int64_t run_duration_ns) {
  fault::policy::IntervalGrammar grammar;
  grammar.proxy_rules = true;
  grammar.run_duration_ns = run_duration_ns;
  grammar.run_duration_name = "--duration";
  grammar.duration = ParseProxyDuration;
  absl::StatusOr<std::vector<fault::v1::Interval>> intervals =
      fault::policy::ParseIntervals(text, grammar);
  if (!intervals.ok()) return intervals.status();
  if (intervals->size() > FAULT_MAX_INTERVALS) {
    return absl::InvalidArgumentError(
        Cat(Quote(text), " has ", intervals->size(),
            " periods; a schedule holds at most ", FAULT_MAX_INTERVALS,
            " (FAULT_MAX_INTERVALS)"));
  }
  fault::v1::Schedule s;
  s.set_kind(fault::v1::Schedule::KIND_INTERVALS);
  for (fault::v1::Interval& iv : *intervals) *s.add_intervals() = std::move(iv);
  if (run_duration_ns > 0) s.set_run_duration_ns(run_duration_ns);
  return s;
}

absl::StatusOr<int64_t> ParseMilliseconds(std::string_view text) {
  if (PlainDecimal(text)) {
    absl::StatusOr<int64_t> ns = fault::policy::ParseDuration(Cat(text, "ms"));
    if (!ns.ok()) {
      return absl::InvalidArgumentError(
          Cat(Quote(text), " milliseconds: ", ns.status().message()));
    }
    return *ns;
  }
  if (!text.empty() && text.front() == '-') {
    return absl::InvalidArgumentError(Cat(Quote(text), " is negative"));
  }
  absl::StatusOr<int64_t> ns = fault::policy::ParseDuration(text);
  if (ns.ok()) return *ns;
  if (!text.empty() &&
      (absl::ascii_isdigit(static_cast<unsigned char>(text.front())) ||
       text.front() == '.')) {
    return ns.status();  // a duration with a problem: say which
  }
  return absl::InvalidArgumentError(
      Cat(Quote(text),
          " is not a number of milliseconds or a duration (e.g. 300, 0.5 or "
          "250us)"));
}

absl::StatusOr<double> ParseProxyNumber(std::string_view text) {
  double v = 0;
  if (!PlainDecimal(text) || !absl::SimpleAtod(Av(text), &v) ||
      !std::isfinite(v)) {
    return absl::InvalidArgumentError(
        Cat(Quote(text), " is not a number (e.g. 1.5)"));
  }
  return v;
}

}  // namespace fault::run
