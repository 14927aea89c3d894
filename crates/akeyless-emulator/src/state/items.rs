//! Storing items: secrets and their versions, dynamic secrets, PKI issuers, accounts.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::data::account_item_key;
use super::handle::EmulatorState;
use crate::items::{ItemBody, StoredValue};
use crate::util::normalize_name;

impl EmulatorState {
    /// Creates the static secret or appends a version; returns the new version (1-based).
    pub fn put_static_secret(&self, name: &str, value: &str) -> u32 {
        self.lock()
            .append_version(name, StoredValue::Static(value.to_owned()))
    }

    /// Creates the rotated secret or appends a version whose value is e.g.
    /// `{"username": .., "password": ..}`; returns the new version.
    pub fn put_rotated_secret(&self, name: &str, value: Value) -> u32 {
        self.lock()
            .append_version(name, StoredValue::Rotated(value))
    }

    /// Creates the certificate item or appends a version; returns the new version.
    pub fn put_certificate(
        &self,
        name: &str,
        certificate_pem: &str,
        private_key_pem: Option<&str>,
    ) -> u32 {
        self.lock().append_version(
            name,
            StoredValue::Certificate {
                certificate_pem: certificate_pem.to_owned(),
                private_key_pem: private_key_pem.map(str::to_owned),
            },
        )
    }

    /// Creates (or replaces) a dynamic secret. Every fetch returns `template` with each string
    /// field named `password`, `token` or `secret` (at any depth) replaced by a fresh random
    /// value, plus `"id": "tmp.<random>"` and `"ttl_in_minutes": "<ttl>"`.
    pub fn put_dynamic_secret(&self, name: &str, template: Value, ttl: Duration) {
        self.lock().insert_item(
            normalize_name(name),
            ItemBody::Dynamic { template, ttl },
            SystemTime::now(),
        );
    }

    /// Creates (or replaces) a PKI certificate issuer with a fresh CA that signs CSRs for at
    /// most `max_ttl`. Returns the CA certificate (PEM).
    pub fn put_pki_issuer(&self, name: &str, max_ttl: Duration) -> String {
        let (ca_cert_pem, ca_key_pem) = crate::pki::new_ca(name);
        self.lock().insert_item(
            normalize_name(name),
            ItemBody::PkiIssuer {
                ca_cert_pem: ca_cert_pem.clone(),
                ca_key_pem,
                max_ttl,
            },
            SystemTime::now(),
        );
        ca_cert_pem
    }

    /// Puts `access_id` in `account` (not the default one): it sees only that account's items,
    /// stored with the `*_in` methods.
    pub fn set_account(&self, access_id: &str, account: &str) {
        self.lock()
            .accounts
            .insert(access_id.to_owned(), account.to_owned());
    }

    /// [`put_static_secret`](Self::put_static_secret) in `account`.
    pub fn put_static_secret_in(&self, account: &str, name: &str, value: &str) -> u32 {
        let key = account_item_key(Some(account), &normalize_name(name));
        self.lock()
            .append_version(&key, StoredValue::Static(value.to_owned()))
    }

    /// [`put_rotated_secret`](Self::put_rotated_secret) in `account`.
    pub fn put_rotated_secret_in(&self, account: &str, name: &str, value: Value) -> u32 {
        let key = account_item_key(Some(account), &normalize_name(name));
        self.lock()
            .append_version(&key, StoredValue::Rotated(value))
    }

    /// Deletes the item and all its versions (no-op if absent).
    pub fn delete_item(&self, name: &str) {
        self.lock().items.remove(&normalize_name(name));
    }

    /// Whether `/describe-item` answers a missing item with 200 and an empty object (as some
    /// gateways do) instead of 404.
    pub fn set_describe_missing_as_empty(&self, empty: bool) {
        self.lock().describe_missing_as_empty = empty;
    }
}
