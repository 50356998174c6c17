//! Loading a script into a fresh, sandboxed Lua 5.4 state.
//!
//! The sandbox: only the `table`, `string`, `math`, `utf8` and `coroutine` libraries (no `io`, `os`, `debug`,
//! `package`); no `dofile`/`loadfile`, `load` only for text chunks, no `string.dump` (so no bytecode can be made or
//! run); a memory limit; an instruction budget per call from the host; `require` resolving only inside the
//! script's own folder, the library folders (`scripts/lib` of the working directory) and the `scripts/lib` of
//! the nearest folder above the script that has one. Host facts live in one `hashi` module table.
//! Every chunk is named `@path`, so errors read `path:line: message`.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mlua::{ChunkMode, HookTriggers, Lua, LuaOptions, LuaSerdeExt, StdLib, Table, Value, VmState};
use serde::de::DeserializeOwned;

use crate::error::{Result, ScriptError};

/// Instructions between two checks of the budget.
const HOOK_EVERY: u32 = 10_000;

/// Limits and search paths of a script state; `Default` gives 64 MiB, 200 M instructions per call, `scripts/lib`.
#[derive(Debug, Clone)]
pub struct ScriptOptions {
    /// Bytes the Lua state may allocate.
    pub memory_limit: usize,
    /// Instructions one call from the host may run.
    pub instruction_limit: u64,
    /// Folders `require` may load from, besides the script's own.
    pub lib_dirs: Vec<PathBuf>,
}

impl Default for ScriptOptions {
    fn default() -> Self {
        Self {
            memory_limit: 64 << 20,
            instruction_limit: 200_000_000,
            lib_dirs: vec![PathBuf::from("scripts/lib")],
        }
    }
}

impl ScriptOptions {
    /// With this memory limit.
    #[must_use]
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// With this instruction budget per call.
    #[must_use]
    pub fn instruction_limit(mut self, n: u64) -> Self {
        self.instruction_limit = n;
        self
    }

    /// With these library folders.
    #[must_use]
    pub fn lib_dirs(mut self, dirs: Vec<PathBuf>) -> Self {
        self.lib_dirs = dirs;
        self
    }
}

/// A loaded script: its Lua state and the table (or value) the file returned.
pub struct Script {
    lua: Lua,
    path: PathBuf,
    exports: Value,
    files: Arc<Mutex<Vec<PathBuf>>>,
    used: Arc<AtomicU64>,
    hash: String,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script").field("path", &self.path).field("hash", &self.hash).finish()
    }
}

impl Script {
    /// Loads and runs `path` in a fresh sandboxed state; `setup` may add host functions to the `hashi` table
    /// before the script runs.
    pub fn load_with(
        path: &Path,
        opts: &ScriptOptions,
        setup: impl FnOnce(&Lua, &Table) -> mlua::Result<()>,
    ) -> Result<Self> {
        let source = std::fs::read_to_string(path)
            .map_err(|e| ScriptError::File { path: path.into(), message: e.to_string() })?;
        let lua_err = |e: mlua::Error| ScriptError::from_lua(path, &e);
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::UTF8 | StdLib::COROUTINE;
        let lua = Lua::new_with(libs, LuaOptions::default()).map_err(lua_err)?;
        lua.set_memory_limit(opts.memory_limit).map_err(lua_err)?;
        let used = Arc::new(AtomicU64::new(0));
        let (budget, counter) = (opts.instruction_limit, used.clone());
        lua.set_global_hook(HookTriggers::new().every_nth_instruction(HOOK_EVERY), move |_, _| {
            if counter.fetch_add(u64::from(HOOK_EVERY), Ordering::Relaxed) > budget {
                return Err(mlua::Error::RuntimeError(format!("instruction limit of {budget} exceeded")));
            }
            Ok(VmState::Continue)
        })
        .map_err(lua_err)?;
        let files = Arc::new(Mutex::new(vec![path.to_path_buf()]));
        sandbox(&lua, path, opts, files.clone()).map_err(lua_err)?;
        let hashi: Table = lua.globals().get("hashi").map_err(lua_err)?;
        setup(&lua, &hashi).map_err(lua_err)?;
        let exports = lua
            .load(source.as_str())
            .set_name(format!("@{}", path.display()))
            .set_mode(ChunkMode::Text)
            .eval::<Value>()
            .map_err(lua_err)?;
        let hash = format!("{:016x}", hashi_core::fnv1a(source.as_bytes()));
        Ok(Self { lua, path: path.into(), exports, files, used, hash })
    }

    /// Loads `path` with no extra host functions.
    pub fn load(path: &Path, opts: &ScriptOptions) -> Result<Self> {
        Self::load_with(path, opts, |_, _| Ok(()))
    }

    /// The script file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The script and every module it required, so far.
    pub fn files(&self) -> Vec<PathBuf> {
        self.files.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// A hash of the script's source (FNV-1a, hex), for metrics and checkpoints.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Whether the script's returned table has a function `name`.
    pub fn has_function(&self, name: &str) -> bool {
        matches!(&self.exports, Value::Table(t) if matches!(t.get::<Value>(name), Ok(Value::Function(_))))
    }

    /// The value the script returned, decoded into `T`.
    pub fn exports<T: DeserializeOwned>(&self) -> Result<T> {
        self.decode("returned value", self.exports.clone())
    }

    /// Field `name` of the returned table, decoded into `T`.
    pub fn field<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        let v = match &self.exports {
            Value::Table(t) => t.get::<Value>(name).map_err(|e| ScriptError::from_lua(&self.path, &e))?,
            _ => Value::Nil,
        };
        self.decode(name, v)
    }

    /// Calls function `name` of the returned table with `args` (each serialised to Lua) and decodes the result
    /// into `T` (use `deny_unknown_fields` types). The instruction budget starts afresh for each call.
    pub fn call<T: DeserializeOwned>(&self, name: &str, args: &[&dyn erased::Arg]) -> Result<T> {
        let func = match &self.exports {
            Value::Table(t) => match t.get::<Value>(name) {
                Ok(Value::Function(f)) => f,
                _ => return Err(self.missing(name)),
            },
            _ => return Err(self.missing(name)),
        };
        let lua_err = |e: mlua::Error| ScriptError::from_lua(&self.path, &e);
        let args = args
            .iter()
            .map(|a| a.to_lua(&self.lua))
            .collect::<mlua::Result<mlua::MultiValue>>()
            .map_err(lua_err)?;
        self.used.store(0, Ordering::Relaxed);
        let out = func.call::<Value>(args).map_err(lua_err)?;
        self.decode(&format!("result of {name}()"), out)
    }

    fn missing(&self, name: &str) -> ScriptError {
        ScriptError::Decode {
            path: self.path.clone(),
            what: name.into(),
            message: "the script's returned table has no such function".into(),
        }
    }

    fn decode<T: DeserializeOwned>(&self, what: &str, v: Value) -> Result<T> {
        self.lua.from_value(v).map_err(|e| ScriptError::Decode {
            path: self.path.clone(),
            what: what.into(),
            message: e.to_string(),
        })
    }
}

/// Arguments of [`Script::call`]: anything serde can serialise.
pub mod erased {
    /// One argument.
    pub trait Arg {
        /// The Lua value of this argument.
        fn to_lua(&self, lua: &mlua::Lua) -> mlua::Result<mlua::Value>;
    }

    impl<T: serde::Serialize> Arg for T {
        fn to_lua(&self, lua: &mlua::Lua) -> mlua::Result<mlua::Value> {
            use mlua::LuaSerdeExt;
            lua.to_value_with(
                self,
                mlua::SerializeOptions::new().serialize_none_to_null(false).serialize_unit_to_null(false),
            )
        }
    }
}

fn sandbox(
    lua: &Lua,
    script: &Path,
    opts: &ScriptOptions,
    files: Arc<Mutex<Vec<PathBuf>>>,
) -> mlua::Result<()> {
    let g = lua.globals();
    for name in ["dofile", "loadfile", "collectgarbage"] {
        g.set(name, Value::Nil)?;
    }
    let string: Table = g.get("string")?;
    string.set("dump", Value::Nil)?;
    // `load` for text chunks only.
    let load = lua.create_function(|lua, (chunk, name): (mlua::String, Option<String>)| {
        let bytes = chunk.as_bytes().to_vec();
        if bytes.first() == Some(&0x1b) {
            return Err(mlua::Error::RuntimeError("load: binary chunks (bytecode) are not allowed".into()));
        }
        lua.load(bytes)
            .set_name(name.unwrap_or_else(|| "=(load)".into()))
            .set_mode(ChunkMode::Text)
            .into_function()
    })?;
    g.set("load", load)?;
    let dir = script.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut roots = vec![dir.clone()];
    roots.extend(opts.lib_dirs.iter().cloned());
    // The library of the checkout the script lives in, whatever the working directory.
    let abs = std::path::absolute(&dir).unwrap_or(dir);
    if let Some(lib) = abs.ancestors().map(|a| a.join("scripts").join("lib")).find(|p| p.is_dir())
        && !roots.contains(&lib)
    {
        roots.push(lib);
    }
    let loaded = lua.create_table()?;
    let require = lua.create_function(move |lua, name: String| {
        if let Ok(v @ Value::Table(_)) | Ok(v @ Value::Function(_)) = loaded.get::<Value>(name.as_str()) {
            return Ok(v);
        }
        let rel: PathBuf = format!("{}.lua", name.replace('.', "/")).into();
        if name.is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(mlua::Error::RuntimeError(format!(
                "require {name:?}: only plain module names are allowed"
            )));
        }
        let Some(path) = roots.iter().map(|r| r.join(&rel)).find(|p| p.is_file()) else {
            let searched: Vec<String> = roots.iter().map(|r| r.join(&rel).display().to_string()).collect();
            return Err(mlua::Error::RuntimeError(format!(
                "require {name:?}: not found in the script's folder or the library folders ({})",
                searched.join(", ")
            )));
        };
        let source = std::fs::read_to_string(&path)
            .map_err(|e| mlua::Error::RuntimeError(format!("{}: {e}", path.display())))?;
        if let Ok(mut f) = files.lock() {
            f.push(path.clone());
        }
        let v: Value =
            lua.load(source).set_name(format!("@{}", path.display())).set_mode(ChunkMode::Text).eval()?;
        let v = if v.is_nil() { Value::Boolean(true) } else { v };
        loaded.set(name.as_str(), v.clone())?;
        Ok(v)
    })?;
    g.set("require", require)?;
    let hashi = lua.create_table()?;
    hashi.set("version", env!("CARGO_PKG_VERSION"))?;
    hashi.set("script", script.display().to_string())?;
    let who = script.display().to_string();
    hashi.set(
        "log",
        lua.create_function(move |_, msg: String| {
            tracing::info!(script = %who, "{msg}");
            Ok(())
        })?,
    )?;
    g.set("hashi", hashi)?;
    Ok(())
}
