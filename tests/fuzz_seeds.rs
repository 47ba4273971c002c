//! Replays the committed fuzz seeds (`fuzz/seeds/<target>/`) and any local crash artifacts
//! (`fuzz/artifacts/<target>/`) through the fuzz drivers on stable, so past crashes stay
//! fixed without nightly or cargo-fuzz.

#[path = "../fuzz/drivers.rs"]
mod drivers;

use std::fs;
use std::path::{Path, PathBuf};

/// The regular, non-hidden files of `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

/// Runs `driver` on every seed and artifact of `target`; there must be at least one seed.
#[track_caller]
fn replay(target: &str, driver: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let seeds = files(&root.join("seeds").join(target));
    assert!(!seeds.is_empty(), "no seeds in fuzz/seeds/{target}");
    for path in seeds
        .iter()
        .chain(&files(&root.join("artifacts").join(target)))
    {
        let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Printed only if the driver panics, naming the input to blame.
        eprintln!("replaying {}", path.display());
        driver(&data);
    }
}

#[test]
fn text_seeds() {
    replay("text", drivers::text);
}

#[test]
fn frame_seeds() {
    replay("frame", drivers::frame);
}

#[test]
fn resp_seeds() {
    replay("resp", drivers::resp);
}

#[test]
fn http_seeds() {
    replay("http", drivers::http);
}

#[test]
fn ws_handshake_seeds() {
    replay("ws_handshake", drivers::ws_handshake);
}

#[test]
fn ws_frames_seeds() {
    replay("ws_frames", drivers::ws_frames);
}
