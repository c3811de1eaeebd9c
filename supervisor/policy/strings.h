// String helpers for the policy module. Debian's Abseil is built with its
// own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0), so
// std::string_view does not convert to it implicitly; these wrappers do.
#ifndef FAULT_SUPERVISOR_POLICY_STRINGS_H_
#define FAULT_SUPERVISOR_POLICY_STRINGS_H_

#include <string>
#include <string_view>
#include <type_traits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace fault::policy {

inline absl::string_view Av(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

namespace internal {
template <typename T>
decltype(auto) ToAlphaNumArg(const T& v) {
  if constexpr (std::is_convertible_v<const T&, std::string_view> &&
                !std::is_convertible_v<const T&, absl::string_view>) {
    return Av(std::string_view(v));
  } else {
    return (v);
  }
}
}  // namespace internal

// absl::StrCat that also takes std::string_view.
template <typename... A>
std::string Cat(const A&... a) {
  return absl::StrCat(internal::ToAlphaNumArg(a)...);
}

template <typename... A>
void Append(std::string* out, const A&... a) {
  out->append(Cat(a...));
}

inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return absl::EqualsIgnoreCase(Av(a), Av(b));
}

// Quotes a value for a message: "7 ms" (control bytes as \xNN).
inline std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[(c >> 4) & 0xf];
      out += kHex[c & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

}  // namespace fault::policy

#endif  // FAULT_SUPERVISOR_POLICY_STRINGS_H_
