//! The ONNX backend test suite (Debian's `libonnx-testdata`), the
//! conformance bar for every graph rewrite. Used from the system if it is
//! installed, else fetched once with `apt-get download` (sha256 pinned),
//! unpacked with `dpkg-deb`, and cached.

#![allow(
    clippy::disallowed_methods,
    reason = "provisioning: fetches, checks and reads what goes into Assay's cache, before any script runs"
)]

use std::path::PathBuf;
use std::process::Command;

const DEB: &str = "libonnx-testdata_1.12.0-2_all.deb";
const DEB_SHA256: &str = "7dc0912e02f79ece102331411a751b091bc0e191c9fb1287f8cdfbe5530f6027";
const DATA: &str = "usr/share/libonnx-testdata/data";

/// The folder holding node/, pytorch-converted/, pytorch-operator/, simple/.
pub fn onnx_testdata() -> Result<PathBuf, String> {
    let system = PathBuf::from("/").join(DATA);
    if system.join("node").is_dir() {
        return Ok(system);
    }
    let root = crate::fetch::cache_dir().join("libonnx-testdata-1.12.0");
    if root.join(DATA).join("node").is_dir() {
        return Ok(root.join(DATA));
    }
    let work = crate::fetch::cache_dir().join(format!(".libonnx-testdata-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let download =
        || Command::new("apt-get").args(["download", "libonnx-testdata=1.12.0-2"]).current_dir(&work).output();
    let mut out = download().map_err(|e| format!("apt-get is not available: {e}"))?;
    if !out.status.success() {
        // A fresh machine may have no package lists yet.
        let _ = Command::new("apt-get").arg("update").output();
        out = download().map_err(|e| e.to_string())?;
    }
    if !out.status.success() {
        return Err(format!(
            "apt-get download libonnx-testdata failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let deb = work.join(DEB);
    let bytes = std::fs::read(&deb).map_err(|e| format!("{}: {e}", deb.display()))?;
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    if digest != DEB_SHA256 {
        return Err(format!("{DEB} has sha256 {digest}, expected {DEB_SHA256}"));
    }
    let unpacked = work.join("root");
    let st =
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked).status().map_err(|e| format!("dpkg-deb: {e}"))?;
    if !st.success() {
        return Err("dpkg-deb could not unpack the package".into());
    }
    let _ = std::fs::remove_dir_all(&root);
    std::fs::rename(&unpacked, &root).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(root.join(DATA))
}
