//! The Assay language's syntax: the pest grammar, the AST with byte spans on
//! every node, and syntax diagnostics. Pure: no I/O, no knowledge of tools.

mod ast;
mod error;
mod format;
mod parse;

pub use ast::{
    Arg, BinOp, Block, Expr, ExprKind, FnBody, FnDef, Ident, Param, Program, Span, Spanned, Stmt, StmtKind, StrPart,
    UnOp,
};
pub use error::SyntaxError;
pub use format::{format, format_expr, lex, Lexeme};
pub use parse::{parse, parse_all, MAX_EXPR_DEPTH, MAX_NESTING, MAX_SOURCE_BYTES};
