//! The emulated AWS STS and the check Akeyless's `aws_iam` auth method makes:
//!
//! - AWS STS `AssumeRoleWithWebIdentity` (`POST /aws-sts`, form body, XML answer like AWS): takes a
//!   service-account token minted by the emulator's issuer for audience `sts.amazonaws.com` whose
//!   subject a registered role trusts, and issues temporary credentials. `/auth` `aws_iam` then
//!   decodes the `cloud-id`, **verifies the SigV4 signature** of the unsent GetCallerIdentity with
//!   the secret it issued, and binds the role ARN.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::SecretString;
use serde_json::Value;

use crate::jwt::{has_audience, k8s_subject};
use crate::state::{AwsKey, EmulatorState};
use crate::util::{parse_rfc3339, random_alphanumeric, rfc3339};

/// The only STS call an `aws_iam` cloud-id may carry, as AWS documents it.
const GET_CALLER_IDENTITY_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// The audience STS requires on EKS web-identity tokens.
const STS_AUDIENCE: &str = "sts.amazonaws.com";
/// How far a signed request's date may be from now.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

fn sts_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>\
         <Code>{code}</Code><Message>{message}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        random_alphanumeric(16)
    );
    (status, [("content-type", "text/xml")], body).into_response()
}

/// `POST /aws-sts`: AssumeRoleWithWebIdentity.
pub(crate) async fn sts(State(state): State<EmulatorState>, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if field("Action") != "AssumeRoleWithWebIdentity" || field("Version") != "2011-06-15" {
        return sts_error(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            "only AssumeRoleWithWebIdentity (Version 2011-06-15) is emulated",
        );
    }
    let session_name = field("RoleSessionName");
    if session_name.len() < 2
        || session_name.len() > 64
        || !session_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c))
    {
        return sts_error(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            "RoleSessionName must match [\\w+=,.@-]{2,64}",
        );
    }
    let role_arn = field("RoleArn").to_owned();
    let Some(trusted_subject) = state.lock().aws_roles.get(&role_arn).cloned() else {
        return sts_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
        );
    };
    let now = SystemTime::now();
    let Ok(claims) = state.key().verify(field("WebIdentityToken"), now) else {
        return sts_error(
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
            "The web identity token is not valid",
        );
    };
    let subject = k8s_subject(&claims).map(|s| {
        format!(
            "system:serviceaccount:{}:{}",
            s.namespace, s.service_account
        )
    });
    if !has_audience(&claims, STS_AUDIENCE) || subject.as_deref() != Some(&trusted_subject) {
        return sts_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
        );
    }
    let access_key_id = format!("ASIA{}", random_alphanumeric(16).to_ascii_uppercase());
    let secret_access_key = random_alphanumeric(40);
    let session_token = random_alphanumeric(64);
    state.lock().aws_keys.insert(
        access_key_id.clone(),
        AwsKey {
            secret_access_key: secret_access_key.clone(),
            session_token: Some(session_token.clone()),
            arn: role_arn.clone(),
        },
    );
    let expiration = rfc3339(now + Duration::from_secs(3600));
    let body = format!(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
         <AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>{access_key_id}</AccessKeyId>\
         <SecretAccessKey>{secret_access_key}</SecretAccessKey><SessionToken>{session_token}</SessionToken>\
         <Expiration>{expiration}</Expiration></Credentials><AssumedRoleUser>\
         <Arn>{role_arn}/{session_name}</Arn></AssumedRoleUser></AssumeRoleWithWebIdentityResult>\
         </AssumeRoleWithWebIdentityResponse>"
    );
    (StatusCode::OK, [("content-type", "text/xml")], body).into_response()
}

/// The region an STS host belongs to (`sts.amazonaws.com` is us-east-1), if it is one.
fn sts_region(host: &str) -> Option<&str> {
    if host == "sts.amazonaws.com" {
        return Some("us-east-1");
    }
    let rest = host.strip_prefix("sts.")?;
    rest.strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))
        .filter(|r| !r.is_empty() && !r.contains('.'))
}

/// The signed GetCallerIdentity request an `aws_iam` `cloud-id` carries, decoded.
struct SignedRequest {
    url: url::Url,
    host: String,
    region: String,
    body: String,
    headers: BTreeMap<String, Vec<String>>,
}

impl SignedRequest {
    /// Decodes the base64 JSON document of a `cloud-id`: a POST of GetCallerIdentity to an AWS
    /// STS endpoint, with its headers. Errors never quote the submitted values.
    fn decode(cloud_id: &str) -> Result<Self, String> {
        let b64 = |v: &Value, what: &str| -> Result<String, String> {
            v.as_str()
                .and_then(|s| STANDARD.decode(s).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| format!("{what} must be base64 text"))
        };
        let document: Value = STANDARD
            .decode(cloud_id)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("cloud-id must be base64 of a JSON document")?;
        if document.get("sts_request_method").and_then(Value::as_str) != Some("POST") {
            return Err("sts_request_method must be POST".into());
        }
        let url = b64(&document["sts_request_url"], "sts_request_url")?;
        let url = url::Url::parse(&url).map_err(|_| "sts_request_url is not a URL".to_string())?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let region = sts_region(&host)
            .ok_or("sts_request_url is not an AWS STS endpoint")?
            .to_owned();
        let body = b64(&document["sts_request_body"], "sts_request_body")?;
        if body != GET_CALLER_IDENTITY_BODY {
            return Err("the signed request is not GetCallerIdentity".into());
        }
        let headers: BTreeMap<String, Vec<String>> = serde_json::from_str(&b64(
            &document["sts_request_headers"],
            "sts_request_headers",
        )?)
        .map_err(|_| "sts_request_headers must be a JSON map of string lists".to_string())?;
        Ok(Self {
            url,
            host,
            region,
            body,
            headers,
        })
    }

    /// The first value of a header, by case-insensitive name.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.first())
            .map(String::as_str)
    }
}

/// The time of an `X-Amz-Date` (`20240102T030405Z`).
fn amz_date_time(amz_date: &str) -> Option<SystemTime> {
    parse_rfc3339(&format!(
        "{}-{}-{}T{}:{}:{}Z",
        amz_date.get(0..4).unwrap_or(""),
        amz_date.get(4..6).unwrap_or(""),
        amz_date.get(6..8).unwrap_or(""),
        amz_date.get(9..11).unwrap_or(""),
        amz_date.get(11..13).unwrap_or(""),
        amz_date.get(13..15).unwrap_or(""),
    ))
}

/// Checks an `aws_iam` `cloud-id` as Akeyless would by replaying it, but offline: the
/// signature must verify with the secret of credentials the emulator knows. Returns the ARN
/// the credentials act as. Errors never quote the submitted values.
pub(crate) fn verify_aws_cloud_id(
    state: &EmulatorState,
    cloud_id: &str,
    now: SystemTime,
) -> Result<String, String> {
    let signed_request = SignedRequest::decode(cloud_id)?;
    let SignedRequest {
        url,
        host,
        region,
        body,
        ..
    } = &signed_request;
    let header = |name: &str| signed_request.header(name);
    let authorization = header("authorization")
        .and_then(sigv4::parse_authorization)
        .ok_or("the request carries no SigV4 Authorization header")?;
    if authorization.service != "sts" || authorization.region != *region {
        return Err("the signature's scope is not STS in the endpoint's region".into());
    }
    let amz_date = header("x-amz-date").ok_or("the request has no X-Amz-Date")?;
    let signed_at = amz_date_time(amz_date).ok_or("X-Amz-Date is malformed")?;
    let skew = now
        .duration_since(signed_at)
        .or_else(|e| Ok::<_, ()>(e.duration()))
        .unwrap_or_default();
    if skew > MAX_CLOCK_SKEW || !amz_date.starts_with(&authorization.date) {
        return Err("the signed request is expired or not yet valid".into());
    }
    let key = state
        .lock()
        .aws_keys
        .get(&authorization.access_key_id)
        .cloned()
        .ok_or("the signing access key is not known to AWS")?;
    let signed = &authorization.signed_headers;
    if !signed.iter().any(|h| h == "host") || !signed.iter().any(|h| h == "x-amz-date") {
        return Err("host and x-amz-date must be signed".into());
    }
    if let Some(expected) = &key.session_token
        && (header("x-amz-security-token") != Some(expected.as_str())
            || !signed.iter().any(|h| h == "x-amz-security-token"))
    {
        return Err("the security token is missing or invalid".into());
    }
    let mut canonical = Vec::new();
    for name in signed {
        let value = if name == "host" {
            host.clone()
        } else {
            header(name)
                .ok_or("a signed header is missing from the request")?
                .to_owned()
        };
        canonical.push((name.clone(), value));
    }
    let request = sigv4::Request {
        method: "POST",
        path: url.path(),
        query: url.query().unwrap_or(""),
        headers: &canonical,
        payload: body.as_bytes(),
    };
    let scope = sigv4::Scope {
        amz_date,
        region,
        service: "sts",
    };
    let expected = sigv4::signature(
        &SecretString::from(key.secret_access_key.clone()),
        &scope,
        &request,
    );
    if expected != authorization.signature {
        return Err("the request signature does not match".into());
    }
    Ok(key.arn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use serde_json::json;

    /// An access key of the test's AWS user: its secret, and a session token for temporary
    /// credentials.
    struct Creds {
        secret: &'static str,
        session: Option<&'static str>,
    }

    fn creds(secret: &'static str, session: Option<&'static str>) -> Creds {
        Creds { secret, session }
    }

    /// A client's `aws_iam` cloud-id for `creds`, signed for `region` at `now` (the document the
    /// provider sends, signed with the same SigV4 code).
    fn cloud_id(creds: &Creds, region: &str, now: SystemTime) -> SecretString {
        let date = rfc3339(now).replace(['-', ':'], "");
        let url = format!("https://sts.{region}.amazonaws.com/");
        let mut headers = vec![
            (
                "Content-Type".to_string(),
                "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            ),
            ("Host".to_string(), format!("sts.{region}.amazonaws.com")),
            ("X-Amz-Date".to_string(), date.clone()),
        ];
        if let Some(token) = creds.session {
            headers.push(("X-Amz-Security-Token".to_string(), token.to_string()));
        }
        let request = sigv4::Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            payload: GET_CALLER_IDENTITY_BODY.as_bytes(),
        };
        let scope = sigv4::Scope {
            amz_date: &date,
            region,
            service: "sts",
        };
        let secret = SecretString::from(creds.secret.to_string());
        let signed = sigv4::authorization("AKIATEST0000000001", &secret, &scope, &request);
        let mut sent: BTreeMap<String, Vec<String>> = headers
            .into_iter()
            .filter(|(name, _)| name != "Host")
            .map(|(name, value)| (name, vec![value]))
            .collect();
        sent.insert("Authorization".into(), vec![signed]);
        let document = json!({
            "sts_request_method": "POST",
            "sts_request_url": STANDARD.encode(&url),
            "sts_request_body": STANDARD.encode(GET_CALLER_IDENTITY_BODY),
            "sts_request_headers": STANDARD.encode(serde_json::to_string(&sent).unwrap()),
        });
        SecretString::from(STANDARD.encode(document.to_string()))
    }

    /// Re-encodes a cloud-id after `edit` changed its decoded document.
    fn tamper(id: &SecretString, edit: impl FnOnce(&mut Value)) -> String {
        let mut doc: Value =
            serde_json::from_slice(&STANDARD.decode(id.expose_secret()).unwrap()).unwrap();
        edit(&mut doc);
        STANDARD.encode(doc.to_string())
    }

    #[test]
    fn verifies_sigv4_and_rejects_tampering() {
        let state = EmulatorState::new();
        state.add_aws_user("AKIATEST0000000001", "right", "arn:aws:iam::1:user/u");
        let now = SystemTime::now();
        let good = cloud_id(&creds("right", None), "us-east-1", now);
        assert_eq!(
            verify_aws_cloud_id(&state, good.expose_secret(), now).unwrap(),
            "arn:aws:iam::1:user/u"
        );
        let wrong_secret = cloud_id(&creds("wrong", None), "us-east-1", now);
        let e = verify_aws_cloud_id(&state, wrong_secret.expose_secret(), now).unwrap_err();
        assert!(e.contains("signature"), "{e}");
        // Another region's endpoint than the one signed for.
        let moved = tamper(&good, |d| {
            d["sts_request_url"] = STANDARD
                .encode("https://sts.eu-west-1.amazonaws.com/")
                .into()
        });
        assert!(verify_aws_cloud_id(&state, &moved, now).is_err());
        // Another action than GetCallerIdentity.
        let other_body = tamper(&good, |d| {
            d["sts_request_body"] = STANDARD
                .encode("Action=AssumeRole&Version=2011-06-15")
                .into()
        });
        assert!(verify_aws_cloud_id(&state, &other_body, now).is_err());
        // Replayed an hour later.
        let late = now + Duration::from_secs(3600);
        let e = verify_aws_cloud_id(&state, good.expose_secret(), late).unwrap_err();
        assert!(e.contains("expired"), "{e}");
        // Temporary credentials need their session token.
        state.lock().aws_keys.insert(
            "AKIATEST0000000001".into(),
            AwsKey {
                secret_access_key: "right".into(),
                session_token: Some("session".into()),
                arn: "arn:aws:iam::1:role/r".into(),
            },
        );
        let e = verify_aws_cloud_id(&state, good.expose_secret(), now).unwrap_err();
        assert!(e.contains("security token"), "{e}");
        let with_token = cloud_id(&creds("right", Some("session")), "us-east-1", now);
        assert!(verify_aws_cloud_id(&state, with_token.expose_secret(), now).is_ok());
        assert!(verify_aws_cloud_id(&state, "not base64!", now).is_err());
    }
}
