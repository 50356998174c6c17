-- The GPU parity check's torch side: same init, data, schedule and optimizer as the other side.
return { name = 'parity-torch', init = { config = 'parity_config.json', seed = 1 }, shards = '../../../.gpu/shards',
  curriculum = 'parity_plan.lua',
  schedule = { script = '../../../scripts/schedules/rewarmup_cosine.lua', params = { max_lr = 3e-3, min_lr = 3e-4, warmup = 5 } },
  checkpoint = { every = 0, keep = 1 }, out = '../../../.gpu/run_torch', backend = 'torch', backend_options = { device = 'cuda', precision = 'bf16' } }
