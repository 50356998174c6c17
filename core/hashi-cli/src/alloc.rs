//! The global allocator: mimalloc, told to keep freed memory instead of returning it to the OS.
//!
//! A training step allocates and frees the same large activation buffers every step. With mimalloc's default
//! purge delay (10 ms) those pages go back to the kernel and are faulted in and zeroed again on the next step,
//! which cost 40% of a CPU training step here (`perf`: `clear_page_erms`). `MIMALLOC_PURGE_DELAY` in the
//! environment still wins.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in the `mi_option_e` enum of the mimalloc vendored by libmimalloc-sys =0.1.49
/// (the crate exports no constant for it; the version is pinned in the workspace).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Disables purging of freed memory unless the user configured it.
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        #[allow(unsafe_code)]
        // SAFETY: mi_option_set only stores an integer option; any value is valid for purge_delay.
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_delay_option_is_the_one_we_set() {
        keep_freed_memory();
        #[allow(unsafe_code)]
        // SAFETY: reading an option has no preconditions.
        let value = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(value, -1);
        }
        // The neighbouring option (use_numa_nodes, exported by the crate) must be the next index, which pins
        // our constant to the vendored enum's layout.
        assert_eq!(libmimalloc_sys::mi_option_use_numa_nodes, MI_OPTION_PURGE_DELAY + 1);
    }
}
