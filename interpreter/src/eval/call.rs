//! Calls: script functions, rhai functions, and tools. Every tool call is a
//! recorded step with its own random stream, argument and output digests,
//! the files it read, and its time.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use assay_grammar::{Arg, Expr, ExprKind, FnBody, Ident, Span};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use super::{step_rng, EvalResult, Flow, Run, RuntimeError, TraceEntry, MAX_CALL_DEPTH};

/// The largest file a tool may read as a stream (`ToolCtx::read_file_with`):
/// memory does not grow with it, so far beyond `MAX_READ_BYTES`.
const MAX_STREAMED_BYTES: u64 = 1 << 40;
use crate::bind::{self, bind, defined_as, tool_params, wrong_type, Given, Mistake};
use crate::diag::closest;
use crate::rhai_module::RhaiModule;
use crate::shard::{Found, Partial, ShardMode, Share};
use crate::tool::{Args, Default as ParamDefault, Signature, Tool, ToolCtx, ToolError};
use crate::types::Type;
use crate::value::{Closure, Func, Value};

/// An evaluated argument with the span it came from.
pub(crate) struct ArgVal {
    name: Option<Ident>,
    value: Value,
    span: Span,
}

impl<'a> Run<'a> {
    fn eval_args(&mut self, args: &[Arg]) -> EvalResult<Vec<ArgVal>> {
        let mut out = Vec::with_capacity(args.len());
        for a in args {
            out.push(ArgVal { name: a.name.clone(), value: self.eval(&a.value)?, span: a.value.span });
        }
        Ok(out)
    }

    pub(crate) fn eval_call(&mut self, callee: &Expr, args: &[Arg], span: Span) -> EvalResult<Value> {
        if let ExprKind::Name(n) = &callee.node {
            if self.lookup(n).is_none() {
                if let Some((sig, tool)) = self.registry.get(n) {
                    let sig = sig.clone();
                    let args = self.eval_args(args)?;
                    return self.call_tool(&sig, tool, args, false, span);
                }
            }
        }
        let f = self.eval(callee)?;
        let args = self.eval_args(args)?;
        self.call_func_value(&f, args, callee.span, span)
    }

    pub(crate) fn eval_method(&mut self, receiver: &Expr, name: &Ident, args: &[Arg], span: Span) -> EvalResult<Value> {
        let recv = self.eval(receiver)?;
        match &recv {
            Value::Module(m) => {
                let m = m.clone();
                let args = self.eval_args(args)?;
                return self.call_rhai(&m, &name.node, args, span);
            }
            Value::Record(fields) if fields.contains_key(&name.node) => {
                let f = fields.get(&name.node).cloned().unwrap_or_default();
                let args = self.eval_args(args)?;
                return self.call_func_value(&f, args, name.span, span);
            }
            _ => {}
        }
        let Some((sig, tool)) = self.registry.get(&name.node) else {
            let help = match closest(&name.node, self.registry.names()) {
                Some(c) => format!("did you mean `{c}`?"),
                None => "`x.f(a)` calls the tool `f(x, a)`; `assay tools` lists the tools".into(),
            };
            return Err(RuntimeError::new(
                format!("no tool or method `{}` for a {}", name.node, recv.type_name()),
                name.span,
            )
            .code(crate::Code::UnknownTool)
            .help(help));
        };
        let sig = sig.clone();
        let mut all = vec![ArgVal { name: None, value: recv, span: receiver.span }];
        all.extend(self.eval_args(args)?);
        self.call_tool(&sig, tool, all, true, span)
    }

    fn call_func_value(&mut self, f: &Value, args: Vec<ArgVal>, callee_span: Span, span: Span) -> EvalResult<Value> {
        match f {
            Value::Func(Func::Script(c)) => {
                let c = c.clone();
                self.call_closure(&c, args, span)
            }
            Value::Func(Func::Tool(name)) => {
                let Some((sig, tool)) = self.registry.get(name) else {
                    return Err(RuntimeError::new(format!("unknown tool `{name}`"), callee_span));
                };
                let sig = sig.clone();
                self.call_tool(&sig, tool, args, false, span)
            }
            Value::Func(Func::Rhai(m, name)) => {
                let (m, name) = (m.clone(), name.clone());
                self.call_rhai(&m, &name, args, span)
            }
            Value::Handle(h) if h.call_tool().is_some() => {
                let name = h.call_tool().unwrap_or_default();
                let Some((sig, tool)) = self.registry.get(name) else {
                    return Err(RuntimeError::new(format!("unknown tool `{name}`"), callee_span));
                };
                let sig = sig.clone();
                let mut all = vec![ArgVal { name: None, value: f.clone(), span: callee_span }];
                all.extend(args);
                self.call_tool(&sig, tool, all, false, span)
            }
            other => Err(RuntimeError::new(format!("a {} cannot be called", other.type_name()), callee_span)
                .code(crate::Code::NotCallable)
                .help("only functions and tools can be called")),
        }
    }

    fn call_closure(&mut self, c: &Arc<Closure>, args: Vec<ArgVal>, span: Span) -> EvalResult<Value> {
        let def = &c.def;
        let fname = def.name.as_ref().map(|n| n.node.clone()).unwrap_or_else(|| "lambda".into());
        if self.depth() >= MAX_CALL_DEPTH {
            return Err(RuntimeError::new(
                format!("calls nested more than {MAX_CALL_DEPTH} deep (in `{fname}`)"),
                span,
            )
            .code(crate::Code::Recursion)
            .help("look for recursion without a base case, or rewrite it as a loop"));
        }
        // Bind arguments to parameters (as the checker does: `crate::bind`).
        let params: Vec<bind::Param> =
            def.params.iter().map(|p| bind::Param { name: &p.name.node, required: p.default.is_none() }).collect();
        let names: Vec<Option<Ident>> = args.iter().map(|a| a.name.clone()).collect();
        let given =
            names.iter().zip(args).map(|(n, a)| Given { name: n.as_ref(), span: a.span, item: a.value }).collect();
        let mut bound = bind(&fname, &params, &defined_as(&fname, &params), false, given, span);
        if let Some(m) = bound.first_mistake() {
            return Err(mistake(m));
        }
        let bound: Vec<Option<Value>> = bound.slots.into_iter().map(|s| s.map(|(v, _)| v)).collect();
        let mut captured = c.captured.clone();
        if let Some(n) = &def.name {
            // A named function can always call itself.
            captured.push((n.node.clone(), Value::Func(Func::Script(c.clone()))));
        }
        self.push_frame(captured);
        let result = (|| {
            for (p, b) in def.params.iter().zip(bound) {
                let v = match (b, &p.default) {
                    (Some(v), _) => v,
                    (None, Some(d)) => self.eval(d)?,
                    // Binding reported every required parameter left out.
                    (None, None) => Value::None,
                };
                self.define(&p.name.node, v);
            }
            match &def.body {
                FnBody::Expr(e) => self.eval(e),
                FnBody::Block(b) => match self.exec_block_in_place(&b.node)? {
                    Flow::Return(v) => Ok(v),
                    _ => Ok(Value::None),
                },
            }
        })();
        self.pop_frame();
        result.map_err(|mut e| {
            e.stack.push((fname, span));
            e
        })
    }

    fn call_rhai(&mut self, m: &Arc<RhaiModule>, name: &str, args: Vec<ArgVal>, span: Span) -> EvalResult<Value> {
        if let Some(a) = args.iter().find(|a| a.name.is_some()) {
            return Err(RuntimeError::new("rhai functions take only positional arguments", a.span));
        }
        let values: Vec<Value> = args.into_iter().map(|a| a.value).collect();
        let tool_name = format!("{}.{name}", m.alias);
        let started = Instant::now();
        self.step += 1;
        let step = self.step;
        let args_digest = digest_args(&[], &values);
        let result = m.call(name, values);
        let output = result.as_ref().ok().map(|v| v.digest());
        let mut inputs = BTreeMap::new();
        inputs.insert(m.path.display().to_string(), m.digest.clone());
        self.out.trace.push(TraceEntry {
            step,
            tool: tool_name.into(),
            args: Some(args_digest),
            inputs,
            failed: output.is_none(),
            output,
            seconds: started.elapsed().as_secs_f64(),
            cached: false,
        });
        result.map_err(|e| {
            let mut err = RuntimeError::new(e.diag.message.clone(), span).code(e.diag.code);
            err.help = e.diag.help.clone();
            // Point into the rhai file only where the error has a place there;
            // otherwise (a value that cannot cross, a black box) at the call.
            if e.diag.span.is_some() {
                err.foreign = Some(e.diag);
            }
            err
        })
    }

    /// Binds arguments to a tool's parameters, checks their types, runs it.
    pub(crate) fn call_tool(
        &mut self,
        sig: &Signature,
        tool: Arc<dyn Tool>,
        args: Vec<ArgVal>,
        method: bool,
        span: Span,
    ) -> EvalResult<Value> {
        let (args, spans) = bind_call(sig, args, method, span)?;

        self.step += 1;
        let step = self.step;
        self.out.outside |= sig.volatile;
        let args_digest = digest_args(&args.names, &args.values);
        let started = Instant::now();
        // Only the outermost shardable call of a shard or a merge is split;
        // its share or its merge is never the whole call's cache entry.
        let sharding = sig.shardable
            && self.shardable_depth == 0
            && matches!(self.shard, Some(ShardMode::Part { .. } | ShardMode::Merge { .. }));
        let key = match self.cache {
            Some(_) if !sig.volatile && !sharding => Some(self.cache_key(sig.name, &args_digest, &args.values)),
            _ => None,
        };
        if let Some(k) = &key {
            if let Some(v) = self.answer_from_cache(k, sig.name, step, &args_digest, started) {
                return Ok(v);
            }
        }
        let line = self.file.line_col(span.start).0;
        let shard_key = sharding.then(|| self.cache_key(sig.name, &args_digest, &args.values));
        let mut share = None;
        match (self.shard, &shard_key) {
            (Some(ShardMode::Merge { shards, stopped }), Some(k)) => {
                match crate::shard::find(shards, k, self.seed, step) {
                    Found::All(parts) => {
                        let (values, read) = crate::shard::values_and_reads(&parts);
                        let (result, inputs, _) =
                            self.run_tool(&tool, sig.shardable, &args, span, step, None, read, Some(values));
                        self.out.merged_calls += 1;
                        return self.finish_call(sig, result, spans, span, step, args_digest, inputs, started);
                    }
                    Found::Missing(missing) => {
                        // Those shards called it with other arguments (they
                        // depend on an earlier sharded result) or stopped first.
                        let list: Vec<String> = missing.iter().map(|i| i.to_string()).collect();
                        let why = stopped.iter().flatten().next().map(|w| format!("; a shard {w}")).unwrap_or_default();
                        self.out.merged_whole.push(format!(
                            "line {line}: {} (shard(s) {} had no result for it{why})",
                            sig.name,
                            list.join(", ")
                        ));
                    }
                    Found::None => self.out.merged_whole.push(format!("line {line}: {}", sig.name)),
                }
            }
            (Some(ShardMode::Part { share: s, earlier }), Some(k)) => {
                let found = match earlier.len() == s.count {
                    true => crate::shard::find(earlier, k, self.seed, step),
                    false => Found::None,
                };
                if let Found::All(parts) = found {
                    // Finished by every shard in the stage before: merged
                    // here, and this shard's own share kept for the final merge.
                    if let Some(own) = parts.get(s.index) {
                        self.out.partials.push((*own).clone());
                    }
                    let (values, read) = crate::shard::values_and_reads(&parts);
                    let (result, inputs, _) =
                        self.run_tool(&tool, sig.shardable, &args, span, step, None, read, Some(values));
                    return self.finish_call(sig, result, spans, span, step, args_digest, inputs, started);
                }
                share = Some(*s)
            }
            _ => {}
        }
        let effects = (self.out.records.len(), self.out.asserts.len(), self.out.shows.len(), self.out.artifacts.len());
        let (mut result, inputs, flags) =
            self.run_tool(&tool, sig.shardable, &args, span, step, share, BTreeMap::new(), None);
        if let (Some(k), Some(_), Ok(partial)) = (&shard_key, share, &result) {
            // A shard keeps its share and goes on with what its share alone gives.
            self.out.partials.push(Partial {
                key: k.clone(),
                tool: sig.name.to_string(),
                line,
                inputs: inputs.clone(),
                rng: flags.rng.then_some((self.seed, step)),
                value: partial.clone(),
            });
            // The merge sees the share, so it may give what the share covers.
            let parts = vec![partial.clone()];
            result = self.run_tool(&tool, sig.shardable, &args, span, step, share, BTreeMap::new(), Some(parts)).0;
        }
        let seconds = started.elapsed().as_secs_f64();
        let effects_now =
            (self.out.records.len(), self.out.asserts.len(), self.out.shows.len(), self.out.artifacts.len());
        if let (Some(k), Some(cache), Ok(v)) = (&key, self.cache, &result) {
            if !flags.uncacheable && effects == effects_now && seconds >= cache.min_seconds() {
                let cond = crate::cache::Conditions {
                    inputs: inputs.clone(),
                    rng: flags.rng.then_some((self.seed, step)),
                    steps: self.step - step + 1,
                };
                if let Some(entry) = crate::cache::encode_entry(&cond, v) {
                    cache.put(k, &entry);
                    self.out.cache_stored += 1;
                }
            }
        }
        self.finish_call(sig, result, spans, span, step, args_digest, inputs, started)
    }

    /// The call cache's answer to step `step` (a call of `tool` keyed
    /// `key`), taken as the call's own: the steps, files and random draws
    /// it stands for are counted, and the trace marks it cached.
    fn answer_from_cache(
        &mut self,
        key: &str,
        tool: &str,
        step: u64,
        args_digest: &str,
        started: Instant,
    ) -> Option<Value> {
        let (cond, v, read) = self.cache_lookup(key, step)?;
        self.step = step - 1 + cond.steps.max(1);
        for (named, real, d) in read {
            self.out.inputs.insert(real, d.clone());
            self.out.named_inputs.insert(named, d);
        }
        if let Some(parent) = self.call_inputs.last_mut() {
            parent.extend(cond.inputs.clone());
        }
        if let Some(f) = self.call_flags.last_mut() {
            f.rng |= cond.rng.is_some();
        }
        self.out.cache_hits += 1;
        self.out.trace.push(TraceEntry {
            step,
            tool: tool.to_string().into(),
            args: Some(args_digest.to_string()),
            inputs: cond.inputs,
            output: Some(v.digest()),
            seconds: started.elapsed().as_secs_f64(),
            failed: false,
            cached: true,
        });
        Some(v)
    }

    /// Runs a tool (or, given `parts`, its merge) with its own random
    /// stream; returns its result, the files it read and what it did. A
    /// shardable tool takes one step: the calls it makes draw from steps of
    /// their own (see `crate::shard::item_step`).
    #[allow(clippy::too_many_arguments)]
    fn run_tool(
        &mut self,
        tool: &Arc<dyn Tool>,
        shardable: bool,
        args: &Args,
        span: Span,
        step: u64,
        share: Option<Share>,
        read: BTreeMap<String, String>,
        parts: Option<Vec<Value>>,
    ) -> (Result<Value, ToolError>, BTreeMap<String, String>, crate::eval::CallFlags) {
        for (p, d) in &read {
            self.note_named(p, d);
        }
        self.call_inputs.push(read);
        self.call_flags.push(crate::eval::CallFlags::default());
        if shardable {
            self.shardable_depth += 1;
        }
        let result = {
            let rng = step_rng(self.seed, step);
            let mut ctx = Ctx { run: self, rng, span, share, item_base: shardable.then_some(step), shared: 0 };
            match parts {
                Some(parts) => tool.merge(args, &mut ctx, parts),
                None => tool.call(args, &mut ctx),
            }
        };
        if shardable {
            self.shardable_depth -= 1;
            self.step = step;
        }
        let inputs = self.call_inputs.pop().unwrap_or_default();
        let flags = self.call_flags.pop().unwrap_or_default();
        if let Some(parent) = self.call_inputs.last_mut() {
            parent.extend(inputs.clone());
        }
        if let Some(f) = self.call_flags.last_mut() {
            f.rng |= flags.rng;
            f.uncacheable |= flags.uncacheable;
        }
        (result, inputs, flags)
    }

    /// Traces a tool call and turns its error into the script's.
    #[allow(clippy::too_many_arguments)]
    fn finish_call(
        &mut self,
        sig: &Signature,
        result: Result<Value, ToolError>,
        spans: Vec<Span>,
        span: Span,
        step: u64,
        args_digest: String,
        inputs: BTreeMap<String, String>,
        started: Instant,
    ) -> EvalResult<Value> {
        // Digests only for a call that read files or models, or failed
        // (see `TraceEntry`): the result's digest is not computed otherwise.
        let digests = !inputs.is_empty() || result.is_err();
        let output = if digests { result.as_ref().ok().map(|v| v.digest()) } else { None };
        self.out.trace.push(TraceEntry {
            step,
            tool: sig.name.into(),
            args: digests.then_some(args_digest),
            inputs,
            output,
            seconds: started.elapsed().as_secs_f64(),
            failed: result.is_err(),
            cached: false,
        });
        result.map_err(|e| {
            // An error from a function the tool called keeps its own span.
            if let Some(mut inner) = self.pending.take() {
                inner.stack.push((sig.name.to_string(), span));
                return inner;
            }
            let at = e
                .param
                .as_deref()
                .and_then(|p| sig.params.iter().position(|q| q.name == p))
                .and_then(|i| spans.get(i).copied())
                .unwrap_or(span);
            // A native library (ONNX Runtime) that ran out of memory says so
            // in its own words: that is the run's memory budget running out,
            // whatever the tool's own help would suggest.
            if out_of_memory(&e.message) {
                return RuntimeError::new(format!("{}: {}", sig.name, e.message), at)
                    .code(crate::Code::BudgetMemory)
                    .help("the run's memory budget ran out inside the model runtime: raise it with --memory, or use a smaller model, batch or input");
            }
            let code = e.code.unwrap_or(crate::Code::Tool);
            let mut err = RuntimeError::new(format!("{}: {}", sig.name, e.message), at).code(code);
            err.help = e.help.or_else(|| Some(sig.render()));
            err
        })
    }
}

impl Run<'_> {
    fn mark_uncacheable(&mut self) {
        for f in self.call_flags.iter_mut() {
            f.uncacheable = true;
        }
    }

    /// The cache key of a call: the tool, its arguments, and for functions
    /// among them their text, captures and the globals they name.
    fn cache_key(&self, tool: &str, args_digest: &str, values: &[Value]) -> String {
        let mut funcs = Vec::new();
        for v in values {
            crate::cache::function_identities(v, &self.file.text, &mut funcs);
        }
        if !funcs.is_empty() {
            funcs.push(self.globals_digest(values));
        }
        let build = self.cache.map(|c| c.build()).unwrap_or_default();
        crate::cache::key(&build, tool, args_digest, &funcs)
    }

    /// A read a shard or a stored entry reports by the path as named: in
    /// the manifest by the file it is now (the path resolved in this run),
    /// for replay by the name.
    fn note_named(&mut self, named: &str, sha256: &str) {
        let real = self.sandbox.resolve(named).unwrap_or_else(|_| std::path::PathBuf::from(named));
        self.out.inputs.insert(real, sha256.to_string());
        let lexical = self.sandbox.named(named).map(|p| p.display().to_string()).unwrap_or_else(|_| named.to_string());
        self.out.named_inputs.insert(lexical, sha256.to_string());
    }

    /// A stored result whose conditions hold now: the same random stream if
    /// it drew one, and every file it read unchanged, by the path as the
    /// call named it, read again through this run's sandbox: resolved
    /// against this run's folder and through its links as they are now (so
    /// another folder's `acts.npy` or a re-pointed link is a miss), and
    /// never a file this run may not read. With the reads: (as named
    /// absolute, the file it is, sha256).
    #[allow(clippy::type_complexity)]
    fn cache_lookup(
        &mut self,
        key: &str,
        step: u64,
    ) -> Option<(crate::cache::Conditions, Value, Vec<(String, std::path::PathBuf, String)>)> {
        let bytes = self.cache?.get(key)?;
        let (cond, v) = crate::cache::decode_entry(&bytes)?;
        if cond.rng.is_some_and(|r| r != (self.seed, step)) {
            return None;
        }
        let mut read = Vec::with_capacity(cond.inputs.len());
        for (p, d) in &cond.inputs {
            let named = self.sandbox.named(p).map(|n| n.display().to_string()).unwrap_or_else(|_| p.clone());
            let (real, now) = match self.sandbox.read(p) {
                Ok((real, bytes)) => (real, hex::encode(Sha256::digest(&bytes))),
                Err(_) => (std::path::PathBuf::from(p), self.cache?.file_digest(Path::new(p))?),
            };
            if now != *d {
                return None;
            }
            read.push((named, real, now));
        }
        Some((cond, v, read))
    }
}

/// A binding mistake as a run-time error (the checker reports the same).
fn mistake(m: Mistake) -> RuntimeError {
    RuntimeError::new(m.message, m.span).code(m.code).help(m.help)
}

fn describe_type(v: &Value) -> String {
    match v {
        Value::List(items) => match items.iter().find(|x| !matches!(x, Value::Num(_))) {
            Some(x) if items.iter().any(|y| matches!(y, Value::Num(_))) => {
                format!("a list containing a {}", x.type_name())
            }
            _ => "list".into(),
        },
        other => Type::of(other).to_string(),
    }
}

fn digest_args(names: &[&str], values: &[Value]) -> String {
    let mut h = Sha256::new();
    for (i, v) in values.iter().enumerate() {
        let name = names.get(i).copied().unwrap_or("");
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        v.feed(&mut h);
    }
    hex::encode(h.finalize())
}

/// The context a tool sees: the run, its step's random stream, the call's span.
struct Ctx<'r, 'a> {
    run: &'r mut Run<'a>,
    rng: ChaCha8Rng,
    span: Span,
    /// The share a shardable tool computes in a shard; `None` for all of it.
    share: Option<Share>,
    /// For a shardable tool, its step: the calls it makes draw from steps of their own.
    item_base: Option<u64>,
    /// Calls a shardable tool made for itself so far (not for an item).
    shared: u64,
}

impl Ctx<'_, '_> {
    fn call_now(&mut self, f: &Value, args: Vec<Value>) -> Result<Value, ToolError> {
        let span = self.span;
        let args = args.into_iter().map(|value| ArgVal { name: None, value, span }).collect();
        self.run.call_func_value(f, args, span, span).map_err(|e| {
            let msg = e.message.clone();
            self.run.pending = Some(e);
            ToolError::new(msg)
        })
    }
}

impl<'r, 'a> ToolCtx for Ctx<'r, 'a> {
    fn rng(&mut self) -> &mut ChaCha8Rng {
        if let Some(f) = self.run.call_flags.last_mut() {
            f.rng = true;
        }
        &mut self.rng
    }

    fn call(&mut self, f: &Value, args: Vec<Value>) -> Result<Value, ToolError> {
        if self.item_base.is_some() {
            self.shared += 1;
            return self.call_item(f, args, crate::shard::SHARED_ITEMS + self.shared - 1);
        }
        self.call_now(f, args)
    }

    fn call_item(&mut self, f: &Value, args: Vec<Value>, item: u64) -> Result<Value, ToolError> {
        if let Some(base) = self.item_base {
            self.run.step = crate::shard::item_step(base, item);
        }
        self.call_now(f, args)
    }

    fn share(&self) -> Option<Share> {
        self.share
    }

    fn resolve_read(&mut self, path: &str) -> Result<std::path::PathBuf, ToolError> {
        self.run.sandbox.resolve(path).map_err(|e| ToolError::new(e.message()).help(e.help()))
    }

    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, ToolError> {
        let (real, bytes) = self.run.sandbox.read(path).map_err(|e| ToolError::new(e.message()).help(e.help()))?;
        let digest = hex::encode(Sha256::digest(&bytes));
        // The call's conditions hold the path as named: a cached answer is
        // checked by reading that name again, against the folder the
        // checking run resolves it in and through its links as they are then.
        if let Some(inputs) = self.run.call_inputs.last_mut() {
            inputs.insert(path.to_string(), digest.clone());
        }
        self.run.out.inputs.insert(real, digest.clone());
        if let Ok(named) = self.run.sandbox.named(path) {
            self.run.out.named_inputs.insert(named.display().to_string(), digest);
        }
        Ok(bytes)
    }

    fn read_file_with(
        &mut self,
        path: &str,
        each: &mut dyn FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<String, ToolError> {
        use std::io::Read;
        let fail = |e: crate::sandbox::SandboxError| ToolError::new(e.message()).help(e.help());
        let (real, mut file, _) = self.run.sandbox.open_checked(path, MAX_STREAMED_BYTES).map_err(fail)?;
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).map_err(|e| ToolError::new(format!("{path}: {e}")))?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            each(&buf[..n]).map_err(ToolError::new)?;
        }
        let digest = hex::encode(hash.finalize());
        if let Some(inputs) = self.run.call_inputs.last_mut() {
            inputs.insert(path.to_string(), digest.clone());
        }
        self.run.out.inputs.insert(real, digest.clone());
        if let Ok(named) = self.run.sandbox.named(path) {
            self.run.out.named_inputs.insert(named.display().to_string(), digest.clone());
        }
        Ok(digest)
    }

    fn glob(&mut self, pattern: &str) -> Result<Vec<(String, std::path::PathBuf)>, ToolError> {
        // A folder's listing is no file digest: a call that lists is not
        // cached, and its run is not replayed.
        self.run.mark_uncacheable();
        self.run.out.outside = true;
        self.run.sandbox.glob(pattern).map_err(|e| ToolError::new(e.message()).help(e.help()))
    }

    fn sandbox(&self) -> crate::sandbox::Sandbox {
        self.run.sandbox.clone()
    }

    fn note_input(&mut self, path: &Path, sha256: &str) {
        if let Some(inputs) = self.run.call_inputs.last_mut() {
            inputs.insert(path.display().to_string(), sha256.to_string());
        }
        self.run.out.inputs.insert(path.to_path_buf(), sha256.to_string());
        self.run.out.named_inputs.insert(path.display().to_string(), sha256.to_string());
    }

    fn stream_file(&mut self, name: &str) -> Result<(std::path::PathBuf, String), ToolError> {
        self.run.mark_uncacheable();
        let safe = crate::sandbox::safe_artifact_name(name).ok_or_else(|| {
            ToolError::new(format!("`{name}` is not a valid file name")).help("use letters, digits, `-`, `_` and `.`")
        })?;
        let folder = self.run.run_folder.clone().ok_or_else(|| ToolError::new("this run has no run folder"))?;
        if self.run.streams.contains(&safe) {
            return Err(ToolError::new(format!("`artifacts/streams/{safe}` was already written by this run")));
        }
        let dir = folder.join("artifacts").join("streams");
        std::fs::create_dir_all(&dir).map_err(|e| ToolError::new(format!("cannot make {}: {e}", dir.display())))?;
        self.run.streams.push(safe.clone());
        Ok((dir.join(&safe), format!("artifacts/streams/{safe}")))
    }

    fn write_artifact(&mut self, name: &str, bytes: &[u8]) -> Result<String, ToolError> {
        self.run.mark_uncacheable();
        let safe = crate::sandbox::safe_artifact_name(name).ok_or_else(|| {
            ToolError::new(format!("`{name}` is not a valid artifact name"))
                .help("use letters, digits, `-`, `_` and `.`")
        })?;
        if self.run.out.artifacts.iter().any(|(n, _)| *n == safe) {
            return Err(ToolError::new(format!("artifact `{safe}` was already written")));
        }
        self.run.out.artifacts.push((safe.clone(), bytes.to_vec()));
        Ok(format!("artifacts/{safe}"))
    }
}

/// Binds a call's arguments to the tool's parameters (defaults filled in)
/// and checks each one's type: the arguments, and the span each came from.
fn bind_call(sig: &Signature, args: Vec<ArgVal>, method: bool, span: Span) -> EvalResult<(Args, Vec<Span>)> {
    let shown = sig.render();
    let names: Vec<Option<Ident>> = args.iter().map(|a| a.name.clone()).collect();
    let given = names.iter().zip(args).map(|(n, a)| Given { name: n.as_ref(), span: a.span, item: a.value }).collect();
    let params = tool_params(sig);
    let mut b = bind(sig.name, &params, &shown, method, given, span);
    if let Some(m) = b.first_mistake() {
        return Err(mistake(m));
    }
    let mut bound = Vec::with_capacity(sig.params.len());
    let mut spans = Vec::with_capacity(sig.params.len());
    for (p, slot) in sig.params.iter().zip(b.slots) {
        let (v, s) = match (slot, &p.default) {
            (Some(given), _) => given,
            (None, ParamDefault::Value(d)) => (d.clone(), span),
            // Binding reported every required parameter left out.
            (None, ParamDefault::Required) => (Value::None, span),
        };
        if !p.ty.matches(&v) {
            return Err(mistake(wrong_type(sig.name, p.name, &p.ty, &describe_type(&v), s, &shown)));
        }
        bound.push(v);
        spans.push(s);
    }
    let args = Args { values: bound, names: sig.params.iter().map(|p| p.name).collect() };
    Ok((args, spans))
}

/// Whether a tool's error is a native allocation failure (C++'s
/// `std::bad_alloc`, ONNX Runtime's allocator refusing a buffer).
fn out_of_memory(message: &str) -> bool {
    message.contains("std::bad_alloc") || message.contains("Failed to allocate memory")
}
