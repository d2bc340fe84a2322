//! A text corpus for language-model units: the English fortunes of the
//! Unix `fortune` program (Debian's `fortunes` package, pinned by sha256):
//! about 3,300 short passages (quotations, jokes, definitions,
//! verse) in 20 sections, a few MB, fetched once and cached as one file of
//! passages. `exemplars(unit, corpus(), k)` finds a neuron's or head's
//! top-activating contexts in it, as MAIA takes a vision unit's exemplars
//! from a data set.

#![allow(
    clippy::disallowed_methods,
    reason = "provisioning: fetches, checks and reads what goes into Assay's cache, before any script runs"
)]

use std::path::PathBuf;
use std::process::Command;

use assay_interpreter::{ToolError, Type, Value};

use crate::core::declare::{tool, ToolCtx, ToolResult};
use crate::fetch::{self, Pinned};

const FORTUNES: Pinned = Pinned {
    name: "fortunes",
    version: "1:1.99.1-7.3",
    file: "fortunes_1%3a1.99.1-7.3_all.deb",
    sha256: "41d0551dc0ff52f875a2ecef7c39da2f672ab468c37e170119f7e0245a9d63c5",
};

/// The sections kept (ASCII art, and sections of jokes about groups of
/// people, are left out).
pub(crate) const SECTIONS: [&str; 20] = [
    "computers",
    "cookie",
    "definitions",
    "education",
    "food",
    "humorists",
    "kids",
    "law",
    "linux",
    "love",
    "medicine",
    "miscellaneous",
    "people",
    "pets",
    "platitudes",
    "science",
    "songs-poems",
    "sports",
    "wisdom",
    "work",
];

/// Passages longer than this are left out (a context, not an essay).
const MAX_PASSAGE_CHARS: usize = 400;

/// The cached passages: one line per passage, `section<TAB>text` with
/// newlines inside a passage written as `\n`.
fn cached_file() -> PathBuf {
    fetch::cache_dir().join("corpus").join("fortunes-1.99.1-7.3.tsv")
}

/// Fetches and unpacks the package once; the passages file's path.
pub(crate) fn provision() -> Result<PathBuf, String> {
    let out = cached_file();
    if out.is_file() {
        return Ok(out);
    }
    let deb = fetch::debian(&FORTUNES)?;
    let work = fetch::cache_dir().join(format!(".fortunes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let st = Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&work).status().map_err(|e| format!("dpkg-deb: {e}"))?;
    if !st.success() {
        let _ = std::fs::remove_dir_all(&work);
        return Err("dpkg-deb could not unpack the fortunes package".into());
    }
    let mut text = String::new();
    for section in SECTIONS {
        let path = work.join("usr/share/games/fortunes").join(section);
        let raw = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let raw = String::from_utf8_lossy(&raw);
        for passage in raw.split("\n%\n") {
            let p = passage.trim_matches(|c: char| c == '\n' || c == '%').trim_end();
            if p.trim().is_empty() || p.chars().count() > MAX_PASSAGE_CHARS || p.contains('\t') {
                continue;
            }
            text.push_str(section);
            text.push('\t');
            text.push_str(&p.replace('\\', "\\\\").replace('\n', "\\n"));
            text.push('\n');
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    fetch::write_atomic(&out, text.as_bytes())?;
    Ok(out)
}

/// The passages: (section, text), in file order.
fn passages(bytes: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(s, t)| {
            let mut out = String::with_capacity(t.len());
            let mut chars = t.chars();
            while let Some(c) = chars.next() {
                match (c, c == '\\') {
                    (_, true) => match chars.next() {
                        Some('n') => out.push('\n'),
                        Some(o) => out.push(o),
                        None => {}
                    },
                    (c, false) => out.push(c),
                }
            }
            (s.to_string(), out)
        })
        .collect()
}

tool! {
    /// Short English texts for language-model units. They are the fortunes of the Unix `fortune`
    /// program (quotations, jokes, definitions, verse; Debian's `fortunes` 1.99.1, pinned), about 3,300 passages of at most 400 characters in 20 sections, in a
    /// fixed order. `section` keeps one section (e.g. "science", "law", "songs-poems"). Use it with
    /// `exemplars(unit, sample(corpus(), 300), k: 10)`; the file is fetched once and digested into the
    /// run manifest.
    ///
    /// ```assay
    /// let texts = corpus()
    /// assert len(texts) > 3000 and len(texts[0]) > 0
    /// assert len(corpus(section: "science")) < len(texts)
    /// ```
    corpus in Text -> Type::list(Type::Str);
    {
        /// one section only (none: all of them)
        section: Option<String> = None,
    }
    corpus
}

fn corpus(p: corpus::Params, ctx: &mut dyn ToolCtx) -> ToolResult {
    let path = provision().map_err(|e| {
        ToolError::new(format!("the corpus is not available: {e}"))
            .help("it is fetched with apt-get from Debian's `fortunes` package the first time a script names corpus()")
    })?;
    let bytes = fetch::read_cached(&path).map_err(ToolError::new)?;
    let digest = fetch::sha256_file(&path).map_err(ToolError::new)?;
    ctx.note_input(&path, &digest);
    if let Some(s) = &*p.section {
        if !SECTIONS.contains(&s.as_str()) {
            let near = assay_interpreter::closest(s, SECTIONS.iter().copied());
            return Err(p.section.error(format!("no section `{s}`")).help(match near {
                Some(n) => format!("did you mean `{n}`? the sections are {}", SECTIONS.join(", ")),
                None => format!("the sections are {}", SECTIONS.join(", ")),
            }));
        }
    }
    let texts = passages(&bytes)
        .into_iter()
        .filter(|(s, _)| p.section.as_ref().is_none_or(|want| want == s))
        .map(|(_, t)| Value::str(t))
        .collect();
    Ok(Value::list(texts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passages_read_back_with_their_newlines_and_backslashes() {
        let file = b"science\tE = mc^2\\nEinstein\nlaw\ta \\\\ b\nbroken line without a tab\n";
        assert_eq!(
            passages(file),
            vec![("science".into(), "E = mc^2\nEinstein".into()), ("law".into(), "a \\ b".into())]
        );
    }
}
