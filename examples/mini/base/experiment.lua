-- The mini reproduction's English source model, pretrained from random weights by hashi itself (make.sh).
---@type hashi.Experiment
return {
  name = "mini-base",
  init = { config = "config.json", seed = 0 },
  tokenizer = "../../../target/mini-base/tokenizer",
  shards = "../../../target/mini-base/shards",
  curriculum = "curriculum.lua",
  schedule = { script = "../../../scripts/schedules/warmup_cosine.lua", params = { max_lr = 3e-3, min_lr = 3e-4, warmup = 30 } },
  optimizer = { beta1 = 0.9, beta2 = 0.95, weight_decay = 0.1, clip = 1.0 },
  checkpoint = { every = 100, keep = 1 },
  out = "../../../target/mini-base/train",
}
