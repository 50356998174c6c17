//! AWS Trainium: NeuronX Distributed Training (NxDT), the successor of the NeMo-Megatron-on-Neuron stack
//! (`neuronx-nemo-megatron`) the method used; NxDT keeps NeMo-Megatron's YAML layout and its Megatron data
//! pipeline, so the same `.bin/.idx` shards and blends apply. One YAML per phase in the layout of NxDT's
//! `examples/conf/megatron_llama_7B_config.yaml`, a checkpoint conversion step, `run_all.sh` and `jobs.json`.
//!
//! The LR curve uses NeMo's `CosineAnnealing` (warmup `(s+1)/(warmup+1)·max_lr`, then a cosine over
//! `max_steps`); the export checks that it equals hashi's schedule at every step of every phase.

use std::path::Path;

use serde_json::{Value, json};

use crate::request::Dims;
use crate::{Job, executable, sh, write};
use hashi_core::{EngineSchedule as Schedule, ExportRequest as Request};

/// NeMo's CosineAnnealing (no constant steps) at step `s`.
fn nemo_lr(s: &Schedule, step: u64) -> f64 {
    let w = s.warmup_steps;
    if step < w {
        return s.max_lr * (step + 1) as f64 / (w + 1) as f64;
    }
    if step > s.decay_steps {
        return s.min_lr;
    }
    let ratio = (step - w) as f64 / (s.decay_steps - w).max(1) as f64;
    s.min_lr + (s.max_lr - s.min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * ratio).cos())
}

/// Block YAML of a JSON object; leaves are written as JSON (valid YAML flow scalars and lists).
fn yaml(v: &Value, indent: usize, out: &mut String) {
    if let Value::Object(m) = v {
        for (k, x) in m {
            out.push_str(&" ".repeat(indent));
            out.push_str(k);
            out.push(':');
            if x.is_object() {
                out.push('\n');
                yaml(x, indent + 2, out);
            } else {
                out.push(' ');
                out.push_str(&x.to_string());
                out.push('\n');
            }
        }
    }
}

/// Writes every file; returns their names.
pub fn write_all(r: &Request, jobs: &[Job], out: &Path) -> Result<Vec<String>, String> {
    let d = Dims::of(&r.model)?;
    let c = &r.cluster;
    let dir = out.join("neuron");
    let tokenizer = r.tokenizer.clone().ok_or("no tokenizer directory for NxDT's HuggingFace tokenizer")?;
    let mut start = 0usize;
    for j in jobs {
        let n = j.steps as usize;
        for (s, &want) in r.lr[start..start + n].iter().enumerate() {
            let got = nemo_lr(&j.schedule, s as u64);
            if j.schedule.style != hashi_core::DecayStyle::Cosine
                || (got - want).abs() > 1e-9 * want.abs().max(1e-12)
            {
                return Err(format!(
                    "phase {:?}: NeMo's CosineAnnealing gives {got} at step {s} where the schedule gives {want}; \
                     the neuron export supports cosine schedules with warmup_init = max_lr / (warmup_steps + 1)",
                    j.name
                ));
            }
        }
        start += n;
    }
    let mut files = vec![];
    let mut run_all = String::from(
        "#!/usr/bin/env bash\n# Every phase in order, each an NxDT job (run from NxDT's examples/ folder: NXDT_EXAMPLES).\n\
         set -euo pipefail\nHERE=$(cd \"$(dirname \"$0\")\" && pwd)\n\
         : \"${NXDT_EXAMPLES:?set NXDT_EXAMPLES to neuronx-distributed-training/examples}\"\n: \"${WORK:=$PWD/work}\"\n\
         cd \"$NXDT_EXAMPLES\"\n",
    );
    if r.model.dir.is_some() {
        run_all.push_str("\"$HERE/convert_checkpoint.sh\"\n");
    }
    let mut jobs_json = vec![];
    for j in jobs {
        let resume = if j.index == 0 {
            r.model.dir.as_ref().map(|_| "${oc.env:WORK}/source".to_string())
        } else {
            Some(format!("${{oc.env:WORK}}/{}/checkpoints", jobs[j.index - 1].stem))
        };
        let s = &j.schedule;
        let mut data_prefix = vec![];
        for (w, p, _) in &j.blend {
            data_prefix.push(json!(w));
            data_prefix.push(json!(p));
        }
        let cfg = json!({
            "name": format!("{}_{}", r.experiment, j.stem),
            "model_source": "megatron",
            "seed": 1234,
            "trainer": {
                "devices": c.devices_per_node, "num_nodes": c.nodes, "max_epochs": -1, "max_steps": j.steps,
                "log_every_n_steps": 1, "val_check_interval": j.steps + 1, "check_val_every_n_epoch": null,
                "num_sanity_val_steps": 0, "limit_val_batches": 0, "limit_test_batches": 0,
                "gradient_clip_val": r.optimizer.clip,
            },
            "exp_manager": {
                "log_local_rank_0_only": true, "create_tensorboard_logger": true,
                "explicit_log_dir": format!("${{oc.env:WORK}}/{}", j.stem), "exp_dir": null,
                "name": j.stem, "resume_if_exists": false, "resume_ignore_no_checkpoint": true,
                "create_checkpoint_callback": true,
                "checkpoint_callback_params": {
                    "monitor": "step", "save_top_k": 1, "mode": "max", "save_last": true,
                    "filename": format!("{}--{{step}}-{{consumed_samples}}", j.stem),
                    "every_n_train_steps": j.steps,
                },
                "log_parameter_norm": true, "log_gradient_norm": true, "save_xser": true, "load_xser": true,
                "async_checkpointing": false, "resume_from_checkpoint": resume,
            },
            "distributed_strategy": {
                "tensor_model_parallel_size": c.tensor_parallel, "pipeline_model_parallel_size": c.pipeline_parallel,
                "virtual_pipeline_model_parallel_size": 1, "zero1": true, "sequence_parallel": c.tensor_parallel > 1,
            },
            "data": {
                "micro_batch_size": c.micro_batch_size, "global_batch_size": r.global_batch_sequences,
                "data_prefix": data_prefix, "index_mapping_dir": null, "data_impl": "mmap",
                "splits_string": "100,0,0", "seq_length": r.seq_len, "skip_warmup": true, "num_workers": 1,
                "dataloader_type": "single", "reset_position_ids": false, "reset_attention_mask": false,
                "eod_mask_loss": false, "validation_drop_last": true, "no_seqlen_plus_one_input_tokens": false,
                "pad_samples_to_global_batch_size": false,
                "tokenizer": {
                    "library": "huggingface", "type": tokenizer, "model": null, "vocab_file": null,
                    "merge_file": null, "delimiter": null, "sentencepiece_legacy": false, "use_fast": false,
                },
            },
            "model": {
                "encoder_seq_length": r.seq_len, "max_position_embeddings": d.max_pos.max(r.seq_len),
                "num_layers": d.layers, "hidden_size": d.hidden, "ffn_hidden_size": d.ffn,
                "num_attention_heads": d.heads, "num_kv_heads": d.kv_heads, "init_method_std": d.init_std,
                "use_scaled_init_method": true, "hidden_dropout": 0, "attention_dropout": 0, "ffn_dropout": 0,
                "kv_channels": null, "apply_query_key_layer_scaling": true, "normalization": "rmsnorm",
                "layernorm_epsilon": d.eps, "do_layer_norm_weight_decay": false, "make_vocab_size_divisible_by": 8,
                "persist_layer_norm": true, "share_embeddings_and_output_weights": d.tied,
                "position_embedding_type": "rope", "rotary_percentage": 1, "activation": "swiglu",
                "transformer_block_type": "pre_ln", "has_bias": false, "use_cpu_initialization": true,
                "activations_checkpoint_granularity": "selective",
                "fusions": {"softmax": true, "flash_attention": false},
                "optim": {
                    "name": "adamw", "lr": s.max_lr, "weight_decay": r.optimizer.weight_decay, "capturable": true,
                    "betas": [r.optimizer.beta1, r.optimizer.beta2],
                    "sched": {"name": "CosineAnnealing", "warmup_steps": s.warmup_steps, "constant_steps": 0,
                              "min_lr": s.min_lr, "max_steps": s.decay_steps},
                },
            },
            "precision": {"type": "mixed_precision", "master_weights": false, "fp32_grad_acc": false,
                          "xla_use_bf16": "0", "xla_downcast_bf16": "0", "neuron_rt_stochastic_rounding_en": "0"},
            "compiler_flags": "--model-type transformer --distribution-strategy=llm-training",
            "compiler_cache_url": "${oc.env:WORK}/neuron_cache",
            "aync_exec_max_inflight_requests": 5,
            "bucket_size_collectives": 1024,
            "neuron_rt_exec_timeout": 100,
            "neuron_experimental_compress_rg": false,
        });
        let mut text = format!(
            "# Generated by `hashi export --backend neuron`: phase {} {:?} of {:?}, {} steps, {} tokens.\n\
             # Layout of NxDT examples/conf/megatron_llama_7B_config.yaml; WORK is read from the environment.\n",
            j.index, j.name, r.experiment, j.steps, j.tokens
        );
        if (d.theta - 10_000.0).abs() > 1e-6 {
            text.push_str(&format!(
                "# NOTE: the model's rope_theta is {}; NxDT's megatron Llama uses 10000.\n",
                d.theta
            ));
        }
        yaml(&cfg, 0, &mut text);
        write(&dir.join(format!("{}.yaml", j.stem)), &text)?;
        files.push(format!("neuron/{}.yaml", j.stem));
        run_all.push_str(&format!(
            "torchrun --nproc_per_node {dev} --nnodes {nodes} --node_rank \"${{NODE_RANK:-0}}\" \
             --master_addr \"${{MASTER_ADDR:-localhost}}\" --master_port \"${{MASTER_PORT:-41000}}\" \
             training_orchestrator.py --config-path \"$HERE\" --config-name {stem}\n",
            dev = c.devices_per_node,
            nodes = c.nodes,
            stem = j.stem
        ));
        jobs_json.push(
            json!({"job": j.stem, "phase": j.name, "steps": j.steps, "tokens": j.tokens, "config": cfg}),
        );
    }
    if let Some(hf) = &r.model.dir {
        let convert = format!(
            "#!/usr/bin/env bash\n# HF → NxD checkpoint of the source model for TP={tp} PP={pp} (NxDT's checkpoint \
             converter; run in NXDT_EXAMPLES).\nset -euo pipefail\n: \"${{WORK:=$PWD/work}}\"\n\
             python checkpoint_converter_scripts/checkpoint_converter.py --model_style megatron --hw_backend trn1 \
             --input_dir {hf}/model.safetensors --output_dir \"$WORK/source\" --save_xser True \
             --config {hf}/config.json --tp_size {tp} --pp_size {pp} --n_layers {layers} \
             --convert_from_full_state\n",
            hf = sh(hf),
            tp = c.tensor_parallel,
            pp = c.pipeline_parallel,
            layers = d.layers
        );
        let p = dir.join("convert_checkpoint.sh");
        write(&p, &convert)?;
        executable(&p)?;
        files.push("neuron/convert_checkpoint.sh".into());
    }
    let p = dir.join("run_all.sh");
    write(&p, &run_all)?;
    executable(&p)?;
    files.push("neuron/run_all.sh".into());
    let all = json!({"engine": "NeuronX Distributed Training (megatron model source)", "jobs": jobs_json});
    write(&dir.join("jobs.json"), &(serde_json::to_string_pretty(&all).map_err(|e| e.to_string())? + "\n"))?;
    files.push("neuron/jobs.json".into());
    let readme = format!(
        "# {exp}: NeuronX Distributed Training jobs (Trainium)\n\n{table}\n\
         Target stack: NeuronX Distributed Training (NxDT), AWS's current library for training on Trainium and the \
         successor of `neuronx-nemo-megatron` (NeMo-Megatron on Neuron), which the method used. NxDT keeps that \
         stack's YAML layout and Megatron data pipeline, so hashi's `.bin/.idx` shards are read as they are.\n\n\
         Run `NXDT_EXAMPLES=/path/to/neuronx-distributed-training/examples WORK=/fsx/work ./run_all.sh` on every \
         node. One job per phase, each resuming from the previous phase's checkpoint \
         (`exp_manager.resume_from_checkpoint`); the LR is NeMo's CosineAnnealing with the phase's warmup, equal \
         to hashi's schedule at every step. Not verified here (no Trainium): whether NxDT restores the scheduler's \
         step together with the weights — if it does, the re-warmup of later phases needs a weights-only load.\n",
        exp = r.experiment,
        table = crate::table(r, jobs, "neuron"),
    );
    write(&dir.join("README.md"), &readme)?;
    files.push("neuron/README.md".into());
    Ok(files)
}
