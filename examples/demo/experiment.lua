-- Continued pretraining of the transferred demo model (paths relative to this file; the demo script writes
-- ../../runs/demo). Re-warmup at each phase start, a checkpoint at the switch.
---@type hashi.Experiment
return {
  name = "demo",
  model = "../../runs/demo/model",
  shards = "../../runs/demo/shards",
  curriculum = "curriculum.lua",
  schedule = { script = "../../scripts/schedules/rewarmup_cosine.lua", params = { max_lr = 3e-3, min_lr = 3e-4, warmup = 4 } },
  optimizer = { weight_decay = 0.1, clip = 1.0 },
  checkpoint = { every = 10, keep = 2 },
  out = "../../runs/demo/train",
}
