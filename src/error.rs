//! The public error codes of a mount (interface §4). Every layer has its own error type; each is
//! converted once into a [`MountError`] carrying one of these codes, which the server turns into a
//! gRPC status `[Code] message` and which labels logs and metrics.

use std::fmt;

/// What went wrong with a mount, in the words of the public contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidConfig,
    AuthFailed,
    PermissionDenied,
    NotFound,
    Throttled,
    BackendUnavailable,
    Timeout,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidConfig => "InvalidConfig",
            ErrorCode::AuthFailed => "AuthFailed",
            ErrorCode::PermissionDenied => "PermissionDenied",
            ErrorCode::NotFound => "NotFound",
            ErrorCode::Throttled => "Throttled",
            ErrorCode::BackendUnavailable => "BackendUnavailable",
            ErrorCode::Timeout => "Timeout",
            ErrorCode::Internal => "Internal",
        }
    }

    /// The gRPC status code for this error. `BackendUnavailable` deliberately maps to `Internal`,
    /// not `Unavailable`: the driver's client retries `Unavailable` as "provider not ready", which
    /// would triple the load on a failing backend.
    pub fn grpc_code(self) -> tonic::Code {
        match self {
            ErrorCode::InvalidConfig => tonic::Code::InvalidArgument,
            ErrorCode::AuthFailed => tonic::Code::Unauthenticated,
            ErrorCode::PermissionDenied => tonic::Code::PermissionDenied,
            ErrorCode::NotFound => tonic::Code::NotFound,
            ErrorCode::Throttled => tonic::Code::ResourceExhausted,
            ErrorCode::BackendUnavailable => tonic::Code::Internal,
            ErrorCode::Timeout => tonic::Code::DeadlineExceeded,
            ErrorCode::Internal => tonic::Code::Internal,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed mount: a public code and a message a user can act on. The message never holds a
/// secret value, key or token (every layer builds its messages from names and statuses only).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("[{code}] {message}")]
pub struct MountError {
    pub code: ErrorCode,
    pub message: String,
}

impl MountError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        MountError {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        MountError::new(ErrorCode::InvalidConfig, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        MountError::new(ErrorCode::Internal, message)
    }

    pub fn to_status(&self) -> tonic::Status {
        tonic::Status::new(self.code.grpc_code(), self.to_string())
    }
}
