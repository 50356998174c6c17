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
