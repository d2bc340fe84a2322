//! Source text to AST: runs the pest grammar, folds operators with a Pratt
//! parser, decodes string escapes, and turns pest failures into
//! [`SyntaxError`]s worded for people (and LLMs), not in rule names.

use pest::Parser;

use crate::ast::*;
use crate::error::SyntaxError;

mod brackets;
mod builder;
mod errors;
mod recover;
use brackets::*;
use builder::*;
use errors::*;
pub use recover::parse_all;

#[derive(pest_derive::Parser)]
#[grammar = "assay.pest"]
struct AssayParser;

/// Scripts larger than this are refused before parsing.
pub const MAX_SOURCE_BYTES: usize = 1 << 20;

/// Deepest nesting of brackets, blocks and interpolations accepted.
pub const MAX_NESTING: usize = 64;

/// Deepest expression tree accepted (long operator chains nest too).
pub const MAX_EXPR_DEPTH: usize = 256;

/// Parses a whole script.
pub fn parse(source: &str) -> Result<Program, SyntaxError> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(SyntaxError::new(
            "script too large",
            Span::new(0, 0),
            format!("{} bytes, more than the limit of {MAX_SOURCE_BYTES}", source.len()),
        )
        .with_help("split the experiment into smaller scripts, or move data into files it reads"));
    }
    check_nesting(source)?;
    pest::set_error_detail(true);
    let mut pairs = AssayParser::parse(Rule::program, source)
        .map_err(|e| unbalanced(source).unwrap_or_else(|| convert_error(source, e)))?;
    let program = pairs.next().ok_or_else(|| SyntaxError::internal("empty parse"))?;
    let mut b = Builder { depth: 0 };
    let stmts = b.stmts(program.into_inner())?;
    Ok(Program { stmts })
}
