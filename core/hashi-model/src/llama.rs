//! The Llama decoder in candle, following transformers' `modeling_llama.py`, with the switches of its
//! relatives: `modeling_mistral.py` (sliding-window attention) and `modeling_qwen2.py` (q/k/v biases without an
//! o_proj bias, sliding window on the upper layers). The families differ only in [`Config`]: which projections
//! have biases ([`Config::qkv_bias`], [`Config::o_bias`]) and each layer's attention window
//! ([`Config::layer_window`]); RoPE scaling is in the cos/sin tables (`rotary` module).
//!
//! Every op here has a backward pass: RMSNorm, RoPE, attention, the SwiGLU gate and the linear layers are our
//! own kernels with `bwd` ([`crate::ops`]), since candle's fused `rms_norm`, `rope*`, `softmax_last_dim` and
//! `sdpa` silently cut gradients. The training graph is kept small, since candle's autograd gives every node a
//! zero-filled gradient and an accumulation pass: layers work on rows `[batch · seq, hidden]`; q/k/v and gate/up
//! are packed products with RMSNorm fused in; attention reads the packed projection with RoPE inside; the o and
//! down products land on the residual stream in the same op; and [`Llama::next_token_loss`] never holds the
//! logits. [`Llama::forward`] returns all positions' logits; [`Llama::forward_cached`] is the generation path with
//! a KV cache, which keeps every position and masks the window (the same attention as transformers' sliding
//! caches, which drop what the window no longer sees).
//! Not supported: left-padded batches, attention or residual dropout, per-layer RoPE.

use candle_core::{DType, Tensor};
use tracing::{Span, span};

use crate::checkpoint::Checkpoint;
use crate::config::Config;
use crate::error::{ModelError, Result};
use crate::ops;
use crate::params::ParamStore;
use crate::rotary::{RopeTables, Rotary};

/// A linear layer `y = x Wᵀ + b` over the last dimension.
#[derive(Debug, Clone)]
struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
    /// Inference copies only: the weight transposed and contiguous (`[in, out]`), for a plain matmul.
    weight_t: Option<Tensor>,
}

impl Linear {
    fn load(params: &ParamStore, prefix: &str, bias: bool) -> Result<Self> {
        let weight = params.get(&format!("{prefix}.weight"))?.as_tensor().clone();
        let bias = match bias {
            true => Some(params.get(&format!("{prefix}.bias"))?.as_tensor().clone()),
            false => None,
        };
        Ok(Self { weight, bias, weight_t: None })
    }

    fn detached(&self) -> Result<Self> {
        // One copy in memory: the contiguous transpose, and the weight as a view of it.
        let wt = self.weight.detach().t()?.contiguous()?;
        Ok(Self { weight: wt.t()?, bias: self.bias.as_ref().map(Tensor::detach), weight_t: Some(wt) })
    }

    /// Rows `x` `[n, in]` → `[n, out]`. Rows in, rows out: a reshape would be one more autograd node, which
    /// costs a zero-filled gradient buffer and an accumulation pass per training step.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = match &self.weight_t {
            Some(wt) => x.matmul(wt)?,
            None => ops::linear(x, &self.weight)?,
        };
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }

    /// `r + x Wᵀ + b` onto the residual rows `r` `[n, out]`: one op ([`ops::linear_residual`]) for a trainable
    /// layer without bias.
    fn forward_residual(&self, x: &Tensor, r: &Tensor) -> Result<Tensor> {
        Ok(match (&self.weight_t, &self.bias) {
            (None, None) => ops::linear_residual(r, x, &self.weight)?,
            _ => (r + self.forward(x)?)?,
        })
    }
}

/// Linear layers that read one input, run as one product `x [W₁; W₂; …]ᵀ` with their outputs side by side
/// (q, k, v; gate, up): one larger matrix product instead of two or three thin ones, and one autograd node.
#[derive(Debug, Clone)]
enum Packed {
    /// The trainable layers: their weights (and biases) are concatenated on every forward pass, a graph node
    /// whose backward hands each weight its rows of the packed gradient.
    Parts(Vec<Linear>),
    /// An inference copy holding the concatenation.
    Fused(Linear),
}

impl Packed {
    fn load(params: &ParamStore, prefixes: &[String], bias: bool) -> Result<Self> {
        Ok(Self::Parts(prefixes.iter().map(|p| Linear::load(params, p, bias)).collect::<Result<_>>()?))
    }

    /// The packed weight `[Σ out, in]` and bias `[Σ out]` as one layer.
    fn joined(parts: &[Linear]) -> Result<Linear> {
        let weights: Vec<&Tensor> = parts.iter().map(|p| &p.weight).collect();
        let bias = match parts.iter().map(|p| p.bias.as_ref()).collect::<Option<Vec<_>>>() {
            Some(b) => Some(Tensor::cat(&b, 0)?),
            None => None,
        };
        Ok(Linear { weight: Tensor::cat(&weights, 0)?, bias, weight_t: None })
    }

    fn detached(&self) -> Result<Self> {
        Ok(match self {
            Self::Parts(parts) => Self::Fused(Self::joined(parts)?.detached()?),
            Self::Fused(l) => Self::Fused(l.clone()),
        })
    }

    /// `norm(x) [W₁; W₂; …]ᵀ` of rows `x` `[n, in]` → `[n, Σ out]`: for trainable layers one op
    /// ([`ops::norm_linear`]), so the normalized rows are no graph node.
    fn forward_normed(&self, x: &Tensor, norm: &RmsNorm) -> Result<Tensor> {
        match self {
            Self::Parts(parts) => {
                let l = Self::joined(parts)?;
                let y = ops::norm_linear(x, &norm.weight, &l.weight, norm.eps)?;
                Ok(match &l.bias {
                    Some(b) => y.broadcast_add(b)?,
                    None => y,
                })
            }
            Self::Fused(l) => l.forward(&norm.forward(x)?),
        }
    }
}

/// RMSNorm: `x / sqrt(mean(x²) + eps) * w`.
#[derive(Debug, Clone)]
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn load(params: &ParamStore, name: &str, eps: f64) -> Result<Self> {
        Ok(Self { weight: params.get(name)?.as_tensor().clone(), eps })
    }

    fn detached(&self) -> Self {
        Self { weight: self.weight.detach(), eps: self.eps }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(ops::rms_norm(x, &self.weight, self.eps)?)
    }
}

/// Applies the rotation of `rope` to `x` of shape `[batch, heads, len, head_dim]`.
fn apply_rope(rope: &RopeTables, x: &Tensor) -> Result<Tensor> {
    Ok(ops::rope(x, &rope.cos, &rope.sin)?)
}

/// Keys and values `[batch, kv_heads, positions, head_dim]` of one layer: a part shared with other caches
/// (read, never copied into this one) and this cache's own positions after it.
#[derive(Debug, Clone, Default)]
struct LayerCache {
    shared: Option<(Tensor, Tensor)>,
    own: Option<(Tensor, Tensor)>,
}

impl LayerCache {
    /// Appends `k`, `v` to the own part; returns all keys and values (shared part first).
    fn append(&mut self, k: Tensor, v: Tensor) -> Result<(Tensor, Tensor)> {
        let own = match self.own.take() {
            None => (k, v),
            Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
        };
        self.own = Some(own.clone());
        Ok(match &self.shared {
            None => own,
            Some((sk, sv)) => (Tensor::cat(&[sk, &own.0], 2)?, Tensor::cat(&[sv, &own.1], 2)?),
        })
    }

    /// Every position as the shared part (one copy only when both parts hold positions).
    fn fork(&self) -> Result<LayerCache> {
        let shared = match (&self.shared, &self.own) {
            (Some((sk, sv)), Some((ok, ov))) => {
                Some((Tensor::cat(&[sk, ok], 2)?, Tensor::cat(&[sv, ov], 2)?))
            }
            (Some(kv), None) | (None, Some(kv)) => Some(kv.clone()),
            (None, None) => None,
        };
        Ok(LayerCache { shared, own: None })
    }

    /// The first `len` positions (views, no copy).
    fn truncated(&self, len: usize) -> Result<LayerCache> {
        let cut = |(k, v): &(Tensor, Tensor), n: usize| -> Result<Option<(Tensor, Tensor)>> {
            if n == 0 {
                return Ok(None);
            }
            Ok(Some((k.narrow(2, 0, n)?, v.narrow(2, 0, n)?)))
        };
        let in_shared = self.shared.as_ref().map_or(Ok(0), |(k, _)| k.dim(2))?;
        Ok(match (&self.shared, &self.own) {
            (Some(s), _) if len <= in_shared => LayerCache { shared: cut(s, len)?, own: None },
            (_, Some(o)) => LayerCache { shared: self.shared.clone(), own: cut(o, len - in_shared)? },
            (_, None) => LayerCache { shared: self.shared.clone(), own: None },
        })
    }
}

/// Key/value tensors of earlier positions, per layer, for incremental decoding.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<LayerCache>,
    len: usize,
}

impl KvCache {
    /// Number of positions already in the cache.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// This cache cut to its first `len` positions (a shared prompt prefix reused by several continuations).
    ///
    /// # Errors
    /// `len` longer than the cache.
    pub fn truncated(&self, len: usize) -> Result<KvCache> {
        if len > self.len {
            return Err(ModelError::Input(format!("cannot cut a cache of {} positions to {len}", self.len)));
        }
        let layers = self.layers.iter().map(|l| l.truncated(len)).collect::<Result<Vec<_>>>()?;
        Ok(KvCache { layers, len })
    }

    /// A cache that continues this one and shares its positions instead of copying them: what is appended to
    /// the fork stays its own, so many forks of one prompt hold the prompt's keys and values once.
    ///
    /// # Errors
    /// When the parts cannot be joined (a fork of a fork that has grown: one copy of both parts).
    pub fn fork(&self) -> Result<KvCache> {
        let layers = self.layers.iter().map(LayerCache::fork).collect::<Result<Vec<_>>>()?;
        Ok(KvCache { layers, len: self.len })
    }
}

#[derive(Debug, Clone)]
struct Attention {
    /// q, k and v projections, packed: rows `[query heads | key heads | value heads]`.
    qkv: Packed,
    o: Linear,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
    /// Sliding window of this layer (`None`: full causal attention).
    window: Option<usize>,
    span: Span,
}

impl Attention {
    fn detached(&self) -> Result<Self> {
        Ok(Self { qkv: self.qkv.detached()?, o: self.o.detached()?, ..self.clone() })
    }

    fn load(params: &ParamStore, prefix: &str, layer: usize, cfg: &Config) -> Result<Self> {
        let qkv = ["q_proj", "k_proj", "v_proj"].map(|n| format!("{prefix}.{n}"));
        Ok(Self {
            qkv: Packed::load(params, &qkv, cfg.qkv_bias())?,
            o: Linear::load(params, &format!("{prefix}.o_proj"), cfg.o_bias())?,
            num_heads: cfg.num_heads,
            num_kv_heads: cfg.num_kv_heads,
            head_dim: cfg.head_dim,
            window: cfg.layer_window(layer),
            span: span!(tracing::Level::TRACE, "attn"),
        })
    }

    /// The packed projection `qkv` `[batch · t, (heads + 2·kv)·d]` of `batch` sequences of `t` new positions
    /// each → the heads' outputs `[batch · t, heads·d]` before the output projection. Without a cache, one op
    /// ([`ops::qkv_attention`]); with one, the heads are split so that keys and values can be cached.
    fn forward(
        &self,
        qkv: &Tensor,
        batch: usize,
        rope: &RopeTables,
        cache: Option<&mut LayerCache>,
    ) -> Result<Tensor> {
        let _enter = self.span.enter();
        Ok(match cache {
            None => {
                let heads = ops::Heads {
                    batch,
                    heads: self.num_heads,
                    kv_heads: self.num_kv_heads,
                    head_dim: self.head_dim,
                };
                ops::qkv_attention(qkv, &rope.cos, &rope.sin, heads, self.scale(), self.window)?
            }
            Some(slot) => self.attend(qkv, batch, rope, slot)?,
        })
    }

    /// New positions of several sequences laid end to end in the projection rows `qkv` `[Σ lens, …]`, each
    /// sequence with its own cache and positions (`ropes[i]`, `lens[i]` tokens): attention per sequence, the
    /// heads' outputs `[Σ lens, heads·d]` back in one matrix.
    fn forward_ragged(
        &self,
        qkv: &Tensor,
        lens: &[usize],
        ropes: &[RopeTables],
        caches: Vec<&mut LayerCache>,
    ) -> Result<Tensor> {
        let _enter = self.span.enter();
        let mut at = 0;
        let mut ys = Vec::with_capacity(lens.len());
        for ((slot, rope), &n) in caches.into_iter().zip(ropes).zip(lens) {
            ys.push(self.attend(&qkv.narrow(0, at, n)?, 1, rope, slot)?);
            at += n;
        }
        Ok(Tensor::cat(&ys, 0)?)
    }

    /// Scores' scale `1/√d`.
    fn scale(&self) -> f64 {
        1.0 / (self.head_dim as f64).sqrt()
    }

    /// The packed projection `qkv` `[b · t, (heads + 2·kv)·d]` split into heads, RoPE, the cache, causal
    /// attention: `[b · t, heads · d]` before the output projection.
    fn attend(&self, qkv: &Tensor, b: usize, rope: &RopeTables, slot: &mut LayerCache) -> Result<Tensor> {
        let (t, d) = (qkv.dim(0)? / b, self.head_dim);
        let split = |col: usize, n: usize| -> Result<Tensor> {
            Ok(qkv.narrow(1, col * d, n * d)?.reshape((b, t, n, d))?.transpose(1, 2)?.contiguous()?)
        };
        let (h, kv) = (self.num_heads, self.num_kv_heads);
        let q = apply_rope(rope, &split(0, h)?)?;
        let k = apply_rope(rope, &split(h, kv)?)?;
        let (k, v) = slot.append(k, split(h + kv, kv)?)?;
        // Grouped-query attention in one op (no key/value copies per query head; the backward recomputes the
        // probabilities instead of keeping `[b, heads, t, s]` tensors alive).
        let past = k.dim(2)? - t;
        let y = ops::attention(&q, &k, &v, self.scale(), past, self.window)?;
        Ok(y.transpose(1, 2)?.reshape((b * t, h * d))?)
    }
}

#[derive(Debug, Clone)]
struct Mlp {
    /// Gate and up projections, packed: rows `[gate | up]`.
    gate_up: Packed,
    down: Linear,
    span: Span,
}

impl Mlp {
    fn detached(&self) -> Result<Self> {
        Ok(Self { gate_up: self.gate_up.detached()?, down: self.down.detached()?, ..self.clone() })
    }

    fn load(params: &ParamStore, prefix: &str, cfg: &Config) -> Result<Self> {
        let gate_up = ["gate_proj", "up_proj"].map(|n| format!("{prefix}.{n}"));
        Ok(Self {
            gate_up: Packed::load(params, &gate_up, cfg.mlp_bias)?,
            down: Linear::load(params, &format!("{prefix}.down_proj"), cfg.mlp_bias)?,
            span: span!(tracing::Level::TRACE, "mlp"),
        })
    }

    /// `h + down(swiglu(gate_up(norm(h))))` of the residual rows `h` `[n, hidden]`.
    fn forward(&self, h: &Tensor, norm: &RmsNorm) -> Result<Tensor> {
        let _enter = self.span.enter();
        self.down.forward_residual(&ops::swiglu(&self.gate_up.forward_normed(h, norm)?)?, h)
    }
}

#[derive(Debug, Clone)]
struct DecoderLayer {
    input_norm: RmsNorm,
    attn: Attention,
    post_norm: RmsNorm,
    mlp: Mlp,
    span: Span,
}

impl DecoderLayer {
    fn detached(&self) -> Result<Self> {
        Ok(Self {
            input_norm: self.input_norm.detached(),
            attn: self.attn.detached()?,
            post_norm: self.post_norm.detached(),
            mlp: self.mlp.detached()?,
            ..self.clone()
        })
    }

    fn load(params: &ParamStore, i: usize, cfg: &Config) -> Result<Self> {
        let p = format!("model.layers.{i}");
        Ok(Self {
            input_norm: RmsNorm::load(params, &format!("{p}.input_layernorm.weight"), cfg.rms_norm_eps)?,
            attn: Attention::load(params, &format!("{p}.self_attn"), i, cfg)?,
            post_norm: RmsNorm::load(
                params,
                &format!("{p}.post_attention_layernorm.weight"),
                cfg.rms_norm_eps,
            )?,
            mlp: Mlp::load(params, &format!("{p}.mlp"), cfg)?,
            span: span!(tracing::Level::TRACE, "layer", i),
        })
    }

    /// Rows `x` `[batch · t, hidden]` → `[batch · t, hidden]`.
    fn forward(
        &self,
        x: &Tensor,
        batch: usize,
        rope: &RopeTables,
        cache: Option<&mut LayerCache>,
    ) -> Result<Tensor> {
        let _enter = self.span.enter();
        self.around(x, |n| self.attn.forward(n, batch, rope, cache))
    }

    /// The pre-norm residual block around an attention (`attn`: the packed projection → the heads' outputs):
    /// `h = x + o(attn(qkv(norm(x))))`, `h + mlp(norm(h))`.
    fn around(&self, x: &Tensor, attn: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
        let qkv = self.attn.qkv.forward_normed(x, &self.input_norm)?;
        let h = self.attn.o.forward_residual(&attn(&qkv)?, x)?;
        self.mlp.forward(&h, &self.post_norm)
    }

    /// [`Attention::forward_ragged`] inside the layer: norms, residuals and the MLP on all rows at once.
    fn forward_ragged(
        &self,
        x: &Tensor,
        lens: &[usize],
        ropes: &[RopeTables],
        caches: Vec<&mut LayerCache>,
    ) -> Result<Tensor> {
        let _enter = self.span.enter();
        self.around(x, |n| self.attn.forward_ragged(n, lens, ropes, caches))
    }
}

/// A `LlamaForCausalLM` whose weights are the [`ParamStore`]'s variables (so gradients reach them).
#[derive(Debug, Clone)]
pub struct Llama {
    config: Config,
    params: ParamStore,
    embed: Tensor,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    lm_head: Tensor,
    /// Inference copies only: `lm_head` transposed and contiguous.
    lm_head_t: Option<Tensor>,
    rotary: Rotary,
}

impl Llama {
    /// Builds the model over `params`, which must hold every tensor of `params::param_shapes(config)`.
    pub fn new(config: Config, params: ParamStore) -> Result<Self> {
        let embed = params.get("model.embed_tokens.weight")?.as_tensor().clone();
        let lm_head = match config.tie_word_embeddings {
            true => embed.clone(),
            false => params.get("lm_head.weight")?.as_tensor().clone(),
        };
        let layers = (0..config.num_layers)
            .map(|i| DecoderLayer::load(&params, i, &config))
            .collect::<Result<Vec<_>>>()?;
        let norm = RmsNorm::load(&params, "model.norm.weight", config.rms_norm_eps)?;
        let rotary = Rotary::new(
            config.rope_theta,
            config.head_dim,
            config.max_position_embeddings,
            config.rope_scaling,
        );
        Ok(Self { config, params, embed, layers, norm, lm_head, lm_head_t: None, rotary })
    }

    /// The same model for inference only: its weights detached from autograd and stored transposed (one copy),
    /// so a forward pass records no graph, frees every activation as soon as it is used, and multiplies by
    /// contiguous matrices (evaluation, generation). Its [`Llama::params`] is empty.
    pub fn detached(&self) -> Result<Self> {
        Ok(Self {
            embed: self.embed.detach(),
            lm_head: self.lm_head.detach(),
            lm_head_t: Some(self.lm_head.detach().t()?.contiguous()?),
            // Nothing is trainable in an inference copy; dropping the variables frees the original weights.
            params: ParamStore::empty(),
            layers: self.layers.iter().map(DecoderLayer::detached).collect::<Result<_>>()?,
            norm: self.norm.detached(),
            ..self.clone()
        })
    }

    /// Loads an HF model directory.
    pub fn load(dir: &std::path::Path) -> Result<Self> {
        let ckpt = Checkpoint::open(dir)?;
        let params = ParamStore::from_checkpoint(&ckpt)?;
        Self::new(ckpt.config().clone(), params)
    }

    /// A randomly initialised model (see [`ParamStore::random`]).
    pub fn random(config: Config, seed: u64) -> Result<Self> {
        let params = ParamStore::random(&config, seed)?;
        Self::new(config, params)
    }

    /// The runtime config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The parameters (trainable variables).
    pub fn params(&self) -> &ParamStore {
        &self.params
    }

    /// Forward pass: logits `[batch, seq, vocab]` for token ids `[batch, seq]` (u32), all positions.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let hidden = self.hidden_states(ids, 0, None)?;
        Ok(self.logits(&hidden)?.reshape((b, t, self.config.vocab_size))?)
    }

    /// The training loss: [`crate::next_token_loss`] of [`Llama::forward`]`(ids)` against `targets`
    /// `[batch, seq]` (i64, already shifted, [`crate::IGNORE_INDEX`] left out), a scalar differentiable in every
    /// parameter. The output projection and the cross-entropy run as one op over chunks of rows
    /// ([`ops::lm_head_cross_entropy`]), so the logits `[batch · seq, vocab]` are never whole in memory; every
    /// layer works on rows, so no activation is reshaped in the graph either.
    ///
    /// # Errors
    /// [`ModelError::Input`] for ids or targets that do not fit (shapes, vocabulary) or when every target is
    /// ignored.
    pub fn next_token_loss(&self, ids: &Tensor, targets: &Tensor) -> Result<Tensor> {
        if targets.dims() != ids.dims() {
            return Err(ModelError::Input(format!(
                "targets {:?} do not match ids {:?}",
                targets.dims(),
                ids.dims()
            )));
        }
        let targets = crate::loss::row_targets(targets, self.config.vocab_size)?;
        let hidden = self.hidden_states(ids, 0, None)?;
        let losses = ops::lm_head_cross_entropy(&hidden, &self.lm_head, targets.clone())?;
        crate::loss::mean(&losses, &targets)
    }

    /// Incremental forward for generation: feeds `ids` `[batch, new]` after the cached positions and returns
    /// the logits of the last new position, `[batch, vocab]`.
    pub fn forward_cached(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let hidden = self.hidden_states(ids, cache.len, Some(cache))?;
        let last = hidden.reshape((b, t, self.config.hidden_size))?.narrow(1, t - 1, 1)?;
        self.logits(&last.reshape((b, self.config.hidden_size))?)
    }

    /// Incremental forward returning the logits of every new position, `[batch, new, vocab]`.
    pub fn forward_cached_all(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let hidden = self.hidden_states(ids, cache.len, Some(cache))?;
        Ok(self.logits(&hidden)?.reshape((b, t, self.config.vocab_size))?)
    }

    /// One decoding step of several independent sequences at once: `ids[i]` is fed after `caches[i]`; returns the
    /// next-token logits `[n, vocab]` ([`Llama::forward_ragged`] with one token per sequence).
    ///
    /// # Errors
    /// As [`Llama::forward_ragged`].
    pub fn forward_decode(&self, ids: &[u32], caches: &mut [KvCache]) -> Result<Tensor> {
        let seqs: Vec<&[u32]> = ids.iter().map(std::slice::from_ref).collect();
        self.forward_ragged(&seqs, caches)
    }

    /// New tokens of several independent sequences at once: `seqs[i]` (any length ≥ 1) is fed after `caches[i]`
    /// (each its own length and positions); returns the logits of each sequence's last new position,
    /// `[n, vocab]`. The linear layers see the rows of all sequences in one product, which is what makes
    /// prefilling and decoding many documents together faster than one by one; each row's logits are those of
    /// [`Llama::forward_cached`] on its sequence alone (up to the summation order of a matrix product over more
    /// rows).
    ///
    /// # Errors
    /// [`ModelError::Input`] when `seqs` and `caches` differ in length, are empty, a sequence is empty, or an id
    /// is out of range.
    pub fn forward_ragged(&self, seqs: &[&[u32]], caches: &mut [KvCache]) -> Result<Tensor> {
        if seqs.is_empty() || seqs.len() != caches.len() || seqs.iter().any(|s| s.is_empty()) {
            return Err(ModelError::Input(format!(
                "forward_ragged: {} sequences for {} caches (one each, at least one token each)",
                seqs.len(),
                caches.len()
            )));
        }
        let ids: Vec<u32> = seqs.concat();
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= self.config.vocab_size) {
            return Err(ModelError::Input(format!(
                "token id {bad} is out of range for a vocabulary of {}",
                self.config.vocab_size
            )));
        }
        let lens: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        let ropes = caches
            .iter()
            .zip(&lens)
            .map(|(c, &n)| self.rotary.tables(c.len, n))
            .collect::<Result<Vec<_>>>()?;
        let ids_t = Tensor::from_slice(&ids, ids.len(), self.embed.device())?;
        let mut x = self.embed.index_select(&ids_t, 0)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let slots = caches.iter_mut().map(|c| &mut c.layers[i]).collect();
            x = layer.forward_ragged(&x, &lens, &ropes, slots)?;
        }
        let mut last = Vec::with_capacity(lens.len());
        let mut at = 0;
        for (c, &n) in caches.iter_mut().zip(&lens) {
            c.len += n;
            at += n;
            last.push((at - 1) as u32);
        }
        let last = Tensor::from_vec(last, lens.len(), x.device())?;
        self.logits(&self.norm.forward(&x.index_select(&last, 0)?)?)
    }

    /// A fresh, empty cache for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache { layers: vec![LayerCache::default(); self.layers.len()], len: 0 }
    }

    /// The final hidden states of `ids` `[batch, t]` after `offset` cached positions, as rows `[batch · t, hidden]`.
    fn hidden_states(&self, ids: &Tensor, offset: usize, mut cache: Option<&mut KvCache>) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        if t == 0 || b == 0 {
            return Err(ModelError::Input("empty batch of token ids".into()));
        }
        if ids.dtype() != DType::U32 {
            return Err(ModelError::Input(format!("token ids must be u32, got {:?}", ids.dtype())));
        }
        let max_id = ids.max_all()?.to_scalar::<u32>()? as usize;
        if max_id >= self.config.vocab_size {
            return Err(ModelError::Input(format!(
                "token id {max_id} is out of range for a vocabulary of {}",
                self.config.vocab_size
            )));
        }
        let rope = self.rotary.tables(offset, t)?;
        let mut x = self.embed.index_select(&ids.flatten_all()?, 0)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            x = layer.forward(&x, b, &rope, slot)?;
        }
        if let Some(c) = cache {
            c.len += t;
        }
        self.norm.forward(&x)
    }

    /// Logits `[n, vocab]` of hidden rows `[n, hidden]`.
    fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        Ok(match &self.lm_head_t {
            Some(wt) => hidden.matmul(wt)?,
            None => ops::linear(hidden, &self.lm_head)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;
    use crate::config::Family;
    use crate::rotary::RopeScaling;

    /// Decoding three sequences of different lengths together gives each one's own cached-decoding logits.
    #[test]
    fn ragged_batch_decoding_matches_each_sequence_alone() -> Result<()> {
        let cfg = Config { initializer_range: 0.2, ..Config::tiny_test() };
        assert!(cfg.num_heads > cfg.num_kv_heads, "grouped-query attention is exercised");
        let model = Llama::random(cfg, 7)?;
        let prompts: [&[u32]; 3] = [&[1, 5, 9], &[2, 3, 4, 5, 6, 7], &[8]];
        let prefill = |p: &[u32]| -> Result<(KvCache, u32)> {
            let mut c = model.new_cache();
            if p.len() > 1 {
                model.forward_cached(&Tensor::new(&p[..p.len() - 1], &Device::Cpu)?.unsqueeze(0)?, &mut c)?;
            }
            Ok((c, p[p.len() - 1]))
        };
        let (mut alone, mut ids) = (vec![], vec![]);
        for p in prompts {
            let (c, last) = prefill(p)?;
            alone.push(c);
            ids.push(last);
        }
        // The prompts but their last token prefilled together (ragged lengths 2, 5 and 0 + the first decoded
        // token, so that every sequence feeds at least one token), against each alone.
        let mut batch: Vec<KvCache> = prompts.iter().map(|_| model.new_cache()).collect();
        let heads: Vec<&[u32]> = prompts.iter().map(|p| &p[..p.len().max(2) - 1]).collect();
        let together = model.forward_ragged(&heads, &mut batch)?;
        for (i, h) in heads.iter().enumerate() {
            let mut c = model.new_cache();
            let one = model.forward_cached(&Tensor::new(*h, &Device::Cpu)?.unsqueeze(0)?, &mut c)?;
            let d = (together.narrow(0, i, 1)? - one)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(d < 1e-5, "ragged prefill, sequence {i}: logits differ by {d}");
            assert_eq!(batch[i].len(), h.len());
        }
        // The one-token prompt was fed whole: decode it alone from there.
        let mut alone: Vec<KvCache> = alone;
        model.forward_cached(&Tensor::new(&[8u32], &Device::Cpu)?.unsqueeze(0)?, &mut alone[2])?;
        ids[2] = 4;
        for step in 0..4u32 {
            let together = model.forward_decode(&ids, &mut batch)?;
            for (i, c) in alone.iter_mut().enumerate() {
                let one = model.forward_cached(&Tensor::new(&[ids[i]], &Device::Cpu)?.unsqueeze(0)?, c)?;
                let d = (together.narrow(0, i, 1)? - one)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(d < 1e-5, "step {step}, sequence {i}: logits differ by {d}");
                assert_eq!(batch[i].len(), c.len());
            }
            ids = ids.iter().map(|x| (x * 7 + step) % 30).collect();
        }
        assert!(model.forward_decode(&[1, 2], &mut batch[..1]).is_err());
        Ok(())
    }

    /// Forks of a prompt's cache (cut, forked, forked again after growing) decode as the whole sequence run from
    /// scratch, and a fork holds only its own positions: the prompt's keys and values are not copied into it.
    #[test]
    fn forked_caches_decode_as_the_whole_sequence_without_copying_the_prompt() -> Result<()> {
        let model = Llama::random(Config { initializer_range: 0.2, ..Config::tiny_test() }, 11)?;
        let prompt: [u32; 6] = [3, 1, 4, 1, 5, 9];
        let mut base = model.new_cache();
        model.forward_cached(&Tensor::new(&prompt[..], &Device::Cpu)?.unsqueeze(0)?, &mut base)?;
        let full = |ids: &[u32]| -> Result<Tensor> {
            let logits = model.forward(&Tensor::new(ids, &Device::Cpu)?.unsqueeze(0)?)?;
            Ok(logits.narrow(1, ids.len() - 1, 1)?.squeeze(1)?)
        };
        let close =
            |a: &Tensor, b: &Tensor| -> Result<f32> { Ok((a - b)?.abs()?.max_all()?.to_scalar::<f32>()?) };
        // Two continuations of the whole prompt, and one of its first four tokens.
        for (keep, cont) in [(6usize, vec![2u32, 6, 5]), (6, vec![7]), (4, vec![8, 8])] {
            let mut c = base.truncated(keep)?.fork()?;
            assert!(c.layers.iter().all(|l| l.own.is_none()), "a fork starts with no positions of its own");
            let mut ids: Vec<u32> = prompt[..keep].to_vec();
            for &t in &cont {
                ids.push(t);
                let one = model.forward_decode(&[t], std::slice::from_mut(&mut c))?;
                let d = close(&one, &full(&ids)?)?;
                assert!(d < 1e-4, "prefix {keep}, after {ids:?}: logits differ by {d}");
            }
            let own = c.layers[0].own.as_ref().map(|(k, _)| k.dim(2)).transpose()?;
            assert_eq!(own, Some(cont.len()), "the fork holds only its own positions");
            // A fork of the grown fork: one more token on top of both parts.
            let mut again = c.fork()?;
            ids.push(1);
            let one = model.forward_decode(&[1], std::slice::from_mut(&mut again))?;
            assert!(close(&one, &full(&ids)?)? < 1e-4, "fork of a fork after {ids:?}");
        }
        Ok(())
    }

    /// Token-by-token decoding through the KV cache gives the full forward's logits at every position, with a
    /// sliding window shorter than the sequence (Mistral) and a scaled RoPE with an attention factor (YaRN).
    #[test]
    fn cached_decoding_matches_the_full_forward_with_a_window() -> Result<()> {
        let yarn = RopeScaling::Yarn {
            factor: 4.0,
            original_max_position_embeddings: 4,
            attention_factor: None,
            beta_fast: None,
            beta_slow: None,
            mscale: None,
            mscale_all_dim: None,
            truncate: None,
        };
        let cfg = Config {
            family: Family::Mistral,
            sliding_window: Some(3),
            rope_scaling: yarn,
            initializer_range: 0.2,
            ..Config::tiny_test()
        };
        let model = Llama::random(cfg, 3)?;
        let ids: Vec<u32> = (0..9).map(|i| (i * 13 + 5) % 128).collect();
        let full = model.forward(&Tensor::new(ids.as_slice(), &Device::Cpu)?.unsqueeze(0)?)?.squeeze(0)?;
        let unwindowed =
            Llama::new(Config { sliding_window: None, ..model.config().clone() }, model.params().clone())?;
        let plain =
            unwindowed.forward(&Tensor::new(ids.as_slice(), &Device::Cpu)?.unsqueeze(0)?)?.squeeze(0)?;
        let max_diff = |a: &Tensor, b: &Tensor| -> Result<f32> {
            Ok((a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?)
        };
        assert!(
            max_diff(&full.narrow(0, 0, 3)?, &plain.narrow(0, 0, 3)?)? < 1e-6,
            "within the window: no change"
        );
        assert!(max_diff(&full, &plain)? > 1e-3, "past the window the mask matters");
        let mut cache = model.new_cache();
        for (i, &id) in ids.iter().enumerate() {
            let step = model.forward_cached(&Tensor::new(&[id], &Device::Cpu)?.unsqueeze(0)?, &mut cache)?;
            let d = max_diff(&step.squeeze(0)?, &full.get(i)?)?;
            assert!(d < 1e-5, "position {i}: cached logits differ by {d}");
        }
        Ok(())
    }
}
