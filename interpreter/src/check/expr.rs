//! Expressions: names, fields, literals, indexing.

use std::collections::BTreeMap;
use std::sync::Arc;

use assay_grammar::*;

use super::{Checker, IMAGE_FIELDS, TENSOR_FIELDS};
use crate::diag::closest;
use crate::types::Type;

impl<'a> Checker<'a> {
    pub(super) fn expr(&mut self, e: &Expr) -> Type {
        match &e.node {
            ExprKind::Number(_) => Type::Num,
            ExprKind::Bool(_) => Type::Bool,
            ExprKind::None => Type::None,
            ExprKind::Str(parts) => {
                self.raw_interpolation(e.span);
                for p in parts {
                    if let StrPart::Expr(x) = p {
                        self.expr(x);
                    }
                }
                Type::Str
            }
            ExprKind::Name(n) => self.name(n, e.span),
            ExprKind::List(items) => {
                let mut elem: Option<Type> = None;
                for it in items {
                    let t = self.expr(it);
                    elem = Some(match elem {
                        None => t,
                        Some(prev) if prev == t => prev,
                        Some(_) => Type::Any,
                    });
                }
                Type::list(elem.unwrap_or(Type::Any))
            }
            ExprKind::Record(fields) => {
                let mut map = BTreeMap::new();
                for (k, v) in fields {
                    let t = self.expr(v);
                    map.insert(k.node.clone(), t);
                }
                Type::Record(Some(Arc::new(map)))
            }
            ExprKind::Unary { op, expr } => {
                let t = self.expr(expr);
                match op {
                    UnOp::Neg => {
                        if t.is_known() && !Type::OneOf(vec![Type::Num, Type::Tensor]).accepts(&t) {
                            self.err(
                                crate::Code::Type,
                                e.span,
                                format!("cannot negate a {t}"),
                                format!("a {t}"),
                                "`-` applies to numbers and tensors",
                            );
                        }
                        if t == Type::Tensor {
                            Type::Tensor
                        } else if t.is_known() {
                            Type::Num
                        } else {
                            Type::Any
                        }
                    }
                    UnOp::Not => {
                        self.expect_bool(&t, expr.span, "the operand of `not`");
                        Type::Bool
                    }
                }
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.expr(lhs);
                let r = self.expr(rhs);
                self.binary_type(*op, &l, &r, e.span)
            }
            ExprKind::Call { callee, args } => self.call(callee, args, e.span),
            ExprKind::Method { receiver, name, args } => self.method(receiver, name, args, e.span),
            ExprKind::Field { expr, name } => {
                let t = self.expr(expr);
                self.field(&t, name)
            }
            ExprKind::Index { expr, index } => {
                let t = self.expr(expr);
                let i = self.expr(index);
                match &t {
                    Type::Num | Type::Bool | Type::None | Type::Func | Type::Image | Type::Module => {
                        self.err(
                            crate::Code::Type,
                            e.span,
                            format!("cannot index a {t}"),
                            format!("a {t}"),
                            "index lists, strings, records, ranges and tensors: `xs[0]`, `r[\"key\"]`",
                        );
                        Type::Any
                    }
                    Type::List(elem) if i == Type::Num => (**elem).clone(),
                    Type::List(_) if i == Type::Range => t.clone(),
                    Type::Str => Type::Str,
                    Type::Range if i == Type::Num => Type::Num,
                    _ => Type::Any,
                }
            }
            ExprKind::Lambda(def) => {
                self.fn_body(def);
                Type::Func
            }
        }
    }

    pub(super) fn name(&mut self, n: &str, span: Span) -> Type {
        if let Some(v) = self.lookup(n) {
            return v.ty.clone();
        }
        if self.registry.signature(n).is_some() {
            return Type::Func;
        }
        let help = match (super::habits::name(n), closest(n, self.known_names())) {
            (Some(h), _) => h.to_string(),
            (None, Some(c)) => format!("did you mean `{c}`?"),
            (None, None) => "define it with `let` before using it; `assay tools` lists the tools".to_string(),
        };
        self.err(crate::Code::UnknownName, span, format!("unknown name `{n}`"), "not defined", help);
        Type::Any
    }

    pub(super) fn field(&mut self, t: &Type, name: &Ident) -> Type {
        match t {
            Type::Record(Some(fields)) => match fields.get(&name.node) {
                Some(t) => t.clone(),
                None => {
                    let names: Vec<&str> = fields.keys().map(|k| k.as_str()).collect();
                    let help = match closest(&name.node, names.iter().copied()) {
                        Some(c) => {
                            format!("did you mean `{c}`? the record has: {}", names.join(", "))
                        }
                        None => format!("the record has: {}", names.join(", ")),
                    };
                    self.err(
                        crate::Code::NoField,
                        name.span,
                        format!("the record has no field `{}`", name.node),
                        "no such field",
                        help,
                    );
                    Type::Any
                }
            },
            Type::Tensor => {
                if !TENSOR_FIELDS.contains(&name.node.as_str()) {
                    self.err(
                        crate::Code::NoField,
                        name.span,
                        format!("a tensor has no field `{}`", name.node),
                        "no such field",
                        format!("tensors have {}", TENSOR_FIELDS.join(", ")),
                    );
                }
                if name.node == "shape" {
                    Type::list(Type::Num)
                } else {
                    Type::Num
                }
            }
            Type::Image => {
                if !IMAGE_FIELDS.contains(&name.node.as_str()) {
                    self.err(
                        crate::Code::NoField,
                        name.span,
                        format!("an image has no field `{}`", name.node),
                        "no such field",
                        format!("images have {}", IMAGE_FIELDS.join(", ")),
                    );
                }
                Type::Num
            }
            Type::Num | Type::Str | Type::Bool | Type::None | Type::List(_) | Type::Range | Type::Func => {
                let help = if let Some(h) = super::habits::field(&name.node) {
                    h.to_string()
                } else if self.registry.signature(&name.node).is_some() {
                    format!("`{0}` is a tool: call it as `x.{0}()` or `{0}(x)`", name.node)
                } else {
                    "only records, tensors, images and tool objects have fields".to_string()
                };
                self.err(
                    crate::Code::NoField,
                    name.span,
                    format!("a {t} has no field `{}`", name.node),
                    "no such field",
                    help,
                );
                Type::Any
            }
            _ => Type::Any,
        }
    }
}
