// The json module.
//
// Why not nlohmann-json here (the project's JSON library elsewhere): the
// module works on Starlark values, not on a JSON tree. Encoding walks the
// values directly (ints of any size, the interpreter's own float repr,
// sorted keys, cycle detection with the path in the error). Decoding must
// keep integers of any size exact (nlohmann stores int64/uint64/double),
// build dicts and lists without an intermediate document, and report
// errors in the starlark-go form "at offset N, why"; json.indent must copy
// number and string tokens verbatim. A recursive-descent reader over the
// bytes is about as long as the glue the SAX interface would need.
#include "starlark/lib/json.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "starlark/interp.h"
#include "starlark/lib/module.h"
#include "starlark/starlark.h"
#include "starlark/syntax.h"

namespace fault::starlark {
namespace {

// Nesting deeper than this fails (both ways): it bounds the native stack
// used by the recursive encoder and reader.
constexpr int kMaxDepth = 1000;

// A byte as Go's %q prints a character: 'x', '\n', '\x01'.
std::string QuoteByte(unsigned char c) {
  switch (c) {
    case '\n':
      return "'\\n'";
    case '\r':
      return "'\\r'";
    case '\t':
      return "'\\t'";
    case '\'':
      return "'\\''";
    case '\\':
      return "'\\\\'";
    default:
      break;
  }
  if (c >= 0x20 && c < 0x7f)
    return std::string("'") + static_cast<char>(c) + "'";
  static const char kHex[] = "0123456789abcdef";
  return std::string("'\\x") + kHex[c >> 4] + kHex[c & 15] + "'";
}

// Decodes one UTF-8 sequence at s[i]. Returns its length and stores the
// code point, or returns 0 for an invalid sequence (overlong forms,
// surrogates and values above U+10FFFF are invalid).
size_t DecodeUtf8(std::string_view s, size_t i, uint32_t* cp) {
  unsigned char c = s[i];
  size_t n;
  uint32_t v, min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xe0) == 0xc0) {
    n = 2, v = c & 0x1f, min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3, v = c & 0x0f, min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4, v = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; k++) {
    unsigned char d = s[i + k];
    if ((d & 0xc0) != 0x80) return 0;
    v = (v << 6) | (d & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
  *cp = v;
  return n;
}

// ---------------------------------------------------------------- encode

// Appends s as a JSON string. Invalid UTF-8 becomes U+FFFD; control
// characters and U+2028/U+2029 (line separators to JavaScript) are escaped.
void QuoteJson(std::string* out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      out->push_back(static_cast<char>(c));
      i++;
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        i++;
        continue;
      case '\\':
        out->append("\\\\");
        i++;
        continue;
      case '\n':
        out->append("\\n");
        i++;
        continue;
      case '\r':
        out->append("\\r");
        i++;
        continue;
      case '\t':
        out->append("\\t");
        i++;
        continue;
      case '\b':
        out->append("\\b");
        i++;
        continue;
      case '\f':
        out->append("\\f");
        i++;
        continue;
      default:
        break;
    }
    if (c < 0x20) {
      out->append("\\u00");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
      i++;
      continue;
    }
    uint32_t cp;
    size_t n = DecodeUtf8(s, i, &cp);
    if (n == 0) {
      out->append("\\ufffd");
      i++;
    } else if (cp == 0x2028 || cp == 0x2029) {
      out->append(cp == 0x2028 ? "\\u2028" : "\\u2029");
      i += n;
    } else {
      out->append(s.substr(i, n));
      i += n;
    }
  }
  out->push_back('"');
}

class Encoder {
 public:
  explicit Encoder(Thread& th) : th_(th) {}

  // Appends the encoding of x; fails with the path to a bad element.
  void Emit(const Value& x) {
    if ((++values_ & 15) == 0) th_.Charge(1);
    if (x.IsSmallInt()) {
      out_.append(Repr(x));
      return;
    }
    switch (x.kind()) {
      case Kind::kNone:
        out_.append("null");
        return;
      case Kind::kBool:
        out_.append(x.as<BoolObj>()->v ? "true" : "false");
        return;
      case Kind::kInt:
        out_.append(Repr(x));
        return;
      case Kind::kFloat: {
        double d = FloatOf(x);
        if (!std::isfinite(d))
          Fail(absl::StrCat("cannot encode non-finite float ", Repr(x)));
        out_.append(Repr(x));  // always has '.' or an exponent
        return;
      }
      case Kind::kString:
        QuoteJson(&out_, StrOf(x));
        return;
      default:
        break;
    }
    PathGuard guard(this, x);
    switch (x.kind()) {
      case Kind::kDict:
        EmitDict(x);
        return;
      case Kind::kList:
      case Kind::kTuple:
      case Kind::kSet:
      case Kind::kRange:
      case Kind::kStringElems:
        EmitArray(x);
        return;
      case Kind::kHost:
        if (!x.as<HostValue>()->AttrNames().empty()) {
          EmitAttrs(x);
          return;
        }
        break;
      default:
        break;
    }
    Fail(absl::StrCat("cannot encode ", TypeName(x), " as JSON"));
  }

  std::string& out() { return out_; }

 private:
  // Tracks the containers being encoded, to detect cycles and bound depth.
  class PathGuard {
   public:
    PathGuard(Encoder* e, const Value& x) : e_(e) {
      Object* o = x.obj();
      if (std::find(e_->path_.begin(), e_->path_.end(), o) != e_->path_.end())
        Fail("cycle in JSON structure");
      if (e_->path_.size() >= kMaxDepth)
        Fail(absl::StrCat("nesting deeper than ", kMaxDepth));
      e_->th_.CheckStack();
      e_->path_.push_back(o);
    }
    ~PathGuard() { e_->path_.pop_back(); }
    PathGuard(const PathGuard&) = delete;
    PathGuard& operator=(const PathGuard&) = delete;

   private:
    Encoder* e_;
  };

  // Emits v; a failure inside is prefixed with where() (built only then).
  template <typename W>
  void Nested(const Value& v, W where) {
    try {
      Emit(v);
    } catch (EvalError& e) {
      e.msg = absl::StrCat(where(), ": ", e.msg);
      throw;
    }
  }

  void EmitDict(const Value& x) {
    std::vector<std::pair<std::string_view, Value>> items;
    DictOf(x)->t.ForEach([&](const HashTable::Entry& e) {
      if (!e.key.Is(Kind::kString))
        Fail(absl::StrCat(TypeName(x), " has ", TypeName(e.key),
                          " key, want string"));
      items.emplace_back(StrOf(e.key), e.value);
    });
    std::sort(items.begin(), items.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    out_.push_back('{');
    for (size_t i = 0; i < items.size(); i++) {
      if (i > 0) out_.push_back(',');
      QuoteJson(&out_, items[i].first);
      out_.push_back(':');
      Nested(items[i].second, [&] {
        return absl::StrCat("in ", TypeName(x), " key ",
                            Repr(Str(items[i].first)));
      });
    }
    out_.push_back('}');
  }

  void EmitArray(const Value& x) {
    out_.push_back('[');
    // Lazily (a range is not materialised); the iterator also guards the
    // list against mutation.
    Iterator it(x);
    Value e;
    for (size_t i = 0; it.Next(&e); i++) {
      if (i > 0) out_.push_back(',');
      Nested(e, [&] { return absl::StrCat("at ", TypeName(x), " index ", i); });
    }
    out_.push_back(']');
  }

  void EmitAttrs(const Value& x) {
    auto* h = x.as<HostValue>();
    std::vector<std::string> names = h->AttrNames();
    std::sort(names.begin(), names.end());
    out_.push_back('{');
    for (size_t i = 0; i < names.size(); i++) {
      Value v = h->Attr(th_, names[i]);
      if (v.IsNull())
        Fail(absl::StrCat("missing attribute ", TypeName(x), ".", names[i]));
      if (i > 0) out_.push_back(',');
      QuoteJson(&out_, names[i]);
      out_.push_back(':');
      Nested(v, [&] { return absl::StrCat("in field .", names[i]); });
    }
    out_.push_back('}');
  }

  Thread& th_;
  uint64_t values_ = 0;
  std::string out_;
  std::vector<Object*> path_;
};

std::string Encode(Thread& th, std::string_view fname, const Value& x) {
  Encoder e(th);
  try {
    e.Emit(x);
  } catch (EvalError& err) {
    err.msg = absl::StrCat(std::string(fname), ": ", err.msg);
    throw;
  }
  return std::move(e.out());
}

// ---------------------------------------------------------------- decode

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Strict RFC 8259 number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool ValidNumber(std::string_view n) {
  size_t i = 0;
  if (i < n.size() && n[i] == '-') i++;
  if (i >= n.size() || !IsDigit(n[i])) return false;
  if (n[i] == '0') {
    i++;
  } else {
    while (i < n.size() && IsDigit(n[i])) i++;
  }
  if (i < n.size() && n[i] == '.') {
    i++;
    if (i >= n.size() || !IsDigit(n[i])) return false;
    while (i < n.size() && IsDigit(n[i])) i++;
  }
  if (i < n.size() && (n[i] == 'e' || n[i] == 'E')) {
    i++;
    if (i < n.size() && (n[i] == '+' || n[i] == '-')) i++;
    if (i >= n.size() || !IsDigit(n[i])) return false;
    while (i < n.size() && IsDigit(n[i])) i++;
  }
  return i == n.size();
}

// Reads one JSON text. In value mode it builds Starlark values; in format
// mode (json.indent) it validates and writes the indented text instead.
// Errors are returned, not thrown, so that decode's `default` applies to
// them only; the step limit and cancellation still throw.
class Reader {
 public:
  Reader(Thread& th, std::string_view s) : th_(th), s_(s) {}

  // Value mode. Returns false on invalid input (see error()).
  bool Decode(Value* out) {
    if (!ParseValue(0, out)) return false;
    if (SkipSpace())
      return Error(absl::StrCat("unexpected character ", QuoteByte(s_[i_]),
                                " after value"));
    return true;
  }

  // Format mode.
  bool Indent(std::string_view prefix, std::string_view indent,
              std::string* out) {
    out_ = out;
    prefix_ = prefix;
    indent_ = indent;
    return Decode(nullptr);
  }

  // "at offset N, why"
  std::string error() const {
    return absl::StrCat("at offset ", err_offset_, ", ", err_);
  }

 private:
  bool Error(std::string why) {
    err_ = std::move(why);
    err_offset_ = i_;
    return false;
  }

  // Skips whitespace; reports whether input remains.
  bool SkipSpace() {
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return true;
      i_++;
    }
    return false;
  }

  // The next non-space byte, or 0 at the end of input (with the error set).
  bool Next(char* c) {
    if (!SkipSpace()) return Error("unexpected end of file");
    *c = s_[i_];
    return true;
  }

  void Newline(int depth) {
    out_->push_back('\n');
    out_->append(prefix_);
    for (int k = 0; k < depth; k++) out_->append(indent_);
  }

  bool ParseValue(int depth, Value* out) {
    if ((++values_ & 15) == 0) th_.Charge(1);
    char c;
    if (!Next(&c)) return false;
    switch (c) {
      case '"':
        return ParseString(out);
      case '[':
        return ParseArray(depth, out);
      case '{':
        return ParseObject(depth, out);
      case 'n':
        return Literal("null", None(), out);
      case 't':
        return Literal("true", Bool(true), out);
      case 'f':
        return Literal("false", Bool(false), out);
      default:
        if (IsDigit(c) || c == '-') return ParseNumber(out);
        return Error(absl::StrCat("unexpected character ", QuoteByte(c)));
    }
  }

  bool Literal(std::string_view word, Value v, Value* out) {
    if (s_.substr(i_, word.size()) != word)
      return Error(absl::StrCat("unexpected character ", QuoteByte(s_[i_])));
    i_ += word.size();
    if (out_ != nullptr) out_->append(word);
    if (out != nullptr) *out = std::move(v);
    return true;
  }

  bool ParseNumber(Value* out) {
    // The token is the longest run of number characters, so that "1.2.3"
    // is reported whole.
    size_t j = i_ + 1;
    bool is_float = false;
    while (j < s_.size()) {
      char c = s_[j];
      if (IsDigit(c)) {
      } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
        is_float = true;
      } else {
        break;
      }
      j++;
    }
    std::string_view num = s_.substr(i_, j - i_);
    i_ = j;
    if (!ValidNumber(num))
      return Error(absl::StrCat("invalid number: ", std::string(num)));
    if (out_ != nullptr) out_->append(num);
    if (out == nullptr) return true;
    if (is_float) {
      std::string z(num);
      double d = std::strtod(z.c_str(), nullptr);
      if (std::isinf(d))
        return Error(absl::StrCat("number out of range: ", std::string(num)));
      *out = Float(d);
      return true;
    }
    bool neg = num[0] == '-';
    std::string_view digits = neg ? num.substr(1) : num;
    if (digits.size() <= 18) {
      int64_t v = 0;
      for (char c : digits) v = v * 10 + (c - '0');
      *out = Int(neg ? -v : v);
      return true;
    }
    th_.Charge(digits.size() / 64);
    std::optional<BigInt> b = BigInt::Parse(digits, 10);
    if (!b) return Error(absl::StrCat("invalid number: ", std::string(num)));
    *out = Int(neg ? b->Neg() : *b);
    return true;
  }

  // Four hex digits at s_[k]; -1 if malformed.
  int32_t Hex4(size_t k) const {
    if (k + 4 > s_.size()) return -1;
    int32_t v = 0;
    for (size_t m = k; m < k + 4; m++) {
      char c = s_[m];
      int d;
      if (IsDigit(c)) {
        d = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        d = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        d = c - 'A' + 10;
      } else {
        return -1;
      }
      v = v * 16 + d;
    }
    return v;
  }

  bool ParseString(Value* out) {
    size_t start = i_;
    std::string r;
    size_t j = i_ + 1;
    for (;;) {
      if (j >= s_.size()) {
        i_ = start;
        return Error("unclosed string literal");
      }
      unsigned char c = s_[j];
      if (c == '"') {
        j++;
        break;
      }
      if (c < 0x20) {
        i_ = j;
        return Error(absl::StrCat("invalid character ", QuoteByte(c),
                                  " in string literal"));
      }
      if (c == '\\') {
        if (j + 1 >= s_.size()) {
          i_ = start;
          return Error("unclosed string literal");
        }
        char e = s_[j + 1];
        const char* simple = nullptr;
        switch (e) {
          case '"':
            simple = "\"";
            break;
          case '\\':
            simple = "\\";
            break;
          case '/':
            simple = "/";
            break;
          case 'b':
            simple = "\b";
            break;
          case 'f':
            simple = "\f";
            break;
          case 'n':
            simple = "\n";
            break;
          case 'r':
            simple = "\r";
            break;
          case 't':
            simple = "\t";
            break;
          default:
            break;
        }
        if (simple != nullptr) {
          r.append(simple);
          j += 2;
          continue;
        }
        if (e != 'u') {
          i_ = j;
          std::string seq = "\\";
          if (static_cast<unsigned char>(e) >= 0x20 &&
              static_cast<unsigned char>(e) < 0x7f) {
            seq.push_back(e);
          } else {
            seq = QuoteByte(e);
          }
          return Error(absl::StrCat("invalid escape sequence ", seq,
                                    " in string literal"));
        }
        int32_t u = Hex4(j + 2);
        if (u < 0) {
          i_ = j;
          return Error(
              "invalid \\u escape in string literal (want 4 hex digits)");
        }
        j += 6;
        uint32_t cp = static_cast<uint32_t>(u);
        if (cp >= 0xd800 && cp < 0xdc00) {
          // A high surrogate pairs with a following \u low surrogate;
          // unpaired halves become U+FFFD (as in Go and JavaScript).
          int32_t lo = -1;
          if (j + 1 < s_.size() && s_[j] == '\\' && s_[j + 1] == 'u')
            lo = Hex4(j + 2);
          if (lo >= 0xdc00 && lo < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            j += 6;
          } else {
            cp = 0xfffd;
          }
        } else if (cp >= 0xdc00 && cp < 0xe000) {
          cp = 0xfffd;
        }
        AppendUtf8(&r, cp);
        continue;
      }
      if (c < 0x80) {
        r.push_back(static_cast<char>(c));
        j++;
        continue;
      }
      uint32_t cp;
      size_t n = DecodeUtf8(s_, j, &cp);
      if (n == 0) {
        AppendUtf8(&r, 0xfffd);
        j++;
      } else {
        r.append(s_.substr(j, n));
        j += n;
      }
    }
    if (out_ != nullptr) out_->append(s_.substr(start, j - start));
    i_ = j;
    if (r.size() > 4096) th_.Charge(r.size() / 256);
    if (out != nullptr) *out = Str(std::move(r));
    return true;
  }

  bool Enter(int depth) {
    if (depth >= kMaxDepth)
      return Error(absl::StrCat("nesting deeper than ", kMaxDepth));
    th_.CheckStack();
    return true;
  }

  bool ParseArray(int depth, Value* out) {
    if (!Enter(depth)) return false;
    i_++;  // '['
    if (out_ != nullptr) out_->push_back('[');
    std::vector<Value> elems;
    char c;
    if (!Next(&c)) return false;
    if (c != ']') {
      if (out_ != nullptr) Newline(depth + 1);
      for (;;) {
        Value v;
        if (!ParseValue(depth + 1, out != nullptr ? &v : nullptr)) return false;
        if (out != nullptr) elems.push_back(std::move(v));
        if (!Next(&c)) return false;
        if (c == ']') break;
        if (c != ',')
          return Error(absl::StrCat("got ", QuoteByte(c), ", want ',' or ']'"));
        i_++;
        if (out_ != nullptr) {
          out_->push_back(',');
          Newline(depth + 1);
        }
      }
      if (out_ != nullptr) Newline(depth);
    }
    i_++;  // ']'
    if (out_ != nullptr) out_->push_back(']');
    if (out != nullptr) *out = NewList(std::move(elems));
    return true;
  }

  bool ParseObject(int depth, Value* out) {
    if (!Enter(depth)) return false;
    i_++;  // '{'
    if (out_ != nullptr) out_->push_back('{');
    Value dict;
    if (out != nullptr) dict = NewDict();
    char c;
    if (!Next(&c)) return false;
    if (c != '}') {
      if (out_ != nullptr) Newline(depth + 1);
      for (;;) {
        if (!Next(&c)) return false;
        if (c != '"') {
          // Report what stands there: a value of another type, or junk.
          size_t at = i_;
          Value key;
          if (!ParseValue(depth + 1, &key)) return false;
          i_ = at;
          return Error(absl::StrCat("got ", TypeName(key),
                                    " for object key, want string"));
        }
        Value key;
        if (!ParseString(out != nullptr ? &key : nullptr)) return false;
        if (!Next(&c)) return false;
        if (c != ':')
          return Error(absl::StrCat("after object key, got ", QuoteByte(c),
                                    ", want ':'"));
        i_++;
        if (out_ != nullptr) out_->append(": ");
        Value v;
        if (!ParseValue(depth + 1, out != nullptr ? &v : nullptr)) return false;
        if (out != nullptr) DictOf(dict)->t.Insert(key, std::move(v));
        if (!Next(&c)) return false;
        if (c == '}') break;
        if (c != ',')
          return Error(absl::StrCat("in object, got ", QuoteByte(c),
                                    ", want ',' or '}'"));
        i_++;
        if (out_ != nullptr) {
          out_->push_back(',');
          Newline(depth + 1);
        }
      }
      if (out_ != nullptr) Newline(depth);
    }
    i_++;  // '}'
    if (out_ != nullptr) out_->push_back('}');
    if (out != nullptr) *out = std::move(dict);
    return true;
  }

  Thread& th_;
  std::string_view s_;
  size_t i_ = 0;
  uint64_t values_ = 0;
  std::string err_;
  size_t err_offset_ = 0;
  // Format mode.
  std::string* out_ = nullptr;
  std::string_view prefix_, indent_;
};

// ---------------------------------------------------------------- builtins

// The keyword-only prefix= and indent= of indent and encode_indent, and
// exactly one positional argument.
void UnpackIndentArgs(std::string_view fname, const Args& args,
                      std::string* prefix, std::string* indent) {
  if (args.pos.size() != 1)
    Fail(absl::StrCat(std::string(fname), ": got ", args.pos.size(),
                      " arguments, want 1"));
  UnpackArgs(fname, Args{{}, args.kw},
             {{"prefix?", prefix}, {"indent?", indent}});
}

Value JsonEncode(Thread& th, const Value&, const Args& args) {
  CheckArgCount("json.encode", args, 1, 1);
  return Str(Encode(th, "json.encode", args.pos[0]));
}

Value JsonEncodeIndent(Thread& th, const Value&, const Args& args) {
  std::string prefix, indent = "\t";
  UnpackIndentArgs("json.encode_indent", args, &prefix, &indent);
  std::string s = Encode(th, "json.encode_indent", args.pos[0]);
  std::string out;
  Reader r(th, s);
  if (!r.Indent(prefix, indent, &out))
    Fail(absl::StrCat("json.encode_indent: ", r.error()));
  return Str(std::move(out));
}

Value JsonIndent(Thread& th, const Value&, const Args& args) {
  std::string prefix, indent = "\t";
  UnpackIndentArgs("json.indent", args, &prefix, &indent);
  if (!args.pos[0].Is(Kind::kString))
    Fail(absl::StrCat("json.indent: for parameter \"str\": got ",
                      TypeName(args.pos[0]), ", want string"));
  std::string out;
  Reader r(th, StrOf(args.pos[0]));
  if (!r.Indent(prefix, indent, &out))
    Fail(absl::StrCat("json.indent: ", r.error()));
  return Str(std::move(out));
}

Value JsonDecode(Thread& th, const Value&, const Args& args) {
  Value x, dflt;
  UnpackArgs("json.decode", args, {{"x", &x}, {"default?", &dflt}});
  if (args.pos.empty())  // x is positional-only
    Fail("json.decode: unexpected keyword argument \"x\"");
  if (!x.Is(Kind::kString))
    Fail(absl::StrCat("json.decode: for parameter \"x\": got ", TypeName(x),
                      ", want string"));
  Reader r(th, StrOf(x));
  Value v;
  if (!r.Decode(&v)) {
    if (!dflt.IsNull()) return dflt;
    Fail(absl::StrCat("json.decode: ", r.error()));
  }
  return v;
}

}  // namespace

Value NewJsonModule() {
  StringDict m;
  m["encode"] =
      Value::Adopt(new BuiltinObj("json.encode", JsonEncode, Value()));
  m["encode_indent"] = Value::Adopt(
      new BuiltinObj("json.encode_indent", JsonEncodeIndent, Value()));
  m["decode"] =
      Value::Adopt(new BuiltinObj("json.decode", JsonDecode, Value()));
  m["indent"] =
      Value::Adopt(new BuiltinObj("json.indent", JsonIndent, Value()));
  return NewModule("json", std::move(m));
}

}  // namespace fault::starlark
