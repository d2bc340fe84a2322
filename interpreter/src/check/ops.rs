//! The types operators give.

use assay_grammar::*;

use super::Checker;
use crate::types::Type;

impl<'a> Checker<'a> {
    pub(super) fn binary_type(&mut self, op: BinOp, l: &Type, r: &Type, span: Span) -> Type {
        use BinOp::*;
        let numeric = Type::OneOf(vec![Type::Num, Type::Tensor]);
        let both = |t: &Type| t.accepts(l) && t.accepts(r);
        let known = l.is_known() && r.is_known();
        match op {
            And | Or => {
                self.expect_bool(l, span, &format!("the left side of `{}`", op.symbol()));
                self.expect_bool(r, span, &format!("the right side of `{}`", op.symbol()));
                Type::Bool
            }
            Eq | Ne | In => Type::Bool,
            Lt | Le | Gt | Ge => {
                if known && !both(&Type::Num) && !both(&Type::Str) {
                    self.err(
                        crate::Code::Type,
                        span,
                        format!("cannot compare {l} with {r} using `{}`", op.symbol()),
                        "incomparable",
                        "`<` and friends compare two numbers or two strings",
                    );
                }
                Type::Bool
            }
            Range => {
                for t in [l, r] {
                    if t.is_known() && !Type::Num.accepts(t) {
                        self.err(
                            crate::Code::Type,
                            span,
                            format!("a range needs numbers, found {t}"),
                            "not a number",
                            "write `0..n` with whole numbers",
                        );
                    }
                }
                Type::Range
            }
            Add | Sub | Mul | Div | Rem | Pow => {
                let joins = op == Add && (both(&Type::Str) || both(&Type::list(Type::Any)));
                if known && !joins && !both(&numeric) {
                    let help = if op == Add && (*l == Type::Str || *r == Type::Str) {
                        "to build text, interpolate: \"value: {x}\""
                    } else if op == Add {
                        "`+` adds numbers or tensors, and joins two strings or two lists"
                    } else {
                        "arithmetic applies to numbers and tensors"
                    };
                    self.err(
                        crate::Code::Type,
                        span,
                        format!("cannot apply `{}` to {l} and {r}", op.symbol()),
                        "incompatible operands",
                        help,
                    );
                    return Type::Any;
                }
                match (l, r) {
                    (Type::Num, Type::Num) => Type::Num,
                    (Type::Str, Type::Str) if op == Add => Type::Str,
                    (Type::List(a), Type::List(b)) if op == Add => {
                        Type::list(if a == b { (**a).clone() } else { Type::Any })
                    }
                    (Type::Tensor, x) | (x, Type::Tensor) if numeric.accepts(x) && x.is_known() => Type::Tensor,
                    _ => Type::Any,
                }
            }
        }
    }
}
