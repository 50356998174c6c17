//! The CPU thread count of candle's matrix products, fixed once at start-up. Without `RAYON_NUM_THREADS`, candle
//! 0.11 works it out again for every product (`num_cpus::get_physical` parses `/proc/cpuinfo`): ~12 % of an
//! llm-jp-eval generation's time (`perf`: `show_cpuinfo`). The variable is set to candle's own count; rayon's pool
//! keeps rayon's default; a variable the user set wins; plugin workers inherit it.

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
