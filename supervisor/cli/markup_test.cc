#include "supervisor/cli/markup.h"

#include "gtest/gtest.h"

namespace fault::cli {
namespace {

TEST(MarkupEscapeTest, EscapesWhatMarkupGivesMeaningTo) {
  EXPECT_EQ(MarkupEscape(R"(<a href="x">O'Neil & co</a>)"),
            "&lt;a href=&quot;x&quot;&gt;O&#39;Neil &amp; co&lt;/a&gt;");
}

TEST(MarkupEscapeTest, ControlCharactersXmlForbidsBecomeQuestionMarks) {
  EXPECT_EQ(MarkupEscape("a\x01" "b\tc\nd\re\x1f"), "a?b\tc\nd\re?");
  EXPECT_EQ(MarkupEscape("caf\xc3\xa9"), "caf\xc3\xa9");  // UTF-8 passes through
}

}  // namespace
}  // namespace fault::cli
