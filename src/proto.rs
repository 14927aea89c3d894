//! Generated code for the driver's `v1alpha1.CSIDriverProvider` protocol.
#![allow(clippy::all, missing_docs)]

tonic::include_proto!("v1alpha1");
