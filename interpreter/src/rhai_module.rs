//! A compiled rhai file bound to an alias, as values hold it. Loading and
//! calling it (and converting values to and from rhai's) is
//! `rhai_bridge.rs`; the type is here so that values do not depend on the
//! bridge, which depends on them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use rhai::{Engine, AST};

use crate::diag::SourceFile;

/// A compiled rhai file bound to an alias.
pub struct RhaiModule {
    pub alias: String,
    pub path: PathBuf,
    /// The path as the script wrote it.
    pub path_display: String,
    pub digest: String,
    pub source: Arc<SourceFile>,
    /// Function name -> parameter names (overloads by arity are allowed).
    pub functions: BTreeMap<String, Vec<Vec<String>>>,
    /// A black box (an agent's task): callable, never readable. Its errors
    /// name the call but show no line of its source.
    pub opaque: bool,
    pub(crate) engine: Engine,
    pub(crate) ast: AST,
}

impl std::fmt::Debug for RhaiModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RhaiModule({} from {})", self.alias, self.path_display)
    }
}
