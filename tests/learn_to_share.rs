//! Learning to share end to end, on data whose answer is known: four groups of strongly
//! correlated input features (noisy copies of one latent each) and eight pure-noise features.
//! A softmax regression trained on the GPU with the GrOWL prox on its input groups (the
//! columns of its `[classes, inputs]` weight), then tie discovery, must zero every noise
//! feature's group and put the copies of each latent in one cluster, and nothing else.

mod common;

use pollster::block_on;
use tied::buffer::{read_back, upload, zeros};
use tied::growl::{GroupLayout, GrowlProx, Weights};
use tied::share::discover::DiscoverTies;
use tied::train::{shuffle, DataSet, Linear, LinearShape, Sgd, Train, XentStats};
use tied::verify::Rng;

const LATENTS: usize = 4;
const COPIES: usize = 4;
const NOISE: usize = 8;
const INPUTS: usize = LATENTS * COPIES + NOISE;
const CLASSES: usize = LATENTS;
const SAMPLES: usize = 2048;
const BATCH: usize = 128;
const LAYOUT: GroupLayout = GroupLayout::Columns {
    rows: CLASSES,
    cols: INPUTS,
};

/// Features `k * COPIES + c` are latent k plus a little noise; the last NOISE features are
/// uniform noise; the label is the largest latent.
fn data(seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = Rng::new(seed);
    let mut unit = move || (rng.uniform() + 1.0) / 2.0;
    let mut pixels = Vec::with_capacity(SAMPLES * INPUTS);
    let mut labels = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let z: Vec<f32> = (0..LATENTS).map(|_| unit()).collect();
        for &zk in &z {
            for _ in 0..COPIES {
                let v = 255.0 * zk + 8.0 * (unit() - 0.5);
                pixels.push(v.clamp(0.0, 255.0) as u8);
            }
        }
        for _ in 0..NOISE {
            pixels.push((255.0 * unit()) as u8);
        }
        let label = (0..LATENTS).fold(0, |best, k| if z[k] > z[best] { k } else { best });
        labels.push(label as u8);
    }
    (pixels, labels)
}

/// Trains the regression with the prox's step scaled by `prox` (0: no prox) and returns its
/// weight `[CLASSES, INPUTS]` and the final training accuracy.
fn train(prox: f32) -> (Vec<f32>, f64) {
    let gpu = common::gpu();
    let t = Train::new(gpu).unwrap();
    let (pixels, labels) = data(5);
    let set = DataSet::upload(gpu, &pixels, &labels, INPUTS).unwrap();
    let gather = t.gather(&set, BATCH, 1.0 / 255.0).unwrap();
    let linear = Linear::new(common::conv())
        .plan(LinearShape::new(
            BATCH as u32,
            INPUTS as u32,
            CLASSES as u32,
        ))
        .unwrap();
    let xent = t.softmax_xent(BATCH, CLASSES).unwrap();
    let lr = 0.2;
    let hyper = Sgd {
        lr,
        momentum: 0.9,
        weight_decay: 0.0,
    };
    let sgd_w = t.sgd(LAYOUT.len(), Some(LAYOUT), hyper).unwrap();
    let sgd_b = t.sgd(CLASSES, None, hyper).unwrap();
    let mut mask_plan = t.mask(LAYOUT).unwrap();
    mask_plan.set_threshold(f32::EPSILON).unwrap();
    let growl = GrowlProx::new(gpu).unwrap().plan(LAYOUT).unwrap();
    let seq = Weights::Oscar { l1: 2.0, l2: 0.05 }
        .sequence(INPUTS, lr * prox)
        .unwrap();
    let prox_weights = upload(gpu, "prox weights", &seq);
    let mut rng = Rng::new(9);
    let w0: Vec<f32> = rng.vec(LAYOUT.len()).iter().map(|v| 0.01 * v).collect();
    let w = upload(gpu, "w", &w0);
    let b = zeros(gpu, "b", CLASSES);
    let (vw, vb) = (zeros(gpu, "vw", LAYOUT.len()), zeros(gpu, "vb", CLASSES));
    let (dw, db) = (zeros(gpu, "dw", LAYOUT.len()), zeros(gpu, "db", CLASSES));
    let mask = upload(gpu, "mask", &[f32::from_bits(1); INPUTS]);
    let x = zeros(gpu, "x", BATCH * INPUTS);
    let y = zeros(gpu, "labels", BATCH);
    let logits = zeros(gpu, "logits", BATCH * CLASSES);
    let dlogits = zeros(gpu, "dlogits", BATCH * CLASSES);
    let per_sample = zeros(gpu, "per sample", 2 * BATCH);
    let stats = zeros(gpu, "stats", XentStats::WORDS);
    let mut accuracy = 0.0;
    for epoch in 0..30 {
        gather.set_order(&shuffle(SAMPLES, 3, epoch)).unwrap();
        let mut enc = gpu.device().create_command_encoder(&Default::default());
        enc.clear_buffer(&stats, 0, None);
        for step in 0..gather.steps() {
            gather.record(&mut enc, &set, step, &x, &y).unwrap();
            linear
                .record_forward(&mut enc, &x, &w, Some(&b), &logits)
                .unwrap();
            xent.record(&mut enc, &logits, &y, &dlogits, &per_sample)
                .unwrap();
            xent.record_accumulate(&mut enc, &per_sample, &stats)
                .unwrap();
            linear
                .record_backward_weight(&mut enc, &dlogits, &x, &dw, Some(&db))
                .unwrap();
            sgd_w
                .record_step(&mut enc, &dw, Some(&mask), &w, &vw)
                .unwrap();
            sgd_b.record_step(&mut enc, &db, None, &b, &vb).unwrap();
        }
        if prox > 0.0 {
            growl.record(&mut enc, &w, &prox_weights, None).unwrap();
            mask_plan
                .record_update(&mut enc, growl.new_norms(), &mask)
                .unwrap();
            mask_plan.record_apply(&mut enc, &mask, &w).unwrap();
            mask_plan.record_apply(&mut enc, &mask, &vw).unwrap();
        }
        gpu.queue().submit([enc.finish()]);
        accuracy = block_on(XentStats::read(gpu, &stats)).unwrap().accuracy();
    }
    (
        block_on(read_back(gpu, &w, LAYOUT.len())).unwrap(),
        accuracy,
    )
}

/// Pair precision and recall of `labels` (None: zero group) against the truth `latent`.
fn pair_scores(labels: &[Option<usize>], latent: impl Fn(usize) -> usize) -> (f64, f64) {
    let (mut tp, mut fp, mut fneg) = (0, 0, 0);
    for i in 0..LATENTS * COPIES {
        for j in i + 1..LATENTS * COPIES {
            let same_truth = latent(i) == latent(j);
            let same_found = labels[i].is_some() && labels[i] == labels[j];
            match (same_truth, same_found) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => fneg += 1,
                _ => {}
            }
        }
    }
    let precision = if tp + fp == 0 {
        0.0
    } else {
        tp as f64 / (tp + fp) as f64
    };
    (precision, tp as f64 / (tp + fneg) as f64)
}

fn found_partition(w: &[f32]) -> (Vec<bool>, Vec<Option<usize>>) {
    let found = DiscoverTies::default().discover(LAYOUT, w).unwrap();
    let ids = found.map.ids();
    let labels = (0..INPUTS)
        .map(|g| (!found.zero[g]).then_some(ids[g] as usize))
        .collect();
    (found.zero, labels)
}

#[test]
fn growl_zeroes_noise_and_ties_correlated_features() {
    let _serial = common::serial();
    let (w, accuracy) = train(1.0);
    assert!(accuracy > 0.8, "training accuracy {accuracy}");
    let (zero, labels) = found_partition(&w);
    let noise_zeroed = zero[LATENTS * COPIES..].iter().filter(|&&z| z).count();
    let signal_zeroed = zero[..LATENTS * COPIES].iter().filter(|&&z| z).count();
    assert_eq!(noise_zeroed, NOISE, "zero groups {zero:?}");
    assert_eq!(signal_zeroed, 0, "zero groups {zero:?}");
    let (precision, recall) = pair_scores(&labels, |i| i / COPIES);
    assert!(
        precision >= 0.9 && recall >= 0.9,
        "pair precision {precision}, recall {recall}: clusters {labels:?}"
    );
    // Without the prox nothing is zeroed: the test depends on it.
    let (w, _) = train(0.0);
    let (zero, _) = found_partition(&w);
    assert!(
        zero.iter().all(|&z| !z),
        "zero groups without the prox: {zero:?}"
    );
}
