"""Loads a transferred model's tokenizer with transformers (as a user would) and reports how it treats the given
special tokens: their ids, whether transformers counts them as special, the ids of a chat-formatted text, and the
special-token ids of config.json and generation_config.json.

usage: special_tokens_check.py MODEL_DIR TEXT TOKEN...   (prints JSON)
"""

import json
import os
import sys

from transformers import AutoTokenizer


def main(model_dir, text, *tokens):
    tok = AutoTokenizer.from_pretrained(model_dir)
    config = json.load(open(os.path.join(model_dir, "config.json")))
    gen_path = os.path.join(model_dir, "generation_config.json")
    gen = json.load(open(gen_path)) if os.path.exists(gen_path) else {}
    ids = tok(text, add_special_tokens=False).input_ids
    print(json.dumps({
        "ids": {t: tok.convert_tokens_to_ids(t) for t in tokens},
        "special": {t: t in tok.all_special_tokens for t in tokens},
        "encoded": ids,
        "decoded_without_specials": tok.decode(ids, skip_special_tokens=True),
        "vocab_size": len(tok),
        "config": {k: config.get(k) for k in ("bos_token_id", "eos_token_id", "pad_token_id", "vocab_size")},
        "generation_config": {k: gen.get(k) for k in ("bos_token_id", "eos_token_id", "pad_token_id")},
        "has_chat_template": bool(getattr(tok, "chat_template", None)),
    }, ensure_ascii=False))


if __name__ == "__main__":
    main(*sys.argv[1:])
