//! Devices: adopt a caller's `wgpu::Device`, or own one created from the environment.
//!
//! Every kernel in the crate is built from a [`Gpu`], a cheap, cloneable handle holding a
//! device and its queue. [`Gpu::adopt`] wraps a device the caller created (after checking it
//! against [`required_limits`] and [`required_features`]); [`Gpu::new`] creates one.

use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};

/// Features every kernel needs. Empty: the default paths use none.
pub fn required_features() -> wgpu::Features {
    wgpu::Features::empty()
}

/// Features used when the device has them: `TIMESTAMP_QUERY` for GPU timings in the report
/// and benches. Nothing else changes with them.
pub fn optional_features() -> wgpu::Features {
    wgpu::Features::TIMESTAMP_QUERY
}

/// The limits the crate's kernels need: every kernel fits the WebGPU defaults (at most 6
/// storage and 2 uniform buffers per stage, 256 invocations, at most 16 KiB of workgroup
/// memory).
///
/// Binding sizes are checked per call against the device's real
/// `max_storage_buffer_binding_size`; larger devices simply allow larger tensors.
pub fn required_limits() -> wgpu::Limits {
    let d = wgpu::Limits::default();
    wgpu::Limits {
        max_storage_buffers_per_shader_stage: 6,
        max_uniform_buffers_per_shader_stage: 2,
        max_bind_groups: 1,
        max_compute_invocations_per_workgroup: 256,
        max_compute_workgroup_size_x: 256,
        max_compute_workgroup_storage_size: d.max_compute_workgroup_storage_size,
        max_compute_workgroups_per_dimension: d.max_compute_workgroups_per_dimension,
        max_storage_buffer_binding_size: d.max_storage_buffer_binding_size,
        ..wgpu::Limits::downlevel_defaults()
    }
}

/// Checks that `limits` meets [`required_limits`], naming the first field that does not.
pub fn check_limits(limits: &wgpu::Limits) -> Result<()> {
    let req = required_limits();
    // `(name, needed, allowed)` of each limit `required_limits` raises, by field name.
    macro_rules! required {
        ($($field:ident),*) => {
            [$((stringify!($field), u64::from(req.$field), u64::from(limits.$field))),*]
        };
    }
    let raised = required!(
        max_storage_buffers_per_shader_stage,
        max_uniform_buffers_per_shader_stage,
        max_compute_invocations_per_workgroup,
        max_compute_workgroup_size_x,
        max_compute_workgroup_storage_size,
        max_compute_workgroups_per_dimension
    );
    // Small devices work, with correspondingly small tensors; demand only 16 MiB.
    let binding = (
        "max_storage_buffer_binding_size",
        16 << 20,
        limits.max_storage_buffer_binding_size,
    );
    let checks = raised.into_iter().chain([binding]);
    for (limit, needed, allowed) in checks {
        if allowed < needed {
            return Err(Error::LimitExceeded {
                limit,
                needed,
                allowed,
                hint: "; request at least tied::required_limits() when creating the device".into(),
            });
        }
    }
    Ok(())
}

/// Checks that `features` contains [`required_features`].
pub fn check_features(features: wgpu::Features) -> Result<()> {
    let missing = required_features() - features;
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::MissingFeature {
            feature: format!("{missing:?}"),
            why: "required by tied's kernels".into(),
        })
    }
}

/// A device and queue that `tied` kernels run on. Cheap to clone (handles are shared).
#[derive(Clone, Debug)]
pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    /// Set by the device-lost callback; only installed on devices this crate created.
    lost: Option<Arc<Mutex<Option<String>>>>,
    /// The limits of the adapter the device came from, when known (devices this crate
    /// created): limit hints suggest larger limits only when the adapter has them.
    adapter_limits: Option<Arc<wgpu::Limits>>,
    /// Bound in place of an empty buffer (a binding cannot be empty); made on first use.
    empty_binding: Arc<OnceLock<wgpu::Buffer>>,
    /// This device's pipelines, built on first use ([`Gpu::kernel`]).
    kernels: crate::dispatch::SharedKernelCache,
}

impl Gpu {
    /// Adopts a device the caller created. Checks it against [`required_features`] and
    /// [`required_limits`]; installs no callbacks or error handlers on it.
    ///
    /// Device loss is still reported as [`Error::DeviceLost`] on an adopted device: with no
    /// device-lost callback of its own, the crate probes the device after each call (native
    /// only; see [`Gpu::check_lost`]). Your own device-lost callback, if any, stays yours.
    ///
    /// The crate does not know the adapter of an adopted device, so a [`Error::LimitExceeded`]
    /// can only suggest larger limits "if your adapter allows more".
    ///
    /// Every buffer you pass to this `Gpu`'s kernels must come from the same
    /// `wgpu::Instance`: a buffer of another device of the same instance is refused (a
    /// [`Error::Validation`]), but one from another instance cannot be told apart from yours
    /// by wgpu-core (it can alias one of your buffers, or make wgpu-core panic).
    ///
    /// # Errors
    /// [`Error::MissingFeature`] or [`Error::LimitExceeded`] naming what the device lacks.
    pub fn adopt(device: wgpu::Device, queue: wgpu::Queue) -> Result<Self> {
        check_features(device.features())?;
        check_limits(&device.limits())?;
        let info = device.adapter_info();
        Ok(Self {
            device,
            queue,
            info,
            lost: None,
            adapter_limits: None,
            empty_binding: Arc::default(),
            kernels: Arc::default(),
        })
    }

    /// Creates a device on the adapter chosen by the environment (`WGPU_BACKEND` =
    /// `vulkan|metal|dx12|gl|webgpu`, `WGPU_ADAPTER_NAME` = a substring of the adapter's name),
    /// else the default adapter. Requests the adapter's own limits (not the WebGPU defaults),
    /// so large tensors fit where the hardware allows, and the [`optional_features`] it has.
    ///
    /// wgpu errors of the crate's calls on this device are captured as values; any error
    /// outside them (from the caller's own use of the device) is printed to stderr instead of
    /// panicking.
    ///
    /// # Errors
    /// [`Error::NoAdapter`], [`Error::RequestDevice`], or a missing feature/limit.
    pub async fn new() -> Result<Self> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = wgpu::util::initialize_adapter_from_env_or_default(&instance, None)
            .await
            .map_err(|e| {
                Error::NoAdapter(format!(
                    "{e} (set WGPU_BACKEND=vulkan|gl|metal|dx12 or install a driver; on Debian \
                     `apt-get install mesa-vulkan-drivers libvulkan1` gives a software Vulkan)"
                ))
            })?;
        if !adapter
            .get_downlevel_capabilities()
            .flags
            .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
        {
            return Err(Error::MissingFeature {
                feature: "DownlevelFlags::COMPUTE_SHADERS".into(),
                why: format!(
                    "adapter `{}` cannot run compute shaders",
                    adapter.get_info().name
                ),
            });
        }
        check_features(adapter.features())?;
        check_limits(&adapter.limits())?;
        let features = required_features() | (optional_features() & adapter.features());
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("tied"),
                required_features: features,
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::RequestDevice(e.to_string()))?;
        let lost = Arc::new(Mutex::new(None));
        let lost_cb = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut slot) = lost_cb.lock() {
                *slot = Some(format!("{reason:?}: {msg}"));
            }
        });
        // We own this device: turn wgpu's default (panicking) handler into a logged error.
        // Operations on it use error scopes, so this only sees errors outside them.
        device.on_uncaptured_error(Arc::new(|e: wgpu::Error| {
            eprintln!("tied: uncaptured wgpu error: {e}");
        }));
        Ok(Self {
            info: adapter.get_info(),
            device,
            queue,
            lost: Some(lost),
            adapter_limits: Some(Arc::new(adapter.limits())),
            empty_binding: Arc::default(),
            kernels: Arc::default(),
        })
    }

    /// The pipelines built on this device, shared by its clones.
    pub(crate) fn kernel_cache(&self) -> &crate::dispatch::KernelCache {
        &self.kernels
    }

    /// A 16-byte storage buffer bound in place of an empty one, which kernels never read or
    /// write (their loops over an empty tensor do not run).
    pub(crate) fn empty_binding(&self) -> &wgpu::Buffer {
        self.empty_binding.get_or_init(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tied empty binding"),
                size: 16,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        })
    }

    /// Blocking [`Gpu::new`] (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking() -> Result<Self> {
        pollster::block_on(Self::new())
    }

    /// The device.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// The adapter's name, backend and driver.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// Whether GPU timestamps can be taken around compute passes.
    pub fn has_timestamps(&self) -> bool {
        self.device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// `Err(DeviceLost)` if the device is lost or destroyed.
    ///
    /// On a device this crate created, its device-lost callback says so. wgpu reports no
    /// error at all for most calls on a lost device (it leaves that to the device-lost
    /// callback, which on an adopted device belongs to you), so on native the crate also
    /// probes the device: it creates a 4-byte buffer and writes zero bytes to it inside an
    /// error scope. On a lost device the buffer is invalid and the write reports it; on a
    /// live one the write is a no-op (no GPU work, nothing submitted). On the web the probe
    /// cannot be awaited synchronously, so there only the callback of an owned device counts.
    pub fn check_lost(&self) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            pollster::block_on(self.check_lost_async())
        }
        #[cfg(target_arch = "wasm32")]
        {
            self.lost_flag()
        }
    }

    /// [`Gpu::check_lost`], awaiting the probe.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) async fn check_lost_async(&self) -> Result<()> {
        self.lost_flag()?;
        if let Some(why) = self.probe_lost().await {
            // Let an owned device's callback run, so the error can say why.
            let _ = self.device.poll(wgpu::PollType::Poll);
            self.lost_flag()?;
            return Err(Error::DeviceLost(why));
        }
        Ok(())
    }

    /// `Err(DeviceLost)` if the device-lost callback of a device this crate created ran.
    fn lost_flag(&self) -> Result<()> {
        if let Some(lost) = &self.lost {
            if let Some(why) = lost.lock().ok().and_then(|slot| slot.clone()) {
                return Err(Error::DeviceLost(why));
            }
        }
        Ok(())
    }

    /// The probe of [`Gpu::check_lost`]: `Some(reason)` when a buffer just created on the
    /// device is invalid.
    #[cfg(not(target_arch = "wasm32"))]
    async fn probe_lost(&self) -> Option<String> {
        const LABEL: &str = "tied device-loss probe";
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let probe = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(LABEL),
            size: 4,
            usage: wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue.write_buffer(&probe, 0, &[]);
        let error = scope.pop().await;
        drop(probe);
        match error {
            Some(wgpu::Error::Validation { description, .. })
                if description.contains(LABEL) && description.contains("invalid") =>
            {
                Some(format!(
                    "a buffer created on device `{}` is invalid: the device was destroyed or \
                     lost (wgpu reports loss only to the device-lost callback)",
                    self.info.name
                ))
            }
            _ => None,
        }
    }

    /// The hint of a [`Error::LimitExceeded`] about `limit`, the device allowing `allowed`
    /// and the adapter `adapter` (read from the adapter's limits): larger limits are
    /// suggested only when the adapter has them, or when the adapter is not known.
    pub(crate) fn limit_hint(
        &self,
        limit: &str,
        allowed: u64,
        adapter: impl FnOnce(&wgpu::Limits) -> u64,
    ) -> String {
        match &self.adapter_limits {
            Some(a) => {
                let most = adapter(a);
                if most > allowed {
                    format!(
                        " or create the device with a larger `{limit}`: the adapter allows {most}"
                    )
                } else {
                    String::new()
                }
            }
            None => format!(
                " or, if your adapter allows more, create the device with a larger `{limit}`"
            ),
        }
    }

    /// Runs `f` inside validation and out-of-memory error scopes and returns the first error
    /// they caught. On native the scopes resolve at once. On the web a scope cannot be awaited
    /// synchronously: there `f` runs unscoped (the browser reports its errors) and callers that
    /// need captured errors use [`Gpu::scoped_async`].
    pub(crate) fn scoped<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            pollster::block_on(self.scoped_async(f))
        }
        #[cfg(target_arch = "wasm32")]
        {
            self.lost_flag()?;
            f()
        }
    }

    /// Runs `f` inside validation and out-of-memory error scopes; awaits the scopes. A lost
    /// device is reported as [`Error::DeviceLost`] whatever `f` returned or the scopes caught
    /// (see [`Gpu::check_lost`]).
    pub(crate) async fn scoped_async<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.lost_flag()?;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let validation = validation.pop();
        let oom = oom.pop();
        let (validation, oom) = (validation.await, oom.await);
        #[cfg(not(target_arch = "wasm32"))]
        self.check_lost_async().await?;
        #[cfg(target_arch = "wasm32")]
        self.lost_flag()?;
        if let Some(e) = oom.or(validation) {
            return Err(Error::from_wgpu(e));
        }
        out
    }
}
