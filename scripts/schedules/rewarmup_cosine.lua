-- The method's schedule: at every data switch (phase start) the learning rate warms up again, then follows a
-- cosine to min_lr within the phase. params: max_lr, min_lr, warmup (steps per phase; capped at the phase).
--
-- The curve is exactly the one Megatron-LM's scheduler (and NeMo's CosineAnnealing) draws for a job of one
-- phase — warmup from max_lr / warmup over warmup - 1 steps, cosine over the phase — so `hashi export` can hand
-- each phase to a cluster engine as its own job with the numbers `engine_schedule` returns.
local function warmup_of(s, p)
  return math.min(p.warmup, math.max(1, s.phase_steps - 1))
end

---@type hashi.Schedule
return {
  name = "rewarmup_cosine",
  -- The parameters this schedule takes (an unknown or missing one is an error naming it).
  params = {
    max_lr = "peak learning rate of every phase",
    min_lr = "learning rate at the end of every phase",
    warmup = "warmup steps at the start of every phase (capped at the phase)",
  },
  lr = function(s, p)
    local w = warmup_of(s, p)
    if s.phase_step < w then
      return p.max_lr * (s.phase_step + 1) / w
    end
    local ratio = (s.phase_step - w + 1) / (s.phase_steps - w + 1)
    return p.min_lr + 0.5 * (p.max_lr - p.min_lr) * (1 + math.cos(math.pi * math.min(1, ratio)))
  end,
  -- The phase's schedule in the cluster engines' terms (called with the phase's first step).
  engine_schedule = function(s, p)
    local w = warmup_of(s, p)
    return {
      style = "cosine",
      max_lr = p.max_lr,
      min_lr = p.min_lr,
      warmup_init = p.max_lr / w,
      warmup_steps = w - 1,
      decay_steps = s.phase_steps,
    }
  end,
}
