//! The kernel table: every compute pipeline of the crate, as declared by its family and as the
//! runtime builds it. `tests/shaders.rs` validates, translates and reflects each entry (the
//! bindings naga sees equal the declared ones, uniform layouts equal their Rust mirrors, the
//! workgroup size is `WORKGROUP_SIZE`), so the test checks exactly what runs.
//!
//! Not a stable API: it exists for the crate's own tests and for tools that want the WGSL.

use crate::dispatch::{shared_buffer_source, KernelDecl, ModuleDecl, Role};

/// Every declared kernel.
fn declared() -> Vec<&'static KernelDecl> {
    let mut all: Vec<&'static KernelDecl> = Vec::new();
    all.extend(crate::scan::KERNELS);
    all.extend(crate::sort::KERNELS);
    all.extend(crate::conv::KERNELS);
    all.extend(crate::growl::OWL_KERNELS);
    all.extend(crate::growl::GROWL_KERNELS);
    all.extend(crate::tying::KERNELS);
    all.extend(crate::train::KERNELS);
    all.extend(crate::share::similarity::KERNELS);
    #[cfg(not(target_arch = "wasm32"))]
    all.extend(crate::probe::KERNELS);
    all
}

/// One pipeline as the runtime builds it.
#[derive(Clone, Debug)]
pub struct KernelInfo {
    /// Unique kernel name (the pipeline label).
    pub name: &'static str,
    /// The module's name; kernels of one module share its source.
    pub module: &'static str,
    /// The complete WGSL source, prelude included.
    pub source: String,
    /// The source of the kernel's shared-buffer twin (every read-only storage binding
    /// declared `read_write`), which the runtime builds for passes that bind one buffer both
    /// read-only and writable (disjoint ranges of one pooled buffer).
    pub shared_source: String,
    /// The WGSL files of `shaders/` the source is made of, in order.
    pub files: Vec<&'static str>,
    /// Host-owned constants generated into the source (name, value), prelude included.
    pub constants: Vec<(&'static str, u32)>,
    /// Entry point.
    pub entry: &'static str,
    /// The group 0 bindings the entry point uses.
    pub bindings: Vec<BindingInfo>,
    /// Override sets, one per variant the runtime may build (at least one, maybe empty).
    pub variants: Vec<Vec<(&'static str, f64)>>,
}

/// One declared binding.
#[derive(Clone, Debug)]
pub struct BindingInfo {
    /// The WGSL variable's name.
    pub name: &'static str,
    /// Its `@binding` number (group 0).
    pub binding: u32,
    /// `uniform`, `read` or `read_write`.
    pub kind: &'static str,
    /// For a uniform: the Rust mirror's name, size and (field, offset) pairs.
    pub uniform: Option<UniformInfo>,
}

/// The Rust mirror of a WGSL uniform struct.
#[derive(Clone, Debug)]
pub struct UniformInfo {
    /// The Rust struct's name.
    pub name: &'static str,
    /// `size_of` in bytes.
    pub size: usize,
    /// (field name, byte offset) in declaration order.
    pub fields: Vec<(&'static str, usize)>,
    /// The generated WGSL declaration.
    pub wgsl: String,
}

fn module_constants(module: &ModuleDecl) -> Vec<(&'static str, u32)> {
    let mut c = vec![("WORKGROUP_SIZE", crate::dispatch::WORKGROUP_SIZE)];
    c.extend(module.constants.iter().copied());
    c
}

/// The kernel table.
pub fn table() -> Vec<KernelInfo> {
    declared()
        .into_iter()
        .map(|k| KernelInfo {
            name: k.name,
            module: k.module.name,
            source: k.module.source(),
            shared_source: shared_buffer_source(&k.module.source()),
            files: k.module.parts.iter().map(|p| p.file).collect(),
            constants: module_constants(k.module),
            entry: k.entry,
            bindings: k
                .bindings
                .iter()
                .map(|b| BindingInfo {
                    name: b.name,
                    binding: b.binding,
                    kind: match b.role {
                        Role::Uniform(_) => "uniform",
                        Role::Read => "read",
                        Role::ReadWrite => "read_write",
                    },
                    uniform: match b.role {
                        Role::Uniform(u) => Some(UniformInfo {
                            name: u.name,
                            size: u.size,
                            fields: u.fields.iter().map(|&(n, o, _)| (n, o)).collect(),
                            wgsl: u.wgsl(),
                        }),
                        _ => None,
                    },
                })
                .collect(),
            variants: k.variant_sets().into_iter().map(|v| v.to_vec()).collect(),
        })
        .collect()
}
