//! Llama on libtorch: f32 master weights, compute in `compute` precision (bf16 on CUDA) — the same arithmetic as
//! `torch.autocast(bfloat16)` over `transformers.LlamaForCausalLM`: the residual stream and RMSNorm stay in f32,
//! matmuls and attention run in bf16, logits are upcast to f32 for the loss. q/k/v and gate/up projections are
//! stored fused (one matmul each); checkpoints are written in the HF layout, unfused.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use crate::config::Config;

/// A trainable tensor: possibly several HF tensors concatenated along rows.
pub struct Param {
    /// Name for messages and freezing (the first HF part's name for fused ones).
    pub name: String,
    /// HF names and row counts, in concatenation order.
    pub parts: Vec<(String, i64)>,
    /// f32 master weights (requires grad).
    pub w: Tensor,
    /// Whether weight decay applies (matrices only).
    pub decay: bool,
}

struct Layer {
    in_norm: usize,
    qkv: usize,
    o: usize,
    post_norm: usize,
    gate_up: usize,
    down: usize,
}

/// The model.
pub struct Model {
    pub cfg: Config,
    pub device: Device,
    pub compute: Kind,
    pub params: Vec<Param>,
    layers: Vec<Layer>,
    embed: usize,
    norm: usize,
    lm_head: usize,
    /// Where the weights came from (its config.json goes into every checkpoint).
    pub source: PathBuf,
    rope: Option<(i64, Tensor, Tensor)>,
}

/// All tensors of an HF directory (single file or sharded), on the CPU.
fn read_weights(dir: &Path) -> Result<HashMap<String, Tensor>, String> {
    let single = dir.join("model.safetensors");
    let index = dir.join("model.safetensors.index.json");
    let files: Vec<PathBuf> = if single.is_file() {
        vec![single]
    } else if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| format!("{}: {e}", index.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", index.display()))?;
        let map = v["weight_map"].as_object().ok_or_else(|| format!("{}: no weight_map", index.display()))?;
        let mut f: Vec<String> = map.values().filter_map(|x| x.as_str().map(String::from)).collect();
        f.sort();
        f.dedup();
        f.into_iter().map(|n| dir.join(n)).collect()
    } else {
        return Err(format!("{}: no model.safetensors or model.safetensors.index.json", dir.display()));
    };
    let mut all = HashMap::new();
    for f in files {
        let tensors = Tensor::read_safetensors(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        all.extend(tensors);
    }
    Ok(all)
}

impl Model {
    /// Loads an HF directory onto `device`.
    pub fn load(dir: &Path, device: Device, compute: Kind) -> Result<Model, String> {
        let cfg = Config::load(dir)?;
        let mut weights = read_weights(dir)?;
        let (h, v) = (cfg.hidden_size as i64, cfg.vocab_size as i64);
        let (hd, nh, nkv, ffn) =
            (cfg.head_dim() as i64, cfg.num_attention_heads as i64, cfg.kv_heads() as i64, cfg.intermediate_size as i64);
        let mut params: Vec<Param> = vec![];
        let mut take = |names: &[(&str, Vec<i64>)], params: &mut Vec<Param>| -> Result<usize, String> {
            let mut parts = vec![];
            let mut tensors = vec![];
            for (name, shape) in names {
                let t = weights.remove(*name).ok_or_else(|| format!("{}: no tensor {name}", dir.display()))?;
                if t.size() != *shape {
                    return Err(format!("{}: {name} has shape {:?}, expected {shape:?}", dir.display(), t.size()));
                }
                parts.push((name.to_string(), shape[0]));
                tensors.push(t.to_kind(Kind::Float));
            }
            let w = if tensors.len() == 1 { tensors.remove(0) } else { Tensor::cat(&tensors, 0) };
            let decay = w.dim() >= 2;
            let w = w.to_device(device).detach().set_requires_grad(true);
            params.push(Param { name: parts[0].0.clone(), parts, w, decay });
            Ok(params.len() - 1)
        };
        let embed = take(&[("model.embed_tokens.weight", vec![v, h])], &mut params)?;
        let mut layers = vec![];
        for i in 0..cfg.num_hidden_layers {
            let p = |s: &str| format!("model.layers.{i}.{s}.weight");
            let (q, k, vv, o) = (p("self_attn.q_proj"), p("self_attn.k_proj"), p("self_attn.v_proj"), p("self_attn.o_proj"));
            let (g, u, d) = (p("mlp.gate_proj"), p("mlp.up_proj"), p("mlp.down_proj"));
            let (n1, n2) = (format!("model.layers.{i}.input_layernorm.weight"), format!("model.layers.{i}.post_attention_layernorm.weight"));
            layers.push(Layer {
                in_norm: take(&[(&n1, vec![h])], &mut params)?,
                qkv: take(&[(&q, vec![nh * hd, h]), (&k, vec![nkv * hd, h]), (&vv, vec![nkv * hd, h])], &mut params)?,
                o: take(&[(&o, vec![h, nh * hd])], &mut params)?,
                post_norm: take(&[(&n2, vec![h])], &mut params)?,
                gate_up: take(&[(&g, vec![ffn, h]), (&u, vec![ffn, h])], &mut params)?,
                down: take(&[(&d, vec![h, ffn])], &mut params)?,
            });
        }
        let norm = take(&[("model.norm.weight", vec![h])], &mut params)?;
        let lm_head = if cfg.tie_word_embeddings { embed } else { take(&[("lm_head.weight", vec![v, h])], &mut params)? };
        Ok(Model { cfg, device, compute, params, layers, embed, norm, lm_head, source: dir.to_path_buf(), rope: None })
    }

    /// cos and sin of RoPE for `s` positions, `(s, head_dim)` in the compute precision (as transformers: f32, then
    /// cast).
    fn rope(&mut self, s: i64) -> (Tensor, Tensor) {
        if let Some((n, c, si)) = &self.rope
            && *n == s
        {
            return (c.shallow_clone(), si.shallow_clone());
        }
        let d = self.cfg.head_dim() as i64;
        let opts = (Kind::Float, self.device);
        let inv = Tensor::arange_start_step(0, d, 2, (Kind::Int64, self.device)).to_kind(Kind::Float) / d as f64;
        let inv = Tensor::from(self.cfg.theta()).to_device(self.device).pow(&inv).reciprocal();
        let t = Tensor::arange(s, opts);
        let freqs = t.unsqueeze(1) * inv.unsqueeze(0);
        let emb = Tensor::cat(&[&freqs, &freqs], -1);
        let (c, si) = (emb.cos().to_kind(self.compute), emb.sin().to_kind(self.compute));
        self.rope = Some((s, c.shallow_clone(), si.shallow_clone()));
        (c, si)
    }

    /// Logits `(b, s, vocab)` in f32 for token ids `(b, s)` (i64, on the device).
    pub fn forward(&mut self, ids: &Tensor) -> Tensor {
        let (b, s) = ids.size2().expect("2-d ids");
        let (nh, nkv, hd) = (self.cfg.num_attention_heads as i64, self.cfg.kv_heads() as i64, self.cfg.head_dim() as i64);
        let eps = self.cfg.rms_norm_eps;
        let hsz = [self.cfg.hidden_size as i64];
        let (cos, sin) = self.rope(s);
        let (cos, sin) = (cos.view([1, 1, s, hd]), sin.view([1, 1, s, hd]));
        let ck = self.compute;
        let w = |i: usize| self.params[i].w.to_kind(ck);
        let rotate = |x: &Tensor| {
            let half = x.chunk(2, -1);
            Tensor::cat(&[&half[1].neg(), &half[0]], -1)
        };
        let mut x = Tensor::embedding(&self.params[self.embed].w, ids, -1, false, false);
        for l in &self.layers {
            let h = x.rms_norm(hsz, Some(&self.params[l.in_norm].w), eps).to_kind(ck);
            let qkv = h.linear::<Tensor>(&w(l.qkv), None).split_with_sizes([nh * hd, nkv * hd, nkv * hd], -1);
            let q = qkv[0].view([b, s, nh, hd]).transpose(1, 2);
            let k = qkv[1].view([b, s, nkv, hd]).transpose(1, 2);
            let v = qkv[2].view([b, s, nkv, hd]).transpose(1, 2);
            let q = &q * &cos + rotate(&q) * &sin;
            let k = &k * &cos + rotate(&k) * &sin;
            let (k, v) = if nkv == nh {
                (k, v)
            } else {
                (k.repeat_interleave_self_int(nh / nkv, 1, None), v.repeat_interleave_self_int(nh / nkv, 1, None))
            };
            let a = Tensor::scaled_dot_product_attention::<Tensor>(&q, &k, &v, None, 0.0, true, None, false);
            let a = a.transpose(1, 2).reshape([b, s, nh * hd]);
            x = x + a.linear::<Tensor>(&w(l.o), None);
            let h = x.rms_norm(hsz, Some(&self.params[l.post_norm].w), eps).to_kind(ck);
            let gu = h.linear::<Tensor>(&w(l.gate_up), None).chunk(2, -1);
            x = x + (gu[0].silu() * &gu[1]).linear::<Tensor>(&w(l.down), None);
        }
        let h = x.rms_norm(hsz, Some(&self.params[self.norm].w), eps).to_kind(ck);
        h.linear::<Tensor>(&w(self.lm_head), None).to_kind(Kind::Float)
    }

    /// Writes the weights in the HF layout (f32, unfused) and the source's config.json into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut out: Vec<(String, Tensor)> = vec![];
        for p in &self.params {
            out.extend(split(p, &p.w));
        }
        let file = dir.join("model.safetensors");
        Tensor::write_safetensors(&out, &file).map_err(|e| format!("{}: {e}", file.display()))?;
        let cfg = self.source.join("config.json");
        std::fs::copy(&cfg, dir.join("config.json")).map_err(|e| format!("{}: {e}", cfg.display()))?;
        Ok(())
    }
}

/// `t` (shaped like `p`) split into its HF parts, on the CPU, contiguous.
pub fn split(p: &Param, t: &Tensor) -> Vec<(String, Tensor)> {
    let t = tch::no_grad(|| t.detach().to_device(Device::Cpu));
    let mut start = 0;
    p.parts
        .iter()
        .map(|(name, rows)| {
            let part = t.narrow(0, start, *rows).contiguous();
            start += rows;
            (name.clone(), part)
        })
        .collect()
}
