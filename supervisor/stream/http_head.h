// What the HTTP forward proxy makes of a request head: where the request
// goes and the head the upstream is sent (origin form, without the proxy's
// hop-by-hop headers). Pure functions, so that they are tested and fuzzed
// without sockets (http_head_test.cc, http_head_fuzz.cc).
//
//   RequestRoute r = RouteRequest(HTTP_GET, 1, 1, "http://h:8080/a?b", headers);
//   if (r.status != 0) ...answer r.status with r.message...
//   else ...connect to r.host:r.port, send r.out_head, then the body...
#ifndef FAULT_SUPERVISOR_STREAM_HTTP_HEAD_H_
#define FAULT_SUPERVISOR_STREAM_HTTP_HEAD_H_

#include <http_parser.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fault::stream {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct RequestRoute {
  int status = 0;         // != 0: answer the request with it and `message`
  std::string message;    // a line for the answer's body
  bool connect = false;   // CONNECT: a tunnel to host:port
  std::string host;       // lower case; IPv6 without brackets
  uint16_t port = 0;
  std::string key;        // "host:port" ("[v6]:port")
  std::string out_head;   // the head for the upstream (not for CONNECT)
};

// What http-parser's callbacks collect of a request (parser->data points at
// it). RequestHeadSettings() fills it and pauses the parser at the end of
// each message, so that the caller sees where a message ends.
struct RequestHeadParts {
  std::string url;
  HeaderList headers;
  bool value_last = false;
  bool head_complete = false;
  bool message_complete = false;
  // Where the body goes, decoded (chunked framing removed); nullptr: nowhere.
  std::string* body = nullptr;
  void Clear() { *this = RequestHeadParts(); }
};
const http_parser_settings& RequestHeadSettings();

// `method` is http-parser's enum http_method.
RequestRoute RouteRequest(int method, int http_major, int http_minor, const std::string& url,
                          const HeaderList& headers);

// Where the head of a request ends in `in` (just past its empty line), or
// npos. Searches from `from`.
size_t HeadEnd(std::string_view in, size_t from);

// The reason phrase for `status` (a generic one for the less common).
const char* HttpReason(int status);

// "host:port", or "[v6]:port".
std::string KeyOf(const std::string& host, uint16_t port);

// Parses `head` (a whole request head) with a fresh parser and routes it;
// a head the parser refuses is status 400. For tests and the fuzzer.
RequestRoute ParseAndRoute(std::string_view head);

}  // namespace fault::stream

#endif  // FAULT_SUPERVISOR_STREAM_HTTP_HEAD_H_
