//! Emulated cloud identity services and the checks Akeyless's cloud auth methods make: AWS STS
//! (`aws`), and the GCE metadata server, Google STS and IAM Credentials (`gcp`). Azure AD and
//! IMDS are in `azure`. This file only declares them and re-exports what the rest of the crate
//! uses.

mod aws;
mod gcp;

pub(crate) use aws::{sts, verify_aws_cloud_id};
pub(crate) use gcp::{gcp_identity, google_generate_id_token, google_sts};
