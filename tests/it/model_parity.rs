//! hashi's Llama against transformers' `LlamaForCausalLM`, `MistralForCausalLM` and `Qwen2ForCausalLM` on the
//! reference checkpoints of `tests/python/make_reference.py` (every family and RoPE type): logits, loss,
//! gradients, greedy generation past the original context; through the library and the CLI.

use candle_core::DType;
use hashi_model::{GenerateOptions, Llama, Sampling, causal_lm_loss};

use crate::common::*;

const LOGITS_TOL: f32 = 1e-4;

#[test]
fn logits_and_loss_match_transformers_on_every_config() {
    for name in REFERENCE_CONFIGS {
        let dir = reference_dir().join(name);
        let reference = dir.join("reference.safetensors");
        let model = Llama::load(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ids = load_tensor(&reference, "ids").to_dtype(DType::U32).expect("u32 ids");
        let logits = model.forward(&ids).expect("forward");
        let want = load_tensor(&reference, "logits");
        let diff = max_abs_diff(&logits, &want);
        assert!(diff <= LOGITS_TOL, "{name}: logits differ by {diff} (max |logit| {})", max_abs(&want));
        let loss = causal_lm_loss(&logits, &load_tensor(&reference, "labels")).expect("loss");
        let want_loss = load_tensor(&reference, "loss").to_vec1::<f32>().expect("loss")[0];
        let got = loss.to_scalar::<f32>().expect("scalar");
        assert!((got - want_loss).abs() <= 1e-5, "{name}: loss {got} vs transformers {want_loss}");
    }
}

#[test]
fn gradients_match_torch_autograd() {
    for name in
        ["gqa", "tied", "bias", "qwen2_tied_window", "mistral_window", "rope_llama3", "rope_yarn_mscale"]
    {
        let dir = reference_dir().join(name);
        let reference = dir.join("reference.safetensors");
        let model = Llama::load(&dir).expect("load");
        let ids = load_tensor(&reference, "ids").to_dtype(DType::U32).expect("u32 ids");
        let labels = load_tensor(&reference, "labels");
        let want_all =
            candle_core::safetensors::load(dir.join("grads.safetensors"), &candle_core::Device::Cpu)
                .expect("grads");
        // Through the logits (`forward` + the loss), and through the training loss, whose output projection and
        // cross-entropy are one op without the logits tensor (the same positions: the last has no label).
        let t = ids.dim(1).expect("seq");
        let through_logits = causal_lm_loss(&model.forward(&ids).expect("forward"), &labels).expect("loss");
        let (inputs, targets) =
            (ids.narrow(1, 0, t - 1).expect("inputs"), labels.narrow(1, 1, t - 1).expect("targets"));
        let training = model.next_token_loss(&inputs.contiguous().expect("inputs"), &targets).expect("loss");
        let want_loss = load_tensor(&reference, "loss").to_vec1::<f32>().expect("loss")[0];
        for (path, loss) in [("forward + causal_lm_loss", through_logits), ("next_token_loss", training)] {
            let got = loss.to_scalar::<f32>().expect("scalar");
            assert!(
                (got - want_loss).abs() <= 1e-5,
                "{name} ({path}): loss {got} vs transformers {want_loss}"
            );
            let grads = loss.backward().expect("backward");
            let mut checked = 0;
            for (pname, var) in model.params().iter() {
                let want =
                    want_all.get(pname).unwrap_or_else(|| panic!("{name}: torch has no grad for {pname}"));
                let got = grads
                    .get(var.as_tensor())
                    .unwrap_or_else(|| panic!("{name} ({path}): no gradient reached {pname}"));
                let diff = max_abs_diff(got, want);
                let tol = 1e-5 + 1e-3 * max_abs(want);
                assert!(diff <= tol, "{name} ({path}): grad of {pname} differs by {diff} (tol {tol})");
                checked += 1;
            }
            assert_eq!(checked, want_all.len(), "{name}: every torch parameter has a hashi counterpart");
        }
    }
}

#[test]
fn greedy_generation_matches_transformers_generate() {
    for name in REFERENCE_CONFIGS {
        let dir = reference_dir().join(name);
        let reference = dir.join("reference.safetensors");
        let model = Llama::load(&dir).expect("load");
        let prompt: Vec<u32> = load_tensor(&reference, "prompt")
            .to_dtype(DType::U32)
            .expect("u32")
            .flatten_all()
            .expect("flat")
            .to_vec1()
            .expect("vec");
        let want: Vec<u32> = load_tensor(&reference, "generated")
            .to_dtype(DType::U32)
            .expect("u32")
            .flatten_all()
            .expect("flat")
            .to_vec1()
            .expect("vec");
        let opts = GenerateOptions { max_new_tokens: 16, sampling: Sampling::Greedy, stop_ids: vec![2] };
        let got = hashi_model::generate(&model, &prompt, &opts, &hashi_core::NoReporter).expect("generate");
        assert_eq!(got, want, "{name}: greedy continuation differs from transformers");
    }
}

#[test]
fn cli_logits_match_transformers() {
    let dir = reference_dir().join("gqa");
    let reference = dir.join("reference.safetensors");
    let ids = load_tensor(&reference, "ids").to_dtype(DType::U32).expect("u32");
    let rows: Vec<Vec<u32>> = ids.to_vec2().expect("rows");
    let out = scratch_dir("cli-logits").join("logits.safetensors");
    let mut args = vec!["model".to_string(), "logits".into(), "--model".into(), dir.display().to_string()];
    for r in &rows {
        args.push("--ids".into());
        args.push(r.iter().map(u32::to_string).collect::<Vec<_>>().join(","));
    }
    args.extend(["--out".into(), out.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stdout = hashi_ok(&args);
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON summary");
    assert_eq!(summary["shape"], serde_json::json!([2, 17, 256]));
    let diff = max_abs_diff(&load_tensor(&out, "logits"), &load_tensor(&reference, "logits"));
    assert!(diff <= LOGITS_TOL, "CLI logits differ by {diff}");
}

#[test]
fn cli_generate_matches_transformers_with_tokenizer() {
    for name in ["gqa", "tied", "qwen2_tied_window", "rope_dynamic"] {
        let dir = reference_dir().join(name);
        let want: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("cli_reference.json")).expect("reference"),
        )
        .expect("json");
        let prompt = want["prompt"].as_str().expect("prompt");
        let model = dir.display().to_string();
        let stdout = hashi_ok(&[
            "generate",
            "--model",
            &model,
            "--prompt",
            prompt,
            "--max-new-tokens",
            "10",
            "--json",
        ]);
        let got: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON output");
        assert_eq!(got["prompt_ids"], want["prompt_ids"], "{name}: prompt tokenised differently");
        assert_eq!(got["generated_ids"], want["generated_ids"], "{name}: continuation differs");
        let text = hashi_ok(&["generate", "--model", &model, "--prompt", prompt, "--max-new-tokens", "3"]);
        assert!(text.starts_with(prompt), "plain output starts with the prompt: {text:?}");
    }
}
