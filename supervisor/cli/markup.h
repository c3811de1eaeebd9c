// Text inside the XML and HTML reports fault writes (JUnit, `fault test
// --html`, `fault scenario`'s HTML report).
#ifndef FAULT_SUPERVISOR_CLI_MARKUP_H_
#define FAULT_SUPERVISOR_CLI_MARKUP_H_

#include <string>
#include <string_view>

namespace fault::cli {

// `s` escaped for XML 1.0 and HTML element text and attribute values alike:
// & < > " ' as character references, and the control characters XML 1.0
// forbids even escaped (all below 0x20 but tab, newline, carriage return)
// as '?'.
std::string MarkupEscape(std::string_view s);

}  // namespace fault::cli

#endif  // FAULT_SUPERVISOR_CLI_MARKUP_H_
