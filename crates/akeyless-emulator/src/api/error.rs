//! The commands the emulator implements and the errors they answer with, worded and coded
//! like Akeyless's own.

use http::StatusCode;

/// The commands the emulator implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Auth,
    ValidateToken,
    DescribeItem,
    GetSecretValue,
    GetRotatedSecretValue,
    GetCertificateValue,
    GetDynamicSecretValue,
    GetPkiCertificate,
    UidRotateToken,
}

impl Command {
    pub(crate) fn from_path(path: &str) -> Option<Self> {
        Some(match path {
            "/auth" => Self::Auth,
            "/validate-token" => Self::ValidateToken,
            "/describe-item" => Self::DescribeItem,
            "/get-secret-value" => Self::GetSecretValue,
            "/get-rotated-secret-value" => Self::GetRotatedSecretValue,
            "/get-certificate-value" => Self::GetCertificateValue,
            "/get-dynamic-secret-value" => Self::GetDynamicSecretValue,
            "/get-pki-certificate" => Self::GetPkiCertificate,
            "/uid-rotate-token" => Self::UidRotateToken,
            _ => return None,
        })
    }

    /// Prefix of error messages, in the style of Akeyless's own.
    fn failure(self) -> &'static str {
        match self {
            Self::Auth => "failed to authenticate",
            Self::ValidateToken => "failed to validate token",
            Self::DescribeItem => "failed to obtain item description",
            Self::GetSecretValue => "failed to get secret value",
            Self::GetRotatedSecretValue => "failed to get rotated secret value",
            Self::GetCertificateValue => "failed to get certificate value",
            Self::GetDynamicSecretValue => "failed to get dynamic secret value",
            Self::GetPkiCertificate => "failed to get pki certificate",
            Self::UidRotateToken => "failed to rotate token",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ErrorKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
}

/// A failed command, rendered as `{"error": "..."}` by [`ApiError::render`].
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(super) kind: ErrorKind,
    pub(super) message: String,
}

impl ApiError {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::BadRequest,
            message: message.into(),
        }
    }

    pub(super) fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Unauthorized,
            message: message.into(),
        }
    }

    pub(super) fn forbidden(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Forbidden,
            message: message.into(),
        }
    }

    pub(super) fn not_found(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::NotFound,
            message: message.into(),
        }
    }

    /// Status and message, e.g. `failed to get secret value: Status 404 Not Found,
    /// Error: NotFound. Message: item /x not found`.
    pub(crate) fn render(&self, command: Option<Command>) -> (StatusCode, String) {
        let (status, code) = match self.kind {
            ErrorKind::BadRequest => (StatusCode::BAD_REQUEST, "BadRequest"),
            ErrorKind::Unauthorized => (StatusCode::UNAUTHORIZED, "UnauthorizedAccess"),
            ErrorKind::Forbidden => (StatusCode::FORBIDDEN, "Forbidden"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "NotFound"),
        };
        let prefix = command.map_or("failed to process request", Command::failure);
        let message = format!(
            "{prefix}: Status {} {}, Error: {code}. Message: {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            self.message
        );
        (status, message)
    }
}

pub(super) type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_formats_like_akeyless() {
        let (status, message) =
            ApiError::not_found("item /x not found").render(Some(Command::DescribeItem));
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            message,
            "failed to obtain item description: Status 404 Not Found, Error: NotFound. Message: item /x not found"
        );
    }
}
