// Protocol faults (a policy's http_faults, redis_faults, postgres_faults):
// the stream engine reads just enough of what a client sends on a relayed
// connection to recognise each request (an HTTP/1.1 request head, a Redis
// command, a PostgreSQL Query or Parse message) and, for one that a fault
// matches, answers the client in the server's place or drops the
// connection; the server never sees that request. Everything else is
// passed on unchanged.
//
// ProtocolFilter is the per-connection state, free of sockets, so that it
// is tested and fuzzed on bytes alone (protocol_faults_test.cc,
// protocol_faults_fuzz.cc):
//
//   ProtocolFilter f(faults, seed);
//   std::vector<ProtocolFilter::Action> out;
//   f.Feed(bytes_from_client, &out);  // forward / reply / drop, in order
#ifndef FAULT_SUPERVISOR_STREAM_PROTOCOL_FAULTS_H_
#define FAULT_SUPERVISOR_STREAM_PROTOCOL_FAULTS_H_

#include <http_parser.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "supervisor/stream/http_head.h"

namespace fault::stream {

// The faults of one rule, as fault.v1.Policy has them (the stream library
// does not depend on the protobuf messages; fault exec converts them).
struct ProtocolFaults {
  struct Http {
    std::string method;  // empty: any
    std::string path;    // fnmatch(3) glob on the request target's path
    int status = 0;
    std::string body;
    bool drop = false;
    int64_t delay_ns = 0;  // forward it this much later instead
    uint32_t probability_ppm = 1'000'000;
  };
  struct Redis {
    std::vector<std::string> commands;  // upper case; empty: any
    std::string key;                    // glob on the first argument; empty: any
    std::string error;                  // without "-" and CRLF
    bool drop = false;
    int64_t delay_ns = 0;  // forward it this much later instead
    uint32_t probability_ppm = 1'000'000;
  };
  struct Postgres {
    std::string query;  // glob, case-insensitive
    std::string sqlstate;
    std::string message;
    bool drop = false;
    int64_t delay_ns = 0;  // forward it this much later instead
    uint32_t probability_ppm = 1'000'000;
  };
  std::vector<Http> http;
  std::vector<Redis> redis;
  std::vector<Postgres> postgres;
  uint64_t seed = 0;
  bool has_seed = false;

  bool empty() const { return http.empty() && redis.empty() && postgres.empty(); }
};

// The protocol faults of every rule, by rule name; set by fault exec (and
// again on a reload), read by the engine when it takes a connection.
class ProtocolFaultSet {
 public:
  void Set(std::map<std::string, std::shared_ptr<const ProtocolFaults>> by_rule);
  std::shared_ptr<const ProtocolFaults> Find(const std::string& rule) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const ProtocolFaults>> by_rule_;
};

// Encoders.
std::string HttpFaultResponse(int status, std::string_view body, bool head_only,
                              bool keep_alive);
std::string RedisErrorReply(std::string_view error);
// ErrorResponse (severity ERROR, `sqlstate`, `message`).
std::string PostgresErrorResponse(std::string_view sqlstate, std::string_view message);
// ReadyForQuery, idle.
std::string PostgresReadyForQuery();

// Parsers of one message at the start of `in`.
enum class ParseResult { kNeedMore, kMessage, kInvalid };
// A RESP array of bulk strings, or an inline command (a line of words).
// `*length` is the message's size in bytes.
ParseResult ParseRedisCommand(std::string_view in, size_t* length,
                              std::vector<std::string>* args);
// A frontend message: typed (`startup` false) or the untyped startup
// packet (`startup` true; *type is 0 and *code its protocol code).
// For 'Q' and 'P' *query is the query text.
ParseResult ParsePostgresMessage(std::string_view in, bool startup, size_t* length,
                                 char* type, uint32_t* code, std::string* query);

class ProtocolFilter {
 public:
  struct Action {
    // kDelay: the request that follows (the next kForward) leaves
    // delay_ns later than it would.
    enum Kind { kForward, kReply, kDrop, kDelay };
    Kind kind = kForward;
    std::string bytes;    // kForward: to the server; kReply: to the client
    int status = 0;       // kReply of an HTTP fault: its status
    int64_t delay_ns = 0; // kDelay
    std::string what;     // what was faulted, for messages ("GET /a", "SET", ...)
    bool fault = true;    // kReply: a fault fired (false: the end of an earlier one)
    bool close = false;   // kReply: end the client's side after the answer
  };
  enum class Protocol { kUnknown, kHttp, kRedis, kPostgres, kPassThrough };

  ProtocolFilter(std::shared_ptr<const ProtocolFaults> faults, uint64_t conn_serial);
  ~ProtocolFilter();
  ProtocolFilter(const ProtocolFilter&) = delete;
  ProtocolFilter& operator=(const ProtocolFilter&) = delete;

  // Bytes from the client; appends what to do with them, in order. After a
  // kDrop nothing more is done.
  void Feed(std::string_view bytes, std::vector<Action>* out);
  Protocol protocol() const { return protocol_; }

 private:
  bool Fire(uint32_t ppm);
  static Action Delay(int64_t ns, std::string what);
  void FeedHttp(std::vector<Action>* out);
  void FeedRedis(std::vector<Action>* out);
  void FeedPostgres(std::vector<Action>* out);
  void Forward(size_t n, std::vector<Action>* out);
  void PassThrough(std::vector<Action>* out);

  std::shared_ptr<const ProtocolFaults> faults_;
  Protocol protocol_ = Protocol::kUnknown;
  std::string buf_;  // read and not yet handled
  uint64_t rng_;
  bool dropped_ = false;
  // HTTP
  http_parser parser_;
  RequestHeadParts parts_;
  size_t parsed_ = 0;        // bytes of buf_ the parser has seen
  bool decided_ = false;     // the current request's fault is decided
  const ProtocolFaults::Http* http_fault_ = nullptr;
  std::string http_what_;
  // PostgreSQL
  bool pg_startup_ = true;   // the next message is untyped
  bool pg_skip_to_sync_ = false;
  std::string pg_reply_;     // sent at the Sync
};

}  // namespace fault::stream

#endif  // FAULT_SUPERVISOR_STREAM_PROTOCOL_FAULTS_H_
