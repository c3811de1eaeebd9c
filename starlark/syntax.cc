// Scanner and recursive-descent parser for Starlark.
#include "starlark/syntax.h"

#include <cmath>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace fault::starlark {

const char* TokString(Tok t) {
  switch (t) {
    case Tok::kEof:
      return "end of file";
    case Tok::kNewline:
      return "newline";
    case Tok::kIndent:
      return "indent";
    case Tok::kOutdent:
      return "outdent";
    case Tok::kIdent:
      return "identifier";
    case Tok::kInt:
      return "int literal";
    case Tok::kFloat:
      return "float literal";
    case Tok::kString:
      return "string literal";
    case Tok::kBytes:
      return "bytes literal";
    case Tok::kAnd:
      return "and";
    case Tok::kBreak:
      return "break";
    case Tok::kContinue:
      return "continue";
    case Tok::kDef:
      return "def";
    case Tok::kElif:
      return "elif";
    case Tok::kElse:
      return "else";
    case Tok::kFor:
      return "for";
    case Tok::kIf:
      return "if";
    case Tok::kIn:
      return "in";
    case Tok::kLambda:
      return "lambda";
    case Tok::kLoad:
      return "load";
    case Tok::kNot:
      return "not";
    case Tok::kNotIn:
      return "not in";
    case Tok::kOr:
      return "or";
    case Tok::kPass:
      return "pass";
    case Tok::kReturn:
      return "return";
    case Tok::kWhile:
      return "while";
    case Tok::kPlus:
      return "+";
    case Tok::kMinus:
      return "-";
    case Tok::kStar:
      return "*";
    case Tok::kSlash:
      return "/";
    case Tok::kSlashSlash:
      return "//";
    case Tok::kPercent:
      return "%";
    case Tok::kAmp:
      return "&";
    case Tok::kPipe:
      return "|";
    case Tok::kCaret:
      return "^";
    case Tok::kLtLt:
      return "<<";
    case Tok::kGtGt:
      return ">>";
    case Tok::kTilde:
      return "~";
    case Tok::kDot:
      return ".";
    case Tok::kComma:
      return ",";
    case Tok::kEq:
      return "=";
    case Tok::kSemi:
      return ";";
    case Tok::kColon:
      return ":";
    case Tok::kLParen:
      return "(";
    case Tok::kRParen:
      return ")";
    case Tok::kLBrack:
      return "[";
    case Tok::kRBrack:
      return "]";
    case Tok::kLBrace:
      return "{";
    case Tok::kRBrace:
      return "}";
    case Tok::kLt:
      return "<";
    case Tok::kGt:
      return ">";
    case Tok::kGe:
      return ">=";
    case Tok::kLe:
      return "<=";
    case Tok::kEqEq:
      return "==";
    case Tok::kNe:
      return "!=";
    case Tok::kPlusEq:
      return "+=";
    case Tok::kMinusEq:
      return "-=";
    case Tok::kStarEq:
      return "*=";
    case Tok::kSlashEq:
      return "/=";
    case Tok::kSlashSlashEq:
      return "//=";
    case Tok::kPercentEq:
      return "%=";
    case Tok::kAmpEq:
      return "&=";
    case Tok::kPipeEq:
      return "|=";
    case Tok::kCaretEq:
      return "^=";
    case Tok::kLtLtEq:
      return "<<=";
    case Tok::kGtGtEq:
      return ">>=";
    case Tok::kStarStar:
      return "**";
  }
  return "?";
}

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

namespace {

struct SyntaxError {
  Pos pos;
  std::string msg;
};

struct Token {
  Tok kind = Tok::kEof;
  Pos pos;
  std::string text;  // identifier name or decoded string
  Value value;       // int/float literal
};


class Scanner {
 public:
  explicit Scanner(std::string_view src) : src_(src) { indents_.push_back(0); }

  Token Next() {
    if (pending_outdents_ > 0) {
      pending_outdents_--;
      Token t;
      t.kind = Tok::kOutdent;
      t.pos = Here();
      return t;
    }
    if (pending_indent_) {
      pending_indent_ = false;
      Token t;
      t.kind = Tok::kIndent;
      t.pos = Here();
      return t;
    }
    for (;;) {
      if (at_line_start_ && depth_ == 0) {
        at_line_start_ = false;
        // Measure indentation; skip blank and comment-only lines.
        int col = 0;
        size_t p = i_;
        while (p < src_.size() && (src_[p] == ' ' || src_[p] == '\t')) {
          col = src_[p] == '\t' ? (col / 8 + 1) * 8 : col + 1;
          p++;
        }
        if (p >= src_.size()) {
          Advance(p - i_);
          break;  // EOF handling below
        }
        if (src_[p] == '\n' || src_[p] == '#' || src_[p] == '\r') {
          Advance(p - i_);
          SkipToEol();
          if (i_ < src_.size()) {
            Advance(1);
            at_line_start_ = true;
          }
          continue;
        }
        if (src_[p] == '\\' && p + 1 < src_.size() && src_[p + 1] == '\n') {
          // A line that begins with a continuation: treat as blank.
        }
        Advance(p - i_);
        if (col > indents_.back()) {
          indents_.push_back(col);
          Token t;
          t.kind = Tok::kIndent;
          t.pos = Here();
          return t;
        }
        if (col < indents_.back()) {
          int n = 0;
          while (col < indents_.back()) {
            indents_.pop_back();
            n++;
          }
          if (col != indents_.back())
            throw SyntaxError{
                Here(), "unindent does not match any outer indentation level"};
          pending_outdents_ = n - 1;
          Token t;
          t.kind = Tok::kOutdent;
          t.pos = Here();
          return t;
        }
      }
      // Skip whitespace, comments, and line continuations.
      while (i_ < src_.size()) {
        char c = src_[i_];
        if (c == ' ' || c == '\t' || c == '\r') {
          Advance(1);
        } else if (c == '#') {
          SkipToEol();
        } else if (c == '\\') {
          if (i_ + 1 < src_.size() && src_[i_ + 1] == '\n') {
            Advance(2);
          } else if (i_ + 2 < src_.size() && src_[i_ + 1] == '\r' &&
                     src_[i_ + 2] == '\n') {
            Advance(3);
          } else {
            throw SyntaxError{Here(), "unexpected input character '\\'"};
          }
        } else if (c == '\n' && depth_ > 0) {
          Advance(1);
        } else {
          break;
        }
      }
      break;
    }
    Token t;
    t.pos = Here();
    if (i_ >= src_.size()) {
      if (!last_was_newline_ && emitted_any_ && depth_ == 0) {
        last_was_newline_ = true;
        t.kind = Tok::kNewline;
        return t;
      }
      if (indents_.size() > 1) {
        indents_.pop_back();
        t.kind = Tok::kOutdent;
        return t;
      }
      t.kind = Tok::kEof;
      return t;
    }
    emitted_any_ = true;
    last_was_newline_ = false;
    char c = src_[i_];
    if (c == '\n') {
      Advance(1);
      at_line_start_ = true;
      last_was_newline_ = true;
      t.kind = Tok::kNewline;
      return t;
    }
    if (IsIdentStart(c)) {
      // String prefixes.
      if ((c == 'r' || c == 'b' || c == 'R' || c == 'B') &&
          i_ + 1 < src_.size()) {
        char d = src_[i_ + 1];
        if (d == '"' || d == '\'')
          return ScanString(t, c == 'r' || c == 'R', c == 'b' || c == 'B', 1);
        if (i_ + 2 < src_.size() &&
            (src_[i_ + 2] == '"' || src_[i_ + 2] == '\'')) {
          bool rb = (c == 'r' || c == 'R') && (d == 'b' || d == 'B');
          bool br = (c == 'b' || c == 'B') && (d == 'r' || d == 'R');
          if (rb || br) return ScanString(t, true, true, 2);
        }
      }
      size_t start = i_;
      while (i_ < src_.size() &&
             (IsIdentStart(src_[i_]) || (src_[i_] >= '0' && src_[i_] <= '9')))
        Advance(1);
      t.text = std::string(src_.substr(start, i_ - start));
      t.kind = Keyword(t.text, t.pos);
      return t;
    }
    if ((c >= '0' && c <= '9') ||
        (c == '.' && i_ + 1 < src_.size() && src_[i_ + 1] >= '0' &&
         src_[i_ + 1] <= '9')) {
      return ScanNumber(t);
    }
    if (c == '"' || c == '\'') return ScanString(t, false, false, 0);
    auto two = [&](char a, char b) {
      return c == a && i_ + 1 < src_.size() && src_[i_ + 1] == b;
    };
    auto three = [&](const char* s) { return src_.substr(i_, 3) == s; };
    auto op = [&](Tok k, int n) {
      Advance(n);
      t.kind = k;
      return t;
    };
    if (three("//=")) return op(Tok::kSlashSlashEq, 3);
    if (three("<<=")) return op(Tok::kLtLtEq, 3);
    if (three(">>=")) return op(Tok::kGtGtEq, 3);
    if (two('/', '/')) return op(Tok::kSlashSlash, 2);
    if (two('<', '<')) return op(Tok::kLtLt, 2);
    if (two('>', '>')) return op(Tok::kGtGt, 2);
    if (two('*', '*')) return op(Tok::kStarStar, 2);
    if (two('<', '=')) return op(Tok::kLe, 2);
    if (two('>', '=')) return op(Tok::kGe, 2);
    if (two('=', '=')) return op(Tok::kEqEq, 2);
    if (two('!', '=')) return op(Tok::kNe, 2);
    if (two('+', '=')) return op(Tok::kPlusEq, 2);
    if (two('-', '=')) return op(Tok::kMinusEq, 2);
    if (two('*', '=')) return op(Tok::kStarEq, 2);
    if (two('/', '=')) return op(Tok::kSlashEq, 2);
    if (two('%', '=')) return op(Tok::kPercentEq, 2);
    if (two('&', '=')) return op(Tok::kAmpEq, 2);
    if (two('|', '=')) return op(Tok::kPipeEq, 2);
    if (two('^', '=')) return op(Tok::kCaretEq, 2);
    switch (c) {
      case '+':
        return op(Tok::kPlus, 1);
      case '-':
        return op(Tok::kMinus, 1);
      case '*':
        return op(Tok::kStar, 1);
      case '/':
        return op(Tok::kSlash, 1);
      case '%':
        return op(Tok::kPercent, 1);
      case '&':
        return op(Tok::kAmp, 1);
      case '|':
        return op(Tok::kPipe, 1);
      case '^':
        return op(Tok::kCaret, 1);
      case '~':
        return op(Tok::kTilde, 1);
      case '.':
        return op(Tok::kDot, 1);
      case ',':
        return op(Tok::kComma, 1);
      case '=':
        return op(Tok::kEq, 1);
      case ';':
        return op(Tok::kSemi, 1);
      case ':':
        return op(Tok::kColon, 1);
      case '<':
        return op(Tok::kLt, 1);
      case '>':
        return op(Tok::kGt, 1);
      case '(':
      case '[':
      case '{':
        if (++depth_ > kMaxNesting)
          throw SyntaxError{Here(), "nesting too deep"};
        return op(c == '('   ? Tok::kLParen
                  : c == '[' ? Tok::kLBrack
                             : Tok::kLBrace,
                  1);
      case ')':
      case ']':
      case '}':
        if (depth_ > 0) depth_--;
        return op(c == ')'   ? Tok::kRParen
                  : c == ']' ? Tok::kRBrack
                             : Tok::kRBrace,
                  1);
      default:
        break;
    }
    std::string shown(1, c);
    if (static_cast<unsigned char>(c) < 0x20 ||
        static_cast<unsigned char>(c) >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      shown = buf;
    }
    throw SyntaxError{Here(),
                      absl::StrCat("unexpected input character '", shown, "'")};
  }

 private:
  static bool IsIdentStart(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           static_cast<unsigned char>(c) >= 0x80;
  }
  Pos Here() const { return Pos{line_, col_}; }
  void Advance(size_t n) {
    for (size_t k = 0; k < n && i_ < src_.size(); k++) {
      if (src_[i_] == '\n') {
        line_++;
        col_ = 1;
      } else {
        col_++;
      }
      i_++;
    }
  }
  void SkipToEol() {
    while (i_ < src_.size() && src_[i_] != '\n') Advance(1);
  }

  Tok Keyword(const std::string& s, Pos pos) {
    static const std::pair<const char*, Tok> kKeywords[] = {
        {"and", Tok::kAnd},
        {"break", Tok::kBreak},
        {"continue", Tok::kContinue},
        {"def", Tok::kDef},
        {"elif", Tok::kElif},
        {"else", Tok::kElse},
        {"for", Tok::kFor},
        {"if", Tok::kIf},
        {"in", Tok::kIn},
        {"lambda", Tok::kLambda},
        {"load", Tok::kLoad},
        {"not", Tok::kNot},
        {"or", Tok::kOr},
        {"pass", Tok::kPass},
        {"return", Tok::kReturn},
        {"while", Tok::kWhile},
    };
    for (auto& [k, t] : kKeywords)
      if (s == k) return t;
    static const char* kReserved[] = {
        // `assert` is allowed as an identifier (an `assert` module is
        // common in tests), like the Go implementation does.
        "as",      "async", "await",  "class",  "del", "except",
        "finally", "from",  "global", "import", "is",  "nonlocal",
        "raise",   "try",   "with",   "yield",
    };
    for (const char* r : kReserved)
      if (s == r)
        throw SyntaxError{pos, absl::StrCat("keyword ", s, " is reserved")};
    return Tok::kIdent;
  }

  Token ScanNumber(Token& t) {
    size_t start = i_;
    auto digit_run = [&](auto pred) {
      while (i_ < src_.size() && (pred(src_[i_]) || src_[i_] == '_'))
        Advance(1);
    };
    auto is_dec = [](char c) { return c >= '0' && c <= '9'; };
    char c = src_[i_];
    if (c == '0' && i_ + 1 < src_.size() &&
        (src_[i_ + 1] == 'x' || src_[i_ + 1] == 'X' || src_[i_ + 1] == 'o' ||
         src_[i_ + 1] == 'O' || src_[i_ + 1] == 'b' || src_[i_ + 1] == 'B')) {
      char p = static_cast<char>(src_[i_ + 1] | 0x20);
      int base = p == 'x' ? 16 : p == 'o' ? 8 : 2;
      Advance(2);
      size_t ds = i_;
      while (i_ < src_.size() &&
             (std::isalnum(static_cast<unsigned char>(src_[i_])) ||
              src_[i_] == '_'))
        Advance(1);
      std::string digits;
      for (size_t k = ds; k < i_; k++)
        if (src_[k] != '_') digits.push_back(src_[k]);
      auto b = BigInt::Parse(digits, base);
      if (!b)
        throw SyntaxError{
            t.pos, absl::StrCat("invalid int literal: ",
                                std::string(src_.substr(start, i_ - start)))};
      t.kind = Tok::kInt;
      t.value = Int(std::move(*b));
      return t;
    }
    bool is_float = false;
    digit_run(is_dec);
    if (i_ < src_.size() && src_[i_] == '.') {
      is_float = true;
      Advance(1);
      digit_run(is_dec);
    }
    if (i_ < src_.size() && (src_[i_] == 'e' || src_[i_] == 'E')) {
      is_float = true;
      Advance(1);
      if (i_ < src_.size() && (src_[i_] == '+' || src_[i_] == '-')) Advance(1);
      size_t es = i_;
      digit_run(is_dec);
      if (es == i_) throw SyntaxError{t.pos, "invalid float literal"};
    }
    if (i_ < src_.size() && IsIdentStart(src_[i_]))
      throw SyntaxError{
          t.pos, absl::StrCat("invalid numeric literal: ",
                              std::string(src_.substr(start, i_ + 1 - start)))};
    std::string text;
    for (size_t k = start; k < i_; k++)
      if (src_[k] != '_') text.push_back(src_[k]);
    if (is_float) {
      t.kind = Tok::kFloat;
      double d = std::strtod(text.c_str(), nullptr);
      if (std::isinf(d))
        throw SyntaxError{t.pos, "floating-point number too large"};
      t.value = Float(d);
      return t;
    }
    if (text.size() > 1 && text[0] == '0') {
      for (char d : text)
        if (d != '0')
          throw SyntaxError{
              t.pos, absl::StrCat("invalid int literal: ", text,
                                  " (obsolete form of octal literal; use 0o",
                                  text.substr(1), ")")};
    }
    auto b = BigInt::Parse(text, 10);
    if (!b) throw SyntaxError{t.pos, "invalid int literal"};
    t.kind = Tok::kInt;
    t.value = Int(std::move(*b));
    return t;
  }

  Token ScanString(Token& t, bool raw, bool bytes, int prefix) {
    Advance(prefix);
    char q = src_[i_];
    bool triple = src_.substr(i_, 3) == std::string(3, q);
    Advance(triple ? 3 : 1);
    std::string out;
    for (;;) {
      if (i_ >= src_.size())
        throw SyntaxError{t.pos, "unexpected EOF in string"};
      char c = src_[i_];
      if (c == q) {
        if (!triple) {
          Advance(1);
          break;
        }
        if (src_.substr(i_, 3) == std::string(3, q)) {
          Advance(3);
          break;
        }
        out.push_back(c);
        Advance(1);
        continue;
      }
      if (c == '\n' && !triple)
        throw SyntaxError{t.pos, "unexpected newline in string"};
      if (c == '\r' && i_ + 1 < src_.size() && src_[i_ + 1] == '\n') {
        Advance(1);
        continue;
      }
      if (c != '\\') {
        out.push_back(c);
        Advance(1);
        continue;
      }
      // Escape.
      if (i_ + 1 >= src_.size())
        throw SyntaxError{t.pos, "unexpected EOF in string"};
      char e = src_[i_ + 1];
      if (raw) {
        if (e == '\n') {
          out.append("\\\n");
          Advance(2);
          continue;
        }
        out.push_back('\\');
        out.push_back(e);
        Advance(2);
        continue;
      }
      Pos epos = Here();
      Advance(2);
      switch (e) {
        case '\n':
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '\'':
          out.push_back('\'');
          break;
        case '"':
          out.push_back('"');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'a':
          out.push_back('\a');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'v':
          out.push_back('\v');
          break;
        case '0':
        case '1':
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
        case '7': {
          int v = e - '0';
          for (int k = 0;
               k < 2 && i_ < src_.size() && src_[i_] >= '0' && src_[i_] <= '7';
               k++) {
            v = v * 8 + (src_[i_] - '0');
            Advance(1);
          }
          if (v > 255)
            throw SyntaxError{epos, "non-byte octal escape sequence"};
          if (!bytes && v > 127)
            throw SyntaxError{epos, "non-ASCII octal escape \\" +
                                        std::to_string(v) +
                                        " (use \\u or \\U for Unicode)"};
          out.push_back(static_cast<char>(v));
          break;
        }
        case 'x': {
          if (i_ + 2 > src_.size() ||
              !std::isxdigit(static_cast<unsigned char>(src_[i_])) ||
              !std::isxdigit(static_cast<unsigned char>(src_[i_ + 1])))
            throw SyntaxError{epos, "truncated escape sequence \\x"};
          int v = std::stoi(std::string(src_.substr(i_, 2)), nullptr, 16);
          Advance(2);
          if (!bytes && v > 127)
            throw SyntaxError{
                epos, "non-ASCII hex escape (use \\u or \\U for Unicode)"};
          out.push_back(static_cast<char>(v));
          break;
        }
        case 'u':
        case 'U': {
          int n = e == 'u' ? 4 : 8;
          if (i_ + n > src_.size())
            throw SyntaxError{epos, absl::StrCat("truncated escape sequence \\",
                                                 std::string(1, e))};
          uint32_t v = 0;
          for (int k = 0; k < n; k++) {
            char h = src_[i_ + k];
            if (!std::isxdigit(static_cast<unsigned char>(h)))
              throw SyntaxError{epos, absl::StrCat("invalid escape sequence \\",
                                                   std::string(1, e))};
            v = v * 16 + static_cast<uint32_t>(
                             std::isdigit(static_cast<unsigned char>(h))
                                 ? h - '0'
                                 : (h | 0x20) - 'a' + 10);
          }
          Advance(n);
          if (v > 0x10ffff || (v >= 0xd800 && v < 0xe000))
            throw SyntaxError{epos, "invalid Unicode code point"};
          AppendUtf8(&out, v);
          break;
        }
        default:
          throw SyntaxError{epos, absl::StrCat("invalid escape sequence \\",
                                               std::string(1, e))};
      }
    }
    t.kind = bytes ? Tok::kBytes : Tok::kString;
    t.text = std::move(out);
    return t;
  }

  std::string_view src_;
  size_t i_ = 0;
  int32_t line_ = 1, col_ = 1;
  int depth_ = 0;
  bool at_line_start_ = true;
  bool last_was_newline_ = true;
  bool emitted_any_ = false;
  std::vector<int> indents_;
  int pending_outdents_ = 0;
  bool pending_indent_ = false;
};

class Parser {
 public:
  Parser(std::string_view src, const Dialect& d) : sc_(src), dialect_(d) {
    Next();
  }

  Stmts ParseFile() {
    Stmts out;
    while (tok_.kind != Tok::kEof) {
      if (tok_.kind == Tok::kNewline) {
        Next();
        continue;
      }
      ParseStatement(&out);
    }
    return out;
  }

 private:
  struct DepthGuard {
    Parser* p;
    explicit DepthGuard(Parser* pp) : p(pp) {
      if (++p->nest_ > kMaxNesting)
        throw SyntaxError{p->tok_.pos, "nesting too deep"};
    }
    ~DepthGuard() { p->nest_--; }
  };

  void Next() { tok_ = sc_.Next(); }
  [[noreturn]] void Unexpected(const char* want = nullptr) {
    std::string got = TokString(tok_.kind);
    if (tok_.kind == Tok::kIdent) got = tok_.text;
    throw SyntaxError{
        tok_.pos, want
                      ? absl::StrCat("got ", got, ", want ", want)
                      : absl::StrCat("got ", got, ", want primary expression")};
  }
  Pos Expect(Tok k) {
    if (tok_.kind != k) {
      std::string got = TokString(tok_.kind);
      if (tok_.kind == Tok::kIdent) got = tok_.text;
      throw SyntaxError{tok_.pos,
                        absl::StrCat("got ", got, ", want ", TokString(k))};
    }
    Pos p = tok_.pos;
    Next();
    return p;
  }

  void ParseStatement(Stmts* out) {
    DepthGuard g(this);
    switch (tok_.kind) {
      case Tok::kDef:
        out->push_back(ParseDef());
        return;
      case Tok::kIf:
        out->push_back(ParseIf());
        return;
      case Tok::kFor: {
        auto s = std::make_unique<ForStmt>(tok_.pos);
        Next();
        s->vars = ParseLoopVars();
        Expect(Tok::kIn);
        s->x = ParseExpression();
        Expect(Tok::kColon);
        s->body = ParseSuite();
        out->push_back(std::move(s));
        return;
      }
      case Tok::kWhile: {
        auto s = std::make_unique<WhileStmt>(tok_.pos);
        if (!dialect_.allow_while)
          throw SyntaxError{tok_.pos, "dialect does not support while loops"};
        Next();
        s->cond = ParseTest();
        Expect(Tok::kColon);
        s->body = ParseSuite();
        out->push_back(std::move(s));
        return;
      }
      default:
        ParseSimpleStmt(out);
    }
  }

  StmtP ParseDef() {
    auto s = std::make_unique<DefStmt>(tok_.pos);
    Next();
    if (tok_.kind != Tok::kIdent) Unexpected("identifier");
    s->name = std::make_unique<IdentExpr>(tok_.pos, tok_.text);
    auto fn = std::make_shared<FuncDecl>();
    fn->name = tok_.text;
    fn->pos = s->pos;
    Next();
    Expect(Tok::kLParen);
    ParseParams(fn.get(), Tok::kRParen);
    Expect(Tok::kRParen);
    Expect(Tok::kColon);
    fn->body = ParseSuite();
    s->fn = std::move(fn);
    return s;
  }

  void ParseParams(FuncDecl* fn, Tok end) {
    while (tok_.kind != end) {
      Param p;
      p.pos = tok_.pos;
      if (tok_.kind == Tok::kStar) {
        Next();
        p.kind = Param::kStar;
        if (tok_.kind == Tok::kIdent) {
          p.name = std::make_unique<IdentExpr>(tok_.pos, tok_.text);
          Next();
        }
      } else if (tok_.kind == Tok::kStarStar) {
        Next();
        p.kind = Param::kStarStar;
        if (tok_.kind != Tok::kIdent) Unexpected("identifier");
        p.name = std::make_unique<IdentExpr>(tok_.pos, tok_.text);
        Next();
      } else {
        if (tok_.kind != Tok::kIdent) Unexpected("parameter");
        p.name = std::make_unique<IdentExpr>(tok_.pos, tok_.text);
        Next();
        p.kind = Param::kPlain;
        if (tok_.kind == Tok::kEq) {
          Next();
          p.kind = Param::kDefault;
          p.dflt = ParseTest();
        }
      }
      fn->params.push_back(std::move(p));
      if (tok_.kind != Tok::kComma) break;
      Next();
    }
  }

  StmtP ParseIf() {
    auto s = std::make_unique<IfStmt>(tok_.pos);
    Next();
    s->cond = ParseTest();
    Expect(Tok::kColon);
    s->then = ParseSuite();
    if (tok_.kind == Tok::kElif) {
      DepthGuard g(this);
      s->els.push_back(ParseIf());  // elif token acts like if
    } else if (tok_.kind == Tok::kElse) {
      Next();
      Expect(Tok::kColon);
      s->els = ParseSuite();
    }
    return s;
  }

  Stmts ParseSuite() {
    Stmts out;
    if (tok_.kind == Tok::kNewline) {
      Next();
      if (tok_.kind != Tok::kIndent) Unexpected("indent");
      Next();
      while (tok_.kind != Tok::kOutdent && tok_.kind != Tok::kEof) {
        if (tok_.kind == Tok::kNewline) {
          Next();
          continue;
        }
        ParseStatement(&out);
      }
      if (tok_.kind == Tok::kOutdent) Next();
      return out;
    }
    ParseSimpleStmt(&out);
    return out;
  }

  void ParseSimpleStmt(Stmts* out) {
    for (;;) {
      out->push_back(ParseSmallStmt());
      if (tok_.kind != Tok::kSemi) break;
      Next();
      if (tok_.kind == Tok::kNewline || tok_.kind == Tok::kEof) break;
    }
    if (tok_.kind == Tok::kEof) return;
    Expect(Tok::kNewline);
  }

  StmtP ParseSmallStmt() {
    Pos pos = tok_.pos;
    switch (tok_.kind) {
      case Tok::kReturn: {
        auto s = std::make_unique<ReturnStmt>(pos);
        Next();
        if (tok_.kind != Tok::kNewline && tok_.kind != Tok::kSemi &&
            tok_.kind != Tok::kEof)
          s->result = ParseExpression();
        return s;
      }
      case Tok::kBreak:
        Next();
        return std::make_unique<Stmt>(SK::kBreak, pos);
      case Tok::kContinue:
        Next();
        return std::make_unique<Stmt>(SK::kContinue, pos);
      case Tok::kPass:
        Next();
        return std::make_unique<Stmt>(SK::kPass, pos);
      case Tok::kLoad:
        return ParseLoad();
      default:
        break;
    }
    ExprP x = ParseExpression();
    switch (tok_.kind) {
      case Tok::kEq:
      case Tok::kPlusEq:
      case Tok::kMinusEq:
      case Tok::kStarEq:
      case Tok::kSlashEq:
      case Tok::kSlashSlashEq:
      case Tok::kPercentEq:
      case Tok::kAmpEq:
      case Tok::kPipeEq:
      case Tok::kCaretEq:
      case Tok::kLtLtEq:
      case Tok::kGtGtEq: {
        auto s = std::make_unique<AssignStmt>(pos);
        s->op = tok_.kind;
        s->op_pos = tok_.pos;
        Next();
        s->lhs = std::move(x);
        s->rhs = ParseExpression();
        CheckAssignTarget(s->lhs.get(), s->op != Tok::kEq);
        return s;
      }
      default:
        return std::make_unique<ExprStmt>(pos, std::move(x));
    }
  }

  void CheckAssignTarget(Expr* e, bool augmented) {
    switch (e->kind) {
      case EK::kIdent:
      case EK::kIndex:
      case EK::kDot:
        return;
      case EK::kList:
      case EK::kTuple:
        if (augmented)
          throw SyntaxError{
              e->pos, absl::StrCat("cannot perform augmented assignment on ",
                                   e->kind == EK::kList ? "list" : "tuple",
                                   " expression")};
        for (auto& x : static_cast<ListExpr*>(e)->elems)
          CheckAssignTarget(x.get(), false);
        return;
      default: {
        const char* what = "expression";
        switch (e->kind) {
          case EK::kLiteral:
            what = "literal";
            break;
          case EK::kCall:
            what = "function call";
            break;
          case EK::kBinary:
            what = "binary expression";
            break;
          case EK::kUnary:
            what = "unary expression";
            break;
          case EK::kDict:
            what = "dict expression";
            break;
          case EK::kComp:
            what = "comprehension";
            break;
          case EK::kSlice:
            what = "slice expression";
            break;
          default:
            break;
        }
        throw SyntaxError{e->pos, absl::StrCat("cannot assign to ", what)};
      }
    }
  }

  StmtP ParseLoad() {
    auto s = std::make_unique<LoadStmt>(tok_.pos);
    Next();
    Expect(Tok::kLParen);
    if (tok_.kind != Tok::kString) Unexpected("string literal");
    s->module = tok_.text;
    Next();
    while (tok_.kind == Tok::kComma) {
      Next();
      if (tok_.kind == Tok::kRParen) break;
      if (tok_.kind == Tok::kIdent) {
        auto id = std::make_unique<IdentExpr>(tok_.pos, tok_.text);
        Next();
        Expect(Tok::kEq);
        if (tok_.kind != Tok::kString) Unexpected("string literal");
        s->from.push_back(tok_.text);
        s->from_pos.push_back(tok_.pos);
        s->to.push_back(std::move(id));
        Next();
      } else if (tok_.kind == Tok::kString) {
        if (tok_.text.empty() ||
            !(std::isalpha(static_cast<unsigned char>(tok_.text[0])) ||
              tok_.text[0] == '_'))
          throw SyntaxError{
              tok_.pos,
              absl::StrCat("load: invalid identifier \"", tok_.text, "\"")};
        s->from.push_back(tok_.text);
        s->from_pos.push_back(tok_.pos);
        s->to.push_back(std::make_unique<IdentExpr>(tok_.pos, tok_.text));
        Next();
      } else {
        Unexpected("string literal or identifier");
      }
    }
    Expect(Tok::kRParen);
    if (s->to.empty())
      throw SyntaxError{s->pos, "load statement must import at least 1 symbol"};
    return s;
  }

  // LoopVariables = PrimaryExpr {',' PrimaryExpr}
  ExprP ParseLoopVars() {
    Pos pos = tok_.pos;
    ExprP first = ParsePrimaryWithSuffix();
    if (tok_.kind != Tok::kComma) {
      CheckAssignTarget(first.get(), false);
      return first;
    }
    auto t = std::make_unique<ListExpr>(EK::kTuple, pos);
    t->elems.push_back(std::move(first));
    while (tok_.kind == Tok::kComma) {
      Next();
      if (tok_.kind == Tok::kIn) break;
      t->elems.push_back(ParsePrimaryWithSuffix());
    }
    CheckAssignTarget(t.get(), false);
    return t;
  }

  // Expression = Test {',' Test} (a tuple if there is a comma)
  ExprP ParseExpression() {
    Pos pos = tok_.pos;
    ExprP x = ParseTest();
    if (tok_.kind != Tok::kComma) return x;
    auto t = std::make_unique<ListExpr>(EK::kTuple, pos);
    t->elems.push_back(std::move(x));
    while (tok_.kind == Tok::kComma) {
      Next();
      if (!StartsExpr()) break;
      t->elems.push_back(ParseTest());
    }
    return t;
  }

  bool StartsExpr() const {
    switch (tok_.kind) {
      case Tok::kIdent:
      case Tok::kInt:
      case Tok::kFloat:
      case Tok::kString:
      case Tok::kBytes:
      case Tok::kLParen:
      case Tok::kLBrack:
      case Tok::kLBrace:
      case Tok::kMinus:
      case Tok::kPlus:
      case Tok::kTilde:
      case Tok::kNot:
      case Tok::kLambda:
        return true;
      default:
        return false;
    }
  }

  ExprP ParseTest() {
    DepthGuard g(this);
    if (tok_.kind == Tok::kLambda) return ParseLambda(true);
    Pos pos = tok_.pos;
    ExprP x = ParseBinary(0);
    if (tok_.kind == Tok::kIf) {
      auto c = std::make_unique<CondExpr>(tok_.pos);
      Next();
      c->cond = ParseBinary(0);
      if (tok_.kind != Tok::kElse)
        throw SyntaxError{tok_.pos,
                          "conditional expression without else clause"};
      Next();
      c->then = std::move(x);
      c->els = ParseTest();
      (void)pos;
      return c;
    }
    return x;
  }

  ExprP ParseTestNoCond() {
    DepthGuard g(this);
    if (tok_.kind == Tok::kLambda) return ParseLambda(false);
    return ParseBinary(0);
  }

  ExprP ParseLambda(bool allow_cond) {
    auto l = std::make_unique<LambdaExpr>(tok_.pos);
    Next();
    auto fn = std::make_shared<FuncDecl>();
    fn->name = "lambda";
    fn->pos = l->pos;
    ParseParams(fn.get(), Tok::kColon);
    Expect(Tok::kColon);
    Pos bpos = tok_.pos;
    auto ret = std::make_unique<ReturnStmt>(bpos);
    ret->result = allow_cond ? ParseTest() : ParseTestNoCond();
    fn->body.push_back(std::move(ret));
    l->fn = std::move(fn);
    return l;
  }

  static int Precedence(Tok t) {
    switch (t) {
      case Tok::kOr:
        return 1;
      case Tok::kAnd:
        return 2;
      // 3: not
      case Tok::kEqEq:
      case Tok::kNe:
      case Tok::kLt:
      case Tok::kGt:
      case Tok::kLe:
      case Tok::kGe:
      case Tok::kIn:
      case Tok::kNotIn:
        return 4;
      case Tok::kPipe:
        return 5;
      case Tok::kCaret:
        return 6;
      case Tok::kAmp:
        return 7;
      case Tok::kLtLt:
      case Tok::kGtGt:
        return 8;
      case Tok::kPlus:
      case Tok::kMinus:
        return 9;
      case Tok::kStar:
      case Tok::kSlash:
      case Tok::kSlashSlash:
      case Tok::kPercent:
        return 10;
      default:
        return -1;
    }
  }

  // Current token as a binary operator (handles "not in").
  Tok PeekBinop() {
    if (tok_.kind == Tok::kNot) {
      // "not in" needs a lookahead: the scanner gives us tokens one by one,
      // so we record it and resolve when consuming.
      return Tok::kNotIn;
    }
    return tok_.kind;
  }

  ExprP ParseBinary(int min_prec) {
    DepthGuard g(this);
    ExprP x;
    if (min_prec <= 3 && tok_.kind == Tok::kNot) {
      Pos pos = tok_.pos;
      Next();
      ExprP operand = ParseBinary(3);
      x = std::make_unique<UnaryExpr>(pos, Tok::kNot, std::move(operand));
    } else {
      x = ParseUnary();
    }
    for (;;) {
      Tok op = PeekBinop();
      int prec = Precedence(op);
      if (prec < 0 || prec <= min_prec - 1 || prec < min_prec) break;
      Pos pos = tok_.pos;
      if (op == Tok::kNotIn) {
        Next();
        if (tok_.kind != Tok::kIn) Unexpected("in");
      }
      Next();
      ExprP y = ParseBinary(prec + 1);
      if (prec == 4 && Precedence(PeekBinop()) == 4)
        throw SyntaxError{tok_.pos,
                          absl::StrCat("operator ", TokString(PeekBinop()),
                                       " is not associative; use parentheses")};
      x = std::make_unique<BinaryExpr>(pos, op, std::move(x), std::move(y));
      (void)g;
    }
    return x;
  }

  ExprP ParseUnary() {
    DepthGuard g(this);
    if (tok_.kind == Tok::kMinus || tok_.kind == Tok::kPlus ||
        tok_.kind == Tok::kTilde) {
      Pos pos = tok_.pos;
      Tok op = tok_.kind;
      Next();
      ExprP x = ParseUnary();
      return std::make_unique<UnaryExpr>(pos, op, std::move(x));
    }
    return ParsePrimaryWithSuffix();
  }

  ExprP ParsePrimaryWithSuffix() {
    DepthGuard g(this);
    ExprP x = ParseOperand();
    for (;;) {
      if (tok_.kind == Tok::kDot) {
        Pos pos = tok_.pos;
        Next();
        if (tok_.kind != Tok::kIdent) Unexpected("identifier");
        x = std::make_unique<DotExpr>(pos, std::move(x), tok_.text);
        Next();
      } else if (tok_.kind == Tok::kLParen) {
        x = ParseCall(std::move(x));
      } else if (tok_.kind == Tok::kLBrack) {
        Pos pos = tok_.pos;
        Next();
        ExprP lo, hi, step;
        bool slice = false;
        if (tok_.kind != Tok::kColon) lo = ParseExpression();
        if (tok_.kind == Tok::kColon) {
          slice = true;
          Next();
          if (tok_.kind != Tok::kColon && tok_.kind != Tok::kRBrack)
            hi = ParseTest();
          if (tok_.kind == Tok::kColon) {
            Next();
            if (tok_.kind != Tok::kRBrack) step = ParseTest();
          }
        }
        Expect(Tok::kRBrack);
        if (slice) {
          auto s = std::make_unique<SliceExpr>(pos);
          s->x = std::move(x);
          s->lo = std::move(lo);
          s->hi = std::move(hi);
          s->step = std::move(step);
          x = std::move(s);
        } else {
          auto ix = std::make_unique<IndexExpr>(pos);
          ix->x = std::move(x);
          ix->index = std::move(lo);
          x = std::move(ix);
        }
      } else {
        return x;
      }
      if (++suffixes_ > 100000)
        throw SyntaxError{tok_.pos, "expression too long"};
    }
  }

  ExprP ParseCall(ExprP fn) {
    auto c = std::make_unique<CallExpr>(tok_.pos);
    c->fn = std::move(fn);
    Next();
    bool seen_named = false, seen_star = false, seen_starstar = false;
    while (tok_.kind != Tok::kRParen) {
      CallArg a;
      a.pos = tok_.pos;
      if (tok_.kind == Tok::kStar) {
        Next();
        a.kind = CallArg::kStar;
        a.value = ParseTest();
        if (seen_starstar)
          throw SyntaxError{a.pos, "*args may not follow **kwargs"};
        if (seen_star) throw SyntaxError{a.pos, "multiple *args not allowed"};
        seen_star = true;
      } else if (tok_.kind == Tok::kStarStar) {
        Next();
        a.kind = CallArg::kStarStar;
        a.value = ParseTest();
        if (seen_starstar)
          throw SyntaxError{a.pos, "multiple **kwargs not allowed"};
        seen_starstar = true;
      } else {
        ExprP x = ParseTest();
        if (tok_.kind == Tok::kEq) {
          if (x->kind != EK::kIdent)
            throw SyntaxError{x->pos,
                              "keyword argument must have form name=expr"};
          Next();
          a.kind = CallArg::kNamed;
          a.name = static_cast<IdentExpr*>(x.get())->name;
          a.name_str = Str(a.name);
          Freeze(a.name_str);
          a.value = ParseTest();
          if (seen_starstar)
            throw SyntaxError{a.pos,
                              "keyword argument may not follow **kwargs"};
          for (auto& o : c->args)
            if (o.kind == CallArg::kNamed && o.name == a.name)
              throw SyntaxError{a.pos, absl::StrCat("keyword argument \"",
                                                    a.name, "\" is repeated")};
          seen_named = true;
        } else {
          a.kind = CallArg::kPositional;
          a.value = std::move(x);
          if (seen_starstar)
            throw SyntaxError{a.pos,
                              "positional argument may not follow **kwargs"};
          if (seen_star)
            throw SyntaxError{a.pos,
                              "positional argument may not follow *args"};
          if (seen_named)
            throw SyntaxError{a.pos,
                              "positional argument may not follow named"};
        }
      }
      c->args.push_back(std::move(a));
      if (tok_.kind != Tok::kComma) break;
      Next();
    }
    Expect(Tok::kRParen);
    for (auto& a : c->args) {
      if (a.kind == CallArg::kPositional && c->simple)
        c->npositional++;
      else
        c->simple = false;
    }
    return c;
  }

  ExprP ParseOperand() {
    DepthGuard g(this);
    Pos pos = tok_.pos;
    switch (tok_.kind) {
      case Tok::kIdent: {
        auto id = std::make_unique<IdentExpr>(pos, tok_.text);
        Next();
        return id;
      }
      case Tok::kInt:
      case Tok::kFloat: {
        Value v = std::move(tok_.value);
        Freeze(v);
        Next();
        return std::make_unique<LiteralExpr>(pos, std::move(v));
      }
      case Tok::kString:
      case Tok::kBytes: {
        Value v = tok_.kind == Tok::kString ? Str(std::move(tok_.text))
                                            : Bytes(std::move(tok_.text));
        Freeze(v);
        Next();
        return std::make_unique<LiteralExpr>(pos, std::move(v));
      }
      case Tok::kLParen: {
        Next();
        if (tok_.kind == Tok::kRParen) {
          Next();
          return std::make_unique<ListExpr>(EK::kTuple, pos);
        }
        ExprP x = ParseTest();
        if (tok_.kind == Tok::kComma) {
          auto t = std::make_unique<ListExpr>(EK::kTuple, pos);
          t->elems.push_back(std::move(x));
          while (tok_.kind == Tok::kComma) {
            Next();
            if (tok_.kind == Tok::kRParen) break;
            t->elems.push_back(ParseTest());
          }
          x = std::move(t);
        }
        Expect(Tok::kRParen);
        return x;
      }
      case Tok::kLBrack: {
        Next();
        auto l = std::make_unique<ListExpr>(EK::kList, pos);
        if (tok_.kind == Tok::kRBrack) {
          Next();
          return l;
        }
        ExprP x = ParseTest();
        if (tok_.kind == Tok::kFor) {
          auto c = std::make_unique<CompExpr>(pos, false);
          c->body = std::move(x);
          ParseCompClauses(c.get(), Tok::kRBrack);
          return c;
        }
        l->elems.push_back(std::move(x));
        while (tok_.kind == Tok::kComma) {
          Next();
          if (tok_.kind == Tok::kRBrack) break;
          l->elems.push_back(ParseTest());
        }
        Expect(Tok::kRBrack);
        return l;
      }
      case Tok::kLBrace: {
        Next();
        auto d = std::make_unique<DictExpr>(pos);
        if (tok_.kind == Tok::kRBrace) {
          Next();
          return d;
        }
        ExprP k = ParseTest();
        Expect(Tok::kColon);
        ExprP v = ParseTest();
        if (tok_.kind == Tok::kFor) {
          auto c = std::make_unique<CompExpr>(pos, true);
          c->body = std::move(k);
          c->value = std::move(v);
          ParseCompClauses(c.get(), Tok::kRBrace);
          return c;
        }
        d->entries.emplace_back(std::move(k), std::move(v));
        while (tok_.kind == Tok::kComma) {
          Next();
          if (tok_.kind == Tok::kRBrace) break;
          ExprP k2 = ParseTest();
          Expect(Tok::kColon);
          ExprP v2 = ParseTest();
          d->entries.emplace_back(std::move(k2), std::move(v2));
        }
        Expect(Tok::kRBrace);
        return d;
      }
      default:
        Unexpected();
    }
  }

  void ParseCompClauses(CompExpr* c, Tok end) {
    while (tok_.kind != end) {
      CompClause cl;
      cl.pos = tok_.pos;
      if (tok_.kind == Tok::kFor) {
        Next();
        cl.target = ParseLoopVars();
        Expect(Tok::kIn);
        cl.expr = ParseTestNoCond();
      } else if (tok_.kind == Tok::kIf) {
        Next();
        cl.is_if = true;
        cl.expr = ParseTestNoCond();
      } else {
        Unexpected(
            absl::StrCat("'for', 'if' or '", TokString(end), "'").c_str());
      }
      c->clauses.push_back(std::move(cl));
    }
    Next();
  }

  Scanner sc_;
  Token tok_;
  const Dialect& dialect_;
  int nest_ = 0;
  int suffixes_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<File>> Parse(std::string_view filename,
                                            std::string_view src,
                                            const Dialect& dialect) {
  auto f = std::make_unique<File>();
  f->filename = std::string(filename);
  try {
    Parser p(src, dialect);
    f->stmts = p.ParseFile();
  } catch (const SyntaxError& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        std::string(filename), ":", e.pos.line, ":", e.pos.col, ": ", e.msg));
  } catch (const EvalError& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(filename), ": ", e.msg));
  }
  return f;
}

absl::StatusOr<std::vector<Tok>> ScanForTest(std::string_view src) {
  std::vector<Tok> out;
  try {
    Scanner s(src);
    for (int i = 0; i < 100000; i++) {
      Token t = s.Next();
      out.push_back(t.kind);
      if (t.kind == Tok::kEof) break;
    }
  } catch (const SyntaxError& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(e.pos.line, ":", e.pos.col, ": ", e.msg));
  }
  return out;
}

}  // namespace fault::starlark
