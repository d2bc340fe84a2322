//! Every diagnostic code Assay emits, in one place. A code is the stable
//! name an LLM, a script or a test matches on (`--json` gives it with each
//! diagnostic), so call sites name a constant here, never a string;
//! `ALL` documents them (docs/language.md's table is checked against it).

/// The script does not parse.
pub const SYNTAX: &str = "assay::syntax";
/// A value of the wrong type for an operator, statement or argument.
pub const TYPE: &str = "assay::type";
/// A name that is not defined.
pub const UNKNOWN_NAME: &str = "assay::unknown-name";
/// A call of a tool or function that does not exist.
pub const UNKNOWN_TOOL: &str = "assay::unknown-tool";
/// A module that has no function of that name.
pub const UNKNOWN_FUNCTION: &str = "assay::unknown-function";
/// A named argument the function does not take.
pub const UNKNOWN_ARGUMENT: &str = "assay::unknown-argument";
/// A required argument not given.
pub const MISSING_ARGUMENT: &str = "assay::missing-argument";
/// Too many arguments.
pub const ARGUMENT_COUNT: &str = "assay::argument-count";
/// An argument given twice.
pub const DUPLICATE_ARGUMENT: &str = "assay::duplicate-argument";
/// A named argument where only positional ones are allowed (rhai functions).
pub const NAMED_ARGUMENT: &str = "assay::named-argument";
/// A parameter without a default after one with a default.
pub const PARAM_ORDER: &str = "assay::param-order";
/// A call of a value that is not a function.
pub const NOT_CALLABLE: &str = "assay::not-callable";
/// A field that the value does not have.
pub const NO_FIELD: &str = "assay::no-field";
/// An index out of range.
pub const INDEX: &str = "assay::index";
/// Tensor shapes that do not broadcast.
pub const SHAPE: &str = "assay::shape";
/// A value over a size limit (strings, lists, tensors).
pub const TOO_LARGE: &str = "assay::too-large";
/// A name defined twice in one scope.
pub const DUPLICATE: &str = "assay::duplicate";
/// A `record` name used twice in a run.
pub const DUPLICATE_RECORD: &str = "assay::duplicate-record";
/// A recorded value nested too deeply.
pub const RECORD_TOO_DEEP: &str = "assay::record-too-deep";
/// An assignment that is not allowed (a module, an undefined name).
pub const ASSIGN: &str = "assay::assign";
/// `return`, `break` or `continue` outside a function or loop.
pub const MISPLACED: &str = "assay::misplaced";
/// `seed` given twice, not first, or not a whole number.
pub const SEED: &str = "assay::seed";
/// Functions calling each other too deeply.
pub const RECURSION: &str = "assay::recursion";
/// A `use` whose rhai file cannot be loaded.
pub const USE: &str = "assay::use";
/// A rhai file that does not parse.
pub const RHAI_SYNTAX: &str = "assay::rhai-syntax";
/// A rhai function that failed.
pub const RHAI: &str = "assay::rhai";
/// A value that cannot cross between Assay and rhai.
pub const RHAI_VALUE: &str = "assay::rhai-value";
/// A black box (a task's hidden function) that failed on its arguments.
pub const BLACK_BOX: &str = "assay::black-box";
/// A tool that failed on its arguments.
pub const TOOL: &str = "assay::tool";
/// Any other error while the script runs.
pub const RUNTIME: &str = "assay::runtime";
/// A note: where the failing function was called.
pub const CALLED_FROM: &str = "assay::called-from";
/// A bad command line or an unusable setup.
pub const USAGE: &str = "assay::usage";
/// The run used more memory than `--memory`.
pub const BUDGET_MEMORY: &str = "assay::budget-memory";
/// The run took longer than `--timeout`.
pub const BUDGET_TIME: &str = "assay::budget-time";
/// The run overflowed its stack.
pub const BUDGET_STACK: &str = "assay::budget-stack";
/// The sandboxed run ended unexpectedly.
pub const CRASHED: &str = "assay::crashed";

/// Every code with what it means, in the order the docs list them.
pub const ALL: &[(&str, &str)] = &[
    (SYNTAX, "the script does not parse"),
    (TYPE, "a value of the wrong type for an operator, statement or argument"),
    (UNKNOWN_NAME, "a name that is not defined"),
    (UNKNOWN_TOOL, "a call of a tool or function that does not exist"),
    (UNKNOWN_FUNCTION, "a module that has no function of that name"),
    (UNKNOWN_ARGUMENT, "a named argument the function does not take"),
    (MISSING_ARGUMENT, "a required argument not given"),
    (ARGUMENT_COUNT, "too many arguments"),
    (DUPLICATE_ARGUMENT, "an argument given twice"),
    (NAMED_ARGUMENT, "a named argument where only positional ones are allowed (rhai functions)"),
    (PARAM_ORDER, "a parameter without a default after one with a default"),
    (NOT_CALLABLE, "a call of a value that is not a function"),
    (NO_FIELD, "a field that the value does not have"),
    (INDEX, "an index out of range"),
    (SHAPE, "tensor shapes that do not broadcast"),
    (TOO_LARGE, "a value over a size limit (strings, lists, tensors)"),
    (DUPLICATE, "a name defined twice in one scope"),
    (DUPLICATE_RECORD, "a `record` name used twice in a run"),
    (RECORD_TOO_DEEP, "a recorded value nested too deeply"),
    (ASSIGN, "an assignment that is not allowed (a module, an undefined name)"),
    (MISPLACED, "`return`, `break` or `continue` outside a function or loop"),
    (SEED, "`seed` given twice, not first, or not a whole number"),
    (RECURSION, "functions calling each other too deeply"),
    (USE, "a `use` whose rhai file cannot be loaded"),
    (RHAI_SYNTAX, "a rhai file that does not parse"),
    (RHAI, "a rhai function that failed"),
    (RHAI_VALUE, "a value that cannot cross between Assay and rhai"),
    (BLACK_BOX, "a black box (a task's hidden function) that failed on its arguments"),
    (TOOL, "a tool that failed on its arguments"),
    (RUNTIME, "any other error while the script runs"),
    (CALLED_FROM, "a note: where the failing function was called"),
    (USAGE, "a bad command line or an unusable setup"),
    (BUDGET_MEMORY, "the run used more memory than `--memory`"),
    (BUDGET_TIME, "the run took longer than `--timeout`"),
    (BUDGET_STACK, "the run overflowed its stack"),
    (CRASHED, "the sandboxed run ended unexpectedly"),
];
