#include "supervisor/exec/events_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace fault::exec {

absl::StatusOr<EventsFile> EventsFile::Open(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return absl::InvalidArgumentError(std::strerror(errno));
  return EventsFile(fd);
}

EventsFile::EventsFile(EventsFile&& other) noexcept {
  *this = std::move(other);
}

EventsFile& EventsFile::operator=(EventsFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    good_bytes_ = other.good_bytes_;
    written_ = other.written_;
    lost_ = other.lost_;
    close_failed_ = other.close_failed_;
    error_ = std::move(other.error_);
  }
  return *this;
}

EventsFile::~EventsFile() {
  if (fd_ >= 0) close(fd_);
}

void EventsFile::Fail(const char* what, int err) {
  error_ = absl::StrCat(what, ": ", std::strerror(err));
}

void EventsFile::Append(const std::vector<std::string>& lines) {
  if (lines.empty()) return;
  if (fd_ < 0 || failed()) {
    lost_ += lines.size();
    return;
  }
  std::string batch;
  for (const std::string& l : lines) batch += l;
  size_t done = 0;
  int err = 0;
  while (done < batch.size()) {
    ssize_t n = write(fd_, batch.data() + done, batch.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = errno;
      break;
    }
    if (n == 0) {
      err = ENOSPC;  // no progress: the device takes no more
      break;
    }
    done += static_cast<size_t>(n);
  }
  // Count the lines that are in the file in full.
  size_t end = 0;
  uint64_t whole = 0;
  for (const std::string& l : lines) {
    if (end + l.size() > done) break;
    end += l.size();
    ++whole;
  }
  written_ += whole;
  if (err == 0) {
    good_bytes_ += static_cast<off_t>(done);
    return;
  }
  lost_ += lines.size() - whole;
  Fail("write", err);
  good_bytes_ += static_cast<off_t>(end);
  if (end != done) {
    // A cut-off line would read as a corrupt event: drop it (a device such
    // as /dev/full cannot be truncated, and wrote nothing anyway).
    (void)ftruncate(fd_, good_bytes_);
  }
}

void EventsFile::Close() {
  if (fd_ < 0) return;
  int fd = std::exchange(fd_, -1);
  if (close(fd) != 0 && errno != EINTR && !failed()) {
    close_failed_ = true;
    Fail("close", errno);
  }
}

}  // namespace fault::exec
