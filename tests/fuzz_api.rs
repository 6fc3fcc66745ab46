//! Fuzz-style properties over every public constructor and plan builder: arbitrary integers
//! (0, 1, powers of two and their neighbours, `u32::MAX`, `usize::MAX`, products past 64
//! bits) must give `Ok` or `Err`, never a panic or an abort. Runs in the test profile, so
//! integer overflow panics.
//!
//! Plans are built on an adopted device with small limits (16 MiB bindings, 32 MiB buffers):
//! wgpu's default error handler, which panics, is in place, so any wgpu error outside the
//! crate's error scopes fails the test too, and the largest plan a case can build allocates a
//! few tens of MiB (never touched, so never committed).
//!
//! Bounded on purpose, and only there:
//! - host vectors the caller hands over (tie ids, weights) have at most a few thousand
//!   entries, and [`Weights::sequence`] is asked for at most 2^16 weights when it could
//!   succeed (it returns a vector of `n` weights: `n` itself is the caller's memory);
//!
//! Conv shapes of any stride are planned: the input gradient plans only the stride phases
//! some kernel tap reaches, at most kernel_h x kernel_w of them.

mod common;

use std::sync::OnceLock;

use proptest::prelude::*;
use tied::conv::{Conv2d, Conv2dShape, LayoutTranspose};
use tied::growl::{GroupLayout, GrowlProx, OwlProx, Weights};
use tied::sort::RadixSort;
use tied::train::{Linear, LinearShape, Sgd, Train};
use tied::tying::{Staging, TieLayout, TieMap, Ties, UNTIED};
use tied::{buffer, Gpu};

struct Kit {
    gpu: Gpu,
    conv: Conv2d,
    layouts: LayoutTranspose,
    ties: Ties,
    growl: GrowlProx,
    owl: OwlProx,
    sort: RadixSort,
    train: Train,
}

/// One small-limits adopted device for the whole binary.
fn kit() -> &'static Kit {
    static KIT: OnceLock<Kit> = OnceLock::new();
    KIT.get_or_init(|| {
        let gpu = common::gpu_with_limits(wgpu::Limits {
            max_storage_buffer_binding_size: 16 << 20,
            max_buffer_size: 32 << 20,
            ..tied::required_limits()
        });
        Kit {
            conv: Conv2d::new(&gpu).unwrap(),
            layouts: LayoutTranspose::new(&gpu).unwrap(),
            ties: Ties::new(&gpu).unwrap(),
            growl: GrowlProx::new(&gpu).unwrap(),
            owl: OwlProx::new(&gpu).unwrap(),
            sort: RadixSort::new(&gpu).unwrap(),
            train: Train::new(&gpu).unwrap(),
            gpu,
        }
    })
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Integers where arithmetic breaks: small ones, powers of two and their neighbours, the
/// extremes, and anything.
fn u32_edge() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => 0u32..=4,
        2 => 5u32..=64,
        2 => prop::sample::select(vec![
            255u32, 256, 4095, 4096, 32_767, 32_768, 65_535, 65_536, 1 << 20, 1 << 24,
            (1 << 30) - 1, 1 << 30, 1 << 31, u32::MAX / 4, u32::MAX - 1, u32::MAX,
        ]),
        1 => any::<u32>(),
    ]
}

fn usize_edge() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => 0usize..=4,
        2 => 5usize..=64,
        2 => prop::sample::select(vec![
            255usize, 256, 4096, 65_536, 1 << 20, 1 << 30, 1 << 31, u32::MAX as usize - 1,
            u32::MAX as usize, 1 << 32, 1 << 33, usize::MAX / 2, usize::MAX - 1, usize::MAX,
        ]),
        // Products of two or three of these overflow 64 and 128 bits.
        3 => (usize::MAX / 4)..=usize::MAX,
        1 => any::<usize>(),
    ]
}

fn shape() -> impl Strategy<Value = Conv2dShape> {
    (
        (u32_edge(), u32_edge(), u32_edge(), u32_edge()),
        ([u32_edge(), u32_edge()], [u32_edge(), u32_edge()]),
        ([u32_edge(), u32_edge()], [u32_edge(), u32_edge()]),
        ([u32_edge(), u32_edge()], any::<bool>()),
    )
        .prop_map(
            |((n, ci, co, groups), (in_size, kernel), (stride, padding), (dilation, bias))| {
                Conv2dShape {
                    stride,
                    padding,
                    dilation,
                    groups,
                    ..Conv2dShape::new(n, ci, co, in_size, kernel).with_bias(bias)
                }
            },
        )
}

fn side() -> impl Strategy<Value = u32> {
    prop_oneof![2 => 0u32..9, 2 => Just(32_767), 1 => Just(32_768), 1 => Just(65_536)]
}

fn ksize() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 1u32..4, 1 => Just(0), 1 => Just(32_768)]
}

fn tie_layout() -> impl Strategy<Value = TieLayout> {
    prop_oneof![
        (0u32..3000).prop_map(|len| TieLayout::Scalar { len }),
        (u32_edge(), 0u32..300, u32_edge()).prop_map(|(outer, rows, inner)| TieLayout::Blocks {
            outer,
            rows,
            inner
        }),
        (0u32..300, u32_edge()).prop_map(|(n, d)| TieLayout::rows(n, d)),
        (u32_edge(), 0u32..300).prop_map(|(o, i)| TieLayout::columns(o, i)),
    ]
}

fn group_layout() -> impl Strategy<Value = GroupLayout> {
    prop_oneof![
        (usize_edge(), usize_edge()).prop_map(|(rows, cols)| GroupLayout::Rows { rows, cols }),
        (usize_edge(), usize_edge()).prop_map(|(rows, cols)| GroupLayout::Columns { rows, cols }),
        (usize_edge(), usize_edge(), usize_edge())
            .prop_map(|(c_out, c_in, khw)| GroupLayout::ConvInChannels { c_out, c_in, khw }),
    ]
}

fn weights() -> impl Strategy<Value = Weights> {
    let f = || {
        prop_oneof![
            Just(0.0f32),
            Just(1.0),
            Just(-1.0),
            Just(f32::MAX),
            Just(f32::INFINITY),
            Just(f32::NAN),
            Just(f32::MIN_POSITIVE),
            -10.0f32..10.0,
        ]
    };
    prop_oneof![
        (f(), f()).prop_map(|(l1, l2)| Weights::Oscar { l1, l2 }),
        (f(), f()).prop_map(|(l1, l2)| Weights::Linear { l1, l2 }),
        (f(), f(), f()).prop_map(|(l1, l2, top)| Weights::Stairwise { l1, l2, top }),
        (f(), f()).prop_map(|(b1, b2)| Weights::Spike { b1, b2 }),
        prop::collection::vec(f(), 0..20).prop_map(Weights::Custom),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Shapes: every accessor, validation and (when it validates) the plan.
    #[test]
    fn conv_shapes_and_plans(s in shape()) {
        let _serial = common::serial();
        let _ = (s.input_len(), s.weight_len(), s.bias_len(), s.output_len());
        let _ = (s.out_size(), s.in_per_group(), s.out_per_group(), s.flops(), s.describe());
        if s.validate().is_ok() {
            let _ = kit().conv.plan(&s);
        }
    }

    /// Small shapes reach the plans more often than arbitrary ones; batch 0 with planes of
    /// 2^30 positions reaches the tap tables' index arithmetic.
    #[test]
    fn conv_plans_of_small_and_degenerate_shapes(
        n in prop_oneof![Just(0u32), 0u32..3], ci in 0u32..9, co in 0u32..9,
        g in prop_oneof![3 => Just(1u32), 1 => 0u32..3],
        in_size in [side(), side()],
        kernel in [ksize(), ksize()],
        stride in [1u32..5, 1u32..5], padding in [0u32..3, 0u32..3], dilation in [1u32..3, 1u32..3],
        bias in any::<bool>(),
    ) {
        let _serial = common::serial();
        let s = Conv2dShape {
            stride, padding, dilation, groups: g,
            ..Conv2dShape::new(n, ci, co, in_size, kernel).with_bias(bias)
        };
        let _ = kit().conv.plan(&s);
    }

    #[test]
    fn transpose_plans(dims in [u32_edge(), u32_edge(), u32_edge(), u32_edge()]) {
        let _serial = common::serial();
        let _ = kit().layouts.plan(dims);
    }

    /// Tie layouts, maps (ids in range, untied, out of range) and plans.
    #[test]
    fn tie_layouts_maps_and_plans(
        layout in tie_layout(),
        conv in (u32_edge(), 0u32..300, u32_edge(), u32_edge()),
        groups in u32_edge(),
        id_seed in any::<u64>(),
        staging in prop::sample::select(vec![Staging::Auto, Staging::Always, Staging::Never]),
    ) {
        let _serial = common::serial();
        let conv_layout = TieLayout::conv_in_channels(conv.0, conv.1, conv.2, conv.3);
        // Refused exactly when the taps per channel do not fit u32 (never saturated).
        prop_assert_eq!(conv_layout.is_ok(), conv.2.checked_mul(conv.3).is_some());
        for layout in [Some(layout), conv_layout.ok()].into_iter().flatten() {
            let _ = (layout.units(), layout.unit_len(), layout.params_len());
            let mut rng = tied::verify::Rng::new(id_seed);
            let ids: Vec<u32> = (0..layout.units())
                .map(|_| match rng.next_u64() % 8 {
                    0 => UNTIED,
                    1 => groups,
                    _ => (rng.next_u64() % u64::from(groups.max(1))) as u32,
                })
                .collect();
            for ids in [ids.clone(), ids.iter().map(|&g| g.min(groups.saturating_sub(1))).collect()] {
                if let Ok(map) = TieMap::new(layout, groups, ids) {
                    let _ = map.values_len();
                    let _ = kit().ties.plan_with(&map, staging);
                }
            }
        }
    }

    /// Weight sequences: any parameters, any length that either fits or must be refused.
    #[test]
    fn weight_sequences(w in weights(), small in 0usize..=1 << 16, huge in (1usize << 32)..,
                        eta in prop_oneof![Just(0.0f32), Just(1.0), Just(-1.0), Just(f32::NAN),
                                           Just(f32::INFINITY), 0.0f32..2.0]) {
        for n in [small, huge, usize::MAX] {
            if let Ok(seq) = w.sequence(n, eta) {
                prop_assert_eq!(seq.len(), n);
                prop_assert!(tied::growl::validate(&seq).is_ok());
            }
        }
    }

    /// Sort plans of any length, and read-backs of any element count.
    #[test]
    fn sort_plans_and_read_backs(len in usize_edge(), elements in usize_edge()) {
        let _serial = common::serial();
        let _ = kit().sort.plan(len);
        let k = kit();
        let small = buffer::zeros(&k.gpu, "fuzz read_back", 4);
        let _ = pollster::block_on(buffer::read_back(&k.gpu, &small, elements));
    }
}

proptest! {
    // More cases: only rare triples of huge extents overflow 128 bits.
    #![proptest_config(ProptestConfig { cases: 1024, ..config() })]

    /// GrOWL group layouts and plans, OWL plans.
    #[test]
    fn growl_layouts_and_plans(layout in group_layout(), e in any::<usize>(), n in usize_edge()) {
        let _serial = common::serial();
        let _ = (layout.groups(), layout.len(), layout.is_empty(), layout.group_of(e));
        let _ = kit().growl.plan(layout);
        let _ = kit().owl.plan(n);
        let _ = tied::growl::cpu::growl_prox(&[], layout, &[]);
    }
}

proptest! {
    #![proptest_config(config())]

    /// Training plans: dense layers, ReLU, BatchNorm, softmax cross-entropy, SGD, masks.
    #[test]
    fn train_plans(a in usize_edge(), b in usize_edge(), layout in group_layout(),
                   x in u32_edge(), y in u32_edge(), z in u32_edge(), f in any::<f32>()) {
        let _serial = common::serial();
        let t = &kit().train;
        let _ = Linear::new(&kit().conv).plan(LinearShape::new(x, y, z));
        let _ = t.relu(a);
        let _ = t.batch_norm(a, b, f, f);
        let _ = t.batch_norm(a, b, 1e-3, 0.99);
        let _ = t.softmax_xent(a, b);
        let hyper = Sgd { lr: f, momentum: 0.9, weight_decay: 0.0 };
        let _ = t.sgd(a, Some(layout), hyper);
        let _ = t.sgd(layout.len(), Some(layout), Sgd { lr: 0.1, ..hyper });
        let _ = t.mask(layout);
        let _ = tied::train::shuffle(a.min(4096), u64::from(x), u64::from(y));
        let _ = tied::train::step_decay(f, f, x, y);
    }
}
