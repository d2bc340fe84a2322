//! `assay fmt`: one canonical layout for a script, as gofmt gives Go's.
//!
//! The formatter changes only the whitespace between tokens, never the
//! tokens themselves or the lines they are on: line breaks are kept (so
//! every line number a record or a diagnostic names stays the same) and
//! only the spaces within a line and each line's indentation are decided
//! here. Since Assay's grammar treats every run of whitespace alike (it
//! only separates tokens), the same tokens give the same syntax tree; a
//! space is kept wherever two tokens written together would read as one
//! (`- -x`, `a and b`). Strings, raw strings and comments are kept as
//! written. A script that does not parse is not formatted.
//!
//! The layout: two spaces of indentation per open bracket (counted once per
//! line that opened any), closing brackets that start a line at their
//! opener's indentation, a continuation line after an operator indented
//! once more; one space around binary operators, `=`, `=>` and after `,`
//! and `:`; none inside parentheses and brackets, before `,` `:` `)` `]`,
//! around `.` and `..`, or between a name and its call or index; braces
//! keep whether they were written tight (`{a: 1}`) or spaced
//! (`{ return x }`); one space before a trailing comment; no trailing
//! whitespace; one newline at the end.

use crate::parse::parse;
use crate::SyntaxError;

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Word,
    Number,
    Str,
    Comment,
    Punct,
    Newline,
}

#[derive(Debug, Clone, PartialEq)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
    /// Whitespace (not a newline) came right before it.
    spaced: bool,
}

const KEYWORDS: &[&str] = &[
    "let", "fn", "if", "else", "for", "in", "return", "break", "continue", "seed", "use", "as", "show", "record",
    "assert", "true", "false", "none", "and", "or", "not",
];

const PUNCT2: &[&str] = &["==", "!=", "<=", ">=", "&&", "||", "**", "..", "=>", "+=", "-=", "*=", "/="];

/// Binary operators (and assignments): one space on each side.
const BINARY: &[&str] =
    &["==", "!=", "<=", ">=", "&&", "||", "**", "=>", "+=", "-=", "*=", "/=", "+", "-", "*", "/", "%", "<", ">", "="];

/// The end of a string that starts at `i` (just past its closing quote):
/// escapes, `{{`/`}}`, and interpolations holding any expression (strings
/// and records included).
fn string_end(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            b'{' if b.get(i + 1) == Some(&b'{') => i += 2,
            b'{' => i = interp_end(b, i + 1),
            _ => i += 1,
        }
    }
    b.len()
}

/// The end of an interpolation whose `{` is just before `i`.
fn interp_end(b: &[u8], mut i: usize) -> usize {
    let mut depth = 1;
    while i < b.len() {
        match b[i] {
            b'"' => i = string_end(b, i),
            b'`' => i = raw_end(b, i),
            b'{' => {
                depth += 1;
                i += 1;
            }
            b'}' => {
                depth -= 1;
                i += 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    b.len()
}

/// The end of a raw string (`` `...` `` or ```` ```...``` ````) at `i`.
fn raw_end(b: &[u8], i: usize) -> usize {
    if b[i..].starts_with(b"```") {
        let body = i + 3;
        return b[body..].windows(3).position(|w| w == b"```").map_or(b.len(), |p| body + p + 3);
    }
    b[i + 1..].iter().position(|c| *c == b'`').map_or(b.len(), |p| i + 1 + p + 1)
}

fn tokens(src: &str) -> Vec<Token<'_>> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut spaced = false;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let kind = match c {
            b' ' | b'\t' | b'\r' => {
                i += 1;
                spaced = true;
                continue;
            }
            b'\n' => {
                i += 1;
                Kind::Newline
            }
            b'#' => {
                i = b[i..].iter().position(|x| *x == b'\n').map_or(b.len(), |p| i + p);
                Kind::Comment
            }
            b'"' => {
                i = string_end(b, i);
                Kind::Str
            }
            b'`' => {
                i = raw_end(b, i);
                Kind::Str
            }
            b'0'..=b'9' => {
                i = number_end(b, i);
                Kind::Number
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                Kind::Word
            }
            _ => {
                let two = src.get(i..i + 2).filter(|t| PUNCT2.contains(t));
                // One character, whatever its width in bytes.
                i += two.map_or_else(|| src[i..].chars().next().map_or(1, char::len_utf8), str::len);
                Kind::Punct
            }
        };
        out.push(Token { kind, text: &src[start..i.min(b.len())], spaced });
        spaced = false;
    }
    out
}

fn number_end(b: &[u8], mut i: usize) -> usize {
    let digits = |b: &[u8], mut i: usize| {
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
        i
    };
    i = digits(b, i);
    if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i = digits(b, i + 1);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            i = digits(b, j);
        }
    }
    i
}

fn is_keyword(t: &Token) -> bool {
    t.kind == Kind::Word && KEYWORDS.contains(&t.text)
}

/// Whether `t` ends an operand: a name, a value, or a closing bracket.
fn ends_operand(t: &Token) -> bool {
    match t.kind {
        Kind::Word => !is_keyword(t) || matches!(t.text, "true" | "false" | "none"),
        Kind::Number | Kind::Str => true,
        Kind::Punct => matches!(t.text, ")" | "]" | "}"),
        _ => false,
    }
}

/// Whether `t` at this place is a prefix operator (`-x`, `!x`).
fn is_prefix(t: &Token, prev: Option<&Token>) -> bool {
    t.kind == Kind::Punct && (t.text == "!" || t.text == "-" && !prev.is_some_and(ends_operand))
}

/// The space between two tokens on one line: "" or " ".
fn space(a: &Token, a_prev: Option<&Token>, b: &Token) -> &'static str {
    if b.kind == Kind::Comment {
        return " ";
    }
    let (at, bt) = (a.text, b.text);
    if b.kind == Kind::Punct && matches!(bt, ")" | "]") {
        return "";
    }
    // A name written against a string (`f"..."`, Python's f-string) stays
    // so: the checker's help for that habit reads it.
    if a.kind == Kind::Word && b.kind == Kind::Str && !b.spaced {
        return "";
    }
    if a.kind == Kind::Punct {
        if matches!(at, "(" | "[" | "." | "..") || is_prefix(a, a_prev) {
            return "";
        }
        if at == "{" {
            return if b.spaced && bt != "}" { " " } else { "" };
        }
        if matches!(at, "," | ":" | ";") || BINARY.contains(&at) {
            return " ";
        }
    }
    if b.kind == Kind::Punct {
        match bt {
            "," | ":" | ";" | ")" | "]" | "." | ".." => return "",
            "}" => return if b.spaced && at != "{" { " " } else { "" },
            "(" | "[" => return if ends_operand(a) { "" } else { " " },
            _ => return " ",
        }
    }
    " "
}

/// Whether `a` then `b` with nothing between still reads as those two
/// tokens.
fn can_touch(a: &Token, b: &Token) -> bool {
    let joined = format!("{}{}", a.text, b.text);
    let again = tokens(&joined);
    again.len() == 2 && again[0].text == a.text && again[1].text == b.text
}

fn is_opener(t: &Token) -> bool {
    t.kind == Kind::Punct && matches!(t.text, "(" | "[" | "{")
}

fn is_closer(t: &Token) -> bool {
    t.kind == Kind::Punct && matches!(t.text, ")" | "]" | "}")
}

/// Whether a line ending in `t` continues on the next (an operator waits
/// for its right side).
fn continues(t: &Token, prev: Option<&Token>) -> bool {
    (t.kind == Kind::Punct && BINARY.contains(&t.text) && !is_prefix(t, prev))
        || (t.kind == Kind::Word && matches!(t.text, "and" | "or" | "in" | "not"))
}

/// The script in Assay's canonical layout, or the syntax error that keeps
/// it from being formatted.
pub fn format(src: &str) -> Result<String, SyntaxError> {
    parse(src)?;
    Ok(layout(src))
}

/// What a lexeme is, as editors colour it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lexeme {
    Keyword,
    /// A name; `call` when a `(` follows it.
    Name {
        call: bool,
    },
    Number,
    /// A string or raw string, interpolations included.
    String,
    Comment,
    Punct,
}

/// The script's lexemes and their byte ranges, whitespace left out: what
/// editor grammars are checked against.
pub fn lex(src: &str) -> Vec<(Lexeme, std::ops::Range<usize>)> {
    let toks: Vec<Token> = tokens(src).into_iter().filter(|t| t.kind != Kind::Newline).collect();
    let base = src.as_ptr() as usize;
    toks.iter()
        .enumerate()
        .map(|(i, t)| {
            let start = t.text.as_ptr() as usize - base;
            let next_code = toks[i + 1..].iter().find(|n| n.kind != Kind::Comment);
            let kind = match t.kind {
                Kind::Word if is_keyword(t) => Lexeme::Keyword,
                Kind::Word => Lexeme::Name { call: next_code.is_some_and(|n| n.text == "(") },
                Kind::Number => Lexeme::Number,
                Kind::Str => Lexeme::String,
                Kind::Comment => Lexeme::Comment,
                Kind::Punct | Kind::Newline => Lexeme::Punct,
            };
            (kind, start..start + t.text.len())
        })
        .collect()
}

/// An expression's text in the canonical spacing, on one line (line
/// breaks become spaces and comments are left out): how a run record
/// quotes an assertion, so that reformatting a script never changes its
/// results.
pub fn format_expr(src: &str) -> String {
    let toks: Vec<Token> =
        tokens(src).into_iter().filter(|t| !matches!(t.kind, Kind::Newline | Kind::Comment)).collect();
    let mut out = String::with_capacity(src.len());
    for (i, t) in toks.iter().enumerate() {
        if i > 0 {
            let gap = space(&toks[i - 1], i.checked_sub(2).map(|j| &toks[j]), t);
            out.push_str(if gap.is_empty() && !can_touch(&toks[i - 1], t) { " " } else { gap });
        }
        out.push_str(t.text);
    }
    out
}

fn layout(src: &str) -> String {
    let toks = tokens(src);
    // The lines: tokens between newlines (a raw string may hold newlines
    // of its own and stays one token).
    let mut lines: Vec<Vec<&Token>> = vec![Vec::new()];
    for t in &toks {
        if t.kind == Kind::Newline {
            lines.push(Vec::new());
        } else if let Some(l) = lines.last_mut() {
            l.push(t);
        }
    }
    let mut out = String::with_capacity(src.len() + 64);
    // Open brackets: the line each was opened on.
    let mut open: Vec<usize> = Vec::new();
    let mut level: Vec<usize> = Vec::with_capacity(lines.len());
    let mut prev_code: Option<&Token> = None;
    let mut prev_prev: Option<&Token> = None;
    for (n, line) in lines.iter().enumerate() {
        // The indentation: the line that opened the innermost open bracket,
        // plus one; a line that starts by closing brackets stands where the
        // outermost of them was opened.
        let mut lv = open.last().map_or(0, |&k| level[k] + 1);
        let mut closing = 0;
        for t in line.iter().take_while(|t| is_closer(t)) {
            if let Some(k) = open.get(open.len().saturating_sub(1 + closing)) {
                lv = level[*k];
            }
            closing += 1;
            let _ = t;
        }
        let starts_code = line.first().is_some_and(|t| t.kind != Kind::Comment);
        if closing == 0 && starts_code && prev_code.is_some_and(|p| continues(p, prev_prev)) {
            lv += 1;
        }
        level.push(lv);
        if !line.is_empty() {
            out.push_str(&"  ".repeat(lv));
        }
        let mut last: Option<&Token> = None;
        let mut before_last: Option<&Token> = prev_code;
        for t in line {
            if let Some(a) = last {
                let gap = space(a, before_last, t);
                out.push_str(if gap.is_empty() && !can_touch(a, t) { " " } else { gap });
                before_last = Some(a);
            }
            out.push_str(t.text.trim_end_matches([' ', '\t', '\r']));
            last = Some(t);
            if t.kind == Kind::Comment {
                continue;
            }
            prev_prev = prev_code;
            prev_code = Some(t);
            if is_opener(t) {
                open.push(n);
            } else if is_closer(t) {
                open.pop();
            }
        }
        out.push('\n');
    }
    let trimmed = out.trim_end_matches('\n').len();
    out.truncate(trimmed);
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> String {
        format(s).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    #[test]
    fn spaces_are_canonical() {
        assert_eq!(f("let x=f( a,b )[0]+-y*2**3\n"), "let x = f(a, b)[0] + -y * 2 ** 3\n");
        assert_eq!(f("let r={a:1,b:[1 ,2]}\nrecord \"r\",r.a\n"), "let r = {a: 1, b: [1, 2]}\nrecord \"r\", r.a\n");
        assert_eq!(f("let xs=map(0..3,i=>i*2)\n"), "let xs = map(0..3, i => i * 2)\n");
        assert_eq!(f("record \"t\", [1, 2,]\n"), "record \"t\", [1, 2,]\n");
        assert_eq!(f("if not (x in xs){ show \"a\",x }\n"), "if not (x in xs) { show \"a\", x }\n");
        assert_eq!(f("let a = b - - c\nlet d = -1e-5\n"), "let a = b - -c\nlet d = -1e-5\n");
        assert_eq!(f("let s = \"a {f(\"b\", {c: 1})} d\"   # note  \n"), "let s = \"a {f(\"b\", {c: 1})} d\" # note\n");
    }

    #[test]
    fn indentation_follows_brackets_and_keeps_every_line() {
        let src = "fn g(x) {\nif x > 1 {\n    return [1,\n 2]\n}\n\n\n  return x\n}\nlet y = g(1) +\n2\n\n\n";
        let want = "fn g(x) {\n  if x > 1 {\n    return [1,\n      2]\n  }\n\n\n  return x\n}\nlet y = g(1) +\n  2\n";
        assert_eq!(f(src), want);
        assert_eq!(f(&f(src)), want, "idempotent");
        let nested = "let z = map(xs, l => {\nlet b = l\nreturn b\n})\n";
        assert_eq!(f(nested), "let z = map(xs, l => {\n  let b = l\n  return b\n})\n");
    }

    #[test]
    fn raw_strings_and_comments_are_kept_as_written() {
        let src = "# a   comment\nlet s = `<svg>\n   <rect/>  \n</svg>`\nlet t = ```a `b` c```\n";
        assert_eq!(f(src), src);
    }

    #[test]
    fn an_expression_is_quoted_on_one_line_in_the_canonical_spacing() {
        assert_eq!(format_expr("r.total==30"), "r.total == 30");
        assert_eq!(format_expr("a and  # why\n   b"), "a and b");
        assert_eq!(format_expr("f(x)[0]>-1"), "f(x)[0] > -1");
    }

    #[test]
    fn a_script_that_does_not_parse_is_not_formatted() {
        assert!(format("let = 3\n").is_err());
    }
}
