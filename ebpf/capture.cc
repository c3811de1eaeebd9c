#include "ebpf/capture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/magic.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ebpf/capture_abi.h"

#ifdef FAULT_HAVE_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "capture.skel.h"
#endif

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace fault::ebpf {
namespace {

// Undoes mountinfo's octal escapes (\040 for a space, ...).
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7') {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 +
                                      (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string ReadFile(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Effective capabilities of this process (bit n = capability n).
uint64_t EffectiveCaps() {
  std::istringstream in(ReadFile("/proc/self/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) == 0) return std::strtoull(line.c_str() + 7, nullptr, 16);
  }
  return 0;
}

constexpr int kCapNetAdmin = 12;
constexpr int kCapSysAdmin = 21;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

absl::Status CheckPrivileges(bool tracing) {
  const uint64_t caps = EffectiveCaps();
  auto has = [&](int cap) { return (caps >> cap & 1) != 0; };
  std::vector<std::string> missing;
  if (!has(kCapBpf) && !has(kCapSysAdmin)) missing.push_back("CAP_BPF");
  if (!has(kCapNetAdmin)) missing.push_back("CAP_NET_ADMIN");
  if (tracing && !has(kCapPerfmon) && !has(kCapSysAdmin)) missing.push_back("CAP_PERFMON");
  if (missing.empty()) return absl::OkStatus();
  std::string list;
  for (size_t i = 0; i < missing.size(); ++i) absl::StrAppend(&list, i ? ", " : "", missing[i]);
  return absl::PermissionDeniedError(absl::StrCat(
      "stealth capture needs root or ", list,
      " (this process lacks them): run fault as root, or give it the capabilities with "
      "`setcap cap_bpf,cap_net_admin,cap_perfmon+ep`"));
}

// A comm name as the kernel stores it: at most 15 bytes, zero-padded.
absl::Status CommKey(const std::string& name, fault_comm* key, const char* what) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": empty name"));
  if (name.size() > 15) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " ", name, ": longer than 15 bytes, and the kernel keeps only 15 of a "
        "process name (use its first 15 bytes, or a prefix with '*')"));
  }
  if (name.find('/') != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " ", name, ": a process name, not a path (the kernel names a process after "
        "its program's base name)"));
  }
  std::memset(key, 0, sizeof(*key));
  std::memcpy(key->name, name.data(), name.size());
  return absl::OkStatus();
}

void ToClientKey(const sockaddr_storage& ss, int protocol, fault_client_key* key) {
  std::memset(key, 0, sizeof(*key));
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    key->ip6[2] = htonl(0xffff);
    key->ip6[3] = in->sin_addr.s_addr;
    key->port = ntohs(in->sin_port);
  } else {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    std::memcpy(key->ip6, &in6->sin6_addr, 16);
    key->port = ntohs(in6->sin6_port);
  }
  key->proto = static_cast<fault_u8>(protocol);
}

void ToOrigin(const fault_origin& o, Origin* out) {
  std::memset(&out->destination, 0, sizeof(out->destination));
  if (o.family == FAULT_AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&out->destination);
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = o.ip6[3];
    in->sin_port = o.port;
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&out->destination);
    in6->sin6_family = AF_INET6;
    std::memcpy(&in6->sin6_addr, o.ip6, 16);
    in6->sin6_port = o.port;
  }
  out->pid = o.tgid;
  std::memcpy(out->comm, o.comm, sizeof(out->comm));
  out->comm[15] = '\0';
}

}  // namespace

absl::StatusOr<std::string> Cgroup2MountFromMountinfo(std::string_view text) {
  std::string fallback;
  const absl::string_view mountinfo(text.data(), text.size());
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n')) {
    // id parent major:minor root mountpoint options [optional...] - fstype source super
    const size_t dash = line.find(" - ");
    if (dash == std::string_view::npos) continue;
    std::vector<absl::string_view> after = absl::StrSplit(line.substr(dash + 3), ' ');
    if (after.empty() || after[0] != "cgroup2") continue;
    std::vector<absl::string_view> before = absl::StrSplit(line.substr(0, dash), ' ');
    if (before.size() < 5) continue;
    std::string point = Unescape(std::string(before[4]));
    // A bind mount of a sub-tree is not the root: only "/" sees every process.
    if (before[3] == "/") return point;
    if (fallback.empty()) fallback = point;
  }
  if (!fallback.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the only cgroup2 mount (", fallback, ") is not the hierarchy's root (a container's "
        "view?): capture would miss every process outside it"));
  }
  return absl::FailedPreconditionError(
      "no cgroup2 file system is mounted (/proc/self/mountinfo lists none); mount one with "
      "`mount -t cgroup2 none /sys/fs/cgroup/unified` or boot with cgroup v2");
}

absl::StatusOr<std::string> FindCgroup2Mount() {
  std::string text = ReadFile("/proc/self/mountinfo");
  if (text.empty()) return absl::FailedPreconditionError("cannot read /proc/self/mountinfo");
  return Cgroup2MountFromMountinfo(text);
}

#ifndef FAULT_HAVE_BPF

bool CaptureBuilt() { return false; }
absl::StatusOr<std::unique_ptr<Capture>> Capture::Start(const CaptureOptions&) {
  return absl::UnimplementedError(
      "this fault was built without its BPF programs (clang, bpftool and libbpf-dev were "
      "missing at build time)");
}
Capture::~Capture() = default;
bool Capture::TakeOrigin(const sockaddr_storage&, int, Origin*) { return false; }
void Capture::Release(const sockaddr_storage&, int) {}
absl::Status Capture::AddPid(pid_t) { return absl::UnimplementedError("no BPF"); }
CaptureCounters Capture::counters() const { return {}; }
bool Capture::DiagCookie(const sockaddr_storage&, int, uint64_t*) { return false; }
absl::Status ProbeCapture() { return Capture::Start({}).status(); }

#else

bool CaptureBuilt() { return true; }

namespace {

// libbpf's messages, kept for the error that ends a failed start rather
// than printed as they come.
thread_local std::string* libbpf_log = nullptr;

int LibbpfPrint(enum libbpf_print_level level, const char* format, va_list args) {
  if (libbpf_log == nullptr || level == LIBBPF_DEBUG) return 0;
  char buf[1024];
  int n = vsnprintf(buf, sizeof(buf), format, args);
  if (n > 0 && libbpf_log->size() < 16384) libbpf_log->append(buf);
  return n;
}

// The last libbpf lines that say something (the verifier log can be long).
std::string LogTail(const std::string& log) {
  std::vector<absl::string_view> lines = absl::StrSplit(log, '\n', absl::SkipEmpty());
  std::string out;
  const size_t from = lines.size() > 4 ? lines.size() - 4 : 0;
  for (size_t i = from; i < lines.size(); ++i) absl::StrAppend(&out, "\n  ", lines[i]);
  return out;
}

struct ScopedLog {
  std::string text;
  ScopedLog() {
    libbpf_log = &text;
    libbpf_set_print(LibbpfPrint);
  }
  ~ScopedLog() { libbpf_log = nullptr; }
};

uint64_t NetnsCookie() {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0) cookie = 0;
  close(fd);
  return cookie;
}

// The cgroup id of a cgroup2 directory (its inode number) and its depth
// below the root.
absl::Status CgroupId(const std::string& root, const std::string& path, uint64_t* id,
                      int* level) {
  std::string full = path;
  if (path.rfind(root + "/", 0) != 0 && path != root) full = root + (path[0] == '/' ? "" : "/") + path;
  while (full.size() > 1 && full.back() == '/') full.pop_back();
  struct statfs fs;
  struct stat st;
  if (statfs(full.c_str(), &fs) != 0 || stat(full.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("--capture-cgroup ", path, ": ", full, ": ",
                                            std::strerror(errno)));
  }
  if (fs.f_type != CGROUP2_SUPER_MAGIC || !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--capture-cgroup ", path, ": ", full, " is not a cgroup2 directory (the cgroup2 "
        "hierarchy is at ", root, ")"));
  }
  std::string rel = full.substr(root.size());
  int depth = 0;
  for (absl::string_view part : absl::StrSplit(rel, '/', absl::SkipEmpty())) {
    (void)part;
    ++depth;
  }
  if (depth == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--capture-cgroup ", path, ": the root cgroup holds every process on the machine; "
        "name a cgroup below it"));
  }
  if (depth > FAULT_MAX_CGROUP_LEVELS) {
    return absl::InvalidArgumentError(absl::StrCat("--capture-cgroup ", path, ": deeper than ",
                                                   FAULT_MAX_CGROUP_LEVELS, " levels"));
  }
  *id = st.st_ino;
  *level = depth;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Capture>> Capture::Start(const CaptureOptions& options) {
  const bool pid_tree = options.follow_pids || !options.pids.empty() ||
                        !options.exec_names.empty();
  if (absl::Status s = CheckPrivileges(pid_tree); !s.ok()) return s;
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0 && pid_tree) {
    return absl::FailedPreconditionError(
        "the kernel has no BTF (/sys/kernel/btf/vmlinux is missing; it needs "
        "CONFIG_DEBUG_INFO_BTF=y), which --capture-pid and --capture-exec need; "
        "--capture-process and --capture-cgroup work without it");
  }
  absl::StatusOr<std::string> root = FindCgroup2Mount();
  if (!root.ok()) return root.status();

  // Validate every selector before touching the kernel.
  // Names and prefixes become masked patterns (capture_abi.h).
  std::vector<fault_pattern> patterns;
  for (const std::string& name : options.process_names) {
    const bool prefix = !name.empty() && name.back() == '*';
    const std::string bare = prefix ? name.substr(0, name.size() - 1) : name;
    fault_comm key;
    if (absl::Status s = CommKey(bare, &key, "--capture-process"); !s.ok()) return s;
    if (patterns.size() >= FAULT_MAX_PATTERNS) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--capture-process ", name, ": at most ", FAULT_MAX_PATTERNS,
          " process names and prefixes together"));
    }
    unsigned char mask[16] = {};
    std::memset(mask, 0xff, prefix ? bare.size() : sizeof(mask));
    fault_pattern p = {};
    std::memcpy(p.mask, mask, sizeof(mask));
    std::memcpy(p.value, key.name, sizeof(key.name));
    patterns.push_back(p);
  }
  std::vector<fault_comm> execs;
  for (const std::string& name : options.exec_names) {
    fault_comm key;
    if (absl::Status s = CommKey(name, &key, "--capture-exec"); !s.ok()) return s;
    execs.push_back(key);
  }
  for (pid_t pid : options.pids) {
    if (pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH)) {
      return absl::NotFoundError(absl::StrCat("--capture-pid ", pid, ": no such process"));
    }
  }
  std::vector<uint64_t> cgroup_ids;
  int levels = 0;
  for (const std::string& path : options.cgroups) {
    uint64_t id = 0;
    int level = 0;
    if (absl::Status s = CgroupId(*root, path, &id, &level); !s.ok()) return s;
    cgroup_ids.push_back(id);
    levels = std::max(levels, level);
  }
  if (execs.size() > FAULT_MAX_NAMES ||
      cgroup_ids.size() > FAULT_MAX_CGROUPS) {
    return absl::InvalidArgumentError("too many capture selectors");
  }

  ScopedLog log;
  std::unique_ptr<Capture> c(new Capture());
  c->options_ = options;
  c->skel_ = fault_capture::open();
  if (c->skel_ == nullptr) {
    return absl::InternalError(absl::StrCat("cannot open the BPF object: ",
                                            std::strerror(errno), LogTail(log.text)));
  }
  auto* ro = c->skel_->rodata;
  ro->cfg_self_tgid = static_cast<uint32_t>(getpid());
  ro->cfg_mark = options.mark;
  ro->cfg_netns_cookie = options.all_netns ? 0 : NetnsCookie();
  if (!options.all_netns && ro->cfg_netns_cookie == 0) {
    return absl::FailedPreconditionError(
        "cannot read this network namespace's cookie (SO_NETNS_COOKIE needs Linux 5.14): "
        "use --capture-all-netns to capture in every namespace");
  }
  uint32_t select = 0;
  if (!patterns.empty()) select |= FAULT_SEL_COMMS;
  if (pid_tree) select |= FAULT_SEL_PIDS;
  if (!cgroup_ids.empty()) select |= FAULT_SEL_CGROUPS;
  ro->cfg_select = select;
  ro->cfg_patterns = static_cast<uint32_t>(patterns.size());
  for (size_t i = 0; i < patterns.size(); ++i)
    std::memcpy(const_cast<fault_pattern*>(&ro->cfg_pattern[i]), &patterns[i],
                sizeof(patterns[i]));
  ro->cfg_cgroup_levels = static_cast<uint32_t>(levels);
  ro->cfg_tcp4 = htons(options.tcp_port4);
  ro->cfg_tcp6 = htons(options.tcp_port6);
  ro->cfg_udp4 = htons(options.udp_port4);
  ro->cfg_udp6 = htons(options.udp_port6);
  // The tracepoints run for every fork and exec on the machine: load them
  // only when a PID tree or an exec name is selected.
  bpf_program__set_autoload(c->skel_->progs.fault_fork, pid_tree);
  bpf_program__set_autoload(c->skel_->progs.fault_exit, pid_tree);
  bpf_program__set_autoload(c->skel_->progs.fault_exec, !execs.empty());
  if (int err = fault_capture::load(c->skel_); err != 0) {
    if (err == -EPERM) {
      return absl::PermissionDeniedError(absl::StrCat(
          "the kernel refused to load the capture programs (EPERM): fault needs root or "
          "CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON, and the kernel may forbid BPF to this "
          "user (kernel.unprivileged_bpf_disabled, a lockdown or an LSM)", LogTail(log.text)));
    }
    return absl::InternalError(absl::StrCat("cannot load the capture programs: ",
                                            std::strerror(-err), LogTail(log.text)));
  }

  // Selections go in before the programs are attached, so that nothing is
  // ever captured half-configured.
  const uint8_t one = 1;
  for (const fault_comm& k : execs)
    bpf_map__update_elem(c->skel_->maps.sel_exec_names, &k, sizeof(k), &one, 1, BPF_ANY);
  for (uint64_t id : cgroup_ids)
    bpf_map__update_elem(c->skel_->maps.sel_cgroups, &id, sizeof(id), &one, 1, BPF_ANY);
  for (pid_t pid : options.pids) {
    uint32_t tgid = static_cast<uint32_t>(pid);
    bpf_map__update_elem(c->skel_->maps.sel_pids, &tgid, sizeof(tgid), &one, 1, BPF_ANY);
  }

  // Tracepoints first: a PID tree must be followed from before its first
  // connect can be redirected.
  struct Prog {
    bpf_program* prog;
    const char* name;
    bool cgroup;
    bool wanted;
  };
  const bool udp = options.udp_port4 != 0 || options.udp_port6 != 0;
  const Prog progs[] = {
      {c->skel_->progs.fault_fork, "sched_process_fork", false, pid_tree},
      {c->skel_->progs.fault_exit, "sched_process_exit", false, pid_tree},
      {c->skel_->progs.fault_exec, "sched_process_exec", false, !execs.empty()},
      {c->skel_->progs.fault_recvmsg4, "recvmsg4", true, udp},
      {c->skel_->progs.fault_recvmsg6, "recvmsg6", true, udp},
      {c->skel_->progs.fault_getpeername4, "getpeername4", true, true},
      {c->skel_->progs.fault_getpeername6, "getpeername6", true, true},
      {c->skel_->progs.fault_sendmsg4, "sendmsg4", true, udp},
      {c->skel_->progs.fault_sendmsg6, "sendmsg6", true, udp},
      {c->skel_->progs.fault_connect4, "connect4", true, true},
      {c->skel_->progs.fault_connect6, "connect6", true, true},
  };
  int cg = open(root->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open the cgroup2 root ", *root, ": ", std::strerror(errno)));
  }
  for (const Prog& p : progs) {
    if (!p.wanted) continue;
    bpf_link* link = p.cgroup ? bpf_program__attach_cgroup(p.prog, cg) : bpf_program__attach(p.prog);
    if (link == nullptr) {
      const int e = errno;
      close(cg);
      // The destructor detaches what was attached so far.
      if (p.cgroup && e == EPERM) {
        return absl::FailedPreconditionError(absl::StrCat(
            "cannot attach ", p.name, " to ", *root, ": EPERM. Another program is attached "
            "there or above without BPF_F_ALLOW_MULTI (an exclusive attach), which forbids "
            "others; `bpftool cgroup tree` shows it"));
      }
      return absl::InternalError(absl::StrCat("cannot attach ", p.name, " to ",
                                              p.cgroup ? *root : "its tracepoint", ": ",
                                              std::strerror(e), LogTail(log.text)));
    }
    c->links_.push_back(link);
  }
  close(cg);
  return c;
}

Capture::~Capture() {
  // Links in reverse: the redirecting programs go first.
  for (auto it = links_.rbegin(); it != links_.rend(); ++it) bpf_link__destroy(*it);
  if (skel_ != nullptr) fault_capture::destroy(skel_);
  if (diag_fd_ >= 0) close(diag_fd_);
}

// The socket cookie of a captured client, from the kernel's socket table
// (sock_diag) by the 4-tuple the engine sees: the connect hook ran before
// the client had a port, so it filed the destination under the cookie.
bool Capture::DiagCookie(const sockaddr_storage& client, int protocol, uint64_t* cookie) {
  std::lock_guard<std::mutex> lock(diag_mu_);
  if (diag_fd_ < 0) {
    diag_fd_ = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (diag_fd_ < 0) return false;
    timeval tv = {0, 200000};
    setsockopt(diag_fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  const bool tcp = protocol == IPPROTO_TCP;
  // A v4 client may also be an IPv6 socket speaking to a mapped address.
  for (int family : {AF_INET, AF_INET6}) {
    // The client's end and the engine's listener, in the request's form.
    uint32_t client_ip[4] = {}, engine_ip[4] = {};
    uint16_t client_port = 0, engine_port = 0;
    if (client.ss_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&client);
      client_port = in->sin_port;
      engine_port = htons(tcp ? options_.tcp_port4 : options_.udp_port4);
      const int at = family == AF_INET ? 0 : 3;
      if (family == AF_INET6) client_ip[2] = engine_ip[2] = htonl(0xffff);
      client_ip[at] = in->sin_addr.s_addr;
      engine_ip[at] = htonl(INADDR_LOOPBACK);
    } else {
      if (family == AF_INET) continue;
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&client);
      client_port = in6->sin6_port;
      engine_port = htons(tcp ? options_.tcp_port6 : options_.udp_port6);
      std::memcpy(client_ip, &in6->sin6_addr, 16);
      engine_ip[3] = htonl(1);
    }
    struct {
      nlmsghdr nlh;
      inet_diag_req_v2 req;
    } msg = {};
    msg.nlh.nlmsg_len = sizeof(msg);
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST;
    msg.req.sdiag_family = static_cast<uint8_t>(family);
    msg.req.sdiag_protocol = static_cast<uint8_t>(protocol);
    msg.req.idiag_states = ~0u;
    msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
    msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    // TCP looks the socket up by its own end (source = the client); UDP as
    // the receiver of a datagram (source = the engine, destination = the
    // client).
    const uint32_t* src = tcp ? client_ip : engine_ip;
    const uint32_t* dst = tcp ? engine_ip : client_ip;
    std::memcpy(msg.req.id.idiag_src, src, 16);
    std::memcpy(msg.req.id.idiag_dst, dst, 16);
    msg.req.id.idiag_sport = tcp ? client_port : engine_port;
    msg.req.id.idiag_dport = tcp ? engine_port : client_port;
    sockaddr_nl nl = {};
    nl.nl_family = AF_NETLINK;
    if (sendto(diag_fd_, &msg, sizeof(msg), 0, reinterpret_cast<sockaddr*>(&nl), sizeof(nl)) < 0)
      return false;
    alignas(nlmsghdr) char buf[4096];
    ssize_t n = recv(diag_fd_, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    auto* h = reinterpret_cast<nlmsghdr*>(buf);
    if (!NLMSG_OK(h, static_cast<size_t>(n)) || h->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
    auto* r = static_cast<inet_diag_msg*>(NLMSG_DATA(h));
    *cookie = static_cast<uint64_t>(r->id.idiag_cookie[1]) << 32 | r->id.idiag_cookie[0];
    return true;
  }
  return false;
}

bool Capture::TakeOrigin(const sockaddr_storage& client, int protocol, Origin* out) {
  fault_client_key key;
  ToClientKey(client, protocol, &key);
  fault_origin o;
  // UDP datagrams are filed by the client's address (sendmsg, or an earlier
  // datagram of a connected socket); TCP connections only by cookie.
  bpf_map* by_client = skel_->maps.origin_by_client;
  if (protocol == IPPROTO_UDP &&
      bpf_map__lookup_elem(by_client, &key, sizeof(key), &o, sizeof(o), 0) == 0) {
    ToOrigin(o, out);
    return true;
  }
  uint64_t cookie = 0;
  if (!DiagCookie(client, protocol, &cookie)) return false;
  bpf_map* by_cookie = skel_->maps.origin_by_cookie;
  if (bpf_map__lookup_elem(by_cookie, &cookie, sizeof(cookie), &o, sizeof(o), 0) != 0)
    return false;
  bpf_map__delete_elem(by_cookie, &cookie, sizeof(cookie), 0);
  // Later datagrams of a connected UDP socket find it by address.
  if (protocol == IPPROTO_UDP)
    bpf_map__update_elem(by_client, &key, sizeof(key), &o, sizeof(o), BPF_ANY);
  ToOrigin(o, out);
  return true;
}

void Capture::Release(const sockaddr_storage& client, int protocol) {
  fault_client_key key;
  ToClientKey(client, protocol, &key);
  bpf_map__delete_elem(skel_->maps.origin_by_client, &key, sizeof(key), 0);
}

absl::Status Capture::AddPid(pid_t pid) {
  if ((skel_->rodata->cfg_select & FAULT_SEL_PIDS) == 0) {
    return absl::FailedPreconditionError("capture was started without PID-tree selection");
  }
  uint32_t tgid = static_cast<uint32_t>(pid);
  const uint8_t one = 1;
  if (bpf_map__update_elem(skel_->maps.sel_pids, &tgid, sizeof(tgid), &one, 1, BPF_ANY) != 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot select PID ", pid, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

CaptureCounters Capture::counters() const {
  const int cpus = libbpf_num_possible_cpus();
  std::vector<uint64_t> values(cpus > 0 ? cpus : 1);
  uint64_t sums[FAULT_COUNTERS] = {};
  for (uint32_t k = 0; k < FAULT_COUNTERS; ++k) {
    if (bpf_map__lookup_elem(skel_->maps.counters, &k, sizeof(k), values.data(),
                             values.size() * sizeof(uint64_t), 0) != 0)
      continue;
    for (uint64_t v : values) sums[k] += v;
  }
  CaptureCounters c;
  c.tcp4 = sums[FAULT_CNT_TCP4];
  c.tcp6 = sums[FAULT_CNT_TCP6];
  c.udp4 = sums[FAULT_CNT_UDP4];
  c.udp6 = sums[FAULT_CNT_UDP6];
  c.no_storage = sums[FAULT_CNT_NO_STORAGE];
  c.map_full = sums[FAULT_CNT_MAP_FULL];
  return c;
}

absl::Status ProbeCapture() {
  // Nothing selected: the programs load and attach, and capture nothing.
  CaptureOptions o;
  o.tcp_port4 = 1;
  absl::StatusOr<std::unique_ptr<Capture>> c = Capture::Start(o);
  return c.status();
}

#endif  // FAULT_HAVE_BPF

}  // namespace fault::ebpf
