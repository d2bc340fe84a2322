//! Help for names, methods and fields that habits from Python (and
//! JavaScript) bring: the Assay form of what was written, as the help line
//! of the checker's error.

/// For an unknown name.
pub(super) fn name(n: &str) -> Option<&'static str> {
    Some(match n {
        "True" => "Assay writes `true`",
        "False" => "Assay writes `false`",
        "None" | "null" | "nil" | "undefined" => "Assay writes `none`",
        "print" | "console" | "println" => "show a value with the statement `show \"title\", value` (it goes to the report and back to you)",
        "f" | "rf" | "fr" => "if this is an f-string, Assay strings interpolate without a prefix: `\"x is {x}\"`",
        "import" | "from" | "require" => "Assay has no imports: its tools are built in (`assay tools` lists them), and `use \"helpers.rhai\" as h` loads rhai functions",
        "int" => "`floor(x)` (or `round(x)`) makes a whole number; `num(s)` parses text",
        "float" => "numbers are all floats; `num(s)` parses text",
        "np" | "numpy" | "torch" => "tensors are built in: `tensor([[1, 2], [3, 4]])`, `zeros([2, 3])`, and tools such as `mean(t, axis: 0)` work on them",
        "self" | "this" => "Assay has no objects or methods of your own: write a function `fn f(x) { ... }`",
        _ => return None,
    })
}

/// For a method that no tool provides (`x.NAME(...)`).
pub(super) fn method(n: &str) -> Option<&'static str> {
    Some(match n {
        "append" | "push" => "lists are values: `xs += [x]` adds an item (`xs = xs + [x]`)",
        "extend" | "concat" => "`xs + ys` joins two lists (`xs += ys`)",
        "items" => "`keys(r)` and `values(r)` give a record's names and values; `zip(keys(r), values(r))` pairs them",
        "get" => "read a field with `r.name`; a name not known until run time with `r[name]`",
        "format" => "strings interpolate: `\"{x} and {y}\"`",
        "startswith" => "`starts_with(s, prefix)`",
        "endswith" => "`ends_with(s, suffix)`",
        "length" | "size" => "`len(xs)`",
        _ => return None,
    })
}

/// For a field that a value does not have (`x.NAME`).
pub(super) fn field(n: &str) -> Option<&'static str> {
    Some(match n {
        "length" | "size" | "len" | "count" => "`len(xs)` counts items (`xs.len()` works too)",
        "T" => "Assay has no transpose; `reshape(t, [..])` changes a shape without moving data",
        _ => return None,
    })
}
