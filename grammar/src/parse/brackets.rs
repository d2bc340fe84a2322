//! Brackets, strings and interpolations walked as the grammar sees them:
//! nesting limits and unbalanced brackets, found before pest is asked.

use super::*;
use crate::error::SyntaxError;

/// What the bracket scanner reports.
pub(super) enum Bracket {
    /// An opening `(`, `[`, `{` (also an interpolation) or `"`, and the depth it makes.
    Open { depth: usize, at: usize },
    /// A closer and the opener it closes, if any: (opening byte, offset).
    Close { byte: u8, at: usize, opener: Option<(u8, usize)> },
    /// A backtick string that never closes.
    UnclosedRaw { at: usize, close: &'static str },
    /// The end of the text, with the innermost opener still open.
    End { open: Option<(u8, usize)> },
}

/// Walks the text as the grammar sees it — comments and raw strings
/// skipped, escapes and `{{` `}}` inside strings, `{` in a string opening
/// an interpolation — and reports brackets to `f`, which may stop the walk
/// with an error.
pub(super) fn scan(source: &str, mut f: impl FnMut(Bracket) -> Option<SyntaxError>) -> Option<SyntaxError> {
    let bytes = source.as_bytes();
    // (opening byte, offset); b'"' marks a string.
    let mut stack: Vec<(u8, usize)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if matches!(stack.last(), Some((b'"', _))) {
            match c {
                b'\\' => i += 1,
                b'"' => {
                    let opener = stack.pop();
                    if let Some(e) = f(Bracket::Close { byte: c, at: i, opener }) {
                        return Some(e);
                    }
                }
                b'{' if bytes.get(i + 1) == Some(&b'{') => i += 1,
                b'}' if bytes.get(i + 1) == Some(&b'}') => i += 1,
                b'{' => {
                    stack.push((c, i));
                    if let Some(e) = f(Bracket::Open { depth: stack.len(), at: i }) {
                        return Some(e);
                    }
                }
                _ => {}
            }
        } else {
            match c {
                b'#' => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                b'`' => {
                    let close = if source[i..].starts_with("```") { "```" } else { "`" };
                    let from = i + close.len();
                    match source.get(from..).and_then(|rest| rest.find(close)) {
                        Some(off) => i = from + off + close.len() - 1,
                        None => return f(Bracket::UnclosedRaw { at: i, close }),
                    }
                }
                b'"' | b'(' | b'[' | b'{' => {
                    stack.push((c, i));
                    if let Some(e) = f(Bracket::Open { depth: stack.len(), at: i }) {
                        return Some(e);
                    }
                }
                b')' | b']' | b'}' => {
                    let opener = stack.pop();
                    if let Some(e) = f(Bracket::Close { byte: c, at: i, opener }) {
                        return Some(e);
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    f(Bracket::End { open: stack.last().copied() })
}

/// Rejects pathological nesting before pest recurses into it.
pub(super) fn check_nesting(source: &str) -> Result<(), SyntaxError> {
    let err = scan(source, |b| match b {
        Bracket::Open { depth, at } if depth > MAX_NESTING => Some(
            SyntaxError::new(
                "nested too deeply",
                Span::new(at, at + 1),
                format!("more than {MAX_NESTING} levels of brackets, blocks or strings"),
            )
            .with_help("name intermediate values with `let` to flatten the expression"),
        ),
        _ => None,
    });
    err.map_or(Ok(()), Err)
}

pub(super) fn closer_of(open: u8) -> char {
    match open {
        b'(' => ')',
        b'[' => ']',
        _ => '}',
    }
}

/// After a parse failure: an unclosed or mismatched bracket or string is
/// the likeliest cause, and its opening position is the useful one to show.
pub(super) fn unbalanced(source: &str) -> Option<SyntaxError> {
    let line_of = |off: usize| source[..off].matches('\n').count() + 1;
    scan(source, |b| match b {
        Bracket::Open { .. } => None,
        Bracket::UnclosedRaw { at, close } => Some(
            SyntaxError::new("unterminated raw string", Span::new(at, at + close.len()), "this string is never closed")
                .with_help(format!("close it with {close}")),
        ),
        Bracket::Close { byte: b'"', .. } => None,
        Bracket::Close { byte, at, opener: None } => Some(
            SyntaxError::new(format!("unmatched `{}`", byte as char), Span::new(at, at + 1), "nothing to close here")
                .with_help("remove it, or add the opening bracket it belongs to"),
        ),
        Bracket::Close { byte, at, opener: Some((open, open_at)) } => {
            let close = closer_of(open);
            (close != byte as char).then(|| {
                SyntaxError::new(
                    format!(
                        "`{}` does not close the `{}` opened on line {}",
                        byte as char,
                        open as char,
                        line_of(open_at)
                    ),
                    Span::new(at, at + 1),
                    format!("expected `{close}`"),
                )
                .with_help(format!("close the `{}` with `{close}` first", open as char))
            })
        }
        Bracket::End { open: None } => None,
        Bracket::End { open: Some((b'"', at)) } => Some(
            SyntaxError::new("unterminated string", Span::new(at, at + 1), "this string is never closed")
                .with_help("close it with `\"`; for text with quotes or braces use `backticks`"),
        ),
        Bracket::End { open: Some((open, at)) } => {
            let close = closer_of(open);
            Some(
                SyntaxError::new(
                    format!("`{}` is never closed", open as char),
                    Span::new(at, at + 1),
                    format!("opened here, expected a `{close}` later"),
                )
                .with_help(format!("add the missing `{close}`, or check for a `,` between items")),
            )
        }
    })
}
