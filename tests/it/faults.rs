//! Fault injection: a full disk and a read-only folder while checkpoints are written and while `data prepare`
//! writes shards. Each scenario runs in a user and mount namespace of its own (`unshare -rm`) over a small tmpfs
//! mounted on the output folder, so no privilege is needed and nothing outside the test's folder is touched. After
//! each fault, hashi has failed with exit code 1 naming the path and the cause, earlier checkpoints and the inputs
//! are intact, and no partial output claims to be complete.

use std::path::Path;
use std::process::Command;

use crate::common::{hashi_bin, remove_scratch, repo_root, scratch_dir};

/// How to get a mount namespace here: a new user namespace with it (`-rm`, no privilege needed), or, where user
/// namespaces are not allowed but the tests run as root, a mount namespace alone (`-m`).
fn unshare_flags() -> &'static str {
    static FLAGS: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    FLAGS.get_or_init(|| {
        let works = |flags: &str| {
            Command::new("unshare").args([flags, "true"]).output().is_ok_and(|o| o.status.success())
        };
        ["-rm", "-m"].into_iter().find(|f| works(f)).unwrap_or_else(|| {
            panic!("`unshare -rm` and `unshare -m` both fail here: the fault tests need a mount namespace")
        })
    })
}

/// Runs `script` (sh) in a new mount namespace (and user namespace where allowed) with `$HASHI` set; panics with
/// its output on failure.
fn in_namespace(dir: &Path, script: &str) {
    let out = Command::new("unshare")
        .args([unshare_flags(), "sh", "-eu", "-c", script])
        .env("HASHI", hashi_bin())
        .env("RUST_BACKTRACE", "0")
        .current_dir(dir)
        .output()
        .expect("unshare starts (util-linux)");
    assert!(
        out.status.success(),
        "the fault script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a hashi run inside the script left in `dir/NAME.code` and `dir/NAME.err`.
fn outcome(dir: &Path, name: &str) -> (String, String) {
    let code = std::fs::read_to_string(dir.join(format!("{name}.code"))).expect("exit code");
    let err = std::fs::read_to_string(dir.join(format!("{name}.err"))).expect("stderr");
    (code.trim().to_string(), err)
}

fn bytes_of(files: &[&Path]) -> Vec<Vec<u8>> {
    files.iter().map(|f| std::fs::read(f).expect("input")).collect()
}

/// A checkpoint that is complete: DONE, a trainer state and weights hashi can read.
fn assert_complete_checkpoint(ckpt: &Path) {
    assert!(ckpt.join("DONE").is_file(), "{}: no DONE", ckpt.display());
    hashi_train::TrainerState::read(ckpt).unwrap_or_else(|e| panic!("{e}"));
    let info = Command::new(hashi_bin()).args(["model", "info"]).arg(ckpt).output().expect("hashi starts");
    assert!(info.status.success(), "{}: {}", ckpt.display(), String::from_utf8_lossy(&info.stderr));
}

#[test]
fn a_full_disk_while_checkpointing_keeps_the_previous_checkpoint_and_names_the_path() {
    let run = crate::train::setup("faults-ckpt-full", 5);
    let dir = &run.dir;
    // 60 steps with a checkpoint every 5: a tiny model's checkpoint (weights + AdamW moments) is about 6.6 MB, so
    // a 9 MB tmpfs holds the first and runs out in the second.
    in_namespace(
        dir,
        "mkdir -p run && mount -t tmpfs -o size=9m tmpfs run\n\
         set +e; \"$HASHI\" -q train exp.lua 2> full.err; echo $? > full.code; set -e\n\
         cp -a run run-after",
    );
    let (code, err) = outcome(dir, "full");
    assert_eq!(code, "1", "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("No space left on device") && err.contains(&dir.join("run").display().to_string()),
        "{err}"
    );
    let after = dir.join("run-after");
    let latest = hashi_train::latest_checkpoint(&after).expect("a checkpoint survived");
    assert_complete_checkpoint(&latest);
    let state = hashi_train::TrainerState::read(&latest).expect("state");
    assert!(state.step >= 5, "{state:?}");
    remove_scratch(dir);
}

#[test]
fn a_read_only_run_folder_keeps_its_checkpoints_and_names_the_path() {
    let run = crate::train::setup("faults-ckpt-ro", 5);
    let dir = &run.dir;
    // Seven steps (a checkpoint at step 5; a stop keeps the last checkpoint), then the folder turns read-only and
    // the run resumes.
    in_namespace(
        dir,
        "mkdir -p run && mount -t tmpfs -o size=64m tmpfs run\n\
         \"$HASHI\" -q train exp.lua --stop-after 7 > /dev/null\n\
         mount -o remount,ro run\n\
         set +e; \"$HASHI\" -q train exp.lua --resume 2> ro.err; echo $? > ro.code; set -e\n\
         cp -a run run-after",
    );
    let (code, err) = outcome(dir, "ro");
    assert_eq!(code, "1", "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("Read-only file system") && err.contains(&dir.join("run").display().to_string()),
        "{err}"
    );
    let latest = hashi_train::latest_checkpoint(&dir.join("run-after")).expect("checkpoints survived");
    assert_complete_checkpoint(&latest);
    assert_eq!(hashi_train::TrainerState::read(&latest).expect("state").step, 5);
    remove_scratch(dir);
}

#[test]
fn data_prepare_on_a_full_or_read_only_disk_fails_naming_the_path_and_keeps_its_inputs() {
    let dir = scratch_dir("faults-prepare");
    let demo = repo_root().join("examples/demo/corpus");
    let (ja, en) = (demo.join("ja_books.jsonl"), demo.join("en_books.jsonl"));
    std::fs::write(
        dir.join("corpora.lua"),
        format!(
            "return {{ {{ name = 'ja', lang = 'ja', paths = {{ '{}' }} }}, {{ name = 'en', lang = 'en', paths = {{ '{}' }} }} }}\n",
            ja.display(),
            en.display()
        ),
    )
    .expect("write");
    let inputs = [ja.as_path(), en.as_path()];
    let before = bytes_of(&inputs);
    let tok = crate::tokenizer::trained().display().to_string();
    let script = format!(
        "mkdir -p full ro && mount -t tmpfs -o size=48k tmpfs full && mount -t tmpfs -o size=64m tmpfs ro\n\
         mount -o remount,ro ro\n\
         set +e\n\
         \"$HASHI\" -q data prepare corpora.lua --tokenizer '{tok}' --out full/shards 2> full.err; echo $? > full.code\n\
         \"$HASHI\" -q data prepare corpora.lua --tokenizer '{tok}' --out ro/shards 2> ro.err; echo $? > ro.code\n\
         set -e\n\
         ls -R full > full.files"
    );
    in_namespace(&dir, &script);
    for (name, cause) in [("full", "No space left on device"), ("ro", "Read-only file system")] {
        let (code, err) = outcome(&dir, name);
        assert_eq!(code, "1", "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(err.contains(&format!("{name}/shards")), "{name}: {err}");
        assert_eq!(err.matches(cause).count(), 1, "{name}: the cause, once: {err}");
    }
    let left = std::fs::read_to_string(dir.join("full.files")).expect("listing");
    assert!(
        !left.contains("manifest.json"),
        "no manifest claims the unfinished shards are complete:\n{left}"
    );
    assert_eq!(bytes_of(&inputs), before, "the corpora are untouched");
    remove_scratch(&dir);
}
