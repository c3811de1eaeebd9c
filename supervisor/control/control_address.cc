#include "supervisor/control/control_address.h"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "supervisor/cli/input_file.h"

namespace fault::control {
namespace {

constexpr char kExpected[] =
    "expected unix, unix:PATH or tcp:HOST:PORT (e.g. --control "
    "unix:/run/user/1000/app/"
    "control.sock or --control tcp:127.0.0.1:7070)";

std::string SysError(int e) { return std::strerror(e); }

}  // namespace

std::string ControlEndpoint::GrpcAddress() const {
  if (!tcp) return "unix:" + socket_path;
  std::string h = absl::StrContains(host, ':') ? "[" + host + "]" : host;
  return absl::StrCat(h, ":", port);
}

std::string ControlEndpoint::Text() const {
  if (!tcp) return "unix:" + socket_path;
  std::string h = absl::StrContains(host, ':') ? "[" + host + "]" : host;
  return absl::StrCat("tcp:", h, ":", port);
}

absl::StatusOr<ControlEndpoint> ParseControlAddress(const std::string& text) {
  ControlEndpoint e;
  if (text == "unix" || text == "unix:") return e;
  if (absl::StartsWith(text, "unix:")) {
    std::string path = text.substr(5);
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(path, ec);
    if (ec)
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", ec.message()));
    e.socket_path = abs.lexically_normal().string();
    if (e.socket_path.back() == '/') {
      return absl::InvalidArgumentError(absl::StrCat(
          path, " names a directory; give the socket's path inside it"));
    }
    // sockaddr_un holds the path with its terminating zero.
    if (e.socket_path.size() >= sizeof(sockaddr_un{}.sun_path)) {
      return absl::InvalidArgumentError(
          absl::StrCat("the socket path ", e.socket_path, " is longer than ",
                       sizeof(sockaddr_un{}.sun_path) - 1,
                       " bytes, the limit of Unix sockets"));
    }
    return e;
  }
  if (absl::StartsWith(text, "tcp:")) {
    std::string rest = text.substr(4);
    size_t colon = rest.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tcp:", rest, ": expected tcp:HOST:PORT (e.g. tcp:127.0.0.1:7070)"));
    }
    std::string host = rest.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    } else if (absl::StrContains(host, ':')) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tcp:", rest, ": an IPv6 address needs brackets (tcp:[::1]:7070)"));
    }
    int port = -1;
    if (!absl::SimpleAtoi(rest.substr(colon + 1), &port) || port < 0 ||
        port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tcp:", rest,
          ": the port must be a number in 0..65535 (0: any free port)"));
    }
    e.tcp = true;
    e.host = std::string(host);
    e.port = port;
    return e;
  }
  return absl::InvalidArgumentError(absl::StrCat(text, ": ", kExpected));
}

absl::Status PrepareUnixSocket(ControlEndpoint* e) {
  if (e->tcp) return absl::OkStatus();
  if (e->socket_path.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string dir = absl::StrCat(tmp != nullptr && *tmp != 0 ? tmp : "/tmp",
                                   "/fault-control-XXXXXX");
    if (mkdtemp(dir.data()) == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot create a private directory ", dir, ": ", SysError(errno)));
    }
    e->private_dir = dir;
    e->socket_path = dir + "/control.sock";
    return absl::OkStatus();
  }
  std::string dir =
      std::filesystem::path(e->socket_path).parent_path().string();
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the socket's directory ", dir, ": ", SysError(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, " is not a directory"));
  }
  if (st.st_uid != geteuid()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the socket's directory ", dir, " belongs to another user (uid ",
        st.st_uid,
        "): use a directory of your own, or --control unix to have one made"));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the socket's directory %s is open to other users (mode %04o): use a "
        "directory "
        "only you can enter (chmod 700 %s), or --control unix to have one made",
        dir, st.st_mode & 07777, dir));
  }
  if (lstat(e->socket_path.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(absl::StrCat(
        e->socket_path,
        " already exists (another run's socket?): remove it or choose "
        "another path"));
  }
  return absl::OkStatus();
}

absl::Status RestrictSocket(const ControlEndpoint& e) {
  if (e.tcp) return absl::OkStatus();
  if (chmod(e.socket_path.c_str(), 0600) != 0) {
    return absl::InternalError(
        absl::StrCat("chmod 600 ", e.socket_path, ": ", SysError(errno)));
  }
  return absl::OkStatus();
}

void RemoveUnixSocket(const ControlEndpoint& e) {
  if (e.tcp) return;
  if (!e.socket_path.empty()) unlink(e.socket_path.c_str());
  if (!e.private_dir.empty()) rmdir(e.private_dir.c_str());
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  absl::StatusOr<std::string> text =
      fault::cli::ReadInputFile(path, 4096, "token files");
  if (!text.ok()) return text.status();
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: other users may read it (mode %04o): chmod 600 %s",
                        path, st.st_mode & 07777, path));
  }
  std::string token(absl::StripAsciiWhitespace(*text));
  if (token.empty())
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the file is empty"));
  for (char c : token) {
    if (c <= ' ' || c > '~') {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": a token is one line of printable ASCII without spaces"));
    }
  }
  return token;
}

}  // namespace fault::control
