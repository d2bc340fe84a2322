//! The one diagnostic type every stage reports through: a stable code, a
//! message, a labelled span in a named source file, a help line and notes
//! (call stack, the script line that called into rhai). Rendered with miette
//! for people and as JSON for agents.

use std::fmt;
use std::sync::Arc;

use crate::code::Code;
use assay_grammar::{Span, SyntaxError};
use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceCode};
use serde_json::json;

/// A source text with the name it is reported under.
#[derive(Debug)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
    named: NamedSource<String>,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<Self> {
        let name = name.into();
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let named = NamedSource::new(name.clone(), text.clone()).with_language("assay");
        Arc::new(SourceFile { name, text, named, line_starts })
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let col = self.text.get(start..offset).map(|s| s.chars().count()).unwrap_or(0) + 1;
        (line + 1, col)
    }

    /// Byte offset of a 1-based line and character column (rhai's positions).
    pub fn offset_of(&self, line: usize, col: usize) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let rest = &self.text[start..];
        let mut off = start;
        for (i, (bi, _)) in rest.char_indices().enumerate() {
            if i + 1 == col {
                return start + bi;
            }
            off = start + bi;
        }
        off.min(self.text.len())
    }

    /// The text a span covers (for assert records, error messages).
    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.start..span.end).unwrap_or("")
    }
}

#[derive(Debug, Clone)]
pub struct Diag {
    /// Stable, e.g. `assay::unknown-name`.
    pub code: Code,
    pub message: String,
    pub file: Option<Arc<SourceFile>>,
    pub span: Option<Span>,
    pub label: String,
    pub help: Option<String>,
    /// Secondary diagnostics: where a function was called from, etc.
    pub notes: Vec<Diag>,
    /// An error stops the script; a warning is shown and the script runs.
    pub severity: Severity,
}

/// Whether a diagnostic stops the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Severity {
    #[default]
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl Diag {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Diag {
            code,
            message: message.into(),
            file: None,
            span: None,
            label: String::new(),
            help: None,
            notes: Vec::new(),
            severity: Severity::Error,
        }
    }
    /// Makes the diagnostic a warning: shown, and the script still runs.
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }
    /// Points the diagnostic at a span of a file.
    pub fn at(mut self, file: &Arc<SourceFile>, span: Span, label: impl Into<String>) -> Self {
        self.file = Some(file.clone());
        self.span = Some(span);
        self.label = label.into();
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub fn maybe_help(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }
    pub fn note(mut self, note: Diag) -> Self {
        self.notes.push(note);
        self
    }

    pub fn from_syntax(file: &Arc<SourceFile>, e: &SyntaxError) -> Self {
        Diag::new(crate::Code::Syntax, e.message.clone()).at(file, e.span, e.label.clone()).maybe_help(e.help.clone())
    }

    /// Line and column where the diagnostic points, if it points anywhere.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        match (&self.file, self.span) {
            (Some(f), Some(s)) => Some(f.line_col(s.start)),
            _ => None,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let (line, column) = self.line_col().map(|(l, c)| (json!(l), json!(c))).unwrap_or((json!(null), json!(null)));
        json!({
            "code": self.code,
            "severity": self.severity.as_str(),
            "message": self.message,
            "file": self.file.as_ref().map(|f| f.name.clone()),
            "line": line,
            "column": column,
            "span": self.span.map(|s| json!({"start": s.start, "end": s.end})),
            "label": self.label,
            "help": self.help,
            "notes": self.notes.iter().map(|n| n.to_json()).collect::<Vec<_>>(),
        })
    }

    /// Renders for a terminal or a snapshot: no colour, fixed width.
    pub fn render_plain(&self, width: usize) -> String {
        let mut out = String::new();
        let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(width);
        if handler.render_report(&mut out, &self.terminal_safe()).is_err() {
            out = format!("error[{}]: {}\n", self.code, self.message);
        }
        out
    }

    pub fn render_color(&self, width: usize) -> String {
        let mut out = String::new();
        let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode()).with_width(width);
        if handler.render_report(&mut out, &self.terminal_safe()).is_err() {
            out = format!("error[{}]: {}\n", self.code, self.message);
        }
        out
    }
}

impl Diag {
    /// The diagnostic as it may reach a terminal: control characters (and
    /// bidirectional overrides) that a script or a folder put into its text
    /// are shown as escapes, and in the source they are replaced by a
    /// character of the same byte length, so every span still fits. The
    /// only escape sequences in a rendering are then the renderer's own.
    pub fn terminal_safe(&self) -> Diag {
        let file = self.file.as_ref().map(|f| {
            if f.text.chars().any(unsafe_for_terminal) {
                let text: String = f
                    .text
                    .chars()
                    .map(|c| match (unsafe_for_terminal(c), c.len_utf8()) {
                        (false, _) => c,
                        (true, 1) => '?',
                        (true, 2) => '\u{bf}',
                        (true, _) => '\u{fffd}',
                    })
                    .collect();
                SourceFile::new(f.name.clone(), text)
            } else {
                f.clone()
            }
        });
        Diag {
            code: self.code,
            message: escape_unsafe(&self.message),
            file,
            span: self.span,
            label: escape_unsafe(&self.label),
            help: self.help.as_deref().map(escape_unsafe),
            notes: self.notes.iter().map(Diag::terminal_safe).collect(),
            severity: self.severity,
        }
    }
}

/// A character that could move the cursor, clear the screen, hide or
/// reorder text on a terminal (newlines and tabs are layout, kept).
pub fn unsafe_for_terminal(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Text with every `unsafe_for_terminal` character written as an escape.
pub fn escape_unsafe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if unsafe_for_terminal(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diag {}

impl Diagnostic for Diag {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.file.as_ref().map(|f| &f.named as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span?;
        let label = if self.label.is_empty() { None } else { Some(self.label.clone()) };
        Some(Box::new(std::iter::once(LabeledSpan::new_primary_with_span(label, span))))
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.notes.is_empty() {
            None
        } else {
            Some(Box::new(self.notes.iter().map(|n| n as &dyn Diagnostic)))
        }
    }
}

/// "did you mean" against a list of known names.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(&str, f64)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(name, c);
        // Very short names match too much by accident; demand more of them.
        let near = if name.chars().count() < 3 {
            name.len() > 1 && name.len() == c.len() && strsim::levenshtein(name, c) == 1
        } else {
            score > 0.8 || c.contains(name) || strsim::levenshtein(name, c) <= 1
        };
        if near && best.is_none_or(|(_, s)| score > s) {
            best = Some((c, score));
        }
    }
    best.map(|(c, _)| c)
}

/// Replaces absolute paths in a message (ONNX Runtime and the file system
/// quote the paths they opened: `/home/me/.cache/assay/models/...`) by
/// `…/` and the last component, so run records carry no machine's folder
/// layout. Paths the script itself wrote are kept as written.
pub(crate) fn scrub_paths(msg: &str, script: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    let starts = |c: char| matches!(c, ' ' | '`' | '\'' | '"' | '(' | '=' | ':' | '[' | '\n' | '\t');
    let mut prev: Option<char> = None;
    while let Some(c) = rest.chars().next() {
        if c == '/' && prev.is_none_or(starts) {
            let end = rest
                .find(|ch: char| ch.is_whitespace() || matches!(ch, '`' | '\'' | '"' | ')' | ',' | ']' | ';'))
                .unwrap_or(rest.len());
            let token = &rest[..end];
            let token_trim = token.trim_end_matches(['.', ':']);
            if token_trim.matches('/').count() >= 2 && !script.contains(token_trim) {
                let last = token_trim.rsplit('/').find(|p| !p.is_empty()).unwrap_or("");
                out.push_str("…/");
                out.push_str(last);
                out.push_str(&token[token_trim.len()..]);
            } else {
                out.push_str(token);
            }
            prev = token.chars().last();
            rest = &rest[end..];
            continue;
        }
        out.push(c);
        prev = Some(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

impl Diag {
    /// This diagnostic and its notes with absolute paths scrubbed (see `scrub_paths`).
    pub fn scrubbed(mut self, script: &str) -> Self {
        self.message = scrub_paths(&self.message, script);
        self.help = self.help.map(|h| scrub_paths(&h, script));
        self.label = scrub_paths(&self.label, script);
        self.notes = self.notes.into_iter().map(|n| n.scrubbed(script)).collect();
        self
    }
}

#[cfg(test)]
mod scrub_tests {
    use super::scrub_paths;

    #[test]
    fn absolute_paths_lose_their_folders_unless_the_script_wrote_them() {
        let msg = "cannot load /root/.cache/assay/models/x.onnx: Load model from /root/.cache/assay/m.onnx failed.";
        assert_eq!(scrub_paths(msg, ""), "cannot load …/x.onnx: Load model from …/m.onnx failed.");
        assert_eq!(scrub_paths("`/etc/shadow` is outside", "read_text(\"/etc/shadow\")"), "`/etc/shadow` is outside");
        assert_eq!(scrub_paths("a/b/c and 1/2 and /x", ""), "a/b/c and 1/2 and /x");
        assert_eq!(scrub_paths("at (/a/b/c.rs)", ""), "at (…/c.rs)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A script's escape sequences, in a message or raw in its source,
    /// never reach a rendering; the renderer's own colours do, and the
    /// label still points at the same text.
    #[test]
    fn renderings_carry_no_escape_sequence_a_script_wrote() {
        let src = "let a = \"\u{1b}[31m\"\nlet b = oops\n";
        let file = SourceFile::new("x.assay", src);
        let at = src.find("oops").unwrap_or(0);
        let d = Diag::new(Code::UnknownName, "no file `\u{1b}]0;pwned\u{7}`")
            .at(&file, Span { start: at, end: at + 4 }, "here \u{1b}[8m")
            .help("try \u{202e}this");
        for r in [d.render_plain(100), d.render_color(100)] {
            for raw in ["\u{1b}]0;", "\u{7}", "\u{1b}[8m", "\u{202e}"] {
                assert!(!r.contains(raw), "{raw:?} in {r:?}");
            }
            // The source's raw escape is shown as `?` (same length: the label still fits).
            assert!(r.contains("\"?[31m\"") && r.contains("oops") && r.contains("\\u{1b}]0;pwned"), "{r}");
        }
        assert!(!d.render_plain(100).contains('\u{1b}'));
        // The colour rendering still has colours (the renderer's own).
        assert!(d.render_color(100).contains('\u{1b}'));
    }
}
