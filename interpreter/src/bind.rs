//! Binding a call's arguments to parameters, written once: the checker
//! binds argument types, the evaluator argument values, and both report a
//! mistake (too many, unknown, repeated, missing, a method call of a tool
//! without parameters, a wrong type) with the same code, message, label
//! and help.

use assay_grammar::{Ident, Span};

use crate::code::Code;
use crate::diag::closest;
use crate::tool::{Default, Signature};

/// A parameter as binding sees it.
pub(crate) struct Param<'a> {
    pub name: &'a str,
    pub required: bool,
}

/// One mistake in a call's arguments.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mistake {
    pub code: Code,
    pub span: Span,
    pub message: String,
    pub label: String,
    pub help: String,
}

/// An argument to bind: its name if given by name, the span to blame, and
/// what the caller binds (a type or a value).
pub(crate) struct Given<'a, T> {
    pub name: Option<&'a Ident>,
    pub span: Span,
    pub item: T,
}

/// What binding found: each parameter's argument (with its span) where one
/// was given, and every mistake in the order of the arguments, missing
/// ones last.
pub(crate) struct Bound<T> {
    pub slots: Vec<Option<(T, Span)>>,
    pub mistakes: Vec<Mistake>,
}

/// How a call's help line shows what it calls: a tool's signature
/// (`clip(x: ..., lo: number, hi: number) -> ...`) or a script function's
/// definition (`defined as f(a, b)`).
pub(crate) fn defined_as(name: &str, params: &[Param]) -> String {
    format!("defined as {name}({})", params.iter().map(|p| p.name).collect::<Vec<_>>().join(", "))
}

/// Binds `args` to `params` of `callee`; `shown` is the help line that says
/// how to call it. With `receiver` the first argument is the receiver of a
/// method call (`x.f(a)` is `f(x, a)`).
pub(crate) fn bind<T>(
    callee: &str,
    params: &[Param],
    shown: &str,
    receiver: bool,
    args: Vec<Given<T>>,
    call: Span,
) -> Bound<T> {
    let mut slots: Vec<Option<(T, Span)>> = (0..params.len()).map(|_| None).collect();
    let mut mistakes = Vec::new();
    let mut pos = 0;
    for (i, a) in args.into_iter().enumerate() {
        let slot = match a.name {
            None if receiver && i == 0 && params.is_empty() => {
                mistakes.push(Mistake {
                    code: crate::Code::ArgumentCount,
                    span: call,
                    message: format!("`{callee}` takes no arguments, so it cannot be called as a method"),
                    label: "not a method".into(),
                    help: format!("call it as {shown}"),
                });
                continue;
            }
            None if pos >= params.len() => {
                mistakes.push(Mistake {
                    code: crate::Code::ArgumentCount,
                    span: a.span,
                    message: format!("`{callee}` takes at most {} argument(s)", params.len()),
                    label: "too many arguments".into(),
                    help: shown.to_string(),
                });
                continue;
            }
            None => {
                pos += 1;
                pos - 1
            }
            Some(n) => match params.iter().position(|p| p.name == n.node) {
                None => {
                    mistakes.push(Mistake {
                        code: crate::Code::UnknownArgument,
                        span: n.span,
                        message: format!("`{callee}` has no parameter `{}`", n.node),
                        label: "unknown parameter".into(),
                        help: match closest(&n.node, params.iter().map(|p| p.name)) {
                            Some(c) => format!("did you mean `{c}`? {shown}"),
                            None => shown.to_string(),
                        },
                    });
                    continue;
                }
                Some(i) => i,
            },
        };
        if slots[slot].is_some() {
            mistakes.push(Mistake {
                code: crate::Code::DuplicateArgument,
                span: a.name.map(|n| n.span).unwrap_or(a.span),
                message: format!("`{}` is given twice", params[slot].name),
                label: "given again".into(),
                help: format!("pass each argument once: {shown}"),
            });
            continue;
        }
        slots[slot] = Some((a.item, a.span));
    }
    let missing: Vec<String> = params
        .iter()
        .zip(&slots)
        .filter(|(p, s)| p.required && s.is_none())
        .map(|(p, _)| format!("`{}`", p.name))
        .collect();
    if !missing.is_empty() {
        mistakes.push(Mistake {
            code: crate::Code::MissingArgument,
            span: call,
            message: format!("`{callee}` is missing {}", missing.join(", ")),
            label: "missing arguments".into(),
            help: shown.to_string(),
        });
    }
    Bound { slots, mistakes }
}

impl<T> Bound<T> {
    /// The mistake a run stops at: the first in the source, as the
    /// checker lists them.
    pub(crate) fn first_mistake(&mut self) -> Option<Mistake> {
        self.mistakes.sort_by_key(|m| m.span.start);
        (!self.mistakes.is_empty()).then(|| self.mistakes.remove(0))
    }
}

/// A tool's parameters as binding sees them.
pub(crate) fn tool_params(sig: &Signature) -> Vec<Param<'_>> {
    sig.params.iter().map(|p| Param { name: p.name, required: matches!(p.default, Default::Required) }).collect()
}

/// An argument of the wrong type: `found` is how the argument's type reads
/// (the checker's inferred type, or the value's type at run time).
pub(crate) fn wrong_type(
    callee: &str,
    param: &str,
    want: &impl std::fmt::Display,
    found: &str,
    span: Span,
    shown: &str,
) -> Mistake {
    Mistake {
        code: crate::Code::Type,
        span,
        message: format!("`{param}` of `{callee}` must be {want}, found {found}"),
        label: format!("a {found}"),
        help: shown.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(name: &str, at: usize) -> Ident {
        Ident { node: name.to_string(), span: Span { start: at, end: at + name.len() } }
    }

    fn params() -> Vec<Param<'static>> {
        vec![
            Param { name: "x", required: true },
            Param { name: "lo", required: true },
            Param { name: "hi", required: false },
        ]
    }

    fn at(start: usize) -> Span {
        Span { start, end: start + 1 }
    }

    #[test]
    fn arguments_bind_by_position_then_by_name() {
        let hi = ident("hi", 20);
        let b = bind(
            "clip",
            &params(),
            "clip(x, lo, hi)",
            false,
            vec![
                Given { name: None, span: at(1), item: 'a' },
                Given { name: Some(&hi), span: at(23), item: 'c' },
                Given { name: None, span: at(5), item: 'b' },
            ],
            at(0),
        );
        assert!(b.mistakes.is_empty(), "{:?}", b.mistakes);
        let got: Vec<Option<char>> = b.slots.iter().map(|s| s.map(|(c, _)| c)).collect();
        assert_eq!(got, [Some('a'), Some('b'), Some('c')]);
        assert_eq!(b.slots[2].map(|s| s.1), Some(at(23)));
    }

    #[test]
    fn each_mistake_has_its_code_and_the_help_shows_the_call() {
        let (lo, lox, x) = (ident("lo", 10), ident("lox", 14), ident("x", 30));
        let b = bind(
            "clip",
            &params(),
            "clip(x, lo, hi)",
            false,
            vec![
                Given { name: Some(&lo), span: at(12), item: 1 },
                Given { name: Some(&lox), span: at(17), item: 2 },
                Given { name: Some(&lo), span: at(22), item: 3 },
                Given { name: None, span: at(26), item: 4 },
                Given { name: None, span: at(27), item: 5 },
                Given { name: None, span: at(28), item: 6 },
                Given { name: None, span: at(29), item: 7 },
            ],
            at(0),
        );
        let codes: Vec<crate::Code> = b.mistakes.iter().map(|m| m.code).collect();
        assert_eq!(
            codes,
            [
                crate::Code::UnknownArgument,
                crate::Code::DuplicateArgument,
                crate::Code::DuplicateArgument,
                crate::Code::ArgumentCount
            ]
        );
        assert_eq!(b.mistakes[0].help, "did you mean `lo`? clip(x, lo, hi)");
        assert_eq!(b.mistakes[0].span, lox.span);
        assert_eq!(b.mistakes[1].message, "`lo` is given twice");
        assert_eq!(b.mistakes[3].message, "`clip` takes at most 3 argument(s)");
        assert_eq!(b.mistakes[3].span, at(29));
        let missing = bind::<u8>(
            "clip",
            &params(),
            "clip(x, lo, hi)",
            false,
            vec![Given { name: Some(&x), span: at(31), item: 0 }],
            at(0),
        );
        assert_eq!(missing.mistakes.len(), 1);
        assert_eq!(missing.mistakes[0].message, "`clip` is missing `lo`");
        assert_eq!(missing.mistakes[0].code, crate::Code::MissingArgument);
    }

    #[test]
    fn a_tool_without_parameters_is_no_method() {
        let b =
            bind::<u8>("now", &[], "now() -> number", true, vec![Given { name: None, span: at(3), item: 0 }], at(0));
        assert_eq!(b.mistakes.len(), 1);
        assert_eq!(b.mistakes[0].message, "`now` takes no arguments, so it cannot be called as a method");
        assert_eq!(b.mistakes[0].help, "call it as now() -> number");
    }
}
