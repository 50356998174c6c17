-- Probe of the step-0 comparison in BENCHMARKS.md (not a shipped strategy).
return { name = "first_half", recipe = function(token, ctx)
  local ids = token.old_ids
  if #ids == 0 then return { mean = 1 } end
  if #ids == 1 then return { terms = { { ids[1], 1 } } } end
  local terms = { { ids[1], 0.5 } }
  for i = 2, #ids do terms[#terms + 1] = { ids[i], 0.5 / (#ids - 1) } end
  return { terms = terms }
end }
