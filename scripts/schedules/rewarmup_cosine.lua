-- The method's schedule: at every data switch (phase start) the learning rate warms up again, then follows a
-- cosine to min_lr within the phase. params: max_lr, min_lr, warmup (steps per phase; capped at the phase)
return {
  name = "rewarmup_cosine",
  lr = function(s, p)
    local warmup = math.min(p.warmup, math.max(1, s.phase_steps - 1))
    if s.phase_step < warmup then
      return p.max_lr * (s.phase_step + 1) / warmup
    end
    local progress = (s.phase_step - warmup) / math.max(1, s.phase_steps - warmup)
    return p.min_lr + 0.5 * (p.max_lr - p.min_lr) * (1 + math.cos(math.pi * math.min(1, progress)))
  end,
}
