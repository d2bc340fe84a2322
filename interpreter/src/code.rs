//! Every diagnostic code Assay emits, in one enum. A code is the stable
//! name an LLM, a script or a test matches on (`--json` gives it with each
//! diagnostic, `assay codes` lists them), so call sites name a variant,
//! never a string; `Code::ALL` lists them in the order the docs do
//! (docs/language.md's table is checked against it).

macro_rules! codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal, $about:literal;)*) => {
        /// A diagnostic's stable code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Code {
            /// Every code, in the order the docs list them.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The code as diagnostics print it, e.g. `assay::type`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)*
                }
            }

            /// What the code means, in one line (lower case, no full stop).
            pub const fn about(self) -> &'static str {
                match self {
                    $(Code::$variant => $about,)*
                }
            }
        }
    };
}

codes! {
    /// The script does not parse.
    Syntax = "assay::syntax", "the script does not parse";
    /// A value of the wrong type for an operator, statement or argument.
    Type = "assay::type", "a value of the wrong type for an operator, statement or argument";
    /// A name that is not defined.
    UnknownName = "assay::unknown-name", "a name that is not defined";
    /// A call of a tool or function that does not exist.
    UnknownTool = "assay::unknown-tool", "a call of a tool or function that does not exist";
    /// A module that has no function of that name.
    UnknownFunction = "assay::unknown-function", "a module that has no function of that name";
    /// A named argument the function does not take.
    UnknownArgument = "assay::unknown-argument", "a named argument the function does not take";
    /// A required argument not given.
    MissingArgument = "assay::missing-argument", "a required argument not given";
    /// Too many arguments.
    ArgumentCount = "assay::argument-count", "too many arguments";
    /// An argument given twice.
    DuplicateArgument = "assay::duplicate-argument", "an argument given twice";
    /// A named argument where only positional ones are allowed (rhai functions).
    NamedArgument = "assay::named-argument", "a named argument where only positional ones are allowed (rhai functions)";
    /// A parameter without a default after one with a default.
    ParamOrder = "assay::param-order", "a parameter without a default after one with a default";
    /// A call of a value that is not a function.
    NotCallable = "assay::not-callable", "a call of a value that is not a function";
    /// A field that the value does not have.
    NoField = "assay::no-field", "a field that the value does not have";
    /// An index out of range.
    Index = "assay::index", "an index out of range";
    /// Tensor shapes that do not broadcast.
    Shape = "assay::shape", "tensor shapes that do not broadcast";
    /// A value over a size limit (strings, lists, tensors).
    TooLarge = "assay::too-large", "a value over a size limit (strings, lists, tensors)";
    /// A name defined twice in one scope.
    Duplicate = "assay::duplicate", "a name defined twice in one scope";
    /// A `record` name used twice in a run.
    DuplicateRecord = "assay::duplicate-record", "a `record` name used twice in a run";
    /// A recorded value nested too deeply.
    RecordTooDeep = "assay::record-too-deep", "a recorded value nested too deeply";
    /// An assignment that is not allowed (a module, an undefined name).
    Assign = "assay::assign", "an assignment that is not allowed (a module, an undefined name)";
    /// `return`, `break` or `continue` outside a function or loop.
    Misplaced = "assay::misplaced", "`return`, `break` or `continue` outside a function or loop";
    /// `seed` given twice, not first, or not a whole number.
    Seed = "assay::seed", "`seed` given twice, not first, or not a whole number";
    /// Functions calling each other too deeply.
    Recursion = "assay::recursion", "functions calling each other too deeply";
    /// A `use` whose rhai file cannot be loaded.
    Use = "assay::use", "a `use` whose rhai file cannot be loaded";
    /// A rhai file that does not parse.
    RhaiSyntax = "assay::rhai-syntax", "a rhai file that does not parse";
    /// A rhai function that failed.
    Rhai = "assay::rhai", "a rhai function that failed";
    /// A value that cannot cross between Assay and rhai.
    RhaiValue = "assay::rhai-value", "a value that cannot cross between Assay and rhai";
    /// A black box (a task's hidden function) that failed on its arguments.
    BlackBox = "assay::black-box", "a black box (a task's hidden function) that failed on its arguments";
    /// A tool that failed on its arguments.
    Tool = "assay::tool", "a tool that failed on its arguments";
    /// Any other error while the script runs.
    Runtime = "assay::runtime", "any other error while the script runs";
    /// A note: where the failing function was called.
    CalledFrom = "assay::called-from", "a note: where the failing function was called";
    /// A bad command line or an unusable setup.
    Usage = "assay::usage", "a bad command line or an unusable setup";
    /// The run used more memory than `--memory`.
    BudgetMemory = "assay::budget-memory", "the run used more memory than `--memory`";
    /// The run took longer than `--timeout`.
    BudgetTime = "assay::budget-time", "the run took longer than `--timeout`";
    /// The run wrote more into its run folder than `--disk`.
    BudgetDisk = "assay::budget-disk", "the run wrote more into its run folder than `--disk`";
    /// The run overflowed its stack.
    BudgetStack = "assay::budget-stack", "the run overflowed its stack";
    /// The run was stopped by a signal to Assay (Ctrl-C, `kill`, the scheduler).
    Interrupted = "assay::interrupted", "the run was stopped by a signal to Assay (Ctrl-C, `kill`, the scheduler)";
    /// The sandboxed run ended unexpectedly.
    Crashed = "assay::crashed", "the sandboxed run ended unexpectedly";
    /// A warning: a call whose result is thrown away (tools change nothing).
    DiscardedResult = "assay::discarded-result", "a warning: a tool call whose result is thrown away (tools return new values and change nothing)";
    /// A warning: `${` in a backtick string, which never interpolates.
    RawInterpolation = "assay::raw-interpolation", "a warning: `${` in a backtick string, which never interpolates";
    /// A warning: `for i, x in enumerate(xs)`, where `x` is the pair.
    NumberedTwice = "assay::numbered-twice", "a warning: `for i, x in enumerate(xs)`, where `x` is each `[i, item]` pair, not the item";
    /// A warning: a tool that needs a setting the run does not have.
    NotConfigured = "assay::not-configured", "a warning: a tool that needs an environment setting the run does not have";
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    #[test]
    fn codes_are_distinct_and_named_in_the_assay_namespace() {
        let mut names: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert!(names.iter().all(|n| n.starts_with("assay::") && !n.contains(char::is_whitespace)));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Code::ALL.len(), "two codes share a name");
        assert!(Code::ALL.iter().all(|c| !c.about().is_empty() && !c.about().ends_with('.')));
        assert_eq!(Code::Type, "assay::type");
    }
}
