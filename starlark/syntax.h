// Starlark syntax: tokens, the abstract syntax tree, the scanner+parser and
// the static resolver. The evaluator (interp.cc) walks the resolved tree.
#ifndef FAULT_STARLARK_SYNTAX_H_
#define FAULT_STARLARK_SYNTAX_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "starlark/value.h"

namespace fault::starlark {

struct Pos {
  int32_t line = 0;
  int32_t col = 0;
};

enum class Tok : uint8_t {
  kEof,
  kNewline,
  kIndent,
  kOutdent,
  kIdent,
  kInt,
  kFloat,
  kString,
  kBytes,
  // keywords
  kAnd,
  kBreak,
  kContinue,
  kDef,
  kElif,
  kElse,
  kFor,
  kIf,
  kIn,
  kLambda,
  kLoad,
  kNot,
  kNotIn,
  kOr,
  kPass,
  kReturn,
  kWhile,
  // punctuation
  kPlus,
  kMinus,
  kStar,
  kSlash,
  kSlashSlash,
  kPercent,
  kAmp,
  kPipe,
  kCaret,
  kLtLt,
  kGtGt,
  kTilde,
  kDot,
  kComma,
  kEq,
  kSemi,
  kColon,
  kLParen,
  kRParen,
  kLBrack,
  kRBrack,
  kLBrace,
  kRBrace,
  kLt,
  kGt,
  kGe,
  kLe,
  kEqEq,
  kNe,
  kPlusEq,
  kMinusEq,
  kStarEq,
  kSlashEq,
  kSlashSlashEq,
  kPercentEq,
  kAmpEq,
  kPipeEq,
  kCaretEq,
  kLtLtEq,
  kGtGtEq,
  kStarStar,
};
const char* TokString(Tok t);

// Where a resolved name lives.
enum class Scope : uint8_t {
  kUndefined,
  kLocal,        // slot in the frame
  kCell,         // slot in the frame holding a CellObj (captured by a closure)
  kFree,         // index into the function's captured cells
  kGlobal,       // module global slot
  kPredeclared,  // host-supplied name (index into predeclared values)
  kUniversal,    // builtin (index into the universe)
};

enum class EK : uint8_t {
  kIdent,
  kLiteral,
  kList,
  kTuple,
  kDict,
  kComp,
  kUnary,
  kBinary,
  kCond,
  kIndex,
  kSlice,
  kDot,
  kCall,
  kLambda,
};

struct Expr {
  Expr(EK k, Pos p) : kind(k), pos(p) {}
  virtual ~Expr() = default;
  EK kind;
  Pos pos;
};
using ExprP = std::unique_ptr<Expr>;

struct IdentExpr : Expr {
  IdentExpr(Pos p, std::string n) : Expr(EK::kIdent, p), name(std::move(n)) {}
  std::string name;
  Scope scope = Scope::kUndefined;
  int32_t index = -1;
};
struct LiteralExpr : Expr {
  LiteralExpr(Pos p, Value v) : Expr(EK::kLiteral, p), value(std::move(v)) {}
  Value value;
};
struct ListExpr : Expr {  // list or tuple display
  ListExpr(EK k, Pos p) : Expr(k, p) {}
  std::vector<ExprP> elems;
};
struct DictExpr : Expr {
  explicit DictExpr(Pos p) : Expr(EK::kDict, p) {}
  std::vector<std::pair<ExprP, ExprP>> entries;
};
struct CompClause {
  bool is_if = false;
  Pos pos;
  ExprP target;  // for: loop variables
  ExprP expr;    // for: iterable; if: condition
};
struct CompExpr : Expr {
  CompExpr(Pos p, bool d) : Expr(EK::kComp, p), dict(d) {}
  bool dict;
  ExprP body;   // list element, or dict key
  ExprP value;  // dict value
  std::vector<CompClause> clauses;
};
struct UnaryExpr : Expr {
  UnaryExpr(Pos p, Tok o, ExprP e)
      : Expr(EK::kUnary, p), op(o), x(std::move(e)) {}
  Tok op;
  ExprP x;
};
struct BinaryExpr : Expr {
  BinaryExpr(Pos p, Tok o, ExprP a, ExprP b)
      : Expr(EK::kBinary, p), op(o), x(std::move(a)), y(std::move(b)) {}
  Tok op;
  ExprP x, y;
};
struct CondExpr : Expr {
  explicit CondExpr(Pos p) : Expr(EK::kCond, p) {}
  ExprP cond, then, els;
};
struct IndexExpr : Expr {
  explicit IndexExpr(Pos p) : Expr(EK::kIndex, p) {}
  ExprP x, index;
};
struct SliceExpr : Expr {
  explicit SliceExpr(Pos p) : Expr(EK::kSlice, p) {}
  ExprP x, lo, hi, step;
};
struct DotExpr : Expr {
  DotExpr(Pos p, ExprP e, std::string n)
      : Expr(EK::kDot, p), x(std::move(e)), name(std::move(n)) {}
  ExprP x;
  std::string name;
  // Method lookup cache for x.name(...): a MethodEntry* (see interp.h).
  mutable std::atomic<const void*> method_cache{nullptr};
};
struct CallArg {
  enum Kind : uint8_t { kPositional, kNamed, kStar, kStarStar } kind;
  Pos pos;
  std::string name;
  Value name_str;
  ExprP value;
};
struct CallExpr : Expr {
  explicit CallExpr(Pos p) : Expr(EK::kCall, p) {}
  ExprP fn;
  std::vector<CallArg> args;
  int npositional = 0;  // leading plain positional args
  bool simple = true;   // only plain positional args
};

struct Stmt;
using StmtP = std::unique_ptr<Stmt>;
using Stmts = std::vector<StmtP>;

struct Param {
  enum Kind : uint8_t { kPlain, kDefault, kStar, kStarStar } kind;
  Pos pos;
  std::unique_ptr<IdentExpr> name;  // null for a bare '*'
  ExprP dflt;
};

// A function body (def or lambda), annotated by the resolver.
struct FuncDecl {
  std::string name;
  Pos pos;
  std::vector<Param> params;
  Stmts body;
  // Resolver results.
  int num_params = 0;  // positional-or-named params (incl. those with defaults)
  int num_kwonly = 0;  // keyword-only params (after * or *args)
  int num_defaults = 0;  // default exprs (in param order, incl. kw-only)
  bool has_varargs = false;
  bool has_kwargs = false;
  int nlocals = 0;
  std::vector<std::string> local_names;
  std::vector<bool> local_is_cell;
  struct FreeVar {
    Scope scope;  // kCell (enclosing local cell) or kFree (enclosing free)
    int index;
    std::string name;
  };
  std::vector<FreeVar> freevars;
  std::vector<std::string> param_names;  // all params in slot order
};

struct LambdaExpr : Expr {
  explicit LambdaExpr(Pos p) : Expr(EK::kLambda, p) {}
  std::shared_ptr<FuncDecl> fn;
};

enum class SK : uint8_t {
  kExpr,
  kAssign,
  kDef,
  kIf,
  kFor,
  kWhile,
  kReturn,
  kBreak,
  kContinue,
  kPass,
  kLoad,
};

struct Stmt {
  Stmt(SK k, Pos p) : kind(k), pos(p) {}
  virtual ~Stmt() = default;
  SK kind;
  Pos pos;
};
struct ExprStmt : Stmt {
  ExprStmt(Pos p, ExprP e) : Stmt(SK::kExpr, p), x(std::move(e)) {}
  ExprP x;
};
struct AssignStmt : Stmt {
  explicit AssignStmt(Pos p) : Stmt(SK::kAssign, p) {}
  Tok op = Tok::kEq;  // kEq or an augmented operator (kPlusEq...)
  Pos op_pos;
  ExprP lhs, rhs;
};
struct DefStmt : Stmt {
  explicit DefStmt(Pos p) : Stmt(SK::kDef, p) {}
  std::unique_ptr<IdentExpr> name;
  std::shared_ptr<FuncDecl> fn;
};
struct IfStmt : Stmt {
  explicit IfStmt(Pos p) : Stmt(SK::kIf, p) {}
  ExprP cond;
  Stmts then, els;
};
struct ForStmt : Stmt {
  explicit ForStmt(Pos p) : Stmt(SK::kFor, p) {}
  ExprP vars, x;
  Stmts body;
};
struct WhileStmt : Stmt {
  explicit WhileStmt(Pos p) : Stmt(SK::kWhile, p) {}
  ExprP cond;
  Stmts body;
};
struct ReturnStmt : Stmt {
  explicit ReturnStmt(Pos p) : Stmt(SK::kReturn, p) {}
  ExprP result;
};
struct LoadStmt : Stmt {
  explicit LoadStmt(Pos p) : Stmt(SK::kLoad, p) {}
  std::string module;
  std::vector<std::unique_ptr<IdentExpr>> to;  // local names
  std::vector<std::string> from;               // names in the loaded module
  std::vector<Pos> from_pos;
};

// Options that change what the parser and resolver accept.
struct Dialect {
  bool allow_while = false;
  bool allow_recursion = false;
  bool allow_toplevel_control = false;  // if/for/while at top level
  bool allow_global_reassign = false;
  bool allow_set = true;  // the `set` builtin
};

struct File {
  std::string filename;
  Stmts stmts;
  std::shared_ptr<FuncDecl>
      toplevel;  // locals used by top-level comprehensions
  std::vector<std::string> global_names;
};

// Maximum nesting of brackets/blocks/expressions the parser accepts.
inline constexpr int kMaxNesting = 200;

// Parses a file. Errors are "file:line:col: message".
absl::StatusOr<std::unique_ptr<File>> Parse(std::string_view filename,
                                            std::string_view src,
                                            const Dialect& dialect);

// Resolves names. `is_predeclared(name)` returns the predeclared index or -1;
// `universal(name)` returns the universe index or -1.
absl::Status Resolve(File* file, const Dialect& dialect,
                     const std::function<int(std::string_view)>& predeclared,
                     const std::function<int(std::string_view)>& universal);

// Scanner exposed for tests: returns the token kinds of src (or error).
absl::StatusOr<std::vector<Tok>> ScanForTest(std::string_view src);

// Appends the UTF-8 encoding of code point `cp` (at most U+10FFFF).
void AppendUtf8(std::string* out, uint32_t cp);

}  // namespace fault::starlark

#endif  // FAULT_STARLARK_SYNTAX_H_
