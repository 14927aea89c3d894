//! AWS Signature Version 4 (header signing), written from AWS's published algorithm: canonical
//! request → string to sign → derived signing key → HMAC-SHA256 signature. Used to sign the
//! (unsent) STS `GetCallerIdentity` request that Akeyless's `aws_iam` auth replays, and by the
//! emulator to verify it.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use secrecy::{ExposeSecret, SecretString};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// One request to sign. Header names may be in any case; `host` must be among them.
pub struct Request<'a> {
    pub method: &'a str,
    /// The URI path, already URI-encoded (`/` for STS).
    pub path: &'a str,
    /// The canonical query string (sorted, encoded), empty when there is none.
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    pub payload: &'a [u8],
}

/// Where and when a signature is valid.
pub struct Scope<'a> {
    /// `YYYYMMDD'T'HHMMSS'Z'`, the `X-Amz-Date` header.
    pub amz_date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

impl Scope<'_> {
    fn date(&self) -> &str {
        self.amz_date.get(..8).unwrap_or(self.amz_date)
    }

    /// `YYYYMMDD/<region>/<service>/aws4_request`.
    pub fn credential_scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date(),
            self.region,
            self.service
        )
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    #[allow(clippy::expect_used)] // HMAC takes keys of any length: this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Lower-cased names, trimmed values with inner runs of spaces collapsed, sorted by name.
fn canonical_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| {
            (
                name.trim().to_ascii_lowercase(),
                value.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    out.sort();
    out
}

/// The `SignedHeaders` value: the canonical header names joined by `;`.
pub fn signed_headers(headers: &[(String, String)]) -> String {
    canonical_headers(headers)
        .into_iter()
        .map(|(n, _)| n)
        .collect::<Vec<_>>()
        .join(";")
}

pub fn canonical_request(request: &Request<'_>) -> String {
    let headers = canonical_headers(request.headers);
    let mut out = format!("{}\n{}\n{}\n", request.method, request.path, request.query);
    for (name, value) in &headers {
        out.push_str(name);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers(request.headers));
    out.push('\n');
    out.push_str(&sha256_hex(request.payload));
    out
}

pub fn string_to_sign(scope: &Scope<'_>, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        scope.amz_date,
        scope.credential_scope(),
        sha256_hex(canonical_request.as_bytes())
    )
}

fn signing_key(secret_access_key: &SecretString, scope: &Scope<'_>) -> [u8; 32] {
    let k_secret = format!("AWS4{}", secret_access_key.expose_secret());
    let k_date = hmac(k_secret.as_bytes(), scope.date().as_bytes());
    let k_region = hmac(&k_date, scope.region.as_bytes());
    let k_service = hmac(&k_region, scope.service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// The hex signature of `request`.
pub fn signature(
    secret_access_key: &SecretString,
    scope: &Scope<'_>,
    request: &Request<'_>,
) -> String {
    let to_sign = string_to_sign(scope, &canonical_request(request));
    hex::encode(hmac(
        &signing_key(secret_access_key, scope),
        to_sign.as_bytes(),
    ))
}

/// The `Authorization` header value.
pub fn authorization(
    access_key_id: &str,
    secret_access_key: &SecretString,
    scope: &Scope<'_>,
    request: &Request<'_>,
) -> String {
    format!(
        "{ALGORITHM} Credential={access_key_id}/{}, SignedHeaders={}, Signature={}",
        scope.credential_scope(),
        signed_headers(request.headers),
        signature(secret_access_key, scope, request)
    )
}

/// The parts of an `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub struct ParsedAuthorization {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Parses `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
pub fn parse_authorization(value: &str) -> Option<ParsedAuthorization> {
    let rest = value.trim().strip_prefix(ALGORITHM)?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    let mut scope = credential?.split('/');
    let parsed = ParsedAuthorization {
        access_key_id: scope.next()?.to_string(),
        date: scope.next()?.to_string(),
        region: scope.next()?.to_string(),
        service: scope.next()?.to_string(),
        signed_headers: signed?.split(';').map(str::to_string).collect(),
        signature: signature?.to_string(),
    };
    (scope.next()? == "aws4_request" && scope.next().is_none()).then_some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The "GET Object" example of Amazon S3's "Signature Calculations for the Authorization
    /// Header: Transferring Payload in a Single Chunk" page: the expected hash of the canonical
    /// request (in the string to sign) and the signature are the values printed there.
    #[test]
    fn aws_documented_example_get_object() {
        let headers: Vec<(String, String)> = [
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Range", "bytes=0-9"),
            (
                "x-amz-content-sha256",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            ("x-amz-date", "20130524T000000Z"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let request = Request {
            method: "GET",
            path: "/test.txt",
            query: "",
            headers: &headers,
            payload: b"",
        };
        let scope = Scope {
            amz_date: "20130524T000000Z",
            region: "us-east-1",
            service: "s3",
        };
        assert_eq!(
            string_to_sign(&scope, &canonical_request(&request)),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n\
             7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
        );
        let secret = SecretString::from("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_string());
        assert_eq!(
            signature(&secret, &scope, &request),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        let header = authorization("AKIAIOSFODNN7EXAMPLE", &secret, &scope, &request);
        assert_eq!(
            header,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        let parsed = parse_authorization(&header).unwrap();
        assert_eq!(
            (parsed.access_key_id.as_str(), parsed.region.as_str()),
            ("AKIAIOSFODNN7EXAMPLE", "us-east-1")
        );
        assert_eq!(parsed.signed_headers.len(), 4);
    }

    /// The SigV4 test suite's `get-vanilla` case (credentials AKIDEXAMPLE, service `service`).
    #[test]
    fn aws_test_suite_get_vanilla() {
        let headers = vec![
            ("Host".to_string(), "example.amazonaws.com".to_string()),
            ("X-Amz-Date".to_string(), "20150830T123600Z".to_string()),
        ];
        let request = Request {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            payload: b"",
        };
        let scope = Scope {
            amz_date: "20150830T123600Z",
            region: "us-east-1",
            service: "service",
        };
        let secret = SecretString::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_string());
        assert_eq!(
            signature(&secret, &scope, &request),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn malformed_authorization_is_rejected() {
        assert_eq!(parse_authorization("Bearer x"), None);
        assert_eq!(
            parse_authorization(
                "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/sts, SignedHeaders=host, Signature=00"
            ),
            None
        );
    }
}
