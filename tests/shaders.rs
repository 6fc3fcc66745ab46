//! Every shader parses, validates, specialises and translates with naga (no GPU), and fits the
//! WebGPU default limits.

use naga::back::pipeline_constants::process_overrides;
use naga::valid::{Capabilities, ValidationFlags, Validator};

/// WebGPU defaults (and tied::required_limits()).
const MAX_WORKGROUP_BYTES: u32 = 16384;
const MAX_INVOCATIONS: u32 = 256;

#[test]
fn every_shader_validates_fits_limits_and_translates() {
    let limits = tied::required_limits();
    assert!(limits.max_compute_workgroup_storage_size <= MAX_WORKGROUP_BYTES);
    let mut checked = 0;
    for (name, source) in tied::shaders::all() {
        let module = naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&source)));
        let info = Validator::new(ValidationFlags::all(), Capabilities::empty())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let entries: Vec<String> = module.entry_points.iter().map(|e| e.name.clone()).collect();
        for entry in &entries {
            for constants in tied::shaders::override_sets(name) {
                let constants: naga::back::PipelineConstants =
                    constants.iter().map(|&(k, v)| (k.to_string(), v)).collect();
                let (module, info) = process_overrides(
                    &module,
                    &info,
                    Some((naga::ShaderStage::Compute, entry)),
                    &constants,
                )
                .unwrap_or_else(|e| panic!("{name} {constants:?}: {e:?}"));
                check_limits(
                    name,
                    entry,
                    &module,
                    limits.max_storage_buffers_per_shader_stage,
                );
                translate(name, entry, &module, &info);
                checked += 1;
            }
        }
    }
    assert!(checked >= 14, "only {checked} shader variants checked");
}

fn check_limits(name: &str, entry: &str, module: &naga::Module, max_storage: u32) {
    let ep = module
        .entry_points
        .iter()
        .find(|e| e.name == entry)
        .unwrap();
    let [x, y, z] = ep.workgroup_size;
    assert!(
        x * y * z <= MAX_INVOCATIONS,
        "{name}: workgroup of {} invocations",
        x * y * z
    );
    let layouter = {
        let mut l = naga::proc::Layouter::default();
        l.update(module.to_ctx()).unwrap();
        l
    };
    let mut workgroup_bytes = 0;
    let mut storage = 0;
    for (_, var) in module.global_variables.iter() {
        match var.space {
            naga::AddressSpace::WorkGroup => workgroup_bytes += layouter[var.ty].size,
            naga::AddressSpace::Storage { .. } => storage += 1,
            _ => {}
        }
    }
    assert!(
        workgroup_bytes <= MAX_WORKGROUP_BYTES,
        "{name}: {workgroup_bytes} bytes of workgroup memory"
    );
    assert!(storage <= max_storage, "{name}: {storage} storage buffers");
}

fn translate(name: &str, entry: &str, module: &naga::Module, info: &naga::valid::ModuleInfo) {
    naga::back::spv::write_vec(module, info, &Default::default(), None)
        .unwrap_or_else(|e| panic!("{name} -> SPIR-V: {e:?}"));
    let mut msl = String::new();
    let msl_opts = naga::back::msl::Options::default();
    let msl_pipe = naga::back::msl::PipelineOptions::default();
    naga::back::msl::Writer::new(&mut msl)
        .write(module, info, &msl_opts, &msl_pipe)
        .unwrap_or_else(|e| panic!("{name} -> MSL: {e:?}"));
    let mut hlsl = String::new();
    let hlsl_opts = naga::back::hlsl::Options::default();
    naga::back::hlsl::Writer::new(&mut hlsl, &hlsl_opts, &Default::default())
        .write(module, info, None)
        .unwrap_or_else(|e| panic!("{name} -> HLSL: {e:?}"));
    let mut glsl = String::new();
    let glsl_opts = naga::back::glsl::Options {
        version: naga::back::glsl::Version::Embedded {
            version: 310,
            is_webgl: false,
        },
        ..Default::default()
    };
    let pipeline = naga::back::glsl::PipelineOptions {
        shader_stage: naga::ShaderStage::Compute,
        entry_point: entry.into(),
        multiview: None,
    };
    naga::back::glsl::Writer::new(
        &mut glsl,
        module,
        info,
        &glsl_opts,
        &pipeline,
        naga::proc::BoundsCheckPolicies::default(),
    )
    .and_then(|mut w| w.write())
    .unwrap_or_else(|e| panic!("{name} -> GLSL ES 3.1: {e:?}"));
}

#[test]
fn grid_folding() {
    use tied::dispatch::Grid;
    let g = Grid::fold(70_000, 65_535).unwrap();
    assert_eq!((g.x, g.y, g.total), (65_535, 2, 70_000));
    assert!(u64::from(g.x) * u64::from(g.y) >= 70_000);
    let g = Grid::fold(10, 65_535).unwrap();
    assert_eq!((g.x, g.y), (10, 1));
    assert_eq!(Grid::fold(0, 65_535).unwrap().total, 0);
    assert!(Grid::fold(65_535u64 * 65_535 + 1, 65_535).is_err());
}
