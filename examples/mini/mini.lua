-- The mini reproduction: the method's four experiments on the corpora shipped in corpus/, from the small English
-- Llama in base/model (made by base/make.sh with hashi's own pipeline). `hashi run examples/mini/mini.lua`
-- writes everything to runs/mini; `--quick` (hashi.quick) shrinks every size for the test suite.
local quick = hashi.quick

-- The method's four experiments, and (not in --quick) exp0 with an embedding warm-up phase.
local variants = {
  { name = "exp0", label = "3:1 then 1:3, quality order (the method)", curriculum = "curricula/exp0.lua" },
  { name = "exp1", label = "1:1", curriculum = "curricula/exp1.lua" },
  { name = "exp2", label = "from scratch", curriculum = "curricula/exp2.lua", from_scratch = true },
  { name = "exp3", label = "shuffled sources", curriculum = "curricula/exp3.lua" },
}
if not quick then
  variants[#variants + 1] = { name = "exp0w", label = "exp0 + embedding warm-up (new rows only, 10% of tokens)",
                              curriculum = "curricula/exp0w.lua" }
end

---@type hashi.RunFile
return {
  name = quick and "mini (quick)" or "mini",
  out = quick and "../../runs/mini-quick" or "../../runs/mini",
  seeds = { 1 },
  base = "base/model",
  tokenizer = {
    inputs = { "ja=corpus/train/ja_*.jsonl", "en=corpus/train/en_*.jsonl" },
    vocab_size = 8000,
    sampling = "equal",
  },
  transfer = { init = "../../scripts/init/subword_mean.lua" },
  corpora = "corpora.lua",
  train = {
    schedule = { script = "../../scripts/schedules/rewarmup_cosine.lua",
                 params = { max_lr = 1e-3, min_lr = 1e-4, warmup = quick and 1 or 4 } },
    optimizer = { beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1, clip = 1.0 },
    checkpoint = { every = quick and 0 or 50, keep = 1 },
    -- Bits per byte on the held-out text (eval.bpb) inside the training loop: every 16 steps and at every switch.
    eval = { every = quick and 0 or 16, bpb_bytes = quick and 2000 or 6000 },
    -- 4,096 tokens per step; the method's 4 M-token batches and real corpus sizes are in examples/paper.
    plan_overrides = { seq_len = 256, batch_size = 16, total_tokens = quick and 49152 or 786432 },
  },
  eval = {
    tasks = { "jcommonsenseqa-1.1-0.1", "jnli-1.3-0.2", "jcola-0.2-0.3", "jsquad-1.1-0.1", "jaquad-0.1-0.1",
              "mgsm-1.0-0.3", "mnli", "qnli" },
    -- Swallow's protocol too (llm-jp-eval v1.3.0): its five tasks, and JCommonsenseQA/JSQuAD under both protocols.
    protocols = { "llmjp" },
    shots = 3,
    limit = quick and 3 or 40,
    data = "eval",
    bpb = { "ja=corpus/heldout/ja_wiki.jsonl", "en=corpus/heldout/en_wiki.jsonl" },
    bpb_bytes = quick and 4000 or 30000,
    max_gen_toks = quick and 8 or 32,
    truncate_overlong = true,
  },
  variants = variants,
}
