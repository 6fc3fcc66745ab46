//! Training building blocks against their CPU twins, with finite differences for every
//! backward.

mod common;

use std::sync::OnceLock;

use pollster::block_on;
use tied::buffer;
use tied::conv::cpu as conv_cpu;
use tied::growl::GroupLayout;
use tied::train::{cpu, shuffle, step_decay, DataSet, Linear, LinearShape, Sgd, Train, XentStats};
use tied::verify::{abs, max_rel_err, Rng};

fn train() -> &'static Train {
    static TRAIN: OnceLock<Train> = OnceLock::new();
    TRAIN.get_or_init(|| Train::new(common::gpu()).expect("train pipelines"))
}

fn close(what: &str, gpu: &[f32], reference: &[f32], tol: f32) {
    assert_eq!(gpu.len(), reference.len(), "{what}: length");
    for (i, (&g, &r)) in gpu.iter().zip(reference).enumerate() {
        assert!(
            (g - r).abs() <= tol * (1.0 + r.abs()) || (g.is_nan() && r.is_nan()),
            "{what}: element {i} is {g}, the CPU twin gives {r}"
        );
    }
}

/// Checks the GPU gradient `grad` of `f` at `at`, entries `which`, against central
/// differences (step 1e-6) within `tol`.
fn check_gradient(
    name: &str,
    grad: &[f32],
    at: &[f64],
    which: &[usize],
    tol: f64,
    f: impl Fn(&[f64]) -> f64,
) {
    let h = 1e-6;
    for &i in which {
        let (mut p, mut m) = (at.to_vec(), at.to_vec());
        p[i] += h;
        m[i] -= h;
        let fd = (f(&p) - f(&m)) / (2.0 * h);
        assert!(
            (fd - f64::from(grad[i])).abs() < tol,
            "{name}[{i}]: {} vs {fd}",
            grad[i]
        );
    }
}

#[test]
fn relu_matches_twin() {
    let _serial = common::serial();
    let mut x = Rng::new(1).vec(1000);
    x[3] = f32::NAN;
    x[4] = -0.0;
    x[5] = 0.0;
    let plan = train().relu(x.len()).unwrap();
    let y = block_on(plan.forward(&x)).unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&y), bits(&cpu::relu_forward(&x)));
    let dy = Rng::new(2).vec(1000);
    let dx = block_on(plan.backward(&y, &dy)).unwrap();
    assert_eq!(bits(&dx), bits(&cpu::relu_backward(&y, &dy)));
    assert!(y[3].is_nan());
}

#[test]
fn relu_past_one_dispatch_row() {
    let _serial = common::serial();
    // 70,000 workgroups of 256: the grid folds.
    let n = 70_000 * 256 + 3;
    let x: Vec<f32> = (0..n).map(|i| (i % 7) as f32 - 3.0).collect();
    let y = block_on(train().relu(n).unwrap().forward(&x)).unwrap();
    assert_eq!(y, cpu::relu_forward(&x));
}

/// `(batch, features)` cases: one partial workgroup, several, a batch past 16 slices of 16.
const BN_CASES: [(usize, usize); 4] = [(4, 3), (128, 300), (37, 17), (600, 5)];

#[test]
fn batch_norm_matches_twin() {
    let _serial = common::serial();
    for (case, &(batch, features)) in BN_CASES.iter().enumerate() {
        let mut rng = Rng::new(10 + case as u64);
        let x: Vec<f32> = rng
            .vec(batch * features)
            .iter()
            .map(|v| 3.0 * v + 1.0)
            .collect();
        let affine = rng.vec(2 * features);
        let running = abs(&rng.vec(2 * features));
        let plan = train().batch_norm(batch, features, 1e-3, 0.99).unwrap();
        let (y, saved, run) = block_on(plan.forward(&x, &affine, &running)).unwrap();
        let (y_ref, saved_ref, run_ref) =
            cpu::batch_norm_forward(&x, &affine, &running, batch, 1e-3, 0.99);
        close("bn y", &y, &y_ref, 2e-5);
        close("bn saved", &saved, &saved_ref, 2e-5);
        close("bn running", &run, &run_ref, 2e-5);
        let y = block_on(plan.eval(&x, &affine, &running)).unwrap();
        close(
            "bn eval",
            &y,
            &cpu::batch_norm_eval(&x, &affine, &running, 1e-3),
            2e-5,
        );
        let dy = rng.vec(batch * features);
        let (dx, da) = block_on(plan.backward(&x, &dy, &affine, &saved)).unwrap();
        let (dx_ref, da_ref) = cpu::batch_norm_backward(&x, &dy, &affine, &saved_ref, batch);
        close("bn dx", &dx, &dx_ref, 1e-4);
        close("bn daffine", &da, &da_ref, 1e-4);
        // Bitwise reproducible.
        let (y2, _, _) = block_on(plan.forward(&x, &affine, &running)).unwrap();
        let (dx2, _) = block_on(plan.backward(&x, &dy, &affine, &saved)).unwrap();
        let y1 = block_on(plan.forward(&x, &affine, &running)).unwrap().0;
        assert_eq!(y1, y2);
        assert_eq!(dx, dx2);
    }
}

#[test]
fn batch_norm_backward_matches_finite_differences() {
    let _serial = common::serial();
    // L = sum(y * r) of the f64 twin; central differences against the GPU backward.
    let (batch, features) = (6, 3);
    let mut rng = Rng::new(20);
    let x = rng.vec(batch * features);
    let affine: Vec<f32> = rng.vec(2 * features).iter().map(|v| v + 1.5).collect();
    let r = rng.vec(batch * features);
    let to64 = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
    let loss = |x: &[f64], a: &[f64]| {
        let (y, _, _) =
            cpu::batch_norm_forward_f64(x, a, &vec![0.0; 2 * features], batch, 1e-3, 0.9);
        y.iter()
            .zip(&r)
            .map(|(y, &r)| y * f64::from(r))
            .sum::<f64>()
    };
    let plan = train().batch_norm(batch, features, 1e-3, 0.9).unwrap();
    let (_, saved, _) = block_on(plan.forward(&x, &affine, &vec![0.0; 2 * features])).unwrap();
    let (dx, da) = block_on(plan.backward(&x, &r, &affine, &saved)).unwrap();
    let (x64, a64) = (to64(&x), to64(&affine));
    let all = |n: usize| (0..n).collect::<Vec<_>>();
    check_gradient("dx", &dx, &x64, &all(x.len()), 1e-3, |x| loss(x, &a64));
    check_gradient("daffine", &da, &a64, &all(affine.len()), 1e-3, |a| {
        loss(&x64, a)
    });
}

#[test]
fn softmax_xent_matches_twin_and_finite_differences() {
    let _serial = common::serial();
    for &(batch, classes) in &[(5, 10), (300, 10), (3, 1), (2, 700)] {
        let mut rng = Rng::new(30 + batch as u64);
        let logits: Vec<f32> = rng.vec(batch * classes).iter().map(|v| 4.0 * v).collect();
        let labels: Vec<u32> = (0..batch).map(|b| (b * 7 % classes) as u32).collect();
        let plan = train().softmax_xent(batch, classes).unwrap();
        let (dl, losses, correct) = block_on(plan.run(&logits, &labels)).unwrap();
        let l64: Vec<f64> = logits.iter().map(|&v| f64::from(v)).collect();
        let (dl_ref, loss_ref, correct_ref) = cpu::softmax_xent_f64(&l64, &labels, classes);
        let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<_>>();
        close("dlogits", &dl, &f32s(dl_ref), 1e-5);
        close("losses", &losses, &f32s(loss_ref), 1e-5);
        assert_eq!(correct, correct_ref);
        // The gradient of the mean loss, by central differences of the twin.
        let mean = |l: &[f64]| {
            let (_, losses, _) = cpu::softmax_xent_f64(l, &labels, classes);
            losses.iter().sum::<f64>() / batch as f64
        };
        let some: Vec<usize> = (0..logits.len())
            .step_by(logits.len().div_ceil(40))
            .collect();
        check_gradient("dlogits", &dl, &l64, &some, 1e-5, mean);
    }
    // A label out of range: NaN loss, not correct.
    let plan = train().softmax_xent(1, 3).unwrap();
    let (_, losses, correct) = block_on(plan.run(&[1.0, 2.0, 3.0], &[7])).unwrap();
    assert!(losses[0].is_nan());
    assert!(!correct[0]);
}

#[test]
fn xent_totals_accumulate_in_order() {
    let _serial = common::serial();
    let gpu = common::gpu();
    let (batch, classes) = (300, 4);
    let plan = train().softmax_xent(batch, classes).unwrap();
    let stats = buffer::zeros(gpu, "stats", XentStats::WORDS);
    let mut expect = (0.0f64, 0u32);
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    let mut keep = Vec::new();
    for step in 0..3u64 {
        let mut rng = Rng::new(40 + step);
        let logits = rng.vec(batch * classes);
        let labels: Vec<u32> = (0..batch).map(|b| (b % classes) as u32).collect();
        let l64: Vec<f64> = logits.iter().map(|&v| f64::from(v)).collect();
        let (_, losses, correct) = cpu::softmax_xent_f64(&l64, &labels, classes);
        expect.0 += losses.iter().sum::<f64>();
        expect.1 += correct.iter().filter(|&&c| c).count() as u32;
        let lb = buffer::upload(gpu, "logits", &logits);
        let yb = buffer::upload(
            gpu,
            "labels",
            &labels
                .iter()
                .map(|&l| f32::from_bits(l))
                .collect::<Vec<_>>(),
        );
        let dl = buffer::zeros(gpu, "dl", batch * classes);
        let ps = buffer::zeros(gpu, "ps", 2 * batch);
        plan.record(&mut encoder, &lb, &yb, &dl, &ps).unwrap();
        plan.record_accumulate(&mut encoder, &ps, &stats).unwrap();
        keep.push((lb, yb, dl, ps));
    }
    gpu.queue().submit([encoder.finish()]);
    let got = block_on(XentStats::read(gpu, &stats)).unwrap();
    assert_eq!(got.samples, 3 * batch as u32);
    assert_eq!(got.correct, expect.1);
    assert!((f64::from(got.loss_sum) - expect.0).abs() < 1e-4 * expect.0);
}

#[test]
fn sgd_and_masks_match_twin() {
    let _serial = common::serial();
    let gpu = common::gpu();
    let layouts = common::layouts_of_each_kind([30, 17], [9, 11], [4, 5, 9]);
    for (case, layout) in layouts.into_iter().enumerate() {
        let n = layout.len();
        let mut rng = Rng::new(50 + case as u64);
        let (grad, w0, v0) = (rng.vec(n), rng.vec(n), rng.vec(n));
        let mask: Vec<u32> = (0..layout.groups())
            .map(|g| u32::from(g % 3 != 1))
            .collect();
        let hyper = Sgd {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 1e-2,
        };
        for with_mask in [false, true] {
            let plan = train().sgd(n, with_mask.then_some(layout), hyper).unwrap();
            let (gb, mb) = (
                buffer::upload(gpu, "g", &grad),
                buffer::upload(
                    gpu,
                    "mask",
                    &mask.iter().map(|&m| f32::from_bits(m)).collect::<Vec<_>>(),
                ),
            );
            let (wb, vb) = (buffer::upload(gpu, "w", &w0), buffer::upload(gpu, "v", &v0));
            let mut encoder = gpu.device().create_command_encoder(&Default::default());
            plan.record_step(&mut encoder, &gb, with_mask.then_some(&mb), &wb, &vb)
                .unwrap();
            gpu.queue().submit([encoder.finish()]);
            let (mut w, mut v) = (w0.clone(), v0.clone());
            cpu::sgd_step(
                hyper,
                &grad,
                with_mask.then_some((&mask[..], layout)),
                &mut w,
                &mut v,
            );
            close(
                "sgd w",
                &block_on(buffer::read_back(gpu, &wb, n)).unwrap(),
                &w,
                1e-6,
            );
            close(
                "sgd v",
                &block_on(buffer::read_back(gpu, &vb, n)).unwrap(),
                &v,
                1e-6,
            );
            // A mask for a plan without one (and the reverse) is an error.
            let mut encoder = gpu.device().create_command_encoder(&Default::default());
            let wrong = (!with_mask).then_some(&mb);
            assert!(plan
                .record_step(&mut encoder, &gb, wrong, &wb, &vb)
                .is_err());
        }
        // Mask update from norms, then apply.
        let mut plan = train().mask(layout).unwrap();
        plan.set_threshold(f32::EPSILON).unwrap();
        let mut norms = abs(&rng.vec(layout.groups()));
        norms[0] = f32::EPSILON;
        norms[1] = f32::NAN;
        let nb = buffer::upload(gpu, "norms", &norms);
        let mb = buffer::upload(
            gpu,
            "mask",
            &mask.iter().map(|&m| f32::from_bits(m)).collect::<Vec<_>>(),
        );
        let tb = buffer::upload(gpu, "t", &w0);
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        plan.record_update(&mut encoder, &nb, &mb).unwrap();
        plan.record_apply(&mut encoder, &mb, &tb).unwrap();
        gpu.queue().submit([encoder.finish()]);
        let mut m = mask.clone();
        cpu::mask_update(&norms, f32::EPSILON, &mut m);
        let mut t = w0.clone();
        cpu::mask_apply(&m, layout, &mut t);
        let got_m: Vec<u32> = block_on(buffer::read_back(gpu, &mb, m.len()))
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(got_m, m);
        assert_eq!(got_m[0], 0, "a norm at the threshold is masked");
        assert_eq!(block_on(buffer::read_back(gpu, &tb, n)).unwrap(), t);
    }
}

#[test]
fn linear_layer_matches_twin() {
    let _serial = common::serial();
    let linear = Linear::new(common::conv());
    for shape in [
        LinearShape::new(128, 784, 300),
        LinearShape::new(3, 5, 2).with_bias(false),
        LinearShape::new(64, 300, 10),
    ] {
        let c = shape.conv();
        let mut rng = Rng::new(60);
        let (x, w, b, dy) = (
            rng.vec(c.input_len()),
            rng.vec(c.weight_len()),
            rng.vec(c.bias_len()),
            rng.vec(c.output_len()),
        );
        let bias = shape.bias.then_some(&b[..]);
        let y = block_on(linear.forward(shape, &x, &w, bias)).unwrap();
        let scale = conv_cpu::forward(&c, &abs(&x), &abs(&w), shape.bias.then_some(&abs(&b)[..]));
        assert!(max_rel_err(&y, &conv_cpu::forward(&c, &x, &w, bias), &scale) < 2e-5);
        let g = block_on(linear.backward(shape, &x, &w, &dy)).unwrap();
        let e = max_rel_err(
            &g.input,
            &conv_cpu::backward_data(&c, &dy, &w),
            &conv_cpu::backward_data(&c, &abs(&dy), &abs(&w)),
        );
        assert!(e < 2e-5, "dx {e}");
        let e = max_rel_err(
            &g.weight,
            &conv_cpu::backward_weight(&c, &dy, &x),
            &conv_cpu::backward_weight(&c, &abs(&dy), &abs(&x)),
        );
        assert!(e < 2e-5, "dw {e}");
        // dx = dy W and dW = dy^T x by hand, for the layout.
        let (bn, i, o) = (
            shape.batch as usize,
            shape.inputs as usize,
            shape.outputs as usize,
        );
        let dx00: f32 = (0..o).map(|k| dy[k] * w[k * i]).sum();
        assert!((g.input[0] - dx00).abs() < 1e-4 * (1.0 + dx00.abs()));
        let dw00: f32 = (0..bn).map(|r| dy[r * o] * x[r * i]).sum();
        assert!((g.weight[0] - dw00).abs() < 1e-4 * (1.0 + dw00.abs()));
    }
}

#[test]
fn gather_matches_twin_and_shuffle_is_a_seeded_permutation() {
    let _serial = common::serial();
    let gpu = common::gpu();
    let (samples, dim, batch) = (103, 13, 10);
    let (data, labels, set) = common::byte_set(gpu, samples, dim, 31);
    let plan = train().gather(&set, batch, 1.0 / 255.0).unwrap();
    assert_eq!(plan.steps(), 10);
    let order = shuffle(samples, 7, 3);
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..samples as u32).collect::<Vec<_>>());
    assert_eq!(order, shuffle(samples, 7, 3));
    assert_ne!(order, shuffle(samples, 7, 4));
    plan.set_order(&order).unwrap();
    for step in [0, 4, 9] {
        let x = buffer::zeros(gpu, "x", batch * dim);
        let l = buffer::zeros(gpu, "labels", batch);
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        plan.record(&mut encoder, &set, step, &x, &l).unwrap();
        gpu.queue().submit([encoder.finish()]);
        let (x_ref, l_ref) = cpu::gather(&data, &labels, dim, &order, batch, step, 1.0 / 255.0);
        assert_eq!(
            block_on(buffer::read_back(gpu, &x, batch * dim)).unwrap(),
            x_ref
        );
        let got: Vec<u32> = block_on(buffer::read_back(gpu, &l, batch))
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(got, l_ref);
    }
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    let x = buffer::zeros(gpu, "x", batch * dim);
    let l = buffer::zeros(gpu, "labels", batch);
    assert!(plan.record(&mut encoder, &set, 10, &x, &l).is_err());
    assert!(plan.set_order(&[0; 103]).is_ok());
    assert!(plan.set_order(&[200; 103]).is_err());
    assert!(DataSet::upload(gpu, &data, &labels, dim + 1).is_err());
}

#[test]
fn bad_shapes_are_errors() {
    let t = train();
    assert!(t.batch_norm(0, 3, 1e-3, 0.99).is_err());
    assert!(t.batch_norm(4, 3, 0.0, 0.99).is_err());
    assert!(t.batch_norm(4, 3, 1e-3, 1.5).is_err());
    assert!(t.softmax_xent(4, 0).is_err());
    assert!(t.softmax_xent(4, 20_000).is_err());
    let bad = Sgd {
        lr: f32::NAN,
        momentum: 0.9,
        weight_decay: 0.0,
    };
    assert!(t.sgd(10, None, bad).is_err());
    let layout = GroupLayout::Rows { rows: 2, cols: 3 };
    let ok = Sgd {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 0.0,
    };
    assert!(t.sgd(7, Some(layout), ok).is_err());
    assert!(t.mask(layout).unwrap().set_threshold(-1.0).is_err());
}

#[test]
fn step_decay_is_the_papers_staircase() {
    let near = |a: f32, b: f64| (f64::from(a) - b).abs() <= 1e-6 * b;
    assert_eq!(step_decay(1e-3, 0.96, 10, 0), 1e-3);
    assert_eq!(step_decay(1e-3, 0.96, 10, 9), 1e-3);
    assert!(near(step_decay(1e-3, 0.96, 10, 10), 1e-3 * 0.96));
    assert!(near(
        step_decay(1e-3, 0.96, 10, 299),
        1e-3 * 0.96f64.powi(29)
    ));
    assert_eq!(step_decay(1e-3, 0.96, 0, 299), 1e-3);
}

/// The host-slice calls of every training kernel against the CPU twins, with their length
/// checks (each `_blocking` call is the async one on `pollster`).
#[test]
fn host_slice_calls_match_twins() {
    let _serial = common::serial();
    let gpu = common::gpu();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mut rng = Rng::new(77);
    // ReLU.
    let x = rng.vec(300);
    let relu = train().relu(x.len()).unwrap();
    let y = relu.forward_blocking(&x).unwrap();
    assert_eq!(bits(&y), bits(&cpu::relu_forward(&x)));
    let dy = rng.vec(300);
    let dx = relu.backward_blocking(&y, &dy).unwrap();
    assert_eq!(bits(&dx), bits(&cpu::relu_backward(&y, &dy)));
    assert!(matches!(
        relu.forward_blocking(&x[1..]),
        Err(tied::Error::LengthMismatch { .. })
    ));
    // SGD, with and without a mask.
    let layout = GroupLayout::ConvInChannels {
        c_out: 3,
        c_in: 4,
        khw: 5,
    };
    let n = layout.len();
    let (grad, w0, v0) = (rng.vec(n), rng.vec(n), rng.vec(n));
    let mask = [1u32, 0, 1, 1];
    let hyper = Sgd {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 1e-3,
    };
    for with_mask in [false, true] {
        let plan = train().sgd(n, with_mask.then_some(layout), hyper).unwrap();
        let m = with_mask.then_some(&mask[..]);
        let (w, v) = plan.step_blocking(&grad, m, &w0, &v0).unwrap();
        let (mut w_ref, mut v_ref) = (w0.clone(), v0.clone());
        cpu::sgd_step(hyper, &grad, m.map(|m| (m, layout)), &mut w_ref, &mut v_ref);
        close("sgd step w", &w, &w_ref, 1e-6);
        close("sgd step v", &v, &v_ref, 1e-6);
        if with_mask {
            assert!(w[layout.len() / 3 - 1] != 0.0 && w[5] == 0.0 && v[9] == 0.0);
        }
        // The wrong mask presence and wrong lengths are errors.
        let wrong = (!with_mask).then_some(&mask[..]);
        assert!(plan.step_blocking(&grad, wrong, &w0, &v0).is_err());
        assert!(matches!(
            plan.step_blocking(&grad[1..], m, &w0, &v0),
            Err(tied::Error::LengthMismatch { .. })
        ));
    }
    let plan = train().sgd(n, Some(layout), hyper).unwrap();
    assert!(plan
        .step_blocking(&grad, Some(&mask[1..]), &w0, &v0)
        .is_err());
    // Masks: update from norms (at the threshold and NaN are masked), then apply.
    let mut mplan = train().mask(layout).unwrap();
    mplan.set_threshold(0.5).unwrap();
    let norms = [0.5, 0.7, f32::NAN, 2.0];
    let old = [1u32, 1, 1, 0];
    let new = mplan.update_blocking(&norms, &old).unwrap();
    let mut new_ref = old;
    cpu::mask_update(&norms, 0.5, &mut new_ref);
    assert_eq!(new, new_ref);
    assert_eq!(new, [0, 1, 0, 0]);
    let t = mplan.apply_blocking(&new, &w0).unwrap();
    let mut t_ref = w0.clone();
    cpu::mask_apply(&new, layout, &mut t_ref);
    assert_eq!(bits(&t), bits(&t_ref));
    assert!(mplan.apply_blocking(&new[1..], &w0).is_err());
    assert!(mplan.update_blocking(&norms, &old[1..]).is_err());
    // Gather.
    let (samples, dim, batch) = (21, 5, 4);
    let data: Vec<u8> = (0..samples * dim).map(|i| (i * 37 % 256) as u8).collect();
    let labels: Vec<u8> = (0..samples).map(|i| (i % 10) as u8).collect();
    let set = DataSet::upload(gpu, &data, &labels, dim).unwrap();
    let gather = train().gather(&set, batch, 0.5).unwrap();
    let order = shuffle(samples, 3, 1);
    gather.set_order(&order).unwrap();
    for step in [0, 4] {
        let (x, l) = gather.gather_blocking(&set, step).unwrap();
        let (x_ref, l_ref) = cpu::gather(&data, &labels, dim, &order, batch, step, 0.5);
        assert_eq!((x, l), (x_ref, l_ref));
    }
    assert!(gather.gather_blocking(&set, 5).is_err());
    // BatchNorm and softmax cross-entropy.
    let (b, f) = (6, 4);
    let bn = train().batch_norm(b, f, 1e-3, 0.9).unwrap();
    let (x, affine) = (rng.vec(b * f), rng.vec(2 * f));
    let running: Vec<f32> = (0..2 * f).map(|i| if i < f { 0.0 } else { 1.0 }).collect();
    let (y, saved, run) = bn.forward_blocking(&x, &affine, &running).unwrap();
    let (y_ref, saved_ref, run_ref) = cpu::batch_norm_forward(&x, &affine, &running, b, 1e-3, 0.9);
    close("bn y", &y, &y_ref, 1e-4);
    close("bn saved", &saved, &saved_ref, 1e-4);
    close("bn running", &run, &run_ref, 1e-4);
    let e = bn.eval_blocking(&x, &affine, &run).unwrap();
    close(
        "bn eval",
        &e,
        &cpu::batch_norm_eval(&x, &affine, &run, 1e-3),
        1e-4,
    );
    let dy = rng.vec(b * f);
    let (dx, da) = bn.backward_blocking(&x, &dy, &affine, &saved).unwrap();
    let (dx_ref, da_ref) = cpu::batch_norm_backward(&x, &dy, &affine, &saved, b);
    close("bn dx", &dx, &dx_ref, 1e-3);
    close("bn daffine", &da, &da_ref, 1e-4);
    assert!(bn.eval_blocking(&x[1..], &affine, &run).is_err());
    let xent = train().softmax_xent(b, 3).unwrap();
    let logits = rng.vec(b * 3);
    let lab = [0u32, 1, 2, 2, 1, 0];
    let (dl, losses, correct) = xent.run_blocking(&logits, &lab).unwrap();
    let logits64: Vec<f64> = logits.iter().map(|&v| f64::from(v)).collect();
    let (dl_ref, losses_ref, correct_ref) = cpu::softmax_xent_f64(&logits64, &lab, 3);
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
    close("xent dlogits", &dl, &f32s(&dl_ref), 1e-5);
    close("xent losses", &losses, &f32s(&losses_ref), 1e-5);
    assert_eq!(correct, correct_ref);
    assert!(xent.run_blocking(&logits, &lab[1..]).is_err());
    // The dense layer.
    let shape = LinearShape::new(3, 4, 2);
    let linear = Linear::new(common::conv());
    let (x, w, bias) = (rng.vec(12), rng.vec(8), rng.vec(2));
    let y = linear.forward_blocking(shape, &x, &w, Some(&bias)).unwrap();
    assert_eq!(
        y,
        block_on(linear.forward(shape, &x, &w, Some(&bias))).unwrap()
    );
    let g = linear.backward_blocking(shape, &x, &w, &y).unwrap();
    assert_eq!(g.weight.len(), 8);
}
