"""Peers of hashi's tokenizer parity tests.

usage:
  tokenizer_peers.py encode TOKENIZER_DIR TEXTS.json
      ids from Python `tokenizers` and from `transformers.AutoTokenizer` (special tokens added), and the
      transformers decode of its own ids (special tokens skipped); JSON on stdout.
  tokenizer_peers.py sentencepiece CORPUS.txt MODEL_PREFIX VOCAB_SIZE TEXTS.json
      trains a SentencePiece BPE model with Llama 2's settings and prints its ids (no BOS) for the texts.
  tokenizer_peers.py sp_encode MODEL TEXTS.json
      the ids (no BOS) of an existing SentencePiece model for the texts.
"""

import json
import sys


def encode(tok_dir: str, texts_path: str) -> None:
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    texts = json.load(open(texts_path, encoding="utf-8"))
    raw = Tokenizer.from_file(f"{tok_dir}/tokenizer.json")
    auto = AutoTokenizer.from_pretrained(tok_dir)
    out = {
        "tokenizers": [raw.encode(t).ids for t in texts],
        "transformers": [auto(t)["input_ids"] for t in texts],
    }
    out["transformers_decoded"] = [auto.decode(ids, skip_special_tokens=True) for ids in out["transformers"]]
    json.dump(out, sys.stdout, ensure_ascii=False)


def sentencepiece(corpus: str, prefix: str, vocab_size: str, texts_path: str) -> None:
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, model_type="bpe", vocab_size=int(vocab_size),
        byte_fallback=True, split_digits=True, normalization_rule_name="identity",
        remove_extra_whitespaces=False, add_dummy_prefix=True, allow_whitespace_only_pieces=True,
        character_coverage=0.9995, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        user_defined_symbols=["<mask>"], max_sentence_length=100000, minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=f"{prefix}.model")
    texts = json.load(open(texts_path, encoding="utf-8"))
    json.dump({"ids": [sp.encode(t) for t in texts]}, sys.stdout, ensure_ascii=False)


def sp_encode(model: str, texts_path: str) -> None:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=model)
    texts = json.load(open(texts_path, encoding="utf-8"))
    json.dump({"ids": [sp.encode(t) for t in texts]}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    {"encode": encode, "sentencepiece": sentencepiece, "sp_encode": sp_encode}[sys.argv[1]](*sys.argv[2:])
