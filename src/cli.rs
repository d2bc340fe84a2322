//! Command-line parsing and the subcommands.

use assay::{out, outln};
use std::path::{Path, PathBuf};

use assay_interpreter::{diff_results, read_regular, read_run, Registry};

use assay::bench::BenchSet;
use assay::cache::CacheUse;
use assay::out::{EXIT_OK, EXIT_SCRIPT, EXIT_USAGE};
use assay::run::{cmd_check, cmd_run, pretty, usage_error};
use assay::supervise::{parse_duration, parse_size, Budget, ShardJob};
use clap::{Parser, Subcommand};
use serde_json::json;

#[derive(Parser)]
#[command(name = "assay", version, about = "Checked, reproducible interpretability experiments", long_about = None)]
#[command(after_help = "Exit codes: 0 ok, 1 script error, 2 usage error, 3 failed assert or failed verify.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check and run a script; write its run record under runs/<name>/<id>/.
    Run {
        /// The .assay script, or - to read it from standard input.
        script: String,
        /// Print results (or diagnostics) as one JSON document.
        #[arg(long)]
        json: bool,
        /// Another folder the script may read (repeatable).
        #[arg(long = "allow-read", value_name = "DIR")]
        allow_read: Vec<PathBuf>,
        /// Override the script's `seed`.
        #[arg(long)]
        seed: Option<u64>,
        /// Where run records go.
        #[arg(long = "runs-dir", value_name = "DIR", default_value = "runs")]
        runs_dir: PathBuf,
        /// Run every tool call, answering none from the call cache (results
        /// are still stored for later runs).
        #[arg(long = "no-cache")]
        no_cache: bool,
        /// Run shard I of N (0-based) of the script's shardable work
        /// (exemplars, patch_sweep, shard_map) and write a partial record to
        /// runs/<name>/shard-I-of-N/ for `assay merge`. `auto` takes the
        /// index and count from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT;
        /// `auto/N` the index from SLURM or JOB_COMPLETION_INDEX (Kubernetes).
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// With --shard: run the next stage of a script whose sharded calls
        /// depend on each other. The sharded calls every shard's record
        /// (in the runs folder) finished are merged from those records, and
        /// the first one they did not is split; run all N shards this way,
        /// once per dependent stage, then `assay merge`.
        #[arg(long = "next-stage", requires = "shard")]
        next_stage: bool,
        #[command(flatten)]
        budget: BudgetArgs,
    },
    /// Merge the partial records of `assay run --shard I/N` into one run,
    /// byte-identical to running the script on one machine.
    Merge {
        /// The script the shards ran.
        script: String,
        /// How many shards ran.
        #[arg(long)]
        shards: usize,
        #[arg(long)]
        json: bool,
        #[arg(long = "allow-read", value_name = "DIR")]
        allow_read: Vec<PathBuf>,
        /// Where the shards' records are, and where the merged run goes.
        #[arg(long = "runs-dir", value_name = "DIR", default_value = "runs")]
        runs_dir: PathBuf,
        #[arg(long = "no-cache")]
        no_cache: bool,
        #[command(flatten)]
        budget: BudgetArgs,
    },
    /// Run a script as a SLURM array job of shards and a merge job after it.
    Slurm {
        #[command(subcommand)]
        what: assay::slurm::SlurmCommand,
    },
    /// Check a script without running it: report every error at once.
    Check {
        /// The .assay script, or - for standard input.
        script: String,
        #[arg(long)]
        json: bool,
        #[arg(long = "allow-read", value_name = "DIR")]
        allow_read: Vec<PathBuf>,
    },
    /// Format scripts in Assay's one layout (in place; a folder means its
    /// .assay files; none or - formats standard input to standard output).
    Fmt {
        /// Scripts or folders.
        paths: Vec<String>,
        /// Only list the scripts that are not formatted; fail if any is.
        #[arg(long)]
        check: bool,
    },
    /// A language server over standard input and output (for editors):
    /// diagnostics as you type, hover, completion, signature help, go to
    /// definition, symbols and formatting.
    Lsp,
    /// List every tool with its signature, doc and examples.
    Tools {
        #[arg(long)]
        json: bool,
        /// Print docs/tools.md.
        #[arg(long, conflicts_with = "json")]
        markdown: bool,
    },
    /// List every diagnostic code (`assay::...`) with what it means; the
    /// codes in `--json` output are these and no others.
    Codes {
        #[arg(long)]
        json: bool,
    },
    /// Print a run's trace as JSONL, one line per tool call, whether it
    /// was kept as trace.jsonl or (a large one) trace.jsonl.gz.
    Trace {
        /// The run folder (runs/NAME/NNNN).
        run: PathBuf,
    },
    /// Compare two runs record by record.
    Diff {
        a: PathBuf,
        b: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// List a model's inputs, outputs and every intermediate tensor, grouped by module.
    Inspect {
        /// The .onnx file.
        model: PathBuf,
        #[arg(long)]
        json: bool,
        /// Only tensors whose name matches this glob, e.g. "*Relu*".
        #[arg(long)]
        pattern: Option<String>,
    },
    /// Find or fetch ONNX Runtime (and cache it), and say what was done.
    Setup {
        #[arg(long)]
        json: bool,
    },
    /// Let a language model investigate by writing Assay scripts (endpoint:
    /// ASSAY_AGENT_URL / ASSAY_AGENT_MODEL / ASSAY_AGENT_KEY, else ASSAY_LLM_*).
    Agent {
        #[command(subcommand)]
        what: AgentCommand,
    },
    /// Run a benchmark with ground truth (FIND's numeric or string
    /// functions, 91 synthetic neurons) with a baseline (no model) or the
    /// agent; resumable. See docs/bench.md.
    Bench {
        #[command(flatten)]
        set: BenchSet,
        /// Items investigated at once (default: the number of CPUs).
        #[arg(long)]
        jobs: Option<usize>,
        #[arg(long)]
        json: bool,
        /// Investigate only shard I of N's block of items (`auto`: from
        /// SLURM's array task); the table is written by --merge-shards.
        #[arg(long, value_name = "I/N", conflicts_with = "merge_shards")]
        shard: Option<String>,
        /// Write the table once every item of the N shards is finished;
        /// name the shards whose items are not.
        #[arg(long = "merge-shards", value_name = "N")]
        merge_shards: Option<usize>,
        #[command(flatten)]
        limits: LimitOpts,
    },
    /// Re-execute a run and check that its results.json comes out identical.
    Verify {
        run: PathBuf,
        #[arg(long)]
        json: bool,
        /// A folder the re-run may read (repeatable); the default is the
        /// current folder. The run's own manifest is never trusted for this.
        #[arg(long = "allow-read", value_name = "DIR")]
        allow_read: Vec<PathBuf>,
        /// Answer tool calls from the call cache: a quick check that the
        /// record matches what is cached. Without it every call runs again,
        /// which is what proves a record.
        #[arg(long)]
        cached: bool,
        #[command(flatten)]
        budget: BudgetArgs,
    },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Describe a black-box numeric function (FIND): a rhai file defining it.
    /// The model calls it as `box.f(x)` and never sees its source.
    Function {
        /// The rhai file that defines the function (kept from the model).
        file: PathBuf,
        /// The function's name in the file.
        #[arg(long = "fn", default_value = "f")]
        name: String,
        #[command(flatten)]
        opts: AgentOpts,
    },
    /// Describe a unit (MAIA): a synthetic neuron with known ground truth,
    /// bound as `unit` and blinded; the answer's predicted stimuli are scored.
    Unit {
        /// A synthetic neuron's name (see `synthetic_neurons()`; withheld from the model).
        #[arg(long, conflicts_with_all = ["model", "unit"])]
        synthetic: Option<String>,
        /// A built-in model (with --unit), e.g. efficientnet-lite0.
        #[arg(long, requires = "unit")]
        model: Option<String>,
        /// The unit's arguments after the model, as in `unit(m, ...)`:
        /// e.g. '"/_blocks.15/Relu6_output_0", channel: 42'.
        #[arg(long, requires = "model")]
        unit: Option<String>,
        #[command(flatten)]
        opts: AgentOpts,
    },
    /// Answer an open question about a model or data by experiment.
    Ask {
        question: String,
        /// A folder the agent's scripts may read (repeatable; default: the current folder).
        #[arg(long = "allow-read", value_name = "DIR")]
        allow_read: Vec<PathBuf>,
        #[command(flatten)]
        opts: AgentOpts,
    },
    /// Re-run every step of an investigation without the model and check
    /// each results.json byte for byte.
    Replay {
        dir: PathBuf,
        /// The black box, if it is no longer where the investigation found it.
        #[arg(long = "box", value_name = "FILE")]
        box_file: Option<PathBuf>,
        /// For an open question: a folder its scripts may read (repeatable;
        /// the first is where relative paths start). The default is the
        /// current folder; the folder's own manifest is never trusted for this.
        #[arg(long = "allow-read", value_name = "DIR")]
        allow_read: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Print the agent guide the system prompt is made of: for every task
    /// (docs/agent-guide.md), or the part one task's model gets.
    Guide {
        #[arg(long, value_enum, default_value = "all")]
        task: assay::docs::Focus,
    },
}

#[derive(clap::Args)]
struct AgentOpts {
    /// Where investigation folders go.
    #[arg(long, value_name = "DIR", default_value = "investigations")]
    out: PathBuf,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: LimitOpts,
}

impl AgentOpts {
    fn limits(&self) -> Result<assay::agent::Limits, String> {
        self.limits.limits()
    }
}

/// An investigation's budgets and how the model is called.
#[derive(clap::Args)]
struct LimitOpts {
    /// Scripts the model may run before it must answer.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Characters of feedback per turn; longer output is elided with a note.
    #[arg(long, default_value_t = 6000)]
    reply_chars: usize,
    /// Wall time for the whole investigation.
    #[arg(long, default_value = "2h")]
    wall: String,
    /// Total tokens (as the endpoint reports them) before it stops.
    #[arg(long, default_value_t = 2_000_000)]
    tokens: u64,
    /// The first wait before a retry (429, 5xx, timeouts); it doubles each time.
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    retry_wait: String,
    /// Attempts per model call.
    #[arg(long, default_value_t = 6)]
    attempts: u32,
    /// How long one model call may take before it is retried.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    request_timeout: String,
    /// Offer scripts as a `run_assay` function call (for endpoints with tool calling).
    #[arg(long)]
    tool_calls: bool,
    /// The model takes images: shown images go back as image parts (PNG data URLs).
    #[arg(long)]
    vision: bool,
    /// How many times a final answer that was not accepted (a missing or
    /// malformed field, an expression that fails) is sent back to be given
    /// again before it is scored as failed.
    #[arg(long, default_value_t = 2)]
    answer_retries: usize,
    #[command(flatten)]
    budget: BudgetArgs,
}

impl LimitOpts {
    fn limits(&self) -> Result<assay::agent::Limits, String> {
        let mut budget = self.budget.budget()?;
        if self.budget.timeout.is_none() {
            budget.timeout = std::time::Duration::from_secs(300);
        }
        let retry = assay_stdlib::llm::Retry {
            attempts: self.attempts.max(1),
            base: parse_duration(&self.retry_wait)?,
            timeout: parse_duration(&self.request_timeout)?,
            ..assay_stdlib::llm::Retry::default()
        };
        Ok(assay::agent::Limits {
            steps: self.steps,
            budget,
            reply_chars: self.reply_chars.max(200),
            wall: parse_duration(&self.wall)?,
            tokens: self.tokens,
            retry,
            tool_calls: self.tool_calls,
            vision: self.vision,
            answer_retries: self.answer_retries,
        })
    }
}

#[derive(clap::Args)]
struct BudgetArgs {
    /// Memory the script may use, e.g. 512M or 4G (default: half the machine's memory; in a SLURM job, 85% of the job's).
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// Wall time the script may take, e.g. 90s, 10m or 2h (default: 1h; in a SLURM job, the time it has left less a margin).
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// What the run may write into its run folder, e.g. 500M or 20G (default: 10G).
    #[arg(long, value_name = "SIZE")]
    disk: Option<String>,
}

impl BudgetArgs {
    fn budget(&self) -> Result<Budget, String> {
        let mut b = Budget::defaults();
        // Inside a SLURM job, what the job was given bounds the defaults.
        if self.memory.is_none() || self.timeout.is_none() {
            if let Some(note) = assay::supervise::slurm_job()
                .and_then(|j| j.apply(&mut b, self.memory.is_none(), self.timeout.is_none()))
            {
                eprintln!("{note}");
            }
        }
        if let Some(m) = &self.memory {
            b.memory = parse_size(m)?;
        }
        if let Some(t) = &self.timeout {
            b.timeout = parse_duration(t)?;
        }
        if let Some(d) = &self.disk {
            b.disk = parse_size(d).map_err(|e| e.replace("memory budget", "disk budget"))?;
        }
        Ok(b)
    }
}

pub(crate) fn main() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    let registry = assay_stdlib::registry();
    match cli.command {
        Command::Run { script, json, allow_read, seed, runs_dir, no_cache, shard, next_stage, budget } => {
            match budget.budget() {
                Ok(b) => {
                    let cache = if no_cache { CacheUse::Refresh } else { CacheUse::On };
                    let job = match shard.as_deref().map(assay::shard::resolve) {
                    None => ShardJob::Whole,
                    Some(Ok(s)) if next_stage => {
                        return assay::shard::cmd_next_stage(&script, s, json, &allow_read, seed, &runs_dir, b, cache)
                    }
                    Some(Ok(s)) => ShardJob::Part { index: s.index, count: s.count, earlier: Vec::new() },
                    Some(Err(e)) => {
                        return usage_error(
                            json,
                            &e,
                            "e.g. --shard 0/4; --shard auto takes SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT, --shard auto/4 takes JOB_COMPLETION_INDEX (Kubernetes)",
                        )
                    }
                };
                    cmd_run(&script, json, &allow_read, seed, &runs_dir, b, cache, job)
                }
                Err(e) => usage_error(json, &e, "e.g. --memory 2G --timeout 10m"),
            }
        }
        Command::Merge { script, shards, json, allow_read, runs_dir, no_cache, budget } => match budget.budget() {
            Ok(b) => {
                let cache = if no_cache { CacheUse::Refresh } else { CacheUse::On };
                assay::shard::cmd_merge(&script, shards, json, &allow_read, &runs_dir, b, cache)
            }
            Err(e) => usage_error(json, &e, "e.g. --memory 2G --timeout 10m"),
        },
        Command::Slurm { what } => assay::slurm::cmd_slurm(what),
        Command::Check { script, json, allow_read } => cmd_check(&registry, &script, json, &allow_read),
        Command::Fmt { paths, check } => assay::fmt::cmd_fmt(&paths, check),
        Command::Lsp => assay::lsp::cmd_lsp(&registry),
        Command::Codes { json } => {
            if json {
                let codes: Vec<_> = assay_interpreter::Code::ALL
                    .iter()
                    .map(|code| json!({"code": code.as_str(), "meaning": code.about()}))
                    .collect();
                outln!("{}", pretty(&json!({"codes": codes})));
            } else {
                for code in assay_interpreter::Code::ALL {
                    outln!("{:<32} {}", code.as_str(), code.about());
                }
            }
            EXIT_OK
        }
        Command::Tools { json, markdown } => {
            if markdown {
                out!("{}", assay::docs::tools_markdown(&registry));
            } else if json {
                outln!("{}", pretty(&assay::docs::tools_json(&registry)));
            } else {
                out!("{}", assay::docs::tools_text(&registry));
            }
            EXIT_OK
        }
        Command::Diff { a, b, json } => cmd_diff(&a, &b, json),
        Command::Trace { run } => match assay_interpreter::copy_trace(&run, &mut std::io::stdout().lock()) {
            Ok(_) => EXIT_OK,
            Err(e) => usage_error(
                false,
                &format!("{}: no trace to read: {e}", run.display()),
                "give a run folder (runs/NAME/NNNN) that holds trace.jsonl or trace.jsonl.gz",
            ),
        },
        Command::Verify { run, json, allow_read, cached, budget } => match budget.budget() {
            Ok(b) => assay::verify::cmd_verify(
                &run,
                json,
                &allow_read,
                b,
                if cached { CacheUse::On } else { CacheUse::Refresh },
            ),
            Err(e) => usage_error(json, &e, "e.g. --memory 2G --timeout 10m"),
        },
        Command::Setup { json } => cmd_setup(json),
        Command::Agent { what } => cmd_agent(what, &registry),
        Command::Bench { set, jobs, json, shard, merge_shards, limits } => {
            cmd_bench(set, jobs, json, shard, merge_shards, limits)
        }
        Command::Inspect { model, json, pattern } => crate::inspect::cmd_inspect(&model, json, pattern.as_deref()),
    }
}

/// `assay bench`: checks the options, then runs the benchmark.
fn cmd_bench(
    set: BenchSet,
    jobs: Option<usize>,
    json: bool,
    shard: Option<String>,
    merge_shards: Option<usize>,
    limits: LimitOpts,
) -> u8 {
    let out = set.out_dir();
    let BenchSet { suite, baseline, n, seed, .. } = set;
    let shard = match shard.as_deref().map(assay::shard::resolve).transpose() {
        Ok(s) => s,
        Err(e) => return usage_error(json, &e, "e.g. --shard 0/4, or --shard auto in a SLURM array job"),
    };
    let limits = match limits.limits() {
        Ok(l) => l,
        Err(e) => return usage_error(json, &e, "e.g. --wall 30m --timeout 2m"),
    };
    let runner = match baseline.as_deref() {
        None => assay::bench::Runner::Agent,
        Some("truth") => assay::bench::Runner::Truth,
        Some(b) => match suite.baselines().iter().find(|(name, _)| *name == b) {
            Some((name, _)) => assay::bench::Runner::Baseline(name),
            None => {
                let names: Vec<&str> = suite.baselines().iter().map(|(n, _)| *n).collect();
                return usage_error(
                    json,
                    &format!("no baseline named `{b}`"),
                    &format!("the baselines are {}, and `truth` (the ground truth as the answer)", names.join(", ")),
                );
            }
        },
    };
    if n == 0 {
        return usage_error(json, "--n must be at least 1", "e.g. --n 100");
    }
    if merge_shards.is_some_and(|c| c == 0 || c > assay_interpreter::shard::MAX_SHARDS) {
        return usage_error(json, "--merge-shards is the number of shards that ran", "e.g. --merge-shards 4");
    }
    // As many items at once as CPUs are usable (the affinity mask, the
    // cgroup quota, SLURM_CPUS_PER_TASK).
    let jobs = jobs.unwrap_or_else(|| {
        let usable = std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1);
        let slurm = std::env::var("SLURM_CPUS_PER_TASK").ok().and_then(|v| v.trim().parse::<usize>().ok());
        slurm.filter(|n| *n > 0).map_or(usable, |n| n.min(usable))
    });
    assay::bench::run(assay::bench::Options { suite, seed, n, out, runner, jobs, limits, json, shard, merge_shards })
}

/// The largest results.json `diff` reads (it holds both, parsed, in memory).
const MAX_DIFF_BYTES: u64 = 256 << 20;

fn cmd_diff(a: &Path, b: &Path, json: bool) -> u8 {
    for run in [a, b] {
        let size = std::fs::symlink_metadata(run.join("results.json")).map(|m| m.len()).unwrap_or(0);
        if size > MAX_DIFF_BYTES {
            return usage_error(
                json,
                &format!(
                    "{}/results.json is {} MiB; diff compares records in memory, at most {} MiB each",
                    run.display(),
                    size >> 20,
                    MAX_DIFF_BYTES >> 20
                ),
                "compare the records you need with a script, or keep large values as artifacts",
            );
        }
    }
    let (ra, rb) = match (read_run(a), read_run(b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => {
            return usage_error(json, &e, "pass two run folders, e.g. runs/exp/0001 runs/exp/0002")
        }
    };
    let changes = diff_results(&ra.results, &rb.results);
    if json {
        outln!(
            "{}",
            pretty(
                &json!({"same": changes.is_empty(), "changes": changes.iter().map(|c| c.to_json()).collect::<Vec<_>>()})
            )
        );
    } else if changes.is_empty() {
        outln!("no differences in records or asserts");
    } else {
        for c in &changes {
            // Record names and values come from scripts.
            outln!("{}", assay::out::escape_controls(&c.to_text()));
        }
        outln!("{} difference(s)", changes.len());
    }
    EXIT_OK
}

fn cmd_agent(what: AgentCommand, registry: &Registry) -> u8 {
    use assay::agent::{investigate, replay, Task};
    match what {
        AgentCommand::Guide { task } => {
            out!("{}", assay::docs::agent_guide(registry, task));
            EXIT_OK
        }
        AgentCommand::Replay { dir, box_file, allow_read, json } => {
            replay(&dir, box_file.as_deref(), &allow_read, json)
        }
        AgentCommand::Function { file, name, opts } => {
            let limits = match opts.limits() {
                Ok(l) => l,
                Err(e) => return usage_error(opts.json, &e, "e.g. --wall 30m --timeout 2m"),
            };
            let source = match read_regular(&file, 1 << 20).ok().and_then(|b| String::from_utf8(b).ok()) {
                Some(s) => s,
                None => {
                    return usage_error(
                        opts.json,
                        &format!("cannot read {}", file.display()),
                        "pass a rhai file of at most 1 MiB",
                    )
                }
            };
            // Kept as given (relative to where the agent runs), so a committed
            // investigation names no machine's folders; replay runs from there.
            investigate(
                Task::Function { path: file, source, name, spec: Default::default() },
                limits,
                &opts.out,
                opts.json,
            )
        }
        AgentCommand::Unit { synthetic, model, unit, opts } => {
            let limits = match opts.limits() {
                Ok(l) => l,
                Err(e) => return usage_error(opts.json, &e, "e.g. --wall 30m --timeout 2m"),
            };
            let task = match (synthetic, model, unit) {
                (Some(s), _, _) => Task::Unit { synthetic: s },
                (None, Some(m), Some(u)) => Task::ModelUnit { model: m, unit: u },
                _ => {
                    return usage_error(
                        opts.json,
                        "name the unit: --synthetic NAME, or --model NAME --unit ARGS",
                        "e.g. --model efficientnet-lite0 --unit '\"/_blocks.15/Relu6_output_0\", channel: 42'",
                    )
                }
            };
            investigate(task, limits, &opts.out, opts.json)
        }
        AgentCommand::Ask { question, allow_read, opts } => {
            let limits = match opts.limits() {
                Ok(l) => l,
                Err(e) => return usage_error(opts.json, &e, "e.g. --wall 30m --timeout 2m"),
            };
            let mut roots = Vec::new();
            let dirs = if allow_read.is_empty() { vec![PathBuf::from(".")] } else { allow_read };
            for d in dirs {
                match d.canonicalize() {
                    Ok(p) => roots.push(p),
                    Err(e) => {
                        return usage_error(opts.json, &format!("{}: {e}", d.display()), "pass folders that exist")
                    }
                }
            }
            investigate(Task::Question { text: question, roots }, limits, &opts.out, opts.json)
        }
    }
}

fn cmd_setup(json: bool) -> u8 {
    match assay_stdlib::onnx::runtime::runtime() {
        Ok(loaded) => {
            let rt = &loaded.runtime;
            if json {
                outln!(
                    "{}",
                    pretty(
                        &json!({"onnxruntime": {"version": rt.version, "library": rt.library.display().to_string(), "how": rt.how}})
                    )
                );
            } else {
                outln!("onnxruntime {}: {}", rt.version, rt.how);
            }
            EXIT_OK
        }
        Err(e) => {
            if json {
                outln!("{}", pretty(&json!({"error": e})));
            } else {
                eprintln!("error: {e}");
            }
            EXIT_SCRIPT
        }
    }
}
