// Arbitrary bytes as a request head for the forward proxy's routing. Beyond
// not crashing: a routed head, sent to the upstream, routes to the same
// place again (the rewrite keeps what the parser understood).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "supervisor/stream/http_head.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t end = fault::stream::HeadEnd(in, 0);
  if (end != std::string_view::npos && end > size) abort();
  fault::stream::RequestRoute r = fault::stream::ParseAndRoute(in);
  if (r.status != 0 || r.connect) return 0;
  if (r.port == 0 || r.key.empty()) abort();
  if (r.out_head.size() < 4 || r.out_head.compare(r.out_head.size() - 4, 4, "\r\n\r\n") != 0)
    abort();
  fault::stream::RequestRoute again = fault::stream::ParseAndRoute(r.out_head);
  if (again.status != 0 || again.key != r.key) abort();
  return 0;
}
