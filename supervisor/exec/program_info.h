// What `fault exec` needs to know about the program before it starts it:
// where it is and whether the dynamic loader (and so the preload shim) will
// ever run inside it.
#ifndef FAULT_SUPERVISOR_EXEC_PROGRAM_INFO_H_
#define FAULT_SUPERVISOR_EXEC_PROGRAM_INFO_H_

#include <sys/types.h>

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

// What execve would give the program beyond its caller's credentials.
struct ExecPrivileges {
  bool setuid = false;  // S_ISUID: runs as `owner`
  uid_t owner = 0;
  bool setgid = false;  // S_ISGID: runs with group `group`
  gid_t group = 0;
  bool file_capabilities = false;  // a security.capability xattr
  bool nosuid_mount = false;  // its file system ignores all of the above
};

// Reads the mode, owner and security.capability xattr of `path`.
absl::StatusOr<ExecPrivileges> ReadExecPrivileges(const std::string& path);

// What a caller with effective ids `euid`/`egid` would lose by running a
// program with `p` under NO_NEW_PRIVS (set by the seccomp layer with its
// filter: execve then grants no new uid, gid or capability), as a phrase:
// "is set-user-ID (owner uid 0)", "has file capabilities", joined with
// " and ". Empty when nothing would be lost: the bits give nothing the
// caller lacks (root gains nothing from file capabilities, nor anyone from
// a set-user-ID bit of a file they own).
std::string PrivilegesLostUnderNoNewPrivs(const ExecPrivileges& p, uid_t euid,
                                          gid_t egid);

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
