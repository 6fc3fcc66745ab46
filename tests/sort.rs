//! The radix sort against a stable `sort_by(total_cmp)`, at sizes around every threshold of
//! its design (tile 256, workgroup block 4096, scan block 4096, two scan levels).

mod common;

use std::sync::OnceLock;

use tied::sort::{cpu, RadixSort, SortOrder};
use tied::verify::Rng;

fn sorter() -> &'static RadixSort {
    static S: OnceLock<RadixSort> = OnceLock::new();
    S.get_or_init(|| RadixSort::new(common::gpu()).expect("sort pipelines"))
}

fn check(keys: &[f32], order: SortOrder) {
    check_with(sorter(), keys, order);
}

fn check_with(sorter: &RadixSort, keys: &[f32], order: SortOrder) {
    let values: Vec<u32> = (0..keys.len() as u32).collect();
    let (k, v) = sorter
        .sort_blocking(keys, Some(&values), order)
        .expect("sort");
    let (k_ref, v_ref) = cpu::sort(keys, &values, order);
    let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&k), bits(&k_ref), "keys, n = {} {order:?}", keys.len());
    assert_eq!(
        v,
        Some(v_ref),
        "payload (stability), n = {} {order:?}",
        keys.len()
    );
    // Keys alone (no payload buffers bound for writing) sort the same.
    let (k_only, no_values) = sorter.sort_blocking(keys, None, order).expect("sort");
    assert_eq!(no_values, None);
    assert_eq!(
        bits(&k_only),
        bits(&k_ref),
        "keys only, n = {} {order:?}",
        keys.len()
    );
}

#[test]
fn sizes_around_thresholds() {
    let _serial = common::serial();
    let mut rng = Rng::new(1);
    for n in [1usize, 2, 3, 255, 256, 257, 4095, 4096, 4097, 8193, 65_537] {
        let keys = rng.vec(n);
        check(&keys, SortOrder::Ascending);
        check(&keys, SortOrder::Descending);
    }
}

#[test]
fn large_with_two_scan_levels() {
    let _serial = common::serial();
    // 1.1e6 keys: 269 workgroups, 4,304 digit counters, so the scan needs two levels.
    let mut rng = Rng::new(2);
    let keys: Vec<f32> = (0..1_100_000).map(|_| rng.uniform() * 1e3).collect();
    check(&keys, SortOrder::Descending);
}

#[test]
fn keys_past_one_binding_sort_in_windows() {
    let _serial = common::serial();
    // Bindings of 16 MiB (the least the crate accepts) hold 1024 blocks of 4096 keys:
    // 4.2e6 keys need 2 windows, the second one short. Every pass scatters across every
    // window pair.
    let gpu = common::gpu_with_binding_limit(16 << 20);
    let sorter = RadixSort::new(&gpu).expect("sort pipelines");
    let mut rng = Rng::new(4);
    let mut keys = rng.vec(4_200_001);
    // Runs of equal keys straddle the window edge, so stability across windows counts.
    for chunk in keys.chunks_mut(300_000).step_by(2) {
        chunk.fill(0.5);
    }
    check_with(&sorter, &keys, SortOrder::Ascending);
    check_with(&sorter, &keys, SortOrder::Descending);
}

#[test]
fn ties_specials_and_nan_policy() {
    let _serial = common::serial();
    // Many equal keys (stability decides the payload order), both zeros, infinities, NaNs of
    // both signs, subnormals: the order is f32::total_cmp.
    let mut rng = Rng::new(3);
    let specials = [
        0.0f32,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        f32::MIN_POSITIVE / 4.0,
        -f32::MIN_POSITIVE / 4.0,
        f32::MAX,
        f32::MIN,
        1.0,
        -1.0,
    ];
    let keys: Vec<f32> = (0..10_000)
        .map(|_| specials[(rng.next_u64() % specials.len() as u64) as usize])
        .collect();
    check(&keys, SortOrder::Ascending);
    check(&keys, SortOrder::Descending);
    let (sorted, _) = sorter()
        .sort_blocking(&[1.0, f32::NAN, -f32::NAN, 0.0], None, SortOrder::Ascending)
        .unwrap();
    assert!(
        sorted[0].is_nan()
            && sorted[0].is_sign_negative()
            && sorted[3].is_nan()
            && sorted[3].is_sign_positive()
    );
}

#[test]
fn empty_and_errors() {
    let _serial = common::serial();
    assert_eq!(
        sorter()
            .sort_blocking(&[], None, SortOrder::Ascending)
            .unwrap(),
        (vec![], None)
    );
    assert_eq!(
        sorter()
            .sort_blocking(&[], Some(&[]), SortOrder::Ascending)
            .unwrap(),
        (vec![], Some(vec![]))
    );
    assert!(sorter()
        .sort_blocking(&[1.0, 2.0], Some(&[1]), SortOrder::Ascending)
        .is_err());
    let gpu = common::gpu();
    let plan = sorter().plan(100).unwrap();
    let small = tied::buffer::zeros(gpu, "small", 50);
    let mut enc = gpu.device().create_command_encoder(&Default::default());
    assert!(plan
        .record(&mut enc, &small, None, SortOrder::Ascending)
        .is_err());
}
