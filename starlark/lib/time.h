// The `time` module of Starlark, as google/starlark-go's lib/time defines
// it (itself a thin layer over Go's time package):
//
//   time.now()                                -> time.time
//   time.time(year=, month=, day=, hour=, minute=, second=, nanosecond=,
//             location="UTC")                 -> time.time (fields normalise)
//   time.parse_time(x, format=RFC3339, location="UTC") -> time.time
//   time.from_timestamp(sec, nsec=0)          -> time.time (local zone)
//   time.parse_duration(d)                    -> time.duration ("1h2m3.5s")
//   time.is_valid_timezone(name)              -> bool
//   time.nanosecond ... time.hour             durations
//
// time.duration: int64 nanoseconds; attributes hours, minutes, seconds
// (float), milliseconds, microseconds, nanoseconds (int); + - with
// durations, + with a time, * int, / int or float (a duration), / duration
// (a float), // duration (an int, truncated as in Go); ordered; str() as
// Go prints durations ("1h0m0s", "1.5µs", "0s"). Overflow fails.
//
// time.time: an instant with a location; attributes year, month, day,
// hour, minute, second, nanosecond, unix, unix_nano; methods
// format(layout) and in_location(name); time - time is a duration, time
// +/- duration a time; ordered and equal by instant; str() is Go's
// "2006-01-02 15:04:05.999999999 -0700 MST". Layouts are Go's reference
// layouts ("2006-01-02T15:04:05Z07:00").
//
// Time zones are IANA names loaded through absl (the system's zoneinfo),
// plus "UTC", "" (UTC) and "Local".
//
// The clock: time.now() reads the Clock installed on the Thread with
// SetClock, else the system clock. Tests install a FakeClock.
#ifndef FAULT_STARLARK_LIB_TIME_H_
#define FAULT_STARLARK_LIB_TIME_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "starlark/interp.h"
#include "starlark/value.h"

namespace fault::starlark {

// Source of time.now().
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
};

// The system clock (absl::Now()).
class RealClock : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
};

// A clock that moves only when told to.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time now) : now_(now) {}
  absl::Time Now() override { return now_; }
  void Set(absl::Time t) { now_ = t; }
  void Advance(absl::Duration d) { now_ += d; }

 private:
  absl::Time now_;
};

// Makes time.now() on `thread` read `clock` (not owned; it must outlive
// the thread's use of it). Null restores the system clock.
void SetClock(Thread& thread, Clock* clock);

// The frozen `time` module value.
Value NewTimeModule();

// Values of the module, for hosts.
Value NewDuration(int64_t nanoseconds);
// Null unless v is a time.duration; else stores its nanoseconds.
bool DurationOf(const Value& v, int64_t* nanoseconds);
// A time.time at `t` in zone `zone_name` ("UTC", "Local" or an IANA name);
// fails (EvalError) for an unknown zone.
Value NewTime(absl::Time t, std::string_view zone_name);

// Go's time.ParseDuration and Duration.String, exposed for tests.
bool ParseGoDuration(std::string_view s, int64_t* ns, std::string* error);
std::string FormatGoDuration(int64_t ns);

}  // namespace fault::starlark

#endif  // FAULT_STARLARK_LIB_TIME_H_
