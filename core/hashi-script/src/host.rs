//! Loading a script into a fresh, sandboxed Lua 5.4 state.
//!
//! The sandbox: only the `table`, `string`, `math`, `utf8` and `coroutine` libraries (no `io`, `os`, `debug`,
//! `package`); no `dofile`/`loadfile`, `load` only for text chunks, no `string.dump` (so no bytecode can be made or
//! run); a memory limit; an instruction budget per call from the host; `require` resolving only inside the
//! script's own folder, the library folders (`scripts/lib` of the working directory) and the `scripts/lib` of
//! the nearest folder above the script that has one. Host facts live in one `hashi` module table.
//! Every chunk is named `@path`, so errors read `path:line: message`.
//!
//! Nothing a script does can hang or crash the host: `__gc` finalizers (which Lua runs with hooks off) are
//! refused by `setmetatable`; `string.rep` and the functions of the `hashi` table charge their work to the
//! instruction budget ([`crate::charge`]); every call has a wall-clock limit, checked by the hook, with a
//! watchdog as the last resort for time spent inside C functions (see `limits.rs`); values handed back to Rust
//! are checked for depth and size before serde walks them; `require` refuses cycles. Every error value renders
//! (strings without a position, tables, `nil`, yields outside a coroutine) with the file and line where Lua was.
//! `math.random` starts from a fixed seed ([`ScriptOptions::seed`]).

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mlua::{ChunkMode, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState};
use serde::de::DeserializeOwned;

use crate::error::{Result, ScriptError};
use crate::limits::{COST_PER_BYTE, COST_PER_CALL, Meter, Watch};

/// Deepest nesting of tables handed back to Rust.
pub const MAX_DEPTH: usize = 100;
/// Most table entries handed back to Rust in one value (shared subtables count once per place they appear).
pub const MAX_ENTRIES: usize = 1_000_000;

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
    /// Wall-clock time one call from the host may take (the last resort beside the instruction budget).
    pub time_limit: Duration,
    /// Seed of `math.random`.
    pub seed: u64,
}

impl Default for ScriptOptions {
    fn default() -> Self {
        Self {
            memory_limit: 64 << 20,
            instruction_limit: 200_000_000,
            lib_dirs: vec![PathBuf::from("scripts/lib")],
            time_limit: Duration::from_secs(10),
            seed: 0,
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

    /// With this wall-clock limit per call.
    #[must_use]
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self
    }

    /// With this seed for `math.random`.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
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
    meter: Arc<Meter>,
    guard: mlua::Function,
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
        let meter = Arc::new(Meter::new(opts.instruction_limit, opts.time_limit));
        lua.set_app_data(meter.clone());
        let counter = meter.clone();
        lua.set_global_hook(HookTriggers::new().every_nth_instruction(HOOK_EVERY), move |_, _| {
            counter.charge(u64::from(HOOK_EVERY))?;
            Ok(VmState::Continue)
        })
        .map_err(lua_err)?;
        let files = Arc::new(Mutex::new(vec![path.to_path_buf()]));
        sandbox(&lua, path, opts, files.clone()).map_err(lua_err)?;
        let hashi: Table = lua.globals().get("hashi").map_err(lua_err)?;
        setup(&lua, &hashi).map_err(lua_err)?;
        charge_host_functions(&lua, &hashi).map_err(lua_err)?;
        let guard = error_guard(&lua).map_err(lua_err)?;
        let chunk = lua
            .load(source.as_str())
            .set_name(format!("@{}", path.display()))
            .set_mode(ChunkMode::Text)
            .into_function()
            .map_err(lua_err)?;
        meter.start();
        let exports = {
            let _watch = Watch::new(path, "the script's main chunk", meter.wall());
            guard.call::<Value>(chunk).map_err(lua_err)?
        };
        let hash = format!("{:016x}", hashi_core::fnv1a(source.as_bytes()));
        Ok(Self { lua, path: path.into(), exports, files, meter, guard, hash })
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
        let what = format!("{name}()");
        self.meter.start();
        let out = {
            let _watch = Watch::new(&self.path, &what, self.meter.wall());
            let mut all = mlua::MultiValue::with_capacity(args.len() + 1);
            all.push_back(Value::Function(func));
            all.extend(args);
            self.guard.call::<Value>(all).map_err(lua_err)?
        };
        self.decode(&format!("result of {what}"), out)
    }

    fn missing(&self, name: &str) -> ScriptError {
        ScriptError::Decode {
            path: self.path.clone(),
            what: name.into(),
            message: "the script's returned table has no such function".into(),
        }
    }

    fn decode<T: DeserializeOwned>(&self, what: &str, v: Value) -> Result<T> {
        check_shape(&v).map_err(|message| ScriptError::Decode {
            path: self.path.clone(),
            what: what.into(),
            message,
        })?;
        serde_path_to_error::deserialize(mlua::serde::Deserializer::new(v)).map_err(|e| ScriptError::Decode {
            path: self.path.clone(),
            what: what.into(),
            message: match lua_path(e.path()) {
                p if p.is_empty() => e.inner().to_string(),
                p => format!("{p}: {}", e.inner()),
            },
        })
    }
}

/// A decoding error's place in the script's value as Lua spells it: `variants[2].vocabulary` (arrays from 1).
fn lua_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for s in path.iter() {
        match s {
            Segment::Seq { index } => out += &format!("[{}]", index + 1),
            Segment::Map { key } if out.is_empty() => out += key,
            Segment::Map { key } => out += &format!(".{key}"),
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
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

/// Wraps every function of the `hashi` table so that each call charges its arguments' size to the budget
/// (host functions work in Rust, where the instruction hook does not count).
fn charge_host_functions(lua: &Lua, hashi: &Table) -> mlua::Result<()> {
    let mut funcs = vec![];
    for pair in hashi.pairs::<Value, Value>() {
        if let (k, Value::Function(f)) = pair? {
            funcs.push((k, f));
        }
    }
    for (k, f) in funcs {
        let wrapped = lua.create_function(move |lua, args: mlua::MultiValue| {
            let bytes: u64 = args
                .iter()
                .map(|a| match a {
                    Value::String(s) => s.as_bytes().len() as u64,
                    _ => 0,
                })
                .sum();
            crate::limits::charge(lua, COST_PER_CALL + bytes.saturating_mul(COST_PER_BYTE))?;
            f.call::<mlua::MultiValue>(args)
        })?;
        hashi.raw_set(k, wrapped)?;
    }
    Ok(())
}

/// `guard(f, ...)`: calls `f(...)` under `xpcall` with [`render_error`] as the message handler, so that every
/// error value reaches the host as a string with the script's file and line.
fn error_guard(lua: &Lua) -> mlua::Result<mlua::Function> {
    let render = lua.create_function(|lua, e: Value| render_error(lua, e))?;
    lua.load(
        "local render = ...\n\
         local xpcall, pack, unpack, error = xpcall, table.pack, table.unpack, error\n\
         return function(f, ...)\n\
           local r = pack(xpcall(f, render, ...))\n\
           if r[1] then return unpack(r, 2, r.n) end\n\
           error(r[2], 0)\n\
         end",
    )
    .set_name("=hashi")
    .set_mode(ChunkMode::Text)
    .call(render)
}

/// The innermost Lua position on the stack (`path:line`), for messages that carry none.
fn position(lua: &Lua) -> Option<String> {
    (1..32).find_map(|level| {
        lua.inspect_stack(level, |d| {
            let line = d.current_line()?;
            let src = d.source();
            let file = src.source.as_deref()?.strip_prefix('@')?.to_string();
            Some(format!("{file}:{line}"))
        })
        .flatten()
    })
}

/// Renders an error value as a message: strings keep their text (a position is added when they have none),
/// tables show their fields, other values their type and value. Host errors pass unchanged.
fn render_error(lua: &Lua, e: Value) -> mlua::Result<Value> {
    let text = match &e {
        // Raised by the host (limits, sandbox refusals): the message gets the script's position.
        Value::Error(err) => match host_message(err) {
            Some(m) if !crate::error::has_position(&m) => m,
            _ => return Ok(e),
        },
        Value::String(s) => {
            let t = s.to_string_lossy();
            if crate::error::has_position(&t) {
                return Ok(e);
            }
            t
        }
        Value::Table(t) => format!("error value is a table: {}", render_table(t)),
        Value::Nil => "error value is nil".into(),
        other => format!("error value is a {}: {}", other.type_name(), render_scalar(other)),
    };
    let text = match position(lua) {
        Some(at) => format!("{at}: {text}"),
        None => text,
    };
    Ok(Value::String(lua.create_string(&text)?))
}

/// The text of a host-raised runtime error (possibly wrapped as a callback error).
fn host_message(err: &mlua::Error) -> Option<String> {
    match err {
        mlua::Error::RuntimeError(m) => Some(m.clone()),
        mlua::Error::CallbackError { cause, .. } => host_message(cause),
        _ => None,
    }
}

fn render_scalar(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{:?}", s.to_string_lossy()),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Nil => "nil".into(),
        Value::Table(_) => "{...}".into(),
        other => other.type_name().to_string(),
    }
}

/// `{code = 42, reason = "bad"}`: the first 16 fields, sorted, nested tables shown as `{...}`.
fn render_table(t: &Table) -> String {
    let mut fields: Vec<String> = t
        .pairs::<Value, Value>()
        .filter_map(std::result::Result::ok)
        .take(64)
        .map(|(k, v)| match &k {
            Value::String(s) => format!("{} = {}", s.to_string_lossy(), render_scalar(&v)),
            _ => format!("[{}] = {}", render_scalar(&k), render_scalar(&v)),
        })
        .collect();
    fields.sort();
    let more = fields.len() > 16;
    fields.truncate(16);
    format!("{{{}{}}}", fields.join(", "), if more { ", ..." } else { "" })
}

/// Refuses values that would make serde recurse too deep or walk too much: nesting beyond [`MAX_DEPTH`]
/// (or a table that contains itself), more than [`MAX_ENTRIES`] entries. Iterative, so it cannot overflow.
fn check_shape(v: &Value) -> std::result::Result<(), String> {
    let Value::Table(t) = v else { return Ok(()) };
    let mut stack: Vec<(Table, usize)> = vec![(t.clone(), 1)];
    let mut entries = 0usize;
    while let Some((t, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(format!(
                "tables nested more than {MAX_DEPTH} levels deep (or a table that contains itself)"
            ));
        }
        for pair in t.pairs::<Value, Value>() {
            let (k, v) = pair.map_err(|e| e.to_string())?;
            entries += 1;
            if entries > MAX_ENTRIES {
                return Err(format!("more than {MAX_ENTRIES} table entries"));
            }
            for x in [k, v] {
                if let Value::Table(sub) = x {
                    stack.push((sub, depth + 1));
                }
            }
        }
    }
    Ok(())
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
    // `string.rep` loops in C once per repetition (even of ""): the repetitions and bytes are charged first.
    let rep: mlua::Function = string.get("rep")?;
    string.set(
        "rep",
        lua.create_function(move |lua, (s, n, sep): (mlua::String, mlua::Integer, Option<mlua::String>)| {
            if n > 0 {
                let piece = s.as_bytes().len() as u64 + sep.as_ref().map_or(0, |p| p.as_bytes().len() as u64);
                let n = n as u64;
                crate::limits::charge(lua, n.saturating_add(n.saturating_mul(piece)) / 16)?;
            }
            rep.call::<Value>((s, n, sep))
        })?,
    )?;
    // Pattern functions scan their subject in C: at least its length is charged (a backtracking pattern can cost
    // far more; the per-call time limit and its watchdog are the last resort there).
    for name in ["find", "match", "gmatch", "gsub"] {
        let f: mlua::Function = string.get(name)?;
        string.set(
            name,
            lua.create_function(move |lua, args: mlua::MultiValue| {
                if let Some(Value::String(s)) = args.front() {
                    crate::limits::charge(lua, COST_PER_CALL + s.as_bytes().len() as u64)?;
                }
                f.call::<mlua::MultiValue>(args)
            })?,
        )?;
    }
    // No finalizers: Lua runs `__gc` with hooks off, where no limit can stop a loop.
    let raw_setmetatable: mlua::Function = g.get("setmetatable")?;
    g.set(
        "setmetatable",
        lua.create_function(move |_, (t, mt): (Value, Value)| {
            if let Value::Table(m) = &mt
                && !m.raw_get::<Value>("__gc")?.is_nil()
            {
                return Err(mlua::Error::RuntimeError(
                    "setmetatable: __gc metamethods (finalizers) are not allowed in hashi scripts".into(),
                ));
            }
            raw_setmetatable.call::<Value>((t, mt))
        })?,
    )?;
    let math: Table = g.get("math")?;
    let randomseed: mlua::Function = math.get("randomseed")?;
    randomseed.call::<()>(opts.seed as i64)?;
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
    let loading: Arc<Mutex<Vec<String>>> = Arc::default();
    let require = lua.create_function(move |lua, name: String| {
        if let Ok(v @ Value::Table(_)) | Ok(v @ Value::Function(_)) = loaded.get::<Value>(name.as_str()) {
            return Ok(v);
        }
        {
            let chain = loading.lock().map_err(|_| mlua::Error::RuntimeError("require: poisoned".into()))?;
            if chain.contains(&name) {
                let mut cycle: Vec<&str> = chain.iter().map(String::as_str).collect();
                cycle.push(&name);
                return Err(mlua::Error::RuntimeError(format!(
                    "require {name:?}: circular require ({})",
                    cycle.join(" -> ")
                )));
            }
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
        if let Ok(mut chain) = loading.lock() {
            chain.push(name.clone());
        }
        let v = lua
            .load(source)
            .set_name(format!("@{}", path.display()))
            .set_mode(ChunkMode::Text)
            .eval::<Value>();
        if let Ok(mut chain) = loading.lock() {
            chain.retain(|n| n != &name);
        }
        let v = v?;
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
