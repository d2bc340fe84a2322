//! Calls of tools, script functions and rhai functions, and methods.

use assay_grammar::*;

use super::Checker;
use crate::bind::{self, bind, defined_as, tool_params, wrong_type, Given, Mistake};
use crate::diag::closest;
use crate::tool::Signature;
use crate::types::Type;

impl<'a> Checker<'a> {
    pub(super) fn call(&mut self, callee: &Expr, args: &[Arg], span: Span) -> Type {
        if let ExprKind::Name(n) = &callee.node {
            if let Some(var) = self.lookup(n).cloned() {
                for a in args {
                    self.expr(&a.value);
                }
                if let Some(def) = &var.func {
                    self.check_script_call(n, def, args, span);
                } else if var.ty.is_known() && var.ty != Type::Func && !matches!(var.ty, Type::Handle(_)) {
                    self.err(
                        crate::Code::NotCallable,
                        callee.span,
                        format!("`{n}` is a {} and cannot be called", var.ty),
                        "not a function",
                        "only functions and tools can be called",
                    );
                }
                return Type::Any;
            }
            if let Some(sig) = self.registry.signature(n) {
                let arg_types: Vec<Type> = args.iter().map(|a| self.expr(&a.value)).collect();
                return self.check_tool_call(sig, args, &arg_types, None, span);
            }
            for a in args {
                self.expr(&a.value);
            }
            let help = match (super::habits::name(n), closest(n, self.known_names())) {
                (Some(h), _) => h.to_string(),
                (None, Some(c)) => match self.registry.signature(c) {
                    Some(sig) => format!("did you mean `{c}`? {}", sig.render()),
                    None => format!("did you mean `{c}`?"),
                },
                (None, None) => "`assay tools` lists every tool with its signature".to_string(),
            };
            self.err(
                crate::Code::UnknownTool,
                callee.span,
                format!("unknown function or tool `{n}`"),
                "not defined",
                help,
            );
            return Type::Any;
        }
        let t = self.expr(callee);
        for a in args {
            self.expr(&a.value);
        }
        if t.is_known() && t != Type::Func && !matches!(t, Type::Handle(_)) {
            self.err(
                crate::Code::NotCallable,
                callee.span,
                format!("a {t} cannot be called"),
                "not a function",
                "only functions and tools can be called",
            );
        }
        Type::Any
    }

    pub(super) fn method(&mut self, receiver: &Expr, name: &Ident, args: &[Arg], span: Span) -> Type {
        let rt = self.expr(receiver);
        // Module functions.
        if rt == Type::Module {
            for a in args {
                self.expr(&a.value);
                if let Some(n) = &a.name {
                    self.err(
                        crate::Code::NamedArgument,
                        n.span,
                        "rhai functions take only positional arguments",
                        "named argument",
                        "pass the arguments in order",
                    );
                }
            }
            let module = match &receiver.node {
                ExprKind::Name(alias) => self.lookup(alias).and_then(|v| v.module.clone()),
                _ => None,
            };
            if let Some(m) = module {
                match m.functions.get(&name.node) {
                    None => {
                        let names: Vec<&str> = m.functions.keys().map(|k| k.as_str()).collect();
                        let help = match closest(&name.node, names.iter().copied()) {
                            Some(c) => format!("did you mean `{c}`? {} defines: {}", m.path_display, names.join(", ")),
                            None => format!(
                                "{} defines: {}",
                                m.path_display,
                                if names.is_empty() { "no functions".into() } else { names.join(", ") }
                            ),
                        };
                        self.err(
                            crate::Code::UnknownFunction,
                            name.span,
                            format!("module `{}` has no function `{}`", m.alias, name.node),
                            "not in the module",
                            help,
                        );
                    }
                    Some(overloads) => {
                        if !overloads.iter().any(|p| p.len() == args.len()) {
                            let forms: Vec<String> =
                                overloads.iter().map(|p| format!("{}({})", name.node, p.join(", "))).collect();
                            self.err(
                                crate::Code::ArgumentCount,
                                span,
                                format!(
                                    "`{}.{}` takes {} argument(s), given {}",
                                    m.alias,
                                    name.node,
                                    overloads.iter().map(|p| p.len().to_string()).collect::<Vec<_>>().join(" or "),
                                    args.len()
                                ),
                                "wrong number of arguments",
                                format!("defined as {}", forms.join(" and ")),
                            );
                        }
                    }
                }
            }
            return Type::Any;
        }
        // A record's function field.
        if let Type::Record(Some(fields)) = &rt {
            if let Some(ft) = fields.get(&name.node) {
                for a in args {
                    self.expr(&a.value);
                }
                if ft.is_known() && *ft != Type::Func {
                    self.err(
                        crate::Code::NotCallable,
                        name.span,
                        format!("field `{}` is a {ft} and cannot be called", name.node),
                        "not a function",
                        "only functions and tools can be called",
                    );
                }
                return Type::Any;
            }
        }
        // Sugar: x.f(a) is f(x, a).
        if let Some(sig) = self.registry.signature(&name.node) {
            let arg_types: Vec<Type> = args.iter().map(|a| self.expr(&a.value)).collect();
            return self.check_tool_call(sig, args, &arg_types, Some((rt, receiver.span)), span);
        }
        for a in args {
            self.expr(&a.value);
        }
        if matches!(rt, Type::Record(_) | Type::Any | Type::Handle(_)) {
            // A record field not known statically, or a tool object: checked at run time.
            if matches!(rt, Type::Record(None) | Type::Any) {
                return Type::Any;
            }
        }
        let help = match (super::habits::method(&name.node), closest(&name.node, self.registry.names())) {
            (Some(h), _) => h.to_string(),
            (None, Some(c)) => {
                format!("did you mean `{c}`? {}", self.registry.signature(c).map(|s| s.render()).unwrap_or_default())
            }
            (None, None) => "`x.f(a)` calls the tool `f(x, a)`; `assay tools` lists the tools".to_string(),
        };
        self.err(
            crate::Code::UnknownTool,
            name.span,
            format!("no tool or method `{}` for a {rt}", name.node),
            "unknown method",
            help,
        );
        Type::Any
    }

    /// Reports a mistake binding a call's arguments (see `crate::bind`).
    pub(super) fn mistake(&mut self, m: Mistake) {
        self.err(m.code, m.span, m.message, m.label, m.help);
    }

    pub(super) fn check_script_call(&mut self, name: &str, def: &FnDef, args: &[Arg], span: Span) {
        let params: Vec<bind::Param> =
            def.params.iter().map(|p| bind::Param { name: &p.name.node, required: p.default.is_none() }).collect();
        let shown = defined_as(name, &params);
        let given = args.iter().map(|a| Given { name: a.name.as_ref(), span: a.value.span, item: () }).collect();
        for m in bind(name, &params, &shown, false, given, span).mistakes {
            self.mistake(m);
        }
    }

    pub(super) fn check_tool_call(
        &mut self,
        sig: &Signature,
        args: &[Arg],
        arg_types: &[Type],
        receiver: Option<(Type, Span)>,
        span: Span,
    ) -> Type {
        self.not_configured(sig, span);
        let params = tool_params(sig);
        let shown = sig.render();
        let method = receiver.is_some();
        let mut given: Vec<Given<Type>> = Vec::with_capacity(args.len() + 1);
        if let Some((t, s)) = receiver {
            given.push(Given { name: None, span: s, item: t });
        }
        for (a, t) in args.iter().zip(arg_types) {
            given.push(Given { name: a.name.as_ref(), span: a.value.span, item: t.clone() });
        }
        let bound = bind(sig.name, &params, &shown, method, given, span);
        for m in bound.mistakes {
            self.mistake(m);
        }
        for (p, slot) in sig.params.iter().zip(bound.slots) {
            if let Some((t, s)) = slot {
                if !p.ty.accepts(&t) {
                    self.mistake(wrong_type(sig.name, p.name, &p.ty, &t.to_string(), s, &shown));
                }
            }
        }
        sig.returns.clone()
    }
}
