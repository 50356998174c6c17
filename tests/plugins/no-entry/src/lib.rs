//! A library that exports no `hashi_plugin_entry`: the host must say it is not a plugin.

/// Some unrelated exported function.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn not_a_plugin() -> i32 {
    42
}
