//! What a run shows, as text for a terminal or an agent.

use assay_interpreter::Value;

/// How much of what a script shows reaches the terminal (all of it is in
/// report.html): a script cannot flood the caller's memory or screen.
pub(super) const MAX_SHOW_CHARS: usize = 64 * 1024;

pub(super) const MAX_SHOWS: usize = 1000;

pub(super) fn clip_text(t: String) -> String {
    match t.char_indices().nth(MAX_SHOW_CHARS) {
        Some((cut, _)) => {
            let more = t[cut..].chars().count();
            format!("{}… ({more} more characters; see report.html)", &t[..cut])
        }
        None => t,
    }
}

pub(super) fn show_text(v: &Value) -> String {
    match v {
        Value::List(items) if items.len() > 1 && items.iter().all(|x| matches!(x, Value::Record(_))) => {
            items.iter().map(|x| token_profile(x).unwrap_or_else(|| x.to_text())).collect::<Vec<_>>().join("\n")
        }
        other => token_profile(other).unwrap_or_else(|| other.to_text()),
    }
}

/// A unit's values on a text (a record with `tokens` and `activations` of
/// one length) shown token beside value, wrapped: how a person reads which
/// token drives it.
pub(super) fn token_profile(v: &Value) -> Option<String> {
    let Value::Record(f) = v else { return None };
    let (Some(Value::List(tokens)), Some(values)) = (f.get("tokens"), f.get("activations")) else { return None };
    let values: Vec<f64> = match values {
        Value::List(xs) => {
            xs.iter().map(|x| if let Value::Num(n) = x { Some(*n) } else { None }).collect::<Option<_>>()?
        }
        _ => return None,
    };
    if tokens.len() != values.len() || !tokens.iter().all(|t| matches!(t, Value::Str(_))) {
        return None;
    }
    let mut out = String::new();
    if let Some(Value::Str(t)) = f.get("text") {
        out.push_str(&format!("{:?}", t.as_ref()));
    }
    if let (Some(Value::Num(m)), Some(Value::Num(at))) = (f.get("max"), f.get("at")) {
        let tok = tokens.get(*at as usize).map(|t| t.to_text()).unwrap_or_default();
        let m = assay_interpreter::format_num((m * 1000.0).round() / 1000.0);
        out.push_str(&format!(" max {m} at token {} {tok:?}", *at as usize));
    }
    let mut line = String::from("  ");
    for (t, v) in tokens.iter().zip(&values) {
        let cell = format!("{:?} {}", t.to_text(), assay_interpreter::format_num((v * 1000.0).round() / 1000.0));
        if line.chars().count() + cell.chars().count() > 100 && !line.trim().is_empty() {
            out.push('\n');
            out.push_str(line.trim_end());
            line = String::from("  ");
        }
        line.push_str(&cell);
        line.push_str(" | ");
    }
    out.push('\n');
    out.push_str(line.trim_end().trim_end_matches('|').trim_end());
    Some(out.trim_start_matches('\n').to_string())
}
