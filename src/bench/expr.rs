//! The expressions benchmark functions are built from, rendered three
//! ways from one tree: as Assay code (the ground truth an answer is scored
//! against), as rhai (the black box an investigator calls) and evaluated
//! here (for the corruption's mean and for checking that the two agree).

use std::fmt::Write as _;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum E {
    X,
    C(f64),
    Add(Box<E>, Box<E>),
    Sub(Box<E>, Box<E>),
    Mul(Box<E>, Box<E>),
    Div(Box<E>, Box<E>),
    /// A unary function both languages have: abs, sqrt, log (natural),
    /// exp, sin, cos, tanh, floor, ceil.
    F(Fun, Box<E>),
    /// 1 where `a > b`, else 0.
    Gt(Box<E>, Box<E>),
    /// 1 where `a <= b`, else 0.
    Le(Box<E>, Box<E>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Fun {
    Abs,
    Sqrt,
    Log,
    Exp,
    Sin,
    Cos,
    Tanh,
    Floor,
    Ceil,
}

impl Fun {
    fn assay(self) -> &'static str {
        match self {
            Fun::Abs => "abs",
            Fun::Sqrt => "sqrt",
            Fun::Log => "log",
            Fun::Exp => "exp",
            Fun::Sin => "sin",
            Fun::Cos => "cos",
            Fun::Tanh => "tanh",
            Fun::Floor => "floor",
            Fun::Ceil => "ceil",
        }
    }
    fn rhai(self) -> &'static str {
        match self {
            Fun::Log => "ln",
            Fun::Ceil => "ceiling",
            f => f.assay(),
        }
    }
    fn eval(self, v: f64) -> f64 {
        match self {
            Fun::Abs => v.abs(),
            Fun::Sqrt => v.sqrt(),
            Fun::Log => v.ln(),
            Fun::Exp => v.exp(),
            Fun::Sin => v.sin(),
            Fun::Cos => v.cos(),
            Fun::Tanh => v.tanh(),
            Fun::Floor => v.floor(),
            Fun::Ceil => v.ceil(),
        }
    }
}

pub(crate) fn x() -> E {
    E::X
}
pub(crate) fn c(v: f64) -> E {
    E::C(v)
}
pub(crate) fn add(a: E, b: E) -> E {
    E::Add(Box::new(a), Box::new(b))
}
pub(crate) fn sub(a: E, b: E) -> E {
    E::Sub(Box::new(a), Box::new(b))
}
pub(crate) fn mul(a: E, b: E) -> E {
    E::Mul(Box::new(a), Box::new(b))
}
pub(crate) fn div(a: E, b: E) -> E {
    E::Div(Box::new(a), Box::new(b))
}
pub(crate) fn f(fun: Fun, a: E) -> E {
    E::F(fun, Box::new(a))
}
pub(crate) fn gt(a: E, b: E) -> E {
    E::Gt(Box::new(a), Box::new(b))
}
pub(crate) fn le(a: E, b: E) -> E {
    E::Le(Box::new(a), Box::new(b))
}

/// A number as both languages read it: always with a decimal point (rhai
/// keeps integers and floats apart), never in exponent form, negative in
/// parentheses.
pub(crate) fn lit(v: f64) -> String {
    let s = if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.1}") } else { format!("{v}") };
    if v < 0.0 {
        format!("({s})")
    } else {
        s
    }
}

impl E {
    pub(crate) fn eval(&self, xv: f64) -> f64 {
        match self {
            E::X => xv,
            E::C(v) => *v,
            E::Add(a, b) => a.eval(xv) + b.eval(xv),
            E::Sub(a, b) => a.eval(xv) - b.eval(xv),
            E::Mul(a, b) => a.eval(xv) * b.eval(xv),
            E::Div(a, b) => a.eval(xv) / b.eval(xv),
            E::F(fun, a) => fun.eval(a.eval(xv)),
            E::Gt(a, b) => f64::from(u8::from(a.eval(xv) > b.eval(xv))),
            E::Le(a, b) => f64::from(u8::from(a.eval(xv) <= b.eval(xv))),
        }
    }

    /// Assay source of the expression.
    pub(crate) fn assay(&self) -> String {
        let mut s = String::new();
        self.write(&mut s, false);
        s
    }

    /// rhai source of the expression.
    pub(crate) fn rhai(&self) -> String {
        let mut s = String::new();
        self.write(&mut s, true);
        s
    }

    fn write(&self, out: &mut String, rhai: bool) {
        let bin = |out: &mut String, a: &E, op: &str, b: &E| {
            out.push('(');
            a.write(out, rhai);
            let _ = write!(out, " {op} ");
            b.write(out, rhai);
            out.push(')');
        };
        match self {
            E::X => out.push('x'),
            E::C(v) => out.push_str(&lit(*v)),
            E::Add(a, b) => bin(out, a, "+", b),
            E::Sub(a, b) => bin(out, a, "-", b),
            E::Mul(a, b) => bin(out, a, "*", b),
            E::Div(a, b) => bin(out, a, "/", b),
            E::F(fun, a) => {
                out.push_str(if rhai { fun.rhai() } else { fun.assay() });
                out.push('(');
                a.write(out, rhai);
                out.push(')');
            }
            E::Gt(a, b) | E::Le(a, b) => {
                let op = if matches!(self, E::Gt(..)) { ">" } else { "<=" };
                if rhai {
                    out.push_str("(if ");
                    a.write(out, rhai);
                    let _ = write!(out, " {op} ");
                    b.write(out, rhai);
                    out.push_str(" { 1.0 } else { 0.0 })");
                } else {
                    out.push_str("num(");
                    a.write(out, rhai);
                    let _ = write!(out, " {op} ");
                    b.write(out, rhai);
                    out.push(')');
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_read_the_same_in_both_languages() {
        assert_eq!(lit(2.0), "2.0");
        assert_eq!(lit(-4.5), "(-4.5)");
        assert_eq!(lit(0.00001), "0.00001");
        let e = add(mul(c(-2.0), x()), gt(x(), c(0.0)));
        assert_eq!(e.assay(), "(((-2.0) * x) + num(x > 0.0))");
        assert_eq!(e.rhai(), "(((-2.0) * x) + (if x > 0.0 { 1.0 } else { 0.0 }))");
        assert_eq!(e.eval(3.0), -5.0);
    }
}
