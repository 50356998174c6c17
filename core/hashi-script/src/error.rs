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
    /// The message is the error's own text (Lua's traceback, which mlua appends, is kept apart); the file and
    /// line are those the message starts with, else the innermost script position of the traceback.
    pub(crate) fn from_lua(default_path: &std::path::Path, err: &mlua::Error) -> Self {
        let (text, traceback) = flatten(err);
        let (text, trace) = split_traceback(&text);
        let traceback = traceback.or(trace);
        let text = if text == "not enough memory" {
            "memory limit exceeded (not enough memory)".into()
        } else {
            text
        };
        if let Some((path, line, message)) = locate(&text)
            && text.starts_with(&format!("{path}:{line}:"))
        {
            return Self::Lua { path: path.into(), line: Some(line), message, traceback };
        }
        match traceback.as_deref().and_then(locate) {
            Some((path, line, _)) => {
                Self::Lua { path: path.into(), line: Some(line), message: text, traceback }
            }
            None => match locate(&text) {
                Some((path, line, message)) => {
                    Self::Lua { path: path.into(), line: Some(line), message, traceback }
                }
                None => Self::Lua { path: default_path.into(), line: None, message: text, traceback },
            },
        }
    }
}

/// Splits "message\nstack traceback:\n..." into the message and the traceback.
fn split_traceback(text: &str) -> (String, Option<String>) {
    match text.find("stack traceback:") {
        Some(i) => (text[..i].trim_end().to_string(), Some(text[i..].to_string())),
        None => (text.to_string(), None),
    }
}

/// Whether `text` starts with a `path:line:` position (as Lua's `error` adds at level 1).
pub(crate) fn has_position(text: &str) -> bool {
    let first = text.lines().next().unwrap_or_default();
    let mut parts = first.splitn(3, ':');
    matches!((parts.next(), parts.next(), parts.next()),
        (Some(p), Some(l), Some(_)) if !p.is_empty() && !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()))
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

    #[test]
    fn the_message_survives_the_traceback() {
        let e = mlua::Error::RuntimeError(
            "the warmup must be shorter\nstack traceback:\n\t[C]: in ?\n\tx/plan.lua:1: in main chunk".into(),
        );
        match ScriptError::from_lua(std::path::Path::new("x/plan.lua"), &e) {
            ScriptError::Lua { path, line, message, .. } => {
                assert_eq!(
                    (path.to_str(), line, message.as_str()),
                    (Some("x/plan.lua"), Some(1), "the warmup must be shorter")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(has_position("a/b.lua:3: boom") && !has_position("boom: 3") && !has_position("plain"));
    }
}
