// Static name resolution: classifies every identifier as local, cell, free,
// global, predeclared or universal, assigns frame slots, and reports the
// static errors of the spec before anything runs.
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "starlark/syntax.h"

namespace fault::starlark {
namespace {

struct ResolveError {
  Pos pos;
  std::string msg;
};

struct FuncState;

struct Block {
  Block* parent = nullptr;
  FuncState* fn = nullptr;  // function whose frame holds this block's slots
  bool is_module = false;
  std::unordered_map<std::string, int> names;  // name -> slot (local or global)
};

struct FuncState {
  FuncDecl* decl = nullptr;
  FuncState* parent = nullptr;
  Block* body = nullptr;         // the function's own block
  std::vector<IdentExpr*> uses;  // local uses, fixed up to kCell at the end
  std::unordered_map<std::string, int> free_index;
};

class Resolver {
 public:
  Resolver(File* file, const Dialect& d,
           const std::function<int(std::string_view)>& pre,
           const std::function<int(std::string_view)>& uni)
      : file_(file), dialect_(d), predeclared_(pre), universal_(uni) {}

  void Run() {
    module_.is_module = true;
    top_decl_ = std::make_shared<FuncDecl>();
    top_decl_->name = "<toplevel>";
    top_.decl = top_decl_.get();
    top_.body = &module_;
    module_.fn = &top_;
    // Pass 1: module-level bindings.
    for (auto& s : file_->stmts) CollectModuleBindings(s.get());
    // Pass 2: resolve uses.
    for (auto& s : file_->stmts) ResolveStmt(s.get(), &module_, true, 0);
    FinishFunc(&top_);
    file_->toplevel = top_decl_;
    file_->global_names = global_names_;
  }

 private:
  [[noreturn]] void Error(Pos p, std::string msg) {
    throw ResolveError{p, std::move(msg)};
  }

  std::string PosStr(Pos p) {
    return absl::StrCat(file_->filename, ":", p.line, ":", p.col);
  }

  void BindGlobal(IdentExpr* id, bool allow_rebind = false) {
    auto it = module_.names.find(id->name);
    if (it != module_.names.end()) {
      if (!dialect_.allow_global_reassign && !allow_rebind) {
        Error(id->pos,
              absl::StrCat("cannot reassign global ", id->name, " declared at ",
                           PosStr(global_pos_[it->second])));
      }
      id->scope = Scope::kGlobal;
      id->index = it->second;
      return;
    }
    int idx = static_cast<int>(global_names_.size());
    global_names_.push_back(id->name);
    global_pos_.push_back(id->pos);
    module_.names[id->name] = idx;
    id->scope = Scope::kGlobal;
    id->index = idx;
  }

  // Module-level binding collection, in textual order so that reassignment
  // errors point at the second binding.
  void CollectModuleBindings(Stmt* s) {
    switch (s->kind) {
      case SK::kAssign: {
        auto* a = static_cast<AssignStmt*>(s);
        if (a->op != Tok::kEq) {
          if (a->lhs->kind == EK::kIdent) {
            auto* id = static_cast<IdentExpr*>(a->lhs.get());
            // Augmented assignment of a global rebinds it.
            if (module_.names.count(id->name)) {
              BindGlobal(id);
            }
          }
          return;
        }
        CollectTargets(a->lhs.get(), /*loop=*/false);
        return;
      }
      case SK::kDef:
        BindGlobal(static_cast<DefStmt*>(s)->name.get());
        return;
      case SK::kLoad: {
        auto* l = static_cast<LoadStmt*>(s);
        for (auto& id : l->to) BindGlobal(id.get());
        return;
      }
      case SK::kFor: {
        auto* f = static_cast<ForStmt*>(s);
        CollectTargets(f->vars.get(), true);
        for (auto& b : f->body) CollectModuleBindings(b.get());
        return;
      }
      case SK::kWhile:
        for (auto& b : static_cast<WhileStmt*>(s)->body)
          CollectModuleBindings(b.get());
        return;
      case SK::kIf: {
        auto* i = static_cast<IfStmt*>(s);
        for (auto& b : i->then) CollectModuleBindings(b.get());
        for (auto& b : i->els) CollectModuleBindings(b.get());
        return;
      }
      default:
        return;
    }
  }

  void CollectTargets(Expr* e, bool loop) {
    if (e->kind == EK::kIdent) {
      BindGlobal(static_cast<IdentExpr*>(e));
    } else if (e->kind == EK::kList || e->kind == EK::kTuple) {
      for (auto& x : static_cast<ListExpr*>(e)->elems)
        CollectTargets(x.get(), loop);
    }
  }

  // Function-level binding collection (not descending into nested defs).
  void CollectLocalBindings(Stmt* s, FuncState* fn) {
    switch (s->kind) {
      case SK::kAssign:
        CollectLocalTargets(static_cast<AssignStmt*>(s)->lhs.get(), fn);
        return;
      case SK::kDef:
        AddLocal(fn, static_cast<DefStmt*>(s)->name->name);
        return;
      case SK::kFor: {
        auto* f = static_cast<ForStmt*>(s);
        CollectLocalTargets(f->vars.get(), fn);
        for (auto& b : f->body) CollectLocalBindings(b.get(), fn);
        return;
      }
      case SK::kWhile:
        for (auto& b : static_cast<WhileStmt*>(s)->body)
          CollectLocalBindings(b.get(), fn);
        return;
      case SK::kIf: {
        auto* i = static_cast<IfStmt*>(s);
        for (auto& b : i->then) CollectLocalBindings(b.get(), fn);
        for (auto& b : i->els) CollectLocalBindings(b.get(), fn);
        return;
      }
      default:
        return;
    }
  }
  void CollectLocalTargets(Expr* e, FuncState* fn) {
    if (e->kind == EK::kIdent) {
      AddLocal(fn, static_cast<IdentExpr*>(e)->name);
    } else if (e->kind == EK::kList || e->kind == EK::kTuple) {
      for (auto& x : static_cast<ListExpr*>(e)->elems)
        CollectLocalTargets(x.get(), fn);
    }
  }
  int AddLocal(FuncState* fn, const std::string& name) {
    auto it = fn->body->names.find(name);
    if (it != fn->body->names.end()) return it->second;
    int idx = NewSlot(fn, name);
    fn->body->names[name] = idx;
    return idx;
  }
  int NewSlot(FuncState* fn, const std::string& name) {
    int idx = fn->decl->nlocals++;
    fn->decl->local_names.push_back(name);
    fn->decl->local_is_cell.push_back(false);
    return idx;
  }

  void FinishFunc(FuncState* fn) {
    for (IdentExpr* id : fn->uses) {
      if (id->scope == Scope::kLocal && fn->decl->local_is_cell[id->index])
        id->scope = Scope::kCell;
    }
  }

  // Returns the free-variable index of (owner's slot) inside fn.
  int Capture(FuncState* fn, FuncState* owner, int slot,
              const std::string& name) {
    auto it = fn->free_index.find(name);
    if (it != fn->free_index.end()) return it->second;
    FuncDecl::FreeVar fv;
    fv.name = name;
    if (fn->parent == owner) {
      owner->decl->local_is_cell[slot] = true;
      fv.scope = Scope::kCell;
      fv.index = slot;
    } else {
      fv.scope = Scope::kFree;
      fv.index = Capture(fn->parent, owner, slot, name);
    }
    int idx = static_cast<int>(fn->decl->freevars.size());
    fn->decl->freevars.push_back(fv);
    fn->free_index[name] = idx;
    return idx;
  }

  void Use(IdentExpr* id, Block* b) {
    FuncState* here = b->fn;
    for (Block* cur = b; cur; cur = cur->parent) {
      auto it = cur->names.find(id->name);
      if (it == cur->names.end()) continue;
      if (cur->is_module) {
        id->scope = Scope::kGlobal;
        id->index = it->second;
        return;
      }
      if (cur->fn == here) {
        id->scope = Scope::kLocal;
        id->index = it->second;
        here->uses.push_back(id);
        return;
      }
      id->scope = Scope::kFree;
      id->index = Capture(here, cur->fn, it->second, id->name);
      return;
    }
    int p = predeclared_ ? predeclared_(id->name) : -1;
    if (p >= 0) {
      id->scope = Scope::kPredeclared;
      id->index = p;
      return;
    }
    int u = universal_ ? universal_(id->name) : -1;
    if (u >= 0) {
      id->scope = Scope::kUniversal;
      id->index = u;
      return;
    }
    Error(id->pos, absl::StrCat("undefined: ", id->name));
  }

  // Binding occurrence inside a function or comprehension block.
  void BindTarget(Expr* e, Block* b) {
    if (e->kind == EK::kIdent) {
      auto* id = static_cast<IdentExpr*>(e);
      if (b->is_module) {
        auto it = module_.names.find(id->name);
        id->scope = Scope::kGlobal;
        id->index = it->second;
        return;
      }
      Use(id, b);
      return;
    }
    if (e->kind == EK::kList || e->kind == EK::kTuple) {
      for (auto& x : static_cast<ListExpr*>(e)->elems) BindTarget(x.get(), b);
      return;
    }
    ResolveExpr(e, b);  // index / dot targets: resolve operands
  }

  void ResolveStmts(Stmts& ss, Block* b, bool toplevel, int loops) {
    for (auto& s : ss) ResolveStmt(s.get(), b, toplevel, loops);
  }

  void ResolveStmt(Stmt* s, Block* b, bool toplevel, int loops) {
    bool at_module = b->is_module;
    switch (s->kind) {
      case SK::kExpr:
        ResolveExpr(static_cast<ExprStmt*>(s)->x.get(), b);
        return;
      case SK::kAssign: {
        auto* a = static_cast<AssignStmt*>(s);
        ResolveExpr(a->rhs.get(), b);
        if (a->op != Tok::kEq && a->lhs->kind == EK::kIdent) {
          Use(static_cast<IdentExpr*>(a->lhs.get()), b);
          return;
        }
        BindTarget(a->lhs.get(), b);
        return;
      }
      case SK::kDef: {
        auto* d = static_cast<DefStmt*>(s);
        ResolveFunction(d->fn.get(), b);
        BindTarget(d->name.get(), b);
        return;
      }
      case SK::kIf: {
        auto* i = static_cast<IfStmt*>(s);
        if (at_module && !dialect_.allow_toplevel_control)
          Error(s->pos, "if statement not within a function");
        ResolveExpr(i->cond.get(), b);
        ResolveStmts(i->then, b, false, loops);
        ResolveStmts(i->els, b, false, loops);
        return;
      }
      case SK::kFor: {
        auto* f = static_cast<ForStmt*>(s);
        if (at_module && !dialect_.allow_toplevel_control)
          Error(s->pos, "for loop not within a function");
        ResolveExpr(f->x.get(), b);
        BindTarget(f->vars.get(), b);
        ResolveStmts(f->body, b, false, loops + 1);
        return;
      }
      case SK::kWhile: {
        auto* w = static_cast<WhileStmt*>(s);
        if (at_module && !dialect_.allow_toplevel_control)
          Error(s->pos, "while loop not within a function");
        ResolveExpr(w->cond.get(), b);
        ResolveStmts(w->body, b, false, loops + 1);
        return;
      }
      case SK::kReturn: {
        if (at_module) Error(s->pos, "return statement not within a function");
        auto* r = static_cast<ReturnStmt*>(s);
        if (r->result) ResolveExpr(r->result.get(), b);
        return;
      }
      case SK::kBreak:
        if (loops == 0) Error(s->pos, "break not in a loop");
        return;
      case SK::kContinue:
        if (loops == 0) Error(s->pos, "continue not in a loop");
        return;
      case SK::kPass:
        return;
      case SK::kLoad: {
        if (!at_module) Error(s->pos, "load statement within a function");
        if (!toplevel) Error(s->pos, "load statement not at top level");
        auto* l = static_cast<LoadStmt*>(s);
        for (auto& id : l->to) {
          if (id->name.empty() || id->name[0] == '_') {
            // Names beginning with _ are private to their module.
          }
          BindTarget(id.get(), b);
        }
        for (size_t i = 0; i < l->from.size(); i++) {
          if (!l->from[i].empty() && l->from[i][0] == '_')
            Error(l->from_pos[i],
                  absl::StrCat(
                      "load: names with leading underscores are not exported: ",
                      l->from[i]));
        }
        return;
      }
    }
  }

  void ResolveFunction(FuncDecl* fn, Block* b) {
    // Defaults are evaluated in the enclosing scope.
    bool seen_optional = false, seen_star = false, seen_kwargs = false;
    std::unordered_map<std::string, bool> seen;
    int nplain = 0, nkwonly = 0;
    for (auto& p : fn->params) {
      if (seen_kwargs) Error(p.pos, "parameter may not follow **kwargs");
      if (p.name) {
        if (seen.count(p.name->name))
          Error(p.pos, absl::StrCat("duplicate parameter: ", p.name->name));
        seen[p.name->name] = true;
      }
      switch (p.kind) {
        case Param::kPlain:
          if (seen_star) {
            nkwonly++;
          } else {
            if (seen_optional)
              Error(p.pos, "required parameter may not follow optional");
            nplain++;
          }
          break;
        case Param::kDefault:
          ResolveExpr(p.dflt.get(), b);
          if (seen_star)
            nkwonly++;
          else
            nplain++;
          seen_optional = true;
          fn->num_defaults++;
          break;
        case Param::kStar:
          if (seen_star) Error(p.pos, "multiple * parameters not allowed");
          seen_star = true;
          if (p.name) fn->has_varargs = true;
          break;
        case Param::kStarStar:
          seen_kwargs = true;
          fn->has_kwargs = true;
          break;
      }
    }
    if (seen_star && !fn->has_varargs && nkwonly == 0)
      Error(fn->pos, "bare * must be followed by keyword-only parameters");
    fn->num_params = nplain;
    fn->num_kwonly = nkwonly;

    if (++fn_depth_ > kMaxNesting) Error(fn->pos, "nesting too deep");
    FuncState st;
    st.decl = fn;
    st.parent = b->fn;
    Block body;
    body.parent = b;
    body.fn = &st;
    st.body = &body;
    // Slots: plain params, kw-only params, *args, **kwargs, then locals.
    auto add_param = [&](Param& p) {
      int idx = NewSlot(&st, p.name->name);
      body.names[p.name->name] = idx;
      fn->param_names.push_back(p.name->name);
      p.name->scope = Scope::kLocal;
      p.name->index = idx;
    };
    for (auto& p : fn->params)
      if (p.kind == Param::kPlain || p.kind == Param::kDefault) {
        // kw-only ones come after; handle order below
      }
    bool star = false;
    for (auto& p : fn->params) {
      if (p.kind == Param::kStar) star = true;
      if ((p.kind == Param::kPlain || p.kind == Param::kDefault) && !star)
        add_param(p);
    }
    star = false;
    for (auto& p : fn->params) {
      if (p.kind == Param::kStar) star = true;
      if ((p.kind == Param::kPlain || p.kind == Param::kDefault) && star)
        add_param(p);
    }
    for (auto& p : fn->params)
      if (p.kind == Param::kStar && p.name) add_param(p);
    for (auto& p : fn->params)
      if (p.kind == Param::kStarStar) add_param(p);
    for (auto& s : fn->body) CollectLocalBindings(s.get(), &st);
    ResolveStmts(fn->body, &body, false, 0);
    FinishFunc(&st);
    // Parameters that are captured need their IdentExprs marked, too.
    for (auto& p : fn->params)
      if (p.name && fn->local_is_cell[p.name->index])
        p.name->scope = Scope::kCell;
    fn_depth_--;
  }

  void ResolveExpr(Expr* e, Block* b) {
    switch (e->kind) {
      case EK::kIdent:
        Use(static_cast<IdentExpr*>(e), b);
        return;
      case EK::kLiteral:
        return;
      case EK::kList:
      case EK::kTuple:
        for (auto& x : static_cast<ListExpr*>(e)->elems)
          ResolveExpr(x.get(), b);
        return;
      case EK::kDict:
        for (auto& [k, v] : static_cast<DictExpr*>(e)->entries) {
          ResolveExpr(k.get(), b);
          ResolveExpr(v.get(), b);
        }
        return;
      case EK::kComp: {
        auto* c = static_cast<CompExpr*>(e);
        // The first iterable is resolved in the enclosing block.
        ResolveExpr(c->clauses[0].expr.get(), b);
        Block comp;
        comp.parent = b;
        comp.fn = b->fn;
        // One block for the whole comprehension: every loop variable is
        // local to it from the start, so in [x for _ in a for x in x] the
        // second `x` is the (not yet bound) loop variable.
        for (auto& cl : c->clauses)
          if (!cl.is_if) DeclareCompVars(cl.target.get(), &comp);
        for (size_t i = 0; i < c->clauses.size(); i++) {
          auto& cl = c->clauses[i];
          if (cl.is_if) {
            ResolveExpr(cl.expr.get(), &comp);
          } else {
            if (i > 0) ResolveExpr(cl.expr.get(), &comp);
            BindTarget(cl.target.get(), &comp);
          }
        }
        ResolveExpr(c->body.get(), &comp);
        if (c->value) ResolveExpr(c->value.get(), &comp);
        return;
      }
      case EK::kUnary:
        ResolveExpr(static_cast<UnaryExpr*>(e)->x.get(), b);
        return;
      case EK::kBinary:
        ResolveExpr(static_cast<BinaryExpr*>(e)->x.get(), b);
        ResolveExpr(static_cast<BinaryExpr*>(e)->y.get(), b);
        return;
      case EK::kCond: {
        auto* c = static_cast<CondExpr*>(e);
        ResolveExpr(c->cond.get(), b);
        ResolveExpr(c->then.get(), b);
        ResolveExpr(c->els.get(), b);
        return;
      }
      case EK::kIndex:
        ResolveExpr(static_cast<IndexExpr*>(e)->x.get(), b);
        ResolveExpr(static_cast<IndexExpr*>(e)->index.get(), b);
        return;
      case EK::kSlice: {
        auto* s = static_cast<SliceExpr*>(e);
        ResolveExpr(s->x.get(), b);
        if (s->lo) ResolveExpr(s->lo.get(), b);
        if (s->hi) ResolveExpr(s->hi.get(), b);
        if (s->step) ResolveExpr(s->step.get(), b);
        return;
      }
      case EK::kDot:
        ResolveExpr(static_cast<DotExpr*>(e)->x.get(), b);
        return;
      case EK::kCall: {
        auto* c = static_cast<CallExpr*>(e);
        ResolveExpr(c->fn.get(), b);
        for (auto& a : c->args) ResolveExpr(a.value.get(), b);
        return;
      }
      case EK::kLambda:
        ResolveFunction(static_cast<LambdaExpr*>(e)->fn.get(), b);
        return;
    }
  }

  void DeclareCompVars(Expr* e, Block* comp) {
    if (e->kind == EK::kIdent) {
      auto* id = static_cast<IdentExpr*>(e);
      if (!comp->names.count(id->name))
        comp->names[id->name] = NewSlot(comp->fn, id->name);
    } else if (e->kind == EK::kList || e->kind == EK::kTuple) {
      for (auto& x : static_cast<ListExpr*>(e)->elems)
        DeclareCompVars(x.get(), comp);
    }
  }

  File* file_;
  const Dialect& dialect_;
  const std::function<int(std::string_view)>& predeclared_;
  const std::function<int(std::string_view)>& universal_;
  Block module_;
  FuncState top_;
  std::shared_ptr<FuncDecl> top_decl_;
  std::vector<std::string> global_names_;
  std::vector<Pos> global_pos_;
  int fn_depth_ = 0;
};

}  // namespace

absl::Status Resolve(File* file, const Dialect& dialect,
                     const std::function<int(std::string_view)>& predeclared,
                     const std::function<int(std::string_view)>& universal) {
  try {
    Resolver r(file, dialect, predeclared, universal);
    r.Run();
  } catch (const ResolveError& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        file->filename, ":", e.pos.line, ":", e.pos.col, ": ", e.msg));
  }
  return absl::OkStatus();
}

}  // namespace fault::starlark
