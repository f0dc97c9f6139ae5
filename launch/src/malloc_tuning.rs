//! Keeps freed multi-megabyte buffers in the heap instead of handing them back to the kernel.
//!
//! Every simulator step moves a few MB of frames through fresh buffers (the simulator's
//! frames, the bridge's message parts, ZeroMQ's receive buffers, the client's decoded
//! frames). With glibc's defaults, allocations that large are `mmap`ed and their memory is
//! returned on free (`munmap`, or trimming the heap top), so the next step takes a page fault
//! for every 4 KiB it writes again. Measured with `taskset -c 0 ember bench sim` (800x450
//! RGB + depth over tcp), that cost a third of the step. Raising the mmap threshold to its
//! maximum (32 MiB) and the trim threshold to 64 MiB lets freed frame buffers be reused
//! straight from the heap; the process then keeps at most 64 MiB of free heap it could have
//! returned. Allocations above 32 MiB (model weights) are still mmapped and returned.
//!
//! Only glibc has these knobs; elsewhere this does nothing.

/// Largest allocation served from the heap rather than `mmap` (glibc's maximum, 32 MiB).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;
/// Free memory the heap keeps at its top before returning it to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 64 << 20;

/// Sets glibc's mmap and trim thresholds (see the module documentation). Call once, first
/// thing in `main`, before other threads start.
pub fn keep_frame_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; it is called before any other
        // thread exists, and both values are within glibc's accepted ranges. A refusal
        // (return value 0) leaves the defaults, which are correct, only slower.
        let ok = unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        };
        if !ok {
            // Logging is not set up yet; the defaults stay in force.
            eprintln!("note: glibc refused the malloc thresholds; frame buffers are not reused");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn thresholds_are_accepted() {
        // Setting them twice is harmless; glibc answers 1 when it accepts a value.
        super::keep_frame_buffers();
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: as in keep_frame_buffers; mallopt is thread-safe (it takes the arena lock).
        unsafe {
            assert_eq!(
                libc::mallopt(libc::M_MMAP_THRESHOLD, super::MMAP_THRESHOLD),
                1
            );
            assert_eq!(
                libc::mallopt(libc::M_TRIM_THRESHOLD, super::TRIM_THRESHOLD),
                1
            );
        }
    }
}
