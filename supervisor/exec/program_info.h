// What `fault exec` needs to know about the program before it starts it:
// where it is and whether the dynamic loader (and so the preload shim) will
// ever run inside it.
#ifndef FAULT_SUPERVISOR_EXEC_PROGRAM_INFO_H_
#define FAULT_SUPERVISOR_EXEC_PROGRAM_INFO_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fault::exec {

// `name` as execvp(3) would find it: a name with a slash is taken as is,
// otherwise each directory of `path_env` (PATH) is tried. NotFound when none
// is an executable regular file.
absl::StatusOr<std::string> ResolveProgram(const std::string& name,
                                           const std::string& path_env);

enum class Linkage {
  kDynamic,  // an ELF with PT_INTERP: LD_PRELOAD works
  kStatic,   // an ELF without PT_INTERP: only seccomp can see its calls
  kScript,   // "#!" interpreter script: its interpreter decides; treated as dynamic
};

// Reads the ELF (or "#!") header of the file at `path`.
absl::StatusOr<Linkage> ProgramLinkage(const std::string& path);

// Whether the file at `path` is a Go program. Go's runtime makes its socket
// calls as raw syscalls, so a preloaded library never sees them, even when
// the program is dynamically linked (cgo). False when unreadable.
bool IsGoProgram(const std::string& path);

// The shared libraries the ELF at `path` names in its dynamic section
// (DT_NEEDED), in order: "libc.so.6", ... Empty for a static program or a
// "#!" script; an error when the file cannot be read or is not a well-formed
// ELF. Found through the section headers (.dynamic and the string table it
// links to), which every linker writes.
absl::StatusOr<std::vector<std::string>> NeededLibraries(const std::string& path);

// Whether the program at `path` needs liburing ("liburing.so.2"): it may
// submit connects and accepts through io_uring, where neither the shim nor
// the seccomp layer sees them. False when unreadable. A program that links
// liburing statically, or makes the io_uring syscalls itself, is not found.
bool NeedsLiburing(const std::string& path);

}  // namespace fault::exec

#endif  // FAULT_SUPERVISOR_EXEC_PROGRAM_INFO_H_
