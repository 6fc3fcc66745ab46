//! Every shader parses, validates, specialises and translates with naga (no GPU), and fits the
//! WebGPU default limits.

use naga::back::pipeline_constants::process_overrides;
use naga::valid::{Capabilities, ValidationFlags, Validator};

/// WebGPU defaults (and tied::required_limits()).
const MAX_WORKGROUP_BYTES: u32 = 16384;
const MAX_INVOCATIONS: u32 = 256;

/// Every kernel of the table: parses, validates, specialises for each variant, fits the
/// limits and translates to SPIR-V, MSL, HLSL and GLSL ES.
#[test]
fn every_kernel_validates_fits_limits_and_translates() {
    let limits = tied::required_limits();
    assert!(limits.max_compute_workgroup_storage_size <= MAX_WORKGROUP_BYTES);
    let table = tied::kernels::table();
    let mut checked = 0;
    for k in &table {
        let (module, info) = parse(k.name, &k.source);
        for constants in &k.variants {
            let (module, info) = specialise(k.name, k.entry, &module, &info, constants);
            check_limits(
                k.name,
                k.entry,
                &module,
                limits.max_storage_buffers_per_shader_stage,
            );
            translate(k.name, k.entry, &module, &info);
            checked += 1;
        }
    }
    assert!(
        checked >= table.len(),
        "only {checked} kernel variants checked"
    );
}

/// For every kernel and variant: the bindings its entry point uses are exactly the declared
/// ones (name, group 0, binding, kind); each uniform's WGSL layout (member names, offsets,
/// size) equals its Rust struct's; the workgroup size is `WORKGROUP_SIZE`; the host-owned
/// constants hold the Rust values; names are unique.
#[test]
fn kernel_table_matches_the_wgsl() {
    let table = tied::kernels::table();
    let mut names = std::collections::HashSet::new();
    for k in &table {
        assert!(names.insert(k.name), "{}: declared twice", k.name);
        let (module, info) = parse(k.name, &k.source);
        check_constants(k, &module);
        for constants in &k.variants {
            let (module, info) = specialise(k.name, k.entry, &module, &info, constants);
            check_bindings(k, &module, &info);
            let ep = module
                .entry_points
                .iter()
                .find(|e| e.name == k.entry)
                .unwrap();
            assert_eq!(
                ep.workgroup_size,
                [tied::WORKGROUP_SIZE, 1, 1],
                "{}: workgroup size",
                k.name
            );
        }
        let _ = info;
    }
}

/// Every WGSL file of `shaders/` is part of some module, and none restates a host constant
/// or a literal workgroup size.
#[test]
fn every_wgsl_file_is_in_a_module_and_takes_constants_from_the_host() {
    let table = tied::kernels::table();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let in_table: Vec<_> = table
            .iter()
            .filter(|k| k.files.contains(&file.as_str()))
            .collect();
        assert!(!in_table.is_empty(), "shaders/{file} is in no module");
        assert!(
            !text.contains("@workgroup_size(2") && !text.contains("@workgroup_size(1"),
            "shaders/{file}: a literal workgroup size (use WORKGROUP_SIZE)"
        );
        for k in in_table {
            for (name, _) in &k.constants {
                assert!(
                    !text.contains(&format!("const {name}:")),
                    "shaders/{file} declares the host constant {name}"
                );
            }
            for b in &k.bindings {
                if let Some(u) = &b.uniform {
                    assert!(
                        !text.contains(&format!("struct {} {{", u.name)),
                        "shaders/{file} declares {}, which the host generates",
                        u.name
                    );
                }
            }
        }
    }
}

fn parse(name: &str, source: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    let info = Validator::new(ValidationFlags::all(), Capabilities::empty())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    (module, info)
}

fn specialise(
    name: &str,
    entry: &str,
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    constants: &[(&str, f64)],
) -> (naga::Module, naga::valid::ModuleInfo) {
    let constants: naga::back::PipelineConstants =
        constants.iter().map(|&(k, v)| (k.to_string(), v)).collect();
    let (module, info) = process_overrides(
        module,
        info,
        Some((naga::ShaderStage::Compute, entry)),
        &constants,
    )
    .unwrap_or_else(|e| panic!("{name} {constants:?}: {e:?}"));
    (module.into_owned(), info.into_owned())
}

fn check_bindings(
    k: &tied::kernels::KernelInfo,
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
) {
    let index = module
        .entry_points
        .iter()
        .position(|e| e.name == k.entry)
        .unwrap_or_else(|| panic!("{}: no entry point {}", k.name, k.entry));
    let ep_info = info.get_entry_point(index);
    let layouter = {
        let mut l = naga::proc::Layouter::default();
        l.update(module.to_ctx()).unwrap();
        l
    };
    let mut used = Vec::new();
    for (handle, var) in module.global_variables.iter() {
        let Some(rb) = &var.binding else { continue };
        if ep_info[handle].is_empty() {
            continue;
        }
        let kind = match var.space {
            naga::AddressSpace::Uniform => "uniform",
            naga::AddressSpace::Storage { access }
                if access.contains(naga::StorageAccess::STORE) =>
            {
                "read_write"
            }
            naga::AddressSpace::Storage { .. } => "read",
            other => panic!("{}: binding of space {other:?}", k.name),
        };
        let name = var.name.clone().unwrap_or_default();
        used.push((rb.group, rb.binding, name.clone(), kind));
        if var.space == naga::AddressSpace::Uniform {
            let decl = k
                .bindings
                .iter()
                .find(|b| b.name == name)
                .and_then(|b| b.uniform.as_ref())
                .unwrap_or_else(|| panic!("{}: uniform `{name}` has no Rust mirror", k.name));
            let naga::TypeInner::Struct { members, span } = &module.types[var.ty].inner else {
                panic!("{}: uniform `{name}` is not a struct", k.name)
            };
            let wgsl: Vec<(String, usize)> = members
                .iter()
                .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
                .collect();
            let rust: Vec<(String, usize)> = decl
                .fields
                .iter()
                .map(|&(n, o)| (n.to_string(), o))
                .collect();
            assert_eq!(
                wgsl, rust,
                "{}: `{name}` fields (WGSL vs {})",
                k.name, decl.name
            );
            assert_eq!(
                *span as usize, decl.size,
                "{}: `{name}` size (WGSL vs size_of::<{}>)",
                k.name, decl.name
            );
            assert_eq!(layouter[var.ty].size as usize, decl.size);
        }
    }
    used.sort();
    let mut declared: Vec<(u32, u32, String, &str)> = k
        .bindings
        .iter()
        .map(|b| (0, b.binding, b.name.to_string(), b.kind))
        .collect();
    declared.sort();
    assert_eq!(
        used, declared,
        "{}: bindings used by `{}` vs declared",
        k.name, k.entry
    );
}

fn check_constants(k: &tied::kernels::KernelInfo, module: &naga::Module) {
    for &(name, value) in &k.constants {
        let (_, c) = module
            .constants
            .iter()
            .find(|(_, c)| c.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{}: constant {name} missing", k.name));
        match module.global_expressions[c.init] {
            naga::Expression::Literal(naga::Literal::U32(v)) => {
                assert_eq!(v, value, "{}: {name}", k.name)
            }
            ref e => panic!("{}: {name} is {e:?}", k.name),
        }
    }
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
