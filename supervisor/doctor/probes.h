// What this kernel and these privileges allow fault to do. Each probe tries
// the real thing (install a filter, load and attach a program, preload the
// shim) in a throwaway child or cgroup, and reports a verdict.
#ifndef FAULT_SUPERVISOR_DOCTOR_PROBES_H_
#define FAULT_SUPERVISOR_DOCTOR_PROBES_H_

#include <string>
#include <vector>

namespace fault::doctor {

enum class Verdict { kOk, kWarning, kUnavailable };

struct ProbeResult {
  std::string capability;  // "seccomp user notification"
  Verdict verdict;
  std::string detail;      // why, and what it means for the user
  bool required = false;   // fault exec cannot work at all without it
};

// Runs every probe. `shim_path` may be empty when the shim was not found.
std::vector<ProbeResult> RunAllProbes(const std::string& shim_path);

// Individual probes (exposed for tests).
// Two results: user notification (with CONTINUE), and the sync wake-up flag.
std::vector<ProbeResult> ProbeSeccomp();
ProbeResult ProbeBpfLoad();
ProbeResult ProbeCgroupAttach();
// Loads and attaches the stealth capture programs, selecting nothing.
ProbeResult ProbeStealth();
ProbeResult ProbePreload(const std::string& shim_path);


// Renders results as an aligned table, one line per capability, then the
// overall verdict line.
std::string FormatReport(const std::vector<ProbeResult>& results);
// 0 when every required capability is ok, 1 otherwise.
int ExitCodeFor(const std::vector<ProbeResult>& results);

const char* VerdictName(Verdict v);

}  // namespace fault::doctor

#endif  // FAULT_SUPERVISOR_DOCTOR_PROBES_H_
