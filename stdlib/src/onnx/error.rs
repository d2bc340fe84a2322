//! What can go wrong in the model layer, by kind. A tool decides which of its
//! arguments to blame from the kind ([`ModelError::blame`]), never from the
//! message's text.

use std::fmt;

use assay_interpreter::{Name, ToolError};

/// An error of the model layer (`graph.rs`, `model.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelError {
    /// The feeds: an input missing or unknown, of a shape or element type
    /// the model does not take, or longer than its position table.
    Input(String),
    /// A tensor name the graph does not have (the name).
    UnknownTensor(String),
    /// A tensor the graph has but that cannot be used so: a graph input or
    /// an integer tensor patched, a weight added to.
    Tensor { name: String, message: String },
    /// The model itself: a file that does not decode, external weights that
    /// are missing, an opset too old for a rewrite, a graph ONNX Runtime
    /// refuses to load.
    Graph(String),
    /// ONNX Runtime failed while running, or an earlier call failed midway.
    Runtime(String),
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::UnknownTensor(name) => write!(f, "the model has no tensor `{name}`"),
            ModelError::Input(m)
            | ModelError::Tensor { message: m, .. }
            | ModelError::Graph(m)
            | ModelError::Runtime(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ModelError {}

impl ModelError {
    /// The tool error, blamed by kind: a feed's error on parameter
    /// `inputs`, a tensor's on parameter `tensors` (with the closest name
    /// the model has, for an unknown one); the model's own and the
    /// runtime's errors on no argument.
    /// `names` are the model's tensors (see `Model::blame`).
    pub fn blame(self, inputs: Name, tensors: Name, names: &[String]) -> ToolError {
        match self {
            ModelError::Input(m) => ToolError::arg(inputs, m),
            ModelError::UnknownTensor(ref name) => {
                let help = match assay_interpreter::closest(name, names.iter().map(String::as_str)) {
                    Some(c) => format!("did you mean `{c}`? `inspect(model)` lists the tensors"),
                    None => "`inspect(model)` or `assay inspect FILE` lists the tensors".into(),
                };
                ToolError::arg(tensors, self.to_string()).help(help)
            }
            ModelError::Tensor { message, .. } => ToolError::arg(tensors, message),
            ModelError::Graph(m) | ModelError::Runtime(m) => ToolError::new(m),
        }
    }

    /// The tensor the error is about, if it is about one.
    pub fn tensor(&self) -> Option<&str> {
        match self {
            ModelError::UnknownTensor(name) | ModelError::Tensor { name, .. } => Some(name),
            _ => None,
        }
    }
}
