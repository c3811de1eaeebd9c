// The stream engine's HTTP/1.1 forward proxy (`fault run`'s --proxy-address):
// absolute-form requests (`curl -x`), origin-form requests with a Host
// header, and CONNECT tunnels (`curl -p -x`, every https:// URL).
//
// Requests and responses are streamed, never buffered whole: the head of a
// request is parsed (http-parser) and rewritten to origin form, its body
// and the response are passed on as raw bytes through the connection's two
// directions, so every stream effect (latency, jitter, rate, loss stalls,
// black holes) applies to them as to any relayed connection. The parser
// only finds where each message ends, so that the upstream connection can
// carry the next request (keep-alive) or go back to a pool for the next
// client. An HTTP error fault answers without contacting the upstream.
//
// With gRPC plugins that handle HTTP (Options::plugins), a request they
// see is the exception: its body is read whole, the request goes through
// each plugin's ProcessHttpRequest (which may change it, or answer it
// without the upstream), and its response is read whole and goes through
// each ProcessHttpResponse before the client gets it. The connection waits
// meanwhile; the loop does not.
#include <arpa/inet.h>
#include <http_parser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "supervisor/stream/http_head.h"
#include "supervisor/stream/stream_loop.h"

namespace fault::stream {
namespace {

constexpr size_t kMaxHead = 64 * 1024;
constexpr size_t kReadChunkHttp = 64 * 1024;  // the loop's scratch buffer
constexpr size_t kPoolPerKey = 64;
constexpr int64_t kPoolIdleNs = 30'000'000'000;
constexpr size_t kMaxPluginBody = 64 << 20;

const char* Reason(int status) { return HttpReason(status); }

}  // namespace

// A request the upstream has not finished answering.
struct InFlight {
  bool head = false;        // a HEAD request: the response has no body
  bool keep_alive = true;   // the request lets the connection go on
  bool plugins = false;     // its response goes through the plugins
};

struct HttpState {
  http_parser req;
  http_parser res;
  // Client bytes not yet handled.
  std::string in;
  size_t scanned = 0;  // how much of `in` was searched for the head's end
  enum Phase : uint8_t {
    kHead,     // reading a request head
    kBody,     // passing a request body on to the upstream
    kDiscard,  // dropping a request body (answered by the proxy)
    kTunnel,   // CONNECT established: raw bytes
  } phase = kHead;
  // The request being parsed.
  RequestHeadParts parts;
  // Its route, once the head is complete.
  bool routed = false;
  bool connect = false;  // a CONNECT request
  std::string host;
  uint16_t port = 0;
  std::string key;       // "host:port"
  std::string out_head;  // the rewritten head, not yet sent
  bool keep_alive = true;
  // The upstream connection in use (its key), and what it still owes.
  std::string up_key;
  bool up_reusable = true;
  std::deque<InFlight> inflight;
  bool response_informational = false;
  bool response_upgrade = false;
  uint64_t resolve_serial = 0;
  bool resolving = false;
  bool always = false;  // the always-rules apply to this request's target
  bool pending_route = false;  // routed once, waits for the upstream's answers
  // The proxy answers the routed request itself (0: no).
  int answer_status = 0;
  std::string answer_text;
  bool answer_close = false;
  // The routed request waits for its upstream (a lookup, a connect).
  bool awaiting_upstream = false;
  // The upstream in use still expects body bytes of the last request.
  bool up_body_pending = false;
  // An upstream response has begun and not ended.
  bool response_started = false;

  // After the last response: close the client connection.
  bool close_after = false;
  bool closing = false;

  // Plugins. The request being read goes through them (its body is
  // collected first), and so will its response.
  bool plug_request = false;
  bool plug_collect = false;
  std::string plug_body;
  grpc_module::PluginHttpRequest plug_req;
  std::string plug_host;        // the Host header the upstream gets
  bool plug_override = false;   // the routed head is plug_head
  std::string plug_head;
  size_t plug_next = 0;         // the next plugin of the chain
  uint64_t plug_serial = 0;     // of the call under way
  bool plug_waiting = false;    // the request is with the plugins
  // The response being collected, then with the plugins (a chain of its
  // own: the next request's may run meanwhile).
  grpc_module::PluginHttpResponse plug_res;
  size_t res_next = 0;
  uint64_t res_serial = 0;
  bool res_value_last = false;
  bool plug_res_waiting = false;
  bool plug_res_head = false;   // it answers a HEAD request
  // The proxy's own answer, whole (a plugin's ABORT).
  std::string answer_raw;
};

void HttpStateDeleter::operator()(HttpState* h) const { delete h; }

namespace {


int OnResponseHeadersComplete(http_parser* p) {
  auto* h = static_cast<HttpState*>(p->data);
  h->response_informational = p->status_code >= 100 && p->status_code < 200 &&
                              p->status_code != 101;
  h->response_upgrade = p->status_code == 101;
  if (h->response_upgrade) return 0;
  // No body, whatever Content-Length says: 1xx, 204, 304 (RFC 9110 6.4.1),
  // and any response to HEAD.
  if (h->response_informational || p->status_code == 204 || p->status_code == 304) return 1;
  return !h->inflight.empty() && h->inflight.front().head ? 1 : 0;
}

int OnResponseBegin(http_parser* p) {
  static_cast<HttpState*>(p->data)->response_started = true;
  return 0;
}

int OnResponseComplete(http_parser* p) {
  static_cast<HttpState*>(p->data)->response_started = false;
  http_parser_pause(p, 1);
  return 0;
}

const http_parser_settings& ResponseSettings() {
  static const http_parser_settings s = [] {
    http_parser_settings x;
    http_parser_settings_init(&x);
    x.on_message_begin = OnResponseBegin;
    x.on_headers_complete = OnResponseHeadersComplete;
    x.on_message_complete = OnResponseComplete;
    return x;
  }();
  return s;
}

// The same, collecting the response for the plugins (HttpState::plug_res).
const http_parser_settings& PluginResponseSettings() {
  static const http_parser_settings s = [] {
    http_parser_settings x = ResponseSettings();
    x.on_message_begin = [](http_parser* p) {
      auto* h = static_cast<HttpState*>(p->data);
      h->plug_res = grpc_module::PluginHttpResponse();
      h->res_value_last = false;
      return OnResponseBegin(p);
    };
    x.on_header_field = [](http_parser* p, const char* at, size_t n) {
      auto* h = static_cast<HttpState*>(p->data);
      if (h->plug_res.headers.empty() || h->res_value_last) h->plug_res.headers.emplace_back();
      h->plug_res.headers.back().name.append(at, n);
      h->res_value_last = false;
      return 0;
    };
    x.on_header_value = [](http_parser* p, const char* at, size_t n) {
      auto* h = static_cast<HttpState*>(p->data);
      if (h->plug_res.headers.empty()) h->plug_res.headers.emplace_back();
      h->plug_res.headers.back().value.append(at, n);
      h->res_value_last = true;
      return 0;
    };
    x.on_headers_complete = [](http_parser* p) {
      static_cast<HttpState*>(p->data)->plug_res.status = p->status_code;
      return OnResponseHeadersComplete(p);
    };
    x.on_body = [](http_parser* p, const char* at, size_t n) {
      static_cast<HttpState*>(p->data)->plug_res.body.append(at, n);
      return 0;
    };
    return x;
  }();
  return s;
}

// A plugin's request or response must not smuggle a second message.
bool Clean(const std::string& s) {
  return s.find_first_of("\r\n") == std::string::npos;
}

bool Token(const std::string& s) {
  if (s.empty()) return false;
  for (char ch : s)
    if (!absl::ascii_isalnum(static_cast<unsigned char>(ch)) &&
        std::string_view("!#$%&'*+-.^_`|~").find(ch) == std::string_view::npos)
      return false;
  return true;
}

// Headers the proxy sets itself on what it rebuilds.
bool OwnHeader(const std::string& name) {
  const std::string l = absl::AsciiStrToLower(name);
  return l == "connection" || l == "keep-alive" || l == "proxy-connection" ||
         l == "proxy-authorization" || l == "proxy-authenticate" || l == "te" ||
         l == "trailer" || l == "transfer-encoding" || l == "upgrade" ||
         l == "content-length" || l == "host" || l == "expect";
}

// The request a plugin let through, as the upstream gets it (HTTP/1.1,
// body whole with its Content-Length).
std::string PluginRequestText(const grpc_module::PluginHttpRequest& r, const std::string& host) {
  std::string out = absl::StrCat(r.method, " ", r.path, " HTTP/1.1\r\nHost: ", host, "\r\n");
  for (const grpc_module::PluginHeader& h : r.headers) {
    if (OwnHeader(h.name) || !Token(h.name) || !Clean(h.value)) continue;
    absl::StrAppend(&out, h.name, ": ", h.value, "\r\n");
  }
  if (!r.body.empty() || r.method == "POST" || r.method == "PUT" || r.method == "PATCH")
    absl::StrAppend(&out, "Content-Length: ", r.body.size(), "\r\n");
  absl::StrAppend(&out, "\r\n", r.body);
  return out;
}

// A response from a plugin (or rebuilt after one), as the client gets it.
std::string PluginResponseText(const grpc_module::PluginHttpResponse& r, bool head, bool close) {
  std::string out = absl::StrCat("HTTP/1.1 ", r.status, " ", Reason(static_cast<int>(r.status)),
                                 "\r\n");
  const bool bodiless = r.status < 200 || r.status == 204 || r.status == 304;
  for (const grpc_module::PluginHeader& h : r.headers) {
    if (!Token(h.name) || !Clean(h.value)) continue;
    // A HEAD response keeps the length it announces; others get the body's.
    if (OwnHeader(h.name) && !(head && absl::AsciiStrToLower(h.name) == "content-length"))
      continue;
    absl::StrAppend(&out, h.name, ": ", h.value, "\r\n");
  }
  if (!head && !bodiless) absl::StrAppend(&out, "Content-Length: ", r.body.size(), "\r\n");
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  if (!head && !bodiless) out += r.body;
  return out;
}

}  // namespace

void StreamEngine::Loop::HttpStart(Conn* c) {
  c->http.reset(new HttpState());
  HttpState* h = c->http.get();
  http_parser_init(&h->req, HTTP_REQUEST);
  http_parser_init(&h->res, HTTP_RESPONSE);
  h->req.data = &h->parts;
  h->res.data = h;
  eng::CopyString(c->target, "http-proxy", sizeof(c->target));
}

void StreamEngine::Loop::HttpRead(Conn* c, const char* buf, size_t n, int64_t now) {
  HttpState* h = c->http.get();
  if (h->phase == HttpState::kTunnel) {
    Relay(c, 0, buf, n, now);
    return;
  }
  if (h->closing) return;  // answered and closing: what follows is dropped
  h->in.append(buf, n);
  HttpProcess(c, now);
}

// Handles what the client sent, request by request, until it has to wait
// (an answer from another upstream, a lookup) or has nothing left.
void StreamEngine::Loop::HttpProcess(Conn* c, int64_t now) {
  HttpState* h = c->http.get();
  for (int round = 0; c->state != Conn::kDead; ++round) {
    if (round == 256) {
      // Many pipelined requests: the other connections get their turn
      // first (HttpService comes back to the rest).
      Schedule(c, NowNs());
      return;
    }
    if (c->http_blocked || h->closing) return;
    if (h->phase == HttpState::kTunnel) {
      std::string rest = std::move(h->in);
      h->in.clear();
      if (!rest.empty()) Relay(c, 0, rest.data(), rest.size(), now);
      return;
    }
    if (h->phase == HttpState::kHead) {
      if (h->in.empty()) return;
      size_t end = HeadEnd(h->in, h->scanned > 2 ? h->scanned - 2 : 0);
      if (end == std::string::npos) {
        h->scanned = h->in.size();
        if (h->in.size() > kMaxHead) {
          HttpRespond(c, 431, Reason(431), "request head larger than 64 KiB\n", true, now);
        }
        return;
      }
      h->scanned = 0;
      h->parts.Clear();
      h->routed = false;
      size_t used = http_parser_execute(&h->req, &RequestHeadSettings(), h->in.data(), end);
      const http_errno err = HTTP_PARSER_ERRNO(&h->req);
      if ((err != HPE_OK && err != HPE_PAUSED) || !h->parts.head_complete || used != end) {
        HttpRespond(c, 400, Reason(400),
                    absl::StrCat("malformed request: ", http_errno_description(err), "\n"),
                    true, now);
        return;
      }
      if (err == HPE_PAUSED) http_parser_pause(&h->req, 0);
      h->in.erase(0, end);
      http_requests_.fetch_add(1, std::memory_order_relaxed);
      h->phase = h->parts.message_complete ? HttpState::kHead : HttpState::kBody;
      h->keep_alive = http_should_keep_alive(&h->req) != 0;
      h->plug_request = h->plug_collect = h->plug_override = false;
      if (HttpWantsPlugins(c)) {
        // The plugins see the request whole: its body first.
        h->plug_request = h->plug_collect = true;
        h->plug_body.clear();
        if (h->phase == HttpState::kBody) {
          h->parts.body = &h->plug_body;
          // A client that waits for 100 Continue before its body gets it
          // from the proxy: the plugins need the body first.
          if (h->inflight.empty() && !h->plug_res_waiting)
            for (const auto& [name, value] : h->parts.headers)
              if (absl::AsciiStrToLower(name) == "expect" &&
                  absl::AsciiStrToLower(value) == "100-continue") {
                static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
                Ingest(c, 1, kContinue, sizeof(kContinue) - 1, now);
                Schedule(c, now);
              }
          continue;
        }
        h->plug_collect = false;
        h->plug_next = 0;
        h->plug_waiting = true;
        c->http_blocked = true;
        HttpPluginRequestNext(c);
        return;
      }
      if (!HttpRoute(c, now)) return;  // waits, or answered and closing
      continue;
    }
    // kBody / kDiscard: up to the end of the message.
    if (h->in.empty()) return;
    h->parts.message_complete = false;
    size_t used = http_parser_execute(&h->req, &RequestHeadSettings(), h->in.data(), h->in.size());
    const http_errno err = HTTP_PARSER_ERRNO(&h->req);
    if (err != HPE_OK && err != HPE_PAUSED) {
      // A broken body: the upstream has part of it; nothing sensible
      // follows on this connection.
      Fail(c, ECONNRESET);
      return;
    }
    if (err == HPE_PAUSED) http_parser_pause(&h->req, 0);
    if (h->phase == HttpState::kBody && h->plug_collect) {
      // The body arrived decoded in plug_body (RequestHeadParts::body).
      if (h->plug_body.size() > kMaxPluginBody) {
        h->parts.body = nullptr;
        h->plug_collect = false;
        h->phase = HttpState::kDiscard;
        HttpRespond(c, 413, "Content Too Large",
                    "a request that plugins see is read whole, up to 64 MiB\n", true, now);
        return;
      }
    } else if (h->phase == HttpState::kBody) {
      Ingest(c, 0, h->in.data(), used, now);
    }
    h->in.erase(0, used);
    if (h->parts.message_complete) {
      if (h->phase == HttpState::kBody) h->up_body_pending = false;
      h->phase = HttpState::kHead;
      if (h->plug_collect) {
        h->plug_collect = false;
        h->parts.body = nullptr;
        h->plug_req.body = std::move(h->plug_body);
        h->plug_body.clear();
        h->plug_next = 0;
        h->plug_waiting = true;
        c->http_blocked = true;
        HttpPluginRequestNext(c);
        return;
      }
    }
  }
}

std::vector<RuleRef> StreamEngine::Loop::PreResolveRules(const std::string& host,
                                                         bool always) {
  std::vector<RuleRef> out;
  eng::Index idx;
  if (!eng::BuildIndex(t_, &idx)) return out;
  auto add = [&](int i) {
    RuleRef ref;
    if (!eng::ReadRule(t_, idx.seq, i, &ref.r)) return;
    ref.index = i;
    ref.seq = idx.seq;
    ref.generation = idx.generation;
    out.push_back(ref);
  };
  uint64_t named = 0;
  for (const std::string& name : o_.always_rules) {
    int i = eng::FindRuleByName(t_, idx, name.c_str());
    if (i < 0) continue;
    named |= uint64_t{1} << i;
    if (always) add(i);
  }
  if (!o_.match_targets) return out;
  // Rules of policy files that name this host (hostname targets).
  eng::Endpoint ep;
  ep.protocol = FAULT_PROTO_TCP;
  ep.hostname = host.c_str();
  for (int i = 0; i < static_cast<int>(idx.n_rules); ++i) {
    if ((named >> i) & 1 || !((idx.active >> i) & 1) || !((idx.hostname >> i) & 1)) continue;
    int32_t prio = 0;
    if (eng::RuleTargetsMatch(t_, idx.seq, i, ep, &prio) == eng::TargetMatch::kYes) add(i);
  }
  return out;
}

// Sends the routed request's head on the upstream in use; its body (if
// any) follows as HttpProcess reads it.
void StreamEngine::Loop::SendHead(Conn* c, int64_t now) {
  HttpState* h = c->http.get();
  h->awaiting_upstream = false;
  Ingest(c, 0, h->out_head.data(), h->out_head.size(), now);
  h->out_head.clear();
  h->up_body_pending = h->phase == HttpState::kBody;
  const bool head = h->plug_request ? h->plug_req.method == "HEAD" : h->req.method == HTTP_HEAD;
  h->inflight.push_back(InFlight{head, h->keep_alive, h->plug_request});
}

// Routes the request whose head was just parsed: answers it (an HTTP error
// fault, a bad request), sends it on the upstream connection in use, or
// picks another one. False: the connection waits or is closing.
bool StreamEngine::Loop::HttpRoute(Conn* c, int64_t now) {
  HttpState* h = c->http.get();
  if (!h->routed) {
    h->routed = true;
    h->answer_status = 0;
    RequestRoute r = RouteRequest(h->req.method, h->req.http_major, h->req.http_minor, h->parts.url,
                                  h->parts.headers);
    h->connect = r.connect;
    if (r.status != 0) {
      h->answer_status = r.status;
      h->answer_text = r.message + "\n";
      // Nothing sensible follows a request that cannot be routed, except
      // after a well-formed one we refuse (501) with no body to skip.
      h->answer_close = r.status != 501 || !h->keep_alive || h->phase == HttpState::kBody;
    } else {
      h->host = std::move(r.host);
      h->port = r.port;
      h->out_head = std::move(r.out_head);
      if (h->plug_override) {
        h->out_head = std::move(h->plug_head);
        h->plug_head.clear();
        h->plug_override = false;
      }
      h->key = KeyOf(h->host, h->port);
      h->always = !o_.upstream_filter || o_.upstream_filter(h->host, h->port);
      // An HTTP error fault answers without the upstream. Decided once per
      // request, here, so that waiting for earlier answers draws nothing.
      for (const RuleRef& ref : PreResolveRules(h->host, h->always)) {
        const fault_rule& rule = ref.r;
        if (rule.http_status == 0) continue;
        double factor = eng::ScheduleFactor(rule.schedule, now - t_->start_ns);
        eng::HttpErrorDecision dec;
        eng::DecideHttpError(t_, rule, ref.index, now, factor, &dec);
        if (!dec.fire) continue;
        EmitEvent(ref.index, ref.generation, 0, FAULT_OP_SEND, FAULT_EFFECT_HTTP_ERROR,
                  dec.status, h->key.c_str());
        auto body = o_.http_bodies.find(rule.name);
        h->answer_status = static_cast<int>(dec.status);
        h->answer_text = body != o_.http_bodies.end()
                             ? body->second
                             : absl::StrCat(dec.status, " ", Reason(h->answer_status),
                                            " (fault: ", rule.name, ")\n");
        h->answer_close = !h->keep_alive || h->connect;
        break;
      }
    }
  }

  // Answers go back in request order: wait for what the upstream still
  // owes, unless this request goes to the same upstream (pipelining).
  // A response the plugins see is read whole before the next request goes
  // on its connection: no pipelining next to one.
  const bool same = h->answer_status == 0 && c->fd[1] >= 0 && h->up_key == h->key &&
                    h->up_reusable && !h->connect && !h->up_body_pending &&
                    (h->inflight.empty() || (!h->plug_request && !h->inflight.back().plugins));
  if ((!h->inflight.empty() && !same) || h->plug_res_waiting) {
    h->pending_route = true;
    c->http_blocked = true;
    return false;
  }

  // The proxy's own answer (a bad request, an HTTP error fault).
  if (h->answer_status != 0) {
    if (h->phase == HttpState::kBody) h->phase = HttpState::kDiscard;
    const bool close = h->answer_close;
    if (!h->answer_raw.empty())
      HttpRespondRaw(c, std::exchange(h->answer_raw, std::string()), close, now);
    else
      HttpRespond(c, h->answer_status, Reason(h->answer_status), h->answer_text, close, now);
    h->answer_status = 0;
    return !close;
  }

  if (same) {
    upstream_reused_.fetch_add(1, std::memory_order_relaxed);
    SendHead(c, now);
    return true;
  }

  // Another upstream: let the one in use go (back to the pool).
  HttpDetachUpstream(c, h->up_reusable);
  eng::CopyString(c->target, h->key.c_str(), sizeof(c->target));
  if (!h->connect) {
    int fd = PoolTake(h->key);
    if (fd >= 0) {
      upstream_reused_.fetch_add(1, std::memory_order_relaxed);
      sockaddr_storage ss;
      socklen_t len = sizeof(ss);
      eng::Endpoint far;
      if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
        eng::SetEndpointAddress(&far, &ss, len);
      far.protocol = FAULT_PROTO_TCP;
      SelectRules(c, far, h->always);
      c->fd[1] = fd;
      c->state = Conn::kOpen;
      h->up_key = h->key;
      h->up_reusable = true;
      http_parser_init(&h->res, HTTP_RESPONSE);
      h->res.data = h;
      Register(fd, &c->h[1], EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
      SendHead(c, now);
      return true;
    }
  }
  // A new connection: DNS faults first, then the lookup.
  sockaddr_storage literal;
  const bool needs_lookup = !Resolver::Literal(h->host, h->port, &literal);
  for (const RuleRef& ref : needs_lookup ? PreResolveRules(h->host, h->always)
                                         : std::vector<RuleRef>()) {
    const fault_rule& r = ref.r;
    if (r.dns_delay_ns == 0 && r.dns_timeout_ppm == 0 && r.dns_nxdomain_ppm == 0) continue;
    double factor = eng::ScheduleFactor(r.schedule, now - t_->start_ns);
    eng::DnsDecision dec;
    eng::DecideDns(t_, r, ref.index, factor, &dec);
    if (!dec.fired) continue;
    EmitEvent(ref.index, ref.generation, 0, FAULT_OP_DNS, dec.effect,
              dec.eai != 0 ? dec.eai : dec.delay_ns, h->host.c_str());
    c->handshake_until = std::max(c->handshake_until, now + dec.delay_ns);
    if (dec.eai != 0) {
      if (h->phase == HttpState::kBody) h->phase = HttpState::kDiscard;
      HttpRespond(c, 502, Reason(502),
                  absl::StrCat("cannot resolve ", h->host, ": ", gai_strerror(dec.eai),
                               " (fault: ", r.name, ")\n"),
                  !h->keep_alive || h->connect, now);
      return h->keep_alive && !h->connect;
    }
  }
  h->up_key = h->key;
  h->up_reusable = !h->connect;
  h->awaiting_upstream = true;
  if (!needs_lookup) {
    HttpResolved(c->id, h->resolve_serial, 0, {literal});
    return !c->http_blocked && c->state != Conn::kDead;
  }
  h->resolving = true;
  c->http_blocked = true;
  resolver_->Lookup(c->id, ++h->resolve_serial, h->host, h->port);
  return false;
}

void StreamEngine::Loop::OnResolver() {
  if (resolver_ == nullptr) return;
  for (Resolver::Result& r : resolver_->Take())
    HttpResolved(r.conn, r.serial, r.err, std::move(r.addrs));
}

void StreamEngine::Loop::HttpResolved(uint64_t conn_id, uint64_t serial, int err,
                                      std::vector<sockaddr_storage> addrs) {
  auto it = conns_.find(conn_id);
  if (it == conns_.end()) return;
  Conn* c = it->second.get();
  HttpState* h = c->http.get();
  if (h == nullptr || serial != h->resolve_serial || c->state == Conn::kDead) return;
  h->resolving = false;
  const bool was_blocked = c->http_blocked;
  if (err != 0 || addrs.empty()) h->awaiting_upstream = false;
  const int64_t now = NowNs();
  if (err != 0 || addrs.empty()) {
    c->http_blocked = false;
    if (h->phase == HttpState::kBody) h->phase = HttpState::kDiscard;
    HttpRespond(c, 502, Reason(502),
                absl::StrCat("cannot resolve ", h->host, ": ", gai_strerror(err), "\n"),
                !h->keep_alive || h->connect, now);
    if (was_blocked && h->keep_alive && !h->connect) HttpUnblock(c);
    return;
  }
  eng::Endpoint far;
  eng::SetEndpointAddress(&far, &addrs[0], sizeof(addrs[0]));
  far.protocol = FAULT_PROTO_TCP;
  SelectRules(c, far, h->always);
  int cerr = 0;
  if (!DecideConnect(c, &cerr)) {
    h->awaiting_upstream = false;
    c->http_blocked = false;
    if (h->phase == HttpState::kBody) h->phase = HttpState::kDiscard;
    HttpRespond(c, 502, Reason(502),
                absl::StrCat("cannot connect to ", h->key, ": ", strerror(cerr), " (fault)\n"),
                !h->keep_alive || h->connect, now);
    if (was_blocked && h->keep_alive && !h->connect) HttpUnblock(c);
    return;
  }
  c->far_addrs = std::move(addrs);
  c->far_next = 0;
  if (int e = ConnectAny(c); e != 0) {
    HttpUpstreamFailed(c, e);  // answers the request
    return;
  }
  if (h->connect) {
    // Tunnel: wait for the connection before saying 200.
    c->http_blocked = true;
    return;
  }
  SendHead(c, now);
  if (was_blocked) HttpUnblock(c);
}

// The connection may go on with the client's requests: the one that
// waited is routed, what the client sent meanwhile is handled, and reading
// resumes.
void StreamEngine::Loop::HttpUnblock(Conn* c) {
  HttpState* h = c->http.get();
  const int64_t now = NowNs();
  c->http_blocked = false;
  c->dir[0].paused = false;
  c->dir[0].more = true;  // edge-triggered: read what waits
  if (h->pending_route) {
    h->pending_route = false;
    if (!HttpRoute(c, now)) {
      if (c->state != Conn::kDead) Schedule(c, now);
      return;
    }
  }
  if (c->state != Conn::kDead && !h->in.empty()) HttpProcess(c, now);
  if (c->state != Conn::kDead) Schedule(c, now);
}

void StreamEngine::Loop::HttpFarConnected(Conn* c) {
  HttpState* h = c->http.get();
  if (h == nullptr || !h->connect) return;
  // CONNECT: the tunnel is up. From here on the connection is a relay
  // with the target's rules.
  h->awaiting_upstream = false;
  static constexpr char kOk[] = "HTTP/1.1 200 Connection Established\r\n\r\n";
  Enqueue(c, 1, kOk, sizeof(kOk) - 1, NowNs());
  h->phase = HttpState::kTunnel;
  c->kind = Conn::kRelay;
  if (h->always) PlugTunnelStart(c);
  // Nothing to apply: pass the bytes on as they come.
  c->splice = c->rules.empty() && c->plug == nullptr;
  c->http_blocked = false;
  c->dir[0].paused = false;
  c->dir[0].more = true;
  std::string rest = std::move(h->in);
  h->in.clear();
  if (!rest.empty()) Relay(c, 0, rest.data(), rest.size(), NowNs());
  Schedule(c, NowNs());
}

void StreamEngine::Loop::HttpFromUpstream(Conn* c, const char* buf, size_t n, int64_t now) {
  HttpState* h = c->http.get();
  if (buf == nullptr) {
    // The upstream closed. A response that ends with the connection ends
    // here; so does the client's connection, which could not tell where
    // the response ended otherwise.
    h->up_reusable = false;
    if (h->plug_res_waiting) return;
    if (!h->inflight.empty()) {
      const bool collect = h->inflight.front().plugins && h->response_started;
      const bool head = h->inflight.front().head;
      http_parser_execute(&h->res, collect ? &PluginResponseSettings() : &ResponseSettings(),
                          nullptr, 0);
      h->inflight.clear();
      h->close_after = true;
      if (collect && !h->response_started) {
        // A response that ended with the connection: to the plugins.
        h->plug_res_waiting = true;
        h->plug_res_head = head;
        h->res_next = 0;
        HttpPluginResponseNext(c);
      }
    }
    return;
  }
  if (h->plug_res_waiting) {
    // Bytes after the response the plugins have: nobody asked for them.
    h->up_reusable = false;
    return;
  }
  size_t off = 0;
  // Each round ends a response or uses up the bytes.
  for (size_t round = 0; off < n && round <= n; ++round) {
    if (h->inflight.empty() || h->response_upgrade) {
      // Bytes nobody asked for (or after 101 Switching Protocols): pass
      // them on, but the upstream cannot be trusted with another request.
      h->up_reusable = h->response_upgrade ? false : h->up_reusable;
      if (!h->response_upgrade) h->up_reusable = false;
      Ingest(c, 1, buf + off, n - off, now);
      return;
    }
    const bool collect = h->inflight.front().plugins;
    size_t used = http_parser_execute(
        &h->res, collect ? &PluginResponseSettings() : &ResponseSettings(), buf + off, n - off);
    const http_errno err = HTTP_PARSER_ERRNO(&h->res);
    if (err != HPE_OK && err != HPE_PAUSED) {
      // Not HTTP: pass it on and close after.
      h->up_reusable = false;
      h->close_after = true;
      h->inflight.clear();
      if (collect) {
        HttpRespond(c, 502, Reason(502),
                    absl::StrCat("the upstream's response is not HTTP: ",
                                 http_errno_description(err), "\n"),
                    true, now);
        return;
      }
      Ingest(c, 1, buf + off, n - off, now);
      return;
    }
    if (!collect) Ingest(c, 1, buf + off, used, now);
    off += used;
    if (collect && h->plug_res.body.size() > kMaxPluginBody) {
      h->up_reusable = false;
      h->inflight.clear();
      HttpRespond(c, 502, Reason(502),
                  "a response that plugins see is read whole, up to 64 MiB; this one is "
                  "larger\n",
                  true, now);
      HttpDetachUpstream(c, false);  // the rest of it goes nowhere
      return;
    }
    if (err == HPE_PAUSED) {
      http_parser_pause(&h->res, 0);
      if (h->response_upgrade) {
        // The connection now speaks another protocol: a tunnel.
        h->inflight.clear();
        h->phase = HttpState::kTunnel;
        c->kind = Conn::kRelay;
        h->up_reusable = false;
        std::string rest = std::move(h->in);
        h->in.clear();
        if (!rest.empty()) Ingest(c, 0, rest.data(), rest.size(), now);
        if (off < n) Ingest(c, 1, buf + off, n - off, now);
        c->http_blocked = false;
        c->dir[0].more = true;
        Schedule(c, now);
        return;
      }
      if (h->response_informational) continue;  // 100 Continue: the answer follows
      h->up_reusable = h->up_reusable && http_should_keep_alive(&h->res) != 0;
      const bool keep = h->inflight.front().keep_alive;
      const bool head = h->inflight.front().head;
      h->inflight.pop_front();
      if (!keep) h->close_after = true;
      if (collect) {
        // The whole response: to the plugins, then to the client.
        if (off < n) h->up_reusable = false;
        h->plug_res_waiting = true;
        h->plug_res_head = head;
        h->res_next = 0;
        HttpPluginResponseNext(c);
        return;
      }
      if (h->inflight.empty()) {
        if (c->http_blocked && h->pending_route) {
          // A request waited for this answer: route it now (the rest of
          // `buf`, if any, was not asked for).
          HttpUnblock(c);
          return;
        }
      }
    }
  }
}

void StreamEngine::Loop::HttpUpstreamFailed(Conn* c, int err) {
  HttpState* h = c->http.get();
  if (h == nullptr) return Fail(c, err);
  const int64_t now = NowNs();
  const bool answered_part = h->response_started;
  const size_t owed = h->inflight.size();
  const std::string failed = h->up_key.empty() ? h->key : h->up_key;
  HttpDetachUpstream(c, /*reusable=*/false);
  if (h->connect || owed > 0 || c->http_blocked || h->awaiting_upstream) {
    h->awaiting_upstream = false;
    if (owed > 0 && (answered_part || owed > 1)) {
      // Half a response went out, or several requests lost their answers:
      // the client must see the break.
      h->close_after = true;
      h->closing = true;
      return;
    }
    if (h->phase == HttpState::kBody) h->phase = HttpState::kDiscard;
    HttpRespond(c, 502, Reason(502),
                absl::StrCat("cannot reach ", failed, ": ", strerror(err), "\n"),
                !h->keep_alive || h->connect, now);
    if (h->keep_alive && !h->connect && (c->http_blocked || h->pending_route)) HttpUnblock(c);
  }
}

void StreamEngine::Loop::HttpRespond(Conn* c, int status, const std::string& reason,
                                     const std::string& body, bool close, int64_t now) {
  HttpState* h = c->http.get();
  std::string text = absl::StrCat("HTTP/1.1 ", status, " ", reason,
                                  "\r\nContent-Type: text/plain\r\nContent-Length: ",
                                  body.size(), "\r\n", close ? "Connection: close\r\n" : "",
                                  "\r\n", h->req.method == HTTP_HEAD ? "" : body);
  // The client's direction of the link applies to the proxy's own
  // answers too.
  Ingest(c, 1, text.data(), text.size(), now);
  if (close) {
    h->close_after = true;
    h->closing = true;
  }
  Schedule(c, now);
}

void StreamEngine::Loop::HttpService(Conn* c) {
  HttpState* h = c->http.get();
  if (h == nullptr || c->state == Conn::kDead) return;
  Dir& down = c->dir[1];
  // Done once everything owed to the client is out.
  const bool client_done = c->dir[0].src_eof && h->inflight.empty() && !c->http_blocked &&
                           !h->resolving;
  if ((h->close_after || client_done) && down.q.empty() && h->inflight.empty() &&
      !h->resolving && !h->awaiting_upstream && !h->plug_waiting && !h->plug_res_waiting) {
    HttpDetachUpstream(c, h->up_reusable && !h->close_after);
    if (c->fd[0] >= 0) {
      shutdown(c->fd[0], SHUT_WR);
      // What the client sent and nobody read would turn the close into a
      // reset, which can cost it the answer: read it away first.
      for (int k = 0; k < 16 && recv(c->fd[0], scratch_.get(), kReadChunkHttp, MSG_DONTWAIT) > 0;
           ++k) {
      }
    }
    Kill(c);
    return;
  }
  if (!c->http_blocked && !h->closing && !h->in.empty() && h->phase != HttpState::kTunnel)
    HttpProcess(c, NowNs());
  if (c->state == Conn::kDead) return;
  // An idle upstream that closed: forget it.
  if (c->dir[1].src_eof && h->inflight.empty() && c->fd[1] >= 0) {
    HttpDetachUpstream(c, false);
  }
}

void StreamEngine::Loop::HttpDetachUpstream(Conn* c, bool reusable) {
  HttpState* h = c->http.get();
  if (c->fd[1] >= 0) {
    epoll_ctl(ep_, EPOLL_CTL_DEL, c->fd[1], nullptr);
    const bool idle = reusable && c->state == Conn::kOpen && c->dir[0].q.empty() &&
                      h->inflight.empty() && !c->dir[1].src_eof && !h->up_key.empty() &&
                      !h->up_body_pending && !h->response_started;
    if (idle)
      PoolPut(h->up_key, c->fd[1]);
    else
      close(c->fd[1]);
    c->fd[1] = -1;
  }
  c->state = Conn::kAwaitFar;
  c->dir[0].q.clear();
  c->dir[0].queued = 0;
  c->dir[0].dst_shut = false;
  c->dir[1].src_eof = false;
  c->dir[1].dst_shut = false;
  h->up_key.clear();
  h->up_reusable = true;
  h->up_body_pending = false;
  h->response_started = false;
  h->inflight.clear();
  c->far_addrs.clear();
  c->far_next = 0;
  http_parser_init(&h->res, HTTP_RESPONSE);
  h->res.data = h;
}

int StreamEngine::Loop::PoolTake(const std::string& key) {
  auto it = pool_.find(key);
  if (it == pool_.end()) return -1;
  while (!it->second.empty()) {
    std::unique_ptr<Pooled> p = std::move(it->second.back());
    it->second.pop_back();
    epoll_ctl(ep_, EPOLL_CTL_DEL, p->fd, nullptr);
    int fd = std::exchange(p->fd, -1);
    dead_pooled_.push_back(std::move(p));  // an event of this batch may name it
    char b;
    ssize_t r = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return fd;  // alive
    close(fd);
  }
  return -1;
}

void StreamEngine::Loop::PoolPut(const std::string& key, int fd) {
  auto& v = pool_[key];
  if (v.size() >= kPoolPerKey) {
    close(fd);
    return;
  }
  auto p = std::make_unique<Pooled>();
  p->fd = fd;
  p->key = key;
  p->since = NowNs();
  p->h.kind = Handle::kPooled;
  p->h.pooled = p.get();
  Register(fd, &p->h, EPOLLIN | EPOLLRDHUP);
  v.push_back(std::move(p));
}

void StreamEngine::Loop::OnPooled(Pooled* p) {
  // An idle upstream said something (closed, most likely): drop it.
  if (p->fd < 0) return;  // taken or dropped earlier in this batch
  auto it = pool_.find(p->key);
  if (it == pool_.end()) return;
  auto& v = it->second;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i].get() != p) continue;
    epoll_ctl(ep_, EPOLL_CTL_DEL, p->fd, nullptr);
    close(std::exchange(p->fd, -1));
    dead_pooled_.push_back(std::move(v[i]));
    v.erase(v.begin() + static_cast<long>(i));
    break;
  }
}

void StreamEngine::Loop::ExpirePool(int64_t now) {
  for (auto& [key, v] : pool_) {
    for (size_t i = 0; i < v.size();) {
      if (now - v[i]->since > kPoolIdleNs) {
        epoll_ctl(ep_, EPOLL_CTL_DEL, v[i]->fd, nullptr);
        close(std::exchange(v[i]->fd, -1));
        dead_pooled_.push_back(std::move(v[i]));
        v.erase(v.begin() + static_cast<long>(i));
      } else {
        ++i;
      }
    }
  }
}

// ---------------------------------------------------------------- plugins ---

void StreamEngine::Loop::HttpRespondRaw(Conn* c, std::string text, bool close, int64_t now) {
  HttpState* h = c->http.get();
  Ingest(c, 1, text.data(), text.size(), now);
  if (close) {
    h->close_after = true;
    h->closing = true;
  }
  Schedule(c, now);
}

// Whether the request whose head was just parsed goes through the
// plugins: one takes HTTP, and the request is forwarded (not CONNECT, not
// refused) to a target the --upstream list names, as in the Rust tool.
bool StreamEngine::Loop::HttpWantsPlugins(Conn* c) {
  if (!AnyPlugin(grpc_module::kPluginHttp)) return false;
  HttpState* h = c->http.get();
  RequestRoute r = RouteRequest(h->req.method, h->req.http_major, h->req.http_minor,
                                h->parts.url, h->parts.headers);
  // CONNECT and Upgrade (WebSocket, h2c) become tunnels: their bytes
  // meet the tunnel hooks, not these.
  if (r.status != 0 || r.connect || h->req.upgrade) return false;
  if (o_.upstream_filter && !o_.upstream_filter(r.host, r.port)) return false;
  // The path and Host as the upstream would get them.
  const size_t sp1 = r.out_head.find(' ');
  const size_t sp2 = r.out_head.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos) return false;
  h->plug_req = grpc_module::PluginHttpRequest();
  h->plug_req.method = http_method_str(static_cast<http_method>(h->req.method));
  h->plug_req.path = r.out_head.substr(sp1 + 1, sp2 - sp1 - 1);
  for (const auto& [name, value] : h->parts.headers) h->plug_req.headers.push_back({name, value});
  h->plug_host = r.key;
  for (size_t at = r.out_head.find("\r\n"); at != std::string::npos;) {
    const size_t next = r.out_head.find("\r\n", at + 2);
    if (next == std::string::npos) break;
    const std::string line = r.out_head.substr(at + 2, next - at - 2);
    if (line.size() > 5 && absl::AsciiStrToLower(line.substr(0, 5)) == "host:") {
      h->plug_host = std::string(absl::StripAsciiWhitespace(line.substr(5)));
      break;
    }
    at = next;
  }
  return true;
}

void StreamEngine::Loop::HttpPluginAnswer(Conn* c, PluginMailbox::Item item) {
  HttpState* h = c->http.get();
  if (item.hook == PluginMailbox::kHttpRequest && h->plug_waiting &&
      item.serial == h->plug_serial)
    HttpPluginRequestAnswer(c, item.plugin, std::move(item.result));
  else if (item.hook == PluginMailbox::kHttpResponse && h->plug_res_waiting &&
           item.serial == h->res_serial)
    HttpPluginResponseAnswer(c, item.plugin, std::move(item.result));
}

void StreamEngine::Loop::HttpPluginRequestNext(Conn* c) {
  HttpState* h = c->http.get();
  while (h->plug_next < o_.plugins->size() &&
         !PluginTakesPart(h->plug_next, grpc_module::kPluginHttp))
    ++h->plug_next;
  if (h->plug_next >= o_.plugins->size()) return HttpPluginRequestDone(c);
  o_.plugins->ProcessHttpRequest(
      h->plug_next, h->plug_req,
      PluginDone(c, ++h->plug_serial, PluginMailbox::kHttpRequest, h->plug_next));
}

// The plugins are done with the request, and answer it (`raw`, or `text`
// with `status` when `raw` is empty): in turn with the earlier requests'
// answers.
void StreamEngine::Loop::HttpPluginAnswerRequest(Conn* c, int status, std::string raw,
                                                 std::string text) {
  HttpState* h = c->http.get();
  h->plug_waiting = false;
  h->plug_request = false;
  h->routed = true;
  h->answer_status = status;
  h->answer_raw = std::move(raw);
  h->answer_text = std::move(text);
  h->answer_close = !h->keep_alive;
  h->pending_route = true;
  HttpUnblock(c);
}

void StreamEngine::Loop::HttpPluginRequestAnswer(Conn* c, size_t plugin,
                                                 grpc_module::PluginResult r) {
  HttpState* h = c->http.get();
  std::string invalid;
  if (r.kind == grpc_module::PluginResult::kAbort &&
      (r.response.status < 100 || r.response.status > 599)) {
    invalid = absl::StrCat("answered ABORT with the status ", r.response.status,
                           ", not one from 100 to 599");
  } else if (r.kind == grpc_module::PluginResult::kContinue && r.has_request) {
    const grpc_module::PluginHttpRequest& m = r.request;
    if (!m.method.empty() && !Token(m.method))
      invalid = "answered with a method that is not an HTTP token";
    else if (!m.path.empty() && (m.path[0] != '/' || m.path.find_first_of(" \r\n") !=
                                                         std::string::npos))
      invalid = "answered with a path that is not an origin-form path";
  }
  if (!invalid.empty()) {
    r.kind = grpc_module::PluginResult::kFailed;
    r.error = invalid;
  }
  switch (r.kind) {
    case grpc_module::PluginResult::kFailed:
      if (o_.plugin_fail_closed) {
        plugin_refused_.fetch_add(1, std::memory_order_relaxed);
        HttpPluginAnswerRequest(
            c, 502, "",
            absl::StrCat("plugin ", PluginName(plugin), ": ", r.error,
                         " (--plugin-failure closed)\n"));
        return;
      }
      plugin_bypassed_.fetch_add(1, std::memory_order_relaxed);
      break;
    case grpc_module::PluginResult::kAbort:
      HttpPluginAnswerRequest(
          c, static_cast<int>(r.response.status),
          PluginResponseText(r.response, h->plug_req.method == "HEAD", !h->keep_alive), "");
      return;
    case grpc_module::PluginResult::kContinue:
      if (r.has_request) {
        grpc_module::PluginHttpRequest& m = r.request;
        if (m.method.empty()) m.method = h->plug_req.method;
        if (m.path.empty()) m.path = h->plug_req.path;
        h->plug_req = std::move(m);
      }
      break;
    default:
      break;
  }
  ++h->plug_next;
  HttpPluginRequestNext(c);
}

// Through every plugin: the request goes to its upstream as they left it.
void StreamEngine::Loop::HttpPluginRequestDone(Conn* c) {
  HttpState* h = c->http.get();
  h->plug_waiting = false;
  h->plug_override = true;
  h->plug_head = PluginRequestText(h->plug_req, h->plug_host);
  h->routed = false;
  h->pending_route = true;
  HttpUnblock(c);
}

void StreamEngine::Loop::HttpPluginResponseNext(Conn* c) {
  HttpState* h = c->http.get();
  while (h->res_next < o_.plugins->size() &&
         !PluginTakesPart(h->res_next, grpc_module::kPluginHttp))
    ++h->res_next;
  if (h->res_next >= o_.plugins->size()) return HttpPluginResponseDone(c);
  o_.plugins->ProcessHttpResponse(
      h->res_next, h->plug_res,
      PluginDone(c, ++h->res_serial, PluginMailbox::kHttpResponse, h->res_next));
}

void StreamEngine::Loop::HttpPluginResponseAnswer(Conn* c, size_t plugin,
                                                  grpc_module::PluginResult r) {
  HttpState* h = c->http.get();
  if (r.kind == grpc_module::PluginResult::kAbort &&
      (r.response.status < 100 || r.response.status > 599)) {
    r.kind = grpc_module::PluginResult::kFailed;
    r.error = absl::StrCat("answered ABORT with the status ", r.response.status,
                           ", not one from 100 to 599");
  }
  switch (r.kind) {
    case grpc_module::PluginResult::kFailed:
      if (o_.plugin_fail_closed) {
        plugin_refused_.fetch_add(1, std::memory_order_relaxed);
        h->plug_res = grpc_module::PluginHttpResponse();
        h->plug_res.status = 502;
        h->plug_res.headers.push_back({"Content-Type", "text/plain"});
        h->plug_res.body = absl::StrCat("plugin ", PluginName(plugin), ": ", r.error,
                                        " (--plugin-failure closed)\n");
        h->plug_res_head = false;
        return HttpPluginResponseDone(c);
      }
      plugin_bypassed_.fetch_add(1, std::memory_order_relaxed);
      break;
    case grpc_module::PluginResult::kAbort:
      // The plugin's own answer instead of the upstream's; no other
      // plugin sees it.
      h->plug_res = std::move(r.response);
      return HttpPluginResponseDone(c);
    case grpc_module::PluginResult::kContinue:
      if (r.has_response) {
        // A status outside 100..599 (0: not set) keeps the upstream's.
        const uint32_t status = h->plug_res.status;
        h->plug_res = std::move(r.response);
        if (h->plug_res.status < 100 || h->plug_res.status > 599) h->plug_res.status = status;
      }
      break;
    default:
      break;
  }
  ++h->res_next;
  HttpPluginResponseNext(c);
}

void StreamEngine::Loop::HttpPluginResponseDone(Conn* c) {
  HttpState* h = c->http.get();
  const int64_t now = NowNs();
  h->plug_res_waiting = false;
  std::string text = PluginResponseText(h->plug_res, h->plug_res_head, h->close_after);
  h->plug_res = grpc_module::PluginHttpResponse();
  Ingest(c, 1, text.data(), text.size(), now);
  if (c->http_blocked && h->pending_route && h->inflight.empty()) {
    HttpUnblock(c);
    return;
  }
  Schedule(c, now);
}

}  // namespace fault::stream
