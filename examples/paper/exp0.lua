-- The method's exp0 at paper scale, for `hashi export` to a Trainium (or GPU) cluster.
---@type hashi.Experiment
return require("common").experiment("exp0-paper", "curriculum_exp0.lua")
