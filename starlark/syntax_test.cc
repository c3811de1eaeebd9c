// Scanner, parser and resolver tests.
#include "starlark/syntax.h"

#include "gtest/gtest.h"
#include "starlark/interp.h"

namespace fault::starlark {
namespace {

std::vector<Tok> Scan(std::string_view src) {
  auto r = ScanForTest(src);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : std::vector<Tok>{};
}

TEST(ScannerTest, IndentationProducesIndentOutdent) {
  auto t = Scan("def f():\n  x = 1\n  if x:\n    y = 2\nz = 3\n");
  std::vector<Tok> want = {
      Tok::kDef,     Tok::kIdent,   Tok::kLParen, Tok::kRParen, Tok::kColon,
      Tok::kNewline, Tok::kIndent,  Tok::kIdent,  Tok::kEq,     Tok::kInt,
      Tok::kNewline, Tok::kIf,      Tok::kIdent,  Tok::kColon,  Tok::kNewline,
      Tok::kIndent,  Tok::kIdent,   Tok::kEq,     Tok::kInt,    Tok::kNewline,
      Tok::kOutdent, Tok::kOutdent, Tok::kIdent,  Tok::kEq,     Tok::kInt,
      Tok::kNewline, Tok::kEof};
  EXPECT_EQ(t, want);
}

TEST(ScannerTest, BracketsJoinLines) {
  auto t = Scan("x = [1,\n  2,\n\n 3]\n");
  std::vector<Tok> want = {Tok::kIdent,  Tok::kEq,      Tok::kLBrack, Tok::kInt,
                           Tok::kComma,  Tok::kInt,     Tok::kComma,  Tok::kInt,
                           Tok::kRBrack, Tok::kNewline, Tok::kEof};
  EXPECT_EQ(t, want);
}

TEST(ScannerTest, CommentsAndBlankLinesAreSkipped) {
  auto t = Scan("# c\n\nx = 1  # trailing\n   # indented comment\ny = 2");
  std::vector<Tok> want = {Tok::kIdent,   Tok::kEq,      Tok::kInt,
                           Tok::kNewline, Tok::kIdent,   Tok::kEq,
                           Tok::kInt,     Tok::kNewline, Tok::kEof};
  EXPECT_EQ(t, want);
}

TEST(ScannerTest, OperatorsAndLiterals) {
  auto t = Scan("a //= 0x1F << 0o7 >> 0b1 ** b'x' r'\\d' 1.5e3 .5 != <= >=");
  std::vector<Tok> want = {Tok::kIdent,   Tok::kSlashSlashEq, Tok::kInt,
                           Tok::kLtLt,    Tok::kInt,          Tok::kGtGt,
                           Tok::kInt,     Tok::kStarStar,     Tok::kBytes,
                           Tok::kString,  Tok::kFloat,        Tok::kFloat,
                           Tok::kNe,      Tok::kLe,           Tok::kGe,
                           Tok::kNewline, Tok::kEof};
  EXPECT_EQ(t, want);
}

TEST(ScannerTest, Errors) {
  EXPECT_EQ(ScanForTest("x = 'abc\n").status().message(),
            "1:5: unexpected newline in string");
  EXPECT_EQ(ScanForTest("x = 'abc").status().message(),
            "1:5: unexpected EOF in string");
  EXPECT_EQ(ScanForTest("x = 012").status().message(),
            "1:5: invalid int literal: 012 (obsolete form of octal literal; "
            "use 0o12)");
  EXPECT_EQ(ScanForTest("x = '\\q'").status().message(),
            "1:6: invalid escape sequence \\q");
  EXPECT_EQ(ScanForTest("x = $").status().message(),
            "1:5: unexpected input character '$'");
  EXPECT_EQ(ScanForTest("class").status().message(),
            "1:1: keyword class is reserved");
  EXPECT_EQ(ScanForTest("if x:\n    a\n  b\n").status().message(),
            "3:3: unindent does not match any outer indentation level");
}

absl::Status ParseAndResolve(std::string_view src, Dialect d = {}) {
  auto f = Parse("t.star", src, d);
  if (!f.ok()) return f.status();
  return Resolve(
      f->get(), d, [](std::string_view n) { return n == "pre" ? 0 : -1; },
      [&](std::string_view n) { return UniverseIndex(n, d); });
}

TEST(ParserTest, SyntaxErrorsCarryPositions) {
  EXPECT_EQ(ParseAndResolve("x = (1,\n").message(),
            "t.star:2:1: got end of file, want primary expression");
  EXPECT_EQ(ParseAndResolve("1 = x\n").message(),
            "t.star:1:1: cannot assign to literal");
  EXPECT_EQ(ParseAndResolve("a < b < c\n").message(),
            "t.star:1:7: operator < is not associative; use parentheses");
  EXPECT_EQ(ParseAndResolve("f(x=1, 2)\n").message(),
            "t.star:1:8: positional argument may not follow named");
  EXPECT_EQ(ParseAndResolve("def f():\n  while 1:\n    pass\n").message(),
            "t.star:2:3: dialect does not support while loops");
  EXPECT_EQ(
      ParseAndResolve("(a, b) += 1\n").message(),
      "t.star:1:1: cannot perform augmented assignment on tuple expression");
  EXPECT_EQ(ParseAndResolve("x = 1 if 2\n").message(),
            "t.star:1:11: conditional expression without else clause");
}

TEST(ParserTest, DeepNestingIsAnErrorNotACrash) {
  std::string deep(100000, '(');
  auto s = ParseAndResolve("x = " + deep);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("nesting too deep"), std::string::npos)
      << s.message();
  std::string minus(100000, '-');
  EXPECT_FALSE(ParseAndResolve("x = " + minus + "1\n").ok());
}

TEST(ResolverTest, StaticErrors) {
  EXPECT_EQ(ParseAndResolve("x = y\n").message(), "t.star:1:5: undefined: y");
  EXPECT_EQ(ParseAndResolve("x = 1\nx = 2\n").message(),
            "t.star:2:1: cannot reassign global x declared at t.star:1:1");
  EXPECT_EQ(ParseAndResolve("x = 1\nx += 2\n").message(),
            "t.star:2:1: cannot reassign global x declared at t.star:1:1");
  EXPECT_EQ(ParseAndResolve("break\n").message(),
            "t.star:1:1: break not in a loop");
  EXPECT_EQ(ParseAndResolve("def f():\n  continue\n").message(),
            "t.star:2:3: continue not in a loop");
  EXPECT_EQ(ParseAndResolve("for x in []:\n  pass\n").message(),
            "t.star:1:1: for loop not within a function");
  EXPECT_EQ(ParseAndResolve("if 1:\n  pass\n").message(),
            "t.star:1:1: if statement not within a function");
  EXPECT_EQ(ParseAndResolve("return 1\n").message(),
            "t.star:1:1: return statement not within a function");
  EXPECT_EQ(ParseAndResolve("def f():\n  load('m', 'x')\n").message(),
            "t.star:2:3: load statement within a function");
  EXPECT_EQ(ParseAndResolve("def f(a, a):\n  pass\n").message(),
            "t.star:1:10: duplicate parameter: a");
  EXPECT_EQ(ParseAndResolve("def f(a=1, b):\n  pass\n").message(),
            "t.star:1:12: required parameter may not follow optional");
  EXPECT_EQ(ParseAndResolve("def f(*):\n  pass\n").message(),
            "t.star:1:1: bare * must be followed by keyword-only parameters");
  EXPECT_EQ(ParseAndResolve("def f(**k, a):\n  pass\n").message(),
            "t.star:1:12: parameter may not follow **kwargs");
  EXPECT_EQ(
      ParseAndResolve("load('m', '_x')\n").message(),
      "t.star:1:11: load: names with leading underscores are not exported: _x");
}

TEST(ResolverTest, DialectOptionsRelaxRules) {
  Dialect d;
  d.allow_toplevel_control = true;
  d.allow_global_reassign = true;
  d.allow_while = true;
  EXPECT_TRUE(ParseAndResolve("x = 1\nx = 2\nfor i in []:\n  pass\nif x:\n  "
                              "pass\nwhile 0:\n  pass\n",
                              d)
                  .ok());
  d.allow_set = false;
  EXPECT_EQ(ParseAndResolve("s = set()\n", d).message(),
            "t.star:1:5: undefined: set");
}

TEST(ResolverTest, ScopesAndClosures) {
  auto f = Parse("t.star",
                 "def outer(a):\n  b = 1\n  def inner():\n    return a + b\n  "
                 "return inner\nc = [x for x in [1]]\n",
                 {});
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(Resolve(f->get(), {}, nullptr, [](std::string_view n) {
                return UniverseIndex(n, {});
              }).ok());
  auto* def = static_cast<DefStmt*>((*f)->stmts[0].get());
  EXPECT_EQ(def->fn->nlocals, 3);  // a, b, inner
  EXPECT_TRUE(def->fn->local_is_cell[0]);
  EXPECT_TRUE(def->fn->local_is_cell[1]);
  EXPECT_FALSE(def->fn->local_is_cell[2]);
  auto* inner = static_cast<DefStmt*>(def->fn->body[1].get());
  EXPECT_EQ(inner->fn->freevars.size(), 2u);
  // The comprehension variable lives in a top-level local slot, not a global.
  EXPECT_EQ((*f)->global_names.size(), 2u);
  EXPECT_EQ((*f)->toplevel->nlocals, 1);
}

}  // namespace
}  // namespace fault::starlark
