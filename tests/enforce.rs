//! Tie enforcement in the retraining phase: every mode of `tied::tying::Enforcement` keeps a
//! map's groups exactly tied through momentum SGD steps with weight decay and a group mask,
//! matches a CPU replay of the same loop, and a loop without enforcement comes apart (so the
//! check can fail). `TieMap::max_deviation` on its own, including NaN and infinities.

mod common;

use pollster::block_on;
use tied::buffer::{read_back, upload, zeros};
use tied::growl::GroupLayout;
use tied::train::{cpu as train_cpu, Sgd, Train};
use tied::tying::{cpu, Enforcement, Reduction, TieLayout, TieMap, Ties, UNTIED};
use tied::verify::Rng;

const LAYOUT: GroupLayout = GroupLayout::ConvInChannels {
    c_out: 3,
    c_in: 6,
    khw: 4,
};
const STEPS: usize = 4;

fn map() -> TieMap {
    let layout = TieLayout::conv_in_channels(3, 6, 2, 2).unwrap();
    // Channel 3 is a zero group (untied, masked); channel 5 a cluster of one.
    TieMap::new(layout, 3, vec![0, 1, 0, UNTIED, 1, 2]).unwrap()
}

/// Runs `STEPS` steps of the retraining loop under `mode` (None: no enforcement), on the
/// GPU and on the CPU; returns both final weights.
fn run(mode: Option<Enforcement>, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let gpu = common::gpu();
    let train = Train::new(gpu).unwrap();
    let ties = Ties::new(gpu).unwrap();
    let map = map();
    let plan = ties.plan(&map).unwrap();
    let n = LAYOUT.len();
    let mut rng = Rng::new(seed);
    let mask = [1u32, 1, 1, 0, 1, 1];
    let mut w = rng.vec(n);
    train_cpu::mask_apply(&mask, LAYOUT, &mut w);
    let grads: Vec<Vec<f32>> = (0..STEPS).map(|_| rng.vec(n)).collect();
    let hyper = Sgd {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 1e-2,
    };
    let sgd = train.sgd(n, Some(LAYOUT), hyper).unwrap();
    let mask_words: Vec<f32> = mask.iter().map(|&m| f32::from_bits(m)).collect();
    let (wb, vb, mb) = (
        upload(gpu, "w", &w),
        zeros(gpu, "v", n),
        upload(gpu, "mask", &mask_words),
    );
    let scratch = zeros(gpu, "tie values", plan.values_len());
    let gbs: Vec<_> = grads.iter().map(|g| upload(gpu, "g", g)).collect();
    let mut enc = gpu.device().create_command_encoder(&Default::default());
    enc.clear_buffer(&vb, 0, None);
    if let Some(m) = mode {
        m.record_start(&plan, &mut enc, &wb, &scratch).unwrap();
    }
    for gb in &gbs {
        if let Some(m) = mode {
            m.record_gradients(&plan, &mut enc, gb, &scratch).unwrap();
        }
        sgd.record_step(&mut enc, gb, Some(&mb), &wb, &vb).unwrap();
        if let Some(m) = mode {
            m.record_after_step(&plan, &mut enc, &wb, &scratch).unwrap();
        }
    }
    if let Some(m) = mode {
        m.record_after_epoch(&plan, &mut enc, &wb, &scratch)
            .unwrap();
    }
    gpu.queue().submit([enc.finish()]);
    let got = block_on(read_back(gpu, &wb, n)).unwrap();
    // The CPU replay.
    let mut v = vec![0.0; n];
    if mode == Some(Enforcement::Gradient) {
        w = cpu::project(&map, &w);
    }
    for g in &grads {
        let g = match mode {
            Some(Enforcement::Gradient) => cpu::reduce_broadcast(&map, g, Reduction::Mean),
            _ => g.clone(),
        };
        train_cpu::sgd_step(hyper, &g, Some((&mask, LAYOUT)), &mut w, &mut v);
        if mode == Some(Enforcement::Step) {
            w = cpu::project(&map, &w);
        }
    }
    if mode == Some(Enforcement::Epoch) {
        w = cpu::project(&map, &w);
    }
    (got, w)
}

#[test]
fn every_mode_keeps_groups_tied_and_matches_a_cpu_replay() {
    let _serial = common::serial();
    let map = map();
    for mode in Enforcement::ALL {
        let (gpu, cpu) = run(Some(mode), 3);
        assert_eq!(
            map.max_deviation(&gpu).unwrap(),
            0.0,
            "{mode:?} left ties apart"
        );
        for (i, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
            assert!(
                (g - c).abs() <= 1e-5 * (1.0 + c.abs()),
                "{mode:?}: weight {i} is {g}, the replay gives {c}"
            );
        }
        // The masked channel stays zero; weights moved.
        assert!((0..LAYOUT.len())
            .filter(|&e| LAYOUT.group_of(e) == 3)
            .all(|e| gpu[e] == 0.0));
        assert!(gpu.iter().any(|&x| x != 0.0));
        // Deterministic: the same bits again.
        let again = run(Some(mode), 3).0;
        assert_eq!(
            gpu.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            again.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
    // Without enforcement the same loop unties the groups.
    let (gpu, _) = run(None, 3);
    assert!(map.max_deviation(&gpu).unwrap() > 1e-3);
}

#[test]
fn modes_parse_and_default() {
    assert_eq!(Enforcement::default(), Enforcement::Epoch);
    for m in Enforcement::ALL {
        assert_eq!(Enforcement::parse(m.name()), Some(m));
    }
    assert_eq!(Enforcement::parse("gradient"), Some(Enforcement::Gradient));
    assert_eq!(Enforcement::parse("never"), None);
}

#[test]
fn max_deviation_compares_members_with_their_first() {
    // Rows of 2: groups {0, 2} and {1}; row 3 untied.
    let map = TieMap::new(TieLayout::rows(4, 2), 2, vec![0, 1, 0, UNTIED]).unwrap();
    let tied = [1.0, 2.0, 5.0, 6.0, 1.0, 2.0, 9.0, 9.0];
    assert_eq!(map.max_deviation(&tied).unwrap(), 0.0);
    let mut off = tied;
    off[5] = 2.5;
    assert_eq!(map.max_deviation(&off).unwrap(), 0.5);
    // Signed zeros and equal infinities are equal; NaN is reported; untied rows are ignored.
    let z = [
        -0.0,
        f32::INFINITY,
        7.0,
        7.0,
        0.0,
        f32::INFINITY,
        f32::NAN,
        1.0,
    ];
    assert_eq!(map.max_deviation(&z).unwrap(), 0.0);
    let mut inf = z;
    inf[5] = 1.0;
    assert_eq!(map.max_deviation(&inf).unwrap(), f32::INFINITY);
    let mut nan = z;
    nan[4] = f32::NAN;
    assert!(map.max_deviation(&nan).unwrap().is_nan());
    assert!(matches!(
        map.max_deviation(&tied[1..]),
        Err(tied::Error::LengthMismatch { .. })
    ));
}
