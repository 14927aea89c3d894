//! Tokens: Universal Identity tokens, `t-` sessions and their lifetime, and the JWTs the
//! emulator signs as the cluster's issuer.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::handle::EmulatorState;
use super::records::UidToken;
use crate::jwt::ServiceAccountToken;
use crate::util::random_alphanumeric;

impl EmulatorState {
    /// Issues another Universal Identity token of `access_id` (as `uid-generate-token` does).
    pub(crate) fn issue_uid_token(&self, access_id: &str) -> String {
        let token = format!("u-{}", random_alphanumeric(24));
        self.lock().uid_tokens.insert(
            token.clone(),
            UidToken {
                access_id: access_id.to_owned(),
                valid: true,
            },
        );
        token
    }

    /// Whether a Universal Identity token is still accepted.
    pub fn uid_token_is_valid(&self, token: &str) -> bool {
        self.lock().uid_tokens.get(token).is_some_and(|t| t.valid)
    }

    /// Revokes one Universal Identity token.
    pub fn revoke_uid_token(&self, token: &str) {
        if let Some(t) = self.lock().uid_tokens.get_mut(token) {
            t.valid = false;
        }
    }

    /// Revokes every Universal Identity token of `access_id` except `keep`.
    pub fn revoke_uid_tokens_except(&self, access_id: &str, keep: &str) {
        for (token, t) in self.lock().uid_tokens.iter_mut() {
            if t.access_id == access_id && token != keep {
                t.valid = false;
            }
        }
    }

    /// How many valid Universal Identity tokens `access_id` has.
    pub fn valid_uid_tokens(&self, access_id: &str) -> usize {
        self.lock()
            .uid_tokens
            .values()
            .filter(|t| t.valid && t.access_id == access_id)
            .count()
    }

    /// Mints a pod-bound service-account JWT as the cluster's issuer would, signed with the
    /// emulator's key (k8s auth verifies signature, expiry and, if configured, audience).
    pub fn issue_service_account_token(
        &self,
        namespace: &str,
        service_account: &str,
        pod_name: &str,
        pod_uid: &str,
        audience: &str,
        ttl: Duration,
    ) -> String {
        let spec = ServiceAccountToken {
            namespace,
            service_account,
            pod_name,
            pod_uid,
            audience,
            ttl,
        };
        self.key().sign(&spec.claims(SystemTime::now()))
    }

    /// Signs arbitrary claims with the emulator's key (for `jwt` auth; include `sub` and `exp`).
    pub(crate) fn issue_jwt(&self, claims: Value) -> String {
        self.key().sign(&claims)
    }

    /// Lifetime of `t-` tokens issued by /auth from now on (default 1h).
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.lock().token_ttl = ttl;
    }

    /// Whether `/auth` answers carry `expiration` besides `creds.expiry` (default true). Off, the
    /// answer has only the fields of the published schema.
    pub fn set_auth_expiration_field(&self, send: bool) {
        self.lock().auth_expiration_field = send;
    }

    /// How many calls presented a `t-` token after it expired.
    pub fn expired_token_presentations(&self) -> usize {
        self.lock().expired_token_presentations
    }

    /// Forgets every issued token; their next use answers 401.
    pub fn revoke_all_tokens(&self) {
        self.lock().sessions.clear();
    }
}
