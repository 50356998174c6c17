-- The method's settings at paper scale, shared by exp0..exp3 (require "common" from an experiment in this folder):
-- Llama-2-13B-chat with the bilingual 32k vocabulary (model/config.json), 4 M-token batches (curricula), LR 8e-5
-- with a re-warmup at every data switch, and the cluster of the method (64 trn1.32xlarge, TP 8).
local M = {}

---@type hashi.ScheduleRef
M.schedule = { script = "../../scripts/schedules/rewarmup_cosine.lua",
               params = { max_lr = 8e-5, min_lr = 8e-6, warmup = 100 } }
---@type hashi.Optimizer
M.optimizer = { beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1, clip = 1.0 }
---@type hashi.Cluster
M.cluster = { nodes = 64, devices_per_node = 32, tensor_parallel = 8, pipeline_parallel = 1,
              micro_batch_size = 1, instance = "trn1.32xlarge" }

--- An experiment on the shared base. `from_scratch`: random weights of the same config (seed 1234) instead of
--- the transferred Llama-2-13B-chat.
---@param name string
---@param curriculum string
---@param from_scratch boolean?
---@return hashi.Experiment
function M.experiment(name, curriculum, from_scratch)
  ---@type hashi.Experiment
  local e = {
    name = name,
    tokenizer = "tokenizer",
    shards = "shards",
    curriculum = curriculum,
    schedule = M.schedule,
    optimizer = M.optimizer,
    cluster = M.cluster,
    out = "runs/" .. name,
  }
  if from_scratch then
    e.init = { config = "model/config.json", seed = 1234 }
  else
    e.model = "model"
  end
  return e
end

return M
