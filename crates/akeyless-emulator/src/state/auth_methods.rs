//! Setting up auth methods and read grants.

use super::handle::{EmulatorState, owned};
use super::records::AuthMethod;

impl EmulatorState {
    /// Registers (or replaces) an access-key auth method.
    pub fn add_access_key_auth(&self, access_id: &str, access_key: &str) {
        self.add_auth_method(
            access_id,
            AuthMethod::AccessKey {
                access_key: access_key.to_owned(),
            },
        );
    }

    /// Registers a k8s auth method reachable through gateway config `config_name`.
    /// Empty bound lists accept any namespace / service account; any audience is accepted.
    pub fn add_k8s_auth(
        &self,
        access_id: &str,
        config_name: &str,
        bound_namespaces: &[&str],
        bound_service_accounts: &[&str],
    ) {
        self.add_k8s_auth_inner(
            access_id,
            config_name,
            bound_namespaces,
            bound_service_accounts,
            None,
        );
    }

    /// Like [`add_k8s_auth`](Self::add_k8s_auth), but the token's `aud` must contain `audience`.
    #[cfg(test)]
    pub(crate) fn add_k8s_auth_with_audience(
        &self,
        access_id: &str,
        config_name: &str,
        bound_namespaces: &[&str],
        bound_service_accounts: &[&str],
        audience: &str,
    ) {
        self.add_k8s_auth_inner(
            access_id,
            config_name,
            bound_namespaces,
            bound_service_accounts,
            Some(audience.to_owned()),
        );
    }

    fn add_k8s_auth_inner(
        &self,
        access_id: &str,
        config_name: &str,
        bound_namespaces: &[&str],
        bound_service_accounts: &[&str],
        audience: Option<String>,
    ) {
        self.add_auth_method(
            access_id,
            AuthMethod::K8s {
                config_name: config_name.to_owned(),
                bound_namespaces: owned(bound_namespaces),
                bound_service_accounts: owned(bound_service_accounts),
                audience,
            },
        );
    }

    /// Registers a JWT auth method verifying tokens from `issue_jwt`
    /// (`POST /__emulator/issue-jwt`). An empty `bound_subjects` accepts any `sub`.
    pub fn add_jwt_auth(&self, access_id: &str, bound_subjects: &[&str]) {
        self.add_auth_method(
            access_id,
            AuthMethod::Jwt {
                bound_subjects: owned(bound_subjects),
            },
        );
    }

    /// Registers an `azure_ad` auth method; empty `bound_object_ids` accepts any.
    pub fn add_azure_ad_auth(&self, access_id: &str, bound_object_ids: &[&str]) {
        self.add_auth_method(
            access_id,
            AuthMethod::AzureAd {
                bound_object_ids: owned(bound_object_ids),
            },
        );
    }

    /// Registers a `universal_identity` auth method and returns its first token (`u-…`).
    pub fn add_universal_identity_auth(&self, access_id: &str) -> String {
        self.add_universal_identity_auth_with(access_id, false, false)
    }

    /// The same, with Akeyless's `deny-inheritance` (no child tokens: a `fork` is refused) and
    /// `deny-rotate` (every `/uid-rotate-token` is refused) options of the auth method.
    pub fn add_universal_identity_auth_with(
        &self,
        access_id: &str,
        deny_inheritance: bool,
        deny_rotate: bool,
    ) -> String {
        self.add_auth_method(
            access_id,
            AuthMethod::UniversalIdentity {
                deny_inheritance,
                deny_rotate,
            },
        );
        self.issue_uid_token(access_id)
    }

    /// Registers an `aws_iam` auth method; empty `bound_arns` accepts any signer.
    pub fn add_aws_iam_auth(&self, access_id: &str, bound_arns: &[&str]) {
        self.add_auth_method(
            access_id,
            AuthMethod::AwsIam {
                bound_arns: owned(bound_arns),
            },
        );
    }

    /// Registers a `gcp` auth method for ID tokens of `audience`; empty
    /// `bound_service_accounts` accepts any.
    pub fn add_gcp_auth(&self, access_id: &str, audience: &str, bound_service_accounts: &[&str]) {
        self.add_auth_method(
            access_id,
            AuthMethod::Gcp {
                audience: audience.to_owned(),
                bound_service_accounts: owned(bound_service_accounts),
            },
        );
    }

    /// Grants identities of `access_id` read on items matching `path_pattern` (exact name,
    /// a prefix ending in `/*`, or `/*` for all). A non-empty `namespaces` limits the grant to
    /// tokens whose k8s namespace sub-claim is listed.
    pub fn grant_read(&self, access_id: &str, path_pattern: &str, namespaces: &[&str]) {
        self.lock()
            .add_grant(access_id, path_pattern, owned(namespaces));
    }
}
