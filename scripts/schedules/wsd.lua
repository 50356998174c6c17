-- Warmup-stable-decay: linear warmup, a constant max_lr, and a linear decay to min_lr over the last
-- `decay` fraction of the run. params: max_lr, min_lr, warmup (steps), decay (fraction, e.g. 0.2)
---@type hashi.Schedule
return {
  name = "wsd",
  -- The parameters this schedule takes (an unknown or missing one is an error naming it).
  params = {
    max_lr = "learning rate of the stable part",
    min_lr = "learning rate at the end of the run",
    warmup = "warmup steps at the start of the run",
    decay = "fraction of the run spent decaying linearly to min_lr",
  },
  lr = function(s, p)
    if s.step < p.warmup then
      return p.max_lr * (s.step + 1) / p.warmup
    end
    local decay_steps = math.max(1, math.floor(p.decay * s.total_steps))
    local start = s.total_steps - decay_steps
    if s.step < start then
      return p.max_lr
    end
    return p.max_lr + (p.min_lr - p.max_lr) * (s.step - start + 1) / decay_steps
  end,
}
