// Arbitrary bytes as what a client sends on a connection with protocol
// faults. Beyond not crashing: faults that never match pass the bytes on
// unchanged (all but a last message not yet whole), and how the bytes are
// split into reads changes nothing (the same bytes forwarded, the same
// answers).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "supervisor/stream/protocol_faults.h"

namespace {

using fault::stream::ProtocolFaults;
using fault::stream::ProtocolFilter;

std::shared_ptr<ProtocolFaults> Make(bool match) {
  auto f = std::make_shared<ProtocolFaults>();
  f->has_seed = true;
  ProtocolFaults::Http h;
  // Faults that cannot match: methods and commands are compared in upper
  // case, and a query without its surrounding white space is never "\n".
  h.path = "/*";
  if (!match) h.method = "never";
  h.status = 503;
  h.body = "x";
  f->http.push_back(h);
  ProtocolFaults::Redis r;
  r.commands = {match ? "GET" : "never"};
  r.error = "ERR x";
  f->redis.push_back(r);
  ProtocolFaults::Postgres g;
  g.query = match ? "s*" : "\n";
  g.sqlstate = "40001";
  g.message = "m";
  f->postgres.push_back(g);
  return f;
}

void Run(const std::shared_ptr<ProtocolFaults>& f, std::string_view in, size_t step,
         std::string* forwarded, std::string* replied) {
  ProtocolFilter filter(f, 1);
  std::vector<ProtocolFilter::Action> acts;
  for (size_t i = 0; i < in.size(); i += step) filter.Feed(in.substr(i, step), &acts);
  for (const auto& a : acts) {
    if (a.kind == ProtocolFilter::Action::kForward) *forwarded += a.bytes;
    if (a.kind == ProtocolFilter::Action::kReply) *replied += a.bytes;
    if (a.kind == ProtocolFilter::Action::kDrop) *replied += "<drop>";
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t step = 1 + data[0] % 16;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  {
    std::string fwd, rep;
    Run(Make(false), in, step, &fwd, &rep);
    // A message not yet whole is held back (the next read may complete
    // it): what went out is the input up to there, unchanged.
    if (in.substr(0, fwd.size()) != fwd || !rep.empty()) abort();
  }
  {
    // Delays of every protocol: they hold requests back and change no byte.
    auto f = std::make_shared<ProtocolFaults>();
    f->has_seed = true;
    ProtocolFaults::Http h;
    h.path = "/*";
    h.delay_ns = 1;
    f->http.push_back(h);
    ProtocolFaults::Redis r;
    r.delay_ns = 1;
    f->redis.push_back(r);
    ProtocolFaults::Postgres g;
    g.query = "*";
    g.delay_ns = 1;
    f->postgres.push_back(g);
    std::string fwd, rep;
    Run(f, in, step, &fwd, &rep);
    if (in.substr(0, fwd.size()) != fwd || !rep.empty()) abort();
  }
  std::string fwd1, rep1, fwd2, rep2;
  Run(Make(true), in, step, &fwd1, &rep1);
  Run(Make(true), in, in.size() + 1, &fwd2, &rep2);
  if (fwd1 != fwd2 || rep1 != rep2) abort();
  return 0;
}
