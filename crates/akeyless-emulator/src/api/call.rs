//! One command's execution context: who the caller is, and the token and permission checks
//! every item command runs before it looks at an item.

use std::time::SystemTime;

use super::error::{ApiError, ApiResult};
use super::request::non_empty;
use crate::items::{Item, ItemType, StoredValue};
use crate::state::{EmulatorState, Identity, Session};
use crate::util::normalize_name;

/// One command's execution context.
pub(super) struct Call<'a> {
    pub(super) state: &'a EmulatorState,
    /// Set once the caller is known (successful /auth, or an accepted token).
    pub(super) identity: Option<Identity>,
}

impl Call<'_> {
    /// The session of an issued token (expired or not); 401 for missing or unknown tokens.
    pub(super) fn session(&self, token: &Option<String>) -> ApiResult<Session> {
        let token = non_empty(token).ok_or_else(|| ApiError::unauthorized("missing token"))?;
        self.state
            .lock()
            .sessions
            .get(token)
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("invalid token"))
    }

    /// Resolves the token to its identity, or 401.
    pub(super) fn authenticate(&mut self, token: &Option<String>) -> ApiResult<Identity> {
        let session = self.session(token)?;
        if session.expires_at <= SystemTime::now() {
            self.state.lock().expired_token_presentations += 1;
            return Err(ApiError::unauthorized("token expired"));
        }
        self.identity = Some(session.identity.clone());
        Ok(session.identity)
    }

    /// Authorizes, looks up every name and runs `f` on the items (in `names` order) under the
    /// state lock: 401 if any name is unreadable (before revealing whether anything exists),
    /// then 404 if any is missing.
    pub(super) fn with_items<R>(
        &mut self,
        token: &Option<String>,
        names: &[&str],
        f: impl FnOnce(&[&Item]) -> ApiResult<R>,
    ) -> ApiResult<R> {
        let identity = self.authenticate(token)?;
        let data = self.state.lock();
        let normalized: Vec<String> = names.iter().map(|n| normalize_name(n)).collect();
        if let Some(denied) = normalized.iter().find(|n| !data.can_read(&identity, n)) {
            return Err(ApiError::unauthorized(data.read_denial(&identity, denied)));
        }
        let items = normalized
            .iter()
            .map(|n| {
                data.items
                    .get(&data.item_key(&identity.access_id, n))
                    .ok_or_else(|| ApiError::not_found(format!("item {n} not found")))
            })
            .collect::<ApiResult<Vec<&Item>>>()?;
        f(&items)
    }

    pub(super) fn with_item<R>(
        &mut self,
        token: &Option<String>,
        name: &str,
        f: impl FnOnce(&Item) -> ApiResult<R>,
    ) -> ApiResult<R> {
        self.with_items(token, &[name], |items| match items {
            [item] => f(item),
            _ => Err(ApiError::not_found(format!(
                "item {} not found",
                normalize_name(name)
            ))),
        })
    }

    /// A wrong item type for the command is a 400: the request cannot succeed as sent.
    pub(super) fn expect_type(name: &str, item: &Item, expected: ItemType) -> ApiResult<()> {
        let actual = item.item_type();
        if actual == expected {
            Ok(())
        } else {
            Err(ApiError::bad_request(format!(
                "item {} is a {}, not a {}",
                normalize_name(name),
                actual.as_str(),
                expected.as_str()
            )))
        }
    }

    pub(super) fn version_value<'i>(
        name: &str,
        item: &'i Item,
        version: u32,
    ) -> ApiResult<&'i StoredValue> {
        item.version(version).map(|v| &v.value).ok_or_else(|| {
            ApiError::not_found(format!(
                "item {} has no version {version} (last version is {})",
                normalize_name(name),
                item.last_version()
            ))
        })
    }
}
