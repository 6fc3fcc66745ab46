//! Conv2d against its CPU twin.

mod common;

use tied::conv::{cpu, BackwardDataBuffers, BackwardWeightBuffers, Conv2dShape};
use tied::verify::{abs, max_rel_err, Rng};

const TOL: f64 = 2e-5;

/// Random input, weight, bias and output gradient of `shape`, drawn in that order from `seed`.
struct Tensors {
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    dy: Vec<f32>,
}

fn random_tensors(shape: &Conv2dShape, seed: u64) -> Tensors {
    let mut rng = Rng::new(seed);
    Tensors {
        x: rng.vec(shape.input_len()),
        w: rng.vec(shape.weight_len()),
        b: rng.vec(shape.bias_len()),
        dy: rng.vec(shape.output_len()),
    }
}

/// Runs forward and both gradients on the GPU and checks each against the CPU twin.
fn check_shape(shape: &Conv2dShape, seed: u64) {
    let conv = common::conv();
    let Tensors { x, w, b, dy } = random_tensors(shape, seed);
    let bias = shape.bias.then_some(&b[..]);

    let y = conv.forward_blocking(shape, &x, &w, bias).expect("forward");
    let y_ref = cpu::forward(shape, &x, &w, bias);
    let y_scale = cpu::forward(
        shape,
        &abs(&x),
        &abs(&w),
        shape.bias.then_some(&abs(&b)[..]),
    );
    let e = max_rel_err(&y, &y_ref, &y_scale);
    assert!(e <= TOL, "forward {}: max rel err {e}", shape.describe());

    let g = conv
        .backward_blocking(shape, &x, &w, &dy)
        .expect("backward");
    let gi_ref = cpu::backward_data(shape, &dy, &w);
    let gi_scale = cpu::backward_data(shape, &abs(&dy), &abs(&w));
    let e = max_rel_err(&g.input, &gi_ref, &gi_scale);
    assert!(
        e <= TOL,
        "backward_data {}: max rel err {e}",
        shape.describe()
    );

    let gw_ref = cpu::backward_weight(shape, &dy, &x);
    let gw_scale = cpu::backward_weight(shape, &abs(&dy), &abs(&x));
    let e = max_rel_err(&g.weight, &gw_ref, &gw_scale);
    assert!(
        e <= TOL,
        "backward_weight {}: max rel err {e}",
        shape.describe()
    );

    let gb_ref = if shape.bias {
        cpu::backward_bias(shape, &dy)
    } else {
        vec![]
    };
    let gb_scale = if shape.bias {
        cpu::backward_bias(shape, &abs(&dy))
    } else {
        vec![]
    };
    let e = max_rel_err(&g.bias, &gb_ref, &gb_scale);
    assert!(
        e <= TOL,
        "backward_bias {}: max rel err {e}",
        shape.describe()
    );
}

/// `#[test]` fns that each run [`check_shape`] on one shape and seed (under the serial lock):
/// `name: shape, seed;`, doc comments allowed.
macro_rules! shape_tests {
    ($($(#[$meta:meta])* $name:ident: $shape:expr, $seed:expr;)*) => {
        $(
            $(#[$meta])*
            #[test]
            fn $name() {
                let _serial = common::serial();
                check_shape(&$shape, $seed);
            }
        )*
    };
}

shape_tests! {
    basic_3x3: Conv2dShape::new(2, 3, 5, [7, 9], [3, 3]).padding(1).with_bias(true), 1;
    stride_2: Conv2dShape::new(2, 4, 6, [9, 8], [3, 3]).stride(2).padding(1), 2;
    dilation_2:
        Conv2dShape::new(1, 3, 4, [11, 10], [3, 3]).dilation(2).padding(2).with_bias(true), 3;
    grouped: Conv2dShape::new(2, 6, 9, [8, 7], [3, 2]).groups(3).padding(1).with_bias(true), 4;
    depthwise: Conv2dShape::new(2, 8, 8, [10, 10], [3, 3]).groups(8).padding(1).with_bias(true), 5;
    pointwise_1x1: Conv2dShape::new(3, 16, 12, [6, 5], [1, 1]), 6;
    /// A fully connected layer: the kernel is the whole input, so out_size is 1x1.
    fully_connected_kernel_covers_input:
        Conv2dShape::new(4, 8, 10, [6, 6], [6, 6]).with_bias(true), 7;
    /// Padding 4 with a 3x3 kernel: border outputs see only zeros.
    padding_beyond_kernel_reach:
        Conv2dShape::new(1, 2, 3, [4, 5], [3, 3]).padding(4).with_bias(true), 8;
    stride_larger_than_kernel: Conv2dShape::new(2, 3, 2, [13, 11], [2, 2]).stride(3), 9;
}

/// Per-axis stride, padding and dilation (`*_hw` builders) against the CPU twins, each axis
/// different from the other.
#[test]
fn per_axis_stride_padding_dilation() {
    let _serial = common::serial();
    for (i, shape) in [
        Conv2dShape::new(2, 3, 4, [11, 9], [3, 2]).stride_hw(2, 1),
        Conv2dShape::new(1, 2, 5, [7, 10], [3, 3])
            .padding_hw(2, 0)
            .with_bias(true),
        Conv2dShape::new(2, 4, 3, [12, 9], [2, 3])
            .stride_hw(1, 3)
            .padding_hw(1, 2)
            .dilation_hw(3, 1)
            .with_bias(true),
    ]
    .iter()
    .enumerate()
    {
        check_shape(shape, 40 + i as u64);
    }
}

/// The `*_hw` builders set each axis; the square ones both; `describe` shows both axes when
/// they differ and one value when they agree.
#[test]
fn per_axis_builders_and_describe() {
    let s = Conv2dShape::new(4, 16, 8, [32, 24], [3, 1])
        .stride_hw(2, 1)
        .padding_hw(1, 0)
        .dilation_hw(1, 2)
        .with_bias(true);
    assert_eq!((s.stride, s.padding, s.dilation), ([2, 1], [1, 0], [1, 2]));
    assert_eq!(s.describe(), "n4 16->8 32x24 k3x1 s2x1 p1x0 d1x2 +b");
    let square = Conv2dShape::new(4, 16, 16, [64, 64], [3, 3])
        .stride(2)
        .padding(1)
        .dilation(2);
    assert_eq!(
        (square.stride, square.padding, square.dilation),
        ([2, 2], [1, 1], [2, 2])
    );
    assert_eq!(
        square,
        Conv2dShape::new(4, 16, 16, [64, 64], [3, 3])
            .stride_hw(2, 2)
            .padding_hw(1, 1)
            .dilation_hw(2, 2)
    );
    assert_eq!(square.describe(), "n4 16->16 64x64 k3 s2 p1 d2");
    assert_eq!(
        Conv2dShape::new(1, 3, 8, [32, 32], [3, 3])
            .padding(1)
            .describe(),
        "n1 3->8 32x32 k3 s1 p1"
    );
}

#[test]
fn long_reduction_past_loop_limiter() {
    let _serial = common::serial();
    // K of the forward GEMM = 4 * 130 * 130 = 67,600 > 65,535 (split K), and the weight
    // gradient of the second case sums over 90,000 positions: a kernel that ran one long loop
    // per invocation would be truncated by lavapipe's loop limiter and fail here.
    check_shape(
        &Conv2dShape::new(2, 4, 3, [130, 130], [130, 130]).with_bias(true),
        10,
    );
    check_shape(
        &Conv2dShape::new(1, 2, 2, [300, 300], [1, 1]).with_bias(true),
        11,
    );
    // The same with 6 output channels: a forward K of 5 * 60 * 60 = 18,000 and a weight
    // gradient over 40,000 positions (narrow tiles; `tile_kinds_on_every_gemm` has a register
    // tile past 16,384).
    check_shape(
        &Conv2dShape::new(1, 5, 6, [60, 60], [60, 60]).with_bias(true),
        14,
    );
    check_shape(
        &Conv2dShape::new(1, 2, 6, [200, 200], [1, 1]).with_bias(true),
        15,
    );
}

#[test]
fn few_rows_or_columns_run_on_skinny_tiles() {
    let _serial = common::serial();
    // GEMMs of at most 4 rows run on skinny tiles: here the input gradient of 3 input
    // channels (one GEMM per stride phase), then the forward and weight gradient of 2 output
    // channels, next to register-tiled GEMMs of 16 rows.
    check_shape(
        &Conv2dShape::new(2, 3, 16, [20, 19], [7, 7])
            .stride(2)
            .padding(3)
            .with_bias(true),
        16,
    );
    check_shape(
        &Conv2dShape::new(2, 16, 2, [9, 11], [3, 3])
            .padding(1)
            .with_bias(true),
        17,
    );
    // Fully connected: the input gradient's rows are the batch (6: register tiles).
    check_shape(
        &Conv2dShape::new(6, 5, 7, [4, 3], [4, 3]).with_bias(true),
        18,
    );
    // Weight gradients of few columns and long K run on narrow tiles (16 threads per column,
    // then a tree): depthwise (1 x 9 per group, K = 512), and 32 x 25 over K = 400.
    check_shape(
        &Conv2dShape::new(2, 4, 4, [16, 16], [3, 3])
            .padding(1)
            .groups(4)
            .with_bias(true),
        20,
    );
    check_shape(
        &Conv2dShape::new(1, 1, 32, [20, 20], [5, 5])
            .padding(2)
            .with_bias(true),
        21,
    );
}

/// The tile kinds a shape's GEMMs must run on, and whether each must split K.
struct TileCase {
    shape: Conv2dShape,
    forward: &'static str,
    input_gradient: &'static str,
    weight_gradient: &'static str,
    /// (forward, input gradient, weight gradient) must split K.
    split: [bool; 3],
}

#[test]
fn tile_kinds_on_every_gemm() {
    let _serial = common::serial();
    let shape = |b, ci, co, size: [u32; 2], k: [u32; 2]| Conv2dShape::new(b, ci, co, size, k);
    let case =
        |shape, [forward, input_gradient, weight_gradient]: [&'static str; 3], split| TileCase {
            shape,
            forward,
            input_gradient,
            weight_gradient,
            split,
        };
    let none = [false; 3];
    let cases = [
        // Stride phases on each kind, with dilation, groups, phases no tap reaches.
        case(
            shape(2, 16, 6, [11, 10], [3, 3])
                .stride(3)
                .padding(2)
                .dilation(2)
                .groups(2),
            ["skinny", "square", "skinny"],
            none,
        ),
        case(
            shape(2, 16, 4, [32, 32], [3, 3]).stride(2).padding(1),
            ["skinny", "wide", "narrow"],
            [false, false, true],
        ),
        case(
            shape(1, 256, 4, [4, 4], [3, 3]).stride(2).padding(1),
            ["narrow", "tall", "skinny"],
            [true, false, false],
        ),
        case(
            shape(1, 4, 128, [8, 8], [3, 3]).stride(2).padding(1),
            ["tall", "narrow", "square"],
            none,
        ),
        case(
            shape(2, 8, 2, [13, 11], [2, 2]).stride(3).with_bias(true),
            ["skinny", "square", "skinny"],
            none,
        ),
        // Stride phases of 1,024, 512 and 256 K steps with groups and a batch of 2: they share
        // one split count (the shortest phase is raised to it) and one reduction.
        case(
            shape(2, 4, 512, [12, 12], [3, 3])
                .stride(2)
                .padding(1)
                .groups(2),
            ["tall", "narrow", "tall"],
            [false, true, false],
        ),
        // Stride phases share one split count and one reduction; the phases no tap reaches
        // (residue 2 of stride 3 with a 2-tap kernel) write zero partials.
        case(
            shape(1, 2, 300, [7, 7], [2, 2]).stride(3),
            ["tall", "narrow", "tall"],
            [false, true, false],
        ),
        // Stride phases of up to 4 taps x 4,100 output channels = 16,400 K steps, past 16,384
        // per launch, on skinny and wide tiles.
        case(
            shape(1, 2, 4100, [32, 32], [3, 3]).stride(2).padding(1),
            ["wide", "skinny", "tall"],
            [false, true, false],
        ),
        case(
            shape(1, 5, 4100, [32, 32], [3, 3]).stride(2).padding(1),
            ["wide", "wide", "tall"],
            [false, true, false],
        ),
        // Stride 1 input gradients on square, tall and narrow tiles.
        case(
            shape(2, 64, 8, [6, 6], [3, 3]).padding(1),
            ["narrow", "square", "wide"],
            [true, false, false],
        ),
        case(
            shape(1, 256, 4, [3, 3], [3, 3]).padding(1),
            ["narrow", "tall", "skinny"],
            [true, false, false],
        ),
        case(
            shape(1, 2, 64, [3, 3], [3, 3]).padding(1),
            ["square", "narrow", "square"],
            [false, true, false],
        ),
        // Fully connected input gradients on narrow, tall and wide tiles.
        case(
            shape(2, 1, 300, [2, 2], [2, 2]),
            ["tall", "narrow", "tall"],
            [false, true, false],
        ),
        case(
            shape(200, 1, 8, [2, 2], [2, 2]),
            ["wide", "tall", "square"],
            none,
        ),
        case(
            shape(16, 16, 512, [4, 4], [4, 4]).with_bias(true),
            ["tall", "wide", "square"],
            [false, true, false],
        ),
        // Register tiles with split K: forward, input and weight gradient.
        case(
            shape(1, 32, 16, [16, 16], [3, 3]).padding(1),
            ["wide", "wide", "wide"],
            [true, false, false],
        ),
        case(
            shape(2, 8, 64, [16, 16], [3, 3]).padding(1).with_bias(true),
            ["square", "wide", "square"],
            [false, true, true],
        ),
        case(
            shape(2, 32, 128, [4, 4], [4, 4]),
            ["tall", "skinny", "square"],
            [true, false, false],
        ),
        case(
            shape(1, 4, 128, [24, 24], [1, 1]),
            ["pointwise_x4", "skinny", "pointwise_tall"],
            [false, false, true],
        ),
        // A register tile past 16,384 K steps: the weight gradient sums 129 * 129 positions.
        case(
            shape(1, 16, 16, [132, 132], [4, 4]),
            ["wide", "wide", "wide"],
            [false, false, true],
        ),
    ];
    for (i, c) in cases.iter().enumerate() {
        let plan = common::conv().plan(&c.shape).expect("plan");
        let tiles = plan.tiles();
        let what = c.shape.describe();
        assert_eq!(tiles.forward, c.forward, "forward of {what}");
        assert!(
            tiles.input_gradient.contains(&c.input_gradient),
            "input gradient of {what}: {:?}",
            tiles.input_gradient
        );
        assert_eq!(
            tiles.weight_gradient, c.weight_gradient,
            "weight gradient of {what}"
        );
        let splits = plan.splits();
        for (j, must) in c.split.iter().enumerate() {
            if *must {
                assert!(splits[j] > 1, "gemm {j} of {what} must split K: {splits:?}");
            }
        }
        check_shape(&c.shape, 100 + i as u64);
    }
}

#[test]
fn strided_input_gradient_past_one_launch_of_k() {
    let _serial = common::serial();
    // Stride 2 with a 3x3 kernel: up to 4 taps reach a stride phase, so 4,100 output channels
    // give one phase 16,400 reduction steps, past the crate's 16,384 per launch: that phase
    // must split K whatever the device's occupancy target, and the phases share one split
    // count and one reduction.
    let shape = Conv2dShape::new(1, 2, 4100, [5, 6], [3, 3])
        .stride(2)
        .padding(1)
        .with_bias(true);
    let plan = common::conv().plan(&shape).expect("plan");
    assert!(plan.splits()[1] > 1, "splits {:?}", plan.splits());
    check_shape(&shape, 19);
}

#[test]
fn grid_folded_past_65535_workgroups() {
    let _serial = common::serial();
    // Depthwise over 70,000 channels: one workgroup per group, so the grid must fold.
    let shape = Conv2dShape::new(1, 70_000, 70_000, [1, 1], [1, 1])
        .groups(70_000)
        .with_bias(true);
    let plan = common::conv().plan(&shape).expect("plan");
    assert_eq!(plan.splits(), [1, 1, 1]);
    check_shape(&shape, 12);
}

#[test]
fn split_k_is_used_for_weight_gradient() {
    let _serial = common::serial();
    let shape = Conv2dShape::new(2, 4, 4, [32, 32], [3, 3]).padding(1);
    let plan = common::conv().plan(&shape).expect("plan");
    assert!(plan.splits()[2] > 1, "splits {:?}", plan.splits());
    check_shape(&shape, 13);
}

#[test]
fn a_reused_plan_reads_no_stale_partials() {
    let _serial = common::serial();
    // One plan, one scratch for every op's split-K partials: the weight gradient fills it
    // first, then the input gradient (stride phases that share a raised split count) must
    // overwrite every partial it adds. A partial it skipped would add the weight gradient's.
    let shape = Conv2dShape::new(4, 4, 512, [24, 24], [3, 3])
        .stride(2)
        .padding(1)
        .groups(2);
    let gpu = common::gpu();
    let plan = common::conv().plan(&shape).expect("plan");
    let splits = plan.splits();
    assert!(splits[1] > 1 && splits[2] > 1, "splits {splits:?}");
    let mut rng = Rng::new(23);
    let (x, w, dy) = (
        rng.vec(shape.input_len()),
        rng.vec(shape.weight_len()),
        rng.vec(shape.output_len()),
    );
    let up = |v: &[f32]| tied::buffer::upload(gpu, "test", v);
    let (xb, wb, dyb) = (up(&x), up(&w), up(&dy));
    let gw = tied::buffer::zeros(gpu, "grad weight", shape.weight_len());
    let gx = tied::buffer::zeros(gpu, "grad input", shape.input_len());
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    let weight_grad = BackwardWeightBuffers {
        grad_output: &dyb,
        input: &xb,
        grad_weight: &gw,
        grad_bias: None,
    };
    plan.record_backward_weight(&mut encoder, &weight_grad)
        .expect("weight grad");
    let input_grad = BackwardDataBuffers {
        grad_output: &dyb,
        weight: &wb,
        grad_input: &gx,
    };
    plan.record_backward_data(&mut encoder, &input_grad)
        .expect("input grad");
    gpu.queue().submit([encoder.finish()]);
    let got = pollster::block_on(tied::buffer::read_back(gpu, &gx, shape.input_len())).unwrap();
    let want = cpu::backward_data(&shape, &dy, &w);
    let scale = cpu::backward_data(&shape, &abs(&dy), &abs(&w));
    let e = max_rel_err(&got, &want, &scale);
    assert!(
        e <= TOL,
        "input grad after the weight grad: max rel err {e}"
    );
}

#[test]
fn deterministic_bits() {
    let _serial = common::serial();
    // Split K in the forward and weight gradient; then a strided input gradient whose stride
    // phases split K (groups and a batch of 2 too).
    let shapes = [
        Conv2dShape::new(2, 6, 8, [20, 20], [3, 3])
            .padding(1)
            .groups(2)
            .with_bias(true),
        Conv2dShape::new(2, 4, 512, [12, 12], [3, 3])
            .stride(2)
            .padding(1)
            .groups(2)
            .with_bias(true),
    ];
    for (i, shape) in shapes.iter().enumerate() {
        let plan = common::conv().plan(shape).expect("plan");
        let split = if i == 0 { 2 } else { 1 };
        assert!(
            plan.splits()[split] > 1,
            "the case must exercise split K: {:?}",
            plan.splits()
        );
        let Tensors { x, w, b, dy } = random_tensors(shape, 99);
        let conv = common::conv();
        let y1 = bits(&conv.forward_blocking(shape, &x, &w, Some(&b)).unwrap());
        let y2 = bits(&conv.forward_blocking(shape, &x, &w, Some(&b)).unwrap());
        assert_eq!(y1, y2);
        let g1 = conv.backward_blocking(shape, &x, &w, &dy).unwrap();
        let g2 = conv.backward_blocking(shape, &x, &w, &dy).unwrap();
        assert_eq!(bits(&g1.input), bits(&g2.input));
        assert_eq!(bits(&g1.weight), bits(&g2.weight));
        assert_eq!(bits(&g1.bias), bits(&g2.bias));
    }
}

#[test]
fn gradients_match_finite_differences() {
    let _serial = common::serial();
    // L = sum(y * r). Conv is linear in x, w and b, so central differences of the f64 twin
    // are exact up to rounding: they check that the GPU gradients are the forward's gradients.
    let shape = Conv2dShape::new(2, 2, 3, [5, 4], [3, 2])
        .stride(2)
        .padding(1)
        .with_bias(true);
    let Tensors { x, w, b, dy: r } = random_tensors(&shape, 21);
    let g = common::conv()
        .backward_blocking(&shape, &x, &w, &r)
        .unwrap();
    let f64v = |v: &[f32]| v.iter().map(|&a| f64::from(a)).collect::<Vec<f64>>();
    let (x64, w64, b64, r64) = (f64v(&x), f64v(&w), f64v(&b), f64v(&r));
    let loss = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
        cpu::forward_f64(&shape, x, w, Some(b))
            .iter()
            .zip(&r64)
            .map(|(y, r)| y * r)
            .sum()
    };
    let h = 1e-3;
    let fd = |which: usize, i: usize| {
        let (mut xp, mut wp, mut bp) = (x64.clone(), w64.clone(), b64.clone());
        let (mut xm, mut wm, mut bm) = (x64.clone(), w64.clone(), b64.clone());
        match which {
            0 => (xp[i] += h, xm[i] -= h),
            1 => (wp[i] += h, wm[i] -= h),
            _ => (bp[i] += h, bm[i] -= h),
        };
        (loss(&xp, &wp, &bp) - loss(&xm, &wm, &bm)) / (2.0 * h)
    };
    for (which, grad) in [&g.input, &g.weight, &g.bias].into_iter().enumerate() {
        for (i, &gv) in grad.iter().enumerate() {
            let want = fd(which, i);
            assert!(
                (f64::from(gv) - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "gradient {which} index {i}: gpu {gv}, finite difference {want}"
            );
        }
    }
}

mod random {
    use super::*;
    use proptest::prelude::*;

    prop_compose! {
        fn conv_shape()(
            batch in 1u32..4,
            groups in 1u32..4,
            // Up to 8 channels per group: GEMMs of at most 4 rows run on skinny tiles, of few
            // columns and long K on narrow ones, the rest on register tiles; all are drawn.
            cin_g in 1u32..9,
            cout_g in 1u32..9,
            h in 1u32..13,
            w in 1u32..13,
            kh in 1u32..6,
            kw in 1u32..6,
            stride in 1u32..4,
            stride_w in 1u32..4,
            pad in 0u32..5,
            dil in 1u32..3,
            bias in any::<bool>(),
        ) -> Conv2dShape {
            let mut s = Conv2dShape::new(batch, cin_g * groups, cout_g * groups, [h, w], [kh, kw])
                .padding(pad)
                .dilation(dil)
                .groups(groups)
                .with_bias(bias);
            s.stride = [stride, stride_w];
            s
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 40, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn random_shapes_match_cpu(shape in conv_shape().prop_filter("valid", |s| s.validate().is_ok()), seed in any::<u64>()) {
            let _serial = common::serial();
            check_shape(&shape, seed);
        }
    }
}

/// `gpu` equals the CPU twin `reference` where that is NaN or infinite, and is within `tol`
/// (relative to 1 + |reference|) elsewhere.
fn assert_same_non_finite(what: &str, gpu: &[f32], reference: &[f32], tol: f32) {
    assert_eq!(gpu.len(), reference.len(), "{what}: length");
    for (i, (&g, &r)) in gpu.iter().zip(reference).enumerate() {
        let ok = if r.is_nan() {
            g.is_nan()
        } else if r.is_infinite() {
            g == r
        } else {
            (g - r).abs() <= tol * (1.0 + r.abs())
        };
        assert!(ok, "{what}: element {i} is {g}, the CPU twin gives {r}");
    }
}

#[test]
fn padding_taps_contribute_nothing_against_inf_and_nan() {
    let _serial = common::serial();
    // A tap that meets padding (or, in the input gradient, an output position past the edges)
    // is no term of the sum: an Inf or NaN weight or output gradient there must not turn the
    // border into NaN. One shape per tile kind of each GEMM.
    let shapes = [
        Conv2dShape::new(2, 3, 5, [7, 9], [3, 3]).padding(1),
        Conv2dShape::new(2, 16, 4, [12, 12], [3, 3])
            .stride(2)
            .padding(1),
        Conv2dShape::new(1, 1, 8, [12, 10], [5, 5]).padding(2),
        Conv2dShape::new(2, 8, 8, [9, 9], [3, 3])
            .padding(2)
            .dilation(2)
            .groups(8),
        Conv2dShape::new(1, 4, 128, [8, 8], [3, 3])
            .stride(2)
            .padding(1),
        Conv2dShape::new(1, 256, 4, [4, 4], [3, 3])
            .stride(2)
            .padding(1),
        Conv2dShape::new(2, 3, 6, [4, 4], [4, 4]),
        Conv2dShape::new(2, 16, 16, [16, 16], [3, 3]).padding(1),
        Conv2dShape::new(1, 3, 64, [20, 20], [3, 3]).padding(1),
    ];
    let conv = common::conv();
    for (case, shape) in shapes.iter().enumerate() {
        let what = |op: &str, poison: f32| format!("{op} {} ({poison})", shape.describe());
        for poison in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
            let mut rng = Rng::new(700 + case as u64);
            let x = rng.vec(shape.input_len());
            let dy = rng.vec(shape.output_len());
            // Poison the first tap of one weight row: it meets the padding at the top-left
            // border of every image.
            let mut w = rng.vec(shape.weight_len());
            let khw = (shape.kernel[0] * shape.kernel[1]) as usize;
            w[khw * (shape.weight_len() / khw / 2)] = poison;
            let y = conv.forward_blocking(shape, &x, &w, None).expect("forward");
            assert_same_non_finite(
                &what("forward", poison),
                &y,
                &cpu::forward(shape, &x, &w, None),
                1e-4,
            );
            let g = conv
                .backward_blocking(shape, &x, &w, &dy)
                .expect("backward");
            assert_same_non_finite(
                &what("input gradient", poison),
                &g.input,
                &cpu::backward_data(shape, &dy, &w),
                1e-4,
            );
            // Poison one output gradient at the top-left corner of a plane: its taps meet the
            // padding there.
            let w = rng.vec(shape.weight_len());
            let mut dy = dy;
            let plane = (shape.out_size()[0] * shape.out_size()[1]) as usize;
            dy[plane * (shape.output_len() / plane / 2)] = poison;
            let g = conv
                .backward_blocking(shape, &x, &w, &dy)
                .expect("backward");
            assert_same_non_finite(
                &what("weight gradient", poison),
                &g.weight,
                &cpu::backward_weight(shape, &dy, &x),
                1e-4,
            );
        }
    }
}

#[test]
fn stride_phases_no_tap_reaches_cost_no_launch() {
    let _serial = common::serial();
    // Strides far past the kernel: only the phases some tap reaches get a GEMM (at most
    // kernel_h x kernel_w), the rest of the input gradient is zeroed in one pass. Planning
    // one launch per phase took seconds and hundreds of MiB at stride 256.
    let mut per_axis = Conv2dShape::new(2, 3, 4, [9, 11], [1, 3]).padding(1);
    per_axis.stride = [3, 1];
    let cases = [
        (
            Conv2dShape::new(1, 2, 3, [300, 290], [3, 3])
                .stride(256)
                .padding(1),
            9,
        ),
        (Conv2dShape::new(1, 1, 2, [600, 520], [1, 1]).stride(512), 1),
        (Conv2dShape::new(2, 2, 3, [9, 9], [2, 2]).stride(3), 4),
        (per_axis, 3),
    ];
    for (shape, launches) in cases {
        let plan = common::conv().plan(&shape).expect("plan");
        let tiles = plan.tiles();
        assert!(
            tiles.input_gradient.len() <= launches,
            "{}: {} input-gradient launches",
            shape.describe(),
            tiles.input_gradient.len()
        );
        check_shape(&shape, 31);
    }
}

/// Pipelines are built on first use: `Conv2d::new` and `plan` build none, `prepare` builds
/// exactly what recording the ops would build, and recording after `prepare` builds nothing
/// more. Results are the same bits as on the shared test device.
#[test]
fn pipelines_built_on_first_use_or_by_prepare() {
    use tied::conv::{Conv2d, Passes};
    let _serial = common::serial();
    let shape = Conv2dShape::new(2, 3, 5, [11, 9], [3, 3])
        .stride(2)
        .padding(1)
        .with_bias(true);
    let Tensors { x, w, b, dy } = random_tensors(&shape, 41);
    let shared = common::conv();
    let y_shared = shared.forward_blocking(&shape, &x, &w, Some(&b)).unwrap();
    let g_shared = shared.backward_blocking(&shape, &x, &w, &dy).unwrap();

    // Prepared up front: recording builds nothing more.
    let gpu = common::fresh_gpu();
    let conv = Conv2d::new(&gpu).unwrap();
    let plan = conv.plan(&shape).unwrap();
    assert_eq!(gpu.pipelines_built(), 0, "new and plan build no pipeline");
    let forward = plan.prepare(Passes::Forward).unwrap();
    assert!(forward >= 1);
    assert_eq!(gpu.pipelines_built(), forward);
    let y = conv.forward_blocking(&shape, &x, &w, Some(&b)).unwrap();
    assert_eq!(gpu.pipelines_built(), forward, "forward after prepare");
    let training = plan.prepare(Passes::Training).unwrap();
    assert!(training > forward, "{training} > {forward}");
    assert_eq!(gpu.pipelines_built(), training);
    let g = conv.backward_blocking(&shape, &x, &w, &dy).unwrap();
    assert_eq!(gpu.pipelines_built(), training, "backward after prepare");
    assert_eq!(bits(&y), bits(&y_shared));
    assert_eq!(bits(&g.input), bits(&g_shared.input));
    assert_eq!(bits(&g.weight), bits(&g_shared.weight));
    assert_eq!(bits(&g.bias), bits(&g_shared.bias));

    // Not prepared: recording builds exactly what prepare names, and prepare then builds
    // nothing more.
    let gpu = common::fresh_gpu();
    let conv = Conv2d::new(&gpu).unwrap();
    conv.forward_blocking(&shape, &x, &w, Some(&b)).unwrap();
    assert_eq!(
        gpu.pipelines_built(),
        forward,
        "forward builds its own kernels"
    );
    conv.backward_blocking(&shape, &x, &w, &dy).unwrap();
    assert_eq!(gpu.pipelines_built(), training, "backward builds the rest");
    let plan = conv.plan(&shape).unwrap();
    assert_eq!(plan.prepare(Passes::Training).unwrap(), training);
    assert_eq!(gpu.pipelines_built(), training);
}

/// The bits of `v`, for bitwise comparisons.
fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Forward and both gradients of `plan` on the GPU (record calls, one submission each), as
/// host vectors: (y, grad_input, grad_weight, grad_bias).
fn run_plan(
    plan: &tied::conv::Conv2dPlan,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    dy: &[f32],
) -> [Vec<f32>; 4] {
    use tied::buffer::{read_back, upload, zeros};
    use tied::conv::ForwardBuffers;
    let gpu = common::gpu();
    let s = *plan.shape();
    let (xb, wb, bb, dyb) = (
        upload(gpu, "x", x),
        upload(gpu, "w", w),
        upload(gpu, "b", b),
        upload(gpu, "dy", dy),
    );
    let (yb, gib, gwb, gbb) = (
        zeros(gpu, "y", s.output_len()),
        zeros(gpu, "gi", s.input_len()),
        zeros(gpu, "gw", s.weight_len()),
        zeros(gpu, "gb", s.bias_len()),
    );
    let mut enc = gpu.device().create_command_encoder(&Default::default());
    let fb = ForwardBuffers {
        input: &xb,
        weight: &wb,
        bias: s.bias.then_some(&bb),
        output: &yb,
    };
    plan.record_forward(&mut enc, &fb).expect("forward");
    let db = BackwardDataBuffers {
        grad_output: &dyb,
        weight: &wb,
        grad_input: &gib,
    };
    plan.record_backward_data(&mut enc, &db)
        .expect("input gradient");
    let wbuf = BackwardWeightBuffers {
        grad_output: &dyb,
        input: &xb,
        grad_weight: &gwb,
        grad_bias: s.bias.then_some(&gbb),
    };
    plan.record_backward_weight(&mut enc, &wbuf)
        .expect("weight gradient");
    gpu.queue().submit([enc.finish()]);
    let read = |buf, len| pollster::block_on(read_back(gpu, buf, len)).expect("read back");
    [
        read(&yb, s.output_len()),
        read(&gib, s.input_len()),
        read(&gwb, s.weight_len()),
        read(&gbb, s.bias_len()),
    ]
}

/// `plan`'s four results against the CPU twins; returns them.
fn check_plan(plan: &tied::conv::Conv2dPlan, seed: u64, what: &str) -> [Vec<f32>; 4] {
    let s = *plan.shape();
    let Tensors { x, w, b, dy } = random_tensors(&s, seed);
    let got = run_plan(plan, &x, &w, &b, &dy);
    let bias = s.bias.then_some(&b[..]);
    let abs_b = abs(&b);
    let want = [
        (
            cpu::forward(&s, &x, &w, bias),
            cpu::forward(&s, &abs(&x), &abs(&w), s.bias.then_some(&abs_b[..])),
        ),
        (
            cpu::backward_data(&s, &dy, &w),
            cpu::backward_data(&s, &abs(&dy), &abs(&w)),
        ),
        (
            cpu::backward_weight(&s, &dy, &x),
            cpu::backward_weight(&s, &abs(&dy), &abs(&x)),
        ),
        if s.bias {
            (
                cpu::backward_bias(&s, &dy),
                cpu::backward_bias(&s, &abs(&dy)),
            )
        } else {
            (vec![], vec![])
        },
    ];
    for (i, (g, (r, scale))) in got.iter().zip(&want).enumerate() {
        let e = max_rel_err(g, r, scale);
        assert!(e <= TOL, "{what}: result {i} max rel err {e}");
    }
    got
}

/// Every tile the tuner can pick, at the heuristic's K splits, one split and three, on every
/// GEMM op of shapes with stride phases, groups, a 1x1 kernel, a fully connected kernel, one
/// input channel and long K: each against the CPU twins, running the forced tile, and the same
/// bits when run again.
#[test]
fn every_tunable_variant_matches_cpu_and_repeats_bits() {
    use tied::conv::{Conv2dChoice, GemmChoice, Tile, Tuning};
    let _serial = common::serial();
    let shapes = [
        Conv2dShape::new(2, 4, 6, [9, 8], [3, 3])
            .stride(2)
            .padding(1)
            .groups(2)
            .with_bias(true),
        Conv2dShape::new(2, 8, 8, [6, 6], [1, 1]).with_bias(true),
        Conv2dShape::new(3, 8, 5, [3, 3], [3, 3]),
        Conv2dShape::new(2, 1, 6, [20, 20], [5, 5])
            .padding(2)
            .with_bias(true),
    ];
    for (si, shape) in shapes.iter().enumerate() {
        for tile in Tile::ALL {
            for splits in [0, 1, 3] {
                let c = Some(GemmChoice::new(tile, splits));
                let choice = Conv2dChoice {
                    forward: c,
                    input_gradient: c,
                    weight_gradient: c,
                };
                let plan = common::conv()
                    .plan_with(shape, Tuning::Fixed(choice))
                    .expect("plan");
                let tiles = plan.tiles();
                assert_eq!(tiles.forward, tile.name());
                assert_eq!(tiles.weight_gradient, tile.name());
                assert!(tiles.input_gradient.iter().all(|t| *t == tile.name()));
                assert_eq!(plan.choice(), choice);
                let what = format!("{} {}", shape.describe(), choice.describe());
                let seed = 500 + si as u64;
                let first = check_plan(&plan, seed, &what);
                let again = check_plan(&plan, seed, &what);
                for (a, b) in first.iter().zip(&again) {
                    assert_eq!(bits(a), bits(b), "{what}: bits differ between runs");
                }
            }
        }
    }
}

/// `Tuning::Default` is `plan`; `plan_tuned` measures once per class, stores a choice that
/// `Tuning::Cached` then uses, and matches the CPU twins; the cache saves and loads (on a
/// fresh device of the same adapter), and a bad cache loads nothing.
#[test]
fn tuned_plans_cache_save_and_load() {
    use tied::conv::{shape_class, Conv2d, Tuning};
    let _serial = common::serial();
    let gpu = common::fresh_gpu();
    let conv = Conv2d::new(&gpu).unwrap();
    let shape = Conv2dShape::new(2, 3, 8, [10, 10], [3, 3])
        .padding(1)
        .with_bias(true);
    let default = conv.plan(&shape).unwrap();
    let same = conv.plan_with(&shape, Tuning::Default).unwrap();
    assert_eq!(default.tiles(), same.tiles());
    assert_eq!(default.splits(), same.splits());
    assert_eq!(default.choice(), Default::default());
    assert!(!conv.save_tuning().contains(&shape_class(&shape)));

    let tuned = conv.plan_tuned(&shape).unwrap();
    let saved = conv.save_tuning();
    let line = saved
        .lines()
        .find(|l| l.contains(&shape_class(&shape)))
        .expect("the class is cached");
    assert!(line.ends_with(&tuned.choice().describe()), "{line}");
    let cached = conv.plan_with(&shape, Tuning::Cached).unwrap();
    assert_eq!(cached.choice(), tuned.choice());
    // Same class (channels and positions within the same powers of two): no new entry.
    let neighbour = Conv2dShape::new(2, 4, 7, [9, 10], [3, 3])
        .padding(1)
        .with_bias(true);
    assert_eq!(shape_class(&neighbour), shape_class(&shape));
    assert_eq!(
        conv.plan_tuned(&neighbour).unwrap().choice(),
        tuned.choice()
    );
    assert_eq!(conv.save_tuning(), saved);
    let on_shared = common::conv()
        .plan_with(&shape, Tuning::Fixed(tuned.choice()))
        .unwrap();
    check_plan(&on_shared, 7, "tuned");

    let other = Conv2d::new(&common::fresh_gpu()).unwrap();
    assert_eq!(
        other.plan_with(&shape, Tuning::Cached).unwrap().choice(),
        Default::default()
    );
    assert_eq!(other.load_tuning(&saved).unwrap(), 1);
    assert_eq!(
        other.plan_with(&shape, Tuning::Cached).unwrap().choice(),
        tuned.choice()
    );

    let fresh = Conv2d::new(&common::fresh_gpu()).unwrap();
    let device_line = saved.lines().nth(1).unwrap();
    for bad in [
        saved.replacen("tied-tuning 1", "tied-tuning 0", 1),
        saved.replacen(device_line, "device some other GPU", 1),
        format!("{saved}conv2d k3x3 fwd=square/x ig=default wg=default\n"),
        format!("{saved}conv2d k3x3 fwd=round/1 ig=default wg=default\n"),
    ] {
        let err = fresh.load_tuning(&bad).unwrap_err();
        assert!(matches!(err, tied::Error::Data { .. }), "{err}");
        assert!(!fresh.save_tuning().contains("conv2d "), "nothing loaded");
    }
}

/// A dense layer's plan takes a tuning too: each tile on its three GEMMs (its conv plan)
/// against the CPU twins.
#[test]
fn linear_plans_run_every_tunable_variant() {
    use tied::conv::{Conv2dChoice, GemmChoice, Tile, Tuning};
    use tied::train::{Linear, LinearShape};
    let _serial = common::serial();
    let linear = Linear::new(common::conv());
    let shape = LinearShape::new(5, 40, 12);
    for tile in Tile::ALL {
        let c = Some(GemmChoice::new(tile, 2));
        let choice = Conv2dChoice {
            forward: c,
            input_gradient: c,
            weight_gradient: c,
        };
        let plan = linear.plan_with(shape, Tuning::Fixed(choice)).unwrap();
        let conv = plan.conv_plan();
        assert_eq!(conv.tiles().forward, tile.name());
        check_plan(conv, 77, &format!("linear {}", choice.describe()));
    }
}

// ---- The plain-GEMM tiles of pointwise shapes (1x1 kernel, stride 1, no padding, one group).

/// A plan of `shape` running `tile` with `splits` on all three ops.
fn plan_all_on(
    shape: &Conv2dShape,
    tile: tied::conv::Tile,
    splits: u32,
) -> tied::Result<tied::conv::Conv2dPlan> {
    use tied::conv::{Conv2dChoice, GemmChoice, Tuning};
    let c = Some(GemmChoice::new(tile, splits));
    let choice = Conv2dChoice {
        forward: c,
        input_gradient: c,
        weight_gradient: c,
    };
    common::conv().plan_with(shape, Tuning::Fixed(choice))
}

/// Pointwise shapes with positions per image off multiples of 4 and 16, odd channels, a batch
/// of 1 and of several, more rows than one tile, and dense layers (1 x 1 images).
fn pointwise_shapes() -> Vec<Conv2dShape> {
    vec![
        Conv2dShape::new(2, 8, 8, [6, 6], [1, 1]).with_bias(true),
        Conv2dShape::new(1, 5, 3, [3, 3], [1, 1]),
        Conv2dShape::new(3, 7, 9, [5, 7], [1, 1]).with_bias(true),
        Conv2dShape::new(2, 16, 12, [8, 8], [1, 1]),
        Conv2dShape::new(1, 3, 70, [5, 7], [1, 1]).with_bias(true),
        Conv2dShape::new(5, 40, 12, [1, 1], [1, 1]).with_bias(true),
        Conv2dShape::new(37, 3, 70, [1, 1], [1, 1]),
        // Dilation does not move a 1x1 kernel's tap.
        Conv2dShape::new(2, 6, 5, [4, 3], [1, 1]).dilation(2),
    ]
}

/// Every pointwise tile at the heuristic's K splits, one split and three, on all three ops:
/// against the CPU twins (bias included), the same bits run again, and the same bits as the
/// implicit GEMM's register tile of the same shape at the same splits (both add K in order),
/// for the weight gradient too when no K block is padded (positions per image a multiple of
/// 16, one image, or a dense layer).
#[test]
fn pointwise_tiles_match_cpu_repeat_bits_and_match_their_implicit_twins() {
    use tied::conv::Tile;
    let _serial = common::serial();
    let twins = [
        Tile::Square,
        Tile::Wide,
        Tile::Tall,
        Tile::Square,
        Tile::Square,
    ];
    for (si, shape) in pointwise_shapes().iter().enumerate() {
        let positions = shape.in_size[0] * shape.in_size[1];
        let whole_blocks = positions % 16 == 0 || shape.batch == 1 || positions == 1;
        for (tile, twin) in Tile::POINTWISE.into_iter().zip(twins) {
            for splits in [0, 1, 3] {
                let plan = plan_all_on(shape, tile, splits).expect("plan");
                let tiles = plan.tiles();
                assert_eq!(tiles.forward, tile.name());
                assert_eq!(tiles.input_gradient, vec![tile.name()]);
                assert_eq!(tiles.weight_gradient, tile.name());
                let what = format!("{} {}", shape.describe(), plan.variant());
                let seed = 900 + si as u64;
                let first = check_plan(&plan, seed, &what);
                let again = check_plan(&plan, seed, &what);
                for (a, b) in first.iter().zip(&again) {
                    assert_eq!(bits(a), bits(b), "{what}: bits differ between runs");
                }
                if splits == 0 {
                    continue;
                }
                let implicit = plan_all_on(shape, twin, splits).expect("plan");
                let theirs = check_plan(&implicit, seed, &what);
                let same = if whole_blocks { 3 } else { 2 };
                for op in 0..same {
                    assert_eq!(
                        bits(&first[op]),
                        bits(&theirs[op]),
                        "{what}: result {op} differs from {}",
                        implicit.variant()
                    );
                }
            }
        }
    }
}

/// A pointwise tile forced on a shape that is not pointwise (kernel, stride, padding or groups)
/// is an error of the plan, for each op alone, and nothing panics.
#[test]
fn pointwise_tiles_refuse_other_shapes() {
    use tied::conv::{Conv2dChoice, GemmChoice, Tile, Tuning};
    let _serial = common::serial();
    let shapes = [
        Conv2dShape::new(1, 4, 4, [6, 6], [3, 3]),
        Conv2dShape::new(1, 4, 4, [6, 6], [1, 1]).stride(2),
        Conv2dShape::new(1, 4, 4, [6, 6], [1, 1]).padding(1),
        Conv2dShape::new(1, 4, 4, [6, 6], [1, 1]).groups(2),
        Conv2dShape::new(2, 3, 5, [4, 4], [4, 4]),
    ];
    for shape in &shapes {
        for tile in Tile::POINTWISE {
            let c = Some(GemmChoice::new(tile, 0));
            for slot in 0..3 {
                let mut choice = Conv2dChoice::default();
                *[
                    &mut choice.forward,
                    &mut choice.input_gradient,
                    &mut choice.weight_gradient,
                ][slot] = c;
                let err = common::conv()
                    .plan_with(shape, Tuning::Fixed(choice))
                    .unwrap_err();
                assert!(
                    matches!(err, tied::Error::Shape(_)),
                    "{} {}: {err}",
                    shape.describe(),
                    choice.describe()
                );
            }
        }
    }
}

/// The default heuristic runs the pointwise tiles on the report's 1x1 case (E) and on dense
/// layers, and keeps the implicit GEMM where the plain one would pad much more: small images in a
/// large batch (one tile per image of 4 positions) and few rows (skinny tiles).
#[test]
fn default_plans_pick_pointwise_tiles_where_they_pad_no_more() {
    use tied::train::{Linear, LinearShape};
    let _serial = common::serial();
    let case_e = Conv2dShape::new(4, 64, 64, [28, 28], [1, 1]).with_bias(true);
    let plan = common::conv().plan(&case_e).unwrap();
    assert_eq!(
        plan.variant().matches("pointwise").count(),
        3,
        "{}",
        plan.variant()
    );
    check_plan(&plan, 31, "case E");
    let dense = Linear::new(common::conv())
        .plan(LinearShape::new(64, 100, 30))
        .unwrap();
    let conv = dense.conv_plan();
    assert!(
        conv.tiles().forward.starts_with("pointwise"),
        "{}",
        conv.variant()
    );
    assert!(
        conv.tiles().weight_gradient.starts_with("pointwise"),
        "{}",
        conv.variant()
    );
    check_plan(conv, 32, "dense");
    let small_images = Conv2dShape::new(64, 8, 8, [2, 2], [1, 1]);
    let plan = common::conv().plan(&small_images).unwrap();
    assert!(!plan.variant().contains("pointwise"), "{}", plan.variant());
    let few_rows = Conv2dShape::new(2, 16, 2, [8, 8], [1, 1]);
    let plan = common::conv().plan(&few_rows).unwrap();
    assert_eq!(plan.tiles().forward, "skinny", "{}", plan.variant());
}

/// A pointwise grid past 65,535 workgroups folds: one image per group, 70,000 images.
#[test]
fn pointwise_grid_folded_past_65535_workgroups() {
    use tied::conv::Tile;
    let _serial = common::serial();
    let shape = Conv2dShape::new(70_000, 1, 1, [2, 1], [1, 1]).with_bias(true);
    let plan = plan_all_on(&shape, Tile::PointwiseTall, 1).expect("plan");
    check_plan(&plan, 33, "70,000 images");
}

/// The tuner times the pointwise tiles on pointwise shapes: a tuned choice runs and matches
/// the CPU twins; a cached choice naming pointwise tiles loads and plans its class, and one
/// cached for a 1x1 class plans a padded 1x1 shape of the same class (the implicit default
/// there) rather than failing.
#[test]
fn tuner_runs_and_caches_pointwise_tiles() {
    use tied::conv::{shape_class, Conv2d, Tuning};
    let _serial = common::serial();
    let gpu = common::fresh_gpu();
    let conv = Conv2d::new(&gpu).unwrap();
    let shape = Conv2dShape::new(2, 16, 16, [8, 8], [1, 1]).with_bias(true);
    let tuned = conv.plan_tuned(&shape).unwrap();
    let class = shape_class(&shape);
    let text = conv.save_tuning();
    let header: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
    let line =
        format!("conv2d {class} fwd=pointwise_wide/2 ig=pointwise/auto wg=pointwise_tall/3\n");
    let fresh = Conv2d::new(&common::fresh_gpu()).unwrap();
    assert_eq!(fresh.load_tuning(&format!("{header}{line}")).unwrap(), 1);
    let cached = fresh.plan_with(&shape, Tuning::Cached).unwrap();
    assert_eq!(cached.tiles().forward, "pointwise_wide");
    assert_eq!(cached.tiles().input_gradient, vec!["pointwise"]);
    assert_eq!(cached.tiles().weight_gradient, "pointwise_tall");
    // The stored split counts (clamped when planned: these K are short).
    assert_eq!(cached.choice().forward.map(|c| c.splits), Some(2));
    // The check runs on the shared device: the same choice, planned there.
    let on_shared = |c| common::conv().plan_with(&shape, Tuning::Fixed(c)).unwrap();
    check_plan(&on_shared(tuned.choice()), 34, "tuned pointwise");
    check_plan(&on_shared(cached.choice()), 35, "cached pointwise");
    let padded = Conv2dShape::new(2, 16, 16, [6, 6], [1, 1])
        .padding(1)
        .with_bias(true);
    assert_eq!(shape_class(&padded), class);
    let plan = fresh.plan_with(&padded, Tuning::Cached).unwrap();
    assert!(!plan.variant().contains("pointwise"), "{}", plan.variant());
    let plan = common::conv()
        .plan_with(&padded, Tuning::Fixed(plan.choice()))
        .unwrap();
    check_plan(&plan, 36, "padded 1x1 from a pointwise entry");
}

// ---- The input gradient's columns path (col2im) ----

/// Shapes the columns path runs: one input channel, strided with a large kernel, dilation,
/// stride past the kernel, padding past the kernel's reach, per-axis strides and padding, a
/// bias, odd sizes.
fn col2im_shapes() -> Vec<Conv2dShape> {
    vec![
        Conv2dShape::new(2, 1, 4, [9, 9], [5, 5])
            .padding(2)
            .with_bias(true),
        Conv2dShape::new(2, 3, 8, [11, 10], [7, 7])
            .stride(2)
            .padding(3),
        Conv2dShape::new(1, 2, 3, [8, 9], [3, 3])
            .dilation(2)
            .padding(1),
        Conv2dShape::new(2, 3, 2, [13, 11], [2, 2]).stride(3),
        Conv2dShape::new(1, 2, 3, [4, 5], [3, 3]).padding(4),
        Conv2dShape::new(2, 4, 6, [9, 8], [3, 2])
            .stride_hw(2, 1)
            .padding_hw(0, 2)
            .with_bias(true),
        Conv2dShape::new(1, 5, 3, [6, 7], [1, 1]).padding(1),
    ]
}

/// Every tile on the columns path, at the heuristic's K splits and at two: each against the
/// CPU twins (all four results), running the columns path, and the same bits run again.
#[test]
fn col2im_input_gradient_matches_cpu_and_repeats_bits() {
    use tied::conv::{Conv2dChoice, GemmChoice, Tile, Tuning};
    let _serial = common::serial();
    let conv = common::conv();
    let tiles = Tile::POINTWISE
        .into_iter()
        .chain([Tile::Square, Tile::Skinny]);
    for (case, shape) in col2im_shapes().iter().enumerate() {
        for tile in tiles.clone() {
            for splits in [0, 2] {
                let choice = Conv2dChoice {
                    input_gradient: Some(GemmChoice::col2im(tile, splits)),
                    ..Default::default()
                };
                let plan = conv.plan_with(shape, Tuning::Fixed(choice)).unwrap();
                assert!(plan.runs_col2im(), "{}", plan.variant());
                assert!(plan.variant().contains("ig col2im:"), "{}", plan.variant());
                let what = format!("{} {}", shape.describe(), plan.variant());
                let seed = 900 + case as u64;
                let first = check_plan(&plan, seed, &what);
                let again = check_plan(&plan, seed, &what);
                assert_eq!(bits(&first[1]), bits(&again[1]), "{what}: bits");
            }
        }
    }
}

#[test]
fn col2im_padding_taps_contribute_nothing_against_inf_and_nan() {
    use tied::conv::{Conv2dChoice, GemmChoice, Tile, Tuning};
    let _serial = common::serial();
    let conv = common::conv();
    for (case, shape) in col2im_shapes().iter().enumerate() {
        let choice = Conv2dChoice {
            input_gradient: Some(GemmChoice::col2im(Tile::Pointwise, 0)),
            ..Default::default()
        };
        let plan = conv.plan_with(shape, Tuning::Fixed(choice)).unwrap();
        for poison in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
            let Tensors { x, mut w, b, dy } = random_tensors(shape, 950 + case as u64);
            // The first tap of one weight row meets the padding (or the output's edge) at
            // the top-left border of every image.
            let khw = (shape.kernel[0] * shape.kernel[1]) as usize;
            w[khw * (shape.weight_len() / khw / 2)] = poison;
            let got = run_plan(&plan, &x, &w, &b, &dy);
            assert_same_non_finite(
                &format!("col2im input gradient {} ({poison})", shape.describe()),
                &got[1],
                &cpu::backward_data(shape, &dy, &w),
                1e-4,
            );
        }
    }
}

#[test]
fn col2im_refuses_other_shapes_and_ops() {
    use tied::conv::{Conv2dChoice, GemmChoice, Tile, Tuning};
    let _serial = common::serial();
    let conv = common::conv();
    let columns = Some(GemmChoice::col2im(Tile::Pointwise, 0));
    let on_ig = Conv2dChoice {
        input_gradient: columns,
        ..Default::default()
    };
    for (shape, why) in [
        (
            Conv2dShape::new(1, 4, 4, [6, 6], [3, 3]).groups(2),
            "grouped",
        ),
        (Conv2dShape::new(1, 4, 4, [6, 6], [1, 1]), "pointwise"),
        (Conv2dShape::new(2, 3, 4, [5, 5], [5, 5]), "fully connected"),
    ] {
        let err = conv.plan_with(&shape, Tuning::Fixed(on_ig)).unwrap_err();
        assert!(matches!(err, tied::Error::Shape(_)), "{why}: {err}");
        assert!(err.to_string().contains(why), "{why}: {err}");
    }
    let shape = Conv2dShape::new(1, 2, 3, [6, 6], [3, 3]);
    for choice in [
        Conv2dChoice {
            forward: columns,
            ..Default::default()
        },
        Conv2dChoice {
            weight_gradient: columns,
            ..Default::default()
        },
    ] {
        let err = conv.plan_with(&shape, Tuning::Fixed(choice)).unwrap_err();
        assert!(matches!(err, tied::Error::Shape(_)), "{err}");
        assert!(err.to_string().contains("input gradient only"), "{err}");
    }
}

/// A cached columns-path choice round-trips through the cache's text, and a shape of the same
/// class that cannot run the path (a 1 x 1 kernel without padding, beside one with) plans
/// with the default input gradient instead.
#[test]
fn col2im_choices_cache_and_fall_back() {
    use tied::conv::{shape_class, Conv2d, Tuning};
    let _serial = common::serial();
    let gpu = common::fresh_gpu();
    let conv = Conv2d::new(&gpu).unwrap();
    let padded = Conv2dShape::new(1, 5, 3, [6, 6], [1, 1]).padding(1);
    let plain = Conv2dShape::new(1, 5, 3, [8, 8], [1, 1]);
    assert_eq!(shape_class(&padded), shape_class(&plain));
    let empty = conv.save_tuning();
    let text = format!(
        "{empty}conv2d {} fwd=default ig=col2im:pointwise_wide/2 wg=default\n",
        shape_class(&padded)
    );
    assert_eq!(conv.load_tuning(&text).unwrap(), 1);
    assert_eq!(conv.save_tuning(), text);
    let cached = conv.plan_with(&padded, Tuning::Cached).unwrap();
    assert!(cached.runs_col2im(), "{}", cached.variant());
    assert_eq!(
        cached.choice().describe(),
        "fwd=default ig=col2im:pointwise_wide/2 wg=default"
    );
    let fallback = conv.plan_with(&plain, Tuning::Cached).unwrap();
    assert!(!fallback.runs_col2im(), "{}", fallback.variant());
    // The check_plan buffers live on the shared device: the same choices planned there.
    for (shape, plan, seed) in [(&padded, &cached, 990), (&plain, &fallback, 991)] {
        let on_shared = common::conv()
            .plan_with(shape, Tuning::Fixed(plan.choice()))
            .unwrap();
        assert_eq!(on_shared.variant(), plan.variant());
        check_plan(&on_shared, seed, "cached col2im choice");
    }
}

/// `prepare` builds the columns path's pipelines too: recording it afterwards builds none.
#[test]
fn col2im_pipelines_built_by_prepare() {
    use tied::conv::{Conv2d, Conv2dChoice, GemmChoice, Passes, Tile, Tuning};
    let _serial = common::serial();
    let shape = col2im_shapes()[1];
    let choice = Conv2dChoice {
        input_gradient: Some(GemmChoice::col2im(Tile::PointwiseWide, 0)),
        ..Default::default()
    };
    let gpu = common::fresh_gpu();
    let conv = Conv2d::new(&gpu).unwrap();
    let plan = conv.plan_with(&shape, Tuning::Fixed(choice)).unwrap();
    assert!(plan.runs_col2im());
    let training = plan.prepare(Passes::Training).unwrap();
    assert_eq!(gpu.pipelines_built(), training);
    let Tensors { w, dy, .. } = random_tensors(&shape, 960);
    let on_fresh = |buf: &[f32], label| tied::buffer::upload(&gpu, label, buf);
    let (wb, dyb) = (on_fresh(&w, "w"), on_fresh(&dy, "dy"));
    let gib = tied::buffer::zeros(&gpu, "gi", shape.input_len());
    let mut enc = gpu.device().create_command_encoder(&Default::default());
    plan.record_backward_data(
        &mut enc,
        &BackwardDataBuffers {
            grad_output: &dyb,
            weight: &wb,
            grad_input: &gib,
        },
    )
    .unwrap();
    gpu.queue().submit([enc.finish()]);
    let gi = pollster::block_on(tied::buffer::read_back(&gpu, &gib, shape.input_len())).unwrap();
    assert_eq!(
        gpu.pipelines_built(),
        training,
        "the input gradient after prepare"
    );
    let scale = cpu::backward_data(&shape, &abs(&dy), &abs(&w));
    let e = max_rel_err(&gi, &cpu::backward_data(&shape, &dy, &w), &scale);
    assert!(e <= TOL, "col2im after prepare: max rel err {e}");
}
