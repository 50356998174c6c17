-- The method's exp0 at paper scale, for `hashi export` to a Trainium (or GPU) cluster: Llama-2-13B-chat with the
-- bilingual 32k vocabulary, 4 M-token batches, LR 8e-5 with re-warmup at every data switch, 64 trn1.32xlarge.
return {
  name = "exp0-paper",
  model = "model",
  tokenizer = "tokenizer",
  shards = "shards",
  curriculum = "curriculum_exp0.lua",
  schedule = { script = "../../scripts/schedules/rewarmup_cosine.lua",
               params = { max_lr = 8e-5, min_lr = 8e-6, warmup = 100 } },
  optimizer = { beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1, clip = 1.0 },
  cluster = { nodes = 64, devices_per_node = 32, tensor_parallel = 8, pipeline_parallel = 1,
              micro_batch_size = 1, instance = "trn1.32xlarge" },
  out = "runs/exp0-paper",
}
