//! Sandbox, decoding and hot-reload tests.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::{HotScript, Reload, Script, ScriptError, ScriptOptions};

fn write(dir: &Path, name: &str, src: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, src).expect("write script");
    p
}

fn opts(dir: &Path) -> ScriptOptions {
    ScriptOptions::default()
        .lib_dirs(vec![dir.join("lib")])
        .instruction_limit(2_000_000)
        .memory_limit(8 << 20)
}

/// Loads `src` as `name` and calls its `run()`; returns the error text.
fn refuse(src: &str) -> String {
    let dir = tempfile::tempdir().expect("tmp");
    let p = write(dir.path(), "policy.lua", src);
    let err = match Script::load(&p, &opts(dir.path())) {
        Err(e) => e,
        Ok(s) => s.call::<serde::de::IgnoredAny>("run", &[]).expect_err("sandbox must refuse"),
    };
    assert!(matches!(err, ScriptError::Lua { .. }), "{err:?}");
    err.to_string()
}

#[test]
fn sandbox_refuses_io_os_debug_and_package() {
    let e = refuse("return { run = function() return io.open('/etc/passwd') end }");
    assert!(e.contains("policy.lua:1:") && e.contains("io"), "{e}");
    let e = refuse("return { run = function() return os.execute('true') end }");
    assert!(e.contains("policy.lua:1:") && e.contains("os"), "{e}");
    let e = refuse("local x = debug.getinfo(1)\nreturn {}");
    assert!(e.contains("policy.lua:1:") && e.contains("debug"), "{e}");
    let e = refuse("return package.loaded");
    assert!(e.contains("package"), "{e}");
}

#[test]
fn sandbox_refuses_bytecode() {
    let e = refuse("return { run = function() return string.dump(function() end) end }");
    assert!(e.contains("dump"), "{e}");
    let e = refuse("return { run = function() return load('\\27Lua\\84\\0') end }");
    assert!(e.contains("binary chunks (bytecode) are not allowed"), "{e}");
}

#[test]
fn require_is_confined_to_the_script_folder_and_libs() {
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), "lib/util.lua", "return { twice = function(x) return 2 * x end }");
    write(dir.path(), "helper.lua", "return { three = 3 }");
    let p = write(
        dir.path(),
        "policy.lua",
        "local u = require('util')\nlocal h = require('helper')\nreturn { run = function() return u.twice(h.three) end }",
    );
    let s = Script::load(&p, &opts(dir.path())).expect("loads");
    assert_eq!(s.call::<i64>("run", &[]).expect("runs"), 6);
    assert_eq!(s.files().len(), 3, "the script and both modules are watched");
    let e = refuse("return require('../../etc/passwd')");
    assert!(e.contains("only plain module names"), "{e}");
    let e = refuse("return require('nowhere')");
    assert!(e.contains("not found in the script's folder or the library folders"), "{e}");
}

#[test]
fn require_finds_the_library_of_the_checkout_the_script_is_in() {
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), "scripts/lib/shared.lua", "return { n = 7 }");
    let p = write(dir.path(), "examples/x/plan.lua", "return { n = require('shared').n }");
    let none = ScriptOptions::default().lib_dirs(vec![]);
    let s = Script::load(&p, &none).expect("loads from the checkout's scripts/lib");
    assert_eq!(s.field::<i64>("n").expect("n"), 7);
}

#[test]
fn limits_stop_endless_loops_and_memory_bombs() {
    let e = refuse("return { run = function() while true do end end }");
    assert!(e.contains("instruction limit") && e.contains("policy.lua"), "{e}");
    let e = refuse(
        "return { run = function() local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 64) .. i end end }",
    );
    assert!(e.contains("memory"), "{e}");
}

#[test]
fn errors_name_the_file_and_line_and_results_are_decoded_strictly() {
    let e = refuse("local x = 1\nreturn { run = function()\n  error('bad ratio')\nend }");
    assert!(e.contains("policy.lua:3: bad ratio"), "{e}");
    let e = refuse("return {\n  run = function(\n}");
    assert!(e.contains("policy.lua:3:"), "syntax error with line: {e}");
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Ratio {
        en: f64,
        ja: f64,
    }
    let dir = tempfile::tempdir().expect("tmp");
    let p = write(
        dir.path(),
        "r.lua",
        "return { run = function(step) return { en = 0.25, ja = 0.75, xx = step } end }",
    );
    let s = Script::load(&p, &opts(dir.path())).expect("loads");
    let e = s.call::<Ratio>("run", &[&3u32]).expect_err("unknown field");
    assert!(e.to_string().contains("r.lua") && e.to_string().contains("unknown field `xx`"), "{e}");
}

#[test]
fn hot_reload_swaps_good_edits_and_keeps_the_last_good_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = write(dir.path(), "lr.lua", "return { lr = function(step) return 1 end }");
    let check: crate::Loader = Box::new(|path, o| {
        let s = Script::load(path, o)?;
        s.call::<f64>("lr", &[&0u32])?;
        Ok(s)
    });
    let mut hot = HotScript::new(&p, opts(dir.path()), check, false).expect("loads");
    let wait_for = |hot: &mut HotScript| {
        let t0 = Instant::now();
        loop {
            match hot.poll() {
                Reload::Unchanged if t0.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                other => return other,
            }
        }
    };
    std::thread::sleep(Duration::from_millis(200));
    write(dir.path(), "lr.lua", "return { lr = function(step) return 2 end }");
    assert!(matches!(wait_for(&mut hot), Reload::Swapped { generation: 1 }));
    assert_eq!(hot.script().call::<f64>("lr", &[&0u32]).expect("runs"), 2.0);
    write(dir.path(), "lr.lua", "return { lr = function(step)\n  return 3 +\nend }");
    match wait_for(&mut hot) {
        Reload::Rejected(e) => assert!(e.to_string().contains("lr.lua:3:"), "{e}"),
        other => panic!("a broken edit must be rejected, got {other:?}"),
    }
    assert_eq!(hot.generation(), 1);
    assert_eq!(hot.script().call::<f64>("lr", &[&0u32]).expect("last good still runs"), 2.0);
}

#[test]
fn every_error_value_renders_with_file_and_line() {
    let e = refuse("error('the warmup must be shorter than the phase', 0)");
    assert!(e.contains("policy.lua:1: the warmup must be shorter than the phase"), "{e}");
    let e = refuse("local x = 1\nerror({ code = 42, reason = 'bad' })");
    assert!(e.contains("policy.lua:2: error value is a table: {code = 42, reason = \"bad\"}"), "{e}");
    let e = refuse("return { run = function()\n  error()\nend }");
    assert!(e.contains("policy.lua:2: error value is nil"), "{e}");
    let e = refuse("return { run = function() error(false) end }");
    assert!(e.contains("error value is a boolean: false"), "{e}");
    let e = refuse("coroutine.yield(1)\nreturn {}");
    assert!(e.contains("policy.lua:1: attempt to yield from outside a coroutine"), "{e}");
    let e = refuse("local function f() return 1 + f() end\nreturn { run = function() return f() end }");
    assert!(e.contains("stack overflow") || e.contains("memory limit"), "{e}");
    // pcall still sees the original values.
    let dir = tempfile::tempdir().expect("tmp");
    let p = write(
        dir.path(),
        "p.lua",
        "return { run = function() local ok, e = pcall(error, { n = 3 }) return e.n end }",
    );
    assert_eq!(Script::load(&p, &opts(dir.path())).expect("loads").call::<i64>("run", &[]).expect("runs"), 3);
}

#[test]
fn require_cycles_are_named() {
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), "a.lua", "return require('b')");
    write(dir.path(), "b.lua", "return require('a')");
    let p = write(dir.path(), "main.lua", "local a = require('a')\nreturn {}");
    let e = Script::load(&p, &opts(dir.path())).expect_err("a cycle").to_string();
    assert!(e.contains("circular require (a -> b -> a)") && e.contains(".lua:1"), "{e}");
}

#[test]
fn finalizers_are_refused() {
    let e = refuse("setmetatable({}, { __gc = function() while true do end end })\nreturn {}");
    assert!(e.contains("policy.lua:1:") && e.contains("__gc"), "{e}");
    let dir = tempfile::tempdir().expect("tmp");
    let p = write(
        dir.path(),
        "ok.lua",
        "local t = setmetatable({}, { __index = function() return 5 end })\nreturn { n = t.x }",
    );
    assert_eq!(Script::load(&p, &opts(dir.path())).expect("loads").field::<i64>("n").expect("n"), 5);
}

#[test]
fn work_in_library_and_host_functions_is_charged() {
    // string.rep of an empty string loops in C once per repetition.
    let e = refuse("return { run = function() return #string.rep('', 1e15) end }");
    assert!(e.contains("instruction limit"), "{e}");
    // A host function charges the bytes it is given.
    let dir = tempfile::tempdir().expect("tmp");
    let p = write(
        dir.path(),
        "h.lua",
        "local big = string.rep('ab', 500000)\nreturn { run = function() for i = 1, 1e6 do hashi.work(big) end end }",
    );
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = calls.clone();
    let s = Script::load_with(&p, &opts(dir.path()), move |lua, hashi| {
        let seen = seen.clone();
        hashi.set(
            "work",
            lua.create_function(move |_, _s: mlua::String| {
                seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            })?,
        )
    })
    .expect("loads");
    let e = s.call::<serde::de::IgnoredAny>("run", &[]).expect_err("charged").to_string();
    assert!(e.contains("instruction limit") && e.contains("h.lua:2"), "{e}");
    assert!(calls.load(std::sync::atomic::Ordering::Relaxed) < 5);
    // A subject scanned by a pattern function counts too.
    let e = refuse(
        "local s = string.rep('a', 100000)\nreturn { run = function() for i = 1, 1e6 do s:find('b', 1, true) end end }",
    );
    assert!(e.contains("instruction limit"), "{e}");
}

#[test]
fn a_call_has_a_time_limit() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = write(dir.path(), "slow.lua", "return { run = function() while true do end end }");
    let o = opts(dir.path()).instruction_limit(u64::MAX / 2).time_limit(Duration::from_millis(300));
    let s = Script::load(&p, &o).expect("loads");
    let t0 = Instant::now();
    let e = s.call::<serde::de::IgnoredAny>("run", &[]).expect_err("timed out").to_string();
    assert!(e.contains("time limit") && e.contains("slow.lua:1"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn deep_or_huge_values_are_refused_before_decoding() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = write(
        dir.path(),
        "deep.lua",
        "local d = {}\nfor i = 1, 200000 do d = { d } end\nreturn { deep = d, cyc = nil }",
    );
    let s = Script::load(&p, &opts(dir.path()).instruction_limit(100_000_000).memory_limit(64 << 20))
        .expect("loads");
    let e = s.exports::<serde_json::Value>().expect_err("too deep").to_string();
    assert!(e.contains("deep.lua") && e.contains("nested more than 100 levels deep"), "{e}");
    let p = write(dir.path(), "cyc.lua", "local t = {}\nt.self = t\nreturn t");
    let e = Script::load(&p, &opts(dir.path()))
        .expect("loads")
        .exports::<serde_json::Value>()
        .expect_err("cycle");
    assert!(e.to_string().contains("contains itself"), "{e}");
    let p = write(dir.path(), "ok.lua", "local d = 1\nfor i = 1, 50 do d = { d } end\nreturn d");
    Script::load(&p, &opts(dir.path()))
        .expect("loads")
        .exports::<serde_json::Value>()
        .expect("50 levels decode");
}

#[test]
fn math_random_repeats_given_the_seed() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = write(dir.path(), "r.lua", "return { x = math.random(1, 1000000), y = math.random() }");
    let get = |seed| {
        Script::load(&p, &opts(dir.path()).seed(seed))
            .expect("loads")
            .exports::<serde_json::Value>()
            .expect("decodes")
    };
    assert_eq!(get(7), get(7));
    assert_ne!(get(7), get(8));
}
