//! Tied groups against the CPU twin: every operation, both granularities, random and
//! adversarial maps, determinism, sizes past dispatch limits, and bad input.

mod common;

use std::sync::OnceLock;

use tied::tying::{cpu, Reduction, Staging, TieLayout, TieMap, TiePlan, Ties, UNTIED};
use tied::verify::{abs, max_rel_err, Rng};
use tied::Error;

const TOL: f64 = 2e-6;

fn ties() -> &'static Ties {
    static T: OnceLock<Ties> = OnceLock::new();
    T.get_or_init(|| Ties::new(common::gpu()).expect("tie pipelines"))
}

/// Checks reduce (sum and mean), broadcast, reduce_broadcast and project against the twin.
fn check_map(map: &TieMap, seed: u64) {
    check_map_on(ties(), map, seed);
}

/// [`check_map`] with the pipelines of another device.
fn check_map_on(t: &Ties, map: &TieMap, seed: u64) {
    let mut rng = Rng::new(seed);
    let x = rng.vec(map.layout().params_len());
    let scale_sum = cpu::reduce(map, &abs(&x), Reduction::Sum);
    let scale_mean = cpu::reduce(map, &abs(&x), Reduction::Mean);
    for (how, scale) in [(Reduction::Sum, &scale_sum), (Reduction::Mean, &scale_mean)] {
        let got = t.reduce_blocking(map, &x, how).expect("reduce");
        let want = cpu::reduce(map, &x, how);
        let e = max_rel_err(&got, &want, scale);
        assert!(
            e <= TOL,
            "reduce {how:?} {:?}: max rel err {e}",
            map.layout()
        );

        let got = t
            .reduce_broadcast_blocking(map, &x, how)
            .expect("reduce_broadcast");
        let want = cpu::reduce_broadcast(map, &x, how);
        let scale_b = cpu::broadcast(map, &abs(&x), scale);
        let e = max_rel_err(&got, &want, &scale_b);
        assert!(
            e <= TOL,
            "reduce_broadcast {how:?} {:?}: max rel err {e}",
            map.layout()
        );
    }
    let values = rng.vec(map.values_len());
    let got = t.broadcast_blocking(map, &x, &values).expect("broadcast");
    assert_eq!(
        got,
        cpu::broadcast(map, &x, &values),
        "broadcast {:?}",
        map.layout()
    );

    let got = t.project_blocking(map, &x).expect("project");
    let want = cpu::project(map, &x);
    let e = max_rel_err(&got, &want, &cpu::broadcast(map, &abs(&x), &scale_mean));
    assert!(e <= TOL, "project {:?}: max rel err {e}", map.layout());
}

fn random_ids(rng: &mut Rng, n: usize, groups: u32, untied_every: u64) -> Vec<u32> {
    (0..n)
        .map(|_| {
            let r = rng.next_u64();
            if untied_every > 0 && r.is_multiple_of(untied_every) {
                UNTIED
            } else {
                ((r >> 20) % u64::from(groups.max(1))) as u32
            }
        })
        .collect()
}

/// Sizes around the level structure: a thread adds a run of up to 32 values; a group of up
/// to 32 members is done in one level, one of 1024 or 32,768 that starts on a quad edge in
/// two or three (one more when it starts off the edge).
#[test]
fn scalar_random_maps_around_level_sizes() {
    let _serial = common::serial();
    let mut rng = Rng::new(1);
    for (p, k) in [
        (1usize, 1u32),
        (3, 2),
        (5, 1),
        (7, 3),
        (31, 1),
        (32, 1),
        (33, 1),
        (34, 2),
        (511, 20),
        (1023, 1),
        (1024, 1),
        (1025, 1),
        (8192, 1000),
        (8193, 2),
        (20_000, 37),
        (32_769, 1),
        (70_001, 300),
    ] {
        let ids = random_ids(&mut rng, p, k, 7);
        let map = TieMap::new(TieLayout::Scalar { len: p as u32 }, k, ids).unwrap();
        check_map(&map, p as u64);
    }
}

/// Contiguous groups (every parameter tied in group order: read in place, broadcast by runs
/// from four members a group) whose sizes sit around a step's 4 values, a run's 32 and two
/// levels' 1024, in a tensor that ends mid-run, so runs start and end at every kind of edge.
#[test]
fn scalar_contiguous_groups_around_thread_and_level_edges() {
    let _serial = common::serial();
    let p = 40_003u32;
    for size in [1u32, 2, 3, 4, 5, 31, 32, 33, 1023, 1024, 1025, 8193] {
        let k = p.div_ceil(size);
        let map = TieMap::new(
            TieLayout::Scalar { len: p },
            k,
            (0..p).map(|i| i / size).collect(),
        )
        .unwrap();
        check_map(&map, u64::from(size));
    }
}

/// One group whose members fill whole runs on every level exactly, or one member more, next
/// to a second group; then the same after a group of 33 members, so the big group's stretch
/// starts off a quad edge on every level (a ragged head above level 1 too).
#[test]
fn scalar_groups_around_level_edges() {
    let _serial = common::serial();
    for lead in [0u32, 33] {
        for members in [32u32, 33, 1024, 1025, 32_768, 32_769] {
            let p = lead + members + 5000;
            let ids = (0..p)
                .map(|i| u32::from(i >= lead) + u32::from(i >= lead + members))
                .collect();
            let map = TieMap::new(TieLayout::Scalar { len: p }, 3, ids).unwrap();
            check_map(&map, u64::from(members + lead));
        }
    }
}

/// Groups in stretches of neighbouring parameters, read and written in place: interleaved
/// stretches of 8 (several per group), stretches of 37 with untied blocks between, and
/// stretches of 3 (too short: read through the member indices).
#[test]
fn scalar_groups_in_stretches() {
    let _serial = common::serial();
    let p = 10_003u32;
    let maps = [
        (3, (0..p).map(|i| (i / 8) % 3).collect::<Vec<_>>()),
        (
            50,
            (0..p)
                .map(|i| {
                    if (i / 37) % 5 == 4 {
                        UNTIED
                    } else {
                        (i / 37) % 50
                    }
                })
                .collect(),
        ),
        (7, (0..p).map(|i| (i / 3) % 7).collect()),
    ];
    for (seed, (k, ids)) in maps.into_iter().enumerate() {
        let map = TieMap::new(TieLayout::Scalar { len: p }, k, ids).unwrap();
        check_map(&map, 80 + seed as u64);
    }
}

/// Every parameter tied in group order, read in place, on tensors of 1-7 parameters after
/// empty groups: one group (broadcast by runs from 4 parameters) and singletons (broadcast
/// through the ids).
#[test]
fn scalar_tiny_tensors_in_group_order() {
    let _serial = common::serial();
    for len in 1u32..=7 {
        let map = TieMap::new(TieLayout::Scalar { len }, 3, vec![1; len as usize]).unwrap();
        check_map(&map, u64::from(len));
        let map = TieMap::new(TieLayout::Scalar { len }, len + 1, (1..=len).collect()).unwrap();
        check_map(&map, u64::from(len) + 10);
    }
}

/// Maps of singletons whose run tables (16 bytes a run, 19.2 MB) pass one binding of a 16 MiB
/// device: the tables go in several passes; in group order and scattered.
#[test]
fn run_tables_past_one_binding() {
    let _serial = common::serial();
    let gpu = common::gpu_with_binding_limit(16 << 20);
    let ties = Ties::new(&gpu).unwrap();
    let p = 1_200_000u32;
    let singletons = TieMap::new(TieLayout::Scalar { len: p }, p, (0..p).collect()).unwrap();
    // 7919 is prime to p: a permutation.
    let scattered = TieMap::new(
        TieLayout::Scalar { len: p },
        p,
        (0..p)
            .map(|i| (u64::from(i) * 7919 % u64::from(p)) as u32)
            .collect(),
    )
    .unwrap();
    for (i, map) in [&singletons, &scattered].into_iter().enumerate() {
        assert_eq!(ties.plan(map).unwrap().windows(), 1);
        check_map_on(&ties, map, 70 + i as u64);
    }
}

#[test]
fn scalar_adversarial_maps() {
    let _serial = common::serial();
    let p = 100_000u32;
    // One giant group (four levels).
    let map = TieMap::new(TieLayout::Scalar { len: p }, 1, vec![0; p as usize]).unwrap();
    check_map(&map, 2);
    // Nothing tied together: every parameter its own group (identity permutation).
    let map = TieMap::new(TieLayout::Scalar { len: p }, p, (0..p).collect()).unwrap();
    check_map(&map, 3);
    // Power-law group sizes, shuffled, with untied parameters and empty groups mixed in.
    let mut rng = Rng::new(4);
    let k = 2000u32;
    let ids: Vec<u32> = (0..p)
        .map(|_| {
            let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            if u < 0.05 {
                UNTIED
            } else {
                // Zipf-like: group ~ k^u^3, heavily skewed towards group 0.
                ((f64::from(k).powf(u * u * u) - 1.0) as u32).min(k - 1)
            }
        })
        .collect();
    let map = TieMap::new(TieLayout::Scalar { len: p }, k, ids).unwrap();
    assert!(map.group_sizes().contains(&0), "some groups must be empty");
    check_map(&map, 5);
    // Everything untied.
    let map = TieMap::new(TieLayout::Scalar { len: 300 }, 4, vec![UNTIED; 300]).unwrap();
    check_map(&map, 6);
}

#[test]
fn block_layouts() {
    let _serial = common::serial();
    let mut rng = Rng::new(7);
    // Rows of a matrix, a giant group of 200 rows (several pieces), columns, conv channels
    // (kernels smaller and larger than the 256 elements a broadcast thread steps by, and
    // kernels of whole quads, broadcast four at a time).
    let layouts = [
        (TieLayout::rows(50, 33), 8u32),
        (TieLayout::rows(200, 300), 1),
        (TieLayout::columns(17, 40), 6),
        (TieLayout::conv_in_channels(5, 12, 3, 3).unwrap(), 4),
        (TieLayout::conv_in_channels(3, 5, 17, 17).unwrap(), 2),
        (TieLayout::conv_in_channels(300, 5, 2, 2).unwrap(), 3),
        (TieLayout::conv_in_channels(40, 30, 4, 4).unwrap(), 7),
        (TieLayout::rows(300, 1), 300),
    ];
    for (i, (layout, k)) in layouts.into_iter().enumerate() {
        let ids = random_ids(&mut rng, layout.units(), k, 9);
        let map = TieMap::new(layout, k, ids).unwrap();
        check_map(&map, 10 + i as u64);
    }
    let map = TieMap::new(TieLayout::rows(130, 7), 1, vec![0; 130]).unwrap();
    check_map(&map, 20);
}

#[test]
fn grids_fold_past_65535_workgroups() {
    let _serial = common::serial();
    // 70,000 singleton rows: 70,000 block-reduction workgroups.
    let map = TieMap::new(
        TieLayout::rows(70_000, 1),
        70_000,
        (0..70_000).rev().collect(),
    )
    .unwrap();
    check_map(&map, 30);
    // 70,000 groups of which almost all are empty: 69,990 fix-up workgroups.
    let map = TieMap::new(
        TieLayout::Scalar { len: 10 },
        70_000,
        (0..10).map(|i| i * 7000).collect(),
    )
    .unwrap();
    check_map(&map, 31);
}

/// Runs `plan`'s reduction of `x` on `gpu` through the recording path.
fn plan_reduce(gpu: &tied::Gpu, plan: &TiePlan, x: &[f32], how: Reduction) -> Vec<f32> {
    let src = tied::buffer::upload(gpu, "src", x);
    let values = tied::buffer::zeros(gpu, "values", plan.values_len());
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    plan.record_reduce(&mut encoder, &src, &values, how)
        .unwrap();
    gpu.queue().submit([encoder.finish()]);
    pollster::block_on(tied::buffer::read_back(gpu, &values, plan.values_len())).unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Staging moves values, never changes an addition: staged and unstaged plans give identical
/// bits, for tensors of 2-7 parameters, a partial chunk, whole chunks, and chunks plus a
/// partial quad, with untied parameters, a power-law map and one giant group mixed in.
/// `Always` skips maps read in place; `Auto` stages only scattered maps past
/// `STAGE_MIN_PARAMS` with a quarter of them tied, on CPU adapters.
#[test]
fn staging_changes_no_bit() {
    let _serial = common::serial();
    let mut rng = Rng::new(70);
    let chunk = 1usize << 14;
    let scalar = |ids: Vec<u32>, k: u32| {
        TieMap::new(
            TieLayout::Scalar {
                len: ids.len() as u32,
            },
            k,
            ids,
        )
        .unwrap()
    };
    let mut maps = vec![
        scalar(vec![1, 0], 2),
        scalar(vec![1, 0, 1], 2),
        scalar(vec![2, UNTIED, 1, 0, 2, 1, 0], 3),
    ];
    for (p, k, untied_every) in [
        (1000usize, 10u32, 3u64),
        (chunk, 500, 0),
        (4 * chunk, 3000, 5),
        (2 * chunk + 1, 20_000, 9),
    ] {
        maps.push(scalar(random_ids(&mut rng, p, k, untied_every), k));
    }
    // One giant group and a small one interleaved (stretches too short to read in place).
    maps.push(scalar(
        (0..3 * chunk as u32 + 7)
            .map(|i| u32::from(i % 3 == 0))
            .collect(),
        2,
    ));
    let skewed = (0..3 * chunk + 2)
        .map(|_| (rng.next_u64() % 64).trailing_zeros().min(5))
        .collect();
    maps.push(scalar(skewed, 6));
    for map in &maps {
        let never = ties().plan_with(map, Staging::Never).unwrap();
        let always = ties().plan_with(map, Staging::Always).unwrap();
        assert!(always.staged(), "{:?}", map.layout());
        let x = rng.vec(map.layout().params_len());
        for how in [Reduction::Sum, Reduction::Mean] {
            let gpu = ties().gpu();
            let unstaged = plan_reduce(gpu, &never, &x, how);
            let staged = plan_reduce(gpu, &always, &x, how);
            assert_eq!(bits(&staged), bits(&unstaged), "{:?} {how:?}", map.layout());
            let e = max_rel_err(
                &staged,
                &cpu::reduce(map, &x, how),
                &cpu::reduce(map, &abs(&x), how),
            );
            assert!(e <= TOL, "{:?} {how:?}: {e}", map.layout());
        }
    }
    let p = 4 * chunk as u32;
    let in_order = [
        scalar((0..p).map(|i| i / chunk as u32).collect(), 4),
        scalar(random_ids(&mut rng, p as usize, 1, 3), 1),
        scalar(vec![UNTIED; 9], 2),
    ];
    for map in &in_order {
        let always = ties().plan_with(map, Staging::Always).unwrap();
        assert!(!always.staged(), "members in order: {:?}", map.layout());
    }

    let auto = |map: &TieMap| ties().plan(map).unwrap().staged();
    let cpu_adapter = ties().gpu().adapter_info().device_type == wgpu::DeviceType::Cpu;
    assert!(!auto(&maps[5]), "a tensor in cache is not staged");
    let big = tied::tying::STAGE_MIN_PARAMS as usize;
    let scattered = scalar(random_ids(&mut rng, big, 1000, 0), 1000);
    assert_eq!(auto(&scattered), cpu_adapter);
    // Two groups interleaved in every block of 32 (too short to read in place): few jumps.
    let interleaved = (0..big as u32).map(|i| i / 32 * 2 + i % 2).collect();
    assert!(!auto(&scalar(interleaved, big as u32 / 16 + 2)));
    // A tenth of the parameters tied: too few members to pay for a pass over the tensor.
    assert!(!auto(&scalar(
        random_ids(&mut rng, big, 1000, 0)
            .into_iter()
            .enumerate()
            .map(|(i, g)| if i % 10 == 0 { g } else { UNTIED })
            .collect(),
        1000
    )));
}

#[test]
fn deterministic_bits() {
    let _serial = common::serial();
    let mut rng = Rng::new(40);
    let p = 50_000;
    let map = TieMap::new(
        TieLayout::Scalar { len: p as u32 },
        100,
        random_ids(&mut rng, p, 100, 0),
    )
    .unwrap();
    let x = rng.vec(p);
    let a = ties().reduce_blocking(&map, &x, Reduction::Sum).unwrap();
    let b = ties().reduce_blocking(&map, &x, Reduction::Sum).unwrap();
    assert_eq!(bits(&a), bits(&b));
}

#[test]
fn one_group_of_ten_million_is_accurate() {
    let _serial = common::serial();
    let p = 10_000_000u32;
    let map = TieMap::new(TieLayout::Scalar { len: p }, 1, vec![0; p as usize]).unwrap();
    let mut rng = Rng::new(50);
    let x: Vec<f32> = (0..p).map(|_| rng.uniform() * 0.5 + 0.5).collect();
    let got = ties().reduce_blocking(&map, &x, Reduction::Sum).unwrap();
    let want: f64 = x.iter().map(|&v| f64::from(v)).sum();
    let rel = (f64::from(got[0]) - want).abs() / want;
    assert!(
        rel <= 1e-6,
        "sum of 1e7: gpu {} f64 {want} rel {rel}",
        got[0]
    );
}

#[test]
fn bad_maps_and_buffers_are_errors() {
    let _serial = common::serial();
    let r = TieMap::new(TieLayout::Scalar { len: 3 }, 2, vec![0, 2, 1]);
    assert!(
        matches!(r, Err(Error::Shape(ref m)) if m.contains("index 1")),
        "{r:?}"
    );
    let r = TieMap::new(TieLayout::Scalar { len: 3 }, 2, vec![0, 1]);
    assert!(matches!(r, Err(Error::LengthMismatch { .. })), "{r:?}");
    let r = TieMap::new(TieLayout::rows(4, 8), 2, vec![0; 5]);
    assert!(matches!(r, Err(Error::LengthMismatch { .. })), "{r:?}");

    let map = TieMap::new(TieLayout::rows(4, 8), 2, vec![0, 1, 0, 1]).unwrap();
    let r = ties().reduce_blocking(&map, &[0.0; 31], Reduction::Sum);
    assert!(matches!(r, Err(Error::LengthMismatch { .. })), "{r:?}");
    let r = ties().broadcast_blocking(&map, &[0.0; 32], &[0.0; 15]);
    assert!(matches!(r, Err(Error::LengthMismatch { .. })), "{r:?}");

    let gpu = common::gpu();
    let plan = ties().plan(&map).unwrap();
    let src = tied::buffer::zeros(gpu, "src", 32);
    let small = tied::buffer::zeros(gpu, "small", 15);
    let mut enc = gpu.device().create_command_encoder(&Default::default());
    let r = plan.record_reduce(&mut enc, &src, &small, Reduction::Sum);
    assert!(
        matches!(r, Err(Error::BufferTooSmall { name: "values", .. })),
        "{r:?}"
    );
    let r = plan.record_reduce(&mut enc, &src, &src, Reduction::Sum);
    assert!(r.is_err());
}

#[test]
fn empty_maps_are_no_ops() {
    let _serial = common::serial();
    let map = TieMap::new(TieLayout::Scalar { len: 0 }, 0, vec![]).unwrap();
    assert!(ties()
        .reduce_blocking(&map, &[], Reduction::Sum)
        .unwrap()
        .is_empty());
    assert!(ties().project_blocking(&map, &[]).unwrap().is_empty());
    let map = TieMap::new(TieLayout::Scalar { len: 0 }, 3, vec![]).unwrap();
    assert_eq!(
        ties().reduce_blocking(&map, &[], Reduction::Mean).unwrap(),
        vec![0.0; 3]
    );
}

#[test]
fn tensors_past_one_binding_are_cut_into_windows() {
    let _serial = common::serial();
    // A device whose bindings hold at most 16 MiB: 5M-parameter tensors (20 MB), a
    // 4500 x 1000 row-tied matrix (18 MB), the columns of a 5000 x 1000 matrix (20 MB) and the
    // input channels of a 300 x 64 x 16 x 16 conv kernel (20 MB, whole quads) need two windows
    // each.
    let gpu = common::gpu_with_binding_limit(16 << 20);
    let ties = Ties::new(&gpu).unwrap();
    let mut rng = Rng::new(60);
    let p = 5_000_000usize;
    let ids = random_ids(&mut rng, p, 1000, 11);
    let scalar = TieMap::new(TieLayout::Scalar { len: p as u32 }, 1000, ids).unwrap();
    // Every parameter tied, groups of 777 in tensor order (runs, no ids), ending mid-quad; and
    // the same with 2 parameters in the third window (4,194,240 per window).
    let q = p as u32 + 3;
    let r = 2 * 4_194_240 + 2;
    let short_last = TieMap::new(
        TieLayout::Scalar { len: r },
        r.div_ceil(777),
        (0..r).map(|i| i / 777).collect(),
    )
    .unwrap();
    let contiguous = TieMap::new(
        TieLayout::Scalar { len: q },
        q.div_ceil(777),
        (0..q).map(|i| i / 777).collect(),
    )
    .unwrap();
    let rows = TieMap::new(
        TieLayout::rows(4500, 1000),
        50,
        random_ids(&mut rng, 4500, 50, 13),
    )
    .unwrap();
    let columns = TieMap::new(
        TieLayout::columns(5000, 1000),
        40,
        random_ids(&mut rng, 1000, 40, 7),
    )
    .unwrap();
    let channels = TieMap::new(
        TieLayout::conv_in_channels(300, 64, 16, 16).unwrap(),
        9,
        random_ids(&mut rng, 64, 9, 5),
    )
    .unwrap();
    for map in [&scalar, &contiguous, &rows, &columns, &channels] {
        assert_eq!(ties.plan(map).unwrap().windows(), 2, "{:?}", map.layout());
    }
    assert_eq!(ties.plan(&short_last).unwrap().windows(), 3);
    // The first scalar window (scattered, past STAGE_MIN_PARAMS) stages on CPU adapters.
    let cpu_adapter = gpu.adapter_info().device_type == wgpu::DeviceType::Cpu;
    assert_eq!(ties.plan(&scalar).unwrap().staged(), cpu_adapter);
    // Staged windows share one staged copy: the same bits as unstaged ones.
    let x = rng.vec(p);
    let [never, always] =
        [Staging::Never, Staging::Always].map(|s| ties.plan_with(&scalar, s).unwrap());
    assert!(always.staged() && !never.staged());
    let [staged, unstaged] =
        [&always, &never].map(|plan| plan_reduce(&gpu, plan, &x, Reduction::Mean));
    assert_eq!(bits(&staged), bits(&unstaged));
    for map in [
        &scalar,
        &contiguous,
        &short_last,
        &rows,
        &columns,
        &channels,
    ] {
        let x = rng.vec(map.layout().params_len());
        for how in [Reduction::Sum, Reduction::Mean] {
            let got = ties.reduce_blocking(map, &x, how).unwrap();
            let want = cpu::reduce(map, &x, how);
            let e = max_rel_err(&got, &want, &cpu::reduce(map, &abs(&x), how));
            assert!(e <= TOL, "{:?} {how:?}: {e}", map.layout());
        }
        let got = ties.project_blocking(map, &x).unwrap();
        let want = cpu::project(map, &x);
        let scale = cpu::broadcast(map, &abs(&x), &cpu::reduce(map, &abs(&x), Reduction::Mean));
        let e = max_rel_err(&got, &want, &scale);
        assert!(e <= TOL, "{:?} project: {e}", map.layout());
    }
}

/// Random maps with shrinking: every layout, sizes around the level and quad edges, group
/// counts from everything tied to nothing tied, untied units mixed in, sorted or shuffled ids.
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn layout() -> impl Strategy<Value = TieLayout> {
        prop_oneof![
            (0u32..1500).prop_map(|len| TieLayout::Scalar { len }),
            (1u32..40, 1u32..40).prop_map(|(n, d)| TieLayout::rows(n, d)),
            (1u32..30, 1u32..30).prop_map(|(o, i)| TieLayout::columns(o, i)),
            (1u32..6, 1u32..9, 1u32..4, 1u32..4)
                .prop_map(|(co, ci, kh, kw)| TieLayout::conv_in_channels(co, ci, kh, kw).unwrap()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn random_maps_match_the_twin(
            layout in layout(),
            groups in 1u32..64,
            untied_every in 0u64..5,
            order in 0u32..3,
            seed in any::<u64>(),
        ) {
            let _serial = common::serial();
            let mut rng = tied::verify::Rng::new(seed);
            let mut ids = random_ids(&mut rng, layout.units(), groups, untied_every);
            match order {
                // Sorted: contiguous groups (read in place when scalar).
                1 => ids.sort_unstable(),
                // Blocks of 1-40 equal ids: groups in stretches, untied stretches between.
                2 => {
                    let mut at = 0;
                    while at < ids.len() {
                        let end = (at + 1 + (rng.next_u64() % 40) as usize).min(ids.len());
                        let id = ids[at];
                        ids[at..end].fill(id);
                        at = end;
                    }
                }
                _ => {}
            }
            let map = TieMap::new(layout, groups, ids).unwrap();
            check_map(&map, seed);
        }
    }
}

#[test]
fn sums_that_overflow_f32_are_infinite_as_documented() {
    let _serial = common::serial();
    // Sums run in f32 in a fixed order: a group whose sum passes f32::MAX is +Inf (its mean
    // too, the sum divided by the count), where the f64 twin's mean would be finite; a group
    // whose terms cancel before overflowing stays exact; NaN members give NaN.
    let map = TieMap::new(
        TieLayout::Scalar { len: 10 },
        3,
        vec![0, 0, 0, 0, 1, 1, 2, 2, UNTIED, 2],
    )
    .unwrap();
    let src = [2e38, 2e38, 2e38, 2e38, 3e38, -3e38, 1.0, f32::NAN, 7.0, 2.0];
    let sum = ties().reduce_blocking(&map, &src, Reduction::Sum).unwrap();
    assert_eq!(sum[0], f32::INFINITY);
    assert_eq!(sum[1], 0.0);
    assert!(sum[2].is_nan());
    let mean = ties().reduce_blocking(&map, &src, Reduction::Mean).unwrap();
    assert_eq!(mean[0], f32::INFINITY);
    assert_eq!(cpu::reduce(&map, &src, Reduction::Mean)[0], 2e38);
}
