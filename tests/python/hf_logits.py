"""Loads a model directory with transformers (as a user would) and writes its f32 logits for given ids.

Fails if transformers reports any missing, unexpected or mismatched weight: it would otherwise silently
initialise them at random and the comparison would be meaningless.

usage: hf_logits.py MODEL_DIR IDS_JSON OUT.safetensors     (IDS_JSON: [[1,2,3],[4,5,6]])
"""

import json
import sys

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM


def main(model_dir: str, ids_json: str, out: str) -> None:
    model, info = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        sys.exit(f"{model_dir}: transformers could not load every weight: {problems}")
    ids = torch.tensor(json.loads(ids_json))
    with torch.no_grad():
        logits = model.eval()(input_ids=ids).logits.float().contiguous()
    save_file({"logits": logits}, out)


if __name__ == "__main__":
    main(*sys.argv[1:])
