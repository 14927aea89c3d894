//! Per-pod leases: a dynamic secret's credential or a PKI certificate is minted once per pod
//! and kept (in the provider's [`crate::cache::LeaseCache`]s) until two-thirds of its lease or
//! lifetime has passed, so the driver's rotation polls don't mint a new one each time. The
//! generic cache stays in `cache/lease.rs` (a leaf that knows no backend); what a lease is keyed
//! by and how its value is minted lives here, beside the reader that needs it.

use crate::cache::{LeaseKey, renew_at, reported_lease};
use crate::certs::{self, CertificateMaterial};
use crate::error::{ErrorCode, MountError};
use crate::secret::SecretString;
use crate::spec;

use super::read::{Reader, item_error, labels_for};

impl Reader<'_> {
    pub(super) async fn dynamic(
        &self,
        name: &str,
        args: &[String],
    ) -> Result<SecretString, MountError> {
        let objects = &self.spec.objects;
        let ttl_override = objects
            .iter()
            .filter(|o| o.secret_path == name && o.args == args)
            .find_map(|o| o.ttl);
        let fetch = || async {
            let value = self
                .client
                .get_dynamic_secret_value(self.token, name, args)
                .await
                .map_err(|e| item_error(&labels_for(objects, name), e))?;
            let lease = reported_lease(&value)
                .or(ttl_override)
                .unwrap_or(self.ctx.dynamic_default_ttl);
            Ok::<_, MountError>((value, renew_at(self.now, lease)))
        };
        match self.pod_uid {
            Some(uid) => {
                let key = self.lease_key(uid, name, args.to_vec());
                let (value, _) = self
                    .ctx
                    .dynamic_leases
                    .get_or_fetch(&key, self.now, fetch)
                    .await?;
                Ok(value)
            }
            // Without podInfoOnMount there is no pod to tie a lease to: every mount mints anew.
            None => fetch().await.map(|(v, _)| v),
        }
    }

    pub(super) async fn pki(
        &self,
        issuer: &str,
        options: &spec::PkiOptions,
        ttl_seconds: Option<u64>,
    ) -> Result<CertificateMaterial, MountError> {
        let objects = &self.spec.objects;
        let fetch = || async {
            let request = certs::new_certificate_request(options).map_err(|why| {
                MountError::invalid(format!("{}: {why}", labels_for(objects, issuer)))
            })?;
            let issued = self
                .client
                .get_pki_certificate(self.token, issuer, &request.csr_pem, ttl_seconds)
                .await
                .map_err(|e| item_error(&labels_for(objects, issuer), e))?;
            let material = CertificateMaterial {
                certificate_pem: issued.certificate_pem,
                issuer_pem: issued.issuer_pem,
                private_key_pem: Some(request.private_key_pem),
            };
            let leaf = rustls_pki_types::pem::PemObject::pem_slice_iter(
                material.certificate_pem.as_bytes(),
            )
            .next()
            .and_then(Result::ok)
            .map(|c: rustls_pki_types::CertificateDer<'static>| c);
            let renew_at = match leaf.map(|c| certs::validity(&c)) {
                Some(Ok((not_before, not_after))) => certs::renewal_time(not_before, not_after),
                _ => {
                    return Err(MountError::new(
                        ErrorCode::BackendUnavailable,
                        format!(
                            "{}: the issued certificate cannot be parsed",
                            labels_for(objects, issuer)
                        ),
                    ));
                }
            };
            Ok::<_, MountError>((material, renew_at))
        };
        match self.pod_uid {
            Some(uid) => {
                let mut request = vec![format!("{options:?}")];
                request.extend(ttl_seconds.map(|t| t.to_string()));
                let key = self.lease_key(uid, issuer, request);
                let (material, _) = self
                    .ctx
                    .pki_leases
                    .get_or_fetch(&key, self.now, fetch)
                    .await?;
                Ok(material)
            }
            None => fetch().await.map(|(m, _)| m),
        }
    }

    fn lease_key(&self, pod_uid: &str, item: &str, request: Vec<String>) -> LeaseKey {
        LeaseKey {
            pod_uid: pod_uid.to_string(),
            gateways: self.spec.connection.gateways.clone(),
            access_id: self.access_id.to_string(),
            item: item.to_string(),
            request,
        }
    }
}
