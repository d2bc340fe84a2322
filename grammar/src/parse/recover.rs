//! Every syntax error at once: after an error the statement holding it is
//! blanked and the rest parsed again.

use super::*;
use crate::error::SyntaxError;

/// The most syntax errors one parse reports.
pub(super) const MAX_SYNTAX_ERRORS: usize = 20;

/// Parses a whole script and, if it has syntax errors, finds as many of
/// them as it can (each in its own top-level statement): after an error,
/// the statement holding it is blanked (the same bytes, so later spans are
/// unchanged) and the rest parsed again. A later error is kept only if it
/// lies past what was blanked, so one mistake is never reported twice.
pub fn parse_all(source: &str) -> Result<Program, Vec<SyntaxError>> {
    let first = match parse(source) {
        Ok(p) => return Ok(p),
        Err(e) => e,
    };
    if source.len() > MAX_SOURCE_BYTES {
        return Err(vec![first]);
    }
    let mut text = source.to_string();
    let mut errors = vec![first];
    while errors.len() < MAX_SYNTAX_ERRORS {
        let at = errors.last().map_or(0, |e| e.span.start);
        let Some((start, end)) = statement_around(&text, at) else { break };
        text = blank(&text, start, end);
        match parse(&text) {
            Ok(_) => break,
            Err(e) if e.span.start >= end && e.span.start < text.len() => errors.push(e),
            Err(_) => break,
        }
    }
    Err(errors)
}

/// `text` with `start..end` made blanks (newlines kept, every other
/// character replaced by as many spaces as its bytes).
pub(super) fn blank(text: &str, start: usize, end: usize) -> String {
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..start]);
    for c in text[start..end].chars() {
        if c == '\n' {
            out.push('\n');
        } else {
            out.extend(std::iter::repeat_n(' ', c.len_utf8()));
        }
    }
    out.push_str(&text[end..]);
    out
}

/// The top-level statement around byte `at`: from the start of the line
/// that begins it (outside every bracket) to the start of the next such
/// line with text on it. An error at the very start of a statement is the
/// previous statement's (it ended too early), so that one is taken.
pub(super) fn statement_around(text: &str, at: usize) -> Option<(usize, usize)> {
    let mut events: Vec<(usize, i32)> = Vec::new();
    let mut raw_open = false;
    scan(text, |b| {
        match b {
            Bracket::Open { at, .. } => events.push((at, 1)),
            Bracket::Close { at, .. } => events.push((at, -1)),
            Bracket::UnclosedRaw { .. } => raw_open = true,
            Bracket::End { .. } => {}
        }
        None
    });
    if raw_open {
        return None;
    }
    // Line starts outside every bracket, holding something besides blanks and comments.
    let mut starts = Vec::new();
    let mut depth = 0i32;
    let mut ev = events.iter().peekable();
    let mut line_start = 0usize;
    for line in text.split_inclusive('\n') {
        while let Some((pos, d)) = ev.peek() {
            if *pos < line_start {
                depth += d;
                ev.next();
            } else {
                break;
            }
        }
        let body = line.trim();
        if depth == 0 && !body.is_empty() && !body.starts_with('#') {
            starts.push(line_start + (line.len() - line.trim_start().len()));
        }
        line_start += line.len();
    }
    let at = at.min(text.len());
    let i = starts.iter().rposition(|s| *s <= at)?;
    let i = if starts[i] == at && i > 0 { i - 1 } else { i };
    let end = starts.get(i + 1).copied().unwrap_or(text.len());
    Some((starts[i], end))
}
