//! Declaring a tool once: `tool!` turns one declaration (doc comments with
//! `assay` examples, typed parameters with their docs and defaults, and the
//! name of the function that is its body) into the tool's signature and a
//! call that binds its arguments by name into a typed struct, so names,
//! types, docs and examples cannot drift apart. The generated module `NAME`
//! holds `Params`, `sig()` and `call()`, and the declaration registers the
//! tool itself (an `inventory` submission that [`crate::registry`]
//! collects), so there is no list to add it to.
//!
//! The body is a plain function beside the declaration, named after the
//! tool (a function and a module of one name do not collide), taking the
//! bound `NAME::Params` and the context: rustfmt formats it, and "go to
//! definition" on the tool's name lands on it. A closure or any other
//! expression in its place does not compile.
//!
//! ```ignore
//! tool! {
//!     /// Limits x to the interval [lo, hi].
//!     ///
//!     /// ```assay
//!     /// assert clip(5, 0, 1) == 1
//!     /// ```
//!     clip in Math -> numeric();
//!     {
//!         /// a number, or numbers elementwise
//!         x: Numeric,
//!         /// lower bound
//!         lo: f64,
//!         /// upper bound
//!         hi: f64 = 1.0,
//!     }
//!     clip
//! }
//!
//! fn clip(p: clip::Params, _: &mut dyn ToolCtx) -> ToolResult {
//!     Ok(p.x.map(|x| x.max(*p.lo).min(*p.hi)))
//! }
//! ```
//!
//! A parameter's checker type comes from its Rust type (`Param::ty`) unless
//! given in brackets; `= DEFAULT` makes it optional with that default,
//! written as the Rust value it is (`= 1`, `= 0.5`, `= "max"`, `= true`;
//! `= None` for an `Option<T>` parameter; a `Value` for anything else; see
//! [`IntoDefault`]). The doc comment's text
//! outside fences is the tool's doc (lines joined by spaces); each
//! ` ```assay ` block is an example, a script whose asserts must pass.
//! Flags follow the return type: `-> Type::Any, volatile;`,
//! `requires("VAR")` (the `Signature` methods of those names), and
//! `shardable(MERGE)` for a tool that computes a share of its work per shard,
//! with `MERGE` the function that puts the shares together (it gets the
//! call's arguments bound as the body does: `fn(NAME::Params, ctx, parts)`).
//!
//! Each field of `Params` is the value bound to its parameter's name
//! (`Bound<T>`, which reads as the value): the body blames a parameter
//! through it (`p.lo.error("...")`, `p.lo.name()`), never by spelling the
//! name. A parameter typed `Arg` is bound as given (it carries its name
//! too) and read by the body with `Arg`'s accessors (`p.x.num()?`), for a
//! value that may be one of several types or is read only on some paths.

use std::sync::OnceLock;

use std::collections::BTreeMap;

use assay_interpreter::{Arg, Args, Tensor, ToolError, Type, Value};

/// A Rust type a tool parameter binds to.
pub(crate) trait Param: Sized {
    /// What the tool's body gets: the value with its parameter's name
    /// (`Bound<Self>`; an `Arg` carries its name already).
    type Bound;
    /// The type the checker and the docs know the parameter by.
    fn ty() -> Type;
    /// The argument of parameter `name`, converted (the error names it).
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError>;
    /// The argument of parameter `name`, bound to its name.
    fn bind(a: &Args, name: &'static str) -> Result<Self::Bound, ToolError>;
}

/// `Bound` and `bind` for a parameter type whose body gets `Bound<T>`.
macro_rules! bound_by_name {
    () => {
        type Bound = assay_interpreter::Bound<Self>;
        fn bind(
            a: &assay_interpreter::Args,
            name: &'static str,
        ) -> Result<assay_interpreter::Bound<Self>, assay_interpreter::ToolError> {
            Self::read(a, name).map(|v| assay_interpreter::Bound::new(assay_interpreter::Name::declared(name), v))
        }
    };
}
pub(crate) use bound_by_name;

impl Param for f64 {
    bound_by_name!();
    fn ty() -> Type {
        Type::Num
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        a.num(name)
    }
}

/// A whole number.
impl Param for i64 {
    bound_by_name!();
    fn ty() -> Type {
        Type::Num
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        a.int(name)
    }
}

/// A whole number at least zero (a count, a size).
impl Param for usize {
    bound_by_name!();
    fn ty() -> Type {
        Type::Num
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        a.count(name)
    }
}

impl Param for bool {
    bound_by_name!();
    fn ty() -> Type {
        Type::Bool
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        a.bool(name)
    }
}

impl Param for String {
    bound_by_name!();
    fn ty() -> Type {
        Type::Str
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        a.str(name).map(str::to_string)
    }
}

/// Numbers from a list, range or tensor.
impl Param for Vec<f64> {
    bound_by_name!();
    fn ty() -> Type {
        Type::list(Type::Num)
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        a.numbers(name)
    }
}

/// A tensor, or a nested list of numbers made into one.
impl Param for Tensor {
    bound_by_name!();
    fn ty() -> Type {
        Type::Tensor
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        a.tensor(name)
    }
}

/// Any value, as given.
impl Param for Value {
    bound_by_name!();
    fn ty() -> Type {
        Type::Any
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        Ok(a.get(name).clone())
    }
}

/// The items of a list, range, string or 1-D tensor.
impl Param for Vec<Value> {
    bound_by_name!();
    fn ty() -> Type {
        Type::list(Type::Any)
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        a.items(name)
    }
}

/// A record's fields.
impl Param for BTreeMap<String, Value> {
    bound_by_name!();
    fn ty() -> Type {
        Type::record()
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        a.record(name).cloned()
    }
}

/// The argument as given, read by the body when and as it needs it (a
/// value that may be one of several types, or is checked against others).
impl Param for Arg {
    type Bound = Arg;
    fn bind(a: &Args, name: &'static str) -> Result<Arg, ToolError> {
        Self::read(a, name)
    }
    fn ty() -> Type {
        Type::Any
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        Ok(a.arg(name))
    }
}

/// Absent when the argument is `none` (declare it `= None`).
impl<T: Param> Param for Option<T> {
    bound_by_name!();
    fn ty() -> Type {
        T::ty()
    }
    fn read(a: &Args, name: &'static str) -> Result<Self, ToolError> {
        if a.is_none(name) {
            Ok(None)
        } else {
            T::read(a, name).map(Some)
        }
    }
}

/// What a tool's body function returns.
pub(crate) type ToolResult = Result<assay_interpreter::Value, assay_interpreter::ToolError>;

/// What a tool's body function is given besides its arguments (re-exported
/// so that a tool's file names it with `tool`).
pub(crate) use assay_interpreter::ToolCtx;

/// A parameter's default, written as the Rust value it is (`= 1`,
/// `= 0.5`, `= "max"`, `= true`, `= None` for "none"); a `Value` for one
/// that is none of these.
pub(crate) trait IntoDefault {
    fn into_default(self) -> Value;
}

impl IntoDefault for f64 {
    fn into_default(self) -> Value {
        Value::Num(self)
    }
}

impl IntoDefault for i32 {
    fn into_default(self) -> Value {
        Value::Num(f64::from(self))
    }
}

impl IntoDefault for bool {
    fn into_default(self) -> Value {
        Value::Bool(self)
    }
}

impl IntoDefault for &str {
    fn into_default(self) -> Value {
        Value::str(self)
    }
}

/// `= None`: the parameter is optional, and absent unless given.
impl IntoDefault for Option<std::convert::Infallible> {
    fn into_default(self) -> Value {
        Value::None
    }
}

impl IntoDefault for Value {
    fn into_default(self) -> Value {
        self
    }
}

/// A tool's doc and examples, read from its doc comment once.
pub(crate) struct Doc {
    pub text: String,
    pub examples: Vec<String>,
}

/// Splits a doc comment (the `///` lines, each with its leading space) into
/// the doc (text outside fences, lines joined by spaces) and the examples
/// (each ` ```assay ` block, lines joined by newlines).
pub(crate) fn parse_doc(raw: &str) -> Doc {
    let mut text: Vec<&str> = Vec::new();
    let mut examples = Vec::new();
    let mut block: Option<Vec<&str>> = None;
    for line in raw.lines() {
        let line = line.strip_prefix(' ').unwrap_or(line);
        match &mut block {
            Some(lines) if line.trim_start().starts_with("```") => {
                examples.push(lines.join("\n"));
                block = None;
            }
            Some(lines) => lines.push(line),
            None if line.trim_start().starts_with("```") => block = Some(Vec::new()),
            None if !line.trim().is_empty() => text.push(line.trim()),
            None => {}
        }
    }
    Doc { text: text.join(" "), examples }
}

/// The parsed doc of one tool, kept for the process (signatures are made
/// once at registration, but the strings must outlive them).
pub(crate) fn doc_once(cell: &'static OnceLock<Doc>, raw: &str) -> &'static Doc {
    cell.get_or_init(|| parse_doc(raw))
}

/// See the module's doc.
macro_rules! tool {
    // `NAME as MODULE in ...`: the tool NAME in module MODULE, for a name
    // that would shadow something as a module (`str`, `fmt`).
    (
        $(#[doc = $doc:literal])*
        $name:ident as $module:ident in $cat:ident -> $ret:expr $(, $flag:ident $(($farg:expr))?)*;
        $params:tt
        $body:ident
    ) => {
        tool!(@build [$($doc)*] $name $module $cat [$ret] [$($flag $(($farg))?)*] $params $body);
    };
    (
        $(#[doc = $doc:literal])*
        $name:ident in $cat:ident -> $ret:expr $(, $flag:ident $(($farg:expr))?)*;
        $params:tt
        $body:ident
    ) => {
        tool!(@build [$($doc)*] $name $name $cat [$ret] [$($flag $(($farg))?)*] $params $body);
    };
    (
        @build [$($doc:literal)*] $name:ident $module:ident $cat:ident [$ret:expr] [$($flag:ident $(($farg:expr))?)*]
        {
            $(
                $(#[doc = $pdoc:literal])*
                $p:ident : $t:ty $([$pty:expr])? $(= $def:expr)?
            ),* $(,)?
        }
        $body:ident
    ) => {
        #[allow(non_snake_case, reason = "the module is named after the tool")]
        pub(crate) mod $module {
            #[allow(unused_imports, reason = "the body may use anything its file does")]
            use super::*;

            /// The tool's arguments, each bound to its parameter's name.
            pub(crate) struct Params {
                $(pub(crate) $p: <$t as $crate::core::declare::Param>::Bound,)*
            }

            /// Binds the arguments by name (also for a shardable tool's merge).
            #[allow(dead_code, unused_variables, reason = "used by merges, and by tools without parameters")]
            pub(crate) fn bind(a: &assay_interpreter::Args) -> Result<Params, assay_interpreter::ToolError> {
                Ok(Params { $($p: <$t as $crate::core::declare::Param>::bind(a, stringify!($p))?,)* })
            }

            pub(crate) fn sig() -> assay_interpreter::Signature {
                static DOC: ::std::sync::OnceLock<$crate::core::declare::Doc> = ::std::sync::OnceLock::new();
                let doc = $crate::core::declare::doc_once(&DOC, concat!($($doc, "\n"),*));
                let mut s = assay_interpreter::Signature::new(
                    stringify!($name),
                    assay_interpreter::Category::$cat,
                    doc.text.as_str(),
                );
                $(
                    let ty: assay_interpreter::Type = tool!(@ty $t $(, $pty)?);
                    let pdoc: &'static str = concat!($($pdoc),*).trim_start();
                    s = tool!(@param s, stringify!($p), ty, pdoc $(, $def)?);
                )*
                s = s.returns($ret);
                $(tool!(@flag s, $flag $(($farg))?);)*
                for e in &doc.examples {
                    s = s.example(e.as_str());
                }
                s
            }

            #[allow(unused_variables, reason = "a tool without parameters reads no arguments")]
            pub(crate) fn call(
                a: &assay_interpreter::Args,
                ctx: &mut dyn assay_interpreter::ToolCtx,
            ) -> Result<assay_interpreter::Value, assay_interpreter::ToolError> {
                let p = bind(a)?;
                let body: fn(Params, &mut dyn assay_interpreter::ToolCtx) -> $crate::core::declare::ToolResult = $body;
                body(p, ctx)
            }
        }

        ::inventory::submit! {
            $crate::core::FnTool::declared($module::sig, $module::call, tool!(@merge $module $([$flag $(($farg))?])*))
        }
    };
    (@flag $s:ident, shardable($merge:expr)) => { $s = $s.shardable() };
    (@flag $s:ident, $flag:ident $(($farg:expr))?) => { $s = $s.$flag($($farg)?) };
    // A shardable tool's merge gets the call's arguments bound, as its body does.
    (@merge $module:ident) => { None };
    (@merge $module:ident [shardable($merge:expr)] $($rest:tt)*) => {{
        fn merge(
            a: &assay_interpreter::Args,
            ctx: &mut dyn assay_interpreter::ToolCtx,
            parts: Vec<assay_interpreter::Value>,
        ) -> Result<assay_interpreter::Value, assay_interpreter::ToolError> {
            let merge: fn($module::Params, &mut dyn assay_interpreter::ToolCtx, Vec<assay_interpreter::Value>) -> Result<assay_interpreter::Value, assay_interpreter::ToolError> = $merge;
            merge($module::bind(a)?, ctx, parts)
        }
        Some(merge)
    }};
    (@merge $module:ident [$($other:tt)*] $($rest:tt)*) => { tool!(@merge $module $($rest)*) };
    (@ty $t:ty) => { <$t as $crate::core::declare::Param>::ty() };
    (@ty $t:ty, $pty:expr) => { $pty };
    (@param $s:ident, $n:expr, $ty:ident, $doc:ident) => { $s.param($n, $ty, $doc) };
    (@param $s:ident, $n:expr, $ty:ident, $doc:ident, $def:expr) => {
        $s.opt($n, $ty, $crate::core::declare::IntoDefault::into_default($def), $doc)
    };
}
pub(crate) use tool;

#[cfg(test)]
mod tests {
    use super::parse_doc;

    #[test]
    fn a_doc_comment_gives_the_doc_and_its_examples() {
        let raw = " Limits x to the interval\n [lo, hi].\n\n ```assay\n assert clip(5, 0, 1) == 1\n let y = 2\n ```\n More text.\n ```assay\n assert true\n ```\n";
        let d = parse_doc(raw);
        assert_eq!(d.text, "Limits x to the interval [lo, hi]. More text.");
        assert_eq!(d.examples, ["assert clip(5, 0, 1) == 1\nlet y = 2", "assert true"]);
    }
}
