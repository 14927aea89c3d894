//! Generated code for the driver's `v1alpha1.CSIDriverProvider` protocol.
// Generated code is held to none of our lints, the size rules included.
#![allow(clippy::all, clippy::too_many_lines, missing_docs)]

tonic::include_proto!("v1alpha1");
