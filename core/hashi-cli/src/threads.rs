//! The CPU thread count of candle's matrix products, fixed once at start-up.
//!
//! Without `RAYON_NUM_THREADS`, candle 0.11 works its thread count out again for every matrix product
//! (`utils::get_num_threads` → `num_cpus::get_physical`, which opens and parses `/proc/cpuinfo`): 13,000 reads of
//! it to generate two NIILC answers with the mini's model, ~12 % of that `hashi eval`'s time spent in the kernel
//! formatting the file (`perf`: `show_cpuinfo`). Setting the variable to candle's own answer keeps candle's count
//! and removes the reads; rayon's global pool (hashi's own parallel work) is built with rayon's default count,
//! which the variable would otherwise change. A variable the user set wins; child processes (plugin workers)
//! inherit it.

/// Sets `RAYON_NUM_THREADS` to candle's default count and builds rayon's global pool with rayon's default,
/// unless the variable is set.
pub fn pin_candle_threads() {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    let candle = candle_core::utils::get_num_threads();
    let rayon_default = std::thread::available_parallelism().map_or(candle, std::num::NonZeroUsize::get);
    #[allow(unsafe_code)]
    // SAFETY: called first thing in `main`, before any thread exists, so nothing reads the environment
    // concurrently.
    unsafe {
        std::env::set_var("RAYON_NUM_THREADS", candle.to_string())
    };
    // Ignored if a pool exists already (none does this early).
    let _ = rayon::ThreadPoolBuilder::new().num_threads(rayon_default).build_global();
}
