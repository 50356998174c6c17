-- The GPU setting of examples/smollm2 (documented, not run in CI): the method's four experiments from
-- SmolLM2-135M-Instruct with a 32k bilingual tokenizer, trained through the torch backend plugin (bf16 compute,
-- f32 master weights; plugins/torch/README.md says how to build and load it) at a budget where the experiments can
-- differ: 4 x 2,048-token sequences x 8 accumulation = 65,536 tokens per step, 12M tokens per experiment. The
-- evaluations run on the built-in CPU model unless `hashi eval --backend torch` is used by hand (log-likelihood
-- tasks only); evaluation of generation tasks through a plugin is the GPU issue's work.
--   HASHI_PLUGIN_PATH=plugins/torch/target/release target/release/hashi run examples/smollm2/gpu.lua
local mini = "../mini/"

---@type hashi.RunFile
return {
  name = "smollm2-135m, GPU",
  out = "../../runs/smollm2-gpu",
  seeds = { 1 },
  base = "../../runs/smollm2-base",
  tokenizer = {
    inputs = { "ja=" .. mini .. "corpus/train/ja_*.jsonl", "en=" .. mini .. "corpus/train/en_*.jsonl" },
    vocab_size = 32000,
    sampling = "equal",
  },
  transfer = { init = "../../scripts/init/subword_mean.lua" },
  corpora = mini .. "corpora.lua",
  train = {
    schedule = { script = "../../scripts/schedules/rewarmup_cosine.lua",
                 params = { max_lr = 3e-4, min_lr = 3e-5, warmup = 20 } },
    optimizer = { beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1, clip = 1.0 },
    checkpoint = { every = 0, keep = 1, optimizer_state = "latest" },
    backend = "torch",
    backend_options = { device = "cuda", precision = "bf16" },
    plan_overrides = { seq_len = 2048, batch_size = 4, total_tokens = 12582912 },
    batch_tokens = 65536,
  },
  eval = {
    tasks = { "jcommonsenseqa-1.1-0.1", "jnli-1.3-0.2", "jcola-0.2-0.3", "jsquad-1.1-0.1", "jaquad-0.1-0.1",
              "mgsm-1.0-0.3", "mnli", "qnli" },
    shots = 3,
    limit = 200,
    data = mini .. "eval",
    bpb = { "ja=" .. mini .. "corpus/heldout/ja_wiki.jsonl", "en=" .. mini .. "corpus/heldout/en_wiki.jsonl" },
    bpb_bytes = 100000,
    max_gen_toks = 64,
    truncate_overlong = true,
  },
  variants = {
    { name = "exp0", label = "3:1 then 1:3, quality order (the method)", curriculum = mini .. "curricula/exp0.lua" },
    { name = "exp1", label = "1:1", curriculum = mini .. "curricula/exp1.lua" },
    { name = "exp2", label = "from scratch", curriculum = mini .. "curricula/exp2.lua", from_scratch = true },
    { name = "exp3", label = "shuffled sources", curriculum = mini .. "curricula/exp3.lua" },
  },
}
