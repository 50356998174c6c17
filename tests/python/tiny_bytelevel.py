"""A tiny byte-level model as transformers writes one, for transfers across tokenizer families: a byte-level BPE
tokenizer (GPT-2's byte map, ByteLevel pre-tokenizer and decoder, `<|endoftext|>` as bos/eos/unk) trained by
`tokenizers` on the given JSONL files, and a random LlamaForCausalLM of its vocabulary size (untied, f32, seed 0)
saved with `save_pretrained`.

usage: tiny_bytelevel.py OUT VOCAB_SIZE CORPUS.jsonl...
"""

import json
import sys

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast


def texts(paths):
    for p in paths:
        for line in open(p, encoding="utf-8"):
            yield json.loads(line)["text"]


def main(out, vocab_size, *corpora):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=int(vocab_size), special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts(corpora), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   unk_token="<|endoftext|>")
    fast.save_pretrained(out)
    eot = tok.token_to_id("<|endoftext|>")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      initializer_range=0.2, bos_token_id=eot, eos_token_id=eot, tie_word_embeddings=False)
    LlamaForCausalLM(cfg).save_pretrained(out, safe_serialization=True)
    print(json.dumps({"vocab_size": tok.get_vocab_size(), "eot": eot}))


if __name__ == "__main__":
    main(*sys.argv[1:])
