// The values of `--control ADDRESS` and `--control-token-file FILE`
// (fault exec) and of `fault ctl --control` / FAULT_CONTROL.
//
//   unix            a socket in a new private directory (mode 0700) under
//                   $TMPDIR or /tmp, removed when the run ends
//   unix:PATH       a socket at PATH, whose directory must exist and be
//                   private to this user (no access for group or others)
//   tcp:HOST:PORT   TCP on HOST (a name, an IPv4 address or [IPv6]); PORT 0
//                   picks a free port. Needs a token.
//
// Thread-compatible.
#ifndef FAULT_SUPERVISOR_CONTROL_CONTROL_ADDRESS_H_
#define FAULT_SUPERVISOR_CONTROL_CONTROL_ADDRESS_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fault::control {

// The variables `fault exec --control` exports to the programs it runs.
inline constexpr char kEnvControl[] = "FAULT_CONTROL";
inline constexpr char kEnvControlTokenFile[] = "FAULT_CONTROL_TOKEN_FILE";

struct ControlEndpoint {
  bool tcp = false;
  // unix: the socket's path (absolute; empty for "unix" until
  // PrepareUnixSocket made the directory).
  std::string socket_path;
  // unix: a directory PrepareUnixSocket created, to remove at the end.
  std::string private_dir;
  // tcp:
  std::string host;  // without brackets
  int port = 0;

  // gRPC's form ("unix:/abs/path", "127.0.0.1:5000", "[::1]:5000"), with
  // `port` when nonzero.
  std::string GrpcAddress() const;
  // The form users write and FAULT_CONTROL holds ("unix:/abs/path",
  // "tcp:127.0.0.1:5000").
  std::string Text() const;
};

// Parses ADDRESS; errors say what is wrong and what is expected. Touches no
// file.
absl::StatusOr<ControlEndpoint> ParseControlAddress(const std::string& text);

// For a unix endpoint: creates the private directory ("unix"), or checks
// that PATH's directory is private and PATH does not exist yet.
absl::Status PrepareUnixSocket(ControlEndpoint* endpoint);

// After the server is listening: the socket is made mode 0600.
absl::Status RestrictSocket(const ControlEndpoint& endpoint);

// Removes the socket and the private directory (if one was made).
void RemoveUnixSocket(const ControlEndpoint& endpoint);

// Reads a token file: one line of printable ASCII without spaces,
// surrounding whitespace ignored, and readable by its owner only.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

}  // namespace fault::control

#endif  // FAULT_SUPERVISOR_CONTROL_CONTROL_ADDRESS_H_
