//! The static checker: everything that can be known before a model loads.
//! Names, tools, argument names and counts, rhai module functions, misplaced
//! statements, and the types that literals and tool signatures make known.
//! It reports every error of a script at once and never stops at the first.
//!
//! Split as the evaluator is (`crate::eval`): statements (`stmt.rs`),
//! expressions (`expr.rs`), operators (`ops.rs`) and calls (`call.rs`);
//! argument binding is shared with the evaluator (`crate::bind`).

mod call;
mod expr;
mod habits;
mod ops;
mod stmt;
mod warnings;

use std::collections::HashMap;
use std::sync::Arc;

use assay_grammar::*;

use crate::code::Code;
use crate::diag::{Diag, SourceFile};
use crate::rhai_module::RhaiModule;
use crate::tool::Registry;
use crate::types::Type;

#[derive(Clone)]
struct Var {
    ty: Type,
    func: Option<Arc<FnDef>>,
    module: Option<Arc<RhaiModule>>,
}

pub(crate) struct Checker<'a> {
    file: Arc<SourceFile>,
    registry: &'a Registry,
    modules: &'a HashMap<String, Arc<RhaiModule>>,
    scopes: Vec<HashMap<String, Var>>,
    diags: Vec<Diag>,
    fn_depth: usize,
    loop_depth: Vec<usize>,
    /// Top-level function bodies are checked after the top level, so they see
    /// every global, as they will when they are called.
    deferred: Vec<Arc<FnDef>>,
}

/// Fields that tensors and images have.
pub(crate) const TENSOR_FIELDS: &[&str] = &["shape", "ndim", "size"];
pub(crate) const IMAGE_FIELDS: &[&str] = &["width", "height"];

/// Checks a parsed program. `modules` are the rhai modules its `use`
/// statements loaded (a failed load was already reported by the caller).
pub fn check(
    file: &Arc<SourceFile>,
    program: &Program,
    registry: &Registry,
    modules: &HashMap<String, Arc<RhaiModule>>,
) -> Vec<Diag> {
    check_with(file, program, registry, modules, &[])
}

/// As `check`, with names bound before the script starts, and their types.
pub(crate) fn check_with(
    file: &Arc<SourceFile>,
    program: &Program,
    registry: &Registry,
    modules: &HashMap<String, Arc<RhaiModule>>,
    names: &[(String, Type)],
) -> Vec<Diag> {
    let mut c = Checker {
        file: file.clone(),
        registry,
        modules,
        scopes: vec![HashMap::new()],
        diags: Vec::new(),
        fn_depth: 0,
        loop_depth: vec![0],
        deferred: Vec::new(),
    };
    // Modules bound by the caller without a `use` (an agent's black box).
    let used: Vec<&str> = program
        .stmts
        .iter()
        .filter_map(|s| match &s.node {
            assay_grammar::StmtKind::Use { alias, .. } => Some(alias.node.as_str()),
            _ => None,
        })
        .collect();
    for (alias, m) in modules {
        if !used.contains(&alias.as_str()) {
            c.scopes[0].insert(alias.clone(), Var { ty: Type::Module, func: None, module: Some(m.clone()) });
        }
    }
    for (name, ty) in names {
        c.scopes[0].insert(name.clone(), Var { ty: ty.clone(), func: None, module: None });
    }
    c.top_level(program);
    c.diags.sort_by_key(|d| d.span.map(|s| s.start).unwrap_or(0));
    c.diags
}

impl<'a> Checker<'a> {
    fn err(
        &mut self,
        code: Code,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<String>,
    ) {
        let d = Diag::new(code, message).at(&self.file, span, label).help(help);
        self.diags.push(d);
    }

    fn top_level(&mut self, program: &Program) {
        // `seed` and `use` placement.
        let mut seen_other = false;
        let mut seed_seen: Option<Span> = None;
        for s in &program.stmts {
            match &s.node {
                StmtKind::Seed(e) => {
                    if let Some(first) = seed_seen {
                        let (line, _) = self.file.line_col(first.start);
                        self.err(
                            crate::Code::Seed,
                            s.span,
                            "`seed` given twice",
                            "second seed",
                            format!("the run's seed is set once, on line {line}; remove this one"),
                        );
                    } else if seen_other {
                        self.err(
                            crate::Code::Seed,
                            s.span,
                            "`seed` must come before the experiment's statements",
                            "too late",
                            "move `seed N` to the top of the script, so every random choice depends on it",
                        );
                    }
                    seed_seen = Some(s.span);
                    match &e.node {
                        ExprKind::Number(n) if *n >= 0.0 && n.fract() == 0.0 && *n < 9.0e15 => {}
                        _ => self.err(
                            crate::Code::Seed,
                            e.span,
                            "the seed must be a whole number literal",
                            "not a whole number",
                            "write e.g. `seed 7`",
                        ),
                    }
                }
                StmtKind::Use { alias, .. } => {
                    if self.scopes[0].contains_key(&alias.node) {
                        self.err(
                            crate::Code::Duplicate,
                            alias.span,
                            format!("`{}` is already defined", alias.node),
                            "defined again",
                            "give each module its own alias",
                        );
                    }
                    if let Some(m) = self.modules.get(&alias.node) {
                        self.scopes[0]
                            .insert(alias.node.clone(), Var { ty: Type::Module, func: None, module: Some(m.clone()) });
                    } else {
                        self.scopes[0].insert(alias.node.clone(), Var { ty: Type::Module, func: None, module: None });
                    }
                }
                StmtKind::Fn(_) => {}
                _ => seen_other = true,
            }
        }
        self.hoist(&program.stmts);
        for s in &program.stmts {
            self.stmt(s, true);
        }
        // Top-level functions see every top-level name.
        let deferred = std::mem::take(&mut self.deferred);
        for def in deferred {
            self.fn_body(&def);
        }
    }

    /// Functions are visible in their whole block, before their definition.
    fn hoist(&mut self, stmts: &[Stmt]) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for s in stmts {
            if let StmtKind::Fn(def) = &s.node {
                if let Some(name) = &def.name {
                    if let Some(prev) = seen.get(name.node.as_str()) {
                        let (line, _) = self.file.line_col(prev.start);
                        self.err(
                            crate::Code::Duplicate,
                            name.span,
                            format!("function `{}` is defined twice in this block", name.node),
                            "defined again",
                            format!("the first definition is on line {line}; rename one of them"),
                        );
                    }
                    seen.insert(&name.node, name.span);
                    self.define(&name.node, Var { ty: Type::Func, func: Some(def.clone()), module: None });
                }
            }
        }
    }

    fn define(&mut self, name: &str, var: Var) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(name.to_string(), var);
        }
    }

    fn lookup(&self, name: &str) -> Option<&Var> {
        self.scopes.iter().rev().find_map(|s| s.get(name))
    }

    fn known_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.scopes.iter().flat_map(|s| s.keys().map(|k| k.as_str())).collect();
        for n in self.registry.names() {
            names.push(n);
        }
        names
    }
}
