#include "supervisor/stream/protocol_faults.h"

#include <fnmatch.h>

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace fault::stream {
namespace {

// Larger messages are not buffered for matching: the connection is passed
// through from there on.
constexpr size_t kMaxMessage = 16 << 20;
constexpr size_t kMaxHttpHead = 64 << 10;
constexpr uint32_t kPgSslRequest = 80877103;
constexpr uint32_t kPgGssRequest = 80877104;
constexpr uint32_t kPgCancelRequest = 80877102;

uint64_t SplitMix(uint64_t* s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

bool Glob(const std::string& pattern, const std::string& text, int flags = 0) {
  return fnmatch(pattern.c_str(), text.c_str(), flags) == 0;
}

void PutU32(std::string* out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out->push_back(static_cast<char>((v >> s) & 0xff));
}

uint32_t GetU32(std::string_view in, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<uint8_t>(in[at + i]);
  return v;
}

// A decimal number ending in CRLF at `at` (digits only, as RESP writes
// them); advances `at` past the CRLF. Decided on the bytes seen so far
// alone, so that how they were split into reads changes nothing.
ParseResult Number(std::string_view in, size_t* at, int64_t* out) {
  size_t i = *at;
  bool negative = false;
  if (i < in.size() && in[i] == '-') {
    negative = true;
    ++i;
  }
  int64_t v = 0;
  size_t digits = 0;
  for (; i < in.size() && absl::ascii_isdigit(static_cast<unsigned char>(in[i])); ++i) {
    if (++digits > 18) return ParseResult::kInvalid;
    v = v * 10 + (in[i] - '0');
  }
  if (i >= in.size()) return ParseResult::kNeedMore;
  if (digits == 0 || in[i] != '\r') return ParseResult::kInvalid;
  if (i + 1 >= in.size()) return ParseResult::kNeedMore;
  if (in[i + 1] != '\n') return ParseResult::kInvalid;
  *out = negative ? -v : v;
  *at = i + 2;
  return ParseResult::kMessage;
}

// The path of a request target: origin form up to '?', or the path of an
// absolute-form URL.
std::string TargetPath(const std::string& url) {
  std::string_view u = url;
  if (size_t scheme = u.find("://"); scheme != std::string_view::npos && u[0] != '/') {
    size_t slash = u.find('/', scheme + 3);
    u = slash == std::string_view::npos ? std::string_view("/") : u.substr(slash);
  }
  u = u.substr(0, u.find_first_of("?#"));
  return std::string(u);
}

}  // namespace

void ProtocolFaultSet::Set(
    std::map<std::string, std::shared_ptr<const ProtocolFaults>> by_rule) {
  std::lock_guard<std::mutex> lock(mu_);
  by_rule_ = std::move(by_rule);
}

std::shared_ptr<const ProtocolFaults> ProtocolFaultSet::Find(const std::string& rule) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_rule_.find(rule);
  return it == by_rule_.end() ? nullptr : it->second;
}

// ---------------------------------------------------------------- encoders ---

std::string HttpFaultResponse(int status, std::string_view body, bool head_only,
                              bool keep_alive) {
  std::string out = absl::StrCat("HTTP/1.1 ", status, " ", HttpReason(status),
                                 "\r\nContent-Type: text/plain; charset=utf-8\r\n"
                                 "Content-Length: ",
                                 body.size(), "\r\n");
  if (!keep_alive) out += "Connection: close\r\n";
  out += "\r\n";
  if (!head_only) out.append(body);
  return out;
}

std::string RedisErrorReply(std::string_view error) {
  std::string out = "-";
  out.append(error);
  return out + "\r\n";
}

std::string PostgresErrorResponse(std::string_view sqlstate, std::string_view message) {
  std::string fields;
  for (auto [code, value] : {std::pair<char, std::string_view>{'S', "ERROR"},
                             {'V', "ERROR"},
                             {'C', sqlstate},
                             {'M', message}}) {
    fields.push_back(code);
    fields.append(value);
    fields.push_back('\0');
  }
  fields.push_back('\0');
  std::string out = "E";
  PutU32(&out, static_cast<uint32_t>(fields.size() + 4));
  return out + fields;
}

std::string PostgresReadyForQuery() {
  std::string out = "Z";
  PutU32(&out, 5);
  out.push_back('I');
  return out;
}

// ----------------------------------------------------------------- parsers ---

ParseResult ParseRedisCommand(std::string_view in, size_t* length,
                              std::vector<std::string>* args) {
  args->clear();
  if (in.empty()) return ParseResult::kNeedMore;
  if (in[0] != '*') {
    // Inline: one line of words.
    size_t nl = in.find('\n');
    if (nl == std::string_view::npos)
      return in.size() > kMaxHttpHead ? ParseResult::kInvalid : ParseResult::kNeedMore;
    std::string_view line = in.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    for (size_t i = 0; i < line.size();) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
      size_t j = i;
      while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
      if (j > i) args->emplace_back(line.substr(i, j - i));
      i = j;
    }
    *length = nl + 1;
    return ParseResult::kMessage;
  }
  size_t at = 1;
  int64_t count;
  if (ParseResult r = Number(in, &at, &count); r != ParseResult::kMessage) return r;
  if (count < 0 || count > 1 << 20) return ParseResult::kInvalid;
  for (int64_t i = 0; i < count; ++i) {
    if (at >= in.size()) return ParseResult::kNeedMore;
    if (in[at] != '$') return ParseResult::kInvalid;
    ++at;
    int64_t n;
    if (ParseResult r = Number(in, &at, &n); r != ParseResult::kMessage) return r;
    if (n < 0 || static_cast<uint64_t>(n) > kMaxMessage) return ParseResult::kInvalid;
    if (in.size() - at < static_cast<size_t>(n) + 2) return ParseResult::kNeedMore;
    if (in.substr(at + n, 2) != "\r\n") return ParseResult::kInvalid;
    // Only the command and its first argument are ever matched.
    if (i < 2) args->emplace_back(in.substr(at, n));
    at += n + 2;
  }
  *length = at;
  return ParseResult::kMessage;
}

ParseResult ParsePostgresMessage(std::string_view in, bool startup, size_t* length,
                                 char* type, uint32_t* code, std::string* query) {
  query->clear();
  *code = 0;
  *type = 0;
  const size_t head = startup ? 4 : 5;
  if (in.size() < head) return ParseResult::kNeedMore;
  const uint32_t len = GetU32(in, startup ? 0 : 1);
  if (len < 4 || len > kMaxMessage) return ParseResult::kInvalid;
  const size_t total = (startup ? 0 : 1) + static_cast<size_t>(len);
  if (startup && len < 8) return ParseResult::kInvalid;
  if (in.size() < total) return ParseResult::kNeedMore;
  *length = total;
  if (startup) {
    *code = GetU32(in, 4);
    return ParseResult::kMessage;
  }
  *type = in[0];
  std::string_view body = in.substr(5, total - 5);
  if (*type == 'P') {  // statement name, then the query
    size_t nul = body.find('\0');
    if (nul == std::string_view::npos) return ParseResult::kInvalid;
    body.remove_prefix(nul + 1);
  }
  if (*type == 'Q' || *type == 'P') {
    size_t nul = body.find('\0');
    if (nul == std::string_view::npos) return ParseResult::kInvalid;
    query->assign(body.substr(0, nul));
  }
  return ParseResult::kMessage;
}

// ------------------------------------------------------------------ filter ---

ProtocolFilter::ProtocolFilter(std::shared_ptr<const ProtocolFaults> faults,
                               uint64_t conn_serial)
    : faults_(std::move(faults)) {
  uint64_t seed = faults_->has_seed ? faults_->seed : std::random_device{}();
  rng_ = seed ^ (conn_serial * 0x9e3779b97f4a7c15ull);
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = &parts_;
}

ProtocolFilter::~ProtocolFilter() = default;

bool ProtocolFilter::Fire(uint32_t ppm) {
  if (ppm >= 1'000'000) return true;
  return SplitMix(&rng_) % 1'000'000 < ppm;
}

// A request passed on `ns` later: the action that precedes its forward.
ProtocolFilter::Action ProtocolFilter::Delay(int64_t ns, std::string what) {
  Action a;
  a.kind = Action::kDelay;
  a.delay_ns = ns;
  a.what = std::move(what);
  return a;
}

void ProtocolFilter::Forward(size_t n, std::vector<Action>* out) {
  if (n == 0) return;
  if (!out->empty() && out->back().kind == Action::kForward) {
    out->back().bytes.append(buf_, 0, n);
  } else {
    Action a;
    a.bytes = buf_.substr(0, n);
    out->push_back(std::move(a));
  }
  buf_.erase(0, n);
}

void ProtocolFilter::PassThrough(std::vector<Action>* out) {
  protocol_ = Protocol::kPassThrough;
  Forward(buf_.size(), out);
}

void ProtocolFilter::Feed(std::string_view bytes, std::vector<Action>* out) {
  if (dropped_) return;
  buf_.append(bytes);
  if (protocol_ == Protocol::kUnknown && !buf_.empty()) {
    const unsigned char first = static_cast<unsigned char>(buf_[0]);
    if (first == '*' && !faults_->redis.empty()) {
      protocol_ = Protocol::kRedis;
    } else if (first == 0 && !faults_->postgres.empty()) {
      protocol_ = Protocol::kPostgres;
    } else if (absl::ascii_isupper(first) && !faults_->http.empty()) {
      protocol_ = Protocol::kHttp;
    } else if (absl::ascii_isalpha(first) && !faults_->redis.empty()) {
      protocol_ = Protocol::kRedis;  // an inline command
    } else {
      protocol_ = Protocol::kPassThrough;
    }
  }
  switch (protocol_) {
    case Protocol::kHttp: return FeedHttp(out);
    case Protocol::kRedis: return FeedRedis(out);
    case Protocol::kPostgres: return FeedPostgres(out);
    default: return PassThrough(out);
  }
}

void ProtocolFilter::FeedHttp(std::vector<Action>* out) {
  for (int round = 0; round < 4096 && parsed_ < buf_.size() && !dropped_; ++round) {
    const size_t n = http_parser_execute(&parser_, &RequestHeadSettings(),
                                         buf_.data() + parsed_, buf_.size() - parsed_);
    const http_errno err = HTTP_PARSER_ERRNO(&parser_);
    parsed_ += n;
    if ((err != HPE_OK && err != HPE_PAUSED) || parser_.upgrade) {
      parsed_ = 0;
      return PassThrough(out);
    }
    if (!decided_ && parts_.head_complete) {
      decided_ = true;
      http_fault_ = nullptr;
      const std::string method =
          http_method_str(static_cast<http_method>(parser_.method));
      const std::string path = TargetPath(parts_.url);
      http_what_ = absl::StrCat(method, " ", path);
      for (const ProtocolFaults::Http& f : faults_->http) {
        if ((f.method.empty() || f.method == method) && Glob(f.path, path) &&
            Fire(f.probability_ppm)) {
          http_fault_ = &f;
          break;
        }
      }
      if (http_fault_ != nullptr && http_fault_->delay_ns > 0) {
        // Passed on, later: the request is forwarded as any other.
        out->push_back(Delay(http_fault_->delay_ns, http_what_));
        http_fault_ = nullptr;
      }
      if (http_fault_ != nullptr) {
        // Answered at once (a client waiting on "Expect: 100-continue"
        // gets it too); the body that follows is read and discarded.
        Action a;
        a.what = http_what_;
        if (http_fault_->drop) {
          a.kind = Action::kDrop;
          dropped_ = true;
          out->push_back(std::move(a));
          buf_.clear();
          return;
        }
        a.kind = Action::kReply;
        a.status = http_fault_->status;
        const bool keep_alive = http_should_keep_alive(&parser_) != 0;
        a.bytes = HttpFaultResponse(http_fault_->status, http_fault_->body,
                                    parser_.method == HTTP_HEAD, keep_alive);
        // A request that ends its connection: the answer ends it too, as
        // the server would (a client may read the answer up to the end).
        a.close = !keep_alive;
        out->push_back(std::move(a));
        if (!keep_alive) {
          dropped_ = true;  // nothing after it is read
          buf_.clear();
          return;
        }
      }
    }
    if (decided_ && http_fault_ == nullptr) {
      Forward(parsed_, out);
      parsed_ = 0;
    } else if (decided_) {
      buf_.erase(0, parsed_);
      parsed_ = 0;
    } else if (parsed_ > kMaxHttpHead) {
      parsed_ = 0;
      return PassThrough(out);  // not a head we can read: leave it alone
    }
    if (parts_.message_complete) {
      parts_.Clear();
      decided_ = false;
      http_fault_ = nullptr;
      http_parser_pause(&parser_, 0);
    } else if (n == 0) {
      break;
    }
  }
}

void ProtocolFilter::FeedRedis(std::vector<Action>* out) {
  std::vector<std::string> args;
  for (int round = 0; round < 4096 && !buf_.empty() && !dropped_; ++round) {
    size_t length = 0;
    ParseResult r = ParseRedisCommand(buf_, &length, &args);
    if (r == ParseResult::kNeedMore) return;
    if (r == ParseResult::kInvalid) return PassThrough(out);
    const ProtocolFaults::Redis* hit = nullptr;
    std::string command = args.empty() ? "" : absl::AsciiStrToUpper(args[0]);
    if (!command.empty()) {
      for (const ProtocolFaults::Redis& f : faults_->redis) {
        const bool cmd = f.commands.empty() ||
                         std::find(f.commands.begin(), f.commands.end(), command) !=
                             f.commands.end();
        const bool key = f.key.empty() || (args.size() > 1 && Glob(f.key, args[1]));
        if (cmd && key && Fire(f.probability_ppm)) {
          hit = &f;
          break;
        }
      }
    }
    if (hit != nullptr && hit->delay_ns > 0) {
      // Passed on, later: the command and what follows it wait.
      out->push_back(
          Delay(hit->delay_ns, args.size() > 1 ? absl::StrCat(command, " ", args[1]) : command));
      hit = nullptr;
    }
    if (hit == nullptr) {
      Forward(length, out);
      continue;
    }
    buf_.erase(0, length);
    Action a;
    a.what = args.size() > 1 ? absl::StrCat(command, " ", args[1]) : command;
    if (hit->drop) {
      a.kind = Action::kDrop;
      dropped_ = true;
      buf_.clear();
    } else {
      a.kind = Action::kReply;
      a.bytes = RedisErrorReply(hit->error);
    }
    out->push_back(std::move(a));
  }
}

void ProtocolFilter::FeedPostgres(std::vector<Action>* out) {
  std::string query;
  for (int round = 0; round < 4096 && !buf_.empty() && !dropped_; ++round) {
    size_t length = 0;
    char type = 0;
    uint32_t code = 0;
    ParseResult r = ParsePostgresMessage(buf_, pg_startup_, &length, &type, &code, &query);
    if (r == ParseResult::kNeedMore) return;
    if (r == ParseResult::kInvalid) return PassThrough(out);
    if (pg_startup_) {
      Forward(length, out);
      // An SSLRequest or GSSENCRequest is followed by the startup packet
      // (or by TLS, which no longer parses: passed through); a cancel
      // request is all its connection says.
      if (code == kPgCancelRequest) return PassThrough(out);
      if (code != kPgSslRequest && code != kPgGssRequest) pg_startup_ = false;
      continue;
    }
    if (pg_skip_to_sync_) {
      // After a faulted Parse the server would skip to the Sync: so do we,
      // and answer the Sync.
      buf_.erase(0, length);
      if (type == 'S') {
        pg_skip_to_sync_ = false;
        Action a;
        a.kind = Action::kReply;
        a.bytes = pg_reply_ + PostgresReadyForQuery();
        a.what = "Sync";
        a.fault = false;
        out->push_back(std::move(a));
      }
      continue;
    }
    const ProtocolFaults::Postgres* hit = nullptr;
    if (type == 'Q' || type == 'P') {
      std::string text(absl::StripAsciiWhitespace(query));
      for (const ProtocolFaults::Postgres& f : faults_->postgres) {
        if (Glob(f.query, text, FNM_CASEFOLD) && Fire(f.probability_ppm)) {
          hit = &f;
          break;
        }
      }
      query = std::move(text);
    }
    if (hit != nullptr && hit->delay_ns > 0) {
      // Passed on, later: a Parse delays the Bind, Execute and Sync behind it.
      out->push_back(Delay(hit->delay_ns, query));
      hit = nullptr;
    }
    if (hit == nullptr) {
      Forward(length, out);
      continue;
    }
    buf_.erase(0, length);
    if (hit->drop) {
      Action a;
      a.kind = Action::kDrop;
      a.what = query;
      dropped_ = true;
      buf_.clear();
      out->push_back(std::move(a));
      return;
    }
    if (type == 'Q') {
      Action a;
      a.kind = Action::kReply;
      a.what = query;
      a.bytes = PostgresErrorResponse(hit->sqlstate, hit->message) + PostgresReadyForQuery();
      out->push_back(std::move(a));
    } else {
      // The ErrorResponse goes out at once; ReadyForQuery at the Sync.
      Action a;
      a.kind = Action::kReply;
      a.what = query;
      a.bytes = PostgresErrorResponse(hit->sqlstate, hit->message);
      out->push_back(std::move(a));
      pg_reply_.clear();
      pg_skip_to_sync_ = true;
    }
  }
}

}  // namespace fault::stream
