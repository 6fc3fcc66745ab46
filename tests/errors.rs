//! Bad input returns the right `Err`, never a panic; empty input is a no-op.

mod common;

use tied::conv::{BackwardWeightBuffers, Conv2dShape, ForwardBuffers};
use tied::{dispatch, Error, Gpu};

fn shape() -> Conv2dShape {
    Conv2dShape::new(2, 3, 4, [6, 6], [3, 3])
        .padding(1)
        .with_bias(true)
}

#[test]
fn invalid_shapes() {
    let _serial = common::serial();
    let conv = common::conv();
    let bad = [
        Conv2dShape::new(1, 3, 4, [6, 6], [3, 3]).groups(2),
        Conv2dShape::new(1, 4, 4, [6, 6], [3, 3]).groups(0),
        Conv2dShape::new(1, 3, 4, [2, 2], [3, 3]),
        Conv2dShape::new(1, 3, 4, [6, 6], [3, 3]).stride(0),
        Conv2dShape::new(1, 3, 4, [6, 6], [3, 3]).dilation(0),
        Conv2dShape::new(1, 3, 4, [6, 6], [0, 3]),
        Conv2dShape::new(1, 3, 4, [5, 5], [3, 3]).dilation(3),
        // Sizes whose products overflow 32 bits, with channels and without.
        Conv2dShape::new(1, 1 << 16, 1, [1 << 24, 1 << 24], [1 << 24, 1 << 24]),
        Conv2dShape::new(0, 1, 0, [65_536, 65_536], [65_536, 65_536]),
        Conv2dShape::new(1, 1, 1, [1, 1], [1, 1]).padding(1 << 31),
        // A zero batch or zero channels must not hide the other factors.
        Conv2dShape::new(0, 1, 2, [65_536, 65_536], [1, 1]),
        Conv2dShape::new(0, 1, 2, [65_536, 65_536], [1, 1]).with_bias(true),
        Conv2dShape::new(1, 0, 0, [1, 1], [65_537, 65_537]).padding(32_769),
    ];
    for s in bad {
        match conv.plan(&s) {
            Err(Error::Shape(msg)) => assert!(!msg.is_empty()),
            other => panic!("{s:?}: expected Err(Shape), got {other:?}"),
        }
    }
}

#[test]
fn length_mismatches() {
    let _serial = common::serial();
    let conv = common::conv();
    let s = shape();
    let (x, w, b) = (
        vec![0.0; s.input_len()],
        vec![0.0; s.weight_len()],
        vec![0.0; 4],
    );
    let r = conv.forward_blocking(&s, &x[1..], &w, Some(&b));
    assert!(
        matches!(r, Err(Error::LengthMismatch { name: "input", .. })),
        "{r:?}"
    );
    let r = conv.forward_blocking(&s, &x, &w[..5], Some(&b));
    assert!(
        matches!(r, Err(Error::LengthMismatch { name: "weight", .. })),
        "{r:?}"
    );
    let r = conv.forward_blocking(&s, &x, &w, Some(&b[..3]));
    assert!(
        matches!(r, Err(Error::LengthMismatch { name: "bias", .. })),
        "{r:?}"
    );
    let r = conv.forward_blocking(&s, &x, &w, None);
    assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
    let r = conv.backward_blocking(&s, &x, &w, &[1.0; 3]);
    assert!(
        matches!(
            r,
            Err(Error::LengthMismatch {
                name: "grad_output",
                ..
            })
        ),
        "{r:?}"
    );
}

#[test]
fn small_buffers_and_missing_usage() {
    let _serial = common::serial();
    let gpu = common::gpu();
    let conv = common::conv();
    let s = shape();
    let plan = conv.plan(&s).unwrap();
    let device = gpu.device();
    let input = dispatch::zeros(gpu, "x", s.input_len());
    let weight = dispatch::zeros(gpu, "w", s.weight_len());
    let bias = dispatch::zeros(gpu, "b", s.bias_len());
    let small = dispatch::zeros(gpu, "small", s.output_len() - 1);
    let no_storage = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: s.output_len() as u64 * 4,
        usage: wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    let mut bufs = ForwardBuffers {
        input: &input,
        weight: &weight,
        bias: Some(&bias),
        output: &small,
    };
    let r = plan.record_forward(&mut encoder, &bufs);
    assert!(
        matches!(r, Err(Error::BufferTooSmall { name: "output", .. })),
        "{r:?}"
    );
    bufs.output = &no_storage;
    let r = plan.record_forward(&mut encoder, &bufs);
    assert!(
        matches!(r, Err(Error::MissingUsage { name: "output", .. })),
        "{r:?}"
    );
    bufs.output = &input;
    let r = plan.record_forward(&mut encoder, &bufs);
    let r_alias = r.is_err();
    assert!(r_alias, "an output aliasing the input must be refused");
    let big = dispatch::zeros(gpu, "bias and output", s.output_len());
    bufs.bias = Some(&big);
    bufs.output = &big;
    let r = plan.record_forward(&mut encoder, &bufs);
    assert!(
        matches!(r, Err(Error::Shape(_))),
        "an output aliasing the bias: {r:?}"
    );
    bufs.bias = None;
    bufs.output = &small;
    let r = plan.record_forward(&mut encoder, &bufs);
    assert!(r.is_err());
    // Nothing invalid was recorded: the encoder still finishes and submits cleanly.
    let mut ok = device.create_command_encoder(&Default::default());
    let out = dispatch::zeros(gpu, "y", s.output_len());
    plan.record_forward(
        &mut ok,
        &ForwardBuffers {
            input: &input,
            weight: &weight,
            bias: Some(&bias),
            output: &out,
        },
    )
    .unwrap();
    gpu.queue().submit([encoder.finish(), ok.finish()]);
}

#[test]
fn empty_batch_and_channels_are_no_ops() {
    let _serial = common::serial();
    let gpu = common::gpu();
    let conv = common::conv();
    let s = Conv2dShape::new(0, 3, 4, [6, 6], [3, 3]).with_bias(true);
    let y = conv
        .forward_blocking(&s, &[], &vec![1.0; s.weight_len()], Some(&[1.0; 4]))
        .unwrap();
    assert!(y.is_empty());
    let g = conv
        .backward_blocking(&s, &[], &vec![1.0; s.weight_len()], &[])
        .unwrap();
    assert!(g.input.is_empty());
    assert!(g.weight.iter().all(|&v| v == 0.0) && g.weight.len() == s.weight_len());
    assert_eq!(g.bias, vec![0.0; 4]);

    let s = Conv2dShape::new(2, 0, 0, [6, 6], [3, 3]);
    assert!(conv
        .forward_blocking(&s, &[], &[], None)
        .unwrap()
        .is_empty());

    // No input channels but some output channels: the output is the bias alone, and the
    // bias gradient the sum of the output gradient (empty tap tables are still bindable).
    let s = Conv2dShape::new(2, 0, 3, [6, 6], [3, 3]).with_bias(true);
    let bias = [0.5, -1.0, 2.0];
    let y = conv.forward_blocking(&s, &[], &[], Some(&bias)).unwrap();
    assert_eq!(y, tied::conv::cpu::forward(&s, &[], &[], Some(&bias)));
    let dy = vec![1.0; s.output_len()];
    let g = conv.backward_blocking(&s, &[], &[], &dy).unwrap();
    assert!(g.input.is_empty() && g.weight.is_empty());
    assert_eq!(g.bias, tied::conv::cpu::backward_bias(&s, &dy));

    // Recording an empty batch into an encoder records no dispatch (a clear at most).
    let s = Conv2dShape::new(0, 2, 2, [4, 4], [3, 3]);
    let plan = conv.plan(&s).unwrap();
    let gw = dispatch::zeros(gpu, "gw", s.weight_len());
    let empty = dispatch::zeros(gpu, "empty", 0);
    let mut enc = gpu.device().create_command_encoder(&Default::default());
    plan.record_backward_weight(
        &mut enc,
        &BackwardWeightBuffers {
            grad_output: &empty,
            input: &dispatch::zeros(gpu, "x", 0),
            grad_weight: &gw,
            grad_bias: None,
        },
    )
    .unwrap();
    gpu.queue().submit([enc.finish()]);
}

fn lavapipe_or_default_adapter() -> wgpu::Adapter {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    pollster::block_on(wgpu::util::initialize_adapter_from_env_or_default(
        &instance, None,
    ))
    .expect("an adapter")
}

/// A device on `adapter` with exactly the crate's required limits, adopted.
fn adopted_with_required_limits(adapter: &wgpu::Adapter) -> Gpu {
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: tied::required_limits(),
        ..Default::default()
    }))
    .unwrap();
    Gpu::adopt(device, queue).unwrap()
}

/// A storage buffer of exactly `values` (zero bytes when empty), readable and writable.
fn exact_buffer(gpu: &Gpu, values: &[f32]) -> wgpu::Buffer {
    let buffer = gpu.device().create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: values.len() as u64 * 4,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    gpu.queue()
        .write_buffer(&buffer, 0, bytemuck::cast_slice(values));
    buffer
}

#[test]
fn adopted_device_with_low_limits_is_refused_or_bounded() {
    let _serial = common::serial();
    let adapter = lavapipe_or_default_adapter();
    // A device with too few storage buffers: adopting it names the limit.
    let mut limits = tied::required_limits();
    limits.max_storage_buffers_per_shader_stage = 4;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: limits,
        ..Default::default()
    }))
    .unwrap();
    match Gpu::adopt(device, queue) {
        Err(Error::LimitExceeded { limit, .. }) => {
            assert_eq!(limit, "max_storage_buffers_per_shader_stage")
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }

    // A device with exactly the required limits: a tensor past its binding size is refused.
    let gpu = adopted_with_required_limits(&adapter);
    let conv = tied::conv::Conv2d::new(&gpu).unwrap();
    let huge = Conv2dShape::new(64, 64, 64, [128, 128], [3, 3]).padding(1);
    match conv.plan(&huge) {
        Err(Error::LimitExceeded { limit, .. }) => {
            assert_eq!(limit, "max_storage_buffer_binding_size")
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
}

#[test]
fn missing_feature_is_named() {
    let _serial = common::serial();
    let r = tied::check_features(wgpu::Features::empty());
    assert!(r.is_ok(), "the default path needs no feature");
    let noop_limits = wgpu::Limits {
        max_compute_workgroup_storage_size: 1024,
        ..tied::required_limits()
    };
    match tied::check_limits(&noop_limits) {
        Err(e @ Error::LimitExceeded { .. }) => {
            assert!(
                e.to_string().contains("max_compute_workgroup_storage_size"),
                "{e}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn device_loss_is_an_error() {
    let _serial = common::serial();
    // A device of our own (not the shared one), destroyed mid-use.
    let gpu = Gpu::new_blocking().unwrap();
    let conv = tied::conv::Conv2d::new(&gpu).unwrap();
    let s = shape();
    let (x, w, b) = (
        vec![0.5; s.input_len()],
        vec![0.5; s.weight_len()],
        vec![0.5; 4],
    );
    assert!(conv.forward_blocking(&s, &x, &w, Some(&b)).is_ok());
    gpu.device().destroy();
    let r = conv.forward_blocking(&s, &x, &w, Some(&b));
    assert!(
        matches!(r, Err(Error::DeviceLost(_))),
        "expected DeviceLost, got {r:?}"
    );
    let r = conv.backward_blocking(&s, &x, &w, &vec![0.5; s.output_len()]);
    assert!(
        matches!(r, Err(Error::DeviceLost(_))),
        "expected DeviceLost, got {r:?}"
    );
}

/// Sizes past what 32-bit indices (or the host) can hold are errors, never overflow panics.
#[test]
fn sizes_past_u32_are_errors() {
    let _serial = common::serial();
    assert!(matches!(
        dispatch::Grid::fold(1 << 32, 1 << 16),
        Err(Error::LimitExceeded { .. })
    ));
    let layouts = tied::conv::LayoutTranspose::new(common::gpu()).unwrap();
    assert!(matches!(layouts.plan([65_536; 4]), Err(Error::Shape(_))));
    let huge = tied::growl::GroupLayout::Columns {
        rows: 0,
        cols: usize::MAX,
    };
    assert!(tied::growl::cpu::growl_prox(&[], huge, &[]).is_err());
    let oscar = tied::growl::Weights::Oscar { l1: 1.0, l2: 0.0 };
    assert!(matches!(
        oscar.sequence(usize::MAX, 1.0),
        Err(Error::Shape(_))
    ));
}

/// Buffers that pass the size and usage checks but that wgpu refuses when binding (destroyed,
/// or a size that is not a multiple of 4) are an `Err` on an adopted device, which has no
/// error handler of ours (wgpu's default one panics), and nothing is recorded.
#[test]
fn buffers_wgpu_refuses_are_errors_on_an_adopted_device() {
    let _serial = common::serial();
    let adapter = lavapipe_or_default_adapter();
    let gpu = adopted_with_required_limits(&adapter);
    let conv = tied::conv::Conv2d::new(&gpu).unwrap();
    let s = shape();
    let plan = conv.plan(&s).unwrap();
    let storage = |label, bytes| {
        gpu.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    };
    let input = storage("x", s.input_len() as u64 * 4);
    let weight = storage("w", s.weight_len() as u64 * 4);
    let bias = storage("b", s.bias_len() as u64 * 4);
    let output = storage("y", s.output_len() as u64 * 4);
    let ragged = storage("y + 2 bytes", s.output_len() as u64 * 4 + 2);
    let destroyed = storage("destroyed x", s.input_len() as u64 * 4);
    destroyed.destroy();
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    for (input, output) in [(&destroyed, &output), (&input, &ragged)] {
        let r = plan.record_forward(
            &mut encoder,
            &ForwardBuffers {
                input,
                weight: &weight,
                bias: Some(&bias),
                output,
            },
        );
        assert!(
            r.is_err(),
            "{:?} -> {:?}: {r:?}",
            input.size(),
            output.size()
        );
    }
    let ties = tied::tying::Ties::new(&gpu).unwrap();
    let map = tied::tying::TieMap::new(
        tied::tying::TieLayout::Scalar { len: 8 },
        2,
        vec![0, 1, 0, 1, 0, 1, 0, 1],
    )
    .unwrap();
    let tie_plan = ties.plan(&map).unwrap();
    let src = storage("src", 32);
    let values = storage("values", 8);
    values.destroy();
    let r = tie_plan.record_reduce(&mut encoder, &src, &values, tied::tying::Reduction::Sum);
    assert!(r.is_err(), "{r:?}");
    // Nothing was recorded: the encoder still finishes and submits cleanly.
    plan.record_forward(
        &mut encoder,
        &ForwardBuffers {
            input: &input,
            weight: &weight,
            bias: Some(&bias),
            output: &output,
        },
    )
    .unwrap();
    gpu.queue().submit([encoder.finish()]);
    gpu.device()
        .poll(wgpu::PollType::wait_indefinitely())
        .unwrap();
}

/// Tie maps over empty tensors, or with no groups, record through the encoder with exactly
/// sized (zero-byte) caller buffers: reductions write 0 to every (empty) group, broadcasts do
/// nothing, and nothing is an error.
#[test]
fn empty_tie_tensors_record_with_zero_byte_buffers() {
    let _serial = common::serial();
    let gpu = common::gpu();
    let ties = tied::tying::Ties::new(gpu).unwrap();
    use tied::tying::{Reduction, TieLayout, TieMap, UNTIED};
    let maps = [
        TieMap::new(TieLayout::Scalar { len: 0 }, 3, vec![]).unwrap(),
        TieMap::new(TieLayout::rows(0, 4), 2, vec![]).unwrap(),
        TieMap::new(TieLayout::Scalar { len: 5 }, 0, vec![UNTIED; 5]).unwrap(),
        TieMap::new(TieLayout::rows(3, 4), 0, vec![UNTIED; 3]).unwrap(),
        TieMap::new(TieLayout::rows(3, 0), 2, vec![0, 1, 0]).unwrap(),
    ];
    let exact = |values: &[f32]| exact_buffer(gpu, values);
    for map in &maps {
        let plan = ties.plan(map).unwrap();
        let src = exact(&vec![1.0; map.layout().params_len()]);
        let values = exact(&vec![7.0; map.values_len()]);
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        let layout = map.layout();
        plan.record_reduce(&mut encoder, &src, &values, Reduction::Mean)
            .unwrap_or_else(|e| panic!("reduce {layout:?}: {e}"));
        plan.record_broadcast(&mut encoder, &values, &src)
            .unwrap_or_else(|e| panic!("broadcast {layout:?}: {e}"));
        gpu.queue().submit([encoder.finish()]);
        let got = pollster::block_on(dispatch::read_back(gpu, &values, map.values_len())).unwrap();
        assert_eq!(got, vec![0.0; map.values_len()], "{layout:?}");
    }
}

/// Conv shapes with an empty input or weight but a non-empty result record with exactly
/// sized (zero-byte) caller buffers: zero input channels or an input of only padding give the
/// bias, zero output channels a zero input gradient.
#[test]
fn conv_with_empty_operands_records_with_zero_byte_buffers() {
    use tied::conv::BackwardDataBuffers;
    let _serial = common::serial();
    let gpu = common::gpu();
    let conv = common::conv();
    let exact = |n: usize, v: f32| exact_buffer(gpu, &vec![v; n]);
    let read =
        |b: &wgpu::Buffer, n: usize| pollster::block_on(dispatch::read_back(gpu, b, n)).unwrap();
    // (shape, output value, input-gradient value, bias-gradient value): bias 2, grad_output 2.
    let cases = [
        (
            Conv2dShape::new(1, 0, 4, [6, 6], [3, 3]).with_bias(true),
            2.0,
            0.0,
            32.0,
        ),
        (
            Conv2dShape::new(1, 3, 4, [0, 0], [1, 1])
                .padding(1)
                .with_bias(true),
            2.0,
            0.0,
            8.0,
        ),
        (Conv2dShape::new(1, 3, 0, [6, 6], [3, 3]), 0.0, 0.0, 0.0),
    ];
    for (s, y_value, gx_value, gb_value) in cases {
        let plan = conv.plan(&s).unwrap();
        let (x, w, b) = (
            exact(s.input_len(), 1.0),
            exact(s.weight_len(), 1.0),
            exact(s.bias_len(), 2.0),
        );
        let (y, dy) = (exact(s.output_len(), 7.0), exact(s.output_len(), 2.0));
        let (gx, gw, gb) = (
            exact(s.input_len(), 7.0),
            exact(s.weight_len(), 7.0),
            exact(s.bias_len(), 7.0),
        );
        let bias = (s.bias_len() > 0).then_some(&b);
        let grad_bias = (s.bias_len() > 0).then_some(&gb);
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        plan.record_forward(
            &mut encoder,
            &ForwardBuffers {
                input: &x,
                weight: &w,
                bias,
                output: &y,
            },
        )
        .unwrap_or_else(|e| panic!("forward {s:?}: {e}"));
        plan.record_backward_data(
            &mut encoder,
            &BackwardDataBuffers {
                grad_output: &dy,
                weight: &w,
                grad_input: &gx,
            },
        )
        .unwrap_or_else(|e| panic!("input grad {s:?}: {e}"));
        plan.record_backward_weight(
            &mut encoder,
            &BackwardWeightBuffers {
                grad_output: &dy,
                input: &x,
                grad_weight: &gw,
                grad_bias,
            },
        )
        .unwrap_or_else(|e| panic!("weight grad {s:?}: {e}"));
        gpu.queue().submit([encoder.finish()]);
        assert_eq!(
            read(&y, s.output_len()),
            vec![y_value; s.output_len()],
            "{s:?}"
        );
        assert_eq!(
            read(&gx, s.input_len()),
            vec![gx_value; s.input_len()],
            "{s:?}"
        );
        assert_eq!(
            read(&gw, s.weight_len()),
            vec![0.0; s.weight_len()],
            "{s:?}"
        );
        assert_eq!(
            read(&gb, s.bias_len()),
            vec![gb_value; s.bias_len()],
            "{s:?}"
        );
    }
}

/// A GrOWL group whose norm is past `f32::MAX` is refused on the host path (an OWL input must
/// be a finite f32); a group whose sum of squares alone would overflow f32 (elements of 3e19)
/// is fine: the norms are scaled by powers of two.
#[test]
fn growl_norm_overflow_is_an_error() {
    let _serial = common::serial();
    let growl = tied::growl::GrowlProx::new(common::gpu()).unwrap();
    let layout = tied::growl::GroupLayout::Rows { rows: 2, cols: 2 };
    let r = growl.prox_blocking(&[1.0, 2.0, 3e38, 3e38], layout, &[0.1, 0.1]);
    assert!(
        matches!(r, Err(Error::Shape(ref m)) if m.contains("group 1")),
        "{r:?}"
    );
    let r = tied::growl::cpu::growl_prox(&[1.0, 2.0, 3e38, 3e38], layout, &[0.1, 0.1]);
    assert!(
        matches!(r, Err(Error::Shape(ref m)) if m.contains("group 1")),
        "{r:?}"
    );
    let m = [1.0, 2.0, 3e19, 1.0];
    let got = growl.prox_blocking(&m, layout, &[0.1, 0.1]).unwrap();
    let want = tied::growl::cpu::growl_prox(&m, layout, &[0.1, 0.1]).unwrap();
    let close = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-6 * y.abs())
    };
    assert!(close(&got.norms, &want.norms), "{got:?} vs {want:?}");
    assert!(close(&got.weights, &want.weights), "{got:?} vs {want:?}");
}
