"""Cut the mini reproduction's evaluation sets from the shared data (../shared/data/eval), deterministically:
the first records of each task's few-shot pool and evaluation split (see README.md for sources and licences).

Usage: python3 examples/mini/eval/make_eval.py [--shared ../shared/data/eval]
"""
import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
# task folder: {file: records}
CUTS = {
    "jcommonsenseqa": {"train.jsonl": 300, "validation.jsonl": 300},
    "jnli": {"train.jsonl": 300, "validation.jsonl": 300},
    "jcola": {"train.jsonl": 300, "validation.jsonl": 300},
    "jsquad": {"train.jsonl": 60, "validation.jsonl": 120},
    "jaquad": {"train.jsonl": 60, "validation.jsonl": 120},
    "mgsm_ja": {"train.jsonl": 8, "test.jsonl": 200},
    "mnli": {"train.jsonl": 200, "validation.jsonl": 300},
    "qnli": {"train.jsonl": 200, "validation.jsonl": 300},
    # llm-jp-eval (Swallow's protocol): whole few-shot pools, so that the seed-42 shots are upstream's.
    "jemhopqa": {"train.jsonl": None, "validation.jsonl": None},
    "niilc": {"train.jsonl": None, "test.jsonl": 120},
    "jmmlu": {"train.jsonl": None, "test.jsonl": 200},
}
# JMMLU's japanese_history and world_history questions are research/evaluation only (JMMLU README): never shipped.
# Its shots are the train file's first five lines, all CC BY-SA 4.0, so dropping the two others keeps them.
SHIPPABLE = "CC BY-SA 4.0"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(HERE.parents[2].parent / "shared" / "data" / "eval"))
    src = Path(ap.parse_args().shared)
    for task, files in CUTS.items():
        (HERE / task).mkdir(exist_ok=True)
        for name, n in files.items():
            with open(src / task / name, encoding="utf-8") as f:
                lines = [l for l in f if l.strip()]
            if task == "jmmlu":
                lines = [l for l in lines if json.loads(l)["license"] == SHIPPABLE]
            lines = lines[:n]
            (HERE / task / name).write_text("".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
