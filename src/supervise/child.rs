//! The child's side: check the script, provision, close the sandbox, run,
//! and report to the parent.

use super::*;
use assay_interpreter::shard::{ShardMode, Share};
use assay_interpreter::ManifestFile;
use assay_interpreter::{
    mentions, prepare, prepare_with, script_seed, CallCacheFacts, Handle, Manifest, Registry, RhaiModule, RunOptions,
    Sandbox, ShardId, ShardedCall, SourceFile, Status, Type, Value,
};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A tool object bound by a task, blinded: it works as the object it wraps
/// (tools reach the object through `as_any`), but says nothing of what it
/// is beyond its kind: no name, no index, no model, no digest to match.
pub(super) struct Blinded(Arc<dyn Handle>);

impl std::fmt::Debug for Blinded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the {} under study", self.0.kind())
    }
}

impl Handle for Blinded {
    fn kind(&self) -> assay_interpreter::HandleKind {
        self.0.kind()
    }
    fn describe(&self) -> String {
        format!("the {} under study", self.0.kind())
    }
    fn digest(&self) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(format!("blinded:{}", self.0.digest()).as_bytes()))
    }
    fn call_tool(&self) -> Option<&'static str> {
        self.0.call_tool()
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self.0.as_any()
    }
}

/// The handle kinds a task may bind (the checker wants a static name).
pub(super) fn handle_kind(kind: &str) -> assay_interpreter::HandleKind {
    match kind {
        "model" => assay_interpreter::HandleKind::Model,
        "dataset" => assay_interpreter::HandleKind::Dataset,
        _ => assay_interpreter::HandleKind::Unit,
    }
}

/// The child's exit code when it ends because its parent is gone.
pub(super) const ORPHANED: i32 = 125;

/// The images among shown values (inside lists and records too), in
/// order: the first `MAX_SHOWN_IMAGES` kept, all of them counted.
pub(super) fn shown_images<'v>(v: &'v Value, out: &mut Vec<&'v assay_interpreter::Image>, count: &mut usize) {
    match v {
        Value::Image(img) => {
            *count += 1;
            if out.len() < MAX_SHOWN_IMAGES {
                out.push(img);
            }
        }
        Value::List(items) => items.iter().for_each(|x| shown_images(x, out, count)),
        Value::Record(fields) => fields.values().for_each(|x| shown_images(x, out, count)),
        _ => {}
    }
}

/// What the kernel sandbox enforced, for the manifest and the tests.
pub(super) fn restrict(job: &Job, runtime_library: Option<&Path>) -> Json {
    use landlock::{
        Access, AccessFs, AccessNet, NetPort, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
    };
    let abi = ABI::V6;
    let read = AccessFs::from_read(abi);
    let mut readable: Vec<PathBuf> = job.roots.clone();
    readable.push(assay_stdlib::fetch::cache_dir());
    readable.push(crate::cache::dir());
    if let Some(dir) = runtime_library.and_then(Path::parent) {
        readable.push(dir.to_path_buf());
    }
    // The system's libraries and what the C library and ONNX Runtime read
    // about the machine; /etc only file by file (never /etc/shadow).
    for p in [
        "/usr/lib",
        "/usr/lib64",
        "/lib",
        "/lib64",
        "/usr/share/zoneinfo",
        "/etc/ld.so.cache",
        "/etc/localtime",
        "/etc/resolv.conf",
        "/etc/hosts",
        "/etc/nsswitch.conf",
        "/etc/gai.conf",
        "/etc/ssl/certs",
        // Not /proc/self as a whole: /proc/self/environ holds the LLM key.
        "/proc/self/cgroup",
        "/proc/self/mountinfo",
        "/proc/self/status",
        "/proc/cpuinfo",
        "/proc/meminfo",
        "/proc/stat",
        "/sys/devices/system/cpu",
        "/sys/fs/cgroup",
        "/dev/null",
        "/dev/urandom",
    ] {
        readable.push(PathBuf::from(p));
    }
    let writable = vec![job.out.clone()];
    let llm_port = std::env::var("ASSAY_LLM_URL").ok().and_then(|u| endpoint_port(&u));
    // Test builds can pretend the kernel has no Landlock, to check that the
    // run says so instead of going on silently.
    let pretend_missing = cfg!(debug_assertions) && std::env::var_os("ASSAY_TEST_PRETEND_NO_LANDLOCK").is_some();
    let restrict = || -> Result<landlock::RestrictionStatus, landlock::RulesetError> {
        let mut rs = Ruleset::default()
            .handle_access(AccessFs::from_all(abi))?
            .handle_access(AccessNet::from_all(abi))?
            .scope(Scope::from_all(abi))?
            .create()?
            .add_rules(landlock::path_beneath_rules(&readable, read))?
            .add_rules(landlock::path_beneath_rules(&writable, AccessFs::from_all(abi) & !AccessFs::Execute))?
            .add_rules(landlock::path_beneath_rules(["/dev/null"], AccessFs::WriteFile))?;
        if let Some(port) = llm_port {
            rs = rs.add_rule(NetPort::new(port, AccessNet::ConnectTcp))?;
        }
        rs.restrict_self()
    };
    let result = if pretend_missing { Ok(RulesetStatus::NotEnforced) } else { restrict().map(|st| st.ruleset) };
    let net = match llm_port {
        Some(p) => format!("TCP connect to port {p} only (the configured ASSAY_LLM_URL)"),
        None => "no TCP connect or bind".into(),
    };
    match result {
        Ok(status) => {
            let level = match status {
                RulesetStatus::FullyEnforced => "enforced",
                RulesetStatus::PartiallyEnforced => "partially enforced (this kernel lacks some Landlock features)",
                RulesetStatus::NotEnforced => "not available on this kernel",
            };
            if status != RulesetStatus::FullyEnforced {
                eprintln!("note: the kernel sandbox (Landlock) is {level}; in-process checks still apply");
            }
            json!({
                "landlock": level,
                "read": readable.iter().filter(|p| p.exists()).map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "write": "this run's unfinished folder only",
                "execute": "nothing",
                "network": net,
                "memory_budget": job.budget.memory,
                "timeout_seconds": job.budget.timeout.as_secs_f64(),
            })
        }
        Err(e) => {
            eprintln!("note: the kernel sandbox (Landlock) could not be set up ({e}); in-process checks still apply");
            json!({"landlock": format!("not enforced: {e}"), "memory_budget": job.budget.memory, "timeout_seconds": job.budget.timeout.as_secs_f64()})
        }
    }
}

/// The TCP port of an http(s) URL.
pub(super) fn endpoint_port(url: &str) -> Option<u16> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let port = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once("]:").map(|(_, p)| p),
        None => host_port.rsplit_once(':').map(|(_, p)| p),
    };
    match port.and_then(|p| p.parse().ok()) {
        Some(p) => Some(p),
        None if scheme.eq_ignore_ascii_case("https") => Some(443),
        None => Some(80),
    }
}

/// Memory the process has mapped for data now (VmData), in bytes.
pub(super) fn data_in_use() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines().find(|l| l.starts_with("VmData:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

pub(super) fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// `net(x)` for a black box: the network (one input [N, 1], one output
/// [N, 1]) is loaded from memory on the first call, after the sandbox has
/// closed, and run on one number at a time.
pub(crate) fn net_fn(bytes: Vec<u8>) -> impl Fn(f64) -> Result<f64, String> + Send + Sync + 'static {
    let model: std::sync::OnceLock<Result<assay_stdlib::onnx::model::Model, String>> = std::sync::OnceLock::new();
    move |x: f64| {
        let m = model
            .get_or_init(|| {
                assay_stdlib::onnx::model::Model::load_bytes("net", &bytes, assay_stdlib::onnx::model::Provider::Cpu)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| e.clone())?;
        let input = m.inputs.first().map(|p| p.name.clone()).ok_or("the network has no input")?;
        let output = m.outputs.first().map(|p| p.name.clone()).ok_or("the network has no output")?;
        let feed = ndarray::ArrayD::from_shape_vec(vec![1, 1], vec![x as f32]).map_err(|e| e.to_string())?;
        let out = m
            .run(
                &assay_stdlib::onnx::model::HookSet::Plain,
                || Err(assay_stdlib::onnx::error::ModelError::Graph("the network is run as it is".into())),
                vec![(input, feed)],
                std::slice::from_ref(&output),
            )
            // The box's caller (rhai) gets text.
            .map_err(|e| e.to_string())?;
        out.get(&output)
            .and_then(|t| t.iter().next())
            .map(|v| f64::from(*v))
            .ok_or_else(|| "the network gave no value".into())
    }
}

/// The child: check, provision, restrict, run, write the record, report.
/// A shard's end: its partial record (partials.bin, script, trace, a
/// manifest whose status is `partial`), never a results.json. What the
/// script did after its sharded calls (it went on with its share's results
/// alone) is not kept; where it stopped with an error is noted.
pub(super) fn finish_shard(ran: &assay_interpreter::Ran, out_dir: &Path, share: Share, sandbox: Json) -> u8 {
    let (file, out) = (&ran.file, &ran.outcome);
    let stopped = out.error.as_ref().map(|d| {
        let line = d.span.map(|s| file.line_col(s.start).0);
        match line {
            Some(l) => format!("stopped at line {l}: {}", d.message),
            None => format!("stopped: {}", d.message),
        }
    });
    let bytes = match assay_interpreter::shard::encode_partials(&out.partials) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let calls: Vec<(String, usize)> = out.partials.iter().map(|p| (p.tool.clone(), p.line)).collect();
    let manifest = Manifest {
        status: Status::Partial,
        tool_calls: None,
        shard: Some(ShardId { index: share.index, count: share.count }),
        sharded_calls: Some(calls.iter().map(|(tool, line)| ShardedCall { tool: tool.clone(), line: *line }).collect()),
        partials_sha256: Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))),
        stopped: stopped.clone(),
        sandbox: Some(sandbox),
        ..ran.manifest()
    }
    .to_json();
    if let Err(e) = assay_interpreter::write_shard_files(out_dir, &file.text, &bytes, &out.trace, &manifest) {
        eprintln!("error: cannot write the shard's record: {e}");
        return 1;
    }
    let done = Done {
        status: Status::Partial,
        records: 0,
        asserts: 0,
        failed: Vec::new(),
        tool_calls: out.trace.len(),
        cached_calls: out.cache_hits,
        shows: Vec::new(),
        error_rendered: None,
        diagnostics: Vec::new(),
        warnings_rendered: String::new(),
        warnings: Vec::new(),
        sandbox: Json::Null,
        shard_calls: calls,
        shard_stopped: stopped,
        merged_calls: 0,
        merged_whole: Vec::new(),
        replayable: false,
        replayed: false,
        shown_images: 0,
        named_inputs: BTreeMap::new(),
    };
    emit(&format!("report {}", serde_json::to_string(&Report::Done(Box::new(done))).unwrap_or_default()));
    0
}

/// The child's exit code for a job it cannot start (malformed, or a task
/// whose parts do not load): the parent reports it as a crash.
const BAD_JOB: u8 = 2;

/// Says why the job cannot run, on stderr (which the parent relays).
fn bad_job(message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    BAD_JOB
}

pub fn child_main(mut registry: Registry) -> u8 {
    die_with_parent();
    // A panic (a bug) says where the script was before the process ends.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        emit(&format!("at {}", assay_interpreter::progress()));
        default_hook(info);
    }));
    let mut job = match read_job() {
        Ok(j) => j,
        Err(e) => return bad_job(e),
    };
    assay_stdlib::llm::set_key(job.llm_key.take().map(|k| k.0));
    let file = SourceFile::new(job.name.clone(), job.text.clone());
    let mut sandbox = match Sandbox::with_roots(&job.base, &job.roots) {
        Ok(s) => s,
        Err(e) => return bad_job(format!("the script's folder cannot be used: {e}")),
    };
    if job.bypass_checks && cfg!(debug_assertions) {
        sandbox = sandbox.bypass_checks_for_kernel_test();
    }
    let bound = match bind_boxes(&job) {
        Ok(b) => b,
        Err(e) => return bad_job(e),
    };
    // The prelude uses the full registry; the script gets it less the denied tools.
    let full = assay_stdlib::registry();
    for t in &job.deny_tools {
        registry.remove(t);
    }
    let registry = &registry;
    let kinds: Vec<(String, Type)> = job
        .prelude
        .iter()
        .flat_map(|(_, names)| names.iter())
        .map(|(n, kind)| (n.clone(), Type::Handle(handle_kind(kind))))
        .collect();
    let prelude = match &job.prelude {
        Some((text, _)) => {
            let pp = prepare(&SourceFile::new("<task>", text.clone()), &full, &sandbox);
            if let Err(diags) = pp.checked() {
                return bad_job(format!(
                    "the task's prelude does not check: {:?}",
                    diags.first().map(|d| d.message.clone())
                ));
            }
            Some(pp)
        }
        None => None,
    };
    let prepared = prepare_with(&file, registry, &sandbox, &bound, &kinds);
    let program = match prepared.checked() {
        Ok(p) => p,
        Err(diags) => {
            let rendered: String =
                diags.iter().map(|d| if job.color { d.render_color(100) } else { d.render_plain(100) }).collect();
            let diagnostics = diags.iter().map(|d| d.to_json()).collect();
            let r = Report::CheckFailed { rendered, diagnostics };
            emit(&format!("report {}", serde_json::to_string(&r).unwrap_or_default()));
            return 0;
        }
    };
    // Provisioning writes the cache, so it happens before the sandbox closes.
    let runtime_library = provision(program, prelude.as_ref(), &job, &full);
    // The budget counts what the script adds to what is mapped now.
    let limit = data_in_use().saturating_add(job.budget.memory);
    let _ = rlimit::setrlimit(rlimit::Resource::DATA, limit, limit);
    let _ = rlimit::setrlimit(rlimit::Resource::CORE, 0, 0);
    let _ = rlimit::setrlimit(rlimit::Resource::FSIZE, 16 << 30, 16 << 30);
    let cache = crate::cache::ChildCache::new(job.cache, &job.out);
    let sandbox_facts = restrict(&job, runtime_library.as_deref());
    // Threads started after restrict_self inherit the sandbox.
    report_progress();
    let seed = job.seed.or_else(|| script_seed(program)).unwrap_or(0);
    // The prelude runs inside the sandbox too; what it records is bound, blinded.
    let (bindings, prelude_inputs) = match &prelude {
        Some(pp) => match run_prelude(pp, &full, &sandbox, seed) {
            Ok(x) => x,
            Err(e) => return bad_job(e),
        },
        None => (Vec::new(), BTreeMap::new()),
    };
    let shard_mode = match shard_mode(&job.shard) {
        Ok(m) => m,
        Err(e) => return bad_job(e),
    };
    let opts = RunOptions {
        bindings: &bindings,
        cache: cache.as_ref().map(|c| c as &dyn assay_interpreter::CallCache),
        run_folder: Some(&job.out),
        shard: Some(&shard_mode),
    };
    let Ok(mut ran) = prepared.execute(registry, &sandbox, Some(seed), opts) else { return BAD_JOB };
    if let Some(c) = &cache {
        c.finish();
    }
    ran.outcome.inputs.extend(prelude_inputs);
    if let ShardMode::Part { share, .. } = shard_mode {
        return finish_shard(&ran, &job.out, share, sandbox_facts);
    }
    if let Err(e) = write_record(&mut ran, &job, &shard_mode, &sandbox_facts) {
        eprintln!("error: cannot write the run record: {e}");
        return 1;
    }
    let shown = if job.save_shown_images { save_shown_images(&ran.outcome, &job.out) } else { 0 };
    let mut done = done_report(&ran.outcome, &job, sandbox_facts, shown);
    done.warnings_rendered =
        prepared.warnings.iter().map(|d| if job.color { d.render_color(100) } else { d.render_plain(100) }).collect();
    done.warnings = prepared.warnings.iter().map(|d| d.to_json()).collect();
    emit(&format!("report {}", serde_json::to_string(&Report::Done(Box::new(done))).unwrap_or_default()));
    0
}

/// The child dies with its parent: an orphan (the parent was killed, or
/// stopped by a signal) is reparented, and then ends within 100 ms
/// instead of running on to its budget.
fn die_with_parent() {
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(100));
        if std::os::unix::process::parent_id() != parent {
            std::process::exit(ORPHANED);
        }
    });
}

/// The job, read whole from stdin before anything else happens.
fn read_job() -> Result<Job, String> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).map_err(|e| format!("the sandboxed run's job cannot be read: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("the sandboxed run's job is malformed: {e}"))
}

/// The task's black boxes, each a rhai module the script can call but not
/// read, with its network (if it has one) as its `net` function.
fn bind_boxes(job: &Job) -> Result<std::collections::HashMap<String, Arc<RhaiModule>>, String> {
    let mut bound = std::collections::HashMap::new();
    for (alias, text) in &job.bound {
        let digest = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(text.as_bytes()))
        };
        let mut m = RhaiModule::load_opaque(alias, text, digest).map_err(|d| d.message)?;
        if let Some((_, b64)) = job.nets.iter().find(|(a, _)| a == alias) {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| format!("the network behind `{alias}` is not valid base64"))?;
            m.register_native("net", net_fn(bytes));
        }
        bound.insert(alias.clone(), Arc::new(m));
    }
    Ok(bound)
}

/// Fetches and builds what the script and the prelude name (the sandbox
/// is still open); the ONNX Runtime library's path, if one was loaded.
fn provision(
    program: &assay_grammar::Program,
    prelude: Option<&assay_interpreter::Prepared>,
    job: &Job,
    full: &Registry,
) -> Option<PathBuf> {
    let mut named = mentions(program);
    if let Some(p) = prelude.and_then(|pp| pp.checked().ok()) {
        let m = mentions(p);
        named.names.extend(m.names);
        named.strings.extend(m.strings);
    }
    if !job.nets.is_empty() {
        // A box's network runs in ONNX Runtime: provision it like `onnx` would.
        named.names.insert("onnx".to_string());
    }
    let provisioned = assay_stdlib::provision::provision_for(&named, full);
    for p in &provisioned.problems {
        eprintln!("note: could not provision {p}");
    }
    provisioned.runtime_library
}

/// Tells the parent which script offset runs now (it names the line when
/// the child dies), whenever it changes.
fn report_progress() {
    std::thread::spawn(move || {
        let mut last = usize::MAX;
        loop {
            let at = assay_interpreter::progress();
            if at != last {
                emit(&format!("at {at}"));
                last = at;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
}

/// Values bound by name before the script runs.
type Bindings = Vec<(String, Value)>;

/// Runs the task's prelude: what it records, blinded, to bind in the
/// script, and the inputs it read.
fn run_prelude(
    pp: &assay_interpreter::Prepared,
    full: &Registry,
    sandbox: &Sandbox,
    seed: u64,
) -> Result<(Bindings, BTreeMap<PathBuf, String>), String> {
    let ran = pp
        .execute(full, sandbox, Some(seed), RunOptions::default())
        .map_err(|_| "the task's prelude could not run".to_string())?;
    let out = ran.outcome;
    if let Some(e) = &out.error {
        return Err(format!("the task's prelude failed: {}", e.message));
    }
    let bindings = out
        .records
        .into_iter()
        .map(|(k, v)| match v {
            Value::Handle(h) => (k, Value::Handle(Arc::new(Blinded(h)))),
            other => (k, other),
        })
        .collect();
    Ok((bindings, out.inputs))
}

/// The run's share of a sharded job: whole, one shard, or the merge of
/// the shards' partials (each decoded and checked here).
fn shard_mode(shard: &ShardJob) -> Result<ShardMode, String> {
    Ok(match shard {
        ShardJob::Whole => ShardMode::Whole,
        ShardJob::Part { index, count, earlier } => ShardMode::Part {
            share: Share::new(*index, *count).map_err(|e| e.to_string())?,
            earlier: decode_all(earlier)?,
        },
        ShardJob::Merge { partials, stopped } => {
            ShardMode::Merge { shards: decode_all(partials)?, stopped: stopped.clone() }
        }
    })
}

/// Each shard's partials.bin, from base64, decoded and checked.
fn decode_all(partials: &[String]) -> Result<Vec<Vec<assay_interpreter::shard::Partial>>, String> {
    use base64::Engine as _;
    let mut shards = Vec::with_capacity(partials.len());
    for (i, b64) in partials.iter().enumerate() {
        let parts = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| e.to_string())
            .and_then(|b| assay_interpreter::shard::decode_partials(&b))
            .map_err(|e| format!("shard {i}'s partials.bin: {e}"))?;
        shards.push(parts);
    }
    Ok(shards)
}

/// Writes the run record with its manifest: the runtime, the sandbox, the
/// merge and the call cache as they were.
fn write_record(
    ran: &mut assay_interpreter::Ran,
    job: &Job,
    shard_mode: &ShardMode,
    sandbox_facts: &Json,
) -> std::io::Result<()> {
    let mut manifest = ran.manifest();
    manifest.onnxruntime = assay_stdlib::onnx::runtime::loaded().map(|rt| {
        json!({"version": rt.runtime.version, "threads": rt.threads, "library": rt.runtime.library.display().to_string()})
    });
    manifest.sandbox = Some(sandbox_facts.clone());
    if let ShardMode::Merge { shards, .. } = shard_mode {
        let out = &ran.outcome;
        manifest.merged =
            Some(json!({"shards": shards.len(), "answered": out.merged_calls, "ran_whole": out.merged_whole}));
    }
    let (mode, answered, stored) = match job.cache {
        crate::cache::CacheUse::Off => ("off", None, None),
        crate::cache::CacheUse::On => ("on", Some(ran.outcome.cache_hits), Some(ran.outcome.cache_stored)),
        crate::cache::CacheUse::Refresh => ("bypassed: every call ran", None, Some(ran.outcome.cache_stored)),
    };
    manifest.call_cache = Some(CallCacheFacts { mode: mode.to_string(), answered, stored });
    ran.write(&job.out, &manifest)
}

/// Writes the images the script showed to `shown/NN.png` (the first
/// `MAX_SHOWN_IMAGES`); how many it showed in all.
fn save_shown_images(out: &assay_interpreter::Outcome, run_folder: &Path) -> usize {
    let mut count = 0;
    let mut images = Vec::new();
    for sh in &out.shows {
        sh.values.iter().for_each(|v| shown_images(v, &mut images, &mut count));
    }
    let dir = run_folder.join("shown");
    if !images.is_empty() && std::fs::create_dir_all(&dir).is_ok() {
        for (i, img) in images.iter().enumerate() {
            if let Ok(png) = img.to_png_fast() {
                let _ = std::fs::write(dir.join(format!("{:02}.png", i + 1)), png);
            }
        }
    }
    count
}

/// The report of a finished run, for the parent: status, counts, the
/// shows and failed asserts clipped (a script cannot flood the caller).
fn done_report(out: &assay_interpreter::Outcome, job: &Job, sandbox: Json, shown_images: usize) -> Done {
    let status = Status::of(out);
    Done {
        status,
        records: out.records.len(),
        asserts: out.asserts.len(),
        failed: out
            .asserts
            .iter()
            .filter(|a| !a.passed)
            .take(MAX_SHOWS)
            .map(|a| (a.line, clip_text(a.expr.clone()), a.message.clone().map(clip_text)))
            .collect(),
        tool_calls: out.trace.len(),
        cached_calls: out.cache_hits,
        shows: out
            .shows
            .iter()
            .take(MAX_SHOWS)
            .map(|sh| ShowOut {
                title: sh.title.clone().map(clip_text),
                line: sh.line,
                text: clip_text(sh.values.iter().map(show_text).collect::<Vec<_>>().join("\n")),
            })
            .collect(),
        error_rendered: out.error.as_ref().map(|d| if job.color { d.render_color(100) } else { d.render_plain(100) }),
        diagnostics: out.error.iter().map(|d| d.to_json()).collect(),
        warnings_rendered: String::new(),
        warnings: Vec::new(),
        sandbox,
        shard_calls: Vec::new(),
        shard_stopped: None,
        merged_calls: out.merged_calls,
        merged_whole: out.merged_whole.clone(),
        replayable: !out.outside && out.error.is_none() && out.partials.is_empty(),
        replayed: false,
        shown_images,
        named_inputs: out.named_inputs.clone(),
    }
}
