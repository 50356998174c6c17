//! The export plugin: turns an experiment resolved by `hashi export` into a cluster engine's own files, one
//! engine job per phase (each data switch is a job boundary, which is also how the LR re-warmup is expressed).
//! Targets: `megatron` (Megatron-LM launch scripts) and `neuron` (NeuronX Distributed Training configs for
//! Trainium). The engine does the distributed training; nothing here schedules or runs it.

#![recursion_limit = "256"]

mod megatron;
mod neuron;
mod request;

use std::fmt::Write as _;
use std::path::Path;

use hashi_plugin_api::{ExportPlugin, declare_plugin};

use hashi_core::{EngineSchedule as Schedule, ExportRequest as Request};

/// One engine job: a phase.
#[derive(Debug)]
pub struct Job {
    /// Position (0-based).
    pub index: usize,
    /// Phase name.
    pub name: String,
    /// File-name stem: `phase_NN_name`.
    pub stem: String,
    /// Optimizer steps.
    pub steps: u64,
    /// Tokens trained on.
    pub tokens: u64,
    /// `(weight, shard prefix, corpus)`: the phase's data blend, weights summing to 1.
    pub blend: Vec<(f64, String, String)>,
    /// The learning-rate curve.
    pub schedule: Schedule,
}

/// Checks the request and splits it into jobs.
pub fn jobs(r: &Request) -> Result<Vec<Job>, String> {
    let n = r.plan.phases.len();
    if r.steps_per_phase.len() != n || r.schedules.len() != n {
        return Err(format!(
            "{n} phases but {} step counts and {} schedules",
            r.steps_per_phase.len(),
            r.schedules.len()
        ));
    }
    if r.lr.len() as u64 != r.steps_per_phase.iter().sum::<u64>() {
        return Err("the per-step learning rates do not cover the plan".into());
    }
    if !r.optimizer.freeze.is_empty() || !r.optimizer.freeze_rows.is_empty() {
        return Err(
            "optimizer.freeze / freeze_rows have no equivalent in the cluster engines' command lines; \
                    export the experiment without them"
                .into(),
        );
    }
    let mut out = vec![];
    for (i, p) in r.plan.phases.iter().enumerate() {
        let total = p.batches * r.plan.decl.batch_size as u64;
        let mut blend = vec![];
        for l in &p.langs {
            let used: Vec<_> = l.sources.iter().filter(|s| s.sequences > 0).collect();
            if l.order == hashi_core::plan::Order::Sequential && used.len() > 1 {
                return Err(format!(
                    "phase {:?} reads {} sources one after the other ({}); an engine's data blend is a stateless \
                     mixture, so make each source its own phase (as scripts/curricula do) or use order = \"blend\"",
                    p.name,
                    l.lang,
                    used.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
            for s in used {
                let c = r.corpora.get(&s.name).ok_or_else(|| format!("no prepared corpus {}", s.name))?;
                blend.push((s.sequences as f64 / total as f64, c.prefix.clone(), s.name.clone()));
            }
        }
        let slug: String = p
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
            .collect();
        out.push(Job {
            index: i,
            stem: format!("phase_{i:02}_{slug}"),
            name: p.name.clone(),
            steps: r.steps_per_phase[i],
            tokens: total * r.seq_len,
            blend,
            schedule: r.schedules[i].clone(),
        });
    }
    let c = &r.cluster;
    let devices = c.nodes * c.devices_per_node;
    let model_parallel = c.tensor_parallel * c.pipeline_parallel;
    if model_parallel == 0 || !devices.is_multiple_of(model_parallel) {
        return Err(format!("{devices} devices are not a multiple of TP × PP = {model_parallel}"));
    }
    let dp = devices / model_parallel;
    if c.micro_batch_size == 0 || !r.global_batch_sequences.is_multiple_of(c.micro_batch_size * dp) {
        return Err(format!(
            "the global batch of {} sequences is not a multiple of micro_batch_size {} × data parallel {dp}",
            r.global_batch_sequences, c.micro_batch_size
        ));
    }
    Ok(out)
}

/// The summary table both targets print.
pub fn table(r: &Request, jobs: &[Job], engine: &str) -> String {
    let mut t = format!(
        "{engine}: {} jobs, global batch {} × {} tokens = {} tokens/step\n",
        jobs.len(),
        r.global_batch_sequences,
        r.seq_len,
        r.global_batch_sequences * r.seq_len
    );
    let _ =
        writeln!(t, "{:<28} {:>8} {:>14} {:>10} {:>9}  blend", "job", "steps", "tokens", "max_lr", "warmup");
    for j in jobs {
        let blend: Vec<String> = j.blend.iter().map(|(w, _, n)| format!("{n} {:.1}%", w * 100.0)).collect();
        let _ = writeln!(
            t,
            "{:<28} {:>8} {:>14} {:>10.3e} {:>9}  {}",
            j.stem,
            j.steps,
            j.tokens,
            j.schedule.max_lr,
            j.schedule.warmup_steps,
            blend.join(", ")
        );
    }
    t
}

/// Writes a file, creating folders, with a message naming it on failure.
pub fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Makes a script executable.
pub fn executable(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Shell-quotes a word.
pub fn sh(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The exporter.
pub struct ClusterExport;

impl ExportPlugin for ClusterExport {
    const TARGETS: &'static str = "megatron,neuron";

    fn export(target: &str, request: &str, out_dir: &str) -> Result<String, String> {
        let r: Request = serde_json::from_str(request).map_err(|e| format!("request: {e}"))?;
        let jobs = jobs(&r)?;
        let out = Path::new(out_dir);
        let files = match target {
            "megatron" => megatron::write_all(&r, &jobs, out)?,
            "neuron" => neuron::write_all(&r, &jobs, out)?,
            t => return Err(format!("unknown target {t:?} (megatron, neuron)")),
        };
        let phases: Vec<serde_json::Value> = jobs
            .iter()
            .map(|j| {
                serde_json::json!({
                    "name": j.name, "job": j.stem, "steps": j.steps, "tokens": j.tokens,
                    "blend": j.blend.iter().map(|(w, p, n)| serde_json::json!({"weight": w, "prefix": p, "corpus": n})).collect::<Vec<_>>(),
                })
            })
            .collect();
        Ok(serde_json::json!({"table": table(&r, &jobs, target), "phases": phases, "files": files})
            .to_string())
    }
}

declare_plugin!(
    name: "cluster",
    version: env!("CARGO_PKG_VERSION"),
    description: "exports experiments to Megatron-LM (GPU clusters) and NeuronX Distributed Training (Trainium)",
    export: ClusterExport,
);
