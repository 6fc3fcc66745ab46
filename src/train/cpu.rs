//! CPU twins of the training kernels: readable loops, f64 accumulation, the same layouts as
//! the GPU ops. The dense layer's twins are the conv twins of [`super::LinearShape::conv`].
//! Slices must have the documented lengths (these are references; they panic otherwise).

use crate::growl::GroupLayout;

use super::Sgd;

/// `y = x` where `x > 0` or NaN, else `+0`.
pub fn relu_forward(x: &[f32]) -> Vec<f32> {
    x.iter()
        .map(|&v| if v > 0.0 || v.is_nan() { v } else { 0.0 })
        .collect()
}

/// `dx = dy` where `y > 0`, else 0.
pub fn relu_backward(y: &[f32], dy: &[f32]) -> Vec<f32> {
    y.iter()
        .zip(dy)
        .map(|(&y, &g)| if y > 0.0 { g } else { 0.0 })
        .collect()
}

/// Batch statistics of `x` `[batch, features]`: per feature `(mean, biased variance)`.
fn moments(x: &[f64], batch: usize, features: usize) -> Vec<(f64, f64)> {
    (0..features)
        .map(|f| {
            let mean = (0..batch).map(|b| x[b * features + f]).sum::<f64>() / batch as f64;
            let var = (0..batch)
                .map(|b| (x[b * features + f] - mean).powi(2))
                .sum::<f64>()
                / batch as f64;
            (mean, var)
        })
        .collect()
}

/// BatchNorm1d training forward in f64: returns `(y, saved = [mean; inv_std], running')`.
pub fn batch_norm_forward_f64(
    x: &[f64],
    affine: &[f64],
    running: &[f64],
    batch: usize,
    eps: f64,
    momentum: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let features = affine.len() / 2;
    let stats = moments(x, batch, features);
    let mut y = vec![0.0; batch * features];
    let mut saved = vec![0.0; 2 * features];
    let mut run = running.to_vec();
    for (f, &(mean, var)) in stats.iter().enumerate() {
        let inv_std = 1.0 / (var + eps).sqrt();
        for b in 0..batch {
            let i = b * features + f;
            y[i] = affine[f] * (x[i] - mean) * inv_std + affine[features + f];
        }
        saved[f] = mean;
        saved[features + f] = inv_std;
        run[f] = momentum * running[f] + (1.0 - momentum) * mean;
        run[features + f] = momentum * running[features + f] + (1.0 - momentum) * var;
    }
    (y, saved, run)
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

fn to_f32(v: Vec<f64>) -> Vec<f32> {
    v.into_iter().map(|x| x as f32).collect()
}

/// [`batch_norm_forward_f64`] on f32 slices.
pub fn batch_norm_forward(
    x: &[f32],
    affine: &[f32],
    running: &[f32],
    batch: usize,
    eps: f32,
    momentum: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (y, s, r) = batch_norm_forward_f64(
        &to_f64(x),
        &to_f64(affine),
        &to_f64(running),
        batch,
        f64::from(eps),
        f64::from(momentum),
    );
    (to_f32(y), to_f32(s), to_f32(r))
}

/// BatchNorm1d inference forward.
pub fn batch_norm_eval(x: &[f32], affine: &[f32], running: &[f32], eps: f32) -> Vec<f32> {
    let features = affine.len() / 2;
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let f = i % features;
            let inv_std = 1.0 / (f64::from(running[features + f]) + f64::from(eps)).sqrt();
            (f64::from(affine[f]) * (f64::from(v) - f64::from(running[f])) * inv_std
                + f64::from(affine[features + f])) as f32
        })
        .collect()
}

/// BatchNorm1d backward in f64 from the forward's input and saved statistics: `(dx,
/// [dgamma; dbeta])`.
pub fn batch_norm_backward_f64(
    x: &[f64],
    dy: &[f64],
    affine: &[f64],
    saved: &[f64],
    batch: usize,
) -> (Vec<f64>, Vec<f64>) {
    let features = affine.len() / 2;
    let mut dx = vec![0.0; batch * features];
    let mut da = vec![0.0; 2 * features];
    let n = batch as f64;
    for f in 0..features {
        let (mean, inv_std) = (saved[f], saved[features + f]);
        let xhat = |b: usize| (x[b * features + f] - mean) * inv_std;
        let dbeta: f64 = (0..batch).map(|b| dy[b * features + f]).sum();
        let dgamma: f64 = (0..batch).map(|b| dy[b * features + f] * xhat(b)).sum();
        for b in 0..batch {
            let i = b * features + f;
            dx[i] = affine[f] * inv_std / n * (n * dy[i] - dbeta - xhat(b) * dgamma);
        }
        da[f] = dgamma;
        da[features + f] = dbeta;
    }
    (dx, da)
}

/// [`batch_norm_backward_f64`] on f32 slices.
pub fn batch_norm_backward(
    x: &[f32],
    dy: &[f32],
    affine: &[f32],
    saved: &[f32],
    batch: usize,
) -> (Vec<f32>, Vec<f32>) {
    let (dx, da) = batch_norm_backward_f64(
        &to_f64(x),
        &to_f64(dy),
        &to_f64(affine),
        &to_f64(saved),
        batch,
    );
    (to_f32(dx), to_f32(da))
}

/// Softmax cross-entropy in f64 of logits `[batch, classes]`: `(dlogits of the mean loss,
/// per-sample losses, correct predictions)`; a label out of range gives a NaN loss.
pub fn softmax_xent_f64(
    logits: &[f64],
    labels: &[u32],
    classes: usize,
) -> (Vec<f64>, Vec<f64>, Vec<bool>) {
    let batch = labels.len();
    let mut dl = vec![0.0; batch * classes];
    let mut losses = Vec::with_capacity(batch);
    let mut correct = Vec::with_capacity(batch);
    for (b, &label) in labels.iter().enumerate() {
        let row = &logits[b * classes..][..classes];
        let (arg, best) =
            row.iter().enumerate().fold(
                (0, row[0]),
                |(a, m), (c, &z)| if z > m { (c, z) } else { (a, m) },
            );
        let sum: f64 = row.iter().map(|z| (z - best).exp()).sum();
        let label = label as usize;
        losses.push(if label < classes {
            sum.ln() + best - row[label]
        } else {
            f64::NAN
        });
        correct.push(label < classes && arg == label);
        for c in 0..classes {
            let onehot = if c == label { 1.0 } else { 0.0 };
            dl[b * classes + c] = ((row[c] - best).exp() / sum - onehot) / batch as f64;
        }
    }
    (dl, losses, correct)
}

/// One momentum SGD step in place (as the GPU's `train_sgd.wgsl`, in f32): with `mask`
/// (one u32 per group of `layout`), masked groups of `weight` and `velocity` become 0.
pub fn sgd_step(
    hyper: Sgd,
    grad: &[f32],
    mask: Option<(&[u32], GroupLayout)>,
    weight: &mut [f32],
    velocity: &mut [f32],
) {
    for i in 0..weight.len() {
        let v = hyper.momentum * velocity[i] + (grad[i] + hyper.weight_decay * weight[i]);
        let w = weight[i] - hyper.lr * v;
        let keep = mask.is_none_or(|(m, layout)| m[layout.group_of(i)] != 0);
        weight[i] = if keep { w } else { 0.0 };
        velocity[i] = if keep { v } else { 0.0 };
    }
}

/// Zeroes the masked groups of `tensor` in place.
pub fn mask_apply(mask: &[u32], layout: GroupLayout, tensor: &mut [f32]) {
    for (i, t) in tensor.iter_mut().enumerate() {
        if mask[layout.group_of(i)] == 0 {
            *t = 0.0;
        }
    }
}

/// Masks for good the groups whose norm is at most `threshold` (or NaN).
pub fn mask_update(norms: &[f32], threshold: f32, mask: &mut [u32]) {
    for (m, &n) in mask.iter_mut().zip(norms) {
        if n.is_nan() || n <= threshold {
            *m = 0;
        }
    }
}

/// Batch `step` of a gather: `(x, labels)` from `data` (`dim` bytes a sample) in `order`.
pub fn gather(
    data: &[u8],
    labels: &[u8],
    dim: usize,
    order: &[u32],
    batch: usize,
    step: usize,
    scale: f32,
) -> (Vec<f32>, Vec<u32>) {
    let picks = &order[step * batch..][..batch];
    let x = picks
        .iter()
        .flat_map(|&s| {
            data[s as usize * dim..][..dim]
                .iter()
                .map(|&v| f32::from(v) * scale)
        })
        .collect();
    (
        x,
        picks
            .iter()
            .map(|&s| u32::from(labels[s as usize]))
            .collect(),
    )
}
