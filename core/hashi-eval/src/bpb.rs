//! Bits per byte on held-out text: the summed next-token loss in nats / ln 2 / UTF-8 bytes. Unlike perplexity it
//! compares models with different vocabularies. Documents are encoded with `<s>`, cut into windows of at most
//! 512 tokens (or the model's length) scored independently; whole documents are counted until `max_tokens`.

use candle_core::{DType, Device, Tensor};
use hashi_model::{Llama, causal_lm_loss};
use hashi_tokenizer::Tokenizer;
use serde::Serialize;

/// Bits per byte of one language's text.
#[derive(Debug, Clone, Serialize)]
pub struct Bpb {
    /// Language tag.
    pub lang: String,
    /// The measure.
    pub bits_per_byte: f64,
    /// Tokens scored.
    pub tokens: usize,
    /// UTF-8 bytes of the documents scored.
    pub bytes: usize,
}

/// Bits per byte of `model` on `docs`.
pub fn bits_per_byte(
    model: &Llama,
    tok: &Tokenizer,
    lang: &str,
    docs: &[String],
    max_tokens: usize,
) -> Result<Bpb, String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let window = model.config().max_position_embeddings.min(512);
    let (mut nats, mut tokens, mut bytes) = (0f64, 0usize, 0usize);
    for doc in docs {
        if tokens >= max_tokens {
            break;
        }
        let ids = tok.encode(doc, true).map_err(|x| e(&x))?;
        for chunk in ids.chunks(window).filter(|c| c.len() >= 2) {
            let x = Tensor::from_vec(chunk.to_vec(), (1, chunk.len()), &Device::Cpu).map_err(|x| e(&x))?;
            let labels = x.to_dtype(DType::I64).map_err(|x| e(&x))?;
            let logits = model.forward(&x).map_err(|x| e(&x))?;
            let loss = causal_lm_loss(&logits, &labels)
                .and_then(|l| Ok(l.to_scalar::<f32>()?))
                .map_err(|x| e(&x))?;
            nats += f64::from(loss) * (chunk.len() - 1) as f64;
            tokens += chunk.len() - 1;
        }
        bytes += doc.len();
    }
    Ok(Bpb {
        lang: lang.into(),
        bits_per_byte: nats / std::f64::consts::LN_2 / bytes.max(1) as f64,
        tokens,
        bytes,
    })
}
