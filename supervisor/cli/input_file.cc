#include "supervisor/cli/input_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace fault::cli {
namespace {

// The size limit in the unit a user would write it in.
std::string Bytes(size_t n) {
  if (n >= (size_t{1} << 20) && n % (size_t{1} << 20) == 0)
    return absl::StrCat(n >> 20, " MiB");
  if (n >= 1024 && n % 1024 == 0) return absl::StrCat(n >> 10, " KiB");
  return absl::StrCat(n, " bytes");
}

const char* KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

absl::Status TooLarge(const std::string& path, std::string_view size,
                      size_t max_bytes, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      path, ": too large (", absl::string_view(size.data(), size.size()), "; ",
      absl::string_view(what.data(), what.size()), " are at most ",
      Bytes(max_bytes), ")"));
}

}  // namespace

absl::StatusOr<std::string> ReadInputFile(const std::string& path,
                                          size_t max_bytes,
                                          std::string_view what) {
  // O_NONBLOCK: opening a FIFO for reading must not wait for a writer; it is
  // refused below anyway. Regular files ignore the flag.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot read: ", std::strerror(errno)));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return absl::InternalError(
        absl::StrCat(path, ": cannot read: ", std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": cannot read: ", KindOf(st.st_mode), ", not a regular file"));
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    close(fd);
    return TooLarge(path, absl::StrCat(st.st_size, " bytes"), max_bytes, what);
  }
  std::string text;
  text.resize(static_cast<size_t>(st.st_size) + 1);
  size_t have = 0;
  for (;;) {
    if (have == text.size()) {
      if (text.size() > max_bytes) break;
      text.resize(std::min(text.size() * 2, max_bytes + 1));
    }
    ssize_t n = read(fd, text.data() + have, text.size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return absl::InternalError(
          absl::StrCat(path, ": cannot read: ", std::strerror(err)));
    }
    if (n == 0) break;
    have += static_cast<size_t>(n);
  }
  close(fd);
  if (have > max_bytes) {
    // It grew after fstat.
    return TooLarge(path, absl::StrCat("more than ", max_bytes, " bytes"),
                    max_bytes, what);
  }
  text.resize(have);
  return text;
}

}  // namespace fault::cli
