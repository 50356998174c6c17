-- Warmup-stable-decay: linear warmup, a constant max_lr, and a linear decay to min_lr over the last
-- `decay` fraction of the run. params: max_lr, min_lr, warmup (steps), decay (fraction, e.g. 0.2)
---@type hashi.Schedule
return {
  name = "wsd",
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
