//! The `aws_iam` auth family: a role the pod assumes (EKS IRSA) or the provider's own credentials.

use super::{Problem, keys, param_problem};
use crate::request::Parameters;

/// How `aws_iam` obtains AWS credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsSettings {
    /// The role the pod assumes with its own service-account token (EKS IRSA style). `None`:
    /// the provider's own AWS credentials, only when the provider was started with
    /// `--aws-provider-credentials`.
    pub role_arn: Option<String>,
    /// Region of the STS endpoints (default `us-east-1`).
    pub region: String,
}

/// The audience AWS STS expects on a web-identity token (EKS IRSA).
pub(crate) const AWS_TOKEN_AUDIENCE: &str = "sts.amazonaws.com";
/// The region used when `akeylessAWSRegion` is not set.
pub(crate) const AWS_DEFAULT_REGION: &str = "us-east-1";

/// Parses the `aws_iam` parameters: the role and the STS region.
pub(super) fn parse(params: &Parameters, problems: &mut Vec<Problem>) -> AwsSettings {
    let mut problem = |key: &str, message: String| param_problem(problems, key, message);
    let role_arn = params.get(keys::AWS_ROLE_ARN).map(|r| r.trim().to_string());
    if let Some(arn) = &role_arn
        && !valid_role_arn(arn)
    {
        problem(
            keys::AWS_ROLE_ARN,
            format!(
                "parameter {} {arn:?} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
                keys::AWS_ROLE_ARN
            ),
        );
    }
    let region = params
        .get(keys::AWS_REGION)
        .map(|r| r.trim().to_string())
        .unwrap_or_else(|| AWS_DEFAULT_REGION.to_string());
    if region.is_empty()
        || !region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        problem(
            keys::AWS_REGION,
            format!(
                "parameter {} {region:?} is not an AWS region such as us-east-1",
                keys::AWS_REGION
            ),
        );
    }
    AwsSettings { role_arn, region }
}

/// `arn:<partition>:iam::<account>:role/<name>`.
fn valid_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws")
            && !account.is_empty()
            && account.chars().all(|c| c.is_ascii_digit())
            && resource.strip_prefix("role/").is_some_and(|n| !n.is_empty()))
}
