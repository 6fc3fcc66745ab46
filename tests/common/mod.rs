//! Shared test setup: one device per test binary, from the environment (`WGPU_BACKEND`).
//! A missing adapter fails the test loudly: GPU tests are never skipped silently.

#![allow(dead_code)]

use std::sync::OnceLock;

use tied::conv::Conv2d;
use tied::Gpu;

pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let gpu = Gpu::new_blocking().unwrap_or_else(|e| {
            panic!("no GPU adapter for the tests ({e}); install lavapipe or set WGPU_BACKEND=gl")
        });
        let info = gpu.adapter_info();
        eprintln!("tests run on {} ({:?})", info.name, info.backend);
        gpu
    })
}

pub fn conv() -> &'static Conv2d {
    static CONV: OnceLock<Conv2d> = OnceLock::new();
    CONV.get_or_init(|| Conv2d::new(gpu()).expect("conv pipelines"))
}
