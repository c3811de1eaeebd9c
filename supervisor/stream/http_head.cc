#include "supervisor/stream/http_head.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fault::stream {
namespace {

// Headers a proxy does not pass on (hop-by-hop, RFC 9110 7.6.1, and the
// proxy's own).
bool HopByHop(const std::string& lower) {
  return lower == "proxy-connection" || lower == "proxy-authorization" ||
         lower == "keep-alive" || lower == "te" || lower == "trailer" ||
         lower == "proxy-authenticate";
}

// "host:port" / "[v6]:port" / "host" (default port) into its parts.
bool SplitAuthority(const std::string& a, uint16_t default_port, std::string* host,
                    uint16_t* port) {
  std::string h = a;
  uint32_t p = default_port;
  if (!h.empty() && h[0] == '[') {
    size_t close = h.find(']');
    if (close == std::string::npos) return false;
    std::string rest = h.substr(close + 1);
    h = h.substr(1, close - 1);
    if (!rest.empty() && (rest[0] != ':' || !absl::SimpleAtoi(rest.substr(1), &p)))
      return false;
  } else {
    size_t colon = h.rfind(':');
    if (colon != std::string::npos && h.find(':') == colon) {
      if (!absl::SimpleAtoi(h.substr(colon + 1), &p)) return false;
      h = h.substr(0, colon);
    }
  }
  if (h.empty() || p == 0 || p > 65535) return false;
  for (char ch : h)
    if (static_cast<unsigned char>(ch) <= ' ' || ch == '/' || ch == '@') return false;
  *host = absl::AsciiStrToLower(h);
  *port = static_cast<uint16_t>(p);
  return true;
}

RequestRoute Answer(int status, std::string message) {
  RequestRoute r;
  r.status = status;
  r.message = std::move(message);
  return r;
}

}  // namespace

std::string KeyOf(const std::string& host, uint16_t port) {
  return host.find(':') != std::string::npos ? absl::StrCat("[", host, "]:", port)
                                             : absl::StrCat(host, ":", port);
}

size_t HeadEnd(std::string_view in, size_t from) {
  for (size_t i = from; i < in.size(); ++i) {
    if (in[i] != '\n') continue;
    if (i + 1 < in.size() && in[i + 1] == '\n') return i + 2;
    if (i + 2 < in.size() && in[i + 1] == '\r' && in[i + 2] == '\n') return i + 3;
  }
  return std::string_view::npos;
}

RequestRoute RouteRequest(int method, int http_major, int http_minor, const std::string& url,
                          const HeaderList& headers) {
  RequestRoute r;
  int hosts = 0;
  for (const auto& [name, value] : headers) hosts += absl::AsciiStrToLower(name) == "host";
  if (hosts > 1) return Answer(400, "more than one Host header");
  if (method == HTTP_CONNECT) {
    r.connect = true;
    if (!SplitAuthority(url, 443, &r.host, &r.port))
      return Answer(400, "CONNECT needs HOST:PORT");
    r.key = KeyOf(r.host, r.port);
    return r;
  }
  std::string path;
  std::string host_header;  // absolute form: the URL's authority replaces Host
  http_parser_url u;
  http_parser_url_init(&u);
  if (http_parser_parse_url(url.data(), url.size(), 0, &u) == 0 &&
      (u.field_set & (1 << UF_HOST))) {
    std::string scheme =
        (u.field_set & (1 << UF_SCHEMA))
            ? absl::AsciiStrToLower(
                  url.substr(u.field_data[UF_SCHEMA].off, u.field_data[UF_SCHEMA].len))
            : "http";
    if (scheme != "http")
      return Answer(501, absl::StrCat("the proxy forwards http:// URLs; for ", scheme,
                                      ":// use CONNECT (curl -p, or an https_proxy setting)"));
    std::string authority =
        url.substr(u.field_data[UF_HOST].off, u.field_data[UF_HOST].len);
    if (authority.find(':') != std::string::npos) authority = "[" + authority + "]";
    if (!SplitAuthority(authority, (u.field_set & (1 << UF_PORT)) ? u.port : 80, &r.host,
                        &r.port))
      return Answer(400, "the URL's host is not valid");
    host_header = authority;
    if (u.field_set & (1 << UF_PORT)) absl::StrAppend(&host_header, ":", u.port);
    size_t path_at = (u.field_set & (1 << UF_PATH))    ? u.field_data[UF_PATH].off
                     : (u.field_set & (1 << UF_QUERY)) ? u.field_data[UF_QUERY].off - 1
                                                       : url.size();
    path = url.substr(path_at);
    size_t hash = path.find('#');
    if (hash != std::string::npos) path.resize(hash);
    if (path.empty() || path[0] != '/') path = "/" + path;
  } else {
    // Origin form: the Host header names the upstream.
    path = url;
    std::string authority;
    for (const auto& [name, value] : headers)
      if (absl::AsciiStrToLower(name) == "host") authority = value;
    if (authority.empty() || !SplitAuthority(authority, 80, &r.host, &r.port))
      return Answer(400, "no upstream: send an absolute URL (curl -x) or a Host header");
    if (path.empty() || path[0] != '/') return Answer(400, "the request target is not a path");
  }
  for (char ch : path)
    if (static_cast<unsigned char>(ch) <= ' ') return Answer(400, "the request target has spaces");
  r.key = KeyOf(r.host, r.port);
  // The head as the upstream sees it.
  std::string& out = r.out_head;
  out = absl::StrCat(http_method_str(static_cast<http_method>(method)), " ", path, " HTTP/",
                     http_major, ".", http_minor, "\r\n");
  // Absolute form: the Host header the client sent is replaced by the
  // URL's authority (RFC 9112, 3.2.2), so that the upstream and the proxy
  // agree on where the request goes.
  bool has_host = false;
  for (const auto& [name, value] : headers) {
    std::string lower = absl::AsciiStrToLower(name);
    if (HopByHop(lower)) continue;
    if (lower == "host") {
      has_host = true;
      absl::StrAppend(&out, name, ": ", host_header.empty() ? value : host_header, "\r\n");
      continue;
    }
    absl::StrAppend(&out, name, ": ", value, "\r\n");
  }
  if (!has_host)
    absl::StrAppend(&out, "Host: ", host_header.empty() ? r.key : host_header, "\r\n");
  out += "\r\n";
  return r;
}

const http_parser_settings& RequestHeadSettings() {
  static const http_parser_settings s = [] {
    http_parser_settings x;
    http_parser_settings_init(&x);
    x.on_url = [](http_parser* p, const char* at, size_t n) {
      static_cast<RequestHeadParts*>(p->data)->url.append(at, n);
      return 0;
    };
    x.on_header_field = [](http_parser* p, const char* at, size_t n) {
      auto* c = static_cast<RequestHeadParts*>(p->data);
      if (c->headers.empty() || c->value_last) c->headers.emplace_back();
      c->headers.back().first.append(at, n);
      c->value_last = false;
      return 0;
    };
    x.on_header_value = [](http_parser* p, const char* at, size_t n) {
      auto* c = static_cast<RequestHeadParts*>(p->data);
      if (c->headers.empty()) c->headers.emplace_back();
      c->headers.back().second.append(at, n);
      c->value_last = true;
      return 0;
    };
    x.on_headers_complete = [](http_parser* p) {
      static_cast<RequestHeadParts*>(p->data)->head_complete = true;
      return 0;
    };
    x.on_body = [](http_parser* p, const char* at, size_t n) {
      auto* c = static_cast<RequestHeadParts*>(p->data);
      if (c->body != nullptr) c->body->append(at, n);
      return 0;
    };
    x.on_message_complete = [](http_parser* p) {
      static_cast<RequestHeadParts*>(p->data)->message_complete = true;
      http_parser_pause(p, 1);
      return 0;
    };
    return x;
  }();
  return s;
}

const char* HttpReason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
  }
}

RequestRoute ParseAndRoute(std::string_view head) {
  http_parser p;
  http_parser_init(&p, HTTP_REQUEST);
  RequestHeadParts c;
  p.data = &c;
  http_parser_execute(&p, &RequestHeadSettings(), head.data(), head.size());
  const http_errno err = HTTP_PARSER_ERRNO(&p);
  if ((err != HPE_OK && err != HPE_PAUSED) || !c.head_complete)
    return Answer(400, absl::StrCat("malformed request: ", http_errno_description(err)));
  return RouteRequest(p.method, p.http_major, p.http_minor, c.url, c.headers);
}

}  // namespace fault::stream
