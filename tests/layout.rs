//! NCHW <-> NHWC conversion against the host transpose.

mod common;

use tied::conv::{cpu, LayoutTranspose};
use tied::verify::Rng;

#[test]
fn nchw_to_nhwc_matches_host() {
    let _serial = common::serial();
    let t = LayoutTranspose::new(common::gpu()).unwrap();
    for (i, dims) in [[2u32, 3, 5, 7], [1, 40, 9, 9], [3, 1, 33, 2], [1, 64, 1, 1]]
        .into_iter()
        .enumerate()
    {
        let [n, c, h, w] = dims.map(|d| d as usize);
        let x = Rng::new(i as u64).vec(n * c * h * w);
        let got = t.nchw_to_nhwc_blocking(dims, &x).unwrap();
        assert_eq!(got, cpu::nchw_to_nhwc(&x, n, c, h, w), "{dims:?}");
    }
}

#[test]
fn transpose_grid_folds_past_65535_workgroups() {
    let _serial = common::serial();
    // A batch of 70,000 small images: one tile each, 70,000 workgroups in one dispatch.
    let t = LayoutTranspose::new(common::gpu()).unwrap();
    let dims = [70_000u32, 2, 1, 3];
    let x: Vec<f32> = (0..70_000 * 6).map(|i| i as f32).collect();
    let got = t.nchw_to_nhwc_blocking(dims, &x).unwrap();
    assert_eq!(got, cpu::nchw_to_nhwc(&x, 70_000, 2, 1, 3));
}

#[test]
fn wrong_length_is_an_error() {
    let _serial = common::serial();
    let t = LayoutTranspose::new(common::gpu()).unwrap();
    assert!(t.nchw_to_nhwc_blocking([1, 2, 3, 4], &[0.0; 5]).is_err());
}

#[test]
fn planned_round_trip_and_record_errors() {
    let _serial = common::serial();
    let gpu = common::gpu();
    let t = LayoutTranspose::new(gpu).unwrap();
    let dims = [2u32, 5, 3, 4];
    let plan = t.plan(dims).unwrap();
    let x = Rng::new(9).vec(2 * 5 * 3 * 4);
    let src = tied::buffer::upload(gpu, "nchw", &x);
    let mid = tied::buffer::zeros(gpu, "nhwc", x.len());
    let back = tied::buffer::zeros(gpu, "nchw again", x.len());
    let mut enc = gpu.device().create_command_encoder(&Default::default());
    plan.record_nchw_to_nhwc(&mut enc, &src, &mid).unwrap();
    plan.record_nhwc_to_nchw(&mut enc, &mid, &back).unwrap();
    let small = tied::buffer::zeros(gpu, "small", x.len() - 1);
    assert!(matches!(
        plan.record_nchw_to_nhwc(&mut enc, &src, &small),
        Err(tied::Error::BufferTooSmall { name: "dst", .. })
    ));
    assert!(plan.record_nhwc_to_nchw(&mut enc, &mid, &mid).is_err());
    gpu.queue().submit([enc.finish()]);
    let nhwc = pollster::block_on(tied::buffer::read_back(gpu, &mid, x.len())).unwrap();
    let nchw = pollster::block_on(tied::buffer::read_back(gpu, &back, x.len())).unwrap();
    assert_eq!(nhwc, cpu::nchw_to_nhwc(&x, 2, 5, 3, 4));
    assert_eq!(nchw, x);
}
