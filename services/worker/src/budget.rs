//! Room in the spool for the files in flight: a job is admitted only if its file fits beside the
//! others (checked before the download, from the job's size and the staged object's HEAD).
//!
//! The free space is the file system's (`statvfs`), capped by `worker.spool_max_bytes` where the
//! file system cannot tell (a Kubernetes `emptyDir` size limit is not visible to `statvfs`), less
//! what the jobs in flight in this worker have reserved and not written yet. A file larger than
//! the whole spool can never be taken by this worker: the job is dead-lettered at once as
//! `too_large_for_spool` with the bytes kept. One that only does not fit now waits (a delayed
//! retry that spends no retry) and may go to a worker with room.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What the spool can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// It fits now.
    Admit,
    /// It fits once other files are gone.
    NotNow { free: u64 },
    /// It is larger than the whole spool.
    Never { capacity: u64 },
}

/// The decision, from plain numbers: `capacity` of the spool, `available` on the file system now,
/// `reserved` by the jobs in flight and not yet on disk.
pub fn admit(size: u64, capacity: u64, available: u64, reserved: u64) -> Admission {
    if size > capacity {
        return Admission::Never { capacity };
    }
    let free = available.saturating_sub(reserved);
    if size <= free { Admission::Admit } else { Admission::NotNow { free } }
}

/// Sizes of the file system holding `dir`: (total, available to this user), in bytes.
pub fn fs_space(dir: &Path) -> std::io::Result<(u64, u64)> {
    std::fs::create_dir_all(dir)?;
    let s = rustix::fs::statvfs(dir).map_err(std::io::Error::from)?;
    Ok((s.f_blocks.saturating_mul(s.f_frsize), s.f_bavail.saturating_mul(s.f_frsize)))
}

/// The spool's budget in one worker.
#[derive(Debug, Clone)]
pub struct SpoolBudget {
    dir: PathBuf,
    /// `worker.spool_max_bytes`: a cap where `statvfs` does not see the real limit.
    max_bytes: Option<u64>,
    /// Bytes promised to jobs in flight (the files grow towards them while downloading).
    reserved: Arc<Mutex<u64>>,
}

/// Space held for one job until it is dropped.
#[derive(Debug)]
pub struct Reservation {
    bytes: u64,
    reserved: Arc<Mutex<u64>>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut r = self.reserved.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *r = r.saturating_sub(self.bytes);
    }
}

impl SpoolBudget {
    pub fn new(dir: PathBuf, max_bytes: Option<u64>) -> Self {
        Self { dir, max_bytes, reserved: Arc::new(Mutex::new(0)) }
    }

    /// Admits a file of `size` bytes, reserving its room, or says why not.
    pub fn reserve(&self, size: u64) -> std::io::Result<Result<Reservation, Admission>> {
        let (total, available) = fs_space(&self.dir)?;
        let mut reserved = self.reserved.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // The files already spooled by this worker use file-system space and count in
        // `available`; a cap counts them through `reserved` (they hold their reservation).
        let (capacity, available) = match self.max_bytes {
            Some(cap) => (cap.min(total), available.min(cap)),
            None => (total, available),
        };
        match admit(size, capacity, available, *reserved) {
            Admission::Admit => {
                *reserved += size;
                Ok(Ok(Reservation { bytes: size, reserved: self.reserved.clone() }))
            }
            other => Ok(Err(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_admitted_only_beside_what_is_in_flight() {
        assert_eq!(admit(10, 100, 100, 0), Admission::Admit);
        assert_eq!(admit(100, 100, 100, 0), Admission::Admit);
        assert_eq!(admit(60, 100, 100, 50), Admission::NotNow { free: 50 });
        assert_eq!(admit(50, 100, 100, 50), Admission::Admit);
        assert_eq!(admit(10, 100, 5, 0), Admission::NotNow { free: 5 });
        assert_eq!(admit(10, 100, 5, 20), Admission::NotNow { free: 0 });
        assert_eq!(admit(0, 100, 0, 0), Admission::Admit);
    }

    #[test]
    fn a_file_larger_than_the_spool_is_never_admitted() {
        assert_eq!(admit(101, 100, 100, 0), Admission::Never { capacity: 100 });
        assert_eq!(admit(u64::MAX, 100, 100, 0), Admission::Never { capacity: 100 });
    }

    #[test]
    fn reservations_hold_room_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let budget = SpoolBudget::new(dir.path().to_path_buf(), Some(1000));
        let a = budget.reserve(600).unwrap().unwrap();
        assert_eq!(budget.reserve(600).unwrap().unwrap_err(), Admission::NotNow { free: 400 });
        assert!(matches!(budget.reserve(1001).unwrap(), Err(Admission::Never { capacity: 1000 })));
        drop(a);
        assert!(budget.reserve(600).unwrap().is_ok());
    }
}
