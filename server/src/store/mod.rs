//! The store file from the operator's side: what `start` says when `files.store` cannot be
//! opened, and `pushman store check`.

pub(crate) mod health;
pub(crate) mod journal;
pub(crate) mod schedule;

pub(crate) use health::Store;
use schedule::{Schedule, ScheduleError};
use std::path::Path;

/// Opens `files.store` for `start`.
///
/// # Errors
/// One line naming the file, what is wrong and what to do (see [`open_error`]).
pub(crate) fn open(path: &Path) -> Result<Store, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "{} (directory of files.store) cannot be created: {e}",
                dir.display()
            )
        })?;
    }
    Store::open(path).map_err(|e| open_error(path, &e))
}

/// Cluster mode: scheduled pushes live in Redis, so `files.store` is neither created nor
/// opened (nor locked); an empty schedule in memory stands in for it.
///
/// # Errors
/// None in practice (redb in memory); reported like [`open`]'s.
pub(crate) fn unused() -> Result<Store, String> {
    let path = Path::new("(unused: cluster mode keeps scheduled pushes in Redis)");
    Store::with_opener(
        path,
        Box::new(|| Schedule::open_backend(redb::backends::InMemoryBackend::new())),
    )
    .map_err(|e| open_error(path, &e))
}

/// What to tell the operator when the store at `path` failed to open with `e`.
pub(crate) fn open_error(path: &Path, e: &ScheduleError) -> String {
    let file = path.display();
    if matches!(e, ScheduleError::Locked) {
        format!("{file} (files.store) is locked: another pushman probably uses it; stop it, or give this one its own files.store")
    } else if e.is_corruption() {
        format!("{file} (files.store) is damaged ({e}); `pushman store check` reports it; move the file aside to start with an empty schedule (its pending pushes are lost)")
    } else {
        format!("{file} (files.store): {e}")
    }
}

/// `pushman store check`: opens the store (redb's integrity check of every page) and reads
/// every entry back. The daemon must be stopped: a running one holds the file's lock.
///
/// # Errors
/// One line: locked, damaged (with what to do) or unreadable; or how many entries do not
/// decode.
pub(crate) fn check(path: &Path) -> Result<String, String> {
    if !path.exists() {
        return Err(format!(
            "{} (files.store) does not exist (no push was ever scheduled, or the path is wrong)",
            path.display()
        ));
    }
    let schedule = Schedule::open(path).map_err(|e| match e {
        ScheduleError::Locked => format!(
            "{} (files.store) is in use, by a running pushman probably: its `pushman status` shows the store's health",
            path.display()
        ),
        e => open_error(path, &e),
    })?;
    let len = schedule.len();
    let entries = schedule
        .list(usize::MAX)
        .map_err(|e| format!("{}: {len} entries, but: {e}", path.display()))?;
    let next = entries.first().map_or_else(
        || "none pending".to_owned(),
        |(id, at_ms, _)| format!("next: id {id} at_ms {at_ms}"),
    );
    let inbox = journal::check(schedule.db()).map_or(String::new(), |line| format!("; {line}"));
    Ok(format!(
        "{}: ok, every page verified, {len} scheduled pushes ({next}){inbox}",
        path.display()
    ))
}
