//! Store errors. Every store fault is a fault of the infrastructure, not of the recording, so the
//! worker retries it and, if it persists, dead-letters the job with the bytes still in staging.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use std::fmt::Debug;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("s3 {op}: no such object {bucket}/{key}")]
    NotFound { op: &'static str, bucket: String, key: String },
    #[error("s3 {op}: the object changed since it was read ({detail})")]
    Changed { op: &'static str, detail: String },
    #[error("s3 {op}: {code} (http {status}): {message}")]
    Service { op: &'static str, status: u16, code: String, message: String },
    #[error("s3 {op}: cannot reach the server: {detail}")]
    Transport { op: &'static str, detail: String },
    #[error("s3 {op}: {detail}")]
    Other { op: &'static str, detail: String },
    #[error("local file: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// Stable code for logs and attempt records.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "s3_not_found",
            Self::Changed { .. } => "s3_object_changed",
            Self::Service { .. } => "s3_service_error",
            Self::Transport { .. } => "s3_unreachable",
            Self::Other { .. } => "s3_error",
            Self::Io(_) => "local_io",
        }
    }
}

/// Maps an SDK error to a [`StoreError`]; `bucket`/`key` name the object for not-found errors.
pub(crate) fn classify<E>(
    op: &'static str,
    bucket: &str,
    key: &str,
    err: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> StoreError
where
    E: ProvideErrorMetadata + Debug + std::error::Error + 'static,
{
    match &err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().unwrap_or("unknown").to_string();
            let message = ctx.err().message().unwrap_or("").to_string();
            match (status, code.as_str()) {
                // A missing bucket is a configuration fault, not a missing object: it must not
                // dead-letter jobs as `staged_object_missing`.
                (_, "NoSuchBucket") => StoreError::Service { op, status, code, message },
                (404, _) | (_, "NoSuchKey") | (_, "NotFound") => {
                    StoreError::NotFound { op, bucket: bucket.into(), key: key.into() }
                }
                (412, _) | (_, "PreconditionFailed") => StoreError::Changed { op, detail: message },
                _ => StoreError::Service { op, status, code, message },
            }
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            StoreError::Transport { op, detail: error_chain(&err) }
        }
        _ => StoreError::Other { op, detail: error_chain(&err) },
    }
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}
