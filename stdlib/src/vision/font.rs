//! The one font plots draw text with: DejaVu Sans 2.37.3 (free license),
//! from a pinned npm package into Assay's cache. Nothing else is looked up
//! (no system fonts), so the same plot renders to the same pixels on every
//! machine. Drawings a script makes (`svg`) get no fonts: their text is not
//! drawn, as before, whatever the machine has.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use resvg::usvg::fontdb::Database;

use crate::fetch::{self, Pinned};

const DEJAVU: Pinned = Pinned {
    name: "dejavu-fonts-ttf",
    version: "2.37.3",
    file: "dejavu-fonts-ttf-2.37.3.tgz",
    sha256: "b7013ac58f9225250619db82cfb72e99c37ca8195f2b5a06a9e6a95bc5e1c84a",
};

/// The family name plots ask for.
pub const FAMILY: &str = "DejaVu Sans";

fn cached() -> PathBuf {
    crate::fetch::cache_dir().join("fonts").join("DejaVuSans-2.37.3.ttf")
}

/// Fetches the font into the cache (before a sandboxed run closes it).
pub fn provision() -> Result<PathBuf, String> {
    let path = cached();
    if !path.is_file() {
        let tgz = fetch::npm(&DEJAVU)?;
        let bytes = fetch::tgz_member(&tgz, "package/ttf/DejaVuSans.ttf")?;
        fetch::write_atomic(&path, &bytes)?;
    }
    Ok(path)
}

/// The font database plots use, read from the cache once.
pub fn fonts() -> Result<Arc<Database>, String> {
    static FONTS: OnceLock<Result<Arc<Database>, String>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let path = cached();
            let bytes = crate::fetch::read_cached(&path).map_err(|e| {
                format!("the plot font is not in Assay's cache ({e}); a run of a script that calls plot fetches it before the sandbox closes")
            })?;
            let mut db = Database::new();
            db.load_font_data(bytes);
            if db.faces().next().is_none() {
                return Err(format!("{} is not a font Assay can read", path.display()));
            }
            Ok(Arc::new(db))
        })
        .clone()
}
