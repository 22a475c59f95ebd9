//! The only module that names atomic types.
//!
//! Everything else in the crate imports atomics from here: `portable_atomic` normally (native
//! atomics where the target has them, a critical section on targets without compare-and-swap
//! when the `critical-section` feature is on), and loom's model-checked types under `cfg(loom)`,
//! so the loom tests run the crate's real protocol code.

#[cfg(not(loom))]
pub(crate) use portable_atomic::{AtomicU32, AtomicUsize, Ordering, fence};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicUsize, Ordering, fence};

/// Only where the target has native 64-bit atomics (the tag word, `region.rs`).
#[cfg(all(not(loom), target_has_atomic = "64", target_endian = "little"))]
pub(crate) use portable_atomic::AtomicU64;

#[cfg(all(loom, target_has_atomic = "64", target_endian = "little"))]
pub(crate) use loom::sync::atomic::AtomicU64;

/// Tells the processor (or loom's scheduler) that this thread is spinning on a value another
/// thread will change.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    core::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Whether every atomic type the map places in its region is lock-free on this target.
///
/// Only lock-free atomics are address-free: portable-atomic's fallback for a width the target
/// lacks uses locks private to one process, so two processes would both "hold" them.
pub(crate) const ATOMICS_ARE_LOCK_FREE: bool = {
    #[cfg(not(loom))]
    {
        // Where the tag word is an `AtomicU64`, the target has native 64-bit atomics.
        AtomicU32::is_always_lock_free() && AtomicUsize::is_always_lock_free()
    }
    #[cfg(loom)]
    {
        true
    }
};
