#include "supervisor/exec/child_process.h"

#include <fcntl.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "fault/table.h"
#include "supervisor/exec/policy_table.h"

namespace fault::exec {

absl::StatusOr<std::string> ResolveProgram(const std::string& program,
                                           const char* path_env) {
  if (program.empty()) return absl::InvalidArgumentError("empty program name");
  if (program.find('/') != std::string::npos) return program;
  std::string path = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    std::string candidate =
        dir.empty() ? program : absl::StrCat(dir, "/", program);
    struct stat st;
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return absl::NotFoundError(absl::StrCat(program, ": command not found"));
}

std::vector<std::string> BuildChildEnvironment(char* const* environ,
                                               const std::string& shim_path,
                                               const std::string& table_path,
                                               uint64_t stub_page) {
  std::vector<std::string> env;
  std::string preload = shim_path;
  bool has_preload = false;
  const std::string kPreload = "LD_PRELOAD=";
  const std::string kFd = std::string(FAULT_ENV_TABLE_FD) + "=";
  const std::string kTable = std::string(FAULT_ENV_TABLE) + "=";
  const std::string kStub = std::string(FAULT_ENV_STUB_PAGE) + "=";
  for (char* const* e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string var(*e);
    if (absl::StartsWith(var, kFd) || absl::StartsWith(var, kTable) ||
        absl::StartsWith(var, kStub)) {
      continue;
    }
    if (absl::StartsWith(var, kPreload) && !shim_path.empty()) {
      std::string existing = var.substr(kPreload.size());
      if (!existing.empty()) preload += ":" + existing;
      env.push_back(kPreload + preload);
      has_preload = true;
      continue;
    }
    env.push_back(std::move(var));
  }
  if (!has_preload && !shim_path.empty()) env.push_back(kPreload + preload);
  env.push_back(kTable + table_path);
  char hex[32];
  std::snprintf(hex, sizeof(hex), "0x%llx", static_cast<unsigned long long>(stub_page));
  env.push_back(kStub + hex);
  return env;
}

namespace {

std::vector<char*> CStrings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const std::string& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// What the child reports through the pipe when a step before execve fails.
struct ChildFailure {
  int stage;  // 1 layer, 2 fd, 3 execve
  int err;
};

void WriteAll(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    c += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

absl::StatusOr<pid_t> Spawn(const SpawnRequest& r) {
  std::vector<char*> argv = CStrings(r.argv);
  std::vector<char*> envp = CStrings(r.env);
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(report[0]);
    close(report[1]);
    return absl::ErrnoToStatus(err, "fork");
  }
  if (pid == 0) {
    // Only async-signal-safe calls from here to execve.
    ChildFailure f{0, 0};
    if (r.new_process_group) setpgid(0, 0);
    if (r.die_with_parent) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(126);  // the parent died before prctl
    }
    for (ExecLayer* layer : r.layers) {
      if (int err = layer->InChild(); err != 0) {
        f = {1, err};
        WriteAll(report[1], &f, sizeof(f));
        _exit(126);
      }
    }
    if (r.inherit_fd >= 0 && !ClearCloseOnExec(r.inherit_fd)) {
      f = {2, errno};
      WriteAll(report[1], &f, sizeof(f));
      _exit(126);
    }
    sigprocmask(SIG_SETMASK, &r.child_mask, nullptr);
    execve(r.path.c_str(), argv.data(), envp.data());
    f = {3, errno};
    WriteAll(report[1], &f, sizeof(f));
    _exit(errno == ENOENT ? 127 : 126);
  }
  close(report[1]);
  // Also from here, so the group exists before the caller signals it.
  if (r.new_process_group) setpgid(pid, pid);
  ChildFailure f{0, 0};
  ssize_t n;
  do {
    n = read(report[0], &f, sizeof(f));
  } while (n < 0 && errno == EINTR);
  close(report[0]);
  if (n == static_cast<ssize_t>(sizeof(f))) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    const char* what = f.stage == 1 ? "setting up an injection layer"
                       : f.stage == 2 ? "passing the policy table"
                                      : "execve";
    return absl::ErrnoToStatus(
        f.err, absl::StrCat("cannot run ", r.path, " (", what, ")"));
  }
  return pid;
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  if (abbrev == nullptr) return absl::StrCat("SIG", sig);
  return absl::StrCat("SIG", abbrev);
}

int SignalFromName(const std::string& name) {
  int n = 0;
  if (absl::SimpleAtoi(name, &n)) return (n > 0 && n < NSIG) ? n : 0;
  std::string upper = absl::AsciiStrToUpper(name);
  if (absl::StartsWith(upper, "SIG")) upper = upper.substr(3);
  for (int s = 1; s < NSIG; ++s) {
    const char* abbrev = sigabbrev_np(s);
    if (abbrev != nullptr && upper == abbrev) return s;
  }
  return 0;
}

}  // namespace fault::exec
