use std::path::Path;

use super::*;

/// `root/inside/` is the script's folder; `root/outside/secret.txt` is not allowed.
fn setup() -> (tempfile::TempDir, Sandbox) {
    let t = tempfile::tempdir().expect("tempdir");
    let inside = t.path().join("inside");
    std::fs::create_dir_all(inside.join("data/sub")).expect("mkdir");
    std::fs::create_dir_all(t.path().join("outside")).expect("mkdir");
    std::fs::write(t.path().join("outside/secret.txt"), b"secret").expect("write");
    std::fs::write(t.path().join("outside/x.png"), b"png").expect("write");
    std::fs::write(inside.join("data/a.png"), b"a").expect("write");
    std::fs::write(inside.join("data/sub/b.png"), b"b").expect("write");
    let sb = Sandbox::new(&inside, &[]).expect("sandbox");
    (t, sb)
}

#[test]
fn reads_inside_and_refuses_outside_by_any_spelling() {
    let (t, sb) = setup();
    assert_eq!(sb.read("data/a.png").expect("read").1, b"a");
    for p in ["../outside/secret.txt", "data/../../outside/secret.txt"] {
        assert!(matches!(sb.read(p), Err(SandboxError::Outside { .. })), "{p}");
    }
    let abs = t.path().join("outside/secret.txt");
    assert!(matches!(sb.read(&abs.display().to_string()), Err(SandboxError::Outside { .. })));
    assert!(matches!(sb.read("/etc/passwd"), Err(SandboxError::Outside { .. })));
    assert!(sb.read("data/a.png\0x").is_err());
}

#[test]
fn a_symlink_out_of_the_roots_is_refused_at_the_opened_file() {
    let (t, sb) = setup();
    let link = sb.base().join("data/link.txt");
    std::os::unix::fs::symlink(t.path().join("outside/secret.txt"), &link).expect("symlink");
    assert!(matches!(sb.read("data/link.txt"), Err(SandboxError::Outside { .. })));
    // A symlinked folder leading out is refused the same way.
    std::os::unix::fs::symlink(t.path().join("outside"), sb.base().join("data/out")).expect("symlink");
    assert!(matches!(sb.read("data/out/secret.txt"), Err(SandboxError::Outside { .. })));
}

#[test]
fn only_regular_files_are_read_and_a_fifo_does_not_hang() {
    let (_t, sb) = setup();
    assert!(matches!(sb.read("data"), Err(SandboxError::NotAFile { what: "a folder", .. })));
    let fifo = sb.base().join("data/pipe");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(status.success());
    let started = std::time::Instant::now();
    assert!(matches!(sb.read("data/pipe"), Err(SandboxError::NotAFile { what: "a pipe", .. })));
    assert!(started.elapsed().as_secs() < 5);
}

#[test]
fn the_size_is_checked_before_reading() {
    let (_t, sb) = setup();
    let big = sb.base().join("data/big.bin");
    let f = std::fs::File::create(&big).expect("create");
    // A sparse 5 GiB file: reading it would cost 5 GiB; the check costs nothing.
    f.set_len(5 << 30).expect("set_len");
    match sb.read("data/big.bin") {
        Err(SandboxError::TooLarge { size, limit, .. }) => {
            assert_eq!(size, 5 << 30);
            assert_eq!(limit, MAX_READ_BYTES);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(matches!(sb.read_limited("data/a.png", 0), Err(SandboxError::TooLarge { .. })));
}

#[test]
fn globs_stay_inside_whatever_the_pattern() {
    let (_t, sb) = setup();
    let names = |p: &str| sb.glob(p).map(|v| v.into_iter().map(|(n, _)| n).collect::<Vec<_>>());
    assert_eq!(names("data/*.png").expect("glob"), vec!["data/a.png"]);
    assert_eq!(names("data/**/*.png").expect("glob"), vec!["data/a.png", "data/sub/b.png"]);
    assert_eq!(names("./data/sub/b.png").expect("glob"), vec!["data/sub/b.png"]);
    // `.?` and `.*` would match `..` in a glob that follows the spelling; here they match nothing.
    for p in [".?/outside/*.png", ".*/outside/*.png", ".?/.?/.?/**/*.txt", "*/../../outside/*", "/etc/*"] {
        match sb.glob(p) {
            Ok(v) => assert!(v.is_empty(), "{p} matched {v:?}"),
            Err(e) => {
                assert!(matches!(e, SandboxError::BadPattern { .. } | SandboxError::Outside { .. }), "{p}: {e:?}")
            }
        }
    }
}

#[test]
fn a_symlink_loop_does_not_hang_a_glob() {
    let (_t, sb) = setup();
    let d = sb.base().join("data");
    std::os::unix::fs::symlink(".", d.join("a")).expect("symlink");
    std::os::unix::fs::symlink(".", d.join("b")).expect("symlink");
    std::os::unix::fs::symlink("/", d.join("root")).expect("symlink");
    let started = std::time::Instant::now();
    let found = sb.glob("**/*.png").expect("glob");
    assert!(started.elapsed().as_secs() < 5);
    let names: Vec<_> = found.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["data/a.png", "data/sub/b.png"]);
    assert!(found.iter().all(|(_, real)| real.starts_with(sb.base())));
}

#[test]
fn a_folder_swapped_for_a_symlink_during_reads_never_leaks() {
    // A second thread swaps `data/sub` between a real folder and a symlink
    // to the outside as fast as it can, while this one reads through it.
    let (t, sb) = setup();
    let sub = sb.base().join("data/sub");
    let spare = sb.base().join("data/sub-real");
    std::fs::write(t.path().join("outside/b.png"), b"SECRET").expect("write");
    let outside = t.path().join("outside");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (sub, spare, outside, stop) = (sub.clone(), spare.clone(), outside.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::rename(&sub, &spare);
                let _ = std::os::unix::fs::symlink(&outside, &sub);
                let _ = std::fs::remove_file(&sub);
                let _ = std::fs::rename(&spare, &sub);
            }
        })
    };
    let mut leaked = 0;
    for _ in 0..2000 {
        if let Ok((_, bytes)) = sb.read("data/sub/b.png") {
            if bytes == b"SECRET" {
                leaked += 1;
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = swapper.join();
    assert_eq!(leaked, 0);
    let _ = Path::new(&spare);
}
