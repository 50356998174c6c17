---@meta
-- Curricula (data plans, scripts/curricula/) and corpus lists (scripts/corpora/). Mirrors `PlanDecl`, `PhaseDecl`
-- and `SourceList` (hashi-core plan.rs, re-exported by hashi-data) and `CorpusDecl` (hashi-data prepare.rs).
-- Unknown fields are errors.

---How a language's sources are read within a phase.
---@alias hashi.Order
---| "sequential" # one after the other, each until it is used up (the method's Wiki -> CC100 -> OSCAR order)
---| "blend" # interleaved in proportion to their sizes, or to `weights`

---The sources of one language in one phase. Sources keep their read position across phases.
---@class hashi.SourceList
---@field order hashi.Order reading order
---@field names string[] corpus names as prepared (a corpus list's `name`s), each at most once, all of this language
---@field weights? number[] `order = "blend"` only: one finite weight above 0 per name (default: the sources' sizes)

---One phase. Every phase boundary is a data switch: the trainer re-warms the learning rate there (with
---rewarmup_cosine.lua) and always checkpoints.
---@class hashi.Phase
---@field name string shown in tables and pictures
---Token budget, whose meaning depends on its size: **≤ 1 is a fraction of the plan's `total_tokens`** (the
---fractions of all phases sum to at most 1), **> 1 is a count of tokens**. Rounded to whole batches, at least one.
---@field tokens number
---@field shares table<string, number> language -> share of the phase, each in [0, 1], summing to 1
---@field sources table<string, hashi.SourceList> language -> its sources; every language in `shares` needs one
---@field training? hashi.PhaseTraining this phase's own training recipe (default: the experiment's settings)

---A phase's own training recipe, next to its data (`PhaseTraining`, hashi-core plan.rs). A phase that sets it
---replaces the experiment's `optimizer.freeze`, `freeze_rows` and `freeze_steps` for its steps; the next phase
---without it returns to them. Started phases cannot change (hot reload and resume check it). Shown by
---`hashi data plan` (table and Figure 1). Example, TokAlign's first stage:
---`training = { params = { "model.embed_tokens", "lm_head" }, new_rows_only = true, schedule = { max_lr = 6.4e-4 } }`
---@class hashi.PhaseTraining
---@field params? string[] only parameters whose names start with one of these prefixes train (default: all); each must match a parameter
---Only the vocabulary rows the transfer initialised train in `model.embed_tokens.weight` and `lm_head.weight`: the
---rows it copied (its `transfer_report.json`'s `matches`, next to the model) stay bitwise unchanged. An error for
---a model without a transfer report.
---@field new_rows_only? boolean
---@field reset_moments? boolean the optimizer's moments and bias-correction count restart at this phase's first step
---@field schedule? table<string, number> schedule parameters for this phase, replacing the experiment's `schedule.params` of the same names (the schedule must declare them)
---@field accumulation? integer micro-batches per optimizer step in this phase (default: the experiment's); must divide the phase's batches

---What to do when a source runs out.
---@alias hashi.OnExhausted
---| "error" # stop with an error naming the source (the default)
---| "repeat" # read it again (another epoch, counted in the plan)

---A curriculum file: `return { name = ..., seq_len = ..., batch_size = ..., phases = { ... } }`.
---
---`hashi data plan FILE --shards SHARDS [--svg F]` resolves and shows it. An experiment's `plan_overrides` replace
---these top-level fields. Under `hashi run` the run file's `train.plan_overrides` do (the shipped run files set
---seq_len, batch_size and total_tokens there), and `seed` is always replaced by the run's seed. `hashi train`
---follows edits of the file between steps (later phases only; started ones are fixed) unless `--freeze-scripts`.
---@class hashi.Plan
---@field name string
---@field seq_len integer tokens per training sequence (at least 1)
---@field batch_size integer sequences per batch (at least 1)
---@field total_tokens? number what fractional phase budgets (`tokens` ≤ 1) refer to; required when there are any
---@field seed? integer seed of document shuffling (default 0)
---@field on_exhausted? hashi.OnExhausted what to do when a source runs out (default "error")
---@field phases hashi.Phase[] in order, at least one

---One corpus: `hashi data prepare` makes one Megatron `.bin/.idx` shard of it.
---@class hashi.Corpus
---@field name string [A-Za-z0-9_-]+, unique: the shard's file name and the name curricula use in `names`
---@field lang string language tag, [A-Za-z0-9_-]+ (the keys of a phase's `shares` and `sources`)
---@field tier? string quality tier ("high", "medium", "low", ...), shown in tables
---Files or globs, relative to the corpus list's file. `.jsonl` files are read through `field`; other files are
---one document per line.
---@field paths string[]
---@field field? string the JSON field holding the text (default "text")

---A corpus list file: `return { { name = ..., lang = ..., paths = { ... } }, ... }` (at least one). Read by
---`hashi data prepare FILE --tokenizer T --out SHARDS`, `hashi tokenizer train --corpora FILE` and a run file's
---`corpora`.
---@alias hashi.CorpusList hashi.Corpus[]
