//! `[DOMAIN]`: where a black-box function behaves differently, in a small
//! grammar read from the start of the field. Everything after the form is
//! the model's explanation and is never searched for numbers.
//!
//! ```text
//! domain   := "none" | interval | bound
//! interval := ("[" | "(") num ("," | ";" | "..") num ("]" | ")")
//!           | "x" ("in" | "∈") interval
//! bound    := "x" cmp num | num cmp "x" | num cmp "x" cmp num
//! cmp      := "<" | "<=" | "≤" | ">" | ">=" | "≥"
//! num      := sign? (digits ["." digits] [exponent] | "inf" | "infinity" | "∞")
//! sign     := "+" | "-" | "−" (U+2212) | "–" | "—" | "‐" | "‑" | "－"
//! ```
//!
//! A field wrapped in backticks is read inside them. Open and closed ends
//! are scored alike (intervals are compared by overlap).

/// An answered domain: no interval, or one (infinite ends for one-sided).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Domain {
    None,
    Interval(f64, f64),
}

/// The forms `[DOMAIN]` takes, as the correction and the guide state them.
pub(crate) const FORMS: &str =
    "`none`, `[a, b]`, `x < a`, `x > a` or `a < x < b` (numbers may be `inf`/`-inf`), then any explanation";

/// Reads a `[DOMAIN]` field; the error says what was found instead.
pub(crate) fn parse(field: &str) -> Result<Domain, String> {
    let text = field.trim().trim_start_matches('`').trim_start();
    let mut r = Reader { s: text, at: 0 };
    let form = r.domain();
    match form {
        // A comparison right after the form would be read wrongly: refused.
        Some(d) if r.at_boundary() && !r.rest().trim_start().starts_with(['<', '>', '≤', '≥', '=']) => check(d),
        _ => {
            let start: String = text.chars().take(40).collect();
            let shown = if start.is_empty() { "nothing".to_string() } else { format!("`{start}`") };
            Err(format!("[DOMAIN] must start with {FORMS}; it starts with {shown}"))
        }
    }
}

fn check(d: Domain) -> Result<Domain, String> {
    match d {
        Domain::Interval(lo, hi) if lo.is_nan() || hi.is_nan() => {
            Err("[DOMAIN] has an end that is not a number".into())
        }
        Domain::Interval(lo, hi) if lo > hi => Err(format!(
            "[DOMAIN] reads as an interval from {lo} down to {hi}: give the lower end first, `[{hi}, {lo}]`"
        )),
        d => Ok(d),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Cmp {
    Less,
    Greater,
}

struct Reader<'a> {
    s: &'a str,
    at: usize,
}

impl Reader<'_> {
    fn rest(&self) -> &str {
        &self.s[self.at..]
    }

    fn skip_ws(&mut self) {
        let n = self.rest().len() - self.rest().trim_start().len();
        self.at += n;
    }

    /// Consumes `word` (ASCII case-insensitive) after blanks.
    fn eat(&mut self, word: &str) -> bool {
        self.skip_ws();
        let r = self.rest();
        if r.len() >= word.len() && r.is_char_boundary(word.len()) && r[..word.len()].eq_ignore_ascii_case(word) {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    /// After a form: the end, or anything that is not part of a word or number.
    fn at_boundary(&self) -> bool {
        let mut cs = self.rest().chars();
        match cs.next() {
            None => true,
            Some('.') => !cs.next().is_some_and(|c| c.is_ascii_digit()),
            Some(c) => !(c.is_alphanumeric() || c == '_'),
        }
    }

    fn domain(&mut self) -> Option<Domain> {
        let save = self.at;
        if self.eat("none") && self.at_boundary() {
            return Some(Domain::None);
        }
        self.at = save;
        if let Some(d) = self.interval() {
            return Some(d);
        }
        self.at = save;
        if self.var() {
            if self.eat("in") || self.eat("∈") {
                return self.interval();
            }
            let c = self.cmp()?;
            let a = self.num()?;
            return Some(match c {
                Cmp::Less => Domain::Interval(f64::NEG_INFINITY, a),
                Cmp::Greater => Domain::Interval(a, f64::INFINITY),
            });
        }
        self.at = save;
        let a = self.num()?;
        let c1 = self.cmp()?;
        if !self.var() {
            return None;
        }
        let after = self.at;
        if let Some(c2) = self.cmp() {
            let b = self.num()?;
            if c1 != c2 {
                return None;
            }
            return Some(match c1 {
                Cmp::Less => Domain::Interval(a, b),
                Cmp::Greater => Domain::Interval(b, a),
            });
        }
        self.at = after;
        Some(match c1 {
            // a < x: x above a.
            Cmp::Less => Domain::Interval(a, f64::INFINITY),
            Cmp::Greater => Domain::Interval(f64::NEG_INFINITY, a),
        })
    }

    fn interval(&mut self) -> Option<Domain> {
        if !(self.eat("[") || self.eat("(")) {
            return None;
        }
        let a = self.num()?;
        if !(self.eat(",") || self.eat(";") || self.eat("..")) {
            return None;
        }
        let b = self.num()?;
        if !(self.eat("]") || self.eat(")")) {
            return None;
        }
        Some(Domain::Interval(a, b))
    }

    /// The variable `x` as a word of its own.
    fn var(&mut self) -> bool {
        let save = self.at;
        if self.eat("x") && self.at_boundary() {
            return true;
        }
        self.at = save;
        false
    }

    fn cmp(&mut self) -> Option<Cmp> {
        for (w, c) in [
            ("<=", Cmp::Less),
            ("≤", Cmp::Less),
            ("<", Cmp::Less),
            (">=", Cmp::Greater),
            ("≥", Cmp::Greater),
            (">", Cmp::Greater),
        ] {
            if self.eat(w) {
                return Some(c);
            }
        }
        None
    }

    fn num(&mut self) -> Option<f64> {
        self.skip_ws();
        let mut negative = false;
        if let Some(c) = self.rest().chars().next() {
            if matches!(c, '-' | '−' | '–' | '—' | '‐' | '‑' | '－') {
                negative = true;
                self.at += c.len_utf8();
            } else if c == '+' {
                self.at += 1;
            }
        }
        let r = self.rest();
        let sign = if negative { -1.0 } else { 1.0 };
        for w in ["infinity", "inf", "∞"] {
            if r.len() >= w.len() && r.is_char_boundary(w.len()) && r[..w.len()].eq_ignore_ascii_case(w) {
                self.at += w.len();
                return Some(sign * f64::INFINITY);
            }
        }
        let (i, _) = decimal_end(r.as_bytes());
        if i == 0 {
            return None;
        }
        let v: f64 = r[..i].parse().ok()?;
        self.at += i;
        Some(sign * v)
    }
}

/// Where the decimal number at the start of `b` ends (digits, then an
/// optional fraction and exponent; 0 if `b` starts with no digit), and
/// whether it has a fraction.
pub(super) fn decimal_end(b: &[u8]) -> (usize, bool) {
    let digits = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = digits(0);
    if i == 0 {
        return (0, false);
    }
    let fraction = i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit();
    if fraction {
        i = digits(i + 1);
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let sign = usize::from(b.get(i + 1).is_some_and(|c| *c == b'+' || *c == b'-'));
        let end = digits(i + 1 + sign);
        if end > i + 1 + sign {
            i = end;
        }
    }
    (i, fraction)
}

/// Intersection over union of two intervals, clipped to [-128, 128].
pub(crate) fn interval_iou(a: (f64, f64), b: (f64, f64)) -> f64 {
    let clip = |(lo, hi): (f64, f64)| (lo.max(-128.0), hi.min(128.0));
    let (a, b) = (clip(a), clip(b));
    let len = |(lo, hi): (f64, f64)| (hi - lo).max(0.0);
    let inter = len((a.0.max(b.0), a.1.min(b.1)));
    let union = len(a) + len(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f64 = f64::NEG_INFINITY;
    const POS: f64 = f64::INFINITY;

    #[test]
    fn the_forms_of_the_grammar_are_read() {
        assert_eq!(parse("none"), Ok(Domain::None));
        assert_eq!(parse("None."), Ok(Domain::None));
        assert_eq!(parse("[30, 60]"), Ok(Domain::Interval(30.0, 60.0)));
        assert_eq!(parse("(54.1, inf)"), Ok(Domain::Interval(54.1, POS)));
        assert_eq!(parse("[-inf; 54]"), Ok(Domain::Interval(NEG, 54.0)));
        assert_eq!(parse("[1e1 .. 2.5E1]"), Ok(Domain::Interval(10.0, 25.0)));
        assert_eq!(parse("x < -12"), Ok(Domain::Interval(NEG, -12.0)));
        assert_eq!(parse("x >= 40"), Ok(Domain::Interval(40.0, POS)));
        assert_eq!(parse("x ≥ −66.8"), Ok(Domain::Interval(-66.8, POS)));
        assert_eq!(parse("3 < x <= 7"), Ok(Domain::Interval(3.0, 7.0)));
        assert_eq!(parse("7 > x > 3"), Ok(Domain::Interval(3.0, 7.0)));
        assert_eq!(parse("-5 < x"), Ok(Domain::Interval(-5.0, POS)));
        assert_eq!(parse("x in [2, 4]"), Ok(Domain::Interval(2.0, 4.0)));
        assert_eq!(parse("x ∈ (−∞, 4]"), Ok(Domain::Interval(NEG, 4.0)));
        assert_eq!(parse("`[1, 2]`"), Ok(Domain::Interval(1.0, 2.0)));
        // Dashes used as minus signs.
        assert_eq!(parse("[–3, —2]"), Ok(Domain::Interval(-3.0, -2.0)));
    }

    #[test]
    fn text_after_the_form_is_never_read_for_numbers() {
        // The transcripts' answers, verbatim.
        assert_eq!(parse("none (no noisy or replaced interval found)."), Ok(Domain::None));
        assert_eq!(
            parse("none (no noisy or replaced interval found; the wave is regular over the whole [−128, 128])."),
            Ok(Domain::None)
        );
        assert_eq!(
            parse("none (the smooth step is part of the function); the only change is the smooth step centred at x = 2.5."),
            Ok(Domain::None)
        );
        assert_eq!(
            parse("[−66.8, 128]: the constant 95 is corrupted by small pseudo-random noise (±0.15, occasionally up to +0.3) on this interval; below −66.8 the output is exactly 95."),
            Ok(Domain::Interval(-66.8, 128.0))
        );
    }

    #[test]
    fn anything_else_is_refused_with_the_forms() {
        for bad in [
            "between 60 and 30.5",
            "somewhere on the right",
            "around 7",
            "",
            "nonexistent",
            "x < ",
            "[1, 2",
            "x < 3 < 5",
            "1 < x > 5",
            "x == 3",
            "[5, 3]",
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(e.starts_with("[DOMAIN]"), "{bad}: {e}");
        }
        assert!(parse("no interval").expect_err("no").contains("`none`"));
        assert!(parse("[5, 3]").expect_err("reversed").contains("lower end first"));
    }

    #[test]
    fn interval_overlap_follows_its_definition() {
        assert_eq!(interval_iou((0.0, 10.0), (5.0, 15.0)), 5.0 / 15.0);
        assert_eq!(interval_iou((NEG, 0.0), (-128.0, 0.0)), 1.0);
        assert_eq!(interval_iou((0.0, 1.0), (2.0, 3.0)), 0.0);
        assert_eq!(interval_iou((-66.8, 128.0), (-66.8, POS)), 1.0);
    }
}
