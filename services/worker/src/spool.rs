//! Spool files: the local copies of staged objects that the probe reads.
//!
//! Several workers may share one spool directory (processes on one host, or the workers of the
//! integration tests in one process), and a worker clears what a killed one left behind when it
//! starts. So a spool file is owned through an exclusive advisory lock (`flock`) held for as long
//! as its job has it open: the kernel drops the lock when the owner closes the file or dies, and
//! the clean-up removes only files whose lock it can take. Without it, one worker starting would
//! delete the file another worker is probing.

use std::fs::TryLockError;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use tempfile::NamedTempFile;

/// Name prefix of every spool file; nothing else in the directory is touched.
const PREFIX: &str = "staged-";
/// Attempts at creating a locked file before giving up (each lost race costs one).
const CREATE_ATTEMPTS: usize = 8;

/// A new, empty spool file in `dir`, locked by this process until it is dropped (then deleted).
pub fn create(dir: &Path) -> io::Result<NamedTempFile> {
    std::fs::create_dir_all(dir)?;
    for _ in 0..CREATE_ATTEMPTS {
        let file = NamedTempFile::with_prefix_in(PREFIX, dir)?;
        match file.as_file().try_lock() {
            Ok(()) => {}
            // Another worker's clean-up holds it: it is about to be removed; take another.
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(e)) => return Err(e),
        }
        // A clean-up may have locked and unlinked it between its creation and our lock.
        if still_named(&file)? {
            return Ok(file);
        }
    }
    Err(io::Error::other(format!(
        "could not create a locked spool file in {} after {CREATE_ATTEMPTS} tries",
        dir.display()
    )))
}

fn still_named(file: &NamedTempFile) -> io::Result<bool> {
    let held = file.as_file().metadata()?;
    match std::fs::metadata(file.path()) {
        Ok(named) => Ok(named.ino() == held.ino() && named.dev() == held.dev()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes the spool files no live worker holds (left by a killed one; its jobs are redelivered).
/// Returns how many it removed.
pub fn clear_stale(dir: &Path) -> io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        let Ok(file) = std::fs::File::open(entry.path()) else { continue }; // gone meanwhile
        if file.try_lock().is_ok() && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clean_up_keeps_files_in_use_and_removes_abandoned_ones() {
        let dir = tempfile::tempdir().unwrap();
        let in_use = create(dir.path()).unwrap();
        // What a killed worker leaves: a spool file nobody holds.
        let abandoned = dir.path().join("staged-left-behind");
        std::fs::write(&abandoned, b"partial download").unwrap();
        let unrelated = dir.path().join("notes.txt");
        std::fs::write(&unrelated, b"not a spool file").unwrap();

        assert_eq!(clear_stale(dir.path()).unwrap(), 1);
        assert!(in_use.path().exists(), "a file another worker holds survives its clean-up");
        assert!(!abandoned.exists());
        assert!(unrelated.exists());

        let path = in_use.path().to_path_buf();
        drop(in_use); // the job is done (or its worker died): the lock goes with the file
        assert!(!path.exists());
        assert_eq!(clear_stale(dir.path()).unwrap(), 0);
    }

    #[test]
    fn a_file_whose_owner_closed_it_without_deleting_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let (file, path) = create(dir.path()).unwrap().keep().unwrap();
        assert_eq!(clear_stale(dir.path()).unwrap(), 0, "locked while open");
        drop(file); // as when the process dies: the kernel releases the lock
        assert_eq!(clear_stale(dir.path()).unwrap(), 1);
        assert!(!path.exists());
    }
}
