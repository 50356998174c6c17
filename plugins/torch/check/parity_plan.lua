-- 40 batches of 8 × 128 tokens over the demo shards (EN:JA 3:1 then 1:3); the check trains the first 20 steps.
local sources = { en = { order = 'blend', names = { 'en' } }, ja = { order = 'sequential', names = { 'ja' } } }
return { name = 'parity', seq_len = 128, batch_size = 8, total_tokens = 40960, seed = 3, on_exhausted = 'repeat',
  phases = {
    { name = 'a', tokens = 0.5, shares = { en = 0.75, ja = 0.25 }, sources = sources },
    { name = 'b', tokens = 0.5, shares = { en = 0.25, ja = 0.75 }, sources = sources } } }
