// A --grpc-plugin address, as `fault run` checks it and the plugin client
// dials it. Header-only and dependency-free: both sides of the module
// boundary use it.
//
//   std::string target, why;
//   if (!PluginTarget("http://127.0.0.1:50051", &target, &why)) ...why...
//   // target == "127.0.0.1:50051"
#ifndef FAULT_SUPERVISOR_GRPC_PLUGIN_ADDRESS_H_
#define FAULT_SUPERVISOR_GRPC_PLUGIN_ADDRESS_H_

#include <string>
#include <string_view>

namespace fault::grpc_module {

// "http://HOST:PORT[/]" or "HOST:PORT" ("[V6]:PORT" for IPv6) to the
// "HOST:PORT" gRPC dials. False, with `why`, for anything else: https://
// (plugins are reached in plain text, as the Rust tool does), another
// scheme, no port, a port out of range, a path.
inline bool PluginTarget(std::string_view address, std::string* target, std::string* why) {
  std::string_view a = address;
  while (!a.empty() && (a.front() == ' ' || a.front() == '\t')) a.remove_prefix(1);
  while (!a.empty() && (a.back() == ' ' || a.back() == '\t')) a.remove_suffix(1);
  if (a.empty()) {
    *why = "is empty";
    return false;
  }
  if (size_t s = a.find("://"); s != std::string_view::npos) {
    std::string scheme(a.substr(0, s));
    for (char& ch : scheme)
      if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    if (scheme == "https") {
      *why = "https:// is not supported: plugins are reached over plain HTTP/2 (http://HOST:PORT)";
      return false;
    }
    if (scheme != "http") {
      *why = "has the scheme " + scheme + "://; use http://HOST:PORT or HOST:PORT";
      return false;
    }
    a.remove_prefix(s + 3);
    if (!a.empty() && a.back() == '/') a.remove_suffix(1);
  }
  if (a.find('/') != std::string_view::npos) {
    *why = "has a path; a plugin is HOST:PORT";
    return false;
  }
  size_t colon = a.rfind(':');
  std::string_view host = colon == std::string_view::npos ? a : a.substr(0, colon);
  if (colon == std::string_view::npos || (host.find(':') != std::string_view::npos &&
                                          (host.front() != '[' || host.back() != ']'))) {
    *why = "has no port (HOST:PORT, [IPV6]:PORT)";
    return false;
  }
  if (host.empty() || host == "[]") {
    *why = "has no host";
    return false;
  }
  std::string_view port = a.substr(colon + 1);
  unsigned long p = 0;
  for (char ch : port) {
    if (ch < '0' || ch > '9' || p > 65535) {
      p = 70000;
      break;
    }
    p = p * 10 + static_cast<unsigned long>(ch - '0');
  }
  if (port.empty() || p == 0 || p > 65535) {
    *why = "has the port \"" + std::string(port) + "\", not a number from 1 to 65535";
    return false;
  }
  *target = std::string(a);
  return true;
}

}  // namespace fault::grpc_module

#endif  // FAULT_SUPERVISOR_GRPC_PLUGIN_ADDRESS_H_
