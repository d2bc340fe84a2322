//! FIND's string functions (make_strings in the FIND repository): character
//! and word operations on words and short phrases, alone or composed
//! (f1(f2(s))). Each operation is written twice, as Assay (the ground truth
//! an answer is checked against) and as rhai (the black box); a test plants
//! every truth as an answer and requires exact agreement on its test words.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// One operation with its parameter drawn.
#[derive(Clone, Debug)]
struct Op {
    name: &'static str,
    /// Assay body of `fn NAME(s)`.
    assay: String,
    /// rhai body of `fn NAME(s)`.
    rhai: String,
    description: String,
}

/// A string function with its ground truth and test inputs.
#[derive(Clone, Debug)]
pub(crate) struct Function {
    pub id: String,
    /// `op` or `outer;inner` for a composition.
    pub family: String,
    pub description: String,
    ops: Vec<Op>,
    /// The inputs an answer is scored on (exact match).
    pub tests: Vec<String>,
}

/// Test words and phrases (lower and capitalised, a few with digits).
const WORDS: &[&str] = &[
    "apple",
    "banana",
    "cherry",
    "garden",
    "window",
    "river",
    "mountain",
    "pencil",
    "silver",
    "orange",
    "planet",
    "forest",
    "castle",
    "rocket",
    "winter",
    "summer",
    "autumn",
    "spring",
    "doctor",
    "teacher",
    "guitar",
    "piano",
    "violin",
    "coffee",
    "butter",
    "candle",
    "dragon",
    "island",
    "jacket",
    "kitten",
    "ladder",
    "magnet",
    "needle",
    "oyster",
    "parrot",
    "quartz",
    "rabbit",
    "saddle",
    "tomato",
    "umbrella",
    "velvet",
    "walnut",
    "yellow",
    "zebra",
    "anchor",
    "bridge",
    "circle",
    "desert",
    "engine",
    "falcon",
    "glacier",
    "harbor",
    "igloo",
    "jungle",
    "kettle",
    "lemon",
    "meadow",
    "nectar",
    "octopus",
    "pepper",
    "quiet",
    "rhythm",
    "shadow",
    "thunder",
    "unicorn",
    "valley",
    "wizard",
    "xylophone",
    "yogurt",
    "zipper",
    "Paris",
    "London",
    "Tokyo",
    "Berlin",
    "Madrid",
    "Alice",
    "Bob",
    "Carol",
    "Dave",
    "Eve",
    "level",
    "radar",
    "noon",
    "civic",
    "kayak",
    "moon",
    "book",
    "tree",
    "bee",
    "see",
    "ocean blue",
    "red car",
    "big cat",
    "hello world",
    "green tea",
    "fast train",
    "old book",
    "new moon",
    "data 42",
    "room 101",
    "agent 7",
    "route 66",
    "year 2024",
    "a",
    "ab",
    "abc",
    "xyz",
    "Zoo",
    "yak",
];

const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The letter shift, shared by the shift operations: `k` places within the
/// alphabet of the letter's case, other characters unchanged.
const SHIFT_ASSAY: &str = "fn shift_letter(c, k) {\n  let n = ord(c)\n  if n >= 97 and n <= 122 {\n    return chr((n - 97 + k + 26) % 26 + 97)\n  }\n  if n >= 65 and n <= 90 {\n    return chr((n - 65 + k + 26) % 26 + 65)\n  }\n  return c\n}\n";
const SHIFT_RHAI: &str = "fn shift_letter(c, k) {\n  let n = c.to_int();\n  if n >= 97 && n <= 122 { return chr((n - 97 + k + 26) % 26 + 97); }\n  if n >= 65 && n <= 90 { return chr((n - 65 + k + 26) % 26 + 65); }\n  c.to_string()\n}\nfn chars_of(s) {\n  let out = [];\n  for c in s { out.push(c); }\n  out\n}\n";

/// Operations FIND samples (those with a parameter draw it here).
const OPS: &[&str] = &[
    "convert_to_lowercase",
    "convert_to_uppercase",
    "capitalize_string",
    "reverse_string",
    "remove_whitespace",
    "remove_duplicates",
    "reverse_words",
    "add_number_to_string",
    "insert_number",
    "add_letter_if_needed",
    "insert_letter",
    "string_concatenate",
    "remove_substring",
    "duplicate_last_letter",
    "replace_substring",
    "shift_last_letter",
    "shift_first_letter",
    "shift_last_letter_predecessor",
    "shift_first_letter_predecessor",
    "shift_last_letter_forward_two",
    "shift_first_letter_forward_two",
    "shift_last_letter_backward_two",
    "shift_first_letter_backward_two",
];

/// Operations that may be the inner one of a composition (FIND's second
/// list: no case conversions).
const INNER: &[&str] = &[
    "capitalize_string",
    "reverse_string",
    "remove_whitespace",
    "remove_duplicates",
    "reverse_words",
    "add_number_to_string",
    "insert_number",
    "add_letter_if_needed",
    "insert_letter",
    "string_concatenate",
    "remove_substring",
    "duplicate_last_letter",
    "replace_substring",
];

fn letter(rng: &mut ChaCha8Rng) -> String {
    (LETTERS[rng.random_range(0..LETTERS.len())] as char).to_string()
}

fn op(rng: &mut ChaCha8Rng, name: &'static str) -> Op {
    let (assay, rhai, description): (String, String, String) = match name {
        "convert_to_lowercase" => ("return lower(s)".into(), "s.to_lower()".into(), "the string in lower case".into()),
        "convert_to_uppercase" => ("return upper(s)".into(), "s.to_upper()".into(), "the string in upper case".into()),
        "capitalize_string" => (
            "if len(s) == 0 {\n    return s\n  }\n  return upper(s[0]) + lower(s[1..len(s)])".into(),
            "if s.len() == 0 { return s; }\n  let first = s.sub_string(0, 1);\n  let rest = s.sub_string(1, s.len() - 1);\n  first.to_upper() + rest.to_lower()".into(),
            "the first character upper case, the rest lower case".into(),
        ),
        "reverse_string" => (
            "return join(reverse(s))".into(),
            "let out = \"\";\n  for c in s { out = c.to_string() + out; }\n  out".into(),
            "the string reversed".into(),
        ),
        "remove_whitespace" => (
            "return join(split(s), \"\")".into(),
            "let out = \"\";\n  for c in s { if c != ' ' { out += c; } }\n  out".into(),
            "the string with its spaces removed".into(),
        ),
        "remove_duplicates" => (
            "return join(unique(s))".into(),
            "let seen = [];\n  let out = \"\";\n  for c in s { if !seen.contains(c) { seen.push(c); out += c; } }\n  out".into(),
            "each character kept at its first occurrence only".into(),
        ),
        "reverse_words" => (
            "return join(map(split(s), w => join(reverse(w))), \" \")".into(),
            "let words = [];\n  for w in s.split(\" \") { let r = \"\"; for c in w { r = c.to_string() + r; } words.push(r); }\n  let out = \"\";\n  for i in 0..words.len() { if i > 0 { out += \" \"; } out += words[i]; }\n  out".into(),
            "every word reversed in place".into(),
        ),
        "add_number_to_string" => {
            let n = rng.random_range(1..=10);
            (
                format!("return join(map(s, c => chr(ord(c) + {n})))"),
                format!("let out = \"\";\n  for c in s {{ out += chr(c.to_int() + {n}); }}\n  out"),
                format!("every character's code point raised by {n}"),
            )
        }
        "insert_number" => {
            let n = rng.random_range(1..=10);
            (
                format!("let m = floor(len(s) / 2)\n  return s[0..m] + \"{n}\" + s[m..len(s)]"),
                format!("let m = s.len() / 2;\n  s.sub_string(0, m) + \"{n}\" + s.sub_string(m, s.len() - m)"),
                format!("the number {n} inserted in the middle"),
            )
        }
        "add_letter_if_needed" => {
            let l = letter(rng);
            (
                format!("if ends_with(s, {0}) {{\n    return s\n  }}\n  return s + {0}", q(&l)),
                format!("if s.ends_with({0}) {{ s }} else {{ s + {0} }}", q(&l)),
                format!("{} appended unless the string already ends with it", q(&l)),
            )
        }
        "insert_letter" => {
            let l = letter(rng);
            (
                format!("let m = floor(len(s) / 2)\n  return s[0..m] + {} + s[m..len(s)]", q(&l)),
                format!("let m = s.len() / 2;\n  s.sub_string(0, m) + {} + s.sub_string(m, s.len() - m)", q(&l)),
                format!("the letter {} inserted in the middle", q(&l)),
            )
        }
        "string_concatenate" => {
            let k = rng.random_range(1..=5);
            let sub: String = (0..k).map(|_| letter(rng)).collect();
            (format!("return s + {}", q(&sub)), format!("s + {}", q(&sub)), format!("{} appended", q(&sub)))
        }
        "remove_substring" => {
            let l = letter(rng);
            (
                format!("return replace(s, {}, \"\")", q(&l)),
                format!("let out = s;\n  out.replace({}, \"\");\n  out", q(&l)),
                format!("every {} removed", q(&l)),
            )
        }
        "replace_substring" => {
            let (a, b) = (letter(rng), letter(rng));
            (
                format!("return replace(s, {}, {})", q(&a), q(&b)),
                format!("let out = s;\n  out.replace({}, {});\n  out", q(&a), q(&b)),
                format!("every {} replaced by {}", q(&a), q(&b)),
            )
        }
        "duplicate_last_letter" => (
            "if len(s) == 0 {\n    return s\n  }\n  return s + s[-1]".into(),
            "if s.len() == 0 { return s; }\n  s + s.sub_string(s.len() - 1, 1)".into(),
            "the last character repeated".into(),
        ),
        shift => {
            let k = match shift {
                "shift_last_letter" | "shift_first_letter" => 1,
                "shift_last_letter_predecessor" | "shift_first_letter_predecessor" => -1,
                "shift_last_letter_forward_two" | "shift_first_letter_forward_two" => 2,
                _ => -2,
            };
            let first = shift.starts_with("shift_first");
            let which = if first { "first" } else { "last" };
            let assay = if first {
                format!("if len(s) == 0 {{\n    return s\n  }}\n  return shift_letter(s[0], {k}) + s[1..len(s)]")
            } else {
                format!("if len(s) == 0 {{\n    return s\n  }}\n  return s[0..len(s) - 1] + shift_letter(s[-1], {k})")
            };
            let rhai = if first {
                format!("if s.len() == 0 {{ return s; }}\n  let cs = chars_of(s);\n  shift_letter(cs[0], {k}) + s.sub_string(1, s.len() - 1)")
            } else {
                format!("if s.len() == 0 {{ return s; }}\n  let cs = chars_of(s);\n  s.sub_string(0, s.len() - 1) + shift_letter(cs[cs.len() - 1], {k})")
            };
            (assay, rhai, format!("the {which} letter moved {k} places in the alphabet (wrapping; other characters unchanged)"))
        }
    };
    Op { name, assay, rhai, description }
}

/// Item `i` of the string set with `seed`.
pub(crate) fn function(seed: u64, i: u64) -> Function {
    let mut rng = super::numeric::item_rng(seed ^ 0x5354_5249_4e47_5321, i);
    let outer = OPS[rng.random_range(0..OPS.len())];
    let ops = if rng.random_bool(0.7) {
        vec![op(&mut rng, outer)]
    } else {
        let inner = loop {
            let n = INNER[rng.random_range(0..INNER.len())];
            if n != outer {
                break n;
            }
        };
        vec![op(&mut rng, outer), op(&mut rng, inner)]
    };
    let family = ops.iter().map(|o| o.name).collect::<Vec<_>>().join(";");
    let description = match ops.as_slice() {
        [o] => o.description.clone(),
        [o, inner] => format!("{}, after {}", o.description, inner.description),
        _ => String::new(),
    };
    let mut tests: Vec<String> = Vec::new();
    while tests.len() < 10 {
        let w = WORDS[rng.random_range(0..WORDS.len())].to_string();
        if !tests.contains(&w) {
            tests.push(w);
        }
    }
    Function { id: format!("s{i:04}"), family, description, ops, tests }
}

impl Function {
    /// The ground truth as Assay code defining `fn f(s)`.
    pub(crate) fn truth_code(&self) -> String {
        let mut out = String::from(SHIFT_ASSAY);
        for (k, o) in self.ops.iter().enumerate() {
            out.push_str(&format!("fn op{k}(s) {{\n  {}\n}}\n", o.assay));
        }
        let call = (0..self.ops.len()).fold("s".to_string(), |acc, k| format!("op{}({acc})", self.ops.len() - 1 - k));
        out.push_str(&format!("fn f(s) {{\n  return {call}\n}}\n"));
        out
    }

    /// The black box as rhai (`fn f(s)`).
    pub(crate) fn box_source(&self) -> String {
        let mut out = String::from(SHIFT_RHAI);
        for (k, o) in self.ops.iter().enumerate() {
            out.push_str(&format!("fn op{k}(s) {{\n  {}\n}}\n", o.rhai));
        }
        let call = (0..self.ops.len()).fold("s".to_string(), |acc, k| format!("op{}({acc})", self.ops.len() - 1 - k));
        out.push_str(&format!("fn f(s) {{\n  {call}\n}}\n"));
        out
    }
}
