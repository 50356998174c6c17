"""Peers of `hashi bench tokenizer`: SentencePiece and HF `tokenizers` (Python), trained and run on the same text.

  train-sp TEXT VOCAB PREFIX COVERAGE      SentencePiece BPE, Llama 2's settings (byte fallback, digits split)
  train-hf TEXT VOCAB OUT ALPHABET         tokenizers' BpeTrainer with SentencePiece-like pre-splitting
                                           (metaspace words, single digits, Unicode scripts) and the same
                                           number of kept characters as hashi (limit_alphabet)
  encode-sp MODEL TEXT THREADS             sp.encode over all lines with num_threads
  encode-hf TOKENIZER_JSON TEXT            Tokenizer.encode_batch (threads from RAYON_NUM_THREADS)
Each prints JSON: seconds, and peak_rss_mib (this process's VmHWM) or mb_per_s.
"""

import json
import sys
import time


def peak_rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def lines(path):
    with open(path, encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f if l.strip()]


def train_sp(text, vocab, prefix, coverage):
    import sentencepiece as spm
    t0 = time.perf_counter()
    spm.SentencePieceTrainer.train(
        input=text, model_prefix=prefix, model_type="bpe", vocab_size=int(vocab), byte_fallback=True,
        split_digits=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True, character_coverage=float(coverage), unk_id=0, bos_id=1, eos_id=2,
        pad_id=-1, max_sentence_length=1 << 30, input_sentence_size=0, num_threads=2, minloglevel=2,
        train_extremely_large_corpus=False)
    return {"seconds": time.perf_counter() - t0, "peak_rss_mib": peak_rss_mib()}


def train_hf(text, vocab, out, alphabet):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    t0 = time.perf_counter()
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split("▁", behavior="merged_with_next"),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.UnicodeScripts(),
    ])
    specials = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=int(vocab), special_tokens=specials, limit_alphabet=int(alphabet),
                                  show_progress=False)
    tok.train([text], trainer)
    tok.save(out)
    return {"seconds": time.perf_counter() - t0, "peak_rss_mib": peak_rss_mib(),
            "vocab_size": tok.get_vocab_size()}


def encode_sp(model, text, threads):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=model)
    data = lines(text)
    nbytes = sum(len(l.encode()) for l in data)
    t0 = time.perf_counter()
    ids = sp.encode(data, num_threads=int(threads))
    dt = time.perf_counter() - t0
    return {"seconds": dt, "mb_per_s": nbytes / dt / 1e6, "tokens": sum(map(len, ids))}


def encode_hf(tokenizer_json, text):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tokenizer_json)
    data = lines(text)
    nbytes = sum(len(l.encode()) for l in data)
    t0 = time.perf_counter()
    encs = tok.encode_batch(data, add_special_tokens=False)
    dt = time.perf_counter() - t0
    return {"seconds": dt, "mb_per_s": nbytes / dt / 1e6, "tokens": sum(len(e.ids) for e in encs)}


if __name__ == "__main__":
    fn = {"train-sp": train_sp, "train-hf": train_hf, "encode-sp": encode_sp, "encode-hf": encode_hf}[sys.argv[1]]
    print(json.dumps(fn(*sys.argv[2:])))
