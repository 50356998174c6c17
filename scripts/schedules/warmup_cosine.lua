-- Linear warmup, then cosine decay to min_lr over the whole run.
-- params: max_lr, min_lr, warmup (steps)
---@type hashi.Schedule
return {
  name = "warmup_cosine",
  -- The parameters this schedule takes (an unknown or missing one is an error naming it).
  params = {
    max_lr = "peak learning rate",
    min_lr = "learning rate at the end of the run",
    warmup = "warmup steps at the start of the run",
  },
  lr = function(s, p)
    if s.step < p.warmup then
      return p.max_lr * (s.step + 1) / p.warmup
    end
    local progress = (s.step - p.warmup) / math.max(1, s.total_steps - p.warmup)
    return p.min_lr + 0.5 * (p.max_lr - p.min_lr) * (1 + math.cos(math.pi * math.min(1, progress)))
  end,
}
