#include "supervisor/spec/call_site.h"

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace fault::spec {
namespace sl = ::fault::starlark;

namespace {

using Calls = std::map<std::pair<int32_t, int32_t>, const sl::CallExpr*>;

void WalkStmts(const sl::Stmts& ss, Calls* out);

void WalkExpr(const sl::Expr* e, Calls* out) {
  if (e == nullptr) return;
  switch (e->kind) {
    case sl::EK::kIdent:
    case sl::EK::kLiteral:
      return;
    case sl::EK::kList:
    case sl::EK::kTuple:
      for (auto& x : static_cast<const sl::ListExpr*>(e)->elems)
        WalkExpr(x.get(), out);
      return;
    case sl::EK::kDict:
      for (auto& [k, v] : static_cast<const sl::DictExpr*>(e)->entries) {
        WalkExpr(k.get(), out);
        WalkExpr(v.get(), out);
      }
      return;
    case sl::EK::kComp: {
      auto* c = static_cast<const sl::CompExpr*>(e);
      WalkExpr(c->body.get(), out);
      WalkExpr(c->value.get(), out);
      for (auto& cl : c->clauses) {
        WalkExpr(cl.target.get(), out);
        WalkExpr(cl.expr.get(), out);
      }
      return;
    }
    case sl::EK::kUnary:
      WalkExpr(static_cast<const sl::UnaryExpr*>(e)->x.get(), out);
      return;
    case sl::EK::kBinary: {
      auto* b = static_cast<const sl::BinaryExpr*>(e);
      WalkExpr(b->x.get(), out);
      WalkExpr(b->y.get(), out);
      return;
    }
    case sl::EK::kCond: {
      auto* c = static_cast<const sl::CondExpr*>(e);
      WalkExpr(c->cond.get(), out);
      WalkExpr(c->then.get(), out);
      WalkExpr(c->els.get(), out);
      return;
    }
    case sl::EK::kIndex: {
      auto* i = static_cast<const sl::IndexExpr*>(e);
      WalkExpr(i->x.get(), out);
      WalkExpr(i->index.get(), out);
      return;
    }
    case sl::EK::kSlice: {
      auto* s = static_cast<const sl::SliceExpr*>(e);
      WalkExpr(s->x.get(), out);
      WalkExpr(s->lo.get(), out);
      WalkExpr(s->hi.get(), out);
      WalkExpr(s->step.get(), out);
      return;
    }
    case sl::EK::kDot:
      WalkExpr(static_cast<const sl::DotExpr*>(e)->x.get(), out);
      return;
    case sl::EK::kCall: {
      auto* c = static_cast<const sl::CallExpr*>(e);
      (*out)[{c->pos.line, c->pos.col}] = c;
      WalkExpr(c->fn.get(), out);
      for (auto& a : c->args) WalkExpr(a.value.get(), out);
      return;
    }
    case sl::EK::kLambda: {
      auto& fn = static_cast<const sl::LambdaExpr*>(e)->fn;
      if (fn == nullptr) return;
      for (auto& p : fn->params) WalkExpr(p.dflt.get(), out);
      WalkStmts(fn->body, out);
      return;
    }
  }
}

void WalkStmts(const sl::Stmts& ss, Calls* out) {
  for (auto& s : ss) {
    switch (s->kind) {
      case sl::SK::kExpr:
        WalkExpr(static_cast<const sl::ExprStmt*>(s.get())->x.get(), out);
        break;
      case sl::SK::kAssign: {
        auto* a = static_cast<const sl::AssignStmt*>(s.get());
        WalkExpr(a->lhs.get(), out);
        WalkExpr(a->rhs.get(), out);
        break;
      }
      case sl::SK::kDef: {
        auto& fn = static_cast<const sl::DefStmt*>(s.get())->fn;
        if (fn == nullptr) break;
        for (auto& p : fn->params) WalkExpr(p.dflt.get(), out);
        WalkStmts(fn->body, out);
        break;
      }
      case sl::SK::kIf: {
        auto* i = static_cast<const sl::IfStmt*>(s.get());
        WalkExpr(i->cond.get(), out);
        WalkStmts(i->then, out);
        WalkStmts(i->els, out);
        break;
      }
      case sl::SK::kFor: {
        auto* f = static_cast<const sl::ForStmt*>(s.get());
        WalkExpr(f->vars.get(), out);
        WalkExpr(f->x.get(), out);
        WalkStmts(f->body, out);
        break;
      }
      case sl::SK::kWhile: {
        auto* w = static_cast<const sl::WhileStmt*>(s.get());
        WalkExpr(w->cond.get(), out);
        WalkStmts(w->body, out);
        break;
      }
      case sl::SK::kReturn:
        WalkExpr(static_cast<const sl::ReturnStmt*>(s.get())->result.get(),
                 out);
        break;
      case sl::SK::kBreak:
      case sl::SK::kContinue:
      case sl::SK::kPass:
      case sl::SK::kLoad:
        break;
    }
  }
}

// Where an expression starts (a call's own position is its parenthesis, a
// binary expression's its operator).
sl::Pos StartPos(const sl::Expr* e) {
  for (;;) {
    switch (e->kind) {
      case sl::EK::kCall:
        e = static_cast<const sl::CallExpr*>(e)->fn.get();
        continue;
      case sl::EK::kDot:
        e = static_cast<const sl::DotExpr*>(e)->x.get();
        continue;
      case sl::EK::kBinary:
        e = static_cast<const sl::BinaryExpr*>(e)->x.get();
        continue;
      case sl::EK::kIndex:
        e = static_cast<const sl::IndexExpr*>(e)->x.get();
        continue;
      case sl::EK::kSlice:
        e = static_cast<const sl::SliceExpr*>(e)->x.get();
        continue;
      case sl::EK::kCond:
        e = static_cast<const sl::CondExpr*>(e)->then.get();
        continue;
      default:
        return e->pos;
    }
  }
}

// Whether the call expression could have produced these arguments.
bool Matches(const sl::CallExpr* c, const sl::Args& args) {
  size_t positional = 0, named = 0;
  bool star = false, starstar = false;
  for (auto& a : c->args) {
    switch (a.kind) {
      case sl::CallArg::kPositional:
        ++positional;
        break;
      case sl::CallArg::kNamed: {
        bool found = false;
        for (auto& [k, v] : args.kw) found = found || sl::StrOf(k) == a.name;
        if (!found) return false;
        ++named;
        break;
      }
      case sl::CallArg::kStar:
        star = true;
        break;
      case sl::CallArg::kStarStar:
        starstar = true;
        break;
    }
  }
  if (star ? positional > args.pos.size() : positional != args.pos.size())
    return false;
  return starstar ? named <= args.kw.size() : named == args.kw.size();
}

}  // namespace

const sl::CallExpr* CallIndex::Find(const sl::File* file, sl::Pos pos) {
  auto it = files_.find(file);
  if (it == files_.end()) {
    Calls calls;
    WalkStmts(file->stmts, &calls);
    it = files_.emplace(file, std::move(calls)).first;
  }
  auto c = it->second.find({pos.line, pos.col});
  return c == it->second.end() ? nullptr : c->second;
}

CallSite::CallSite(sl::Thread& th, const sl::Args& args, CallIndex* index)
    : call_("<unknown>"), npos_(args.pos.size()) {
  for (auto it = th.stack.rbegin(); it != th.stack.rend(); ++it) {
    if (it->file == nullptr) continue;
    file_ = it->file;
    call_ = Format(it->pos);
    const sl::CallExpr* c = index->Find(it->file, it->pos);
    if (c != nullptr && Matches(c, args)) expr_ = c;
    break;
  }
}

std::string CallSite::Format(sl::Pos pos) const {
  return absl::StrCat(file_->filename, ":", pos.line, ":", pos.col);
}

const sl::CallArg* CallSite::Arg(size_t i, absl::string_view name) const {
  if (expr_ == nullptr) return nullptr;
  const sl::CallArg* star = nullptr;
  const sl::CallArg* starstar = nullptr;
  size_t positional = 0;
  for (auto& a : expr_->args) {
    switch (a.kind) {
      case sl::CallArg::kPositional:
        if (star == nullptr && positional++ == i && i < npos_) return &a;
        break;
      case sl::CallArg::kNamed:
        if (!name.empty() && a.name == name) return &a;
        break;
      case sl::CallArg::kStar:
        star = &a;
        break;
      case sl::CallArg::kStarStar:
        starstar = &a;
        break;
    }
  }
  // Not written out: it came from *args or **kwargs.
  if (i < npos_) return star;
  return starstar;
}

std::string CallSite::Positional(size_t i) const {
  const sl::CallArg* a = Arg(i, "");
  return a == nullptr ? call_ : Format(a->pos);
}

std::string CallSite::Keyword(absl::string_view name) const {
  return Param(SIZE_MAX, name);
}

std::string CallSite::Param(size_t i, absl::string_view name) const {
  const sl::CallArg* a = Arg(i, name);
  return a == nullptr ? call_ : Format(a->pos);
}

std::string CallSite::Element(size_t i, absl::string_view name,
                              size_t element) const {
  const sl::CallArg* a = Arg(i, name);
  if (a == nullptr) return call_;
  const sl::Expr* v = a->value.get();
  if (a->kind != sl::CallArg::kStar && a->kind != sl::CallArg::kStarStar &&
      (v->kind == sl::EK::kList || v->kind == sl::EK::kTuple)) {
    auto& elems = static_cast<const sl::ListExpr*>(v)->elems;
    if (element < elems.size()) return Format(StartPos(elems[element].get()));
  }
  return Format(a->pos);
}

std::string CallSite::DictEntry(size_t i, absl::string_view name,
                                size_t entry) const {
  const sl::CallArg* a = Arg(i, name);
  if (a == nullptr) return call_;
  const sl::Expr* v = a->value.get();
  if (a->kind != sl::CallArg::kStarStar && v->kind == sl::EK::kDict) {
    auto& entries = static_cast<const sl::DictExpr*>(v)->entries;
    if (entry < entries.size())
      return Format(StartPos(entries[entry].first.get()));
  }
  return Format(a->pos);
}

std::string CallSite::DictKey(size_t i, absl::string_view name,
                              absl::string_view key) const {
  const sl::CallArg* a = Arg(i, name);
  if (a == nullptr) return call_;
  const sl::Expr* v = a->value.get();
  if (a->kind != sl::CallArg::kStarStar && v->kind == sl::EK::kDict) {
    for (auto& [k, x] : static_cast<const sl::DictExpr*>(v)->entries) {
      if (k->kind != sl::EK::kLiteral) continue;
      const sl::Value& lit =
          static_cast<const sl::LiteralExpr*>(k.get())->value;
      if (lit.Is(sl::Kind::kString) && sl::StrOf(lit) == key)
        return Format(k->pos);
    }
  }
  return Format(a->pos);
}

}  // namespace fault::spec
