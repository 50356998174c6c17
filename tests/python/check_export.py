"""Checks `hashi export` output with the engines' own code where it can be pip-installed (megatron-core), and
with documented schemas where it cannot (Megatron-LM's argument parser, NxDT's YAML).

usage: check_export.py MEGATRON_OUT NEURON_OUT MEGATRON_FLAGS_FILE    (prints a JSON summary; exit 1 on failure)

- every phase's data blend, parsed by megatron-core's `get_blend_from_list`, has the plan's shares;
- every shard prefix opens with megatron-core's `IndexedDataset`, with the manifest's token count;
- megatron-core's `OptimizerParamScheduler`, built from each job's LR flags, gives hashi's learning rate at
  every step of every phase (the same numbers hashi's Lua schedule gave);
- iterations × global batch × sequence length = the plan's tokens;
- every flag of the launch scripts is one Megatron-LM defines (list extracted from megatron/training/arguments.py);
- the NxDT YAMLs parse, carry the same blends and step counts, and use only keys of NxDT's reference config.
"""

import json
import logging
import sys
import warnings

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

import yaml  # noqa: E402
from megatron.core.datasets.indexed_dataset import IndexedDataset  # noqa: E402
from megatron.core.datasets.utils import get_blend_from_list  # noqa: E402
from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler  # noqa: E402

# Keys of NxDT's examples/conf/megatron_llama_7B_config.yaml (aws-neuron/neuronx-distributed-training), plus
# `model.optim.sched.max_steps` (NeMo's CosineAnnealing parameter, which the reference sets by interpolation).
NXDT_KEYS = {
    "name", "model_source", "seed", "trainer", "exp_manager", "distributed_strategy", "data", "model", "precision",
    "compiler_flags", "compiler_cache_url", "aync_exec_max_inflight_requests", "bucket_size_collectives",
    "neuron_rt_exec_timeout", "neuron_experimental_compress_rg",
    "trainer.devices", "trainer.num_nodes", "trainer.max_epochs", "trainer.max_steps", "trainer.log_every_n_steps",
    "trainer.val_check_interval", "trainer.check_val_every_n_epoch", "trainer.num_sanity_val_steps",
    "trainer.limit_val_batches", "trainer.limit_test_batches", "trainer.gradient_clip_val",
    "exp_manager.log_local_rank_0_only", "exp_manager.create_tensorboard_logger", "exp_manager.explicit_log_dir",
    "exp_manager.exp_dir", "exp_manager.name", "exp_manager.resume_if_exists",
    "exp_manager.resume_ignore_no_checkpoint", "exp_manager.create_checkpoint_callback",
    "exp_manager.checkpoint_callback_params", "exp_manager.checkpoint_callback_params.monitor",
    "exp_manager.checkpoint_callback_params.save_top_k", "exp_manager.checkpoint_callback_params.mode",
    "exp_manager.checkpoint_callback_params.save_last", "exp_manager.checkpoint_callback_params.filename",
    "exp_manager.checkpoint_callback_params.every_n_train_steps", "exp_manager.log_parameter_norm",
    "exp_manager.log_gradient_norm", "exp_manager.save_xser", "exp_manager.load_xser",
    "exp_manager.async_checkpointing", "exp_manager.resume_from_checkpoint",
    "distributed_strategy.tensor_model_parallel_size", "distributed_strategy.pipeline_model_parallel_size",
    "distributed_strategy.virtual_pipeline_model_parallel_size", "distributed_strategy.zero1",
    "distributed_strategy.sequence_parallel",
    "data.micro_batch_size", "data.global_batch_size", "data.data_prefix", "data.index_mapping_dir",
    "data.data_impl", "data.splits_string", "data.seq_length", "data.skip_warmup", "data.num_workers",
    "data.dataloader_type", "data.reset_position_ids", "data.reset_attention_mask", "data.eod_mask_loss",
    "data.validation_drop_last", "data.no_seqlen_plus_one_input_tokens", "data.pad_samples_to_global_batch_size",
    "data.tokenizer", "data.tokenizer.library", "data.tokenizer.type", "data.tokenizer.model",
    "data.tokenizer.vocab_file", "data.tokenizer.merge_file", "data.tokenizer.delimiter",
    "data.tokenizer.sentencepiece_legacy", "data.tokenizer.use_fast",
    "model.encoder_seq_length", "model.max_position_embeddings", "model.num_layers", "model.hidden_size",
    "model.ffn_hidden_size", "model.num_attention_heads", "model.num_kv_heads", "model.init_method_std",
    "model.use_scaled_init_method", "model.hidden_dropout", "model.attention_dropout", "model.ffn_dropout",
    "model.kv_channels", "model.apply_query_key_layer_scaling", "model.normalization", "model.layernorm_epsilon",
    "model.do_layer_norm_weight_decay", "model.make_vocab_size_divisible_by", "model.persist_layer_norm",
    "model.share_embeddings_and_output_weights", "model.position_embedding_type", "model.rotary_percentage",
    "model.activation", "model.transformer_block_type", "model.has_bias", "model.use_cpu_initialization",
    "model.activations_checkpoint_granularity", "model.fusions", "model.fusions.softmax",
    "model.fusions.flash_attention", "model.optim", "model.optim.name", "model.optim.lr",
    "model.optim.weight_decay", "model.optim.capturable", "model.optim.betas", "model.optim.sched",
    "model.optim.sched.name", "model.optim.sched.warmup_steps", "model.optim.sched.constant_steps",
    "model.optim.sched.min_lr", "model.optim.sched.max_steps",
    "precision.type", "precision.master_weights", "precision.fp32_grad_acc", "precision.xla_use_bf16",
    "precision.xla_downcast_bf16", "precision.neuron_rt_stochastic_rounding_en",
}


class Groups:
    """The part of an optimizer the scheduler touches."""

    def __init__(self):
        self.param_groups = [{}]


def fail(msg):
    print(json.dumps({"ok": False, "error": msg}))
    sys.exit(1)


def shares(request):
    """Per phase: corpus -> share of the phase's sequences, from the resolved plan."""
    out = []
    for phase in request["plan"]["phases"]:
        total = phase["batches"] * request["plan"]["decl"]["batch_size"]
        out.append({s["name"]: s["sequences"] / total for lang in phase["langs"] for s in lang["sources"]
                    if s["sequences"] > 0})
    return out


def keys(d, prefix=""):
    for k, v in d.items():
        yield prefix + k
        if isinstance(v, dict):
            yield from keys(v, prefix + k + ".")


def arg(args, flag):
    return args[args.index(flag) + 1]


def main():
    meg, neu, flags_file = sys.argv[1:4]
    request = json.load(open(f"{meg}/request.json"))
    known_flags = {line.strip() for line in open(flags_file) if line.strip().startswith("--")}
    want = shares(request)
    prefix_of = {name: c["prefix"] for name, c in request["corpora"].items()}
    name_of = {c["prefix"]: name for name, c in request["corpora"].items()}
    tokens_read = {}
    for name, c in request["corpora"].items():
        ds = IndexedDataset(c["prefix"])
        n = int(sum(ds.sequence_lengths))
        if n != c["tokens"]:
            fail(f"{c['prefix']}: IndexedDataset has {n} tokens, the manifest says {c['tokens']}")
        tokens_read[name] = n
    jobs = json.load(open(f"{meg}/megatron/jobs.json"))
    common = jobs["common"]["model"] + jobs["common"]["training"]
    gbs = int(arg(jobs["common"]["training"], "--global-batch-size"))
    seq = int(arg(jobs["common"]["model"], "--seq-length"))
    lrs = request["lr"]
    start, planned_tokens, exported_tokens, lr_checked = 0, 0, 0, 0
    used = set()
    for i, job in enumerate(jobs["jobs"]):
        args = job["args"]
        for a in common + args + ["--save", "--load", "--finetune", "--tokenizer-type", "--tokenizer-model"]:
            if a.startswith("--"):
                used.add(a)
                if a not in known_flags:
                    fail(f"{job['job']}: {a} is not a Megatron-LM flag")
        data = args[args.index("--data-path") + 1:]
        data = data[:next((k for k, x in enumerate(data) if x.startswith("--")), len(data))]
        prefixes, weights = get_blend_from_list(data)
        total = sum(weights)
        got = {name_of[p]: w / total for p, w in zip(prefixes, weights)}
        if got.keys() != want[i].keys() or any(abs(got[k] - want[i][k]) > 1e-9 for k in got):
            fail(f"{job['job']}: blend {got} != plan shares {want[i]}")
        iters = int(arg(args, "--train-iters"))
        if iters != request["steps_per_phase"][i]:
            fail(f"{job['job']}: {iters} iterations, plan has {request['steps_per_phase'][i]}")
        phase = request["plan"]["phases"][i]
        planned_tokens += phase["batches"] * request["plan"]["decl"]["batch_size"] * request["seq_len"]
        exported_tokens += iters * gbs * seq
        warm = int(arg(args, "--lr-warmup-iters"))
        sched = OptimizerParamScheduler(
            Groups(), init_lr=float(arg(args, "--lr-warmup-init")), max_lr=float(arg(args, "--lr")),
            min_lr=float(arg(args, "--min-lr")), lr_warmup_steps=warm,
            lr_decay_steps=int(arg(args, "--lr-decay-iters")), lr_decay_style=arg(args, "--lr-decay-style"),
            start_wd=0.1, end_wd=0.1, wd_incr_steps=1, wd_incr_style="constant")
        for s in range(iters):
            # Megatron trains iteration s with the LR set after s scheduler steps.
            sched.num_steps = s
            lr = sched.get_lr(sched.optimizer.param_groups[0])
            if abs(lr - lrs[start + s]) > 1e-12 * max(abs(lr), 1e-12):
                fail(f"{job['job']} step {s}: megatron-core LR {lr} != hashi {lrs[start + s]}")
            lr_checked += 1
        start += iters
        if i > 0 and not job["finetune"]:
            fail(f"{job['job']}: later phases must restart the scheduler (--finetune)")
    if planned_tokens != exported_tokens:
        fail(f"exported {exported_tokens} tokens, plan has {planned_tokens}")
    # Neuron
    njobs = json.load(open(f"{neu}/neuron/jobs.json"))["jobs"]
    for i, job in enumerate(njobs):
        cfg = yaml.safe_load(open(f"{neu}/neuron/{job['job']}.yaml"))
        extra = set(keys(cfg)) - NXDT_KEYS
        if extra:
            fail(f"{job['job']}.yaml: keys not in NxDT's reference config: {sorted(extra)}")
        dp = cfg["data"]["data_prefix"]
        got = {name_of[p]: w for w, p in zip(dp[0::2], dp[1::2])}
        if got.keys() != want[i].keys() or any(abs(got[k] - want[i][k]) > 1e-9 for k in got):
            fail(f"{job['job']}.yaml: blend {got} != plan shares {want[i]}")
        if cfg["trainer"]["max_steps"] != request["steps_per_phase"][i]:
            fail(f"{job['job']}.yaml: max_steps {cfg['trainer']['max_steps']}")
        if cfg["data"]["global_batch_size"] * cfg["data"]["seq_length"] != gbs * seq:
            fail(f"{job['job']}.yaml: batch differs from the Megatron export")
    print(json.dumps({"ok": True, "jobs": len(jobs["jobs"]), "lr_steps_checked": lr_checked,
                      "megatron_flags_used": len(used), "corpora_read": tokens_read,
                      "neuron_configs": len(njobs), "shares": want}))


if __name__ == "__main__":
    main()
