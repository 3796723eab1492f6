//! The allocator, set up for a daemon that idles between bursts.
//!
//! Why: perchd's work comes in bursts (a cache sync parses and writes thousands of
//! items, a large read or search builds megabytes of JSON), then it idles for hours.
//! glibc's malloc keeps what a burst freed: in one arena per thread that allocated
//! (up to 8 per core: tokio's workers, its blocking threads, one thread per SQLite
//! connection), each holding the high-water mark of its own bursts, and in the
//! middle of heaps where the free space is not at the top and is never given back.
//! Measured with `perch-bench --memory` (doc/reliability.rst, "Memory"): syncing a
//! large node doubled perchd's RSS, and what was freed stayed.
//!
//! Two levers, both glibc's own: one arena for every thread ([`tune`], before any
//! thread starts), and a trimmer ([`spawn_trimmer`]) that gives free memory back to
//! the system (`malloc_trim`, which also releases free pages in the middle of a heap)
//! when a burst has left more than [`TRIM_ABOVE`] bytes free. Elsewhere than glibc
//! both do nothing.
//!
//! One arena rather than two: the sync parses its pages on a blocking thread, which
//! with two arenas got the second one and kept its own high-water mark beside the
//! workers' (doc/performance.rst, "Design figures"). perchd's threads rarely allocate at the same moment (two
//! runtime workers), so the shared arena's lock costs nothing measurable (the cached
//! read, doc/performance.rst).

use std::time::Duration;

/// Free bytes in malloc's heaps past which the trimmer gives memory back.
pub const TRIM_ABOVE: usize = 2 << 20;

/// How often the trimmer looks.
const EVERY: Duration = Duration::from_secs(5);

/// Limits malloc to one arena. Call first thing in `main`, before any thread.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc parameter; called before other threads exist.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Bytes malloc holds free (in every arena), if it says.
pub fn free_bytes() -> Option<usize> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads malloc's statistics (under its locks).
        #[allow(unsafe_code)]
        let info = unsafe { libc::mallinfo2() };
        Some(info.fordblks)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

/// Gives malloc's free memory back to the system; true if any was.
pub fn trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes malloc's own locks; no precondition.
        #[allow(unsafe_code)]
        let released = unsafe { libc::malloc_trim(0) };
        released == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

/// Every few seconds, gives memory back when more than [`TRIM_ABOVE`] bytes are free
/// (a trim is cheap, and runs off the runtime's workers).
pub fn spawn_trimmer() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if free_bytes().is_some_and(|f| f > TRIM_ABOVE) {
                let before = free_bytes().unwrap_or(0);
                let _ = tokio::task::spawn_blocking(trim).await;
                tracing::debug!(
                    free_before = before,
                    free_after = free_bytes().unwrap_or(0),
                    "memory given back to the system"
                );
            }
        }
    })
}
