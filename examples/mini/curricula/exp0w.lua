-- Experiment 0 with an embedding warm-up: the first 10% of the tokens train only the embedding rows the transfer
-- initialised (every other weight and every copied row frozen, peak LR 3e-3), then the method's phases on the
-- remaining 90% (the same total as exp0).
---@type hashi.Plan
return require("curricula").embedding_warmup(require("method").exp0(), 0.1, 3e-3)
