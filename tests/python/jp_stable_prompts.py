"""Golden prompts of every jp-stable prompt version, produced by the upstream harness's own task classes.

Runs Stability-AI/lm-evaluation-harness (branch jp-stable, commit effdbeaf) on hashi's evaluation data and writes,
per task variant, the first documents of the seed-42 shuffle with their 3-shot contexts and requests, exactly as
`evaluator.evaluate` builds them (one `random.Random(42)` shared by the shuffle and every document's few-shot draw).

    python tests/python/jp_stable_prompts.py --upstream DIR --shared ../shared/data --out FILE

DIR holds upstream's `lm_eval` package (e.g. `git archive effdbeaf lm_eval | tar -x -C DIR`). Nothing of upstream is
copied here: its modules are imported. Heavy imports it does not use on these paths (torch, datasets, sqlitedict,
tqdm, omegaconf, sacrebleu, rouge_score, sklearn) are replaced by empty modules. Deviations from a stock run, all in
how data reaches the task (the same as `../shared/data/golden/jp-harness/README.md`):
- `download` loads hashi's JSONL files instead of the HF hub (JNLI labels mapped to shunk031/JGLUE's ClassLabel
  order; MARC-ja string labels likewise; JaQKET passages in HF's columnar layout, cut to the first 5 as the HF
  loader's `num_contexts=5` does);
- MGSM and JaQKET need a tokenizer for their "fewer shots until it fits" loop: one that counts characters, with a
  limit no prompt reaches, so the loop never drops a shot;
"""

import argparse
import importlib
import json
import os
import random
import sys
import types

DOCS_PER_TASK = 3
SHOTS = 3
FAMILIES = ["jcommonsenseqa", "jnli", "jcola", "jsquad", "jaquad", "mgsm", "marc_ja", "jaqket_v2"]


def stub_modules():
    """Empty stand-ins for imports upstream makes but never calls on the prompt paths."""

    class Anything(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return Anything(name)

        def __call__(self, *a, **k):
            return Anything("call")

    for name in ["torch", "torch.nn", "torch.nn.functional", "sqlitedict", "tqdm", "omegaconf", "sacrebleu",
                 "rouge_score", "rouge_score.rouge_scorer", "rouge_score.scoring", "datasets", "sklearn",
                 "sklearn.metrics", "transformers", "pycountry", "jsonlines", "zstandard", "numexpr"]:
        sys.modules[name] = Anything(name)
    sys.modules["sqlitedict"].SqliteDict = object
    sys.modules["datasets"].Metric = object
    sys.modules["tqdm"].tqdm = lambda x, *a, **k: x
    try:
        importlib.import_module("numpy")
    except ImportError:
        sys.modules["numpy"] = Anything("numpy")


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def columnar_ctxs(doc):
    ctxs = doc["ctxs"]
    if isinstance(ctxs, list):
        keys = ["title", "text", "has_answer"]
        ctxs = {k: [c.get(k, False) for c in ctxs] for k in keys}
    doc = dict(doc)
    doc["ctxs"] = {k: v[:5] for k, v in ctxs.items()}
    return doc


def load_data(family, shared, fixtures):
    """(train, evaluation split name, evaluation docs) as the HF datasets would give them."""
    if family == "marc_ja":
        base = os.path.join(fixtures, "marc_ja")
        fix = lambda d: {**d, "label": {"positive": 0, "negative": 1}.get(d["label"], d["label"])}
        return [fix(d) for d in read_jsonl(f"{base}/train.jsonl")], "validation", [
            fix(d) for d in read_jsonl(f"{base}/validation.jsonl")]
    if family == "jaqket_v2":
        base = os.path.join(fixtures, "jaqket_v2")
        return [columnar_ctxs(d) for d in read_jsonl(f"{base}/train.jsonl")], "validation", [
            columnar_ctxs(d) for d in read_jsonl(f"{base}/validation.jsonl")]
    folder, split = {"mgsm": ("mgsm_ja", "test")}.get(family, (family, "validation"))
    base = os.path.join(shared, "eval", folder)
    train, docs = read_jsonl(f"{base}/train.jsonl"), read_jsonl(f"{base}/{split}.jsonl")
    if family == "jnli":
        order = {"entailment": 0, "contradiction": 1, "neutral": 2}
        train, docs = ([{**d, "label": order[d["label"]]} for d in ds] for ds in (train, docs))
    return train, split, docs


class CharTokenizer:
    eos_token = "</s>"

    def encode(self, text, add_special_tokens=False):
        return list(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", required=True, help="folder holding upstream's lm_eval package")
    ap.add_argument("--shared", required=True, help="the shared data folder (its eval/ subfolder)")
    ap.add_argument("--fixtures", default=os.path.join(os.path.dirname(__file__), "..", "fixtures", "eval"))
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    os.environ["DYNAMIC_MAX_LENGTH"] = "false"
    stub_modules()
    sys.path.insert(0, a.upstream)
    pkg = types.ModuleType("lm_eval.tasks")
    pkg.__path__ = [os.path.join(a.upstream, "lm_eval", "tasks")]
    sys.modules["lm_eval.tasks"] = pkg
    base = importlib.import_module("lm_eval.base")

    current = {}

    def download(self, *args, **kwargs):
        train, split, docs = current["data"]
        self.dataset = {"train": train, split: docs}

    base.Task.download = download
    rows = []
    for family in FAMILIES:
        module = importlib.import_module(f"lm_eval.tasks.ja.{family}")
        current["data"] = load_data(family, a.shared, a.fixtures)
        for name, cls in module.construct_tasks().items():
            cls.download = download
            task = cls()
            task.set_tokenizer(CharTokenizer())
            task.max_length, task.max_gen_toks = 10**9, 256
            split = current["data"][1]
            docs = list(task.validation_docs() if split == "validation" else task.test_docs())
            indexed = list(enumerate(docs))
            rnd = random.Random()
            rnd.seed(42)
            rnd.shuffle(indexed)
            train_docs = task.training_docs()
            train_docs = list(train_docs)
            for doc_index, (source_index, doc) in enumerate(indexed[:DOCS_PER_TASK]):
                state = rnd.getstate()
                ctx = task.fewshot_context(doc=doc, num_fewshot=SHOTS, rnd=rnd, description="")
                # Replay the draw to name the picks (fewshot_examples is what fewshot_context called).
                replay = random.Random()
                replay.setstate(state)
                picks = (task._stratified_fewshot_examples(task._training_docs, SHOTS, replay)
                         if name.startswith(("jnli", "jcola")) else replay.sample(task._training_docs, SHOTS))
                ids = [next(i for i, t in enumerate(task._training_docs) if t is p) for p in picks]
                reqs = task.construct_requests(doc, ctx)
                reqs = reqs if isinstance(reqs, (list, tuple)) else [reqs]
                row = {"task": name, "doc_index": doc_index, "source_index": source_index,
                       "fewshot_train_indices": ids, "context": ctx, "request_type": reqs[0].request_type}
                if row["request_type"] == "loglikelihood":
                    row["choices"] = [r.args[1] for r in reqs]
                else:
                    row["until"] = list(reqs[0].args[1])
                rows.append(row)
    with open(a.out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(rows)} prompts of {len({r['task'] for r in rows})} task variants -> {a.out}")


if __name__ == "__main__":
    main()
