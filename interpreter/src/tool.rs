//! The `Tool` trait and the one registry of tools. A tool declares its
//! signature (typed parameters with defaults), a one-paragraph doc and
//! examples; the checker, `assay tools`, docs/tools.md and the agent prompt
//! are all generated from these declarations.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use ndarray::ArrayD;

use crate::tensor::Tensor;
use rand_chacha::ChaCha8Rng;

use crate::types::Type;
pub use crate::value::iter_values;
use crate::value::{Func, Value};

/// A parameter's default: required, or a value used when it is omitted.
#[derive(Clone, Debug)]
pub enum Default {
    Required,
    Value(Value),
}

#[derive(Clone, Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub ty: Type,
    pub default: Default,
    pub doc: &'static str,
}

/// What a tool is for: groups tools in `assay tools`, docs/tools.md and the
/// agent's guide, and decides what provisioning prepares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    Files,
    Images,
    Interventions,
    Lists,
    Math,
    Metrics,
    Models,
    Random,
    Statistics,
    Tensor,
    Text,
    Vision,
}

impl Category {
    /// The name docs and JSON use.
    pub const fn name(self) -> &'static str {
        match self {
            Category::Files => "files",
            Category::Images => "images",
            Category::Interventions => "interventions",
            Category::Lists => "lists",
            Category::Math => "math",
            Category::Metrics => "metrics",
            Category::Models => "models",
            Category::Random => "random",
            Category::Statistics => "statistics",
            Category::Tensor => "tensor",
            Category::Text => "text",
            Category::Vision => "vision",
        }
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug)]
pub struct Signature {
    pub name: &'static str,
    pub category: Category,
    pub params: Vec<ParamSpec>,
    pub returns: Type,
    pub doc: &'static str,
    /// Each example is a complete script; its asserts must pass.
    pub examples: Vec<&'static str>,
    /// An environment variable the tool needs (e.g. an LLM endpoint); its
    /// examples run only where it is set.
    pub requires: Option<&'static str>,
    /// The result depends on something outside the run (a hosted model, the
    /// clock): never answered from the call cache.
    pub volatile: bool,
    /// Under `assay run --shard i/n` the tool computes a share of its work
    /// (`ToolCtx::share`) and `Tool::merge` puts the shares together.
    pub shardable: bool,
}

impl Signature {
    pub fn new(name: &'static str, category: Category, doc: &'static str) -> Self {
        Signature {
            name,
            category,
            params: Vec::new(),
            returns: Type::Any,
            doc,
            examples: Vec::new(),
            requires: None,
            volatile: false,
            shardable: false,
        }
    }
    /// Marks the tool's result as depending on something outside the run
    /// (never cached).
    /// The doc, where it is composed at start-up (e.g. from a table).
    pub fn described(mut self, doc: &'static str) -> Self {
        self.doc = doc;
        self
    }
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
        self
    }
    /// Marks the tool as computing a share of its work per shard (see
    /// `crate::shard`); the tool must implement `Tool::merge`.
    pub fn shardable(mut self) -> Self {
        self.shardable = true;
        self
    }
    /// A required parameter.
    pub fn param(mut self, name: &'static str, ty: Type, doc: &'static str) -> Self {
        self.params.push(ParamSpec { name, ty, default: Default::Required, doc });
        self
    }
    /// An optional parameter with its default.
    pub fn opt(mut self, name: &'static str, ty: Type, default: Value, doc: &'static str) -> Self {
        let ty = if matches!(default, Value::None) { Type::optional(ty) } else { ty };
        self.params.push(ParamSpec { name, ty, default: Default::Value(default), doc });
        self
    }
    pub fn returns(mut self, ty: Type) -> Self {
        self.returns = ty;
        self
    }
    pub fn requires(mut self, var: &'static str) -> Self {
        self.requires = Some(var);
        self
    }
    pub fn example(mut self, code: &'static str) -> Self {
        self.examples.push(code);
        self
    }

    /// `name(a: number, b: string = "x") -> list`
    pub fn render(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| match &p.default {
                Default::Required => format!("{}: {}", p.name, p.ty),
                Default::Value(v) => format!("{}: {} = {}", p.name, p.ty, v.to_repr()),
            })
            .collect();
        format!("{}({}) -> {}", self.name, params.join(", "), self.returns)
    }
}

/// A failure inside a tool. It carries no span: the interpreter adds the
/// span of the call, or of the argument named by `param`.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolError {
    pub message: String,
    /// The parameter at fault, by name, if one is.
    pub param: Option<String>,
    pub help: Option<String>,
    /// The error's code where it is not `assay::tool` (a budget ran out).
    pub code: Option<crate::Code>,
}

impl ToolError {
    pub fn new(message: impl Into<String>) -> Self {
        ToolError { message: message.into(), param: None, help: None, code: None }
    }
    /// An error in the argument of the parameter `param` (a bound
    /// parameter's `name()`; a tool never spells a name itself). A string
    /// is no `Name`, so a misspelt (or any typed) name does not compile:
    ///
    /// ```compile_fail
    /// let _ = assay_interpreter::ToolError::arg("lo", "a parameter named by a string");
    /// ```
    pub fn arg(param: Name, message: impl Into<String>) -> Self {
        ToolError { message: message.into(), param: Some(param.as_str().to_string()), help: None, code: None }
    }
    /// The same error, blamed on the parameter `param`.
    pub fn at(mut self, param: Name) -> Self {
        self.param = Some(param.as_str().to_string());
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    /// The same error under another code than `assay::tool`.
    pub fn code(mut self, code: crate::Code) -> Self {
        self.code = Some(code);
        self
    }
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A tool parameter's name, as its declaration spells it. Only the binder
/// makes one (from the declaration), and a tool gets it from the argument it
/// was bound to (`Arg::name`, `Bound::name`): an error can only blame a
/// parameter the tool has, and no name is typed twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name(&'static str);

impl Name {
    /// For the binder and the declaring macro only: the name a signature declares.
    #[doc(hidden)]
    pub const fn declared(name: &'static str) -> Name {
        Name(name)
    }
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A bound parameter: the value a tool got and the parameter it came in
/// by. It reads as the value (`*p.lo`, `p.path.len()`) and blames itself:
/// `p.lo.error("...")`.
#[derive(Debug)]
pub struct Bound<T> {
    value: T,
    name: Name,
}

impl<T> Bound<T> {
    pub fn new(name: Name, value: T) -> Bound<T> {
        Bound { value, name }
    }
    /// The parameter's name, for errors about it.
    pub fn name(&self) -> Name {
        self.name
    }
    /// An error about this argument.
    pub fn error(&self, message: impl Into<String>) -> ToolError {
        ToolError::arg(self.name, message)
    }
    /// The value, no longer bound.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> std::ops::Deref for Bound<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: std::fmt::Display> std::fmt::Display for Bound<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value.fmt(f)
    }
}

/// Compares as the value (`p.k > 0`).
impl<T: PartialEq> PartialEq<T> for Bound<T> {
    fn eq(&self, other: &T) -> bool {
        self.value == *other
    }
}

impl<T: PartialOrd> PartialOrd<T> for Bound<T> {
    fn partial_cmp(&self, other: &T) -> Option<std::cmp::Ordering> {
        self.value.partial_cmp(other)
    }
}

impl<T> std::ops::DerefMut for Bound<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

/// Bound arguments, one per declared parameter, defaults filled in. Tools
/// read them by parameter name, the same names their signature declares
/// and error messages and diagnostics use.
#[derive(Debug, Clone)]
pub struct Args {
    pub values: Vec<Value>,
    pub names: Vec<&'static str>,
}

/// One bound argument, as a tool's declared parameter holds it when its
/// value is read lazily or in more than one way: the same accessors as
/// `Args`, without naming the parameter again.
#[derive(Debug, Clone)]
pub struct Arg(Args);

impl Arg {
    pub fn new(name: &'static str, value: Value) -> Arg {
        Arg(Args { values: vec![value], names: vec![name] })
    }
    /// The parameter's name, for errors about it.
    pub fn name(&self) -> Name {
        Name(self.0.names[0])
    }
    pub fn get(&self) -> &Value {
        &self.0.values[0]
    }
    pub fn handle<T: 'static>(&self, what: &str) -> Result<&T, ToolError> {
        self.0.handle(self.0.names[0], what)
    }
    pub fn is_none(&self) -> bool {
        self.0.is_none(self.0.names[0])
    }
    pub fn num(&self) -> Result<f64, ToolError> {
        self.0.num(self.0.names[0])
    }
    pub fn opt_num(&self) -> Result<Option<f64>, ToolError> {
        self.0.opt_num(self.0.names[0])
    }
    pub fn int(&self) -> Result<i64, ToolError> {
        self.0.int(self.0.names[0])
    }
    pub fn count(&self) -> Result<usize, ToolError> {
        self.0.count(self.0.names[0])
    }
    pub fn opt_int(&self) -> Result<Option<i64>, ToolError> {
        self.0.opt_int(self.0.names[0])
    }
    pub fn bool(&self) -> Result<bool, ToolError> {
        self.0.bool(self.0.names[0])
    }
    pub fn str(&self) -> Result<&str, ToolError> {
        self.0.str(self.0.names[0])
    }
    pub fn opt_str(&self) -> Result<Option<&str>, ToolError> {
        self.0.opt_str(self.0.names[0])
    }
    pub fn func(&self) -> Result<&Value, ToolError> {
        self.0.func(self.0.names[0])
    }
    pub fn items(&self) -> Result<Vec<Value>, ToolError> {
        self.0.items(self.0.names[0])
    }
    pub fn record(&self) -> Result<&BTreeMap<String, Value>, ToolError> {
        self.0.record(self.0.names[0])
    }
    pub fn numbers(&self) -> Result<Vec<f64>, ToolError> {
        self.0.numbers(self.0.names[0])
    }
    pub fn tensor(&self) -> Result<Tensor, ToolError> {
        self.0.tensor(self.0.names[0])
    }
    /// An error about this argument.
    pub fn error(&self, message: impl Into<String>) -> ToolError {
        ToolError::arg(self.name(), message)
    }
}

impl Args {
    /// The argument of the parameter `name`, for a helper that reads it.
    pub fn arg(&self, name: &'static str) -> Arg {
        let i = self.names.iter().position(|n| *n == name);
        debug_assert!(i.is_some(), "a tool reads `{name}`, which its signature does not declare ({:?})", self.names);
        match i {
            Some(i) => Arg::new(self.names[i], self.values.get(i).cloned().unwrap_or_default()),
            None => Arg::new("?", Value::None),
        }
    }
    /// The argument of the parameter `name`.
    /// A tool object of type `T` (a model, unit, data set...), or the error
    /// naming what was expected (`what`, e.g. "a unit (from unit() or
    /// layer())") and what was found: the one downcast every tool uses.
    pub fn handle<T: 'static>(&self, name: &'static str, what: &str) -> Result<&T, ToolError> {
        match self.get(name) {
            Value::Handle(h) => h
                .as_any()
                .downcast_ref::<T>()
                .ok_or_else(|| ToolError::arg(Name(name), format!("expected {what}, found a {}", h.kind()))),
            other => Err(ToolError::arg(Name(name), format!("expected {what}, found a {}", other.type_name()))),
        }
    }

    pub fn get(&self, name: &'static str) -> &Value {
        let i = self.names.iter().position(|n| *n == name);
        // A tool reading a parameter its signature does not declare is a bug
        // in the tool; test builds stop there, so the examples and the
        // edge-value test find it.
        debug_assert!(i.is_some(), "a tool reads `{name}`, which its signature does not declare ({:?})", self.names);
        i.and_then(|i| self.values.get(i)).unwrap_or(&Value::None)
    }
    fn wrong(&self, name: &'static str, want: &str) -> ToolError {
        ToolError::arg(Name(name), format!("`{name}` must be {want}, found {}", self.get(name).type_name()))
    }
    pub fn is_none(&self, name: &'static str) -> bool {
        matches!(self.get(name), Value::None)
    }
    pub fn num(&self, name: &'static str) -> Result<f64, ToolError> {
        match self.get(name) {
            Value::Num(n) => Ok(*n),
            _ => Err(self.wrong(name, "a number")),
        }
    }
    pub fn opt_num(&self, name: &'static str) -> Result<Option<f64>, ToolError> {
        if self.is_none(name) {
            Ok(None)
        } else {
            self.num(name).map(Some)
        }
    }
    /// A whole number (e.g. a count or an index).
    pub fn int(&self, name: &'static str) -> Result<i64, ToolError> {
        let n = self.num(name)?;
        if n.fract() != 0.0 || !n.is_finite() || n.abs() > 9.0e15 {
            return Err(ToolError::arg(Name(name), format!("`{name}` must be a whole number, found {n}")));
        }
        Ok(n as i64)
    }
    /// A whole number at least zero.
    pub fn count(&self, name: &'static str) -> Result<usize, ToolError> {
        let n = self.int(name)?;
        if n < 0 {
            return Err(ToolError::arg(Name(name), format!("`{name}` must not be negative, found {n}")));
        }
        Ok(n as usize)
    }
    pub fn opt_int(&self, name: &'static str) -> Result<Option<i64>, ToolError> {
        if self.is_none(name) {
            Ok(None)
        } else {
            self.int(name).map(Some)
        }
    }
    pub fn bool(&self, name: &'static str) -> Result<bool, ToolError> {
        match self.get(name) {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.wrong(name, "true or false")),
        }
    }
    pub fn str(&self, name: &'static str) -> Result<&str, ToolError> {
        match self.get(name) {
            Value::Str(s) => Ok(s),
            _ => Err(self.wrong(name, "a string")),
        }
    }
    pub fn opt_str(&self, name: &'static str) -> Result<Option<&str>, ToolError> {
        if self.is_none(name) {
            Ok(None)
        } else {
            self.str(name).map(Some)
        }
    }
    pub fn func(&self, name: &'static str) -> Result<&Value, ToolError> {
        match self.get(name) {
            v @ Value::Func(_) => Ok(v),
            _ => Err(self.wrong(name, "a function (a name or `x => ...`)")),
        }
    }
    /// The items of a list, range, string (characters) or 1-D tensor.
    pub fn items(&self, name: &'static str) -> Result<Vec<Value>, ToolError> {
        iter_values(self.get(name)).ok_or_else(|| self.wrong(name, "a list"))
    }
    pub fn record(&self, name: &'static str) -> Result<&BTreeMap<String, Value>, ToolError> {
        match self.get(name) {
            Value::Record(r) => Ok(r),
            _ => Err(self.wrong(name, "a record")),
        }
    }
    /// Numbers from a list, range or tensor (flattened).
    pub fn numbers(&self, name: &'static str) -> Result<Vec<f64>, ToolError> {
        to_numbers(self.get(name)).map_err(|what| {
            ToolError::arg(Name(name), format!("`{name}` must be numbers (a list, range or tensor), {what}"))
        })
    }
    /// A tensor, converting a (nested) list of numbers.
    pub fn tensor(&self, name: &'static str) -> Result<Tensor, ToolError> {
        to_tensor(self.get(name)).map_err(|what| {
            ToolError::arg(Name(name), format!("`{name}` must be a tensor or a nested list of numbers: {what}"))
        })
    }
}

/// Flattens numbers out of a list (of numbers), range or tensor.
pub fn to_numbers(v: &Value) -> Result<Vec<f64>, String> {
    match v {
        Value::Num(n) => Ok(vec![*n]),
        Value::Range(a, b) => Ok((*a..*b).map(|i| i as f64).collect()),
        Value::Tensor(t) => Ok(t.iter().map(|x| *x as f64).collect()),
        Value::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, x) in items.iter().enumerate() {
                match x {
                    Value::Num(n) => out.push(*n),
                    other => return Err(format!("but item {i} is a {}", other.type_name())),
                }
            }
            Ok(out)
        }
        other => Err(format!("found {}", other.type_name())),
    }
}

/// Builds a tensor from a tensor, a number, or a rectangular nested list.
pub fn to_tensor(v: &Value) -> Result<Tensor, String> {
    fn shape_of(v: &Value, shape: &mut Vec<usize>) -> Result<(), String> {
        match v {
            Value::Num(_) => Ok(()),
            Value::List(items) => {
                shape.push(items.len());
                match items.first() {
                    Some(first) => shape_of(first, shape),
                    None => Ok(()),
                }
            }
            other => Err(format!("found {}", other.type_name())),
        }
    }
    fn flatten(v: &Value, depth: usize, shape: &[usize], out: &mut Vec<f32>) -> Result<(), String> {
        match v {
            Value::Num(n) if depth == shape.len() => {
                out.push(*n as f32);
                Ok(())
            }
            Value::List(items) if depth < shape.len() && items.len() == shape[depth] => {
                for x in items.iter() {
                    flatten(x, depth + 1, shape, out)?;
                }
                Ok(())
            }
            _ => Err("the nested lists are not rectangular (rows of different lengths or types)".into()),
        }
    }
    match v {
        Value::Tensor(t) => Ok(t.clone()),
        Value::Range(..) | Value::Num(_) => {
            let xs = to_numbers(v)?;
            let n = xs.len();
            let arr = ArrayD::from_shape_vec(
                if matches!(v, Value::Num(_)) { vec![] } else { vec![n] },
                xs.into_iter().map(|x| x as f32).collect(),
            )
            .map_err(|e| e.to_string())?;
            Ok(Tensor::new(arr))
        }
        Value::List(_) => {
            let mut shape = Vec::new();
            shape_of(v, &mut shape)?;
            let mut data = Vec::new();
            flatten(v, 0, &shape, &mut data)?;
            ArrayD::from_shape_vec(shape, data).map(Tensor::new).map_err(|e| e.to_string())
        }
        other => Err(format!("found {}", other.type_name())),
    }
}

/// What a tool may ask of the run that calls it. Everything a tool touches
/// outside its arguments goes through here, so it is sandboxed and recorded.
pub trait ToolCtx {
    /// Randomness for this call, derived from the run's seed and the step.
    fn rng(&mut self) -> &mut ChaCha8Rng;
    /// Calls a function value (a script function, a tool, a rhai function).
    fn call(&mut self, f: &Value, args: Vec<Value>) -> Result<Value, ToolError>;
    /// Resolves a path the script named, refusing anything outside the
    /// allowed roots (after following symlinks).
    fn resolve_read(&mut self, path: &str) -> Result<PathBuf, ToolError>;
    /// Reads a file under the allowed roots; its digest goes into the manifest.
    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, ToolError>;
    /// Reads a file under the allowed roots as a stream, handing `each` its
    /// bytes in order, a piece at a time (memory does not grow with the
    /// file, and the file may be larger than `read_file` takes); the digest
    /// of exactly the bytes handed over goes into the manifest and is
    /// returned. An error from `each` stops the read and is the call's.
    fn read_file_with(
        &mut self,
        path: &str,
        each: &mut dyn FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<String, ToolError> {
        let bytes = self.read_file(path)?;
        each(&bytes).map_err(ToolError::new)?;
        Ok(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)))
    }
    /// The files matching a glob under the allowed roots, as (path relative
    /// to the script's folder, real path), sorted.
    fn glob(&mut self, pattern: &str) -> Result<Vec<(String, PathBuf)>, ToolError>;
    /// The run's sandbox, for reads that happen later (a data set's items
    /// are read through it when a pass reaches them, not when listed).
    fn sandbox(&self) -> crate::sandbox::Sandbox;
    /// Records that a tool read a file by other means (e.g. a model runtime).
    fn note_input(&mut self, path: &std::path::Path, sha256: &str);
    /// Writes a file into the run's artifacts/ folder; returns its path
    /// relative to the run directory.
    fn write_artifact(&mut self, name: &str, bytes: &[u8]) -> Result<String, ToolError>;
    /// A file in the run folder (`artifacts/streams/NAME`) a tool may write
    /// as it goes, for data too large to hold: its real path and its path
    /// relative to the run folder. Each name once per run.
    fn stream_file(&mut self, name: &str) -> Result<(PathBuf, String), ToolError> {
        let _ = name;
        Err(ToolError::new("this run has no run folder to write a stream into"))
    }
    /// The share of its work a shardable tool computes in this run: `None`
    /// for the whole of it.
    fn share(&self) -> Option<crate::shard::Share> {
        None
    }
    /// Calls a function for item `item` of a shardable tool's work: the
    /// call's random streams depend on the item, not on which shard runs it.
    fn call_item(&mut self, f: &Value, args: Vec<Value>, item: u64) -> Result<Value, ToolError> {
        let _ = item;
        self.call(f, args)
    }
}

/// A built-in operation a script can call.
pub trait Tool: Send + Sync {
    fn signature(&self) -> Signature;
    fn call(&self, args: &Args, ctx: &mut dyn ToolCtx) -> Result<Value, ToolError>;
    /// For a shardable tool: its result from the partial results of every
    /// shard (in shard order), exactly the value one `call` over all of the
    /// work returns. In a shard (`ctx.share()` is set) it gets that shard's
    /// part alone and gives what the share covers, for the script to go on
    /// with.
    fn merge(&self, args: &Args, ctx: &mut dyn ToolCtx, parts: Vec<Value>) -> Result<Value, ToolError> {
        let _ = (args, ctx, parts);
        Err(ToolError::new("this tool cannot merge shards"))
    }
}

struct Entry {
    sig: Signature,
    tool: Arc<dyn Tool>,
}

/// Every tool a run can call, by name.
#[derive(Default)]
pub struct Registry {
    tools: BTreeMap<&'static str, Entry>,
    /// Names registered more than once (the first registration is kept).
    duplicates: Vec<&'static str>,
}

impl Registry {
    pub fn new() -> Self {
        Registry::default()
    }

    /// Adds a tool. Registering a name twice is a programming error in the
    /// registration list: the first registration is kept, the name is noted
    /// in `duplicates()`, and the `assay` command refuses to start.
    pub fn register(&mut self, tool: impl Tool + 'static) -> &mut Self {
        let sig = tool.signature();
        if self.tools.contains_key(sig.name) {
            self.duplicates.push(sig.name);
            return self;
        }
        self.tools.insert(sig.name, Entry { sig, tool: Arc::new(tool) });
        self
    }

    /// Names that were registered more than once.
    pub fn duplicates(&self) -> &[&'static str] {
        &self.duplicates
    }

    /// Takes a tool away (an agent's task may withhold tools that reveal its answer).
    pub fn remove(&mut self, name: &str) -> bool {
        self.tools.remove(name).is_some()
    }

    pub fn get(&self, name: &str) -> Option<(&Signature, Arc<dyn Tool>)> {
        self.tools.get(name).map(|e| (&e.sig, e.tool.clone()))
    }

    pub fn signature(&self, name: &str) -> Option<&Signature> {
        self.tools.get(name).map(|e| &e.sig)
    }

    pub fn signatures(&self) -> impl Iterator<Item = &Signature> {
        self.tools.values().map(|e| &e.sig)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.tools.keys().copied()
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
}

/// A tool as a function value.
pub fn tool_value(name: &str) -> Value {
    Value::Func(Func::Tool(Arc::from(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Named(&'static str, &'static str);

    impl Tool for Named {
        fn signature(&self) -> Signature {
            Signature::new(self.0, Category::Lists, self.1)
        }
        fn call(&self, _: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
            Ok(Value::None)
        }
    }

    #[test]
    fn a_name_registered_twice_is_reported_and_the_first_kept() {
        let mut r = Registry::new();
        r.register(Named("a", "first")).register(Named("b", "other"));
        assert!(r.duplicates().is_empty());
        r.register(Named("a", "second"));
        assert_eq!(r.duplicates(), ["a"]);
        assert_eq!(r.len(), 2);
        assert_eq!(r.signature("a").map(|s| s.doc), Some("first"));
    }
}
