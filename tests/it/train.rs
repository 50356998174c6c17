//! Training pieces against PyTorch: AdamW follows `torch.optim.AdamW` (groups, clipping, varying LR) to 1e-6.

use candle_core::{D, DType, Tensor};
use hashi_model::ParamStore;
use hashi_train::{AdamW, AdamWConfig};

use crate::common::*;

#[test]
fn adamw_matches_torch_over_20_steps() {
    let out = scratch_dir("adamw").join("ref.safetensors");
    run_python("adamw_reference.py", &[&out.display().to_string()]);
    let t = |n: &str| load_tensor(&out, n);
    let params = ParamStore::from_tensors([
        ("W".to_string(), t("W0")),
        ("E".to_string(), t("E0")),
        ("b".to_string(), t("b0")),
    ])
    .expect("params");
    let (x, y) = (t("x"), t("y"));
    let cfg =
        AdamWConfig { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1, clip: 1.0, freeze: vec![] };
    let mut opt = AdamW::new(cfg, &params);
    let lrs: Vec<f64> = t("lrs").to_vec1().expect("lrs");
    let norms: Vec<f64> = t("norms").to_vec1().expect("norms");
    for (step, lr) in lrs.iter().enumerate() {
        let w = params.get("W").expect("W").as_tensor();
        let e = params.get("E").expect("E").as_tensor();
        let b = params.get("b").expect("b").as_tensor();
        let pred = w.matmul(&x).expect("mm").broadcast_add(&b.unsqueeze(D::Minus1).expect("b")).expect("add");
        let mse = (pred - &y).expect("sub").sqr().expect("sqr").mean_all().expect("mean");
        let reg = (e.sqr().expect("sqr").sum_all().expect("sum") * 0.01).expect("scale");
        let reg = reg.broadcast_mul(&x.mean_all().expect("mean")).expect("mul");
        let loss = (mse + reg).expect("loss");
        let grads = loss.backward().expect("backward");
        let stats = opt.step(&params, &grads, *lr, 1.0).expect("step");
        assert!(
            (stats.grad_norm - norms[step]).abs() < 1e-4 * norms[step].max(1.0),
            "step {step}: norm {} vs {}",
            stats.grad_norm,
            norms[step]
        );
    }
    for name in ["W", "E", "b"] {
        let ours: &Tensor = params.get(name).expect("param").as_tensor();
        let diff = max_abs_diff(&ours.to_dtype(DType::F32).expect("f32"), &t(name));
        assert!(diff <= 1e-6, "{name}: {diff} from torch.optim.AdamW after 20 steps");
    }
}
