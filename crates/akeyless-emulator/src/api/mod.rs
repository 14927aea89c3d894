//! The Akeyless API commands: typed request bodies, validation order and response shapes.
//!
//! Checks run in the order that gives Akeyless's statuses: body shape (400), token (401),
//! read permission (401, whether or not the item exists), existence (404), then item type (400)
//! and version (404). Error messages never quote submitted secrets or tokens.
//!
//! Files, bottom-up: `error` (commands and their errors), `request` (decoding), `fields` (the
//! accepted fields), `call` (token and permission checks), `login` (credentials per access
//! type), then the commands: `auth`, `items`, `pki`; `execute` runs one. This file only
//! declares them and re-exports what the rest of the crate uses.

mod auth;
mod call;
mod error;
mod execute;
mod fields;
mod items;
mod login;
mod pki;
mod request;

pub(crate) use error::{ApiError, Command};
pub(crate) use execute::execute;
pub use fields::accepted_request_fields;
pub(crate) use login::{ReviewOutcome, review_request};
pub(crate) use request::redact_serde_error;
