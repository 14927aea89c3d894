//! Read grants: an access id's permission on an item path pattern, optionally limited by the
//! token's namespace sub-claim.

use super::records::Identity;

/// Read permission for one access id on a path pattern, optionally limited by namespace
/// sub-claim (how Akeyless role rules with sub-claims behave).
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    pub(super) access_id: String,
    pub(super) pattern: String,
    pub(super) namespaces: Vec<String>,
}

impl Grant {
    pub(super) fn allows(&self, identity: &Identity, item_name: &str) -> bool {
        self.access_id == identity.access_id
            && pattern_matches(&self.pattern, item_name)
            && (self.namespaces.is_empty()
                || identity
                    .namespace
                    .as_ref()
                    .is_some_and(|ns| self.namespaces.contains(ns)))
    }
}

/// `/*` matches everything, `/a/*` everything under `/a/`, anything else is an exact name.
pub(super) fn pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) if prefix.ends_with('/') => name.starts_with(prefix),
        _ => pattern == name,
    }
}
