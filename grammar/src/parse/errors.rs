//! Syntax errors in words: what was expected, what was found, and a help
//! line for the mistakes people and models make.

use super::*;
use crate::error::SyntaxError;

/// Words for the grammar's rules, as a person would name them.
pub(super) fn rule_words(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::expr | Rule::operand | Rule::paren | Rule::lambda | Rule::lambda_params => "an expression",
        Rule::number => "a number",
        Rule::string | Rule::raw_string => "a string",
        Rule::ident | Rule::name => "a name",
        Rule::list => "a list",
        Rule::record_lit => "a record",
        Rule::block => "a block `{ ... }`",
        Rule::call => "`(`",
        Rule::index => "`[`",
        Rule::field => "`.`",
        Rule::arg | Rule::named_arg => "an argument",
        Rule::params | Rule::param => "a parameter name",
        Rule::assign_op => "`=`",
        Rule::or
        | Rule::and
        | Rule::eq
        | Rule::ne
        | Rule::lt
        | Rule::le
        | Rule::gt
        | Rule::ge
        | Rule::in_op
        | Rule::range
        | Rule::add
        | Rule::sub
        | Rule::mul
        | Rule::div
        | Rule::rem
        | Rule::pow => "an operator",
        Rule::EOI => "end of input",
        Rule::kw_else => "`else`",
        Rule::kw_in => "`in`",
        Rule::kw_as => "`as`",
        Rule::seed_stmt
        | Rule::use_stmt
        | Rule::let_stmt
        | Rule::fn_stmt
        | Rule::if_stmt
        | Rule::for_stmt
        | Rule::return_stmt
        | Rule::show_stmt
        | Rule::record_stmt
        | Rule::assert_stmt
        | Rule::assign_stmt
        | Rule::expr_stmt
        | Rule::break_stmt
        | Rule::continue_stmt => "a statement",
        Rule::interp => "an interpolation `{expr}`",
        Rule::str_text | Rule::escape | Rule::lbrace_lit | Rule::rbrace_lit => "string text",
        Rule::kw_let
        | Rule::kw_fn
        | Rule::kw_if
        | Rule::kw_for
        | Rule::kw_return
        | Rule::kw_seed
        | Rule::kw_use
        | Rule::kw_show
        | Rule::kw_record
        | Rule::kw_assert
        | Rule::kw_break
        | Rule::kw_continue => "a statement",
        Rule::kw_true | Rule::kw_false | Rule::kw_none => "an expression",
        _ => return None,
    })
}

pub(super) fn convert_error(source: &str, e: pest::error::Error<Rule>) -> SyntaxError {
    let pos = match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let mut expected: Vec<String> = Vec::new();
    let mut push = |w: String| {
        if !expected.contains(&w) {
            expected.push(w);
        }
    };
    if let pest::error::ErrorVariant::ParsingError { positives, .. } = &e.variant {
        for r in positives {
            if let Some(w) = rule_words(*r) {
                push(w.to_string());
            }
        }
    }
    if let Some(attempts) = e.parse_attempts() {
        for t in attempts.expected_tokens() {
            let token = t.to_string();
            if token != "BUILTIN_RULE"
                && !token.contains("..")
                && !token.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}').is_empty()
            {
                let w = match token.as_str() {
                    "\"" => "a string".to_string(),
                    "`" | "```" => "a string".to_string(),
                    "#" | "_" => continue,
                    t if t.chars().all(|c| c.is_ascii_alphabetic()) => format!("`{t}`"),
                    t => format!("`{t}`"),
                };
                push(w);
            }
        }
        for cs in attempts.call_stacks() {
            let rule = cs.deepest.get_rule().copied().or(cs.parent);
            if let Some(w) = rule.and_then(rule_words) {
                push(w.to_string());
            }
        }
    }
    // Closing brackets and commas first, operators last: what is missing is
    // more often a bracket or a value than an operator.
    expected.sort_by_key(|w| match w.as_str() {
        "`)`" | "`]`" | "`}`" | "`,`" => 0,
        "an operator" => 3,
        w if w.starts_with('`') => 2,
        _ => 1,
    });
    expected.truncate(7);

    let found = found_token(source, pos);
    let span = Span::new(pos, (pos + found.len()).min(source.len()));
    let found_words = if found.is_empty() { "end of input".to_string() } else { format!("`{found}`") };
    let expected_words = join_or(&expected);
    let message = if expected_words.is_empty() {
        format!("unexpected {found_words}")
    } else {
        format!("expected {expected_words}, found {found_words}")
    };
    let help = help_for(source, pos, &found, &expected);
    SyntaxError::new(message, span, format!("found {found_words}")).with_help(help)
}

pub(super) fn found_token(source: &str, pos: usize) -> String {
    let rest = source.get(pos..).unwrap_or("");
    let mut chars = rest.chars();
    match chars.next() {
        None => String::new(),
        Some(c) if c.is_alphanumeric() || c == '_' => {
            rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').take(40).collect()
        }
        Some(c) => c.to_string(),
    }
}

pub(super) fn join_or(items: &[String]) -> String {
    match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        n => format!("{} or {}", items[..n - 1].join(", "), items[n - 1]),
    }
}

/// Where the innermost interpolation open at `pos` starts: the `{` of a
/// `"...{expr}..."` string whose expression has not closed by `pos`.
pub(super) fn open_interpolation(source: &str, pos: usize) -> Option<usize> {
    #[derive(Clone, Copy)]
    enum State {
        Code,
        Str,
        Interp { depth: usize, start: usize },
    }
    let b = source.as_bytes();
    let end = pos.min(b.len());
    let mut stack = vec![State::Code];
    let mut i = 0;
    while i < end {
        let c = b[i];
        match stack.last().copied().unwrap_or(State::Code) {
            State::Str => match c {
                b'\\' => i += 1,
                b'"' => {
                    stack.pop();
                }
                b'{' if b.get(i + 1) == Some(&b'{') => i += 1,
                b'{' => stack.push(State::Interp { depth: 0, start: i }),
                _ => {}
            },
            state => match c {
                b'"' => stack.push(State::Str),
                b'#' => {
                    while i < end && b[i] != b'\n' {
                        i += 1;
                    }
                }
                b'`' => {
                    let fence = if source[i..].starts_with("```") { "```" } else { "`" };
                    let body = i + fence.len();
                    i = source.get(body..).and_then(|r| r.find(fence)).map_or(b.len(), |k| body + k + fence.len() - 1);
                }
                b'{' => {
                    if let State::Interp { depth, start } = state {
                        stack.pop();
                        stack.push(State::Interp { depth: depth + 1, start });
                    }
                }
                b'}' => {
                    if let State::Interp { depth, start } = state {
                        stack.pop();
                        if depth > 0 {
                            stack.push(State::Interp { depth: depth - 1, start });
                        }
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    stack.iter().rev().find_map(|s| match s {
        State::Interp { start, .. } => Some(*start),
        _ => None,
    })
}

pub(super) fn help_for(source: &str, pos: usize, found: &str, expected: &[String]) -> String {
    if let Some(at) = open_interpolation(source, pos) {
        let line = source[..at].matches('\n').count() + 1;
        let column = source[..at].rfind('\n').map_or(at, |n| at - n - 1) + 1;
        return format!(
            "the `{{` at line {line}, column {column} starts an interpolation `{{expr}}` inside the string; if it is meant as a literal brace, write `{{{{` (and `}}}}`), or use a backtick string `...`, which never interpolates"
        );
    }
    let before = source.get(..pos).unwrap_or("").trim_end();
    // Keywords of other languages near the error explain most failures.
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let context = source.get(line_start..(pos + found.len()).min(source.len())).unwrap_or("");
    if let Some(help) = habit(source, pos, found, before, context) {
        return help;
    }
    for word in context.split(|c: char| !c.is_alphanumeric() && c != '_') {
        match word {
            "elif" => return "Assay writes `else if`, not `elif`".into(),
            "while" => return "Assay has no `while`; loop over a range: `for i in 0..n { ... }`".into(),
            "def" | "function" => return "define functions with `fn name(a, b) { ... }`".into(),
            "lambda" => return "write anonymous functions as `x => x * 2` or `(a, b) => a + b`".into(),
            "var" | "const" => return "bind names with `let`".into(),
            _ => {}
        }
    }
    if found == "=" && before.ends_with("==") {
        return "`===` is not an operator; compare with `==`".into();
    }
    if found.is_empty() {
        return "the script ended early: close every `(`, `[`, `{` and string".into();
    }
    match found {
        "let" | "fn" | "if" | "for" | "show" | "record" | "assert" | "seed" | "use" | "return" => {
            return format!(
                "`{found}` is a keyword and starts a statement; it cannot be used as a name or inside an expression"
            );
        }
        "def" | "function" => return "define functions with `fn name(a, b) { ... }`".into(),
        "elif" => return "write `else if`".into(),
        "while" => return "Assay has no `while`; loop over a range: `for i in 0..n { ... }`".into(),
        "{" if expected.iter().any(|e| e == "an expression") => {
            return "records are written `{name: value}`; blocks only follow if/for/fn".into()
        }
        "'" => return "strings use double quotes \"...\" or backticks `...`".into(),
        ":" if before.ends_with(')') || before.ends_with(|c: char| c.is_alphanumeric()) => {
            return "blocks use braces, not colons: `if x > 0 { ... }`".into()
        }
        _ => {}
    }
    if expected.iter().any(|e| e == "`)`") {
        return "check for a missing `)` or `,` between arguments".into();
    }
    if expected.iter().any(|e| e == "`]`") {
        return "check for a missing `]` or `,` between items".into();
    }
    if expected.iter().any(|e| e == "`}`") {
        return "check for a missing `}` or `,` between record fields".into();
    }
    if expected.iter().any(|e| e == "an expression") {
        return "a value is missing here: a number, string, name, list, record or call".into();
    }
    "see docs/language.md for the syntax of statements and expressions".into()
}

/// The innermost bracket open at `pos` (`(`, `[`, `{`), as the grammar
/// sees the text (strings and comments skipped).
fn innermost_open(source: &str, pos: usize) -> Option<u8> {
    let mut open = None;
    scan(source.get(..pos).unwrap_or(""), |b| {
        if let Bracket::End { open: o } = b {
            open = o.map(|(byte, _)| byte);
        }
        None
    });
    open
}

/// Help for what a Python (or JavaScript) habit wrote where Assay reads
/// something else: the Assay form of it.
fn habit(source: &str, pos: usize, found: &str, before: &str, context: &str) -> Option<String> {
    let open = innermost_open(source, pos);
    let line_before = context.get(..context.len().saturating_sub(found.len())).unwrap_or("").trim();
    let ends_value =
        |s: &str| s.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ')' || c == ']' || c == '"');
    let help = match found {
        "/" if before.ends_with('/') => "`//` is not an operator: floor division is `floor(a / b)`",
        "\"" if before.ends_with('f')
            && !before[..before.len() - 1].ends_with(|c: char| c.is_alphanumeric() || c == '_') =>
        {
            "strings interpolate without a prefix: write `\"... {x}\"`, not `f\"... {x}\"`"
        }
        "for" if open == Some(b'[') => {
            "Assay has no comprehensions: `[f(x) for x in xs]` is `map(xs, x => f(x))`, and a condition is `filter(xs, x => ...)`"
        }
        ":" if open == Some(b'[') => "slices are written `xs[a..b]` (end excluded), not `xs[a:b]`; `xs[a..]` is not Assay: use `xs[a..len(xs)]`",
        "=" if open == Some(b'(') && !before.ends_with(['=', '!', '<', '>']) => {
            "named arguments are written `name: value`, not `name=value`"
        }
        "if" if !line_before.is_empty() && ends_value(line_before) && !line_before.ends_with("else") => {
            "Assay has no conditional expression `a if c else b`: write `let v = b` and then `if c { v = a }`, or define `fn pick(c, a, b) { if c { return a } return b }`"
        }
        "]" if open == Some(b'[') && before.ends_with("..") => "a slice needs both ends: `xs[a..len(xs)]`",
        "not" if ends_value(before) => "`x not in xs` is written `not (x in xs)`",
        "in" if before.ends_with("not") => "`x not in xs` is written `not (x in xs)`",
        "else" if line_before.contains(" if ") && !line_before.trim_start().starts_with("if ") => {
            "Assay has no conditional expression `a if c else b`: write `let v = b` and then `if c { v = a }`, or define `fn pick(c, a, b) { if c { return a } return b }`"
        }
        _ => {
            let first = context.trim_start().split(|c: char| !c.is_alphanumeric() && c != '_').next();
            if matches!(first, Some("import" | "from")) {
                "Assay has no imports: its tools are built in (`assay tools` lists them), and `use \"helpers.rhai\" as h` loads rhai functions"
            } else {
                return None;
            }
        }
    };
    Some(help.to_string())
}
