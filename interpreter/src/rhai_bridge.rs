//! `use "file.rhai" as m`: rhai functions callable from scripts. The engine
//! starts raw and gets only rhai's pure standard packages; `eval`, `import`
//! and printing are cut off, and every call runs under operation, call-depth,
//! expression-depth and size limits. A rhai module can compute; it cannot
//! touch files, the network or processes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use assay_grammar::Span;
use rhai::packages::Package;
use rhai::{Dynamic, Engine, EvalAltResult, ParseError, Position};

use crate::diag::{Diag, SourceFile};
use crate::rhai_module::RhaiModule;
use crate::value::Value;

/// Limits on one call into rhai.
pub(crate) const MAX_OPERATIONS: u64 = 5_000_000;
pub(crate) const MAX_CALL_LEVELS: usize = 64;
pub(crate) const MAX_EXPR_DEPTH: usize = 64;
pub(crate) const MAX_STRING_SIZE: usize = 1 << 20;
pub(crate) const MAX_ARRAY_SIZE: usize = 100_000;
pub(crate) const MAX_MAP_SIZE: usize = 10_000;

/// The sandboxed engine every module runs on.
pub(crate) fn engine() -> Engine {
    let mut e = Engine::new_raw();
    e.register_global_module(rhai::packages::StandardPackage::new().as_shared_module());
    e.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    e.disable_symbol("eval");
    e.disable_symbol("import");
    e.on_print(|_| {});
    e.on_debug(|_, _, _| {});
    e.set_max_operations(MAX_OPERATIONS);
    e.set_max_call_levels(MAX_CALL_LEVELS);
    e.set_max_expr_depths(MAX_EXPR_DEPTH, MAX_EXPR_DEPTH);
    e.set_max_string_size(MAX_STRING_SIZE);
    e.set_max_array_size(MAX_ARRAY_SIZE);
    e.set_max_map_size(MAX_MAP_SIZE);
    e.set_max_modules(0);
    e.set_strict_variables(true);
    // rhai has `char.to_int()` but no way back; `chr(n)` is Assay's `chr`.
    e.register_fn("chr", |n: rhai::INT| -> Result<String, Box<EvalAltResult>> {
        u32::try_from(n)
            .ok()
            .and_then(char::from_u32)
            .map(|c| c.to_string())
            .ok_or_else(|| format!("{n} is not a Unicode code point").into())
    });
    e
}

/// A failed call: the message, and where in the .rhai file it happened.
#[derive(Debug, Clone)]
pub struct RhaiError {
    pub diag: Box<Diag>,
}

fn pos_span(file: &SourceFile, pos: Position) -> Option<Span> {
    let line = pos.line()?;
    let col = pos.position().unwrap_or(1);
    let start = file.offset_of(line, col);
    let end = file.text[start..].chars().next().map(|c| start + c.len_utf8()).unwrap_or(start);
    Some(Span::new(start, end))
}

impl RhaiModule {
    /// Compiles `text` (read from `path`); a syntax error points into the file.
    pub fn load(alias: &str, path: PathBuf, path_display: &str, text: &str, digest: String) -> Result<Self, Box<Diag>> {
        let source = SourceFile::new(path_display, text);
        let engine = engine();
        let ast = engine.compile(text).map_err(|e: ParseError| {
            let mut d = Diag::new(crate::Code::RhaiSyntax, format!("rhai syntax error in {path_display}: {}", e.0))
                .help("fix the rhai file; see https://rhai.rs/book for rhai's syntax");
            if let Some(span) = pos_span(&source, e.1) {
                d = d.at(&source, span, "here");
            }
            Box::new(d)
        })?;
        let mut functions: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
        for f in ast.iter_functions() {
            functions.entry(f.name.to_string()).or_default().push(f.params.iter().map(|p| p.to_string()).collect());
        }
        Ok(RhaiModule {
            alias: alias.into(),
            path,
            path_display: path_display.into(),
            digest,
            source,
            functions,
            opaque: false,
            engine,
            ast,
        })
    }

    /// Makes `name(x)`, a function of one number, callable from the
    /// module's rhai code: how a harness lets a black box reach computation
    /// it keeps from the script (a network run in ONNX Runtime).
    pub fn register_native(&mut self, name: &str, f: impl Fn(f64) -> Result<f64, String> + Send + Sync + 'static) {
        self.engine.register_fn(name, move |x: rhai::FLOAT| -> Result<rhai::FLOAT, Box<EvalAltResult>> {
            f(x).map_err(|e| e.into())
        });
    }

    /// A black box bound by the person running Assay (not loaded by the
    /// script, so not a file the script can read); errors reveal nothing of
    /// its source.
    pub fn load_opaque(alias: &str, text: &str, digest: String) -> Result<Self, Box<Diag>> {
        let mut m = RhaiModule::load(alias, PathBuf::from(format!("<{alias}>")), &format!("<{alias}>"), text, digest)
            .map_err(|_| {
            Box::new(Diag::new(crate::Code::RhaiSyntax, format!("the black box `{alias}` does not compile")))
        })?;
        m.opaque = true;
        Ok(m)
    }

    /// Calls a function; values are converted both ways.
    pub fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, RhaiError> {
        let mut dyn_args = Vec::with_capacity(args.len());
        for (i, a) in args.iter().enumerate() {
            dyn_args.push(to_dynamic(a).map_err(|m| {
                RhaiError {
                    diag: Box::new(
                        Diag::new(
                            crate::Code::RhaiValue,
                            format!("argument {} of {}.{}: {m}", i + 1, self.alias, name),
                        )
                        .help("rhai functions take numbers, strings, bools, none, lists and records"),
                    ),
                }
            })?);
        }
        let mut scope = rhai::Scope::new();
        let options = rhai::CallFnOptions::new().eval_ast(false).rewind_scope(true);
        let result: Result<Dynamic, Box<EvalAltResult>> =
            self.engine.call_fn_with_options(options, &mut scope, &self.ast, name, dyn_args);
        match result {
            Ok(d) => from_dynamic(&d).map_err(|m| RhaiError {
                diag: Box::new(
                    Diag::new(crate::Code::RhaiValue, format!("{}.{name} returned {m}", self.alias))
                        .help("return numbers, strings, bools, (), arrays or object maps"),
                ),
            }),
            Err(e) => Err(RhaiError { diag: Box::new(self.error_diag(name, &e)) }),
        }
    }

    fn error_diag(&self, name: &str, e: &EvalAltResult) -> Diag {
        let inner = e.unwrap_inner();
        if self.opaque {
            return Diag::new(crate::Code::BlackBox, format!("{}.{name} failed on these arguments", self.alias))
                .help("the black box cannot say why; try other inputs (numbers for a numeric function, strings for a string function)");
        }
        let (msg, help) = match inner {
            EvalAltResult::ErrorTooManyOperations(_) => (
                format!("{}.{name} ran more than {MAX_OPERATIONS} operations", self.alias),
                "a rhai function runs with an operation limit; look for an endless loop or work on less data".to_string(),
            ),
            EvalAltResult::ErrorStackOverflow(_) => (
                format!("{}.{name} recursed more than {MAX_CALL_LEVELS} levels", self.alias),
                "rhai calls are limited in depth; rewrite the recursion as a loop".to_string(),
            ),
            EvalAltResult::ErrorDataTooLarge(what, _) => (
                format!("{}.{name}: {what} exceeded its size limit", self.alias),
                format!("strings are limited to {MAX_STRING_SIZE} bytes, arrays to {MAX_ARRAY_SIZE} items, maps to {MAX_MAP_SIZE}"),
            ),
            other => (
                format!("error in {}.{name}: {}", self.alias, other.to_string().lines().next().unwrap_or("")),
                "fix the rhai function; the error points into the .rhai file".to_string(),
            ),
        };
        let mut d = Diag::new(crate::Code::Rhai, msg).help(help);
        if let Some(span) = pos_span(&self.source, inner.position()) {
            d = d.at(&self.source, span, "failed here");
        }
        d
    }
}

/// How deeply nested a value may be to cross into or out of rhai.
const MAX_NESTING: usize = 128;

fn to_dynamic(v: &Value) -> Result<Dynamic, String> {
    to_dynamic_at(v, 0)
}

fn to_dynamic_at(v: &Value, depth: usize) -> Result<Dynamic, String> {
    if depth > MAX_NESTING {
        return Err(format!("a value nested more than {MAX_NESTING} levels deep cannot be passed to rhai"));
    }
    let to_dynamic = |x: &Value| to_dynamic_at(x, depth + 1);
    Ok(match v {
        Value::None => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        // Numbers always cross as floats, so `x / 2` means what it does in Assay.
        Value::Num(n) => Dynamic::from_float(*n),
        Value::Str(s) => Dynamic::from(s.to_string()),
        Value::List(items) => {
            let arr: Result<rhai::Array, String> = items.iter().map(to_dynamic).collect();
            Dynamic::from_array(arr?)
        }
        Value::Range(a, b) => {
            if b.saturating_sub(*a) > 10_000_000 {
                return Err("a range of more than 10,000,000 numbers cannot be passed to rhai".into());
            }
            Dynamic::from_array((*a..*b).map(|i| Dynamic::from_float(i as f64)).collect())
        }
        Value::Record(fields) => {
            let mut map = rhai::Map::new();
            for (k, v) in fields.iter() {
                map.insert(k.as_str().into(), to_dynamic(v)?);
            }
            Dynamic::from_map(map)
        }
        Value::Tensor(t) => {
            let list = crate::value::iter_values(v).unwrap_or_default();
            if t.ndim() == 0 {
                Dynamic::from_float(t.iter().next().copied().unwrap_or(0.0) as f64)
            } else {
                let arr: Result<rhai::Array, String> = list.iter().map(to_dynamic).collect();
                Dynamic::from_array(arr?)
            }
        }
        other => return Err(format!("a {} cannot be passed to rhai", other.type_name())),
    })
}

fn from_dynamic(d: &Dynamic) -> Result<Value, String> {
    from_dynamic_at(d, 0)
}

fn from_dynamic_at(d: &Dynamic, depth: usize) -> Result<Value, String> {
    if depth > MAX_NESTING {
        return Err(format!("rhai returned a value nested more than {MAX_NESTING} levels deep"));
    }
    let from_dynamic = |x: &Dynamic| from_dynamic_at(x, depth + 1);
    if d.is_unit() {
        return Ok(Value::None);
    }
    if let Some(b) = d.clone().try_cast::<bool>() {
        return Ok(Value::Bool(b));
    }
    if let Some(i) = d.clone().try_cast::<rhai::INT>() {
        return Ok(Value::Num(i as f64));
    }
    if let Some(f) = d.clone().try_cast::<rhai::FLOAT>() {
        return Ok(Value::Num(f));
    }
    if let Some(c) = d.clone().try_cast::<char>() {
        return Ok(Value::str(c.to_string()));
    }
    if d.is_string() {
        return Ok(Value::str(d.clone().into_string().unwrap_or_default()));
    }
    if d.is_array() {
        let arr = d.clone().into_array().unwrap_or_default();
        return arr.iter().map(from_dynamic).collect::<Result<Vec<_>, _>>().map(Value::list);
    }
    if d.is_map() {
        if let Some(map) = d.clone().try_cast::<rhai::Map>() {
            let mut out = BTreeMap::new();
            for (k, v) in map.iter() {
                out.insert(k.to_string(), from_dynamic(v)?);
            }
            return Ok(Value::Record(Arc::new(out)));
        }
    }
    Err(format!("a rhai {} which Assay cannot use", d.type_name()))
}
