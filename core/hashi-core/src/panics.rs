//! Panics of third-party code turned into errors: [`catch_panic`] runs a closure, and a panic inside it (a bug of
//! a dependency on input it did not expect, e.g. the `tokenizers` crate on a malformed `decoder`) comes back as
//! its message instead of unwinding through hashi, without the default hook printing "panicked at" on stderr.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`; a panic inside it is returned as `Err(message)`. The panic hook stays silent for this thread
/// while `f` runs (other threads keep the default hook).
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message() {
        assert_eq!(catch_panic(|| 3), Ok(3));
        let r: Result<(), String> = catch_panic(|| panic!("bad {}", 7));
        assert_eq!(r, Err("bad 7".to_string()));
    }
}
