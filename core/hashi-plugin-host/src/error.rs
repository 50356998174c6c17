//! Errors of loading and calling plugins.

use std::path::PathBuf;

/// What can go wrong with a plugin. Every message names the library or the plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The library could not be opened (missing file, missing dependency, wrong format).
    #[error("{}: cannot load the plugin library: {message}", path.display())]
    Load {
        /// The library.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// The library exports no entry point.
    #[error("{}: not a hashi plugin (no exported symbol `{}`)", path.display(), hashi_plugin_api::ENTRY_SYMBOL)]
    NoEntry {
        /// The library.
        path: PathBuf,
    },
    /// The header failed a check; nothing in the plugin was called.
    #[error("{}: plugin refused: {message}", path.display())]
    Refused {
        /// The library.
        path: PathBuf,
        /// Which check failed.
        message: String,
    },
    /// No loaded plugin offers what was asked.
    #[error("no plugin provides {what} (loaded: {}){}; plugins are libhashi_plugin_*.so files found beside hashi, in \
        plugins/ beside it or in $HASHI_PLUGIN_PATH (`cargo build --release --workspace` builds the project's), or \
        named with --plugin LIB", if known.is_empty() { "none".to_string() } else { known.join(", ") },
        if refused.is_empty() { String::new() } else { format!("; refused: {}", refused.join("; ")) })]
    NotFound {
        /// What was asked.
        what: String,
        /// Names of the loaded plugins.
        known: Vec<String>,
        /// Why other libraries were refused.
        refused: Vec<String>,
    },
    /// The plugin lacks a capability.
    #[error("plugin {plugin} does not provide {what}")]
    Capability {
        /// The plugin.
        plugin: String,
        /// The capability.
        what: String,
    },
    /// A call returned an error.
    #[error("plugin {plugin}: {call}: {message}")]
    Call {
        /// The plugin.
        plugin: String,
        /// The entry called.
        call: &'static str,
        /// The plugin's message.
        message: String,
    },
    /// A call panicked inside the plugin (caught there); the backend instance is not used again.
    #[error("plugin {plugin}: {call} panicked: {message}")]
    Panicked {
        /// The plugin.
        plugin: String,
        /// The entry called.
        call: &'static str,
        /// The panic message.
        message: String,
    },
}
