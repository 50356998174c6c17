"""Reads hashi's prepared shards with megatron-core's IndexedDataset and checks every sequence against the
source documents tokenized by Python `tokenizers` (no special tokens) followed by the manifest's EOS id.

usage: megatron_check.py OUT_DIR      (prints JSON: sequences and tokens checked per corpus)
"""

import json
import logging
import sys
import warnings

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

from megatron.core.datasets.indexed_dataset import IndexedDataset  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402


def documents(path, field):
    with open(path, "rb") as f:
        for raw in f:
            text = raw.decode("utf-8")
            if path.endswith((".jsonl", ".json")):
                if not text.strip():
                    continue
                t = json.loads(text)[field]
            else:
                t = text.rstrip("\n").rstrip("\r")
                if not t.strip():
                    continue
            if t:
                yield t


def main(out):
    manifest = json.load(open(f"{out}/manifest.json"))
    tok = Tokenizer.from_file(manifest["tokenizer"])
    eos = manifest["eos_id"]
    result = {}
    for entry in manifest["corpora"]:
        ds = IndexedDataset(f"{out}/{entry['prefix']}")
        docs = [d for f in entry["inputs"] for d in documents(f["path"], entry["corpus"]["field"])]
        assert len(ds) == len(docs) == entry["documents"], (entry["prefix"], len(ds), len(docs))
        tokens = 0
        for i, (doc, enc) in enumerate(zip(docs, tok.encode_batch(docs, add_special_tokens=False))):
            want = enc.ids + [eos]
            got = ds[i].tolist()
            assert got == want, f"{entry['prefix']}[{i}]: megatron reads {got[:12]}..., tokenizers gives {want[:12]}..."
            tokens += len(got)
        assert tokens == entry["tokens"], (entry["prefix"], tokens, entry["tokens"])
        result[entry["prefix"]] = {"sequences": len(ds), "tokens": tokens, "dtype": str(ds.index.dtype.__name__)}
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
