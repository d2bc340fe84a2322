//! Statements: blocks, `let`, loops, functions, records, asserts, `use`.

use std::collections::HashMap;
use std::sync::Arc;

use assay_grammar::*;

use super::{Checker, Var};
use crate::diag::closest;
use crate::types::Type;

impl<'a> Checker<'a> {
    pub(super) fn block(&mut self, block: &Block) {
        self.scopes.push(HashMap::new());
        self.hoist(&block.node);
        for s in &block.node {
            self.stmt(s, false);
        }
        self.scopes.pop();
    }

    pub(super) fn stmt(&mut self, s: &Stmt, top: bool) {
        match &s.node {
            StmtKind::Seed(_) => {
                if !top {
                    self.err(crate::Code::Seed, s.span, "`seed` is only allowed at the top of the script", "inside a block", "set the seed once, as the script's first statement; tools that draw randomly also take `seed:`");
                }
            }
            StmtKind::Use { alias, path } => {
                if !top {
                    self.err(
                        crate::Code::Use,
                        s.span,
                        "`use` is only allowed at the top level",
                        "inside a block",
                        "move the `use` to the top of the script",
                    );
                }
                if !self.modules.contains_key(&alias.node) && top {
                    // The load error itself was reported by the caller.
                    let _ = path;
                }
            }
            StmtKind::Let { name, value } => {
                let ty = self.expr(value);
                let func = match &value.node {
                    ExprKind::Lambda(def) => Some(def.clone()),
                    _ => None,
                };
                self.define(&name.node, Var { ty, func, module: None });
            }
            StmtKind::Assign { name, op, value } => self.assign(name, *op, value, s.span),
            StmtKind::Fn(def) => {
                if top {
                    self.deferred.push(def.clone());
                } else {
                    self.fn_body(def);
                }
            }
            StmtKind::If { cond, then, otherwise } => {
                let t = self.expr(cond);
                self.expect_bool(&t, cond.span, "an `if` condition");
                self.block(then);
                if let Some(b) = otherwise {
                    self.block(b);
                }
            }
            StmtKind::For { index, var, iter, body } => self.for_loop(index.as_ref(), var, iter, body),
            StmtKind::Return(e) => {
                if let Some(e) = e {
                    self.expr(e);
                }
                if self.fn_depth == 0 {
                    self.err(
                        crate::Code::Misplaced,
                        s.span,
                        "`return` outside a function",
                        "not in a function",
                        "`return` ends a function; at the top level, the script simply ends",
                    );
                }
            }
            StmtKind::Break | StmtKind::Continue => {
                if self.loop_depth.last().copied().unwrap_or(0) == 0 {
                    let word = if matches!(s.node, StmtKind::Break) { "break" } else { "continue" };
                    self.err(
                        crate::Code::Misplaced,
                        s.span,
                        format!("`{word}` outside a loop"),
                        "not in a `for` loop",
                        format!("`{word}` only works inside `for ... in ... {{ }}`"),
                    );
                }
            }
            StmtKind::Show(args) => {
                for a in args {
                    self.expr(a);
                }
            }
            StmtKind::Record { name, value } => self.record(name, value),
            StmtKind::Assert { cond, message } => self.assert(cond, message.as_ref()),
            StmtKind::Expr(e) => {
                self.expr(e);
                self.discarded(e);
            }
        }
    }

    /// `name = value` or `name op= value`: the name must be declared and
    /// not a module; its type becomes unknown if the value's differs.
    fn assign(&mut self, name: &Ident, op: Option<BinOp>, value: &Expr, span: Span) {
        let vty = self.expr(value);
        match self.lookup(&name.node).cloned() {
            None => {
                let help = match closest(&name.node, self.known_names()) {
                    Some(c) => {
                        format!("declare it first with `let {} = ...`, or did you mean `{c}`?", name.node)
                    }
                    None => format!("declare it first with `let {} = ...`", name.node),
                };
                self.err(
                    crate::Code::UnknownName,
                    name.span,
                    format!("cannot assign to unknown name `{}`", name.node),
                    "not declared",
                    help,
                );
            }
            Some(var) => {
                if var.module.is_some() || var.ty == Type::Module {
                    self.err(
                        crate::Code::Assign,
                        name.span,
                        format!("`{}` is a module and cannot be reassigned", name.node),
                        "a module",
                        "bind the value to a new name with `let`",
                    );
                }
                let new_ty = match op {
                    Some(op) => self.binary_type(op, &var.ty, &vty, span),
                    None => vty,
                };
                let ty = if new_ty == var.ty { new_ty } else { Type::Any };
                if let Some(scope) = self.scopes.iter_mut().rev().find(|sc| sc.contains_key(&name.node)) {
                    scope.insert(name.node.clone(), Var { ty, func: None, module: None });
                }
            }
        }
    }

    /// `for [index,] var in iter { body }`: what it loops over, and the
    /// loop variables' types in the body's scope.
    fn for_loop(&mut self, index: Option<&Ident>, var: &Ident, iter: &Expr, body: &Block) {
        let t = self.expr(iter);
        if let Some(i) = index {
            self.numbered_twice(i, var, iter);
        }
        if t.is_known() && !Type::iterable().accepts(&t) {
            self.err(
                crate::Code::Type,
                iter.span,
                format!("cannot loop over a {t}"),
                format!("a {t}"),
                "loop over a list, a range like `0..n`, a string, a record or a tensor",
            );
        }
        let (index_ty, elem_ty) = match &t {
            Type::List(e) => (Type::Num, (**e).clone()),
            Type::Range => (Type::Num, Type::Num),
            Type::Str => (Type::Num, Type::Str),
            Type::Record(_) => (Type::Str, Type::Any),
            _ => (Type::Any, Type::Any),
        };
        self.scopes.push(HashMap::new());
        if let Some(i) = index {
            self.define(&i.node, Var { ty: index_ty, func: None, module: None });
        }
        self.define(&var.node, Var { ty: elem_ty, func: None, module: None });
        if let Some(l) = self.loop_depth.last_mut() {
            *l += 1;
        }
        self.block(body);
        if let Some(l) = self.loop_depth.last_mut() {
            *l -= 1;
        }
        self.scopes.pop();
    }

    /// `record name, value`: the name must be a string.
    fn record(&mut self, name: &Expr, value: &Expr) {
        let t = self.expr(name);
        if t.is_known() && t != Type::Str {
            self.err(
                crate::Code::Type,
                name.span,
                format!("a record's name must be a string, found {t}"),
                "not a string",
                "write `record \"name\", value`",
            );
        }
        self.expr(value);
    }

    /// `assert cond[, message]`: a boolean, and a string message.
    fn assert(&mut self, cond: &Expr, message: Option<&Expr>) {
        let t = self.expr(cond);
        self.expect_bool(&t, cond.span, "an assertion");
        if let Some(m) = message {
            let t = self.expr(m);
            if t.is_known() && t != Type::Str {
                self.err(
                    crate::Code::Type,
                    m.span,
                    format!("an assertion's message must be a string, found {t}"),
                    "not a string",
                    "write `assert cond, \"what failed\"`",
                );
            }
        }
    }

    pub(super) fn expect_bool(&mut self, t: &Type, span: Span, what: &str) {
        if t.is_known() && !Type::Bool.accepts(t) {
            self.err(
                crate::Code::Type,
                span,
                format!("{what} must be true or false, found {t}"),
                format!("a {t}"),
                "compare explicitly, e.g. `len(xs) > 0` or `x != none`",
            );
        }
    }

    pub(super) fn fn_body(&mut self, def: &Arc<FnDef>) {
        // Defaults are evaluated in the function's scope at call time.
        self.scopes.push(HashMap::new());
        let mut seen: HashMap<&str, ()> = HashMap::new();
        let mut default_seen = false;
        for p in &def.params {
            if seen.insert(&p.name.node, ()).is_some() {
                self.err(
                    crate::Code::Duplicate,
                    p.name.span,
                    format!("parameter `{}` is named twice", p.name.node),
                    "repeated",
                    "give each parameter its own name",
                );
            }
            if let Some(d) = &p.default {
                default_seen = true;
                self.expr(d);
            } else if default_seen {
                self.err(
                    crate::Code::ParamOrder,
                    p.name.span,
                    format!("parameter `{}` has no default but follows one that does", p.name.node),
                    "needs a default",
                    "put parameters with defaults last",
                );
            }
            self.define(&p.name.node, Var { ty: Type::Any, func: None, module: None });
        }
        self.fn_depth += 1;
        self.loop_depth.push(0);
        match &def.body {
            FnBody::Block(b) => self.block(b),
            FnBody::Expr(e) => {
                self.expr(e);
            }
        }
        self.loop_depth.pop();
        self.fn_depth -= 1;
        self.scopes.pop();
    }
}
