//! A file still being written: the worker's spool file while its download runs (issue 8). The
//! probe read this way must give the finished file's report (R2.1: the verdict on a recording
//! rests on its bytes as archived; `tests/growing.rs`).
//!
//! The download is the one [`Producer`]: it reports how many bytes are in the file, then that the
//! file is complete, or why it never will be. Readers ([`GrowingReader`]) read with `pread` and
//! block until the bytes they ask for are there, so the probe of a faststart or fragmented file
//! runs alongside the download instead of after it (a fragmented one pushed to qtdemux from start
//! to end); a file whose index is at its end simply waits for it. A producer dropped before it completes (the download cancelled, its task gone) fails
//! the file, so no reader ever waits for bytes that will not come.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

#[derive(Debug, Clone, PartialEq)]
enum End {
    /// More bytes may come.
    Open,
    /// Everything is written: `written` is the file's size.
    Complete,
    /// The file will never be whole.
    Failed(String),
}

#[derive(Debug)]
struct State {
    written: u64,
    end: End,
}

/// How far a growing file has been written, shared by its producer and its readers.
#[derive(Debug, Clone)]
pub struct Growth {
    inner: Arc<(Mutex<State>, Condvar)>,
}

impl Growth {
    /// A new, empty growing file and the one handle that may grow it.
    pub fn new() -> (Self, Producer) {
        let growth = Self { inner: Arc::new((Mutex::new(State { written: 0, end: End::Open }), Condvar::new())) };
        (growth.clone(), Producer { growth: Some(growth.clone()) })
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        let (lock, wake) = &*self.inner;
        let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
        if state.end == End::Open {
            f(&mut state);
            wake.notify_all();
        }
    }

    /// Blocks until byte `offset` is in the file or the file is complete; returns how many bytes
    /// the file then holds (at most `offset` only once it is complete), or why it never will.
    fn wait_past(&self, offset: u64) -> std::io::Result<u64> {
        let (lock, wake) = &*self.inner;
        let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match &state.end {
                End::Failed(why) => return Err(std::io::Error::other(format!("the download failed: {why}"))),
                End::Complete => return Ok(state.written),
                End::Open if state.written > offset => return Ok(state.written),
                End::Open => state = wake.wait(state).unwrap_or_else(PoisonError::into_inner),
            }
        }
    }

    /// Whether the file is still being written (the probe's watchdog does not run meanwhile).
    pub fn is_open(&self) -> bool {
        self.inner.0.lock().unwrap_or_else(PoisonError::into_inner).end == End::Open
    }
}

/// The writer's handle. Dropped before [`Producer::complete`], it fails the file.
#[derive(Debug)]
pub struct Producer {
    growth: Option<Growth>,
}

impl Producer {
    /// The first `written` bytes are in the file (readable by another handle: flushed).
    pub fn advance(&self, written: u64) {
        if let Some(g) = &self.growth {
            g.update(|s| s.written = s.written.max(written));
        }
    }

    /// The file is whole at `size` bytes.
    pub fn complete(mut self, size: u64) {
        if let Some(g) = self.growth.take() {
            g.update(|s| {
                s.written = size;
                s.end = End::Complete;
            });
        }
    }

    /// The file will never be whole.
    pub fn fail(mut self, why: impl Into<String>) {
        if let Some(g) = self.growth.take() {
            let why = why.into();
            g.update(|s| s.end = End::Failed(why));
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        if let Some(g) = self.growth.take() {
            g.update(|s| s.end = End::Failed("abandoned before it ended".into()));
        }
    }
}

/// Reads a growing file, waiting for bytes not yet written. `size` is the size the file will
/// have (the object's `Content-Length`): seeks from the end and the probe's box walk need it.
#[derive(Debug)]
pub struct GrowingReader {
    file: File,
    growth: Growth,
    size: u64,
    pos: u64,
}

impl GrowingReader {
    /// Reads `file` (opened on the growing file's path) as `growth` says it is written.
    pub fn new(file: File, growth: Growth, size: u64) -> Self {
        Self { file, growth, size, pos: 0 }
    }

    /// Whether the file is still being written.
    pub fn is_growing(&self) -> bool {
        self.growth.is_open()
    }

    /// Reads at `offset` without moving this reader (the GStreamer source keeps its own offset).
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let written = self.growth.wait_past(offset)?;
        let n = usize::try_from(written.saturating_sub(offset)).unwrap_or(usize::MAX).min(buf.len());
        if n == 0 {
            return Ok(0);
        }
        self.file.read_at(&mut buf[..n], offset)
    }
}

impl Read for GrowingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for GrowingReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let base = |b: u64, d: i64| {
            b.checked_add_signed(d)
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start"))
        };
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::Current(d) => base(self.pos, d)?,
            SeekFrom::End(d) => base(self.size, d)?,
        };
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    fn growing() -> (tempfile::NamedTempFile, File, Growth, Producer) {
        let f = tempfile::NamedTempFile::new().unwrap();
        let writer = f.reopen().unwrap();
        let (g, p) = Growth::new();
        (f, writer, g, p)
    }

    #[test]
    fn a_reader_waits_for_the_bytes_and_reads_them_all() {
        let (f, mut w, g, p) = growing();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut r = GrowingReader::new(f.reopen().unwrap(), g.clone(), data.len() as u64);
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            got
        });
        for (i, chunk) in data.chunks(7_000).enumerate() {
            w.write_all(chunk).unwrap();
            p.advance((i * 7_000 + chunk.len()) as u64);
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(g.is_open());
        p.complete(data.len() as u64);
        assert!(!g.is_open());
        assert_eq!(reader.join().unwrap(), data);
    }

    #[test]
    fn a_read_past_the_written_bytes_blocks_until_they_come() {
        let (f, mut w, g, p) = growing();
        w.write_all(b"0123").unwrap();
        p.advance(4);
        let r = GrowingReader::new(f.reopen().unwrap(), g, 8);
        let mut buf = [0u8; 8];
        // what is there is read at once, however much is asked for
        assert_eq!(r.read_at(&mut buf, 0).unwrap(), 4);
        let late = std::thread::spawn(move || {
            let mut buf = [0u8; 4];
            let n = r.read_at(&mut buf, 6).unwrap();
            (n, buf)
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(!late.is_finished(), "byte 6 is not written yet");
        w.write_all(b"4567").unwrap();
        p.advance(8);
        let (n, buf) = late.join().unwrap();
        assert_eq!(&buf[..n], b"67");
        p.complete(8);
    }

    #[test]
    fn the_end_of_a_complete_file_is_end_of_file_and_seeks_use_the_final_size() {
        let (f, mut w, g, p) = growing();
        w.write_all(b"abcdef").unwrap();
        let mut r = GrowingReader::new(f.reopen().unwrap(), g, 6);
        assert_eq!(r.seek(SeekFrom::End(-2)).unwrap(), 4);
        p.complete(6);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"ef");
        assert_eq!(r.read(&mut [0u8; 4]).unwrap(), 0);
        assert!(r.seek(SeekFrom::Current(-7)).is_err());
    }

    #[test]
    fn a_failed_or_abandoned_download_wakes_the_reader_with_an_error() {
        for abandon in [false, true] {
            let (f, _w, g, p) = growing();
            let r = GrowingReader::new(f.reopen().unwrap(), g.clone(), 10);
            let waiting = std::thread::spawn(move || r.read_at(&mut [0u8; 4], 0));
            std::thread::sleep(Duration::from_millis(20));
            if abandon {
                drop(p);
            } else {
                p.fail("connection reset");
            }
            let err = waiting.join().unwrap().unwrap_err().to_string();
            let expected = if abandon { "abandoned" } else { "connection reset" };
            assert!(err.contains(expected), "{err}");
            assert!(!g.is_open());
        }
    }
}
