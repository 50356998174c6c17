//! The curriculum training loop: batches from the mixer, gradient accumulation, the learning rate from a
//! schedule policy at every step, skipped steps on non-finite loss or a loss spike, checkpoints at every data
//! switch (phase end) and every N steps, written atomically, and exact resume.
//!
//! Checkpoint layout: `ckpt/step_00000042/{config.json, model.safetensors, optimizer.safetensors,
//! trainer_state.json, plan.json, DONE}`; the directory is written under a temporary name, `DONE` last, renamed,
//! then `ckpt/latest` names it. Resume trusts only directories with `DONE`. `metrics.jsonl` has one object per
//! step; its `seconds` and `tokens_per_s` fields are the only ones that depend on the machine's speed.
//!
//! Nothing written is lost: every file of a checkpoint and the folder itself are fsynced before `DONE`; the files
//! copied into every checkpoint (tokenizer) come from the run's own copy in `files/`, made when the trainer
//! starts, never from a checkpoint that retention may delete; a checkpoint is deleted `DONE` first and renamed
//! out of `step_*` before its files go; `metrics.jsonl` is only appended to, and the lines after a resumed
//! checkpoint are dropped by an atomic replace. The run folder is locked ([`RunLock`]) while a trainer lives.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hashi_core::Reporter;
pub use hashi_core::artifacts::{Metrics, STATE_VERSION, TrainerState};
use hashi_data::{Mixer, ResolvedPlan};
use serde::Serialize;

use crate::durable;
use crate::error::{Result, TrainError};
use crate::lock::RunLock;
use hashi_core::Backend;

/// Where a step stands, as schedules see it (the first argument of a Lua schedule's `lr(s, p)`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepInfo {
    /// Optimizer step about to be taken (0-based).
    pub step: u64,
    /// Optimizer steps in the whole plan.
    pub total_steps: u64,
    /// Phase index (0-based).
    pub phase: usize,
    /// Step within the phase (0-based).
    pub phase_step: u64,
    /// Steps of this phase.
    pub phase_steps: u64,
    /// Steps of every phase.
    pub steps_per_phase: Vec<u64>,
    /// Every phase: its name, first step and length (steps).
    pub phases: Vec<PhaseSpan>,
    /// The phase's own schedule parameters (`training.schedule` of the curriculum), which replace the
    /// experiment's of the same names; not shown to the script as part of `s`.
    #[serde(skip)]
    pub schedule_params: BTreeMap<String, serde_json::Value>,
}

/// One phase on the step axis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseSpan {
    /// The phase's name.
    pub name: String,
    /// Its first optimizer step (0-based).
    pub first_step: u64,
    /// Its optimizer steps.
    pub steps: u64,
}

impl StepInfo {
    /// Step `step` of `plan` run at `steps` optimizer steps per phase; `None` past the end.
    pub fn at(plan: &ResolvedPlan, steps: &[u64], step: u64) -> Option<Self> {
        let mut first = 0;
        let phases: Vec<PhaseSpan> = plan
            .phases
            .iter()
            .zip(steps)
            .map(|(p, &n)| {
                first += n;
                PhaseSpan { name: p.name.clone(), first_step: first - n, steps: n }
            })
            .collect();
        let phase = phases.iter().position(|p| step < p.first_step + p.steps)?;
        let span = &phases[phase];
        Some(StepInfo {
            step,
            total_steps: first,
            phase,
            phase_step: step - span.first_step,
            phase_steps: span.steps,
            steps_per_phase: steps.to_vec(),
            schedule_params: plan.phases[phase]
                .training
                .as_ref()
                .map(|t| t.schedule.clone())
                .unwrap_or_default(),
            phases,
        })
    }
}

/// A learning-rate policy (a Lua script in practice). `poll` is called at every step boundary, where a
/// hot-reloaded script may be swapped in.
pub trait LrSchedule {
    /// The learning rate of the step.
    fn lr(&mut self, at: &StepInfo) -> Result<f64>;
    /// Applies pending edits; returns the generation in force.
    fn poll(&mut self) -> u64;
}

/// Edits of the curriculum during a run: a new resolved plan, or why the edit failed to load or resolve.
pub trait PlanUpdates {
    /// Called at every step boundary; `Some` when the curriculum file changed.
    fn poll(&mut self) -> Option<std::result::Result<ResolvedPlan, String>>;
}

/// Trainer settings.
#[derive(Debug, Clone)]
pub struct TrainerOptions {
    /// Run directory (metrics, checkpoints, plots).
    pub out: PathBuf,
    /// Micro-batches per optimizer step (must divide every phase's batches).
    pub accumulation: usize,
    /// A checkpoint every N steps besides phase ends (0 = phase ends only).
    pub checkpoint_every: u64,
    /// Periodic checkpoints kept (phase-end ones are always kept).
    pub keep_last: usize,
    /// A step whose loss exceeds this times the running mean is skipped.
    pub spike_factor: f64,
    /// Consecutive skipped steps that stop the run.
    pub max_bad_steps: usize,
    /// Files copied into every checkpoint (tokenizer files). The trainer copies them into the run's `files/`
    /// when it starts and takes them from there, so their sources (e.g. the checkpoint resumed from) may go.
    pub extra_files: Vec<PathBuf>,
    /// Script hashes recorded in checkpoints.
    pub script_hashes: BTreeMap<String, String>,
    /// Stop after this many steps (for tests and partial runs).
    pub stop_after: Option<u64>,
    /// Row ranges `[start, end)` of the new vocabulary that the transfer copied from the source model (its
    /// report's `matches`): frozen in `model.embed_tokens.weight` and `lm_head.weight` during a phase with
    /// `training.new_rows_only`. `None` when the model has no transfer report (such a phase is refused).
    pub matched_rows: Option<Vec<[usize; 2]>>,
    /// Held-out text per language, scored in the loop (bits per byte into `metrics.jsonl`); none: no in-loop
    /// evaluation.
    pub held_out: Vec<hashi_core::heldout::HeldOutSet>,
    /// In-loop evaluation every this many steps besides data switches and the end (0: those only).
    pub eval_every: u64,
    /// On resume, continue although the schedule now gives other learning rates for steps already taken
    /// (otherwise refused, Megatron's rule).
    pub override_schedule: bool,
    /// Keep the optimizer state in the newest checkpoint only (the one a resume starts from); older checkpoints
    /// keep their weights (for evaluation) and drop [`hashi_core::OPTIMIZER_FILE`] once a newer one is complete.
    pub optimizer_state_latest_only: bool,
}

/// The matrices with one row per vocabulary entry.
const VOCAB_MATRICES: [&str; 2] = ["model.embed_tokens.weight", "lm_head.weight"];

fn io(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::State(format!("{}: {e}", path.display()))
}

/// Steps per phase for `plan` at `accumulation` micro-batches per step (or a phase's own
/// `training.accumulation`).
pub fn steps_per_phase(plan: &ResolvedPlan, accumulation: usize) -> Result<Vec<u64>> {
    plan.phases
        .iter()
        .zip(plan.accumulation(accumulation))
        .map(|(p, accumulation)| {
            if !p.batches.is_multiple_of(accumulation as u64) {
                return Err(TrainError::State(format!(
                    "phase {} has {} batches, not a multiple of the accumulation {accumulation}",
                    p.name, p.batches
                )));
            }
            Ok(p.batches / accumulation as u64)
        })
        .collect()
}

/// The newest checkpoint directory with a `DONE` marker (directories without it are reported and skipped).
pub fn latest_checkpoint(run: &Path) -> Option<PathBuf> {
    let ckpt = run.join("ckpt");
    let named = std::fs::read_to_string(ckpt.join("latest")).ok().map(|s| ckpt.join(s.trim()));
    if let Some(dir) = &named
        && dir.join("DONE").is_file()
    {
        return named;
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&ckpt)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("step_")))
        .collect();
    dirs.sort();
    for d in dirs.iter().rev() {
        if d.join("DONE").is_file() {
            return Some(d.clone());
        }
        tracing::warn!(dir = %d.display(), "checkpoint without DONE skipped");
    }
    None
}

/// Runs (or continues) a training.
pub struct Trainer<'a> {
    backend: &'a mut dyn Backend,
    schedule: &'a mut dyn LrSchedule,
    mixer: Mixer,
    plan: ResolvedPlan,
    opts: TrainerOptions,
    state: TrainerState,
    steps: Vec<u64>,
    plan_updates: Option<&'a mut dyn PlanUpdates>,
    shards: PathBuf,
    /// The phase the backend was last set up for ([`Trainer::enter_phase`]).
    entered: Option<usize>,
    /// Whether the backend holds a phase's own [`hashi_core::Trainable`].
    trainable_set: bool,
    _lock: RunLock,
}

impl<'a> Trainer<'a> {
    /// A trainer at the start of `plan`, or at `resume` (a state read from a checkpoint).
    pub fn new(
        backend: &'a mut dyn Backend,
        schedule: &'a mut dyn LrSchedule,
        plan: ResolvedPlan,
        shards: &Path,
        opts: TrainerOptions,
        resume: Option<TrainerState>,
        plan_updates: Option<&'a mut dyn PlanUpdates>,
    ) -> Result<Self> {
        let steps = steps_per_phase(&plan, opts.accumulation)?;
        let lock = RunLock::acquire(&opts.out)?;
        let mut opts = opts;
        opts.extra_files = own_copies(&opts.out, &opts.extra_files)?;
        let mut mixer = Mixer::new(plan.clone(), shards).map_err(|e| TrainError::State(e.to_string()))?;
        let state = match resume {
            Some(s) => {
                mixer.restore(s.cursor.clone()).map_err(|e| TrainError::State(e.to_string()))?;
                s
            }
            None => TrainerState { format_version: STATE_VERSION, ..Default::default() },
        };
        let ckpt = opts.out.join("ckpt");
        std::fs::create_dir_all(&ckpt).map_err(|e| io(&opts.out, e))?;
        for left in durable::leftovers(&ckpt) {
            tracing::debug!(dir = %left.display(), "leftover of an interrupted checkpoint removed");
            std::fs::remove_dir_all(&left).map_err(|e| io(&left, e))?;
        }
        Ok(Self {
            backend,
            schedule,
            mixer,
            plan,
            opts,
            state,
            steps,
            plan_updates,
            shards: shards.into(),
            entered: None,
            trainable_set: false,
            _lock: lock,
        })
    }

    /// Applies a curriculum edit if one is pending: phases already started stay as they are (an edit that
    /// changes them is rejected), later phases may change; the mixer continues from the same cursor.
    fn apply_plan_updates(&mut self) -> Result<()> {
        let Some(updates) = self.plan_updates.as_deref_mut() else { return Ok(()) };
        let Some(update) = updates.poll() else { return Ok(()) };
        let new = match update {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("curriculum edit rejected: {e}");
                return Ok(());
            }
        };
        let cursor = self.mixer.cursor().clone();
        let same_shape = new.decl.seq_len == self.plan.decl.seq_len
            && new.decl.batch_size == self.plan.decl.batch_size
            && new.decl.seed == self.plan.decl.seed;
        let kept = self.plan.keeps_started_phases(&new, &cursor);
        if !same_shape || kept.is_err() {
            let fixed = kept.err().unwrap_or(0);
            tracing::error!(
                "curriculum edit rejected: phases already started (the first {fixed}), seq_len, batch_size and seed \
                 cannot change during a run"
            );
            return Ok(());
        }
        let steps = steps_per_phase(&new, self.opts.accumulation)?;
        let mut mixer =
            Mixer::new(new.clone(), &self.shards).map_err(|e| TrainError::State(e.to_string()))?;
        mixer.restore(cursor).map_err(|e| TrainError::State(e.to_string()))?;
        self.mixer = mixer;
        self.plan = new;
        self.steps = steps;
        self.state.curriculum_generation += 1;
        tracing::info!(
            generation = self.state.curriculum_generation,
            "curriculum reloaded: later phases changed"
        );
        Ok(())
    }

    fn info(&self) -> Option<StepInfo> {
        StepInfo::at(&self.plan, &self.steps, self.state.step)
    }

    /// At a step of a phase other than the one the backend was last set up for: what trains (a phase that sets
    /// `training`, or the one after it), and at the phase's first step the moment restart it asks for. A resume
    /// lands here too, so a phase's recipe holds from wherever the run continues.
    fn enter_phase(&mut self, info: &StepInfo) -> Result<()> {
        if self.entered == Some(info.phase) {
            return Ok(());
        }
        self.entered = Some(info.phase);
        let training = self.plan.phases[info.phase].training.clone().unwrap_or_default();
        let own = training.params.is_some() || training.new_rows_only;
        let name = &self.plan.phases[info.phase].name;
        if own || self.trainable_set {
            let frozen_rows = match (training.new_rows_only, &self.opts.matched_rows) {
                (false, _) => BTreeMap::new(),
                (true, Some(rows)) => VOCAB_MATRICES.iter().map(|m| (m.to_string(), rows.clone())).collect(),
                (true, None) => {
                    return Err(TrainError::State(format!(
                        "phase {name} sets training.new_rows_only, but the model has no transfer report to say \
                         which rows are new"
                    )));
                }
            };
            let trainable = own.then(|| hashi_core::Trainable { only: training.params.clone(), frozen_rows });
            self.backend.set_trainable(trainable.as_ref())?;
            self.trainable_set = own;
            tracing::info!(phase = %name, params = ?training.params, training.new_rows_only, "phase training controls");
        }
        if training.reset_moments && info.phase_step == 0 {
            self.backend.reset_moments()?;
            tracing::info!(step = info.step, "optimizer moments restarted");
        }
        Ok(())
    }

    /// Trains to the end of the plan (or `stop_after`); returns the final state.
    pub fn run(mut self, reporter: &dyn Reporter) -> Result<TrainerState> {
        let metrics_path = self.opts.out.join("metrics.jsonl");
        truncate_metrics(&metrics_path, self.state.step)?;
        let mut metrics = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&metrics_path)
            .map_err(|e| io(&metrics_path, e))?;
        self.check_past_lrs(&metrics_path)?;
        let total: u64 = self.steps.iter().sum();
        reporter.start("training", Some(total), "steps");
        reporter.advance(self.state.step);
        let seq_tokens = self.plan.decl.seq_len as u64;
        loop {
            self.apply_plan_updates()?;
            let Some(info) = self.info() else { break };
            let total: u64 = self.steps.iter().sum();
            if self.opts.stop_after.is_some_and(|n| self.state.step >= n) {
                break;
            }
            let t0 = Instant::now();
            self.enter_phase(&info)?;
            let own = self.plan.phases[info.phase].training.as_ref().and_then(|t| t.accumulation);
            let accumulation = own.unwrap_or(self.opts.accumulation);
            self.state.generation = self.schedule.poll();
            let lr = self.schedule.lr(&info)?;
            if !(lr.is_finite() && lr >= 0.0) {
                return Err(TrainError::State(format!(
                    "the schedule returned lr = {lr} at step {}",
                    info.step
                )));
            }
            let (mut loss_sum, mut bad, mut ends_phase, mut tokens) = (0.0, false, false, 0u64);
            for _ in 0..accumulation {
                let batch = self
                    .mixer
                    .next_batch()
                    .map_err(|e| TrainError::State(e.to_string()))?
                    .ok_or_else(|| TrainError::State("the plan ran out of batches".into()))?;
                ends_phase |= batch.ends_phase;
                for (l, s) in batch.langs.iter().zip(&batch.sources) {
                    *self.state.tokens_by_lang.entry(l.clone()).or_insert(0) += seq_tokens;
                    *self.state.tokens_by_source.entry(s.clone()).or_insert(0) += seq_tokens;
                    tokens += seq_tokens;
                }
                if bad {
                    continue;
                }
                match self.backend.accumulate(&batch.sequences) {
                    Ok(l) => loss_sum += l,
                    Err(hashi_core::BackendError::NonFinite(m)) => {
                        tracing::warn!(step = info.step + 1, "{m}");
                        bad = true;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            let loss = loss_sum / accumulation as f64;
            if !bad
                && let Some(ema) = self.state.loss_ema
                && loss > self.opts.spike_factor * ema
            {
                tracing::warn!(step = info.step + 1, loss, ema, "loss spike: step skipped");
                bad = true;
            }
            let mut grad_norm = None;
            if bad {
                self.backend.discard();
                self.state.skipped += 1;
                self.state.bad_steps += 1;
            } else {
                match self.backend.apply(lr) {
                    Ok(s) => grad_norm = Some(s.grad_norm),
                    Err(hashi_core::BackendError::NonFinite(m)) => {
                        tracing::warn!(step = info.step + 1, "{m}: step skipped");
                        self.state.skipped += 1;
                        self.state.bad_steps += 1;
                        bad = true;
                    }
                    Err(e) => return Err(e.into()),
                }
                if !bad {
                    self.state.bad_steps = 0;
                    self.state.loss_ema = Some(self.state.loss_ema.map_or(loss, |e| 0.9 * e + 0.1 * loss));
                }
            }
            self.state.step += 1;
            self.state.cursor = self.mixer.cursor().clone();
            let seconds = t0.elapsed().as_secs_f64();
            let last = self.state.step == total;
            let (bpb, eval_seconds) = self.evaluate(ends_phase || last)?;
            let m = Metrics {
                step: self.state.step,
                phase: info.phase,
                loss: (!bad).then_some(loss),
                lr,
                grad_norm,
                skipped: bad,
                tokens_by_lang: self.state.tokens_by_lang.clone(),
                tokens_by_source: self.state.tokens_by_source.clone(),
                generation: self.state.generation,
                curriculum_generation: self.state.curriculum_generation,
                seconds,
                tokens_per_s: tokens as f64 / seconds.max(1e-9),
                bpb,
                eval_seconds,
            };
            let line = serde_json::to_string(&m).map_err(|e| TrainError::State(e.to_string()))? + "\n";
            metrics.write_all(line.as_bytes()).map_err(|e| io(&metrics_path, e))?;
            reporter.advance(1);
            if self.state.bad_steps > self.opts.max_bad_steps {
                let last =
                    latest_checkpoint(&self.opts.out).map_or("none".into(), |p| p.display().to_string());
                return Err(TrainError::State(format!(
                    "{} bad steps in a row at step {}: stopping (last good checkpoint: {last})",
                    self.state.bad_steps, self.state.step
                )));
            }
            let periodic =
                self.opts.checkpoint_every > 0 && self.state.step.is_multiple_of(self.opts.checkpoint_every);
            // No checkpoint in the middle of a streak of bad steps: the last one written stays the last good one.
            if (ends_phase || periodic || last) && self.state.bad_steps == 0 {
                self.state.phase_end = ends_phase || last;
                metrics.flush().map_err(|e| io(&metrics_path, e))?;
                metrics.sync_data().map_err(|e| io(&metrics_path, e))?;
                self.checkpoint()?;
            }
        }
        reporter.finish();
        Ok(self.state)
    }

    /// Bits per byte per language on the held-out text, and the seconds it took, at the steps where it is due
    /// (every `eval_every` steps, and at `switch`: a data switch or the end).
    fn evaluate(&mut self, switch: bool) -> Result<(BTreeMap<String, f64>, Option<f64>)> {
        let every = self.opts.eval_every;
        if self.opts.held_out.is_empty() || !(switch || (every > 0 && self.state.step.is_multiple_of(every)))
        {
            return Ok((BTreeMap::new(), None));
        }
        let t0 = Instant::now();
        let mut bpb = BTreeMap::new();
        for set in &self.opts.held_out {
            bpb.insert(set.lang.clone(), set.bits_per_byte(&mut *self.backend)?);
        }
        Ok((bpb, Some(t0.elapsed().as_secs_f64())))
    }

    /// On resume, the schedule (and the plan's per-phase parameters) must give the steps already taken the
    /// learning rates they were taken with: those since the last edit of a script during the run, as
    /// `metrics.jsonl` records them (earlier steps ran under the edit's predecessors). A difference is refused,
    /// naming the first step that differs, unless `override_schedule` (Megatron's rule; nanotron #233 shows what
    /// follows from a silent change).
    fn check_past_lrs(&mut self, metrics_path: &Path) -> Result<()> {
        if self.state.step == 0 {
            return Ok(());
        }
        let past = Metrics::read_all(metrics_path).map_err(TrainError::State)?;
        let Some(last) = past.last() else { return Ok(()) };
        let same = |m: &&Metrics| {
            m.generation == last.generation && m.curriculum_generation == last.curriculum_generation
        };
        let tail: Vec<&Metrics> = past.iter().rev().take_while(same).collect();
        for m in tail.into_iter().rev() {
            let Some(info) = StepInfo::at(&self.plan, &self.steps, m.step - 1) else { continue };
            let lr = self.schedule.lr(&info)?;
            // metrics.jsonl holds the rate as JSON text, which reads back to within an ulp or two.
            if (lr - m.lr).abs() <= 1e-12 * lr.abs().max(m.lr.abs()) {
                continue;
            }
            let what = format!(
                "the schedule now gives step {} the learning rate {lr:e}, but the run took it at {:e} \
                 (metrics.jsonl): its script or parameters changed for steps already taken",
                m.step, m.lr
            );
            if self.opts.override_schedule {
                tracing::warn!("{what}; continuing with the new values (--override-schedule)");
                return Ok(());
            }
            return Err(TrainError::State(format!(
                "{}: {what}. Restore them, or pass --override-schedule to continue with the new values",
                self.opts.out.display()
            )));
        }
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<()> {
        let ckpt = self.opts.out.join("ckpt");
        let name = format!("step_{:08}", self.state.step);
        let (tmp, dir) = (ckpt.join(format!(".{name}.tmp")), ckpt.join(&name));
        if tmp.exists() {
            // An interrupted write of this step; its DONE (if any) never counted under a dot name.
            std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
        }
        std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
        self.backend.save(&tmp)?;
        self.state.scripts = self.opts.script_hashes.clone();
        write_json(&tmp.join("trainer_state.json"), &self.state)?;
        write_json(&tmp.join("plan.json"), &self.plan)?;
        for f in &self.opts.extra_files {
            if let Some(n) = f.file_name() {
                std::fs::copy(f, tmp.join(n)).map_err(|e| io(f, e))?;
            }
        }
        // Everything on disk before DONE says so: a power loss leaves this folder without DONE, never a DONE
        // over missing or short files.
        durable::sync_tree(&tmp).map_err(|e| io(&tmp, e))?;
        let done = tmp.join("DONE");
        std::fs::File::create(&done).and_then(|f| f.sync_all()).map_err(|e| io(&done, e))?;
        durable::sync_dir(&tmp).map_err(|e| io(&tmp, e))?;
        if dir.exists() {
            // A re-written step (a resume from an earlier checkpoint): the old one is withdrawn DONE first.
            durable::remove_checkpoint(&dir).map_err(|e| io(&dir, e))?;
        }
        std::fs::rename(&tmp, &dir).map_err(|e| io(&dir, e))?;
        durable::sync_dir(&ckpt).map_err(|e| io(&ckpt, e))?;
        hashi_core::write_atomic(&ckpt.join("latest"), name.as_bytes()).map_err(|e| io(&ckpt, e))?;
        durable::sync_dir(&ckpt).map_err(|e| io(&ckpt, e))?;
        tracing::info!(checkpoint = %dir.display(), "checkpoint written");
        self.prune(&ckpt)
    }

    fn prune(&self, ckpt: &Path) -> Result<()> {
        let mut periodic: Vec<PathBuf> = std::fs::read_dir(ckpt)
            .map_err(|e| io(ckpt, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("DONE").is_file())
            .filter(|p| TrainerState::read(p).is_ok_and(|s| !s.phase_end))
            .collect();
        periodic.sort();
        // The newest checkpoint (the one `latest` names, the one a resume needs) is never a candidate.
        let newest = std::fs::read_to_string(ckpt.join("latest")).ok().map(|n| ckpt.join(n.trim()));
        let excess = periodic.len().saturating_sub(self.opts.keep_last.max(1));
        for old in periodic.iter().take(excess).filter(|p| Some(*p) != newest.as_ref()) {
            durable::remove_checkpoint(old).map_err(|e| io(old, e))?;
        }
        if self.opts.optimizer_state_latest_only {
            // Only after `latest` durably names the new checkpoint: a crash before leaves every state in place.
            for entry in std::fs::read_dir(ckpt).map_err(|e| io(ckpt, e))? {
                let dir = entry.map_err(|e| io(ckpt, e))?.path();
                let state = dir.join(hashi_core::OPTIMIZER_FILE);
                if Some(&dir) != newest.as_ref() && dir.join("DONE").is_file() && state.is_file() {
                    std::fs::remove_file(&state).map_err(|e| io(&state, e))?;
                    durable::sync_dir(&dir).map_err(|e| io(&dir, e))?;
                }
            }
        }
        Ok(())
    }
}

/// Copies `files` into the run's own `files/` folder (atomically, each) and returns the copies: checkpoints take
/// their extra files from there, so no source can be pruned from under a run.
fn own_copies(out: &Path, files: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let own = out.join("files");
    std::fs::create_dir_all(&own).map_err(|e| io(&own, e))?;
    let mut copies = Vec::with_capacity(files.len());
    for f in files {
        let Some(name) = f.file_name() else { continue };
        let to = own.join(name);
        let same = matches!((std::fs::canonicalize(f), std::fs::canonicalize(&to)), (Ok(a), Ok(b)) if a == b);
        if !same {
            durable::copy_atomic(f, &to).map_err(|e| io(f, e))?;
        }
        copies.push(to);
    }
    durable::sync_dir(&own).map_err(|e| io(&own, e))?;
    Ok(copies)
}

/// Keeps the lines of `metrics.jsonl` up to `step` (a resumed run rewrites what came after its checkpoint).
/// The file is never rewritten in place: when lines must go (later steps, or a line torn by a kill), the kept
/// ones are written to a temporary file that replaces it atomically, so a kill at any point leaves either the
/// old file or the new one.
fn truncate_metrics(path: &Path, step: u64) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let lines: Vec<&str> = text.lines().collect();
    let kept: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| serde_json::from_str::<Metrics>(l).is_ok_and(|m| m.step <= step))
        .collect();
    if kept.len() == lines.len() && (text.is_empty() || text.ends_with('\n')) {
        return Ok(());
    }
    let mut out = kept.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    hashi_core::write_atomic(path, out.as_bytes()).map_err(|e| io(path, e))?;
    if let Some(dir) = path.parent() {
        durable::sync_dir(dir).map_err(|e| io(dir, e))?;
    }
    Ok(())
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(|e| TrainError::State(e.to_string()))?;
    std::fs::write(path, text + "\n").map_err(|e| io(path, e))
}
