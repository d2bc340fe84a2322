//! One run of a script, start to record, as a library: prepare (parse,
//! load the `use`d modules, check), execute, and assemble the record.
//! `assay run`'s sandboxed child (which `verify` and the agent also run
//! through), the tools' examples and the tests all run scripts with it. What
//! only the command does (provisioning, the kernel's sandbox, budgets,
//! progress, a task's prelude) happens between the steps, and what only it
//! knows (the sandbox's facts, the runtime, the call cache) it adds to the
//! manifest before the record is written:
//!
//! ```ignore
//! let prepared = prepare(&file, &registry, &sandbox);
//! let program = prepared.checked()?;        // every error, or the program
//! // ... provision, restrict, bind ...
//! let mut ran = prepared.execute(&registry, &sandbox, seed, options);
//! let mut manifest = ran.manifest();        // Manifest::of the outcome
//! manifest.sandbox = Some(facts);
//! ran.write(&run_folder, &manifest)?;       // results, trace, manifest, report
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use assay_grammar::{Program, StmtKind};
use sha2::{Digest, Sha256};

use crate::check;
use crate::diag::{Diag, SourceFile};
use crate::eval::{execute_with, script_seed, Outcome, RunOptions};
use crate::record::{write_files, Manifest, RunFiles};
use crate::rhai_module::RhaiModule;
use crate::sandbox::Sandbox;
use crate::tool::Registry;
use crate::types::Type;

/// A script parsed, its modules loaded, and checked.
pub struct Prepared {
    pub file: Arc<SourceFile>,
    pub program: Option<Program>,
    pub modules: HashMap<String, Arc<RhaiModule>>,
    /// Module files read: path -> sha256.
    pub inputs: BTreeMap<PathBuf, String>,
    /// Every error found; empty means the script may run.
    pub diags: Vec<Diag>,
    /// What the checker warns of: shown, and the script still runs.
    pub warnings: Vec<Diag>,
}

/// Parses, loads `use`d rhai modules (through the sandbox) and checks.
pub fn prepare(file: &Arc<SourceFile>, registry: &Registry, sandbox: &Sandbox) -> Prepared {
    prepare_with(file, registry, sandbox, &HashMap::new(), &[])
}

/// As `prepare`, with modules bound before the script starts (an agent's
/// black box: the script may call them but cannot rebind their names) and
/// names of values that will be bound (`execute_with`), with their types.
pub fn prepare_with(
    file: &Arc<SourceFile>,
    registry: &Registry,
    sandbox: &Sandbox,
    bound: &HashMap<String, Arc<RhaiModule>>,
    names: &[(String, Type)],
) -> Prepared {
    let mut prepared = Prepared {
        file: file.clone(),
        program: None,
        modules: bound.clone(),
        inputs: BTreeMap::new(),
        diags: Vec::new(),
        warnings: Vec::new(),
    };
    // Every syntax error at once, one per broken statement.
    let program = match assay_grammar::parse_all(&file.text) {
        Ok(p) => p,
        Err(errors) => {
            prepared.diags.extend(errors.iter().map(|e| Diag::from_syntax(file, e)));
            return prepared;
        }
    };
    for s in &program.stmts {
        if let StmtKind::Use { path, alias } = &s.node {
            if bound.contains_key(&alias.node) {
                prepared.diags.push(
                    Diag::new(crate::code::Code::Use, format!("`{}` is already bound by the task", alias.node))
                        .at(file, alias.span, "taken")
                        .help("choose another name after `as`"),
                );
                continue;
            }
            if !path.node.ends_with(".rhai") {
                prepared.diags.push(
                    Diag::new(crate::code::Code::Use, format!("`use` loads rhai files, not `{}`", path.node))
                        .at(file, path.span, "not a .rhai file")
                        .help("write `use \"metrics.rhai\" as m`"),
                );
                continue;
            }
            match sandbox.read(&path.node) {
                Err(e) => prepared.diags.push(
                    Diag::new(crate::code::Code::Use, e.message()).at(file, path.span, "cannot load").help(e.help()),
                ),
                Ok((real, bytes)) => {
                    let digest = hex::encode(Sha256::digest(&bytes));
                    let text = match String::from_utf8(bytes) {
                        Ok(t) => t,
                        Err(_) => {
                            prepared.diags.push(
                                Diag::new(crate::code::Code::Use, format!("`{}` is not UTF-8 text", path.node))
                                    .at(file, path.span, "not text")
                                    .help("a rhai module must be a UTF-8 text file"),
                            );
                            continue;
                        }
                    };
                    match RhaiModule::load(&alias.node, real.clone(), &path.node, &text, digest.clone()) {
                        Ok(m) => {
                            prepared.inputs.insert(real, digest);
                            prepared.modules.insert(alias.node.clone(), Arc::new(m));
                        }
                        Err(d) => prepared.diags.push(d.note(
                            Diag::new(crate::code::Code::CalledFrom, "loaded here").at(file, path.span, "this `use`"),
                        )),
                    }
                }
            }
        }
    }
    let (warnings, errors): (Vec<Diag>, Vec<Diag>) =
        check::check_with(file, &program, registry, &prepared.modules, names)
            .into_iter()
            .partition(|d| d.severity == crate::diag::Severity::Warning);
    prepared.diags.extend(errors);
    prepared.warnings = warnings;
    prepared.program = Some(program);
    prepared
}

impl Prepared {
    /// The program, if the script checked; else every error found.
    pub fn checked(&self) -> Result<&Program, &[Diag]> {
        match &self.program {
            Some(p) if self.diags.is_empty() => Ok(p),
            _ => Err(&self.diags),
        }
    }

    /// Runs the checked script: with `seed` if given, else the one the
    /// script sets, else 0. The module files read while preparing join the
    /// run's inputs. A script that did not check is not run: its errors.
    pub fn execute(
        &self,
        registry: &Registry,
        sandbox: &Sandbox,
        seed: Option<u64>,
        opts: RunOptions,
    ) -> Result<Ran, &[Diag]> {
        let program = self.checked()?;
        let seed = seed.or_else(|| script_seed(program)).unwrap_or(0);
        let mut outcome = execute_with(&self.file, program, registry, sandbox, &self.modules, seed, opts);
        outcome.inputs.extend(self.inputs.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(Ran { file: self.file.clone(), outcome, dir: sandbox.base().to_path_buf(), roots: sandbox.roots().to_vec() })
    }
}

/// A script that ran: how it ended, and what its record needs.
pub struct Ran {
    pub file: Arc<SourceFile>,
    pub outcome: Outcome,
    /// The script's folder and the allowed roots, as the sandbox resolved them.
    dir: PathBuf,
    roots: Vec<PathBuf>,
}

impl Ran {
    /// The record's manifest as far as the run knows it (version, status,
    /// seed, script, roots, inputs, tool calls); the caller adds what it
    /// knows before writing.
    pub fn manifest(&self) -> Manifest {
        Manifest::of(&self.outcome, &self.file.name, &self.file.text, &self.dir, &self.roots)
    }

    /// The record's files (script, results.json with its artifacts, trace,
    /// `manifest`, report). Takes the outcome's artifacts, so call it once.
    pub fn files(&mut self, manifest: &Manifest) -> RunFiles {
        RunFiles::of(&self.file, &mut self.outcome, manifest)
    }

    /// Writes the record into `dir` (a run folder being filled; see
    /// `begin_run` and `finish_run` for making it appear whole).
    pub fn write(&mut self, dir: &Path, manifest: &Manifest) -> std::io::Result<()> {
        write_files(dir, &self.files(manifest))
    }
}

/// Prepares and runs a script with nothing bound before it starts (the
/// tools' examples, tests): its errors if it does not check.
pub fn run_script(
    file: &Arc<SourceFile>,
    registry: &Registry,
    sandbox: &Sandbox,
    seed: Option<u64>,
    opts: RunOptions,
) -> Result<Ran, Vec<Diag>> {
    let prepared = prepare(file, registry, sandbox);
    prepared.execute(registry, sandbox, seed, opts).map_err(<[Diag]>::to_vec)
}
