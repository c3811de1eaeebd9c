#include "supervisor/spec/mock.h"

#include <arpa/inet.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace fault::spec {
namespace {

constexpr size_t kMaxHead = 64 << 10;  // request line and headers
constexpr size_t kMaxBody = 1 << 20;   // a request body
constexpr size_t kMaxLine = 64 << 10;  // a line of the TCP protocol
constexpr int kMaxConnections = 256;   // served at the same time

bool Glob(const std::string& pattern, absl::string_view s) {
  return fnmatch(pattern.c_str(), std::string(s).c_str(), 0) == 0;
}

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 409:
      return "Conflict";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Status";
  }
}

bool WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(n);
  }
  return true;
}

// Reads more of fd into buf; false at EOF, on an error, or past `max`.
bool ReadMore(int fd, std::string* buf, size_t max) {
  if (buf->size() >= max) return false;
  char chunk[4096];
  for (;;) {
    ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf->append(chunk, n);
    return true;
  }
}

void Answer(int fd, const MockReply& r) {
  if (r.delay > absl::ZeroDuration()) absl::SleepFor(r.delay);
  if (r.close) return;
  std::string out = absl::StrCat("HTTP/1.1 ", r.status, " ", Reason(r.status),
                                 "\r\nContent-Length: ", r.body.size(),
                                 "\r\nConnection: close\r\n");
  for (const auto& [k, v] : r.headers)
    absl::StrAppend(&out, k, ": ", v, "\r\n");
  absl::StrAppend(&out, "\r\n", r.body);
  WriteAll(fd, out);
}

void ServeHttp(const MockConfig& config, int fd) {
  std::string buf;
  size_t head_end;
  while ((head_end = buf.find("\r\n\r\n")) == std::string::npos)
    if (!ReadMore(fd, &buf, kMaxHead)) return;
  std::vector<absl::string_view> lines =
      absl::StrSplit(absl::string_view(buf).substr(0, head_end), "\r\n");
  std::vector<absl::string_view> request_line =
      absl::StrSplit(lines[0], ' ', absl::SkipEmpty());
  if (request_line.size() < 2) {
    MockReply bad;
    bad.status = 400;
    bad.body = "mock: bad request line\n";
    Answer(fd, bad);
    return;
  }
  size_t length = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) continue;
    if (absl::EqualsIgnoreCase(
            absl::StripAsciiWhitespace(lines[i].substr(0, colon)),
            "content-length") &&
        !absl::SimpleAtoi(
            absl::StripAsciiWhitespace(lines[i].substr(colon + 1)), &length))
      length = 0;  // not a number: no body
  }
  std::string method(request_line[0]), target(request_line[1]);
  // The body is read (and dropped) so the client is not reset while it sends.
  while (buf.size() - head_end - 4 < std::min(length, kMaxBody))
    if (!ReadMore(fd, &buf, head_end + 4 + kMaxBody)) break;
  if (const MockReply* r = MatchHttp(config, method, target)) {
    Answer(fd, *r);
    return;
  }
  MockReply none;
  none.status = 404;
  none.body = absl::StrCat("mock: no route for ", method, " ", target, "\n");
  Answer(fd, none);
}

void ServeTcp(const MockConfig& config, int fd) {
  std::string buf;
  for (;;) {
    size_t nl;
    while ((nl = buf.find('\n')) == std::string::npos)
      if (!ReadMore(fd, &buf, kMaxLine)) return;
    std::string line = buf.substr(0, nl);
    buf.erase(0, nl + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const MockReply* r = MatchLine(config, line);
    if (r == nullptr) return;  // no reply: the connection closes
    if (r->delay > absl::ZeroDuration()) absl::SleepFor(r->delay);
    if (r->close || !WriteAll(fd, r->body)) return;
  }
}

MockReply ReplyFromJson(const nlohmann::json& j) {
  MockReply r;
  r.status = j.value("status", 200);
  r.body = j.value("body", "");
  r.delay = absl::Nanoseconds(j.value("delay_ns", int64_t{0}));
  r.close = j.value("close", false);
  if (j.contains("headers"))
    for (const auto& h : j["headers"])
      r.headers.emplace_back(h.at(0).get<std::string>(),
                             h.at(1).get<std::string>());
  return r;
}

nlohmann::json ReplyToJson(const MockReply& r) {
  nlohmann::json headers = nlohmann::json::array();
  for (const auto& [k, v] : r.headers) headers.push_back({k, v});
  return {{"status", r.status},
          {"body", r.body},
          {"headers", headers},
          {"delay_ns", absl::ToInt64Nanoseconds(r.delay)},
          {"close", r.close}};
}

}  // namespace

std::string CheckRouteKey(MockConfig::Protocol protocol,
                          absl::string_view key) {
  if (protocol == MockConfig::Protocol::kTcp)
    return key.empty() ? "an empty line cannot be a route (use default=)" : "";
  std::vector<absl::string_view> parts = absl::StrSplit(key, ' ');
  absl::string_view path = parts.back();
  if (parts.size() > 2 || path.empty() || (path[0] != '/' && path[0] != '*'))
    return "want \"METHOD /path\" or \"/path\" (the path may be a glob: "
           "\"GET /items/*\")";
  if (parts.size() == 2) {
    if (parts[0].empty()) return "want \"METHOD /path\": the method is empty";
    for (char c : parts[0])
      if (!absl::ascii_isupper(static_cast<unsigned char>(c)))
        return absl::StrCat(
            "\"", parts[0],
            "\" is not a method (upper-case letters: GET, POST, ...)");
  }
  return "";
}

const MockReply* MatchHttp(const MockConfig& config, absl::string_view method,
                           absl::string_view target) {
  absl::string_view path = target.substr(0, target.find('?'));
  for (absl::string_view candidate : {path, target}) {
    for (const auto& [key, reply] : config.routes) {
      size_t space = key.find(' ');
      if (space != std::string::npos &&
          absl::string_view(key).substr(0, space) != method)
        continue;
      std::string pattern =
          space == std::string::npos ? key : key.substr(space + 1);
      if (Glob(pattern, candidate)) return &reply;
    }
    if (candidate == target) break;
  }
  return config.fallback ? &*config.fallback : nullptr;
}

const MockReply* MatchLine(const MockConfig& config, absl::string_view line) {
  for (const auto& [key, reply] : config.routes)
    if (Glob(key, line)) return &reply;
  return config.fallback ? &*config.fallback : nullptr;
}

nlohmann::json MockConfigToJson(const MockConfig& config) {
  nlohmann::json routes = nlohmann::json::array();
  for (const auto& [key, reply] : config.routes)
    routes.push_back({{"match", key}, {"reply", ReplyToJson(reply)}});
  nlohmann::json j = {
      {"protocol",
       config.protocol == MockConfig::Protocol::kHttp ? "http" : "tcp"},
      {"routes", routes}};
  if (config.fallback) j["default"] = ReplyToJson(*config.fallback);
  return j;
}

absl::StatusOr<MockConfig> MockConfigFromJson(const nlohmann::json& j) {
  MockConfig c;
  try {
    std::string protocol = j.at("protocol").get<std::string>();
    if (protocol != "http" && protocol != "tcp")
      return absl::InvalidArgumentError(
          absl::StrCat("protocol \"", protocol, "\": want http or tcp"));
    c.protocol = protocol == "http" ? MockConfig::Protocol::kHttp
                                    : MockConfig::Protocol::kTcp;
    for (const auto& r : j.at("routes")) {
      std::string key = r.at("match").get<std::string>();
      if (std::string why = CheckRouteKey(c.protocol, key); !why.empty())
        return absl::InvalidArgumentError(
            absl::StrCat("route \"", key, "\": ", why));
      c.routes.emplace_back(key, ReplyFromJson(r.at("reply")));
    }
    if (j.contains("default")) c.fallback = ReplyFromJson(j["default"]);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(e.what());
  }
  return c;
}

std::string ServeMock(const MockConfig& config, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::StrCat("socket: ", strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0)
    return absl::StrCat("bind 127.0.0.1:", port, ": ", strerror(errno));
  if (listen(fd, 128) != 0) return absl::StrCat("listen: ", strerror(errno));
  static std::atomic<int> active{0};
  for (;;) {
    int c = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE) {
        if (errno == EMFILE) absl::SleepFor(absl::Milliseconds(10));
        continue;
      }
      return absl::StrCat("accept: ", strerror(errno));
    }
    if (active.load() >= kMaxConnections) {
      close(c);
      continue;
    }
    ++active;
    std::thread([&config, c] {
      if (config.protocol == MockConfig::Protocol::kHttp)
        ServeHttp(config, c);
      else
        ServeTcp(config, c);
      close(c);
      --active;
    }).detach();
  }
}

}  // namespace fault::spec
