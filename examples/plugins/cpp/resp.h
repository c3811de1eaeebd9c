// Redis replies (RESP2/RESP3) with their bulk strings in upper case: the
// pure part of the redis_upper example plugin, tested in resp_test.cc.
#ifndef FAULT_EXAMPLES_PLUGINS_CPP_RESP_H_
#define FAULT_EXAMPLES_PLUGINS_CPP_RESP_H_

#include <string>
#include <string_view>

namespace redis_upper {

// `chunk` with every bulk string's bytes in ASCII upper case ($5\r\nhello\r\n
// becomes $5\r\nHELLO\r\n; lengths do not change). A chunk that is not one
// or more complete replies (a reply split across reads) comes back as it
// was: false.
bool UpperBulkStrings(std::string_view chunk, std::string* out);

}  // namespace redis_upper

#endif  // FAULT_EXAMPLES_PLUGINS_CPP_RESP_H_
