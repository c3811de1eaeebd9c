#include "resp.h"

#include <cctype>
#include <cstdlib>

namespace redis_upper {
namespace {

// Parses one reply at `*pos`, upper-casing bulk payloads in `out` (same
// offsets as `in`). False: incomplete or not RESP.
bool Reply(std::string_view in, size_t* pos, std::string* out, int depth) {
  if (depth > 32 || *pos >= in.size()) return false;
  const char type = in[*pos];
  const size_t eol = in.find("\r\n", *pos);
  if (eol == std::string_view::npos) return false;
  const std::string line(in.substr(*pos + 1, eol - *pos - 1));
  *pos = eol + 2;
  switch (type) {
    case '+': case '-': case ':': case '_': case ',': case '#': case '(':
      return true;
    case '$': case '=': case '!': {  // bulk string, verbatim, bulk error
      char* end = nullptr;
      const long n = std::strtol(line.c_str(), &end, 10);
      if (end == line.c_str() || *end != '\0') return false;
      if (n < 0) return true;  // null bulk string
      if (in.size() < *pos + static_cast<size_t>(n) + 2) return false;
      for (size_t i = *pos; i < *pos + static_cast<size_t>(n); ++i)
        (*out)[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(in[i])));
      *pos += static_cast<size_t>(n);
      if (in.substr(*pos, 2) != "\r\n") return false;
      *pos += 2;
      return true;
    }
    case '*': case '~': case '>': case '%': {  // array, set, push, map
      char* end = nullptr;
      long n = std::strtol(line.c_str(), &end, 10);
      if (end == line.c_str() || *end != '\0' || n > 1'000'000) return false;
      if (type == '%') n *= 2;
      for (long i = 0; i < n; ++i)
        if (!Reply(in, pos, out, depth + 1)) return false;
      return true;
    }
    default:
      return false;
  }
}

}  // namespace

bool UpperBulkStrings(std::string_view chunk, std::string* out) {
  std::string result(chunk);
  size_t pos = 0;
  while (pos < chunk.size()) {
    if (!Reply(chunk, &pos, &result, 0)) {
      out->assign(chunk);
      return false;
    }
  }
  *out = std::move(result);
  return true;
}

}  // namespace redis_upper
