//! Syntax errors: a message, the span it points at, a label and a help line.
//! The source text is attached by whoever renders the error.

use crate::ast::Span;

/// A parse failure, worded for the person or model that wrote the script.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    pub message: String,
    pub span: Span,
    pub label: String,
    pub help: Option<String>,
}

impl SyntaxError {
    pub fn new(message: impl Into<String>, span: Span, label: impl Into<String>) -> Self {
        SyntaxError { message: message.into(), span, label: label.into(), help: None }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// A state the grammar should make impossible; reported, never panicked on.
    pub(crate) fn internal(what: &str) -> Self {
        SyntaxError::new(format!("internal parser error: {what}"), Span::default(), "here")
            .with_help("this is a bug in Assay; please report it with the script")
    }
}
