//! What a script names, read from its syntax before it runs: the names it
//! uses and the plain string literals it writes. The runner uses them to
//! provision (fetch and build into Assay's cache) what the script will
//! need before the kernel sandbox closes; nothing here runs script code.

use std::collections::BTreeSet;

use assay_grammar::{Block, Expr, ExprKind, FnBody, Program, Stmt, StmtKind, StrPart};

/// Names called (`f(...)`, `x.f(...)`) and string literals without
/// interpolation, anywhere in the script.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Mentions {
    /// Every name used: called, passed as a value or used as a method.
    pub names: BTreeSet<String>,
    pub strings: BTreeSet<String>,
}

pub fn mentions(program: &Program) -> Mentions {
    let mut m = Mentions::default();
    for s in &program.stmts {
        stmt(s, &mut m, 0);
    }
    m
}

/// The names a function's body uses (its parameters' defaults included).
pub(crate) fn mentions_in_fn(def: &assay_grammar::FnDef) -> Mentions {
    let mut m = Mentions::default();
    for p in &def.params {
        if let Some(d) = &p.default {
            expr(d, &mut m, 0);
        }
    }
    body(&def.body, &mut m, 0);
    m
}

/// The parser already bounds nesting; this bound only keeps the walk safe
/// on its own.
const MAX_DEPTH: usize = 512;

fn block(b: &Block, m: &mut Mentions, d: usize) {
    for s in &b.node {
        stmt(s, m, d + 1);
    }
}

fn stmt(s: &Stmt, m: &mut Mentions, d: usize) {
    if d > MAX_DEPTH {
        return;
    }
    match &s.node {
        StmtKind::Seed(e) | StmtKind::Let { value: e, .. } | StmtKind::Assign { value: e, .. } | StmtKind::Expr(e) => {
            expr(e, m, d)
        }
        StmtKind::Use { .. } | StmtKind::Break | StmtKind::Continue | StmtKind::Return(None) => {}
        StmtKind::Return(Some(e)) => expr(e, m, d),
        StmtKind::Fn(def) => body(&def.body, m, d),
        StmtKind::If { cond, then, otherwise } => {
            expr(cond, m, d);
            block(then, m, d);
            if let Some(o) = otherwise {
                block(o, m, d);
            }
        }
        StmtKind::For { iter, body: b, .. } => {
            expr(iter, m, d);
            block(b, m, d);
        }
        StmtKind::Show(es) => es.iter().for_each(|e| expr(e, m, d)),
        StmtKind::Record { name, value } => {
            expr(name, m, d);
            expr(value, m, d);
        }
        StmtKind::Assert { cond, message } => {
            expr(cond, m, d);
            if let Some(e) = message {
                expr(e, m, d);
            }
        }
    }
}

fn body(b: &FnBody, m: &mut Mentions, d: usize) {
    match b {
        FnBody::Block(b) => block(b, m, d),
        FnBody::Expr(e) => expr(e, m, d),
    }
}

fn expr(e: &Expr, m: &mut Mentions, d: usize) {
    if d > MAX_DEPTH {
        return;
    }
    let d = d + 1;
    match &e.node {
        ExprKind::Number(_) | ExprKind::Bool(_) | ExprKind::None => {}
        ExprKind::Name(n) => {
            m.names.insert(n.clone());
        }
        ExprKind::Str(parts) => {
            if let [StrPart::Text(t)] = parts.as_slice() {
                m.strings.insert(t.clone());
            }
            for p in parts {
                if let StrPart::Expr(x) = p {
                    expr(x, m, d);
                }
            }
        }
        ExprKind::List(items) => items.iter().for_each(|x| expr(x, m, d)),
        ExprKind::Record(fields) => fields.iter().for_each(|(_, x)| expr(x, m, d)),
        ExprKind::Unary { expr: x, .. } => expr(x, m, d),
        ExprKind::Binary { lhs, rhs, .. } => {
            expr(lhs, m, d);
            expr(rhs, m, d);
        }
        ExprKind::Call { callee, args } => {
            expr(callee, m, d);
            args.iter().for_each(|a| expr(&a.value, m, d));
        }
        ExprKind::Method { receiver, name, args } => {
            m.names.insert(name.node.clone());
            expr(receiver, m, d);
            args.iter().for_each(|a| expr(&a.value, m, d));
        }
        ExprKind::Field { expr: x, .. } => expr(x, m, d),
        ExprKind::Index { expr: x, index } => {
            expr(x, m, d);
            expr(index, m, d);
        }
        ExprKind::Lambda(def) => body(&def.body, m, d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_calls_and_plain_strings_in_every_construct() {
        let p = assay_grammar::parse(
            "fn f(x) { return model(\"a\") }\nlet g = y => onnx(\"b.onnx\")\nfor i in [1] { if true { show emoji() } }\nlet s = \"n{1}\"\nrecord \"r\", [1].map(sample_photos)",
        )
        .expect("parse");
        let m = mentions(&p);
        for c in ["model", "onnx", "emoji", "map", "sample_photos"] {
            assert!(m.names.contains(c), "{c}: {m:?}");
        }
        assert!(m.strings.contains("a") && m.strings.contains("b.onnx") && m.strings.contains("r"));
        assert!(!m.strings.iter().any(|s| s.starts_with('n')), "interpolated strings are not literals");
    }
}
