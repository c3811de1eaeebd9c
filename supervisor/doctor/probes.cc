#include "supervisor/doctor/probes.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ebpf/capture.h"
#include "supervisor/seccomp/seccomp_layer.h"


namespace fault::doctor {
namespace {

std::string Errno(int err) { return absl::StrCat(strerror(err), " (errno ", err, ")"); }

}  // namespace

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kOk: return "ok";
    case Verdict::kWarning: return "warning";
    case Verdict::kUnavailable: return "unavailable";
  }
  return "?";
}

std::vector<ProbeResult> ProbeSeccomp() {
  ProbeResult notif{"seccomp user notification", Verdict::kUnavailable, "", false};
  ProbeResult sync{"seccomp sync wake-up", Verdict::kUnavailable, "", false};
  absl::StatusOr<fault::seccomp::SeccompSupport> support = fault::seccomp::ProbeSeccompSupport();
  if (!support.ok()) {
    notif.detail = absl::StrCat("probe failed: ", support.status().message());
    sync.detail = "no user notification";
    return {notif, sync};
  }
  if (support->user_notification && support->continue_flag) {
    notif.verdict = Verdict::kOk;
    notif.detail = "SECCOMP_RET_USER_NOTIF and CONTINUE work: static binaries and raw syscalls "
                   "can be faulted (--layer seccomp)";
  } else if (support->user_notification) {
    notif.verdict = Verdict::kWarning;
    notif.detail = "notifications arrive but SECCOMP_USER_NOTIF_FLAG_CONTINUE is refused (needs "
                   "Linux 5.5): the seccomp layer cannot let calls through";
  } else {
    notif.detail = "cannot install a notifying filter (needs Linux 5.0 and no_new_privs): only "
                   "the preload shim can inject faults";
  }
  if (!support->user_notification) {
    sync.detail = "no user notification";
  } else if (support->sync_wakeup) {
    sync.verdict = Verdict::kOk;
    sync.detail = "SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP accepted: notifications take the fast path";
  } else {
    sync.verdict = Verdict::kWarning;
    sync.detail = "flag refused (needs Linux 6.6): notifications still work, a little slower";
  }
  return {notif, sync};
}

namespace {
// `r0 = 1; exit`: a cgroup/connect4 program that lets every connect through.
int LoadConnect4Program(std::string* error) {
  struct bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_CGROUP_INET4_CONNECT);
  int fd = bpf_prog_load(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "fault_probe", "GPL", insns,
                         sizeof(insns) / sizeof(insns[0]), &opts);
  if (fd < 0) *error = Errno(-fd);
  return fd;
}
}  // namespace

ProbeResult ProbeBpfLoad() {
  ProbeResult r{"BPF program load", Verdict::kUnavailable, "", false};
  std::string error;
  int fd = LoadConnect4Program(&error);
  if (fd >= 0) {
    close(fd);
    r.verdict = Verdict::kOk;
    r.detail = "cgroup/connect4 programs load";
  } else {
    r.detail = absl::StrCat("cannot load a cgroup/connect4 program: ", error,
                            " (needs CAP_BPF or root)");
  }
  return r;
}

ProbeResult ProbeCgroupAttach() {
  ProbeResult r{"cgroup v2 attach", Verdict::kUnavailable, "", false};
  absl::StatusOr<std::string> found = fault::ebpf::FindCgroup2Mount();
  if (!found.ok()) {
    r.detail = std::string(found.status().message());
    return r;
  }
  const std::string& mount = *found;
  std::string dir = absl::StrCat(mount, "/fault-doctor-", getpid());
  if (mkdir(dir.c_str(), 0755) != 0) {
    r.detail = absl::StrCat("cgroup2 at ", mount, " but cannot create a cgroup: ", Errno(errno));
    return r;
  }
  std::string error;
  int prog = LoadConnect4Program(&error);
  int cg = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (prog < 0) {
    r.detail = absl::StrCat("cgroup2 at ", mount, " but no BPF: ", error);
  } else if (cg < 0) {
    r.detail = absl::StrCat("cannot open ", dir, ": ", Errno(errno));
  } else if (bpf_prog_attach(prog, cg, BPF_CGROUP_INET4_CONNECT, 0) != 0) {
    r.detail = absl::StrCat("cgroup2 at ", mount, " but attach failed: ", Errno(errno));
  } else {
    bpf_prog_detach2(prog, cg, BPF_CGROUP_INET4_CONNECT);
    r.verdict = Verdict::kOk;
    r.detail = absl::StrCat("cgroup2 at ", mount, ": connect programs attach");
  }
  if (cg >= 0) close(cg);
  if (prog >= 0) close(prog);
  rmdir(dir.c_str());
  return r;
}

ProbeResult ProbePreload(const std::string& shim_path) {
  ProbeResult r{"LD_PRELOAD of the shim", Verdict::kUnavailable, "", true};
  if (shim_path.empty() || access(shim_path.c_str(), R_OK) != 0) {
    r.detail = absl::StrCat("libfault_shim.so not found",
                            shim_path.empty() ? "" : absl::StrCat(" at ", shim_path),
                            "; fault exec cannot inject faults through the shim");
    return r;
  }
  // Let a real dynamically linked program map itself and look for the shim.
  int pipefd[2];
  if (pipe(pipefd) != 0) {
    r.detail = absl::StrCat("pipe: ", Errno(errno));
    return r;
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], STDOUT_FILENO);
    close(pipefd[0]);
    close(pipefd[1]);
    setenv("LD_PRELOAD", shim_path.c_str(), 1);
    execl("/bin/cat", "cat", "/proc/self/maps", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(pipefd[1]);
  std::string maps;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) maps.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (maps.find("libfault_shim.so") != std::string::npos) {
    r.verdict = Verdict::kOk;
    r.detail = absl::StrCat(shim_path, " loads into dynamically linked programs");
  } else {
    r.detail = absl::StrCat(shim_path, " did not load into /bin/cat (exit status ",
                            WIFEXITED(status) ? WEXITSTATUS(status) : -1, ")");
  }
  return r;
}

ProbeResult ProbeStealth() {
  ProbeResult r{"stealth capture and redirect", Verdict::kUnavailable, "", false};
  absl::Status s = fault::ebpf::ProbeCapture();
  if (s.ok()) {
    absl::StatusOr<std::string> root = fault::ebpf::FindCgroup2Mount();
    r.verdict = Verdict::kOk;
    r.detail = absl::StrCat("the capture programs load and attach to the cgroup2 root ",
                            root.ok() ? *root : "", ": fault run --stealth can run");
  } else {
    r.detail = absl::StrCat("fault run --stealth cannot run: ", s.message());
  }
  return r;
}

std::vector<ProbeResult> RunAllProbes(const std::string& shim_path) {
  std::vector<ProbeResult> results = {ProbePreload(shim_path)};
  for (ProbeResult& r : ProbeSeccomp()) results.push_back(std::move(r));
  results.push_back(ProbeBpfLoad());
  results.push_back(ProbeCgroupAttach());
  results.push_back(ProbeStealth());
  return results;
}

std::string FormatReport(const std::vector<ProbeResult>& results) {
  size_t width = 0;
  for (const auto& r : results) width = std::max(width, r.capability.size());
  std::string out;
  for (const auto& r : results) {
    absl::StrAppend(&out, r.capability, std::string(width - r.capability.size() + 2, ' '),
                    VerdictName(r.verdict), std::string(13 - strlen(VerdictName(r.verdict)), ' '),
                    r.detail, "\n");
  }
  int rc = ExitCodeFor(results);
  absl::StrAppend(&out, "\n",
                  rc == 0 ? "verdict: fault exec can run here"
                          : "verdict: fault exec cannot inject faults here (see the lines above)",
                  "\n");
  return out;
}

int ExitCodeFor(const std::vector<ProbeResult>& results) {
  for (const auto& r : results) {
    if (r.required && r.verdict != Verdict::kOk) return 1;
  }
  return 0;
}

}  // namespace fault::doctor
