#include "supervisor/spec/builtins.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "supervisor/policy/units.h"
#include "supervisor/spec/events.h"
#include "supervisor/spec/expectations.h"
#include "supervisor/spec/spec.h"

extern char** environ;

namespace fault::spec {
namespace sl = ::fault::starlark;
using sl::Value;

namespace {

thread_local CellContext* t_cell = nullptr;

class Record : public sl::HostValue {
 public:
  Record(std::vector<std::pair<std::string, Value>> f, std::string type)
      : fields_(std::move(f)), type_(std::move(type)) {}
  std::string Type() const override { return type_; }
  Value Attr(sl::Thread&, std::string_view name) override {
    for (auto& [k, v] : fields_)
      if (k == name) return v;
    return Value();
  }
  std::vector<std::string> AttrNames() const override {
    std::vector<std::string> out;
    for (auto& [k, v] : fields_) out.push_back(k);
    return out;
  }
  std::string Repr() const override {
    std::vector<std::string> parts;
    for (auto& [k, v] : fields_)
      parts.push_back(absl::StrCat(k, " = ", sl::Repr(v)));
    return absl::StrCat(type_, "(", absl::StrJoin(parts, ", "), ")");
  }
  void Freeze() override {
    for (auto& [k, v] : fields_) sl::Freeze(v);
  }

 private:
  std::vector<std::pair<std::string, Value>> fields_;
  std::string type_;
};

CellContext& RequireCell(absl::string_view fname) {
  if (t_cell == nullptr)
    sl::Fail(absl::StrCat(fname, ": only available while a scenario runs"));
  return *t_cell;
}

// An operation of the scenario on the system (exec, http.*, tcp.connect)
// is about to start: the runner may apply the cell's fault now
// (CellContext::before_operation).
void BeforeOperation(CellContext& cell, absl::string_view op) {
  if (!cell.before_operation) return;
  if (std::string err = cell.before_operation(op); !err.empty())
    sl::Fail(absl::StrCat(op, ": ", err));
}

// The earlier of now+timeout and the cell deadline; whether the deadline
// is the bound.
absl::Time Bound(const CellContext& cell, absl::Duration timeout,
                 bool* by_cell) {
  absl::Time t = absl::Now() + timeout;
  *by_cell = cell.deadline <= t;
  return *by_cell ? cell.deadline : t;
}

int64_t MillisSince(absl::Time start) {
  return absl::ToInt64Milliseconds(absl::Now() - start);
}

// Waits for events on fd until `until`; false on timeout.
bool WaitFd(int fd, short events, absl::Time until) {
  for (;;) {
    absl::Duration left = until - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd p{fd, events, 0};
    int r = poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return true;  // let the caller see the error
  }
}

std::string StringArg(absl::string_view fname, absl::string_view param,
                      const Value& v) {
  if (!v.Is(sl::Kind::kString) && !v.Is(sl::Kind::kBytes))
    sl::Fail(absl::StrCat(fname, ": for parameter \"", param, "\": got ",
                          sl::TypeName(v), ", want string"));
  return sl::StrOf(v);
}

std::vector<std::pair<std::string, std::string>> StringDictArg(
    absl::string_view fname, absl::string_view param, const Value& v) {
  std::vector<std::pair<std::string, std::string>> out;
  if (v.IsNull() || v.IsNone()) return out;
  if (!v.Is(sl::Kind::kDict))
    sl::Fail(absl::StrCat(fname, ": for parameter \"", param, "\": got ",
                          sl::TypeName(v), ", want dict"));
  sl::DictOf(v)->t.ForEach([&](const sl::HashTable::Entry& e) {
    out.emplace_back(StringArg(fname, param, e.key),
                     e.value.Is(sl::Kind::kString) ? sl::StrOf(e.value)
                                                   : sl::ToStr(e.value));
  });
  return out;
}

// Connects a non-blocking TCP socket to host:port by `until`.
int ConnectTcp(const std::string& host, int port, absl::Time until,
               std::string* error) {
  std::string h = host == "localhost" ? "127.0.0.1" : host;
  sockaddr_storage ss{};
  socklen_t len;
  int family;
  auto* in4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, h.c_str(), &in4->sin_addr) == 1) {
    in4->sin_family = family = AF_INET;
    in4->sin_port = htons(port);
    len = sizeof(*in4);
  } else if (inet_pton(AF_INET6, h.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = family = AF_INET6;
    in6->sin6_port = htons(port);
    len = sizeof(*in6);
  } else {
    *error =
        absl::StrCat("host \"", host, "\" is not an IP address or localhost");
    return -1;
  }
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = absl::StrCat("socket: ", strerror(errno));
    return -1;
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno != EINPROGRESS) {
      *error = absl::StrCat("connect: ", strerror(errno));
      close(fd);
      return -1;
    }
    if (!WaitFd(fd, POLLOUT, until)) {
      *error = "connect: timed out";
      close(fd);
      return -1;
    }
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err != 0) {
      *error = absl::StrCat("connect: ", strerror(err));
      close(fd);
      return -1;
    }
  }
  return fd;
}

bool SendAll(int fd, absl::string_view data, absl::Time until,
             std::string* error) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      if (!WaitFd(fd, POLLOUT, until)) {
        *error = "send: timed out";
        return false;
      }
      continue;
    }
    *error = absl::StrCat("send: ", strerror(errno));
    return false;
  }
  return true;
}

// Reads until EOF (or, with stop_at_newline, a newline), an error or
// `until`. Returns false on error or timeout (with what was read).
bool RecvUntil(int fd, std::string* out, absl::Time until, bool stop_at_newline,
               std::string* error) {
  char buf[16384];
  for (;;) {
    if (stop_at_newline && out->find('\n') != std::string::npos) return true;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      out->append(buf, n);
      if (out->size() > (64u << 20)) {
        *error = "recv: response larger than 64mb";
        return false;
      }
      continue;
    }
    if (n == 0) return true;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      if (!WaitFd(fd, POLLIN, until)) {
        *error = "recv: timed out";
        return false;
      }
      continue;
    }
    *error = absl::StrCat("recv: ", strerror(errno));
    return false;
  }
}

std::string Expand(const CellContext& cell, std::string s) {
  return cell.expand_port_refs ? cell.expand_port_refs(s) : s;
}

[[noreturn]] void FailTimeout(const CellContext& cell) {
  sl::Fail(cell.timeout_message);
}

// ---- exec ----

Value ExecBuiltin(sl::Thread& th, const Value&, const sl::Args& args) {
  Value argv, timeout = sl::Str("30s"), stdin_v, env_v;
  sl::UnpackArgs("exec", args,
                 {{"argv", &argv},
                  {"timeout?", &timeout},
                  {"stdin?", &stdin_v},
                  {"env?", &env_v}});
  CellContext& cell = RequireCell("exec");
  BeforeOperation(cell, "exec");
  std::vector<std::string> cmd;
  if (!argv.Is(sl::Kind::kList) && !argv.Is(sl::Kind::kTuple))
    sl::Fail(absl::StrCat("exec: for parameter \"argv\": got ",
                          sl::TypeName(argv), ", want list of strings"));
  for (const Value& a : sl::ToVector(th, argv))
    cmd.push_back(Expand(cell, StringArg("exec", "argv", a)));
  if (cmd.empty()) sl::Fail("exec: argv is empty");
  std::string input = stdin_v.IsNull() || stdin_v.IsNone()
                          ? ""
                          : StringArg("exec", "stdin", stdin_v);
  auto extra_env = StringDictArg("exec", "env", env_v);
  for (auto& [k, v] : extra_env) v = Expand(cell, v);
  bool by_cell;
  absl::Time until =
      Bound(cell, DurationArg("exec", "timeout", timeout), &by_cell);

  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
    sl::Fail(absl::StrCat("exec: pipe: ", strerror(errno)));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) envs.emplace_back(*e);
  for (auto& [k, v] : extra_env) envs.push_back(absl::StrCat(k, "=", v));
  std::vector<char*> cargv, cenv;
  for (auto& s : cmd) cargv.push_back(s.data());
  cargv.push_back(nullptr);
  for (auto& s : envs) cenv.push_back(s.data());
  cenv.push_back(nullptr);
  absl::Time start = absl::Now();
  pid_t pid;
  int rc = posix_spawnp(&pid, cargv[0], &fa, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (rc != 0) {
    close(in[1]);
    close(out[0]);
    close(err[0]);
    return MakeRecord(
        {{"exit_code", sl::Int(127)},
         {"stdout", sl::Str("")},
         {"stderr", sl::Str(absl::StrCat(cmd[0], ": ", strerror(rc)))},
         {"duration_ms", sl::Int(0)},
         {"timed_out", sl::Bool(false)}});
  }
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  std::string so, se;
  size_t written = 0;
  if (input.empty()) {
    close(in[1]);
    in[1] = -1;
  }
  bool timed_out = false;
  int open_fds = 2;
  while (open_fds > 0 || in[1] >= 0) {
    absl::Duration left = until - absl::Now();
    if (left <= absl::ZeroDuration()) {
      timed_out = true;
      break;
    }
    pollfd p[3] = {
        {out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {in[1], POLLOUT, 0}};
    int r = poll(p, 3, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (r < 0 && errno == EINTR) continue;
    for (int i = 0; i < 2; ++i) {
      if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      char buf[8192];
      ssize_t n = read(p[i].fd, buf, sizeof(buf));
      if (n > 0) {
        (i == 0 ? so : se).append(buf, n);
      } else if (n == 0 || errno != EINTR) {
        close(p[i].fd);
        (i == 0 ? out[0] : err[0]) = -1;
        --open_fds;
      }
    }
    if (in[1] >= 0 && (p[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = write(in[1], input.data() + written, input.size() - written);
      if (n > 0) written += n;
      if (n < 0 || written == input.size()) {
        close(in[1]);
        in[1] = -1;
      }
    }
  }
  for (int fd : {in[1], out[0], err[0]})
    if (fd >= 0) close(fd);
  int status = 0;
  if (timed_out) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
  }
  // Bounded: the child is killed above on timeout; otherwise its output
  // ended, so it is exiting.
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out && by_cell) FailTimeout(cell);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return MakeRecord({{"exit_code", sl::Int(timed_out ? -1 : code)},
                     {"stdout", sl::Str(so)},
                     {"stderr", sl::Str(se)},
                     {"duration_ms", sl::Int(MillisSince(start))},
                     {"timed_out", sl::Bool(timed_out)}});
}

// ---- http ----

Value HttpResult(int status, std::string body, Value headers, int64_t ms,
                 std::string error) {
  return MakeRecord({{"status", sl::Int(status)},
                     {"body", sl::Str(std::move(body))},
                     {"headers", std::move(headers)},
                     {"duration_ms", sl::Int(ms)},
                     {"error", sl::Str(std::move(error))}},
                    "http_response");
}

Value HttpRequest(absl::string_view method, sl::Thread& th,
                  const sl::Args& args) {
  std::string fname = absl::StrCat("http.", absl::AsciiStrToLower(method));
  std::string url, body;
  Value headers_v, timeout = sl::Str("10s");
  const bool has_body =
      method == "POST" || method == "PUT" || method == "PATCH";
  if (has_body) {
    sl::UnpackArgs(fname, args,
                   {{"url", &url},
                    {"body?", &body},
                    {"headers?", &headers_v},
                    {"timeout?", &timeout}});
  } else {
    sl::UnpackArgs(
        fname, args,
        {{"url", &url}, {"headers?", &headers_v}, {"timeout?", &timeout}});
  }
  CellContext& cell = RequireCell(fname);
  BeforeOperation(cell, fname);
  url = Expand(cell, url);
  auto headers = StringDictArg(fname, "headers", headers_v);
  bool by_cell;
  absl::Time until =
      Bound(cell, DurationArg(fname, "timeout", timeout), &by_cell);
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "http://"))
    sl::Fail(absl::StrCat(fname, ": url \"", url,
                          "\": only http:// URLs are supported"));
  size_t slash = rest.find('/');
  absl::string_view hostport = rest.substr(0, slash);
  std::string path =
      slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  std::string host(hostport);
  int port = 80;
  absl::string_view port_text;
  if (absl::StartsWith(hostport, "[")) {
    size_t close_br = hostport.find(']');
    if (close_br == absl::string_view::npos)
      sl::Fail(absl::StrCat(fname, ": url \"", url,
                            "\": unterminated IPv6 address"));
    host = std::string(hostport.substr(1, close_br - 1));
    if (close_br + 1 < hostport.size() && hostport[close_br + 1] == ':')
      port_text = hostport.substr(close_br + 2);
  } else if (size_t colon = hostport.rfind(':');
             colon != absl::string_view::npos) {
    host = std::string(hostport.substr(0, colon));
    port_text = hostport.substr(colon + 1);
  }
  if (!port_text.empty() &&
      (!absl::SimpleAtoi(port_text, &port) || port <= 0 || port > 65535))
    sl::Fail(absl::StrCat(fname, ": url \"", url, "\": bad port"));

  absl::Time start = absl::Now();
  std::string error;
  int fd = ConnectTcp(host, port, until, &error);
  auto fail = [&](std::string e) {
    if (fd >= 0) close(fd);
    if (absl::Now() >= until && by_cell) FailTimeout(cell);
    return HttpResult(0, "", sl::NewDict(), MillisSince(start), std::move(e));
  };
  if (fd < 0) return fail(error);
  std::string req =
      absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: ", hostport,
                   "\r\nConnection: close\r\nUser-Agent: fault-test\r\n");
  for (auto& [k, v] : headers) absl::StrAppend(&req, k, ": ", v, "\r\n");
  if (has_body) absl::StrAppend(&req, "Content-Length: ", body.size(), "\r\n");
  absl::StrAppend(&req, "\r\n", body);
  if (!SendAll(fd, req, until, &error)) return fail(error);
  std::string resp;
  if (!RecvUntil(fd, &resp, until, false, &error)) return fail(error);
  close(fd);
  fd = -1;
  size_t hend = resp.find("\r\n\r\n");
  if (hend == std::string::npos)
    return fail("malformed response: no end of headers");
  std::vector<absl::string_view> lines =
      absl::StrSplit(absl::string_view(resp).substr(0, hend), "\r\n");
  std::vector<absl::string_view> status_parts =
      absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  int status = 0;
  if (status_parts.size() < 2 || !absl::SimpleAtoi(status_parts[1], &status))
    return fail(absl::StrCat("malformed status line: ", lines[0]));
  Value hdrs = sl::NewDict();
  bool chunked = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t c = lines[i].find(':');
    if (c == absl::string_view::npos) continue;
    std::string k = absl::AsciiStrToLower(lines[i].substr(0, c));
    std::string v(absl::StripAsciiWhitespace(lines[i].substr(c + 1)));
    if (k == "transfer-encoding" &&
        absl::StrContains(absl::AsciiStrToLower(v), "chunked"))
      chunked = true;
    sl::DictOf(hdrs)->t.Insert(sl::Str(k), sl::Str(v));
  }
  std::string payload = resp.substr(hend + 4);
  if (chunked) {
    std::string decoded;
    absl::string_view p = payload;
    for (;;) {
      size_t e = p.find("\r\n");
      if (e == absl::string_view::npos) break;
      size_t n = 0;
      if (!absl::SimpleHexAtoi(p.substr(0, p.substr(0, e).find(';')), &n) ||
          n == 0)
        break;
      p.remove_prefix(e + 2);
      decoded.append(p.data(), std::min(p.size(), n));
      p.remove_prefix(std::min(p.size(), n + 2));
    }
    payload = decoded;
  }
  (void)th;
  return HttpResult(status, std::move(payload), hdrs, MillisSince(start), "");
}

// ---- tcp ----

Value TcpConnect(sl::Thread&, const Value&, const sl::Args& args) {
  std::string host;
  int64_t port = 0;
  Value timeout = sl::Str("5s"), send_v;
  sl::UnpackArgs("tcp.connect", args,
                 {{"host", &host},
                  {"port", &port},
                  {"timeout?", &timeout},
                  {"send?", &send_v}});
  CellContext& cell = RequireCell("tcp.connect");
  BeforeOperation(cell, "tcp.connect");
  if (port <= 0 || port > 65535)
    sl::Fail(absl::StrCat("tcp.connect: port ", port, " out of range"));
  bool by_cell;
  absl::Time until =
      Bound(cell, DurationArg("tcp.connect", "timeout", timeout), &by_cell);
  absl::Time start = absl::Now();
  std::string error, reply;
  int fd = ConnectTcp(host, static_cast<int>(port), until, &error);
  if (fd >= 0 && !send_v.IsNull() && !send_v.IsNone()) {
    std::string data = StringArg("tcp.connect", "send", send_v);
    if (SendAll(fd, data, until, &error))
      RecvUntil(fd, &reply, until, true, &error);
  }
  if (fd >= 0) close(fd);
  if (!error.empty() && absl::Now() >= until && by_cell) FailTimeout(cell);
  return MakeRecord({{"ok", sl::Bool(error.empty())},
                     {"error", sl::Str(error)},
                     {"reply", sl::Str(reply)},
                     {"duration_ms", sl::Int(MillisSince(start))}},
                    "tcp_result");
}

Value SleepBuiltin(sl::Thread&, const Value&, const sl::Args& args) {
  Value d;
  sl::UnpackArgs("sleep", args, {{"duration", &d}});
  CellContext& cell = RequireCell("sleep");
  bool by_cell;
  absl::Time until = Bound(cell, DurationArg("sleep", "duration", d), &by_cell);
  absl::SleepFor(until - absl::Now());
  if (by_cell) FailTimeout(cell);
  return sl::None();
}

// ---- parallel ----

// parallel(f, g, ...): calls each function (no arguments) on its own thread,
// all at the same time, waits for all of them, and returns their results
// in order. The functions (and what they capture) are frozen first: they
// run on other threads, and share only frozen values. A function that
// fails fails the call, once every function has ended; at the cell's
// deadline the functions still running are cancelled.
Value ParallelBuiltin(sl::Thread& th, const Value&, const sl::Args& args) {
  CellContext& cell = RequireCell("parallel");
  constexpr size_t kMaxFunctions = 64;
  if (!args.kw.empty())
    sl::Fail(absl::StrCat("unexpected keyword argument \"",
                          sl::StrOf(args.kw[0].first),
                          "\" (give the functions as positional arguments)"));
  if (args.pos.empty())
    sl::Fail("got no functions, want one or more (parallel(f, g))");
  if (args.pos.size() > kMaxFunctions)
    sl::Fail(absl::StrCat("got ", args.pos.size(), " functions, want at most ",
                          kMaxFunctions));
  for (size_t i = 0; i < args.pos.size(); ++i) {
    const Value& f = args.pos[i];
    if (!f.Is(sl::Kind::kFunction) && !f.Is(sl::Kind::kBuiltin))
      sl::Fail(absl::StrCat("argument ", i + 1, ": got ", sl::TypeName(f),
                            ", want a function without parameters"));
    sl::Freeze(f);
  }
  const size_t n = args.pos.size();
  struct Branch {
    sl::Thread thread;
    absl::StatusOr<Value> result = Value();
    bool done = false;
  };
  std::vector<std::unique_ptr<Branch>> branches;
  std::mutex mu;  // done, and print() of the branches
  std::condition_variable cv;
  const CellInstances* instances = CurrentCellInstances();
  std::vector<std::thread> threads;
  for (size_t i = 0; i < n; ++i) {
    auto b = std::make_unique<Branch>();
    b->thread.name = absl::StrCat(th.name, "/parallel-", i + 1);
    b->thread.dialect = th.dialect;
    b->thread.max_steps = th.max_steps;
    b->thread.max_call_depth = th.max_call_depth;
    b->thread.print = [&th, &mu](sl::Thread&, const std::string& line) {
      std::lock_guard<std::mutex> l(mu);
      if (th.print) th.print(th, line);
    };
    branches.push_back(std::move(b));
  }
  for (size_t i = 0; i < n; ++i) {
    Branch* b = branches[i].get();
    Value f = args.pos[i];
    threads.emplace_back([b, f, &cell, instances, &mu, &cv] {
      ScopedCell scoped_cell(&cell);
      ScopedCellInstances scoped_instances(instances);
      absl::StatusOr<Value> r = sl::Call(b->thread, f, {});
      std::lock_guard<std::mutex> l(mu);
      b->result = std::move(r);
      b->done = true;
      cv.notify_all();
    });
  }
  bool timed_out = false;
  {
    std::unique_lock<std::mutex> l(mu);
    auto all_done = [&] {
      for (auto& b : branches)
        if (!b->done) return false;
      return true;
    };
    while (!all_done()) {
      absl::Duration left = cell.deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        if (!timed_out)
          for (auto& b : branches) b->thread.Cancel(cell.timeout_message);
        timed_out = true;
        cv.wait(l);
        continue;
      }
      cv.wait_for(l, absl::ToChronoNanoseconds(
                         std::min(left, absl::Milliseconds(100))));
    }
  }
  for (auto& t : threads) t.join();
  if (timed_out) FailTimeout(cell);
  std::vector<Value> results;
  for (size_t i = 0; i < n; ++i) {
    const absl::StatusOr<Value>& r = branches[i]->result;
    if (!r.ok()) {
      int failed = 0;
      for (auto& b : branches) failed += !b->result.ok();
      sl::Fail(absl::StrCat(
          "function ", i + 1, " of ", n, " (", sl::Repr(args.pos[i]), ")",
          failed > 1 ? absl::StrCat(" and ", failed - 1, " more") : "",
          " failed:\n", r.status().message()));
    }
    results.push_back(*r);
  }
  return sl::NewList(std::move(results));
}

// ---- assertions ----

std::string MsgSuffix(const Value& msg) {
  if (msg.IsNull() || msg.IsNone()) return "";
  return absl::StrCat(": ", sl::ToStr(msg));
}

// Failure messages follow the pattern "got X, want Y"; the backtrace adds
// "Error in assert_eq: " and the position of the call.
sl::BuiltinFn Compare2(std::string name, std::string want_prefix,
                       bool (*ok)(const Value&, const Value&)) {
  return [name, want_prefix, ok](sl::Thread&, const Value&,
                                 const sl::Args& args) -> Value {
    Value a, b, msg;
    sl::UnpackArgs(name, args, {{"a", &a}, {"b", &b}, {"msg?", &msg}});
    if (!ok(a, b))
      sl::Fail(absl::StrCat("got ", sl::Repr(a), ", want ", want_prefix,
                            sl::Repr(b), MsgSuffix(msg)));
    return sl::None();
  };
}

}  // namespace

CellContext* CurrentCell() { return t_cell; }

ScopedCell::ScopedCell(CellContext* cell) { t_cell = cell; }
ScopedCell::~ScopedCell() { t_cell = nullptr; }

void FailCellTimeout(const CellContext& cell) { FailTimeout(cell); }

Value MakeRecord(std::vector<std::pair<std::string, Value>> fields,
                 std::string type) {
  return sl::NewHost<Record>(std::move(fields), std::move(type));
}

absl::Duration DurationArg(absl::string_view fname, absl::string_view param,
                           const Value& v) {
  if (v.Is(sl::Kind::kInt) || v.Is(sl::Kind::kFloat)) {
    double s = v.Is(sl::Kind::kInt) ? sl::IntToDouble(v) : sl::FloatOf(v);
    if (s < 0)
      sl::Fail(absl::StrCat(fname, ": for parameter \"", param,
                            "\": negative duration"));
    return absl::Seconds(s);
  }
  if (!v.Is(sl::Kind::kString))
    sl::Fail(absl::StrCat(fname, ": for parameter \"", param, "\": got ",
                          sl::TypeName(v),
                          ", want duration string like \"2s\""));
  absl::StatusOr<int64_t> ns = fault::policy::ParseDuration(sl::StrOf(v));
  if (!ns.ok())
    sl::Fail(absl::StrCat(fname, ": for parameter \"", param,
                          "\": ", ns.status().message()));
  return absl::Nanoseconds(*ns);
}

std::string CallPosition(sl::Thread& th) {
  for (auto it = th.stack.rbegin(); it != th.stack.rend(); ++it) {
    if (it->file != nullptr)
      return absl::StrCat(it->file->filename, ":", it->pos.line, ":",
                          it->pos.col);
  }
  return "<unknown>";
}

void AddCommonBuiltins(sl::StringDict* pre) {
  auto& p = *pre;
  p["struct"] = sl::NewBuiltin(
      "struct", [](sl::Thread&, const Value&, const sl::Args& a) {
        if (!a.pos.empty()) sl::Fail("struct: unexpected positional arguments");
        std::vector<std::pair<std::string, Value>> f;
        for (auto& [k, v] : a.kw) f.emplace_back(sl::StrOf(k), v);
        return MakeRecord(std::move(f));
      });
  p["assert_eq"] = sl::NewBuiltin(
      "assert_eq",
      Compare2("assert_eq", "",
               [](const Value& a, const Value& b) { return sl::Equal(a, b); }));
  p["assert_ne"] =
      sl::NewBuiltin("assert_ne", Compare2("assert_ne", "anything but ",
                                           [](const Value& a, const Value& b) {
                                             return !sl::Equal(a, b);
                                           }));
  p["assert_lt"] = sl::NewBuiltin(
      "assert_lt",
      Compare2("assert_lt", "< ", [](const Value& a, const Value& b) {
        return sl::Compare(a, b) < 0;
      }));
  p["assert_le"] = sl::NewBuiltin(
      "assert_le",
      Compare2("assert_le", "<= ", [](const Value& a, const Value& b) {
        return sl::Compare(a, b) <= 0;
      }));
  p["assert_gt"] = sl::NewBuiltin(
      "assert_gt",
      Compare2("assert_gt", "> ", [](const Value& a, const Value& b) {
        return sl::Compare(a, b) > 0;
      }));
  p["assert_ge"] = sl::NewBuiltin(
      "assert_ge",
      Compare2("assert_ge", ">= ", [](const Value& a, const Value& b) {
        return sl::Compare(a, b) >= 0;
      }));
  p["assert_contains"] = sl::NewBuiltin(
      "assert_contains", [](sl::Thread&, const Value&, const sl::Args& args) {
        Value c, x, msg;
        sl::UnpackArgs("assert_contains", args,
                       {{"container", &c}, {"x", &x}, {"msg?", &msg}});
        if (!sl::Contains(c, x))
          sl::Fail(absl::StrCat(sl::Repr(x), " not in ", sl::Repr(c),
                                MsgSuffix(msg)));
        return sl::None();
      });
  p["assert_true"] = sl::NewBuiltin(
      "assert_true", [](sl::Thread&, const Value&, const sl::Args& args) {
        Value x, msg;
        sl::UnpackArgs("assert_true", args, {{"x", &x}, {"msg?", &msg}});
        if (!sl::Truth(x))
          sl::Fail(absl::StrCat("got ", sl::Repr(x), ", want a true value",
                                MsgSuffix(msg)));
        return sl::None();
      });
  p["assert_false"] = sl::NewBuiltin(
      "assert_false", [](sl::Thread&, const Value&, const sl::Args& args) {
        Value x, msg;
        sl::UnpackArgs("assert_false", args, {{"x", &x}, {"msg?", &msg}});
        if (sl::Truth(x))
          sl::Fail(absl::StrCat("got ", sl::Repr(x), ", want a false value",
                                MsgSuffix(msg)));
        return sl::None();
      });
  p["exec"] = sl::NewBuiltin("exec", ExecBuiltin);
  p["sleep"] = sl::NewBuiltin("sleep", SleepBuiltin);
  p["parallel"] = sl::NewBuiltin("parallel", ParallelBuiltin);
  p["http"] = MakeRecord(
      {{"get",
        sl::NewBuiltin("http.get",
                       [](sl::Thread& th, const Value&, const sl::Args& a) {
                         return HttpRequest("GET", th, a);
                       })},
       {"post",
        sl::NewBuiltin("http.post",
                       [](sl::Thread& th, const Value&, const sl::Args& a) {
                         return HttpRequest("POST", th, a);
                       })},
       {"put",
        sl::NewBuiltin("http.put",
                       [](sl::Thread& th, const Value&, const sl::Args& a) {
                         return HttpRequest("PUT", th, a);
                       })},
       {"patch",
        sl::NewBuiltin("http.patch",
                       [](sl::Thread& th, const Value&, const sl::Args& a) {
                         return HttpRequest("PATCH", th, a);
                       })},
       {"delete",
        sl::NewBuiltin("http.delete",
                       [](sl::Thread& th, const Value&, const sl::Args& a) {
                         return HttpRequest("DELETE", th, a);
                       })}},
      "module");
  p["tcp"] = MakeRecord(
      {{"connect", sl::NewBuiltin("tcp.connect", TcpConnect)}}, "module");
  AddEventBuiltins(pre);
  AddExpectationBuiltins(pre);
}

}  // namespace fault::spec
