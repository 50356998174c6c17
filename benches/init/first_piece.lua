-- Probe of the step-0 comparison in BENCHMARKS.md (not a shipped strategy).
return { name = "first_piece", recipe = function(token, ctx)
  if #token.old_ids == 0 then return { mean = 1 } end
  return { terms = { { token.old_ids[1], 1 } } }
end }
