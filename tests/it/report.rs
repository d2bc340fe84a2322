//! report.html seen as a person sees it: rendered by headless Chromium, the
//! shown images must be there, at their size. Chromium comes from Debian
//! (.ci/run installs it); without it `tests/outside.rs` reports the test as
//! ignored, and fails it where ASSAY_REQUIRE_BROWSER=1 (CI).

use std::path::PathBuf;
use std::process::Command;

use crate::support::{runs_of, temp_with, Test};

pub(crate) fn chromium() -> Option<PathBuf> {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(o) = Command::new("which").arg(c).output() {
            if o.status.success() {
                return Some(PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
            }
        }
    }
    None
}

pub(crate) fn report_renders_its_images_in_a_browser() {
    let browser = chromium().expect("headless Chromium (apt-get install chromium)");
    let dir = temp_with(&[(
        "r.assay",
        "show \"a red square\", svg(`<svg viewBox=\"0 0 10 10\"><rect width=\"10\" height=\"10\" fill=\"#ff0000\"/></svg>`, width: 120)\n\
         show \"bars\", plot(\"bar\", [3, 1, 2])\n\
         record \"n\", 1\n",
    )]);
    assert_eq!(Test::new(dir.path()).args(["run", "r.assay"]).run().code, 0);
    let report = runs_of(dir.path(), "r")[0].join("report.html");
    let shot = dir.path().join("shot.png");
    let profile = dir.path().join("profile");
    let out = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--window-size=1200,1400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", report.display()))
        .output()
        .expect("run chromium");
    assert!(shot.is_file(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    let img = image::open(&shot).expect("screenshot").to_rgb8();
    let count = |rgb: [u8; 3], tol: i32| {
        img.pixels().filter(|p| p.0.iter().zip(rgb).all(|(a, b)| (*a as i32 - b as i32).abs() <= tol)).count()
    };
    // The square is shown at its natural 120 x 120 pixels.
    let red = count([255, 0, 0], 8);
    assert!((120 * 120 * 9 / 10..=120 * 120 * 11 / 10).contains(&red), "red square pixels: {red}");
    // The bar plot (#3b6ea5) is on the page too.
    let blue = count([0x3b, 0x6e, 0xa5], 8);
    assert!(blue > 5_000, "bar plot pixels: {blue}");
}
