"""Reference outputs of transformers' Llama, Mistral and Qwen2 causal LMs for hashi's parity tests.

For each tiny config below: random weights written by `save_pretrained` (f32, bf16, or sharded), fixed
token ids with some labels set to -100, and the reference logits (f32), loss, gradients of the loss for
every parameter, and greedy generation (`generate(do_sample=False)`). The bf16 checkpoint is reloaded and
upcast to f32, so both sides compute in f32 from the same stored values. A word-level tokenizer.json is
written next to each model so that `hashi generate` can be tested end to end.

The families and RoPE types are set up so that their switches matter on 17 training positions and on a
5-token prompt + 16 generated tokens (21 positions): Mistral's and Qwen2's sliding windows are shorter than
both; `dynamic` RoPE's max_position_embeddings (12) and the `original_max_position_embeddings` of `llama3` and
`yarn` (8 or 16) are passed by both, so the generation runs past the original context. The `llama3` bands are
chosen so that head_dim 16 has a kept, a smoothed and a divided frequency. Configs in V4_LAYOUT are rewritten
to transformers v4's top-level `rope_theta` + `rope_scaling` before the model is reloaded (v5 writes
`rope_parameters`), so both layouts are read.

usage: make_reference.py OUT_DIR
"""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

VOCAB = 256
BASE = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
            initializer_range=0.2, bos_token_id=1, eos_token_id=2)
CONFIGS = {
    "gqa": dict(num_key_value_heads=2),
    "tied": dict(tie_word_embeddings=True),
    "rope_theta": dict(rope_theta=500000.0, num_key_value_heads=1),
    "rope_linear": dict(rope_scaling={"rope_type": "linear", "factor": 2.0}),
    "bias": dict(attention_bias=True, mlp_bias=True, num_key_value_heads=2),
    "bf16": dict(num_key_value_heads=2),
    "sharded": dict(num_key_value_heads=2),
    "mistral_window": dict(model_type="mistral", num_key_value_heads=2, sliding_window=4),
    "qwen2_untied": dict(model_type="qwen2", num_key_value_heads=2),
    "qwen2_tied_window": dict(model_type="qwen2", tie_word_embeddings=True, use_sliding_window=True,
                              sliding_window=5, max_window_layers=1),
    "rope_dynamic": dict(max_position_embeddings=12, rope_scaling={"rope_type": "dynamic", "factor": 2.0}),
    "rope_llama3": dict(rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 0.5,
                                      "high_freq_factor": 2.0, "original_max_position_embeddings": 16}),
    "rope_yarn": dict(max_position_embeddings=32, num_key_value_heads=2, rope_theta=20000.0,
                      rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8}),
    "rope_yarn_mscale": dict(model_type="qwen2", max_position_embeddings=32,
                             rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                                              "original_max_position_embeddings": 8, "beta_fast": 4.0,
                                              "beta_slow": 0.25, "truncate": False, "mscale": 1.0,
                                              "mscale_all_dim": 0.5}),
}
V4_LAYOUT = {"rope_linear", "rope_llama3", "rope_yarn"}


def v4_layout(config_json: Path) -> None:
    """Rewrites a v5 `rope_parameters` config as v4's top-level `rope_theta` + `rope_scaling`."""
    cfg = json.loads(config_json.read_text())
    params = dict(cfg.pop("rope_parameters"))
    cfg["rope_theta"] = params.pop("rope_theta")
    cfg["rope_scaling"] = params
    config_json.write_text(json.dumps(cfg, indent=2))


def word_tokenizer(path: Path) -> None:
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({f"w{i}": i for i in range(3, VOCAB)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(path)


def main(out: Path) -> None:
    torch.manual_seed(1234)
    out.mkdir(parents=True, exist_ok=True)
    for name, extra in CONFIGS.items():
        d = out / name
        kw = {**BASE, **extra}
        cfg = AutoConfig.for_model(kw.pop("model_type", "llama"), **kw)
        model = AutoModelForCausalLM.from_config(cfg)
        if name == "bf16":
            model.to(torch.bfloat16).save_pretrained(d)
        elif name == "sharded":
            model.save_pretrained(d, max_shard_size="200KB")
        else:
            model.save_pretrained(d)
        if name in V4_LAYOUT:
            v4_layout(d / "config.json")
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
        word_tokenizer(d)

        ids = torch.randint(3, VOCAB, (2, 17))
        labels = ids.clone()
        labels[1, 12:] = -100  # padding at the end of the second row
        out_ = model(input_ids=ids, labels=labels)
        out_.loss.backward()
        grads = {k: p.grad.detach().clone() for k, p in model.named_parameters()}
        model.zero_grad()

        prompt = torch.tensor([[1, 17, 42, 99, 5]])
        with torch.no_grad():
            gen = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=16,
                                 do_sample=False, eos_token_id=2, pad_token_id=0)
        save_file({
            "ids": ids, "labels": labels,
            "logits": out_.logits.detach().float().contiguous(),
            "loss": out_.loss.detach().reshape(1),
            "prompt": prompt, "generated": gen[:, prompt.shape[1]:].contiguous(),
        }, str(d / "reference.safetensors"))
        save_file(grads, str(d / "grads.safetensors"))
        text_prompt = "w17 w42 w99 w5"
        enc = PreTrainedTokenizerFast.from_pretrained(d)(text_prompt, return_tensors="pt")
        with torch.no_grad():
            gen = model.generate(**enc, max_new_tokens=10, do_sample=False, eos_token_id=2, pad_token_id=0)
        (d / "cli_reference.json").write_text(json.dumps({
            "prompt": text_prompt,
            "prompt_ids": enc["input_ids"][0].tolist(),
            "generated_ids": gen[0, enc["input_ids"].shape[1]:].tolist(),
        }))
    print(json.dumps(sorted(CONFIGS)))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
