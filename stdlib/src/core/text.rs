//! String helpers.

use assay_interpreter::{format_num, iter_values, ToolError, Type, Value};

use super::declare::{tool, ToolCtx, ToolResult};

tool! {
    /// The string in upper case.
    ///
    /// ```assay
    /// assert upper("abc") == "ABC"
    /// ```
    upper in Text -> Type::Str;
    {
        /// text
        s: String,
    }
    upper
}

fn upper(p: upper::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(Value::str(p.s.to_uppercase()))
}

tool! {
    /// The string in lower case.
    ///
    /// ```assay
    /// assert lower("AbC") == "abc"
    /// ```
    lower in Text -> Type::Str;
    {
        /// text
        s: String,
    }
    lower
}

fn lower(p: lower::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(Value::str(p.s.to_lowercase()))
}

tool! {
    /// The string without leading and trailing whitespace.
    ///
    /// ```assay
    /// assert strip("  hi \n") == "hi"
    /// ```
    strip in Text -> Type::Str;
    {
        /// text
        s: String,
    }
    strip
}

fn strip(p: strip::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(Value::str(p.s.trim()))
}

tool! {
    /// Splits on `sep`; without `sep`, on runs of whitespace.
    ///
    /// ```assay
    /// assert split("a,b,c", sep: ",") == ["a", "b", "c"]
    /// assert split(" a  b ") == ["a", "b"]
    /// ```
    split in Text -> Type::list(Type::Str);
    {
        /// text
        s: String,
        /// separator
        sep: Option<String> = None,
    }
    split
}

fn split(p: split::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let parts: Vec<Value> = match p.sep.as_deref() {
        Some("") => return Err(p.sep.error("`sep` must not be empty")),
        Some(sep) => p.s.split(sep).map(Value::str).collect(),
        None => p.s.split_whitespace().map(Value::str).collect(),
    };
    Ok(Value::list(parts))
}

tool! {
    /// Joins items (converted to text) with `sep` between them.
    ///
    /// ```assay
    /// assert join(["a", 1, true], sep: "-") == "a-1-true"
    /// ```
    join in Text -> Type::Str;
    {
        /// items
        xs: Value [Type::list(Type::Any)],
        /// separator
        sep: String = "",
    }
    join
}

fn join(p: join::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let items =
        iter_values(&p.xs).ok_or_else(|| p.xs.error(format!("`xs` must be a list, found {}", p.xs.type_name())))?;
    let parts: Vec<String> = items.iter().map(|v| v.to_text()).collect();
    Ok(Value::str(parts.join(&p.sep)))
}

tool! {
    /// Replaces every occurrence of `from` with `to`.
    ///
    /// ```assay
    /// assert replace("a-b-c", "-", "+") == "a+b+c"
    /// ```
    replace in Text -> Type::Str;
    {
        /// text
        s: String,
        /// text to find (not empty)
        from: String,
        /// replacement
        to: String,
    }
    replace
}

fn replace(p: replace::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let from = p.from.as_str();
    if from.is_empty() {
        return Err(p.from.error("`from` must not be empty"));
    }
    let (text, to) = (p.s.as_str(), p.to.as_str());
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

tool! {
    /// Whether `s` begins with `prefix`.
    ///
    /// ```assay
    /// assert starts_with("layer3", "layer")
    /// ```
    starts_with in Text -> Type::Bool;
    {
        /// text
        s: String,
        /// prefix
        prefix: String,
    }
    starts_with
}

fn starts_with(p: starts_with::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(Value::Bool(p.s.starts_with(p.prefix.as_str())))
}

tool! {
    /// Whether `s` ends with `suffix`.
    ///
    /// ```assay
    /// assert ends_with("photo.jpg", ".jpg")
    /// ```
    ends_with in Text -> Type::Bool;
    {
        /// text
        s: String,
        /// suffix
        suffix: String,
    }
    ends_with
}

fn ends_with(p: ends_with::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(Value::Bool(p.s.ends_with(p.suffix.as_str())))
}

tool! {
    /// Any value as text (strings unchanged).
    ///
    /// ```assay
    /// assert str(1.5) == "1.5"
    /// assert str([1, "a"]) == "[1, \"a\"]"
    /// ```
    str as str_ in Text -> Type::Str;
    {
        /// any value
        x: Value,
    }
    str_
}

fn str_(p: str_::Params, _: &mut dyn ToolCtx) -> ToolResult {
    Ok(Value::str(p.x.to_text()))
}

tool! {
    /// Parses a number from text (or converts a bool to 0/1).
    ///
    /// ```assay
    /// assert num("3.5") + 1 == 4.5
    /// assert num(true) == 1
    /// ```
    num in Text -> Type::Num;
    {
        /// text such as "3.5"
        x: Value [Type::OneOf(vec![Type::Str, Type::Num, Type::Bool])],
    }
    num
}

fn num(p: num::Params, _: &mut dyn ToolCtx) -> ToolResult {
    match &*p.x {
        Value::Num(n) => Ok(Value::Num(*n)),
        Value::Bool(b) => Ok(Value::Num(if *b { 1.0 } else { 0.0 })),
        Value::Str(s) => {
            let s = s.trim();
            s.parse::<f64>().map(Value::Num).map_err(|_| p.x.error(format!("\"{s}\" is not a number")))
        }
        other => Err(p.x.error(format!("`x` must be a string, found {}", other.type_name()))),
    }
}

tool! {
    /// A number as text with exactly `digits` decimals.
    ///
    /// ```assay
    /// assert fmt(3.14159, digits: 2) == "3.14"
    /// assert fmt(2, digits: 1) == "2.0"
    /// ```
    fmt as fmt_ in Text -> Type::Str;
    {
        /// number
        x: f64,
        /// decimal places
        digits: usize = 3,
    }
    fmt_
}

fn fmt_(p: fmt_::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let d = *p.digits;
    if d > 17 {
        return Err(p.digits.error("`digits` must be at most 17"));
    }
    let x = *p.x;
    if !x.is_finite() {
        return Ok(Value::str(format_num(x)));
    }
    Ok(Value::str(format!("{x:.d$}")))
}

tool! {
    /// The Unicode code point of a one-character string (`ord("a")` is 97).
    ///
    /// ```assay
    /// assert ord("a") == 97 and chr(ord("a") + 1) == "b"
    /// ```
    ord in Text -> Type::Num;
    {
        /// one character
        c: String,
    }
    ord
}

fn ord(p: ord::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let s = p.c.as_str();
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(Value::Num(f64::from(u32::from(c)))),
        _ => Err(p
            .c
            .error(format!("expected one character, found {} characters", s.chars().count()))
            .help("iterate over a string to get its characters: map(s, c => ord(c))")),
    }
}

tool! {
    /// The one-character string of a Unicode code point (`chr(97)` is "a").
    ///
    /// ```assay
    /// assert chr(65) == "A" and join(map("abc", c => chr(ord(c) - 32))) == "ABC"
    /// ```
    chr in Text -> Type::Str;
    {
        /// a code point
        n: f64,
    }
    chr
}

fn chr(p: chr::Params, _: &mut dyn ToolCtx) -> ToolResult {
    let n = *p.n;
    let c = (n.fract() == 0.0 && (0.0..=f64::from(u32::from(char::MAX))).contains(&n))
        .then(|| char::from_u32(n as u32))
        .flatten()
        .ok_or_else(|| p.n.error(format!("{n} is not a Unicode code point")))?;
    Ok(Value::str(c.to_string()))
}
