//! Each crate's modules form layers, and a module uses only those below it:
//! no import cycles. Read from the source (`crate::MODULE` paths in code
//! outside tests and comments), so a new dependency that would close a cycle
//! fails here with the file and line that adds it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The library of tools. Bottom first.
const STDLIB: &[&[&str]] = &[
    // Leaves: plain data and arithmetic, provisioning, the one network client.
    &["core", "fetch", "llm", "pixels"],
    // The mechanics of hosting models, and the handle and ports tools use.
    &["onnx"],
    // Built-in models, built with the mechanics; the interpretability
    // methods over any model (run and capture, units, sweeps, interventions,
    // metrics, lens, attribution, attention), which need no built-in one.
    &["models", "methods"],
    // Image tools, synthetic neurons, exemplars, plots.
    &["vision"],
    // What a run fetches before its sandbox closes: knows every tool family.
    &["provision"],
];

/// The language. Values and rhai, records and reports, and the evaluator
/// and records each used to import each other.
const INTERPRETER: &[&[&str]] = &[
    // Leaves: diagnostic codes, tensors, the sandbox, scanning and diffing;
    // who owns an unfinished run folder; a run's trace, spilled to disk.
    &["code", "tensor", "sandbox", "scan", "diff", "owner", "trace"],
    &["diag"],
    // A compiled rhai file, as a value holds it (calling it is `rhai_bridge`).
    &["rhai_module"],
    &["value"],
    &["types", "cache"],
    &["shard"],
    // Tools, their signatures and arguments.
    &["tool"],
    // Binding arguments; calling rhai and converting values.
    &["bind", "rhai_bridge"],
    &["check"],
    // The evaluator, with `Status` (how a run ended).
    &["eval"],
    &["report"],
    // Run records: results, trace, manifest, report.
    &["record"],
    // One run start to record: prepare, execute, the record's files.
    &["pipeline"],
];

/// The runner library (`src/lib.rs`) and, above it, the `assay` command
/// (`main.rs`, `cli.rs`, `inspect.rs`), which reaches the library as `assay::`.
const COMMAND: &[&[&str]] = &[
    // Exit codes and printing; the call cache's store; generated docs.
    &["out", "cache", "docs"],
    // Editor support: the formatter and the language server (the grammar
    // and the checker only).
    &["fmt", "lsp"],
    // The sandboxed child and its supervision; `assay inspect`.
    &["supervise", "inspect"],
    // Whole-run replay; the agent's loop.
    &["replay", "agent"],
    // Running one script from the command line; benchmarks of agents.
    &["run", "bench"],
    // SLURM jobs (submit, status, resubmit).
    &["slurm"],
    // Sharded runs and merges; re-running a finished run.
    &["shard", "verify"],
    &["cli"],
    &["main"],
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("source folder").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// What breaks `layers` in the crate whose source is `src`.
fn layering_problems(src: &Path, layers: &[&[&str]]) -> Vec<String> {
    let layer = |module: &str| layers.iter().position(|l| l.contains(&module));
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for f in &files {
        let rel = f.strip_prefix(src).expect("inside src");
        let module = rel.iter().next().and_then(|c| c.to_str()).unwrap_or("").trim_end_matches(".rs");
        // Unit-test files (`x_test.rs` beside a module, `tests.rs` in a module's folder) may use anything.
        let test_file =
            f.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with("_test.rs") || n == "tests.rs");
        if module == "lib" || test_file {
            continue;
        }
        seen.insert(module.to_string());
        let Some(own) = layer(module) else {
            problems.push(format!("{}: module `{module}` is in no layer of tests/it/layers.rs", f.display()));
            continue;
        };
        let text = std::fs::read_to_string(f).expect("source");
        // Test code may use anything (fixtures from higher layers).
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            // Comments may name any module.
            if line.trim_start().starts_with("//") {
                continue;
            }
            let mut rest = line;
            while let Some(i) = rest.find("crate::") {
                let name: String =
                    rest[i + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                rest = &rest[i + 7..];
                match layer(&name) {
                    Some(l) if l < own || name == module => {}
                    Some(_) => problems.push(format!(
                        "{}:{}: `{module}` uses `{name}`, which is not below it",
                        f.display(),
                        n + 1
                    )),
                    None => {}
                }
            }
        }
    }
    // Every layer names modules that exist.
    for l in layers.iter().flat_map(|l| l.iter()) {
        if !seen.contains(*l) {
            problems.push(format!("tests/it/layers.rs names `{l}` in {}, which is no module", src.display()));
        }
    }
    problems
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    for (src, layers) in [("stdlib/src", STDLIB), ("interpreter/src", INTERPRETER), ("src", COMMAND)] {
        problems.extend(layering_problems(&root.join(src), layers));
    }
    assert!(problems.is_empty(), "layering broken:\n{}", problems.join("\n"));
}

#[test]
fn a_use_that_closes_a_cycle_is_found() {
    // A module of a low layer that names one above it, as a planted file.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("low.rs"), "// crate::high in a comment is fine\nuse crate::high::X;\n")
        .expect("write");
    std::fs::write(dir.path().join("high.rs"), "use crate::low::Y;\n").expect("write");
    let problems = layering_problems(dir.path(), &[&["low"], &["high"]]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].ends_with("low.rs:2: `low` uses `high`, which is not below it"), "{problems:?}");
}

/// A source file's module path (`methods/sweep/mod.rs` is `methods::sweep`,
/// `methods/sweep/pairs.rs` is `methods::sweep::pairs`).
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" && stem != "lib" && stem != "main" {
            parts.push(stem.to_string());
        }
    }
    parts
}

/// The file that holds the deepest module named by the start of `path`.
fn file_of(files: &std::collections::BTreeMap<Vec<String>, PathBuf>, path: &[String]) -> Option<PathBuf> {
    (1..=path.len()).rev().find_map(|n| files.get(&path[..n]).cloned())
}

/// The files `text` (of the file at module path `own`) uses, with the line
/// of each use: paths through `crate::`, `super::` and `self::`, and those
/// through a child module the file declares (`mod x;` then `x::...`).
fn uses_of(text: &str, own: &[String], is_mod_file: bool) -> Vec<(Vec<String>, usize)> {
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect() };
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let children: Vec<String> = code
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix("pub(crate) ").or_else(|| l.strip_prefix("pub ")).unwrap_or(l);
            l.strip_prefix("mod ").filter(|r| r.trim_end().ends_with(';')).map(ident)
        })
        .collect();
    // The module that `super` names from here.
    let parent: Vec<String> = if is_mod_file { own.to_vec() } else { own[..own.len().saturating_sub(1)].to_vec() };
    let parent = if is_mod_file { parent[..parent.len().saturating_sub(1)].to_vec() } else { parent };
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("//") {
            continue;
        }
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < line.len() {
            // A path starts where an identifier starts.
            let starts = (i == 0
                || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':'))
                && (bytes[i].is_ascii_alphabetic() || bytes[i] == b'_');
            if !starts {
                i += 1;
                continue;
            }
            let rest = &line[i..];
            let segs: Vec<String> = rest.split("::").map(ident).take_while(|s| !s.is_empty()).collect();
            let first_len = segs.first().map(String::len).unwrap_or(1);
            let path = match segs.first().map(String::as_str) {
                Some("crate") if segs.len() > 1 => Some(segs[1..].to_vec()),
                Some("super") if segs.len() > 1 => {
                    let mut p = parent.clone();
                    let mut k = 1;
                    while segs.get(k).map(String::as_str) == Some("super") {
                        p.pop();
                        k += 1;
                    }
                    Some(p.into_iter().chain(segs[k..].iter().cloned()).collect())
                }
                Some("self") if segs.len() > 1 => Some(own.iter().chain(segs[1..].iter()).cloned().collect()),
                Some(c) if segs.len() > 1 && children.iter().any(|x| x == c) => {
                    Some(own.iter().chain(segs.iter()).cloned().collect())
                }
                _ => None,
            };
            if let Some(p) = path {
                out.push((p, n + 1));
            }
            i += first_len.max(1);
        }
    }
    out
}

/// Cycles among a crate's files: a file that uses another, directly or
/// through others, that uses it back. A file's use of a module it lies
/// inside (its parent's shared items, `use super::*`) is no edge: a folder
/// is read as one module with its files below its `mod.rs`.
fn file_cycles(src: &Path) -> Vec<String> {
    let mut all = Vec::new();
    rust_files(src, &mut all);
    let files: std::collections::BTreeMap<Vec<String>, PathBuf> =
        all.iter().map(|f| (module_path(f.strip_prefix(src).expect("inside src")), f.clone())).collect();
    let index: std::collections::BTreeMap<PathBuf, usize> =
        files.values().enumerate().map(|(i, f)| (f.clone(), i)).collect();
    let names: Vec<&PathBuf> = files.values().collect();
    let mut edges: Vec<Vec<(usize, usize)>> = vec![Vec::new(); names.len()];
    for (own, f) in &files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with("_test.rs") || name == "tests.rs" {
            continue;
        }
        let text = std::fs::read_to_string(f).expect("source");
        let is_mod_file = name == "mod.rs";
        for (path, line) in uses_of(&text, own, is_mod_file) {
            let Some(target) = file_of(&files, &path) else { continue };
            let tmod = module_path(target.strip_prefix(src).expect("inside src"));
            // Itself, or a module it lies inside.
            if own.starts_with(&tmod) {
                continue;
            }
            let (a, b) = (index[f], index[&target]);
            if !edges[a].iter().any(|(x, _)| *x == b) {
                edges[a].push((b, line));
            }
        }
    }
    // Strongly connected components (Tarjan), each of two files or more a cycle.
    struct T<'a> {
        edges: &'a [Vec<(usize, usize)>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(t: &mut T<'_>, v: usize) {
        t.index[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on[v] = true;
        for &(w, _) in &t.edges[v] {
            match t.index[w] {
                None => {
                    visit(t, w);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(iw) if t.on[w] => t.low[v] = t.low[v].min(iw),
                _ => {}
            }
        }
        if Some(t.low[v]) == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on[w] = false;
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                t.out.push(comp);
            }
        }
    }
    let n = names.len();
    let mut t = T {
        edges: &edges,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            visit(&mut t, v);
        }
    }
    t.out
        .iter()
        .map(|comp| {
            let mut comp = comp.clone();
            comp.sort();
            let how: Vec<String> = comp
                .iter()
                .flat_map(|&a| edges[a].iter().filter(|(b, _)| comp.contains(b)).map(move |&(b, line)| (a, b, line)))
                .map(|(a, b, line)| {
                    format!(
                        "{}:{line} uses {}",
                        names[a].display(),
                        names[b].strip_prefix(src).unwrap_or(names[b]).display()
                    )
                })
                .collect();
            format!("a cycle of files: {}", how.join("; "))
        })
        .collect()
}

#[test]
fn no_two_files_use_each_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    for src in ["stdlib/src", "interpreter/src", "grammar/src", "src"] {
        problems.extend(file_cycles(&root.join(src)));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_file_level_cycle_is_found() {
    // Two files of one folder (one module, so the module layers cannot
    // see it) that use each other, one through `super::`, one through
    // `crate::`; a use of the folder's own `mod.rs` is no edge.
    let dir = tempfile::tempdir().expect("tempdir");
    let m = dir.path().join("m");
    std::fs::create_dir_all(&m).expect("mkdir");
    std::fs::write(m.join("mod.rs"), "mod a;\nmod b;\npub(crate) use a::X;\n").expect("write");
    std::fs::write(m.join("a.rs"), "use super::*;\nuse super::b::Y;\n").expect("write");
    std::fs::write(m.join("b.rs"), "// crate::m::a in a comment is fine\nfn f() { crate::m::a::g() }\n")
        .expect("write");
    std::fs::write(dir.path().join("lib.rs"), "mod m;\n").expect("write");
    let problems = file_cycles(dir.path());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("a.rs:2 uses m/b.rs") && problems[0].contains("b.rs:2 uses m/a.rs"), "{problems:?}");
    // Without the use back, no cycle.
    std::fs::write(m.join("b.rs"), "fn f() {}\n").expect("write");
    assert!(file_cycles(dir.path()).is_empty());
}
