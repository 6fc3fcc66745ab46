//! The crate's one error type.

use std::fmt;

/// Everything that can go wrong in `tied`. Every public function returns this instead of
/// panicking; each variant's message says what to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No adapter matched the request (backend / name filters, or no GPU driver at all).
    #[error("no GPU adapter found: {0}")]
    NoAdapter(String),
    /// The adapter refused to create a device with the requested features and limits.
    #[error("could not create a device: {0}")]
    RequestDevice(String),
    /// A device lacks a feature the crate needs.
    #[error("the device lacks the feature {feature}: {why}")]
    MissingFeature {
        /// The missing feature, as wgpu names it.
        feature: String,
        /// What the feature is needed for.
        why: String,
    },
    /// A size exceeds what the device allows (or what the crate needs of a device).
    #[error("limit `{limit}` exceeded: need {needed}, the device allows {allowed}{hint}")]
    LimitExceeded {
        /// The `wgpu::Limits` field (or crate limit) that is too small.
        limit: &'static str,
        /// What the operation needs.
        needed: u64,
        /// What the device provides.
        allowed: u64,
        /// Extra advice, starting with "; " when present.
        hint: String,
    },
    /// Tensor shapes or op parameters are inconsistent.
    #[error("invalid shape: {0}")]
    Shape(String),
    /// A caller-owned buffer (or range of one) is smaller than the operation needs.
    #[error("buffer `{name}` is too small: need {needed} bytes, it has {actual}")]
    BufferTooSmall {
        /// The role of the buffer (e.g. `input`, `weight`).
        name: &'static str,
        /// Bytes needed.
        needed: u64,
        /// Bytes the buffer (or range) has.
        actual: u64,
    },
    /// A caller-owned buffer was created without a usage flag the operation needs.
    #[error("buffer `{name}` lacks usage {missing:?}; create it with {missing:?} added")]
    MissingUsage {
        /// The role of the buffer.
        name: &'static str,
        /// The usage flags that are missing.
        missing: wgpu::BufferUsages,
    },
    /// An output's range overlaps one of the op's input ranges (or another output's): the
    /// same bytes of one buffer. Disjoint ranges of one buffer are fine.
    #[error(
        "`{name}` overlaps `{other}` (the same bytes of one buffer): pass disjoint ranges or \
         separate buffers"
    )]
    Aliasing {
        /// The role of the output buffer.
        name: &'static str,
        /// The role of the buffer it aliases.
        other: &'static str,
    },
    /// A caller's [`BufferRange`](crate::buffer::BufferRange) starts at an offset the device
    /// cannot bind, or has a size that is not a multiple of 4.
    #[error(
        "buffer range `{name}`: its {what} {value} is not a multiple of {alignment} \
         (`{limit}`): place ranges at multiples of {alignment} bytes"
    )]
    MisalignedRange {
        /// The role of the range (e.g. `input`).
        name: &'static str,
        /// `"offset"` or `"size"`.
        what: &'static str,
        /// The offending offset or size, in bytes.
        value: u64,
        /// The alignment the device (or wgpu) requires, in bytes.
        alignment: u64,
        /// Where the alignment comes from: a `wgpu::Limits` field, or wgpu's 4-byte rule for
        /// binding sizes.
        limit: &'static str,
    },
    /// A caller's [`BufferRange`](crate::buffer::BufferRange) ends past its buffer.
    #[error(
        "buffer range `{name}` (offset {offset}, {size} bytes) ends past its buffer's \
         {buffer_size} bytes"
    )]
    RangeOutOfBounds {
        /// The role of the range.
        name: &'static str,
        /// Its offset in bytes.
        offset: u64,
        /// Its size in bytes.
        size: u64,
        /// The buffer's size in bytes.
        buffer_size: u64,
    },
    /// A caller-owned buffer is mapped: the GPU cannot use it until it is unmapped.
    #[error("buffer `{name}` is mapped: call `unmap()` before recording with it")]
    BufferMapped {
        /// The role of the buffer.
        name: &'static str,
    },
    /// A host slice has the wrong number of elements.
    #[error("`{name}` has {actual} elements, the shape needs {expected}")]
    LengthMismatch {
        /// The role of the slice.
        name: &'static str,
        /// Elements expected.
        expected: usize,
        /// Elements given.
        actual: usize,
    },
    /// The device was lost (destroyed, driver reset, unplugged). Create a new one. Reported
    /// for devices the crate created (its device-lost callback) and adopted ones (a probe; see
    /// [`crate::Gpu::check_lost`]).
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),
    /// wgpu reported a validation error (a bug in the caller's setup or in `tied`): for
    /// example a caller buffer that is destroyed, of another device, or sized wrongly.
    #[error("wgpu validation error: {0}")]
    Validation(String),
    /// The device ran out of memory.
    #[error("the GPU ran out of memory: {0}")]
    OutOfMemory(String),
    /// Mapping a buffer for readback failed.
    #[error("reading results back failed: {0}")]
    Readback(String),
    /// A data file is missing or malformed ([`crate::share::idx`]).
    #[error("data file {file}: {reason}")]
    Data {
        /// The file (its path as given).
        file: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Shorthand for `Result<T, tied::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn shape(msg: impl fmt::Display) -> Self {
        Error::Shape(msg.to_string())
    }

    /// Converts an error captured by a wgpu error scope.
    pub(crate) fn from_wgpu(err: wgpu::Error) -> Self {
        match err {
            wgpu::Error::OutOfMemory { source } => Error::OutOfMemory(source.to_string()),
            wgpu::Error::Validation { description, .. } => {
                // A destroyed buffer is the caller's mistake, not a lost device.
                if description.contains("lost") {
                    Error::DeviceLost(description)
                } else {
                    Error::Validation(description)
                }
            }
            wgpu::Error::Internal { description, .. } => Error::Validation(description),
        }
    }
}

/// Checks that a host slice has the `expected` length.
pub(crate) fn check_len<T>(name: &'static str, expected: usize, data: &[T]) -> Result<()> {
    if data.len() != expected {
        return Err(Error::LengthMismatch {
            name,
            expected,
            actual: data.len(),
        });
    }
    Ok(())
}
