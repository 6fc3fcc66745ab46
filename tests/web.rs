//! The kernel families in a real browser (WebGPU), on the async API, against the CPU twins;
//! and bad input reaching the same `Err` values the native tests assert.
//!
//! Runs only on `wasm32-unknown-unknown`, through `wasm-bindgen-test-runner` and headless
//! Chromium: `scripts/browser-test.sh`. Cases are the crate's quick cases
//! (`tied::conv::cases::quick`, `tied::tying::cases::quick`), small so SwiftShader (the
//! browser's software adapter here) finishes in minutes.
#![cfg(target_arch = "wasm32")]

use std::cell::OnceCell;

use tied::conv::{cpu as conv_cpu, Conv2d, Conv2dShape};
use tied::growl::{GroupLayout, GrowlProx, Weights};
use tied::sort::{cpu as sort_cpu, RadixSort, SortOrder};
use tied::tying::{cpu as tie_cpu, Reduction, Ties};
use tied::verify::{abs, max_rel_err, Rng};
use tied::{Error, Gpu};
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

thread_local! {
    static GPU: OnceCell<Gpu> = const { OnceCell::new() };
}

/// One device for every test of the page (tests run one after another).
async fn gpu() -> Gpu {
    if let Some(g) = GPU.with(|c| c.get().cloned()) {
        return g;
    }
    let g = Gpu::new()
        .await
        .expect("a WebGPU adapter (is --enable-unsafe-webgpu set?)");
    console_log!("adapter: {:?}", g.adapter_info());
    GPU.with(|c| c.get_or_init(|| g.clone()).clone())
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Start-up as a page sees it: a new device, the conv ops, a plan and the first forward
/// result, each timed (printed, not asserted: timings belong in reports). Pipelines are built
/// on first use, so the first forward compiles only its own.
#[wasm_bindgen_test]
async fn conv_first_forward_from_start() {
    let start = now_ms();
    let gpu = Gpu::new().await.expect("a WebGPU adapter");
    let t_gpu = now_ms();
    let conv = Conv2d::new_async(&gpu).await.expect("conv ops");
    let t_new = now_ms();
    let shape = tied::conv::cases::quick()[0];
    let mut rng = Rng::new(3);
    let x = rng.vec(shape.input_len());
    let w = rng.vec(shape.weight_len());
    let b = rng.vec(shape.bias_len());
    let bias = shape.bias.then_some(&b[..]);
    let y = conv.forward(&shape, &x, &w, bias).await.expect("forward");
    let t_forward = now_ms();
    console_log!(
        "start-up: Gpu::new {:.0} ms, Conv2d::new_async {:.0} ms, first forward {:.0} ms \
         ({} pipelines), first result {:.0} ms after start ({})",
        t_gpu - start,
        t_new - t_gpu,
        t_forward - t_new,
        gpu.pipelines_built(),
        t_forward - start,
        shape.describe()
    );
    let plan = conv.plan(&shape).expect("plan");
    let t = now_ms();
    let built = plan
        .prepare_async(tied::conv::Passes::Training)
        .await
        .expect("prepare");
    console_log!(
        "start-up: prepare(Training) {:.0} ms ({built} pipelines for the training step)",
        now_ms() - t
    );
    let scale = conv_cpu::forward(
        &shape,
        &abs(&x),
        &abs(&w),
        shape.bias.then_some(&abs(&b)[..]),
    );
    let e = max_rel_err(&y, &conv_cpu::forward(&shape, &x, &w, bias), &scale);
    assert!(e <= 2e-5, "forward {}: {e}", shape.describe());
}

#[wasm_bindgen_test]
async fn conv_forward_and_backward_match_the_twin() {
    let gpu = gpu().await;
    let start = now_ms();
    let conv = Conv2d::new_async(&gpu).await.expect("conv ops");
    console_log!("Conv2d::new_async: {:.0} ms", now_ms() - start);
    let mut rng = Rng::new(7);
    for (i, shape) in tied::conv::cases::quick().iter().enumerate() {
        let x = rng.vec(shape.input_len());
        let w = rng.vec(shape.weight_len());
        let b = rng.vec(shape.bias_len());
        let dy = rng.vec(shape.output_len());
        let bias = shape.bias.then_some(&b[..]);
        let t = now_ms();
        let y = conv.forward(shape, &x, &w, bias).await.expect("forward");
        if i == 0 {
            console_log!("first conv forward after new: {:.0} ms", now_ms() - t);
        }
        let scale = conv_cpu::forward(
            shape,
            &abs(&x),
            &abs(&w),
            shape.bias.then_some(&abs(&b)[..]),
        );
        let e = max_rel_err(&y, &conv_cpu::forward(shape, &x, &w, bias), &scale);
        assert!(e <= 2e-5, "forward {}: {e}", shape.describe());
        let g = conv.backward(shape, &x, &w, &dy).await.expect("backward");
        let e = max_rel_err(
            &g.input,
            &conv_cpu::backward_data(shape, &dy, &w),
            &conv_cpu::backward_data(shape, &abs(&dy), &abs(&w)),
        );
        assert!(e <= 2e-5, "input gradient {}: {e}", shape.describe());
        let e = max_rel_err(
            &g.weight,
            &conv_cpu::backward_weight(shape, &dy, &x),
            &conv_cpu::backward_weight(shape, &abs(&dy), &abs(&x)),
        );
        assert!(e <= 2e-5, "weight gradient {}: {e}", shape.describe());
    }
}

#[wasm_bindgen_test]
async fn conv_bad_input_is_the_native_error() {
    let gpu = gpu().await;
    let conv = Conv2d::new_async(&gpu).await.expect("conv ops");
    let shape = Conv2dShape::new(1, 2, 2, [4, 4], [3, 3]);
    let x = vec![0.0; shape.input_len() - 1];
    let w = vec![0.0; shape.weight_len()];
    let r = conv.forward(&shape, &x, &w, None).await;
    assert!(matches!(r, Err(Error::LengthMismatch { .. })), "{r:?}");
    let r = conv.plan(&Conv2dShape::new(1, 3, 2, [4, 4], [3, 3]).groups(2));
    assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
}

#[wasm_bindgen_test]
async fn tied_reduce_broadcast_and_project_match_the_twin() {
    let gpu = gpu().await;
    let start = now_ms();
    let ties = Ties::new(&gpu).expect("tying pipelines");
    console_log!("Ties::new: {:.0} ms", now_ms() - start);
    let mut rng = Rng::new(3);
    for case in tied::tying::cases::quick() {
        let map = &case.map;
        let x = rng.vec(map.layout().params_len());
        for how in [Reduction::Sum, Reduction::Mean] {
            let got = ties
                .reduce_broadcast(map, &x, how)
                .await
                .expect("reduce_broadcast");
            let want = tie_cpu::reduce_broadcast(map, &x, how);
            let scale = tie_cpu::reduce_broadcast(map, &abs(&x), how);
            let e = max_rel_err(&got, &want, &scale);
            assert!(e <= 1e-5, "{} {how:?}: {e}", case.name);
        }
        let got = ties.project(map, &x).await.expect("project");
        let want = tie_cpu::project(map, &x);
        let e = max_rel_err(&got, &want, &tie_cpu::project(map, &abs(&x)));
        assert!(e <= 1e-5, "{} project: {e}", case.name);
    }
    let short = vec![0.0; tied::tying::cases::quick()[0].map.layout().params_len() - 1];
    let r = ties
        .reduce_broadcast(&tied::tying::cases::quick()[0].map, &short, Reduction::Sum)
        .await;
    assert!(matches!(r, Err(Error::LengthMismatch { .. })), "{r:?}");
}

#[wasm_bindgen_test]
async fn sort_matches_the_twin_bitwise() {
    let gpu = gpu().await;
    let start = now_ms();
    let sorter = RadixSort::new(&gpu).expect("sort pipelines");
    console_log!("RadixSort::new: {:.0} ms", now_ms() - start);
    let mut rng = Rng::new(11);
    // One-workgroup and multi-pass paths, with NaNs, infinities and signed zeros.
    for n in [1000usize, 20_000] {
        let mut keys = rng.vec(n);
        keys[0] = f32::NAN;
        keys[1] = -0.0;
        keys[2] = f32::NEG_INFINITY;
        let values: Vec<u32> = (0..n as u32).collect();
        for order in [SortOrder::Ascending, SortOrder::Descending] {
            let (k, v) = sorter
                .sort(&keys, Some(&values), order)
                .await
                .expect("sort");
            let (k_ref, v_ref) = sort_cpu::sort(&keys, &values, order);
            let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&k), bits(&k_ref), "keys n = {n} {order:?}");
            assert_eq!(v, Some(v_ref), "payloads n = {n} {order:?}");
        }
    }
    let r = sorter
        .sort(&[1.0, 2.0], Some(&[1]), SortOrder::Ascending)
        .await;
    assert!(matches!(r, Err(Error::LengthMismatch { .. })), "{r:?}");
}

#[wasm_bindgen_test]
async fn growl_prox_matches_the_twin() {
    let gpu = gpu().await;
    let start = now_ms();
    let growl = GrowlProx::new(&gpu).expect("growl pipelines");
    console_log!("GrowlProx::new: {:.0} ms", now_ms() - start);
    let layout = GroupLayout::Rows { rows: 64, cols: 20 };
    let mut rng = Rng::new(5);
    let matrix = rng.vec(64 * 20);
    let w = Weights::Oscar { l1: 0.05, l2: 0.01 }
        .sequence(64, 1.0)
        .expect("weights");
    let got = growl.prox(&matrix, layout, &w).await.expect("prox");
    let want = tied::growl::cpu::growl_prox(&matrix, layout, &w).expect("twin");
    let e = max_rel_err(&got.weights, &want.weights, &abs(&matrix));
    assert!(e <= 1e-5, "growl weights: {e}");
    assert_eq!(got.zero, want.zero);
    let r = growl.prox(&matrix[1..], layout, &w).await;
    assert!(matches!(r, Err(Error::LengthMismatch { .. })), "{r:?}");
}
