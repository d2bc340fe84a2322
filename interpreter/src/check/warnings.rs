//! What the checker warns of: mistakes that are not errors (the script
//! runs) but that almost never mean what their writer meant. Each is a
//! diagnostic with a warning's severity, shown with the run's output and
//! sent back to an agent with its step's feedback.

use assay_grammar::{Expr, ExprKind, Ident, Span};

use super::Checker;
use crate::code::Code;
use crate::diag::Diag;
use crate::tool::Signature;

impl Checker<'_> {
    fn warn(&mut self, code: Code, span: Span, message: String, label: &str, help: String) {
        let d = Diag::new(code, message).at(&self.file, span, label).help(help).warning();
        self.diags.push(d);
    }

    /// A tool call as a statement: tools return a new value and change
    /// nothing, so `xs.sort()` alone sorts nothing.
    pub(super) fn discarded(&mut self, e: &Expr) {
        let (name, span) = match &e.node {
            ExprKind::Call { callee, .. } => match &callee.node {
                ExprKind::Name(n) if self.lookup(n).is_none() => (n.as_str(), callee.span),
                _ => return,
            },
            ExprKind::Method { receiver, name, .. } => {
                // A module's function (rhai) is the module's business.
                if let ExprKind::Name(r) = &receiver.node {
                    if self.lookup(r).is_some_and(|v| v.module.is_some()) {
                        return;
                    }
                }
                (name.node.as_str(), name.span)
            }
            _ => return,
        };
        if self.registry.signature(name).is_none() {
            return;
        }
        self.warn(
            Code::DiscardedResult,
            span,
            format!("the result of `{name}` is thrown away"),
            "result unused",
            format!(
                "tools return a new value and change nothing: keep it (`let y = ...`, `xs = xs.{name}()`), or `show` or `record` it"
            ),
        );
    }

    /// `for i, x in enumerate(xs)`: the loop numbers the items already, so
    /// `x` is `enumerate`'s pair `[i, item]`, not the item (Python's habit).
    pub(super) fn numbered_twice(&mut self, index: &Ident, var: &Ident, iter: &Expr) {
        let ExprKind::Call { callee, .. } = &iter.node else { return };
        let ExprKind::Name(n) = &callee.node else { return };
        if n != "enumerate" || self.lookup(n).is_some() {
            return;
        }
        let (i, x) = (&index.node, &var.node);
        self.warn(
            Code::NumberedTwice,
            iter.span,
            format!("`{x}` is each `[{i}, item]` pair of `enumerate`, not the item"),
            "numbered twice",
            format!("`for {i}, {x} in xs` numbers the items itself: leave `enumerate` out"),
        );
    }

    /// `${` inside a backtick string, which stays literal there.
    pub(super) fn raw_interpolation(&mut self, span: Span) {
        let text = self.file.text.get(span.start..span.end).unwrap_or("");
        if !text.starts_with('`') {
            return;
        }
        if let Some(at) = text.find("${") {
            let start = span.start + at;
            self.warn(
                Code::RawInterpolation,
                Span::new(start, start + 2),
                "`${` in a backtick string stays as it is written".to_string(),
                "not interpolated",
                "backtick strings never interpolate; for a value, use a double-quoted string: `\"... {x} ...\"` (with `{{` and `}}` for literal braces)".to_string(),
            );
        }
    }

    /// A tool that needs an environment setting the run does not have
    /// (`describe` without `ASSAY_LLM_URL`): it will fail when it runs.
    pub(super) fn not_configured(&mut self, sig: &Signature, span: Span) {
        let Some(var) = sig.requires else { return };
        if std::env::var(var).is_ok_and(|v| !v.trim().is_empty()) {
            return;
        }
        self.warn(
            Code::NotConfigured,
            span,
            format!("`{}` needs `{var}`, which is not set", sig.name),
            "will fail when it runs",
            format!("set `{var}` (see `assay tools` for `{}`) before the run, or leave the call out", sig.name),
        );
    }
}
