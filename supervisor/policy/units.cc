#include "supervisor/policy/units.h"

#include <cerrno>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "supervisor/policy/strings.h"

namespace fault::policy {
namespace {

using u128 = unsigned __int128;

// A non-negative decimal number as written: whole part and fraction digits,
// kept exact so that "0.1%" is exactly 1000ppm (no binary floating point).
struct Decimal {
  u128 whole = 0;
  u128 frac = 0;
  int frac_digits = 0;
};

constexpr int kMaxDigits = 30;

// Consumes a decimal number ("12", "1.5", ".5") from the front of `text`.
// Returns false when `text` does not start with one.
bool ConsumeDecimal(std::string_view& text, Decimal* out, bool* too_long) {
  size_t i = 0;
  int whole_digits = 0;
  *out = Decimal{};
  *too_long = false;
  while (i < text.size() && absl::ascii_isdigit(text[i])) {
    if (++whole_digits > kMaxDigits) *too_long = true;
    if (!*too_long) out->whole = out->whole * 10 + (text[i] - '0');
    ++i;
  }
  if (i < text.size() && text[i] == '.') {
    size_t j = i + 1;
    while (j < text.size() && absl::ascii_isdigit(text[j])) {
      if (++out->frac_digits > 18) *too_long = true;
      if (!*too_long) out->frac = out->frac * 10 + (text[j] - '0');
      ++j;
    }
    if (j == i + 1) return false;  // "1." or "."
    i = j;
  } else if (whole_digits == 0) {
    return false;
  }
  text.remove_prefix(i);
  return true;
}

u128 Pow10(int n) {
  u128 r = 1;
  while (n-- > 0) r *= 10;
  return r;
}

enum class ScaleResult { kOk, kNotWhole, kTooLarge };

// value * multiplier, exactly; fails when the result has a fraction.
ScaleResult Scale(const Decimal& d, uint64_t multiplier, u128 limit,
                  u128* out) {
  const u128 whole = d.whole * multiplier;
  if (d.whole != 0 && whole / multiplier != d.whole) {
    return ScaleResult::kTooLarge;
  }
  const u128 den = Pow10(d.frac_digits);
  const u128 num = d.frac * multiplier;
  if (num % den != 0) return ScaleResult::kNotWhole;
  *out = whole + num / den;
  if (*out > limit) return ScaleResult::kTooLarge;
  return ScaleResult::kOk;
}

absl::Status Invalid(std::string_view text, std::string_view what,
                     std::string_view why) {
  return absl::InvalidArgumentError(
      Cat(Quote(text), " is not a ", what, ": ", why));
}

struct Unit {
  std::string_view name;
  uint64_t factor;
};

constexpr Unit kDurationUnits[] = {
    {"ns", 1},
    {"us", 1'000},
    {"µs", 1'000},
    {"ms", 1'000'000},
    {"s", 1'000'000'000},
    {"m", 60'000'000'000},
    {"h", 3'600'000'000'000},
};
constexpr std::string_view kDurationUnitHint = "(use ns, us, ms, s, m or h)";

constexpr Unit kRateUnits[] = {
    {"bps", 1},
    {"kbps", 1'000},
    {"mbps", 1'000'000},
    {"gbps", 1'000'000'000},
};
constexpr std::string_view kRateUnitHint = "(use bps, kbps, mbps or gbps)";

constexpr Unit kSizeUnits[] = {
    {"", 1},
    {"b", 1},
    {"kb", 1ull << 10},
    {"kib", 1ull << 10},
    {"k", 1ull << 10},
    {"mb", 1ull << 20},
    {"mib", 1ull << 20},
    {"m", 1ull << 20},
    {"gb", 1ull << 30},
    {"gib", 1ull << 30},
    {"g", 1ull << 30},
};
constexpr std::string_view kSizeUnitHint = "(use b, kb, mb or gb)";

template <size_t N>
const Unit* FindUnit(const Unit (&units)[N], std::string_view name,
                     bool ignore_case) {
  for (const Unit& u : units) {
    if (ignore_case ? EqualsIgnoreCase(u.name, name) : u.name == name) {
      return &u;
    }
  }
  return nullptr;
}

// Shared by rates and sizes: one number and one unit.
template <size_t N>
absl::StatusOr<uint64_t> ParseScaled(std::string_view text,
                                     std::string_view what,
                                     const Unit (&units)[N],
                                     std::string_view hint,
                                     std::string_view whole_unit) {
  if (text.empty()) return Invalid(text, what, "empty value");
  if (text[0] == '-') {
    return Invalid(text, what, Cat("negative ", what, "s are not allowed"));
  }
  std::string_view rest = text;
  Decimal d;
  bool too_long;
  if (!ConsumeDecimal(rest, &d, &too_long)) {
    return Invalid(text, what, "expected a number followed by a unit");
  }
  if (too_long) return Invalid(text, what, "too many digits");
  const Unit* unit = nullptr;
  if (rest.empty() && d.whole == 0 && d.frac == 0) {
    return 0;  // "0" needs no unit
  }
  unit = FindUnit(units, rest, /*ignore_case=*/true);
  if (unit == nullptr) {
    if (rest.empty()) return Invalid(text, what, Cat("missing unit ", hint));
    return Invalid(text, what, Cat("unknown unit ", Quote(rest), " ", hint));
  }
  u128 value;
  switch (
      Scale(d, unit->factor, std::numeric_limits<uint64_t>::max(), &value)) {
    case ScaleResult::kNotWhole:
      return Invalid(text, what, Cat("not a whole number of ", whole_unit));
    case ScaleResult::kTooLarge:
      return Invalid(text, what, "too large");
    case ScaleResult::kOk:
      break;
  }
  return static_cast<uint64_t>(value);
}

// Writes value/unit with at most three decimals when that is exact.
bool FormatExact(uint64_t value, uint64_t unit, std::string_view suffix,
                 std::string* out) {
  if (value < unit) return false;
  const u128 scaled = static_cast<u128>(value) * 1000;
  if (scaled % unit != 0) return false;
  const uint64_t thousandths = static_cast<uint64_t>(scaled / unit);
  std::string s = Cat(thousandths / 1000);
  uint64_t frac = thousandths % 1000;
  if (frac != 0) {
    std::string f = Cat(frac + 1000).substr(1);  // zero-padded
    while (!f.empty() && f.back() == '0') f.pop_back();
    Append(&s, ".", f);
  }
  *out = Cat(s, suffix);
  return true;
}

#define FAULT_ERRNO_LIST(X)                                                                    \
  X(EPERM)                                                                                     \
  X(ENOENT) X(ESRCH) X(EINTR) X(EIO) X(ENXIO) X(E2BIG) X(ENOEXEC) X(EBADF) X(                  \
      ECHILD) X(EAGAIN) X(ENOMEM) X(EACCES) X(EFAULT) X(ENOTBLK) X(EBUSY)                      \
      X(EEXIST) X(EXDEV) X(ENODEV) X(ENOTDIR) X(EISDIR) X(EINVAL) X(ENFILE) X(                 \
          EMFILE) X(ENOTTY) X(ETXTBSY) X(EFBIG) X(ENOSPC) X(ESPIPE) X(EROFS)                   \
          X(EMLINK) X(EPIPE) X(EDOM) X(ERANGE) X(EDEADLK) X(ENAMETOOLONG) X(                   \
              ENOLCK) X(ENOSYS) X(ENOTEMPTY) X(ELOOP) X(ENOMSG) X(EIDRM)                       \
              X(ECHRNG) X(EL2NSYNC) X(EL3HLT) X(EL3RST) X(ELNRNG) X(EUNATCH) X(                \
                  ENOCSI) X(EL2HLT) X(EBADE) X(EBADR) X(EXFULL) X(ENOANO)                      \
                  X(EBADRQC) X(EBADSLT) X(EBFONT) X(ENOSTR) X(ENODATA) X(                      \
                      ETIME) X(ENOSR) X(ENONET) X(ENOPKG) X(EREMOTE) X(ENOLINK)                \
                      X(EADV) X(ESRMNT) X(ECOMM) X(EPROTO) X(EMULTIHOP) X(                     \
                          EDOTDOT) X(EBADMSG) X(EOVERFLOW) X(ENOTUNIQ) X(EBADFD)               \
                          X(EREMCHG) X(ELIBACC) X(ELIBBAD) X(ELIBSCN) X(                       \
                              ELIBMAX) X(ELIBEXEC) X(EILSEQ) X(ERESTART) X(ESTRPIPE)           \
                              X(EUSERS) X(ENOTSOCK) X(EDESTADDRREQ) X(EMSGSIZE) X(             \
                                  EPROTOTYPE) X(ENOPROTOOPT) X(EPROTONOSUPPORT)                \
                                  X(ESOCKTNOSUPPORT) X(EOPNOTSUPP) X(EPFNOSUPPORT) X(          \
                                      EAFNOSUPPORT) X(EADDRINUSE)                              \
                                      X(EADDRNOTAVAIL) X(ENETDOWN) X(ENETUNREACH) X(           \
                                          ENETRESET) X(ECONNABORTED) X(ECONNRESET)             \
                                          X(ENOBUFS) X(EISCONN) X(ENOTCONN) X(                 \
                                              ESHUTDOWN) X(ETOOMANYREFS)                       \
                                              X(ETIMEDOUT) X(ECONNREFUSED) X(                  \
                                                  EHOSTDOWN) X(EHOSTUNREACH) X(EALREADY)       \
                                                  X(EINPROGRESS) X(ESTALE) X(                  \
                                                      EUCLEAN) X(ENOTNAM) X(ENAVAIL)           \
                                                      X(EISNAM) X(EREMOTEIO) X(                \
                                                          EDQUOT) X(ENOMEDIUM)                 \
                                                          X(EMEDIUMTYPE) X(                    \
                                                              ECANCELED) X(ENOKEY)             \
                                                              X(EKEYEXPIRED) X(                \
                                                                  EKEYREVOKED) X(EKEYREJECTED) \
                                                                  X(EOWNERDEAD) X(             \
                                                                      ENOTRECOVERABLE)         \
                                                                      X(ERFKILL)               \
                                                                          X(EHWPOISON)

struct ErrnoEntry {
  std::string_view name;
  int number;
};

constexpr ErrnoEntry kErrnos[] = {
#define FAULT_ERRNO_ENTRY(e) {#e, e},
    FAULT_ERRNO_LIST(FAULT_ERRNO_ENTRY)
#undef FAULT_ERRNO_ENTRY
    // Aliases: accepted as input, never printed.
    {"EWOULDBLOCK", EWOULDBLOCK},
    {"EDEADLOCK", EDEADLOCK},
    {"ENOTSUP", ENOTSUP},
};
constexpr size_t kPrimaryErrnos = sizeof(kErrnos) / sizeof(kErrnos[0]) - 3;

}  // namespace

absl::StatusOr<int64_t> ParseDuration(std::string_view text) {
  constexpr std::string_view kWhat = "duration";
  if (text.empty()) return Invalid(text, kWhat, "empty value");
  if (text[0] == '-') {
    return Invalid(text, kWhat, "negative durations are not allowed");
  }
  if (text == "0") return 0;
  // One or more number+unit pairs, as in Go: "1m30s", "1.5s", "250us".
  std::string_view rest = text;
  u128 total = 0;
  constexpr u128 kMax = std::numeric_limits<int64_t>::max();
  while (!rest.empty()) {
    Decimal d;
    bool too_long;
    if (!ConsumeDecimal(rest, &d, &too_long)) {
      return Invalid(text, kWhat, Cat("expected a number at ", Quote(rest)));
    }
    if (too_long) return Invalid(text, kWhat, "too many digits");
    size_t n = 0;
    while (n < rest.size() && !absl::ascii_isdigit(rest[n]) && rest[n] != '.') {
      ++n;
    }
    const std::string_view unit_text = rest.substr(0, n);
    rest.remove_prefix(n);
    if (unit_text.empty()) {
      return Invalid(text, kWhat, Cat("missing unit ", kDurationUnitHint));
    }
    const Unit* unit =
        FindUnit(kDurationUnits, unit_text, /*ignore_case=*/false);
    if (unit == nullptr) {
      return Invalid(
          text, kWhat,
          Cat("unknown unit ", Quote(unit_text), " ", kDurationUnitHint));
    }
    u128 value;
    switch (Scale(d, unit->factor, kMax, &value)) {
      case ScaleResult::kNotWhole:
        return Invalid(text, kWhat, "not a whole number of nanoseconds");
      case ScaleResult::kTooLarge:
        return Invalid(text, kWhat, "too large (at most 2562047h)");
      case ScaleResult::kOk:
        break;
    }
    total += value;
    if (total > kMax)
      return Invalid(text, kWhat, "too large (at most 2562047h)");
  }
  return static_cast<int64_t>(total);
}

absl::StatusOr<uint32_t> ParseProbability(std::string_view text) {
  constexpr std::string_view kWhat = "probability";
  if (text.empty()) return Invalid(text, kWhat, "empty value");
  if (text[0] == '-') {
    return Invalid(text, kWhat, "negative probabilities are not allowed");
  }
  std::string_view rest = text;
  Decimal d;
  bool too_long;
  if (!ConsumeDecimal(rest, &d, &too_long)) {
    return Invalid(text, kWhat,
                   "expected a number with % or ppm, or a fraction between 0 "
                   "and 1");
  }
  if (too_long) return Invalid(text, kWhat, "too many digits");
  uint64_t multiplier;
  std::string_view too_large;
  std::string_view not_whole = "finer than 1ppm";
  if (rest == "%") {
    multiplier = 10'000;
    too_large = "above 100%";
    not_whole = "finer than 1ppm (0.0001%)";
  } else if (EqualsIgnoreCase(rest, "ppm")) {
    multiplier = 1;
    too_large = "above 1000000ppm (100%)";
    not_whole = "not a whole number of ppm";
  } else if (rest.empty()) {
    multiplier = 1'000'000;
    too_large =
        "a plain number is a fraction between 0 and 1 (write \"50%\" for a "
        "percentage)";
  } else {
    return Invalid(text, kWhat,
                   Cat("unknown unit ", Quote(rest),
                       " (use %, ppm, or a fraction between 0 and 1)"));
  }
  u128 value;
  switch (Scale(d, multiplier, 1'000'000, &value)) {
    case ScaleResult::kNotWhole:
      return Invalid(text, kWhat, not_whole);
    case ScaleResult::kTooLarge:
      return Invalid(text, kWhat, too_large);
    case ScaleResult::kOk:
      break;
  }
  return static_cast<uint32_t>(value);
}

absl::StatusOr<uint64_t> ParseRate(std::string_view text) {
  return ParseScaled(text, "rate", kRateUnits, kRateUnitHint,
                     "bits per second");
}

absl::StatusOr<uint64_t> ParseSize(std::string_view text) {
  return ParseScaled(text, "size", kSizeUnits, kSizeUnitHint, "bytes");
}

absl::StatusOr<int> ErrnoFromName(std::string_view name) {
  static const auto* const kByName = [] {
    auto* m = new absl::flat_hash_map<absl::string_view, int>();
    for (const ErrnoEntry& e : kErrnos) m->emplace(Av(e.name), e.number);
    return m;
  }();
  auto it = kByName->find(Av(name));
  if (it != kByName->end()) return it->second;
  if (kByName->contains(absl::AsciiStrToUpper(Av(name)))) {
    return absl::InvalidArgumentError(
        Cat(Quote(name), " is not an errno name (errno names are upper case: ",
            absl::AsciiStrToUpper(Av(name)), ")"));
  }
  return absl::InvalidArgumentError(Cat(
      Quote(name), " is not an errno name (e.g. ENOSPC, EIO, ECONNREFUSED)"));
}

std::string_view ErrnoName(int err) {
  static const auto* const kByNumber = [] {
    auto* m = new absl::flat_hash_map<int, std::string_view>();
    for (size_t i = 0; i < kPrimaryErrnos; ++i) {
      m->emplace(kErrnos[i].number, kErrnos[i].name);
    }
    return m;
  }();
  auto it = kByNumber->find(err);
  return it == kByNumber->end() ? std::string_view() : it->second;
}

std::string FormatDuration(int64_t ns) {
  if (ns == 0) return "0";
  if (ns < 0) {
    if (ns == std::numeric_limits<int64_t>::min()) return Cat(ns, "ns");
    return Cat("-", FormatDuration(-ns));
  }
  const uint64_t v = static_cast<uint64_t>(ns);
  std::string out;
  // Largest unit first; "m" is skipped unless exact so that 90s stays "90s".
  if (v % 3'600'000'000'000 == 0) return Cat(v / 3'600'000'000'000, "h");
  if (v % 60'000'000'000 == 0) return Cat(v / 60'000'000'000, "m");
  for (const Unit& u :
       {Unit{"s", 1'000'000'000}, Unit{"ms", 1'000'000}, Unit{"us", 1'000}}) {
    if (FormatExact(v, u.factor, u.name, &out)) return out;
  }
  return Cat(v, "ns");
}

std::string FormatProbability(uint32_t ppm) {
  if (ppm == 0) return "0%";
  if (ppm % 100 == 0) {
    std::string out;
    // 10000ppm = 1%; print up to two decimals of a percent.
    const uint64_t hundredths = ppm / 100;
    std::string s = Cat(hundredths / 100);
    if (hundredths % 100 != 0) {
      std::string f = Cat(hundredths % 100 + 100).substr(1);
      while (!f.empty() && f.back() == '0') f.pop_back();
      Append(&s, ".", f);
    }
    return Cat(s, "%");
  }
  return Cat(ppm, "ppm");
}

std::string FormatRate(uint64_t bps) {
  if (bps == 0) return "0bps";
  std::string out;
  for (const Unit& u : {Unit{"gbps", 1'000'000'000}, Unit{"mbps", 1'000'000},
                        Unit{"kbps", 1'000}}) {
    if (FormatExact(bps, u.factor, u.name, &out)) return out;
  }
  return Cat(bps, "bps");
}

std::string FormatSize(uint64_t bytes) {
  if (bytes == 0) return "0b";
  std::string out;
  for (const Unit& u : {Unit{"gb", 1ull << 30}, Unit{"mb", 1ull << 20},
                        Unit{"kb", 1ull << 10}}) {
    if (FormatExact(bytes, u.factor, u.name, &out)) return out;
  }
  return Cat(bytes, "b");
}

}  // namespace fault::policy
