//! String helpers.

use assay_interpreter::{format_num, Args, Category, Registry, Signature, ToolCtx, ToolError, Type, Value};

use super::FnTool;

fn upper_sig() -> Signature {
    Signature::new("upper", Category::Text, "The string in upper case.")
        .param("s", Type::Str, "text")
        .returns(Type::Str)
        .example("assert upper(\"abc\") == \"ABC\"")
}
fn upper(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    Ok(Value::str(a.str("s")?.to_uppercase()))
}
fn lower_sig() -> Signature {
    Signature::new("lower", Category::Text, "The string in lower case.")
        .param("s", Type::Str, "text")
        .returns(Type::Str)
        .example("assert lower(\"AbC\") == \"abc\"")
}
fn lower(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    Ok(Value::str(a.str("s")?.to_lowercase()))
}
fn strip_sig() -> Signature {
    Signature::new("strip", Category::Text, "The string without leading and trailing whitespace.")
        .param("s", Type::Str, "text")
        .returns(Type::Str)
        .example("assert strip(\"  hi \\n\") == \"hi\"")
}
fn strip(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    Ok(Value::str(a.str("s")?.trim()))
}

fn split_sig() -> Signature {
    Signature::new("split", Category::Text, "Splits on `sep`; without `sep`, on runs of whitespace.")
        .param("s", Type::Str, "text")
        .opt("sep", Type::Str, Value::None, "separator")
        .returns(Type::list(Type::Str))
        .example(
            "assert split(\"a,b,c\", sep: \",\") == [\"a\", \"b\", \"c\"]\nassert split(\" a  b \") == [\"a\", \"b\"]",
        )
}
fn split(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let s = a.str("s")?;
    let parts: Vec<Value> = match a.opt_str("sep")? {
        Some("") => return Err(ToolError::arg("sep", "`sep` must not be empty")),
        Some(sep) => s.split(sep).map(Value::str).collect(),
        None => s.split_whitespace().map(Value::str).collect(),
    };
    Ok(Value::list(parts))
}

fn join_sig() -> Signature {
    Signature::new("join", Category::Text, "Joins items (converted to text) with `sep` between them.")
        .param("xs", Type::list(Type::Any), "items")
        .opt("sep", Type::Str, Value::str(""), "separator")
        .returns(Type::Str)
        .example("assert join([\"a\", 1, true], sep: \"-\") == \"a-1-true\"")
}
fn join(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let items = a.items("xs")?;
    let parts: Vec<String> = items.iter().map(|v| v.to_text()).collect();
    Ok(Value::str(parts.join(a.str("sep")?)))
}

fn replace_sig() -> Signature {
    Signature::new("replace", Category::Text, "Replaces every occurrence of `from` with `to`.")
        .param("s", Type::Str, "text")
        .param("from", Type::Str, "text to find (not empty)")
        .param("to", Type::Str, "replacement")
        .returns(Type::Str)
        .example("assert replace(\"a-b-c\", \"-\", \"+\") == \"a+b+c\"")
}
fn replace(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let from = a.str("from")?;
    if from.is_empty() {
        return Err(ToolError::arg("from", "`from` must not be empty"));
    }
    let (text, to) = (a.str("s")?, a.str("to")?);
    // The size of the result is known before it is built.
    let grows = to.len().saturating_sub(from.len()).saturating_mul(text.matches(from).count());
    let max = assay_interpreter::MAX_STRING_BYTES;
    if text.len().saturating_add(grows) > max {
        return Err(ToolError::new(format!(
            "the result would be {} bytes, more than the {max} a string may hold",
            text.len().saturating_add(grows)
        ))
        .help("replace in a smaller text, or with a shorter replacement"));
    }
    Ok(Value::str(text.replace(from, to)))
}

fn starts_with_sig() -> Signature {
    Signature::new("starts_with", Category::Text, "Whether `s` begins with `prefix`.")
        .param("s", Type::Str, "text")
        .param("prefix", Type::Str, "prefix")
        .returns(Type::Bool)
        .example("assert starts_with(\"layer3\", \"layer\")")
}
fn starts_with(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    Ok(Value::Bool(a.str("s")?.starts_with(a.str("prefix")?)))
}
fn ends_with_sig() -> Signature {
    Signature::new("ends_with", Category::Text, "Whether `s` ends with `suffix`.")
        .param("s", Type::Str, "text")
        .param("suffix", Type::Str, "suffix")
        .returns(Type::Bool)
        .example("assert ends_with(\"photo.jpg\", \".jpg\")")
}
fn ends_with(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    Ok(Value::Bool(a.str("s")?.ends_with(a.str("suffix")?)))
}

fn str_sig() -> Signature {
    Signature::new("str", Category::Text, "Any value as text (strings unchanged).")
        .param("x", Type::Any, "any value")
        .returns(Type::Str)
        .example("assert str(1.5) == \"1.5\"\nassert str([1, \"a\"]) == \"[1, \\\"a\\\"]\"")
}
fn str_(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    Ok(Value::str(a.get("x").to_text()))
}

fn num_sig() -> Signature {
    Signature::new("num", Category::Text, "Parses a number from text (or converts a bool to 0/1).")
        .param("x", Type::OneOf(vec![Type::Str, Type::Num, Type::Bool]), "text such as \"3.5\"")
        .returns(Type::Num)
        .example("assert num(\"3.5\") + 1 == 4.5\nassert num(true) == 1")
}
fn num(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    match a.get("x") {
        Value::Num(n) => Ok(Value::Num(*n)),
        Value::Bool(b) => Ok(Value::Num(if *b { 1.0 } else { 0.0 })),
        _ => {
            let s = a.str("x")?.trim();
            s.parse::<f64>().map(Value::Num).map_err(|_| ToolError::arg("x", format!("\"{s}\" is not a number")))
        }
    }
}

fn fmt_sig() -> Signature {
    Signature::new("fmt", Category::Text, "A number as text with exactly `digits` decimals.")
        .param("x", Type::Num, "number")
        .opt("digits", Type::Num, Value::Num(3.0), "decimal places")
        .returns(Type::Str)
        .example("assert fmt(3.14159, digits: 2) == \"3.14\"\nassert fmt(2, digits: 1) == \"2.0\"")
}
fn fmt(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let d = a.count("digits")?;
    if d > 17 {
        return Err(ToolError::arg("digits", "`digits` must be at most 17"));
    }
    let x = a.num("x")?;
    if !x.is_finite() {
        return Ok(Value::str(format_num(x)));
    }
    Ok(Value::str(format!("{x:.d$}")))
}

fn ord_sig() -> Signature {
    Signature::new("ord", Category::Text, "The Unicode code point of a one-character string (`ord(\"a\")` is 97).")
        .param("c", Type::Str, "one character")
        .returns(Type::Num)
        .example("assert ord(\"a\") == 97 and chr(ord(\"a\") + 1) == \"b\"")
}
fn ord(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let s = a.str("c")?;
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(Value::Num(f64::from(u32::from(c)))),
        _ => Err(ToolError::arg("c", format!("expected one character, found {} characters", s.chars().count()))
            .help("iterate over a string to get its characters: map(s, c => ord(c))")),
    }
}
fn chr_sig() -> Signature {
    Signature::new("chr", Category::Text, "The one-character string of a Unicode code point (`chr(97)` is \"a\").")
        .param("n", Type::Num, "a code point")
        .returns(Type::Str)
        .example("assert chr(65) == \"A\" and join(map(\"abc\", c => chr(ord(c) - 32))) == \"ABC\"")
}
fn chr(a: &Args, _: &mut dyn ToolCtx) -> Result<Value, ToolError> {
    let n = a.num("n")?;
    let c = (n.fract() == 0.0 && (0.0..=f64::from(u32::from(char::MAX))).contains(&n))
        .then(|| char::from_u32(n as u32))
        .flatten()
        .ok_or_else(|| ToolError::arg("n", format!("{n} is not a Unicode code point")))?;
    Ok(Value::str(c.to_string()))
}

pub(super) fn register(r: &mut Registry) {
    for (sig, f) in [
        (upper_sig as fn() -> Signature, upper as super::ToolFn),
        (lower_sig, lower),
        (strip_sig, strip),
        (split_sig, split),
        (join_sig, join),
        (replace_sig, replace),
        (starts_with_sig, starts_with),
        (ends_with_sig, ends_with),
        (str_sig, str_),
        (num_sig, num),
        (fmt_sig, fmt),
        (ord_sig, ord),
        (chr_sig, chr),
    ] {
        r.register(FnTool::new(sig, f));
    }
}
