// The time module: durations and times with Go's semantics over absl::Time
// and absl::TimeZone. Go's layout language (format and parse_time) and its
// duration syntax are implemented here from Go's documentation; absl's
// own formats (strftime, "1h2m") differ in details that Starlark programs
// written for starlark-go would see.
#include "starlark/lib/time.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "starlark/lib/module.h"
#include "starlark/starlark.h"
#include "starlark/syntax.h"

namespace fault::starlark {
namespace {

constexpr int64_t kNanosecond = 1;
constexpr int64_t kMicrosecond = 1000;
constexpr int64_t kMillisecond = 1000 * kMicrosecond;
constexpr int64_t kSecond = 1000 * kMillisecond;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;

const char kClockKey[] = "time.clock";

std::string S(std::string_view v) { return std::string(v); }

// ---------------------------------------------------------------- zones

// A location: a loaded zone and the name Go would give it. `abbr` is set
// for a zone fabricated while parsing an unknown abbreviation ("XYZ", zero
// offset); `fixed` for an offset parsed from text ("+01:00"), which Go
// names "" and prints as "+0100".
struct Zone {
  absl::TimeZone tz = absl::UTCTimeZone();
  std::string name = "UTC";
  std::string abbr;
  bool fixed = false;
};

bool LoadZone(std::string_view name, Zone* z) {
  if (name.empty() || name == "UTC") {
    *z = Zone{};
    return true;
  }
  if (name == "Local") {
    z->tz = absl::LocalTimeZone();
    z->name = "Local";
    z->abbr.clear();
    z->fixed = false;
    return true;
  }
  // Only plain zoneinfo names ("America/Argentina/Buenos_Aires",
  // "Etc/GMT+5"): no paths, no absl-specific "Fixed/" forms. absl caches
  // every name it was asked for, found or not, so junk is refused here.
  if (name.size() > 64 || name.front() == '/' ||
      name.find("..") != std::string_view::npos || name.rfind("Fixed/", 0) == 0)
    return false;
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '/' || c == '_' || c == '-' ||
              c == '+';
    if (!ok) return false;
  }
  absl::TimeZone tz;
  if (!absl::LoadTimeZone(S(name), &tz)) return false;
  z->tz = tz;
  z->name = S(name);
  z->abbr.clear();
  z->fixed = false;
  return true;
}

Zone ZoneOrFail(std::string_view fname, std::string_view name) {
  Zone z;
  if (!LoadZone(name, &z))
    Fail(absl::StrCat(S(fname), ": unknown time zone ", S(name)));
  return z;
}

// ---------------------------------------------------------------- durations

std::string QuoteGo(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

}  // namespace

bool ParseGoDuration(std::string_view orig, int64_t* out, std::string* error) {
  std::string_view s = orig;
  auto invalid = [&] {
    *error = "invalid duration " + QuoteGo(orig);
    return false;
  };
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") {
    *out = 0;
    return true;
  }
  if (s.empty()) return invalid();
  // Accumulate the magnitude in unsigned 64 bits; at most 2^63 fits.
  uint64_t total = 0;
  constexpr uint64_t kMax = uint64_t{1} << 63;
  while (!s.empty()) {
    if (!(s[0] == '.' || (s[0] >= '0' && s[0] <= '9'))) return invalid();
    uint64_t v = 0;
    size_t i = 0;
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; i++) {
      if (v > (kMax - 1) / 10) return invalid();
      v = v * 10 + (s[i] - '0');
      if (v > kMax) return invalid();
    }
    bool pre = i > 0;
    s.remove_prefix(i);
    uint64_t f = 0;
    double scale = 1;
    bool post = false;
    if (!s.empty() && s[0] == '.') {
      s.remove_prefix(1);
      size_t j = 0;
      bool overflow = false;
      for (; j < s.size() && s[j] >= '0' && s[j] <= '9'; j++) {
        if (overflow) continue;
        if (f > (std::numeric_limits<uint64_t>::max() - 9) / 10) {
          overflow = true;  // further digits cannot matter
          continue;
        }
        f = f * 10 + (s[j] - '0');
        scale *= 10;
      }
      post = j > 0;
      s.remove_prefix(j);
    }
    if (!pre && !post) return invalid();
    size_t u = 0;
    while (u < s.size() && s[u] != '.' && !(s[u] >= '0' && s[u] <= '9')) u++;
    if (u == 0) {
      *error = "missing unit in duration " + QuoteGo(orig);
      return false;
    }
    std::string_view unit_name = s.substr(0, u);
    s.remove_prefix(u);
    uint64_t unit;
    if (unit_name == "ns") {
      unit = kNanosecond;
    } else if (unit_name == "us" || unit_name == "\xc2\xb5s" ||
               unit_name == "\xce\xbcs") {  // U+00B5, U+03BC
      unit = kMicrosecond;
    } else if (unit_name == "ms") {
      unit = kMillisecond;
    } else if (unit_name == "s") {
      unit = kSecond;
    } else if (unit_name == "m") {
      unit = kMinute;
    } else if (unit_name == "h") {
      unit = kHour;
    } else {
      *error = "unknown unit " + QuoteGo(unit_name) + " in duration " +
               QuoteGo(orig);
      return false;
    }
    if (v > kMax / unit) return invalid();
    v *= unit;
    if (f > 0) {
      v += static_cast<uint64_t>(static_cast<double>(f) *
                                 (static_cast<double>(unit) / scale));
      if (v > kMax) return invalid();
    }
    total += v;
    if (total > kMax) return invalid();
  }
  if (neg) {
    *out = total == kMax ? std::numeric_limits<int64_t>::min()
                         : -static_cast<int64_t>(total);
    return true;
  }
  if (total > kMax - 1) return invalid();
  *out = static_cast<int64_t>(total);
  return true;
}

namespace {
// Writes the fraction of v (prec digits, trailing zeros dropped, with a
// '.' when any remain) to the front of *buf; returns v / 10^prec.
uint64_t FormatFrac(std::string* buf, uint64_t v, int prec) {
  std::string digits;
  bool print = false;
  for (int i = 0; i < prec; i++) {
    int d = static_cast<int>(v % 10);
    print = print || d != 0;
    if (print) digits.insert(digits.begin(), static_cast<char>('0' + d));
    v /= 10;
  }
  if (print) buf->insert(0, "." + digits);
  return v;
}
}  // namespace

std::string FormatGoDuration(int64_t d) {
  if (d == 0) return "0s";
  bool neg = d < 0;
  uint64_t u = neg ? -static_cast<uint64_t>(d) : static_cast<uint64_t>(d);
  std::string buf;
  if (u < static_cast<uint64_t>(kSecond)) {
    int prec;
    const char* unit;
    if (u < static_cast<uint64_t>(kMicrosecond)) {
      return absl::StrCat(neg ? "-" : "", u, "ns");
    } else if (u < static_cast<uint64_t>(kMillisecond)) {
      prec = 3;
      unit = "\xc2\xb5s";  // µs, as Go prints it
    } else {
      prec = 6;
      unit = "ms";
    }
    buf = unit;
    u = FormatFrac(&buf, u, prec);
    buf.insert(0, std::to_string(u));
  } else {
    buf = "s";
    u = FormatFrac(&buf, u, 9);
    buf.insert(0, std::to_string(u % 60));
    u /= 60;
    if (u > 0) {
      buf.insert(0, std::to_string(u % 60) + "m");
      u /= 60;
      if (u > 0) buf.insert(0, std::to_string(u) + "h");
    }
  }
  if (neg) buf.insert(0, "-");
  return buf;
}

namespace {

class DurationValue;
class TimeValue;

// ---------------------------------------------------------------- layouts

enum class Std {
  kLiteral,
  kLongMonth,              // January
  kMonth,                  // Jan
  kNumMonth,               // 1
  kZeroMonth,              // 01
  kLongWeekDay,            // Monday
  kWeekDay,                // Mon
  kDay,                    // 2
  kUnderDay,               // _2
  kZeroDay,                // 02
  kUnderYearDay,           // __2
  kZeroYearDay,            // 002
  kHour,                   // 15
  kHour12,                 // 3
  kZeroHour12,             // 03
  kMinute,                 // 4
  kZeroMinute,             // 04
  kSecond,                 // 5
  kZeroSecond,             // 05
  kLongYear,               // 2006
  kYear,                   // 06
  kPM,                     // PM
  kpm,                     // pm
  kTZ,                     // MST
  kISO8601TZ,              // Z0700
  kISO8601SecondsTZ,       // Z070000
  kISO8601ShortTZ,         // Z07
  kISO8601ColonTZ,         // Z07:00
  kISO8601ColonSecondsTZ,  // Z07:00:00
  kNumTZ,                  // -0700
  kNumSecondsTZ,           // -070000
  kNumShortTZ,             // -07
  kNumColonTZ,             // -07:00
  kNumColonSecondsTZ,      // -07:00:00
  kFracSecond0,            // .000 (fixed digits)
  kFracSecond9,            // .999 (trailing zeros dropped)
};

struct Chunk {
  Std std;
  std::string text;  // the literal, or the layout element
  int digits = 0;    // fractional seconds
  char sep = '.';
};

bool StartsWithLower(std::string_view s) {
  return !s.empty() && s[0] >= 'a' && s[0] <= 'z';
}
bool IsDigitAt(std::string_view s, size_t i) {
  return i < s.size() && s[i] >= '0' && s[i] <= '9';
}

// Splits a Go layout into literals and elements, as Go's nextStdChunk does.
std::vector<Chunk> SplitLayout(std::string_view layout) {
  std::vector<Chunk> out;
  std::string lit;
  auto emit = [&](Std std, size_t len, size_t i) {
    if (!lit.empty()) out.push_back({Std::kLiteral, std::move(lit)});
    lit.clear();
    out.push_back({std, S(layout.substr(i, len))});
    return len;
  };
  size_t i = 0;
  while (i < layout.size()) {
    std::string_view r = layout.substr(i);
    auto has = [&](std::string_view p) { return r.rfind(p, 0) == 0; };
    size_t n = 0;
    switch (r[0]) {
      case 'J':
        if (has("January")) {
          n = emit(Std::kLongMonth, 7, i);
        } else if (has("Jan") && !StartsWithLower(r.substr(3))) {
          n = emit(Std::kMonth, 3, i);
        }
        break;
      case 'M':
        if (has("Monday")) {
          n = emit(Std::kLongWeekDay, 6, i);
        } else if (has("Mon") && !StartsWithLower(r.substr(3))) {
          n = emit(Std::kWeekDay, 3, i);
        } else if (has("MST")) {
          n = emit(Std::kTZ, 3, i);
        }
        break;
      case '0':
        if (r.size() >= 2 && r[1] >= '1' && r[1] <= '6') {
          static const Std k0x[] = {Std::kZeroMonth,  Std::kZeroDay,
                                    Std::kZeroHour12, Std::kZeroMinute,
                                    Std::kZeroSecond, Std::kYear};
          n = emit(k0x[r[1] - '1'], 2, i);
        } else if (has("002")) {
          n = emit(Std::kZeroYearDay, 3, i);
        }
        break;
      case '1':
        n = has("15") ? emit(Std::kHour, 2, i) : emit(Std::kNumMonth, 1, i);
        break;
      case '2':
        n = has("2006") ? emit(Std::kLongYear, 4, i) : emit(Std::kDay, 1, i);
        break;
      case '_':
        if (has("_2")) {
          if (has("_2006")) {
            lit.push_back('_');
            n = 1 + emit(Std::kLongYear, 4, i + 1);
          } else {
            n = emit(Std::kUnderDay, 2, i);
          }
        } else if (has("__2")) {
          n = emit(Std::kUnderYearDay, 3, i);
        }
        break;
      case '3':
        n = emit(Std::kHour12, 1, i);
        break;
      case '4':
        n = emit(Std::kMinute, 1, i);
        break;
      case '5':
        n = emit(Std::kSecond, 1, i);
        break;
      case 'P':
        if (has("PM")) n = emit(Std::kPM, 2, i);
        break;
      case 'p':
        if (has("pm")) n = emit(Std::kpm, 2, i);
        break;
      case '-':
        if (has("-070000")) {
          n = emit(Std::kNumSecondsTZ, 7, i);
        } else if (has("-07:00:00")) {
          n = emit(Std::kNumColonSecondsTZ, 9, i);
        } else if (has("-0700")) {
          n = emit(Std::kNumTZ, 5, i);
        } else if (has("-07:00")) {
          n = emit(Std::kNumColonTZ, 6, i);
        } else if (has("-07")) {
          n = emit(Std::kNumShortTZ, 3, i);
        }
        break;
      case 'Z':
        if (has("Z070000")) {
          n = emit(Std::kISO8601SecondsTZ, 7, i);
        } else if (has("Z07:00:00")) {
          n = emit(Std::kISO8601ColonSecondsTZ, 9, i);
        } else if (has("Z0700")) {
          n = emit(Std::kISO8601TZ, 5, i);
        } else if (has("Z07:00")) {
          n = emit(Std::kISO8601ColonTZ, 6, i);
        } else if (has("Z07")) {
          n = emit(Std::kISO8601ShortTZ, 3, i);
        }
        break;
      case '.':
      case ',':
        if (r.size() >= 2 && (r[1] == '0' || r[1] == '9')) {
          char ch = r[1];
          size_t j = 1;
          while (j < r.size() && r[j] == ch) j++;
          if (!IsDigitAt(r, j)) {
            n = emit(ch == '0' ? Std::kFracSecond0 : Std::kFracSecond9, j, i);
            out.back().digits = static_cast<int>(j - 1);
            out.back().sep = r[0];
          }
        }
        break;
      default:
        break;
    }
    if (n == 0) {
      lit.push_back(r[0]);
      n = 1;
    }
    i += n;
  }
  if (!lit.empty()) out.push_back({Std::kLiteral, std::move(lit)});
  return out;
}

const char* const kLongMonths[] = {
    "January", "February", "March",     "April",   "May",      "June",
    "July",    "August",   "September", "October", "November", "December"};
const char* const kLongDays[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                 "Thursday", "Friday", "Saturday"};

// Zero-padded (or with `pad`) decimal of v in at least `width` digits; a
// negative value gets a leading '-'.
void AppendInt(std::string* out, int64_t v, int width, char pad = '0') {
  uint64_t u = static_cast<uint64_t>(v);
  if (v < 0) {
    out->push_back('-');
    u = -u;  // also right for INT64_MIN (an infinite past time's year)
  }
  std::string d = std::to_string(u);
  if (static_cast<int>(d.size()) < width) out->append(width - d.size(), pad);
  out->append(d);
}

int WeekdayIndex(absl::Weekday w) {  // Sunday = 0, as Go
  switch (w) {
    case absl::Weekday::sunday:
      return 0;
    case absl::Weekday::monday:
      return 1;
    case absl::Weekday::tuesday:
      return 2;
    case absl::Weekday::wednesday:
      return 3;
    case absl::Weekday::thursday:
      return 4;
    case absl::Weekday::friday:
      return 5;
    default:
      return 6;
  }
}

// The fields of an instant in a zone.
struct Fields {
  absl::CivilSecond cs;
  int64_t nsec = 0;
  int offset = 0;  // seconds east of UTC
  std::string abbr;
};

Fields Breakdown(absl::Time t, const Zone& z) {
  absl::TimeZone::CivilInfo ci = z.tz.At(t);
  Fields f;
  f.cs = ci.cs;
  f.nsec = absl::ToInt64Nanoseconds(ci.subsecond);
  // Infinite times (saturated arithmetic) have an infinite subsecond.
  if (f.nsec < 0 || f.nsec > 999'999'999) f.nsec = f.nsec < 0 ? 0 : 999'999'999;
  f.offset = ci.offset;
  if (!z.abbr.empty()) {
    f.abbr = z.abbr;
  } else if (!z.fixed) {
    f.abbr = ci.zone_abbr;
  }
  return f;
}

std::string FormatLayout(absl::Time t, const Zone& z, std::string_view layout) {
  Fields f = Breakdown(t, z);
  std::string out;
  int64_t year = f.cs.year();
  int month = f.cs.month(), day = f.cs.day(), hour = f.cs.hour();
  for (const Chunk& c : SplitLayout(layout)) {
    switch (c.std) {
      case Std::kLiteral:
        out.append(c.text);
        break;
      case Std::kYear:
        AppendInt(&out, ((year % 100) + 100) % 100, 2);
        break;
      case Std::kLongYear:
        AppendInt(&out, year, 4);
        break;
      case Std::kMonth:
        out.append(std::string_view(kLongMonths[month - 1]).substr(0, 3));
        break;
      case Std::kLongMonth:
        out.append(kLongMonths[month - 1]);
        break;
      case Std::kNumMonth:
        AppendInt(&out, month, 0);
        break;
      case Std::kZeroMonth:
        AppendInt(&out, month, 2);
        break;
      case Std::kWeekDay:
        out.append(
            std::string_view(kLongDays[WeekdayIndex(absl::GetWeekday(f.cs))])
                .substr(0, 3));
        break;
      case Std::kLongWeekDay:
        out.append(kLongDays[WeekdayIndex(absl::GetWeekday(f.cs))]);
        break;
      case Std::kDay:
        AppendInt(&out, day, 0);
        break;
      case Std::kUnderDay:
        AppendInt(&out, day, 2, ' ');
        break;
      case Std::kZeroDay:
        AppendInt(&out, day, 2);
        break;
      case Std::kUnderYearDay:
        AppendInt(&out, absl::GetYearDay(absl::CivilDay(f.cs)), 3, ' ');
        break;
      case Std::kZeroYearDay:
        AppendInt(&out, absl::GetYearDay(absl::CivilDay(f.cs)), 3);
        break;
      case Std::kHour:
        AppendInt(&out, hour, 2);
        break;
      case Std::kHour12:
      case Std::kZeroHour12: {
        int hr = hour % 12;
        if (hr == 0) hr = 12;
        AppendInt(&out, hr, c.std == Std::kHour12 ? 0 : 2);
        break;
      }
      case Std::kMinute:
        AppendInt(&out, f.cs.minute(), 0);
        break;
      case Std::kZeroMinute:
        AppendInt(&out, f.cs.minute(), 2);
        break;
      case Std::kSecond:
        AppendInt(&out, f.cs.second(), 0);
        break;
      case Std::kZeroSecond:
        AppendInt(&out, f.cs.second(), 2);
        break;
      case Std::kPM:
        out.append(hour >= 12 ? "PM" : "AM");
        break;
      case Std::kpm:
        out.append(hour >= 12 ? "pm" : "am");
        break;
      case Std::kISO8601TZ:
      case Std::kISO8601SecondsTZ:
      case Std::kISO8601ShortTZ:
      case Std::kISO8601ColonTZ:
      case Std::kISO8601ColonSecondsTZ:
      case Std::kNumTZ:
      case Std::kNumSecondsTZ:
      case Std::kNumShortTZ:
      case Std::kNumColonTZ:
      case Std::kNumColonSecondsTZ: {
        bool iso =
            c.std == Std::kISO8601TZ || c.std == Std::kISO8601SecondsTZ ||
            c.std == Std::kISO8601ShortTZ || c.std == Std::kISO8601ColonTZ ||
            c.std == Std::kISO8601ColonSecondsTZ;
        if (iso && f.offset == 0) {
          out.push_back('Z');
          break;
        }
        int off = f.offset;
        out.push_back(off < 0 ? '-' : '+');
        if (off < 0) off = -off;
        AppendInt(&out, off / 3600, 2);
        bool colon = c.std == Std::kISO8601ColonTZ ||
                     c.std == Std::kISO8601ColonSecondsTZ ||
                     c.std == Std::kNumColonTZ ||
                     c.std == Std::kNumColonSecondsTZ;
        bool short_tz =
            c.std == Std::kISO8601ShortTZ || c.std == Std::kNumShortTZ;
        bool seconds = c.std == Std::kISO8601SecondsTZ ||
                       c.std == Std::kISO8601ColonSecondsTZ ||
                       c.std == Std::kNumSecondsTZ ||
                       c.std == Std::kNumColonSecondsTZ;
        if (!short_tz) {
          if (colon) out.push_back(':');
          AppendInt(&out, (off / 60) % 60, 2);
        }
        if (seconds) {
          if (colon) out.push_back(':');
          AppendInt(&out, off % 60, 2);
        }
        break;
      }
      case Std::kTZ: {
        if (!f.abbr.empty()) {
          out.append(f.abbr);
          break;
        }
        int zone = f.offset / 60;  // minutes
        out.push_back(zone < 0 ? '-' : '+');
        if (zone < 0) zone = -zone;
        AppendInt(&out, zone / 60, 2);
        AppendInt(&out, zone % 60, 2);
        break;
      }
      case Std::kFracSecond0:
      case Std::kFracSecond9: {
        std::string digits = std::to_string(f.nsec);
        digits.insert(0, 9 - digits.size(), '0');
        digits.resize(std::min(c.digits, 9));
        if (c.std == Std::kFracSecond9) {
          while (!digits.empty() && digits.back() == '0') digits.pop_back();
          if (digits.empty()) break;
        }
        out.push_back(c.sep);
        out.append(digits);
        break;
      }
    }
  }
  return out;
}

// ---- parsing

// One or two digits (exactly two when `fixed`).
bool GetNum(std::string_view* s, bool fixed, int* out) {
  if (!IsDigitAt(*s, 0)) return false;
  if (!IsDigitAt(*s, 1)) {
    if (fixed) return false;
    *out = (*s)[0] - '0';
    s->remove_prefix(1);
    return true;
  }
  *out = ((*s)[0] - '0') * 10 + ((*s)[1] - '0');
  s->remove_prefix(2);
  return true;
}

// One to three digits (exactly three when `fixed`).
bool GetNum3(std::string_view* s, bool fixed, int* out) {
  int n = 0, i = 0;
  for (; i < 3 && IsDigitAt(*s, i); i++) n = n * 10 + ((*s)[i] - '0');
  if (i == 0 || (fixed && i != 3)) return false;
  s->remove_prefix(i);
  *out = n;
  return true;
}

bool Atoi(std::string_view s, int* out) {
  if (s.empty()) return false;
  int n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  *out = n;
  return true;
}

// Case-insensitive match of one of `names` (or their first 3 letters) at
// the start of *s; returns its index or -1.
int Lookup(std::string_view* s, const char* const* names, int n, bool abbrev) {
  for (int i = 0; i < n; i++) {
    std::string_view name = names[i];
    if (abbrev) name = name.substr(0, 3);
    if (s->size() < name.size()) continue;
    bool eq = true;
    for (size_t k = 0; k < name.size() && eq; k++)
      eq = std::tolower(static_cast<unsigned char>((*s)[k])) ==
           std::tolower(static_cast<unsigned char>(name[k]));
    if (eq) {
      s->remove_prefix(name.size());
      return i;
    }
  }
  return -1;
}

// Length of a zone abbreviation at the start of s (3 to 5 upper-case
// letters, the 4- and 5-letter forms ending in 'T'), or 0.
size_t ZoneAbbrLength(std::string_view s) {
  if (s.rfind("ChST", 0) == 0 || s.rfind("MeST", 0) == 0) return 4;
  size_t n = 0;
  while (n < s.size() && n < 6 && s[n] >= 'A' && s[n] <= 'Z') n++;
  if (n == 3) return 3;
  if ((n == 4 || n == 5) && s[n - 1] == 'T') return n;
  return 0;
}

// Fractional seconds ".123" / ",123" at the start of s (the separator
// included): nanoseconds, digits beyond nine ignored.
int64_t ParseNanos(std::string_view s) {
  int64_t ns = 0;
  int k = 0;
  for (size_t i = 1; i < s.size() && k < 9; i++, k++)
    ns = ns * 10 + (s[i] - '0');
  for (; k < 9; k++) ns *= 10;
  return ns;
}

int DaysIn(int month, int64_t year) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2) {
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return leap ? 29 : 28;
  }
  return kDays[month - 1];
}

struct Parsed {
  absl::Time t;
  Zone zone;
};

// Go's time.ParseInLocation. On failure returns false with Go's message
// ("parsing time \"x\" as \"layout\": cannot parse \"x\" as \"2006\"").
bool ParseLayout(std::string_view layout, std::string_view value,
                 const Zone& loc, Parsed* out, std::string* error) {
  const std::string avalue = S(value);
  auto cannot = [&](std::string_view rest, std::string_view elem) {
    *error =
        absl::StrCat("parsing time ", QuoteGo(avalue), " as ", QuoteGo(layout),
                     ": cannot parse ", QuoteGo(rest), " as ", QuoteGo(elem));
    return false;
  };
  auto range = [&](std::string_view what) {
    *error = absl::StrCat("parsing time ", QuoteGo(avalue), ": ", S(what),
                          " out of range");
    return false;
  };
  int64_t year = 0;
  int month = -1, day = -1, yday = -1, hour = 0, minute = 0, sec = 0;
  int64_t nsec = 0;
  bool pm = false, am = false, utc = false, have_offset = false;
  int zone_offset = 0;
  std::string zone_name;
  std::vector<Chunk> chunks = SplitLayout(layout);
  for (size_t ci = 0; ci < chunks.size(); ci++) {
    const Chunk& c = chunks[ci];
    std::string_view hold = value;
    if (c.std == Std::kLiteral) {
      // Spaces in the layout match runs of spaces; other bytes exactly.
      std::string_view p = c.text;
      while (!p.empty()) {
        if (p[0] == ' ') {
          if (!value.empty() && value[0] != ' ') return cannot(hold, c.text);
          while (!p.empty() && p[0] == ' ') p.remove_prefix(1);
          while (!value.empty() && value[0] == ' ') value.remove_prefix(1);
          continue;
        }
        if (value.empty() || value[0] != p[0]) return cannot(hold, c.text);
        p.remove_prefix(1);
        value.remove_prefix(1);
      }
      continue;
    }
    bool ok = true;
    switch (c.std) {
      case Std::kYear: {
        int y;
        if (value.size() < 2 || !Atoi(value.substr(0, 2), &y)) {
          ok = false;
          break;
        }
        value.remove_prefix(2);
        year = y >= 69 ? 1900 + y : 2000 + y;
        break;
      }
      case Std::kLongYear: {
        int y;
        if (value.size() < 4 || !Atoi(value.substr(0, 4), &y)) {
          ok = false;
          break;
        }
        value.remove_prefix(4);
        year = y;
        break;
      }
      case Std::kMonth:
      case Std::kLongMonth: {
        int m = Lookup(&value, kLongMonths, 12, c.std == Std::kMonth);
        if (m < 0) ok = false;
        month = m + 1;
        break;
      }
      case Std::kNumMonth:
      case Std::kZeroMonth:
        ok = GetNum(&value, c.std == Std::kZeroMonth, &month);
        if (ok && (month <= 0 || month > 12)) return range("month");
        break;
      case Std::kWeekDay:
      case Std::kLongWeekDay:
        ok = Lookup(&value, kLongDays, 7, c.std == Std::kWeekDay) >= 0;
        break;
      case Std::kDay:
      case Std::kUnderDay:
      case Std::kZeroDay:
        if (c.std == Std::kUnderDay && !value.empty() && value[0] == ' ')
          value.remove_prefix(1);
        ok = GetNum(&value, c.std == Std::kZeroDay, &day);
        break;
      case Std::kUnderYearDay:
      case Std::kZeroYearDay:
        for (int k = 0; k < 2 && c.std == Std::kUnderYearDay &&
                        !value.empty() && value[0] == ' ';
             k++)
          value.remove_prefix(1);
        ok = GetNum3(&value, c.std == Std::kZeroYearDay, &yday);
        break;
      case Std::kHour:
        ok = GetNum(&value, false, &hour);
        if (ok && hour >= 24) return range("hour");
        break;
      case Std::kHour12:
      case Std::kZeroHour12:
        ok = GetNum(&value, c.std == Std::kZeroHour12, &hour);
        if (ok && hour > 12) return range("hour");
        break;
      case Std::kMinute:
      case Std::kZeroMinute:
        ok = GetNum(&value, c.std == Std::kZeroMinute, &minute);
        if (ok && minute >= 60) return range("minute");
        break;
      case Std::kSecond:
      case Std::kZeroSecond: {
        ok = GetNum(&value, c.std == Std::kZeroSecond, &sec);
        if (!ok) break;
        if (sec >= 60) return range("second");
        // Fractional seconds in the text that the layout does not show.
        size_t next = ci + 1;
        while (next < chunks.size() && chunks[next].std == Std::kLiteral)
          next++;
        bool next_frac =
            next < chunks.size() && (chunks[next].std == Std::kFracSecond0 ||
                                     chunks[next].std == Std::kFracSecond9);
        if (!next_frac && value.size() >= 2 &&
            (value[0] == '.' || value[0] == ',') && IsDigitAt(value, 1)) {
          size_t n = 1;
          while (IsDigitAt(value, n)) n++;
          nsec = ParseNanos(value.substr(0, n));
          value.remove_prefix(n);
        }
        break;
      }
      case Std::kPM:
      case Std::kpm: {
        if (value.size() < 2) {
          ok = false;
          break;
        }
        std::string_view p = value.substr(0, 2);
        bool upper = c.std == Std::kPM;
        if (p == (upper ? "PM" : "pm")) {
          pm = true;
        } else if (p == (upper ? "AM" : "am")) {
          am = true;
        } else {
          ok = false;
          break;
        }
        value.remove_prefix(2);
        break;
      }
      case Std::kISO8601TZ:
      case Std::kISO8601SecondsTZ:
      case Std::kISO8601ShortTZ:
      case Std::kISO8601ColonTZ:
      case Std::kISO8601ColonSecondsTZ:
      case Std::kNumTZ:
      case Std::kNumSecondsTZ:
      case Std::kNumShortTZ:
      case Std::kNumColonTZ:
      case Std::kNumColonSecondsTZ: {
        bool iso =
            c.std == Std::kISO8601TZ || c.std == Std::kISO8601SecondsTZ ||
            c.std == Std::kISO8601ShortTZ || c.std == Std::kISO8601ColonTZ ||
            c.std == Std::kISO8601ColonSecondsTZ;
        if (iso && !value.empty() && value[0] == 'Z') {
          value.remove_prefix(1);
          utc = true;
          break;
        }
        std::string_view hh, mm = "00", ss = "00";
        size_t used;
        if (c.std == Std::kISO8601ColonTZ || c.std == Std::kNumColonTZ) {
          if (value.size() < 6 || value[3] != ':') {
            ok = false;
            break;
          }
          hh = value.substr(1, 2), mm = value.substr(4, 2), used = 6;
        } else if (c.std == Std::kNumShortTZ || c.std == Std::kISO8601ShortTZ) {
          if (value.size() < 3) {
            ok = false;
            break;
          }
          hh = value.substr(1, 2), used = 3;
        } else if (c.std == Std::kISO8601ColonSecondsTZ ||
                   c.std == Std::kNumColonSecondsTZ) {
          if (value.size() < 9 || value[3] != ':' || value[6] != ':') {
            ok = false;
            break;
          }
          hh = value.substr(1, 2), mm = value.substr(4, 2),
          ss = value.substr(7, 2), used = 9;
        } else if (c.std == Std::kISO8601SecondsTZ ||
                   c.std == Std::kNumSecondsTZ) {
          if (value.size() < 7) {
            ok = false;
            break;
          }
          hh = value.substr(1, 2), mm = value.substr(3, 2),
          ss = value.substr(5, 2), used = 7;
        } else {
          if (value.size() < 5) {
            ok = false;
            break;
          }
          hh = value.substr(1, 2), mm = value.substr(3, 2), used = 5;
        }
        int h, m, s;
        if ((value[0] != '+' && value[0] != '-') || !Atoi(hh, &h) ||
            !Atoi(mm, &m) || !Atoi(ss, &s)) {
          ok = false;
          break;
        }
        if (h > 24) return range("time zone offset hour");
        if (m > 60) return range("time zone offset minute");
        if (s > 60) return range("time zone offset second");
        zone_offset = (h * 60 + m) * 60 + s;
        if (value[0] == '-') zone_offset = -zone_offset;
        have_offset = true;
        value.remove_prefix(used);
        break;
      }
      case Std::kTZ: {
        if (value.rfind("UTC", 0) == 0) {
          value.remove_prefix(3);
          utc = true;
          break;
        }
        size_t n = ZoneAbbrLength(value);
        if (n == 0) {
          ok = false;
          break;
        }
        zone_name = S(value.substr(0, n));
        value.remove_prefix(n);
        break;
      }
      case Std::kFracSecond0: {
        size_t n = 1 + c.digits;
        if (value.size() < n || (value[0] != '.' && value[0] != ',')) {
          ok = false;
          break;
        }
        for (size_t k = 1; k < n && ok; k++) ok = IsDigitAt(value, k);
        if (!ok) break;
        nsec = ParseNanos(value.substr(0, n));
        value.remove_prefix(n);
        break;
      }
      case Std::kFracSecond9: {
        if (value.size() < 2 || (value[0] != '.' && value[0] != ',') ||
            !IsDigitAt(value, 1))
          break;  // optional
        size_t n = 1;
        while (IsDigitAt(value, n)) n++;
        nsec = ParseNanos(value.substr(0, n));
        value.remove_prefix(n);
        break;
      }
      case Std::kLiteral:
        break;
    }
    if (!ok) return cannot(hold, c.text);
  }
  if (!value.empty()) {
    *error = absl::StrCat("parsing time ", QuoteGo(avalue),
                          ": extra text: ", QuoteGo(value));
    return false;
  }
  if (pm && hour < 12) hour += 12;
  if (am && hour == 12) hour = 0;
  if (yday >= 0) {
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (yday < 1 || yday > (leap ? 366 : 365)) return range("day-of-year");
    absl::CivilDay d = absl::CivilDay(year, 1, 1) + (yday - 1);
    if (month >= 0 && month != d.month()) {
      *error = absl::StrCat("parsing time ", QuoteGo(avalue),
                            ": day-of-year does not match month");
      return false;
    }
    if (day >= 0 && day != d.day()) {
      *error = absl::StrCat("parsing time ", QuoteGo(avalue),
                            ": day-of-year does not match day");
      return false;
    }
    month = d.month();
    day = d.day();
  } else {
    if (month < 0) month = 1;
    if (day < 0) day = 1;
  }
  if (day < 1 || day > DaysIn(month, year)) return range("day");
  absl::CivilSecond cs(year, month, day, hour, minute, sec);
  absl::Duration frac = absl::Nanoseconds(nsec);
  if (utc) {
    out->t = absl::FromCivil(cs, absl::UTCTimeZone()) + frac;
    out->zone = Zone{};
    return true;
  }
  if (have_offset) {
    out->t = absl::FromCivil(cs, absl::UTCTimeZone()) + frac -
             absl::Seconds(zone_offset);
    // The given location when its offset at that instant agrees.
    if (loc.abbr.empty() && !loc.fixed &&
        loc.tz.At(out->t).offset == zone_offset) {
      out->zone = loc;
    } else {
      out->zone.tz = absl::FixedTimeZone(zone_offset);
      out->zone.name = "";
      out->zone.abbr.clear();
      out->zone.fixed = true;
    }
    return true;
  }
  if (!zone_name.empty()) {
    // The location's zone when it uses this abbreviation then; else a
    // fabricated zone of that name at offset zero.
    absl::Time in_loc = absl::FromCivil(cs, loc.tz) + frac;
    if (zone_name == loc.tz.At(in_loc).zone_abbr) {
      out->t = in_loc;
      out->zone = loc;
    } else {
      out->t = absl::FromCivil(cs, absl::UTCTimeZone()) + frac;
      out->zone.tz = absl::UTCTimeZone();
      out->zone.name = zone_name;
      out->zone.abbr = zone_name;
      out->zone.fixed = false;
    }
    return true;
  }
  out->t = absl::FromCivil(cs, loc.tz) + frac;
  out->zone = loc;
  return true;
}

// ---------------------------------------------------------------- values

int64_t CheckedAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) Fail("time.duration out of range");
  return r;
}

class DurationValue : public HostValue {
 public:
  explicit DurationValue(int64_t ns) : ns_(ns) {}
  std::string Type() const override { return "time.duration"; }
  std::string Repr() const override { return FormatGoDuration(ns_); }
  bool Truth() const override { return ns_ != 0; }
  bool Hash(uint64_t* out) const override {
    *out = static_cast<uint64_t>(ns_) * 0x9e3779b97f4a7c15ull;
    return true;
  }
  std::vector<std::string> AttrNames() const override {
    return {"hours",   "microseconds", "milliseconds",
            "minutes", "nanoseconds",  "seconds"};
  }
  Value Attr(Thread&, std::string_view name) override {
    if (name == "hours") return Float(Split(kHour));
    if (name == "minutes") return Float(Split(kMinute));
    if (name == "seconds") return Float(Split(kSecond));
    if (name == "milliseconds") return Int(ns_ / kMillisecond);
    if (name == "microseconds") return Int(ns_ / kMicrosecond);
    if (name == "nanoseconds") return Int(ns_);
    return Value();
  }
  bool CompareTo(const HostValue& other, int* out) const override {
    auto* o = dynamic_cast<const DurationValue*>(&other);
    if (o == nullptr) return false;
    *out = ns_ < o->ns_ ? -1 : (ns_ > o->ns_ ? 1 : 0);
    return true;
  }
  Value Binary(Tok op, const Value& y, bool left) override;
  int64_t ns() const { return ns_; }

 private:
  // Whole units plus the fraction, as Go computes Hours() etc. (keeps
  // precision for long durations).
  double Split(int64_t unit) const {
    int64_t whole = ns_ / unit;
    return static_cast<double>(whole) +
           static_cast<double>(ns_ % unit) / static_cast<double>(unit);
  }
  int64_t ns_;
};

class TimeValue : public HostValue {
 public:
  TimeValue(absl::Time t, Zone z) : t_(t), zone_(std::move(z)) {}
  std::string Type() const override { return "time.time"; }
  std::string Repr() const override {
    return FormatLayout(t_, zone_, "2006-01-02 15:04:05.999999999 -0700 MST");
  }
  bool Truth() const override {
    static const absl::Time kZero = absl::FromCivil(
        absl::CivilSecond(1, 1, 1, 0, 0, 0), absl::UTCTimeZone());
    return t_ != kZero;
  }
  bool Hash(uint64_t* out) const override {
    absl::Duration d = t_ - absl::UnixEpoch();
    int64_t s = absl::IDivDuration(d, absl::Seconds(1), &d);
    *out = static_cast<uint64_t>(s) * 0x9e3779b97f4a7c15ull ^
           static_cast<uint64_t>(absl::ToInt64Nanoseconds(d));
    return true;
  }
  std::vector<std::string> AttrNames() const override {
    return {"day",        "format", "hour", "in_location", "minute", "month",
            "nanosecond", "second", "unix", "unix_nano",   "year"};
  }
  Value Attr(Thread&, std::string_view name) override {
    if (name == "format")
      return Value::Adopt(new BuiltinObj("format", FormatMethod, Self()));
    if (name == "in_location")
      return Value::Adopt(
          new BuiltinObj("in_location", InLocationMethod, Self()));
    if (name == "unix") return Int(absl::ToUnixSeconds(t_));
    if (name == "unix_nano") return Int(absl::ToUnixNanos(t_));
    Fields f = Breakdown(t_, zone_);
    if (name == "year") return Int(f.cs.year());
    if (name == "month") return Int(f.cs.month());
    if (name == "day") return Int(f.cs.day());
    if (name == "hour") return Int(f.cs.hour());
    if (name == "minute") return Int(f.cs.minute());
    if (name == "second") return Int(f.cs.second());
    if (name == "nanosecond") return Int(f.nsec);
    return Value();
  }
  bool CompareTo(const HostValue& other, int* out) const override {
    auto* o = dynamic_cast<const TimeValue*>(&other);
    if (o == nullptr) return false;
    *out = t_ < o->t_ ? -1 : (t_ > o->t_ ? 1 : 0);
    return true;
  }
  Value Binary(Tok op, const Value& y, bool left) override;
  absl::Time t() const { return t_; }
  const Zone& zone() const { return zone_; }

 private:
  Value Self() { return Value(static_cast<Object*>(this)); }

  static Value FormatMethod(Thread&, const Value& recv, const Args& a) {
    CheckArgCount("format", a, 1, 1);
    if (!a.pos[0].Is(Kind::kString))
      Fail(absl::StrCat("format: for parameter \"layout\": got ",
                        TypeName(a.pos[0]), ", want string"));
    auto* self = recv.as<TimeValue>();
    return Str(FormatLayout(self->t_, self->zone_, StrOf(a.pos[0])));
  }
  static Value InLocationMethod(Thread&, const Value& recv, const Args& a) {
    CheckArgCount("in_location", a, 1, 1);
    if (!a.pos[0].Is(Kind::kString))
      Fail(absl::StrCat("in_location: for parameter \"location\": got ",
                        TypeName(a.pos[0]), ", want string"));
    Zone z = ZoneOrFail("in_location", StrOf(a.pos[0]));
    return NewHost<TimeValue>(recv.as<TimeValue>()->t_, std::move(z));
  }

  absl::Time t_;
  Zone zone_;
};

DurationValue* AsDuration(const Value& v) {
  if (!v.Is(Kind::kHost)) return nullptr;
  return dynamic_cast<DurationValue*>(v.as<HostValue>());
}
TimeValue* AsTime(const Value& v) {
  if (!v.Is(Kind::kHost)) return nullptr;
  return dynamic_cast<TimeValue*>(v.as<HostValue>());
}

Value DurationValue::Binary(Tok op, const Value& y, bool left) {
  DurationValue* yd = AsDuration(y);
  switch (op) {
    case Tok::kPlus:
      if (yd != nullptr) return NewDuration(CheckedAdd(ns_, yd->ns_));
      if (TimeValue* yt = AsTime(y))
        return NewHost<TimeValue>(yt->t() + absl::Nanoseconds(ns_), yt->zone());
      break;
    case Tok::kMinus:
      if (yd != nullptr && left) {
        int64_t r;
        if (__builtin_sub_overflow(ns_, yd->ns_, &r))
          Fail("time.duration out of range");
        return NewDuration(r);
      }
      break;
    case Tok::kSlash:
      if (!left) break;
      if (yd != nullptr) {
        if (yd->ns_ == 0) Fail("time.duration division by zero");
        return Float(static_cast<double>(ns_) / static_cast<double>(yd->ns_));
      }
      if (y.IsInt()) {
        int64_t i;
        if (!IntToInt64(y, &i))
          Fail("int value out of range (want signed 64-bit value)");
        if (i == 0) Fail("time.duration division by zero");
        if (i == -1 && ns_ == std::numeric_limits<int64_t>::min())
          Fail("time.duration out of range");
        return NewDuration(ns_ / i);
      }
      if (y.Is(Kind::kFloat)) {
        double f = FloatOf(y);
        if (f == 0) Fail("time.duration division by zero");
        double r = static_cast<double>(ns_) / f;
        if (!(r >= -9.223372036854775808e18 && r < 9.223372036854775808e18))
          Fail("time.duration out of range");
        return NewDuration(static_cast<int64_t>(r));
      }
      break;
    case Tok::kSlashSlash:
      if (left && yd != nullptr) {
        if (yd->ns_ == 0) Fail("time.duration division by zero");
        if (yd->ns_ == -1 && ns_ == std::numeric_limits<int64_t>::min())
          Fail("time.duration out of range");
        return Int(ns_ / yd->ns_);  // truncated, as Go divides
      }
      break;
    case Tok::kStar:
      if (y.IsInt()) {
        int64_t i, r;
        if (!IntToInt64(y, &i))
          Fail("int value out of range (want signed 64-bit value)");
        if (__builtin_mul_overflow(ns_, i, &r))
          Fail("time.duration out of range");
        return NewDuration(r);
      }
      break;
    default:
      break;
  }
  return Value();
}

Value TimeValue::Binary(Tok op, const Value& y, bool left) {
  switch (op) {
    case Tok::kPlus:
      if (DurationValue* yd = AsDuration(y))
        return NewHost<TimeValue>(t_ + absl::Nanoseconds(yd->ns()), zone_);
      break;
    case Tok::kMinus:
      if (!left) break;
      if (DurationValue* yd = AsDuration(y))
        return NewHost<TimeValue>(t_ - absl::Nanoseconds(yd->ns()), zone_);
      if (TimeValue* yt = AsTime(y)) {
        // Saturates like Go's Time.Sub.
        absl::Duration d = t_ - yt->t_;
        if (d >= absl::Nanoseconds(std::numeric_limits<int64_t>::max()))
          return NewDuration(std::numeric_limits<int64_t>::max());
        if (d <= absl::Nanoseconds(std::numeric_limits<int64_t>::min()))
          return NewDuration(std::numeric_limits<int64_t>::min());
        return NewDuration(absl::ToInt64Nanoseconds(d));
      }
      break;
    default:
      break;
  }
  return Value();
}

// ---------------------------------------------------------------- builtins

std::string StringArg(std::string_view fname, std::string_view param,
                      const Value& v) {
  if (!v.Is(Kind::kString))
    Fail(absl::StrCat(S(fname), ": for parameter \"", S(param), "\": got ",
                      TypeName(v), ", want string"));
  return StrOf(v);
}

Value Now(Thread& th, const Value&, const Args& a) {
  CheckArgCount("time.now", a, 0, 0);
  Clock** c = th.Local<Clock*>(kClockKey);
  static RealClock real;
  absl::Time now = (c != nullptr && *c != nullptr) ? (*c)->Now() : real.Now();
  Zone z;
  LoadZone("Local", &z);
  return NewHost<TimeValue>(now, std::move(z));
}

Value ParseDurationFn(Thread&, const Value&, const Args& a) {
  CheckArgCount("time.parse_duration", a, 1, 1);
  const Value& d = a.pos[0];
  if (AsDuration(d) != nullptr) return d;
  if (!d.Is(Kind::kString))
    Fail(absl::StrCat("time.parse_duration: for parameter \"d\": got ",
                      TypeName(d), ", want string or time.duration"));
  int64_t ns;
  std::string err;
  if (!ParseGoDuration(StrOf(d), &ns, &err))
    Fail("time.parse_duration: " + err);
  return NewDuration(ns);
}

Value IsValidTimezone(Thread&, const Value&, const Args& a) {
  CheckArgCount("time.is_valid_timezone", a, 1, 1);
  std::string name = StringArg("time.is_valid_timezone", "loc", a.pos[0]);
  Zone z;
  return Bool(LoadZone(name, &z));
}

Value ParseTime(Thread&, const Value&, const Args& a) {
  std::string x, format = "2006-01-02T15:04:05Z07:00", location = "UTC";
  UnpackArgs("time.parse_time", a,
             {{"x", &x}, {"format?", &format}, {"location?", &location}});
  Zone loc = ZoneOrFail("time.parse_time", location);
  Parsed p;
  std::string err;
  if (!ParseLayout(format, x, loc, &p, &err)) Fail("time.parse_time: " + err);
  return NewHost<TimeValue>(p.t, std::move(p.zone));
}

Value FromTimestamp(Thread&, const Value&, const Args& a) {
  CheckArgCount("time.from_timestamp", a, 1, 2);
  int64_t sec = 0, nsec = 0;
  for (size_t i = 0; i < a.pos.size(); i++) {
    const char* param = i == 0 ? "sec" : "nsec";
    if (!a.pos[i].IsInt())
      Fail(absl::StrCat("time.from_timestamp: for parameter \"", param,
                        "\": got ", TypeName(a.pos[i]), ", want int"));
    if (!IntToInt64(a.pos[i], i == 0 ? &sec : &nsec))
      Fail(absl::StrCat("time.from_timestamp: for parameter \"", param,
                        "\": int out of range"));
  }
  Zone z;
  LoadZone("Local", &z);
  return NewHost<TimeValue>(
      absl::FromUnixSeconds(sec) + absl::Nanoseconds(nsec), std::move(z));
}

Value MakeTime(Thread&, const Value&, const Args& a) {
  if (!a.pos.empty()) Fail("time.time: unexpected positional arguments");
  int64_t year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0,
          nsec = 0;
  std::string location;
  UnpackArgs("time.time", a,
             {{"year?", &year},
              {"month?", &month},
              {"day?", &day},
              {"hour?", &hour},
              {"minute?", &minute},
              {"second?", &second},
              {"nanosecond?", &nsec},
              {"location?", &location}});
  // Bounds that keep the normalisation of the fields (month 13 is January
  // of the next year, as in Go) far from overflow, and the result within
  // absl::Time's finite range (about 2.9e11 years).
  constexpr int64_t kLimit = int64_t{1} << 40;
  constexpr int64_t kYearLimit = 1'000'000'000;
  std::pair<const char*, int64_t> fields[] = {
      {"year", year}, {"month", month},   {"day", day},
      {"hour", hour}, {"minute", minute}, {"second", second}};
  for (auto& [name, v] : fields) {
    int64_t limit = name[0] == 'y' ? kYearLimit : kLimit;
    if (v < -limit || v > limit)
      Fail(absl::StrCat("time.time: ", name, " ", v, " out of range"));
  }
  Zone z = ZoneOrFail("time.time", location);
  absl::CivilSecond cs(year, month, day, hour, minute, second);
  return NewHost<TimeValue>(absl::FromCivil(cs, z.tz) + absl::Nanoseconds(nsec),
                            std::move(z));
}

}  // namespace

Value NewDuration(int64_t ns) { return NewHost<DurationValue>(ns); }

bool DurationOf(const Value& v, int64_t* ns) {
  DurationValue* d = AsDuration(v);
  if (d == nullptr) return false;
  *ns = d->ns();
  return true;
}

Value NewTime(absl::Time t, std::string_view zone_name) {
  return NewHost<TimeValue>(t, ZoneOrFail("time", zone_name));
}

void SetClock(Thread& thread, Clock* clock) {
  thread.SetLocal(kClockKey, clock);
}

Value NewTimeModule() {
  StringDict m;
  m["from_timestamp"] = NewBuiltin("time.from_timestamp", FromTimestamp);
  m["is_valid_timezone"] =
      NewBuiltin("time.is_valid_timezone", IsValidTimezone);
  m["now"] = NewBuiltin("time.now", Now);
  m["parse_duration"] = NewBuiltin("time.parse_duration", ParseDurationFn);
  m["parse_time"] = NewBuiltin("time.parse_time", ParseTime);
  m["time"] = NewBuiltin("time.time", MakeTime);
  m["nanosecond"] = NewDuration(kNanosecond);
  m["microsecond"] = NewDuration(kMicrosecond);
  m["millisecond"] = NewDuration(kMillisecond);
  m["second"] = NewDuration(kSecond);
  m["minute"] = NewDuration(kMinute);
  m["hour"] = NewDuration(kHour);
  return NewModule("time", std::move(m));
}

}  // namespace fault::starlark
