// The `fault exec --events FILE` output: JSON lines appended batch by batch,
// with an exact count of the events that did not reach the file.
//
// A fault tool whose record of what it injected silently stops is worse than
// none, so every failure is kept: a write that fails or falls short (ENOSPC,
// EIO, /dev/full), and an error only close() reports (delayed write-back on
// network file systems). Writes go straight to the descriptor (no stdio
// buffer), so the bytes the kernel took are known exactly: lines that were
// written in full count as written, the rest of the batch and every later
// event count as lost, and a cut-off last line is truncated away where the
// file allows it, so that the file holds only whole lines.
//
//   absl::StatusOr<EventsFile> f = EventsFile::Open(path);
//   f->Append({line1, line2});         // each line ends in '\n'
//   f->Close();
//   if (f->failed()) ...f->error()..., f->lost() events are missing
//
// Thread-compatible.
#ifndef FAULT_SUPERVISOR_EXEC_EVENTS_FILE_H_
#define FAULT_SUPERVISOR_EXEC_EVENTS_FILE_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fault::exec {

class EventsFile {
 public:
  // Creates or truncates `path` (close-on-exec, so the program never
  // inherits it).
  static absl::StatusOr<EventsFile> Open(const std::string& path);

  EventsFile(EventsFile&& other) noexcept;
  EventsFile& operator=(EventsFile&& other) noexcept;
  EventsFile(const EventsFile&) = delete;
  EventsFile& operator=(const EventsFile&) = delete;
  ~EventsFile();

  // Appends one event per line. After the first failure nothing more is
  // written and every line counts as lost.
  void Append(const std::vector<std::string>& lines);
  // Closes the file; a close() error makes failed() true (the events
  // written may not all have reached the file; lost() cannot know).
  void Close();

  bool failed() const { return !error_.empty(); }
  // Why, e.g. "write: No space left on device"; empty while all is well.
  const std::string& error() const { return error_; }
  uint64_t written() const { return written_; }  // whole lines the kernel took
  uint64_t lost() const { return lost_; }        // events not in the file
  // close() failed after every write succeeded.
  bool close_failed() const { return close_failed_; }

 private:
  explicit EventsFile(int fd) : fd_(fd) {}
  void Fail(const char* what, int err);

  int fd_ = -1;
  off_t good_bytes_ = 0;  // end of the last whole line written
  uint64_t written_ = 0;
  uint64_t lost_ = 0;
  bool close_failed_ = false;
  std::string error_;
};

}  // namespace fault::exec

#endif  // FAULT_SUPERVISOR_EXEC_EVENTS_FILE_H_
