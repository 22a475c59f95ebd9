//! The unsafe island: a shared memory object or file, mapped read-write into this process.
//!
//! A [`Segment`] owns the mapping and the file descriptor it came from, and unmaps on drop. It
//! hands the map only the mapping's address and length; the core accesses the bytes with
//! atomics alone, which is what makes several processes writing one mapping sound.

use rustix::fd::OwnedFd;
use rustix::mm::{MapFlags, MsyncFlags, ProtFlags};
use std::ptr::NonNull;

/// A mapping of a whole shared memory object or file, `MAP_SHARED`, read and write.
#[derive(Debug)]
pub(crate) struct Segment {
    base: NonNull<u8>,
    len: usize,
    _fd: OwnedFd,
}

// SAFETY: the mapping is plain memory shared by design; every access through the map is
// atomic, and `Segment` itself has no thread-bound state.
unsafe impl Send for Segment {}
// SAFETY: as for `Send`.
unsafe impl Sync for Segment {}

impl Segment {
    /// Maps the first `len` bytes of `fd`, which must be at least that long.
    ///
    /// # References
    /// - [POSIX `mmap`](https://pubs.opengroup.org/onlinepubs/9799919799/functions/mmap.html)
    /// - [Linux `mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html)
    pub(crate) fn map(fd: OwnedFd, len: usize) -> rustix::io::Result<Segment> {
        // SAFETY:
        // - a null hint lets the kernel choose the address, so no existing mapping is replaced;
        // - the result is a fresh `MAP_SHARED` mapping of `len` bytes, owned by the `Segment`
        //   until `drop` unmaps it; no Rust reference into it is created here.
        let base = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )?
        };
        let base = NonNull::new(base.cast::<u8>()).ok_or(rustix::io::Errno::FAULT)?;
        Ok(Segment { base, len, _fd: fd })
    }

    /// The start of the mapping (page-aligned).
    pub(crate) fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// The mapping's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Writes the mapping's dirty pages back to its file and waits (for file-backed maps).
    ///
    /// # References
    /// - [POSIX `msync`](https://pubs.opengroup.org/onlinepubs/9799919799/functions/msync.html)
    pub(crate) fn flush(&self) -> rustix::io::Result<()> {
        // SAFETY: the range is exactly this live mapping.
        unsafe { rustix::mm::msync(self.base.as_ptr().cast(), self.len, MsyncFlags::SYNC) }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: the range is exactly this mapping, and nothing uses it after the `Segment`
        // is dropped: the map handles that borrow it are dropped first (see `map.rs`).
        // Failure could only mean the range is not mapped, which it is.
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), self.len) };
    }
}
