//! Running a script as an untrusted program. `assay run` and `assay verify`
//! never evaluate a script in their own process: they start a child (this
//! same binary, `assay __child`) that checks the script, provisions what it
//! names, lowers its memory limit, closes the kernel sandbox (Landlock:
//! read only the allowed roots, Assay's cache and the system's libraries;
//! write only into the run's unfinished folder; connect only to the
//! configured LLM endpoint's port; execute nothing) and only then runs it.
//! The parent enforces the wall-time budget, reads which line the child is
//! on, and when the child dies (out of memory, out of time, a crash) writes
//! the error run record itself. So a hostile script ends with a diagnostic
//! and a record, never an OOM kill of the caller, a hang or a lost run.

use std::collections::BTreeMap;
use std::path::PathBuf;

use assay_interpreter::Diag;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

mod budget;
mod child;
mod parent;
mod show;
pub use budget::*;
pub use child::*;
pub use parent::*;
use show::*;

/// The hidden subcommand the child runs.
pub const CHILD_ARG: &str = "__child";

/// What the parent asks the child to do.
#[derive(Debug, Serialize, Deserialize)]
pub struct Job {
    pub name: String,
    pub text: String,
    /// The folder relative paths resolve against.
    pub base: PathBuf,
    pub roots: Vec<PathBuf>,
    pub seed: Option<u64>,
    /// The unfinished run folder the child writes into (and nowhere else).
    pub out: PathBuf,
    pub budget: Budget,
    pub color: bool,
    /// Test builds only: turn off the in-process checks to show the kernel's.
    pub bypass_checks: bool,
    /// Write the images the script shows to `shown/NN.png` in the run
    /// folder (for an agent's vision model); at most `MAX_SHOWN_IMAGES`.
    #[serde(default)]
    pub save_shown_images: bool,
    /// Assay statements the harness runs before the script (after the
    /// sandbox closes); each `record "name", value` of it is bound as `name`
    /// in the script, blinded (it describes itself as nothing more than its
    /// kind). With the kinds here the script is checked first.
    #[serde(default)]
    pub prelude: Option<(String, Vec<(String, String)>)>,
    /// Tools the script may not call (they would reveal a task's answer).
    #[serde(default)]
    pub deny_tools: Vec<String>,
    /// Black boxes bound before the script starts: (alias, rhai source).
    /// The script can call them; it cannot read them (they are no file).
    #[serde(default)]
    pub bound: Vec<(String, String)>,
    /// Whether tool calls are answered from and stored in the call cache.
    #[serde(default)]
    pub cache: crate::cache::CacheUse,
    /// Networks behind black boxes: (alias, ONNX bytes in base64). The
    /// box's rhai calls `net(x)`, which runs the network in ONNX Runtime;
    /// the bytes reach the child here, never as a file it could read.
    #[serde(default)]
    pub nets: Vec<(String, String)>,
    /// Whole, one shard, or the merge of shards.
    #[serde(default)]
    pub shard: ShardJob,
    /// The key for `describe`'s endpoint: it reaches the child in the job,
    /// never in its environment (which a script may read where the roots
    /// cover /proc). Set by `run_child` from ASSAY_LLM_KEY.
    #[serde(default)]
    pub llm_key: Option<Secret>,
}

/// A secret that is never printed.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

impl Job {
    /// A job for `text` (named `name`) read from `base` with `roots`, its
    /// record written into `out`: the whole script, no task (no prelude,
    /// bound boxes or denied tools), no colour, shown images not saved.
    pub fn new(
        name: String,
        text: String,
        base: PathBuf,
        roots: Vec<PathBuf>,
        out: PathBuf,
        budget: Budget,
        cache: crate::cache::CacheUse,
    ) -> Job {
        Job {
            name,
            text,
            base,
            roots,
            seed: None,
            out,
            budget,
            color: false,
            bypass_checks: false,
            save_shown_images: false,
            prelude: None,
            deny_tools: Vec::new(),
            bound: Vec::new(),
            nets: Vec::new(),
            cache,
            shard: ShardJob::Whole,
            llm_key: None,
        }
    }
}

/// How a run treats its shardable work (see `assay_interpreter::shard`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub enum ShardJob {
    #[default]
    Whole,
    /// Shard `index` of `count`: write a partial record. `earlier`: for a
    /// later stage, each shard's partials.bin (base64) of the stage before;
    /// calls every shard finished there are merged from them, not split.
    Part {
        index: usize,
        count: usize,
        #[serde(default)]
        earlier: Vec<String>,
    },
    /// Merge: each shard's partials.bin (base64) and, where it stopped
    /// early, why.
    Merge { partials: Vec<String>, stopped: Vec<Option<String>> },
}

/// One `show` as the parent prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShowOut {
    pub title: Option<String>,
    pub line: usize,
    pub text: String,
}

/// What the child reports at the end, as one JSON line.
#[derive(Debug, Serialize, Deserialize)]
pub enum Report {
    CheckFailed { rendered: String, diagnostics: Vec<Json> },
    Done(Box<Done>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Done {
    pub status: assay_interpreter::Status,
    pub records: usize,
    pub asserts: usize,
    /// (line, expression, message) of each failed assert.
    pub failed: Vec<(usize, String, Option<String>)>,
    pub tool_calls: usize,
    /// Of them, answered from the call cache.
    #[serde(default)]
    pub cached_calls: usize,
    pub shows: Vec<ShowOut>,
    pub error_rendered: Option<String>,
    pub diagnostics: Vec<Json>,
    /// The checker's warnings, rendered and as JSON (the script ran).
    #[serde(default)]
    pub warnings_rendered: String,
    #[serde(default)]
    pub warnings: Vec<Json>,
    pub sandbox: Json,
    /// A shard: its sharded calls as (tool, line), and where it stopped early.
    #[serde(default)]
    pub shard_calls: Vec<(String, usize)>,
    #[serde(default)]
    pub shard_stopped: Option<String>,
    /// A merge: calls answered from the shards, and calls run whole.
    #[serde(default)]
    pub merged_calls: usize,
    #[serde(default)]
    pub merged_whole: Vec<String>,
    /// The run took nothing from outside its files (see
    /// `assay_interpreter::Outcome::outside`): its record may be replayed.
    #[serde(default)]
    pub replayable: bool,
    /// This report is a replay of a kept record (no script ran).
    #[serde(default)]
    pub replayed: bool,
    /// Images among the shown values, all of them (an agent is told how
    /// many of them were not sent).
    #[serde(default)]
    pub shown_images: usize,
    /// The files read, by the path as named (links not followed): what a
    /// replay of this run must find unchanged.
    #[serde(default)]
    pub named_inputs: BTreeMap<String, String>,
}

/// The most shown images one run writes for an agent.
pub(crate) const MAX_SHOWN_IMAGES: usize = 16;

/// How a child ended.
#[derive(Debug)]
pub enum End {
    Report(Report),
    /// It died or was stopped; the parent wrote the error record.
    Died {
        diag: Box<Diag>,
    },
}
