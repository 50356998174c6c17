//! Script errors, always as `path:line: message` where Lua gives a line.

use std::path::PathBuf;

/// What went wrong in or around a script.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScriptError {
    /// The script (or a module it requires) failed: syntax, runtime error, sandbox refusal, limits.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Lua {
        /// The script file at fault.
        path: PathBuf,
        /// Line in that file, when Lua reports one.
        line: Option<u32>,
        /// Lua's message without the location.
        message: String,
        /// Lua traceback, when there is one.
        traceback: Option<String>,
    },
    /// The script returned something that is not what the host expects.
    #[error("{path}: {what}: {message}", path = path.display())]
    Decode {
        /// The script.
        path: PathBuf,
        /// Which result (function name, token, ...).
        what: String,
        /// What does not fit.
        message: String,
    },
    /// The script file cannot be read or watched.
    #[error("{path}: {message}", path = path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Result with [`ScriptError`].
pub type Result<T> = std::result::Result<T, ScriptError>;

impl ScriptError {
    /// Maps an mlua error raised while running `default_path`, finding `file.lua:line:` in the message.
    pub(crate) fn from_lua(default_path: &std::path::Path, err: &mlua::Error) -> Self {
        let (text, traceback) = flatten(err);
        match locate(&text) {
            Some((path, line, message)) => {
                Self::Lua { path: path.into(), line: Some(line), message, traceback }
            }
            None => Self::Lua { path: default_path.into(), line: None, message: text, traceback },
        }
    }
}

/// The innermost message of an mlua error and the outermost traceback.
fn flatten(err: &mlua::Error) -> (String, Option<String>) {
    match err {
        mlua::Error::CallbackError { traceback, cause } => (flatten(cause).0, Some(traceback.clone())),
        mlua::Error::WithContext { context, cause } => {
            let (m, t) = flatten(cause);
            (format!("{context}: {m}"), t)
        }
        mlua::Error::SyntaxError { message, .. } => (message.clone(), None),
        mlua::Error::RuntimeError(m) => (m.clone(), None),
        mlua::Error::MemoryError(m) => (format!("memory limit exceeded ({m})"), None),
        other => (other.to_string(), None),
    }
}

/// Finds the first `something.lua:LINE: ` in `text`: (path, line, rest of the message).
fn locate(text: &str) -> Option<(String, u32, String)> {
    let mut search = 0;
    while let Some(found) = text[search..].find(".lua:") {
        let dot = search + found;
        let after = &text[dot + 5..];
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() && after[digits.len()..].starts_with(':') {
            let start =
                text[..dot].rfind(|c: char| c.is_whitespace() || c == '"' || c == '\'').map_or(0, |i| i + 1);
            let path = text[start..dot + 4].to_string();
            let message = after[digits.len() + 1..].trim_start().to_string();
            return Some((path, digits.parse().ok()?, message));
        }
        search = dot + 5;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_file_and_line() {
        let (p, l, m) = locate("runtime error: scripts/init/x.lua:12: boom here").expect("located");
        assert_eq!((p.as_str(), l, m.as_str()), ("scripts/init/x.lua", 12, "boom here"));
        assert!(locate("no location").is_none());
    }
}
