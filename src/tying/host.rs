//! Host convenience: host slices in, results out (async, and `_blocking` on native). Each call
//! plans the map, uploads, records, submits and reads back.
//!
//! Argument order, in every tying call (host, record and CPU twin alike): the map (or plan),
//! then the tensor in the parameter layout, then the group values `[groups][unit_len]`, then
//! the [`Reduction`].

use super::map::TieMap;
use super::{Reduction, Ties};
use crate::dispatch;
use crate::error::{check_len, Result};

impl Ties {
    /// Per-group reduction from a host slice: returns `[groups][unit_len]`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`](crate::Error::LengthMismatch), plan and recording errors,
    /// device loss.
    pub async fn reduce(&self, map: &TieMap, src: &[f32], how: Reduction) -> Result<Vec<f32>> {
        check_len("src", map.layout().params_len(), src)?;
        let plan = self.plan(map)?;
        let gpu = &self.gpu;
        let out = dispatch::record_and_submit(gpu, |encoder| {
            let src = dispatch::upload(gpu, "tie src", src);
            let out = dispatch::zeros(gpu, "tie values", map.values_len());
            plan.record_reduce(encoder, &src, &out, how)?;
            Ok(out)
        })
        .await?;
        dispatch::read_back(gpu, &out, map.values_len()).await
    }

    /// Reduce then broadcast back into the tensor (the training step), from a host slice:
    /// returns the new tensor. With `values = None` the group values come from `tensor`
    /// itself; with `Some(v)` they are broadcast as given.
    ///
    /// `tensor_name` is the caller's name for `tensor` (`target`, `grads`, `weights`).
    async fn run_broadcast(
        &self,
        map: &TieMap,
        (tensor_name, tensor): (&'static str, &[f32]),
        values: Option<&[f32]>,
        how: Reduction,
    ) -> Result<Vec<f32>> {
        check_len(tensor_name, map.layout().params_len(), tensor)?;
        if let Some(v) = values {
            check_len("values", map.values_len(), v)?;
        }
        let plan = self.plan(map)?;
        let gpu = &self.gpu;
        let buf = dispatch::record_and_submit(gpu, |encoder| {
            let buf = dispatch::upload(gpu, "tie tensor", tensor);
            let vals = match values {
                Some(v) => dispatch::upload(gpu, "tie values", v),
                None => dispatch::zeros(gpu, "tie values", map.values_len()),
            };
            // Named as the caller named the slices.
            dispatch::record_checked(gpu, encoder, |rec| match values {
                None => plan.build_fused(rec, (tensor_name, (&buf).into()), (&vals).into(), how),
                Some(_) => {
                    let (tensor, vals) = ((tensor_name, (&buf).into()), ("values", (&vals).into()));
                    plan.build_broadcast(rec, tensor, vals)
                }
            })?;
            Ok(buf)
        })
        .await?;
        dispatch::read_back(gpu, &buf, map.layout().params_len()).await
    }

    /// Writes `values` (`[groups][unit_len]`) to the members of `target`; untied units keep
    /// their values. Returns the new tensor.
    ///
    /// # Errors
    /// As [`Ties::reduce`].
    pub async fn broadcast(
        &self,
        map: &TieMap,
        target: &[f32],
        values: &[f32],
    ) -> Result<Vec<f32>> {
        self.run_broadcast(map, ("target", target), Some(values), Reduction::Sum)
            .await
    }

    /// Fused reduce-then-broadcast of gradients: every tied gradient becomes its group's sum
    /// (or mean). Returns the new gradients.
    ///
    /// # Errors
    /// As [`Ties::reduce`].
    pub async fn reduce_broadcast(
        &self,
        map: &TieMap,
        grads: &[f32],
        how: Reduction,
    ) -> Result<Vec<f32>> {
        self.run_broadcast(map, ("grads", grads), None, how).await
    }

    /// The tying projection: every tied unit of `weights` becomes its group's mean.
    ///
    /// # Errors
    /// As [`Ties::reduce`].
    pub async fn project(&self, map: &TieMap, weights: &[f32]) -> Result<Vec<f32>> {
        self.run_broadcast(map, ("weights", weights), None, Reduction::Mean)
            .await
    }

    crate::blocking_calls! {
        /// Blocking [`Ties::reduce`] (native only).
        pub fn reduce_blocking(
            &self,
            map: &TieMap,
            src: &[f32],
            how: Reduction,
        ) -> Result<Vec<f32>> => reduce;

        /// Blocking [`Ties::broadcast`] (native only).
        pub fn broadcast_blocking(
            &self,
            map: &TieMap,
            target: &[f32],
            values: &[f32],
        ) -> Result<Vec<f32>> => broadcast;

        /// Blocking [`Ties::reduce_broadcast`] (native only).
        pub fn reduce_broadcast_blocking(
            &self,
            map: &TieMap,
            grads: &[f32],
            how: Reduction,
        ) -> Result<Vec<f32>> => reduce_broadcast;

        /// Blocking [`Ties::project`] (native only).
        pub fn project_blocking(&self, map: &TieMap, weights: &[f32]) -> Result<Vec<f32>> => project;
    }
}
