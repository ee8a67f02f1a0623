//! Errors as `application/problem+json` (RFC 9457), each with a stable machine code a client can
//! switch on (`code`), the HTTP status, and a sentence for a person.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Base of the `type` URIs: each code has its own.
const TYPE_BASE: &str = "https://recvault.invalid/problems/";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Problem {
    /// `https://recvault.invalid/problems/<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine code (the last segment of `type`).
    pub code: String,
    /// Ids the request named that the problem is about (unknown or foreign recordings).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<i64>,
}

/// Every way a request can fail, each with its status and code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MalformedJson(String),
    #[error("{0}")]
    BadQuery(String),
    #[error("{0}")]
    PageTooLarge(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{detail}")]
    UnknownRecordings { detail: String, ids: Vec<i64> },
    #[error("{detail}")]
    ForeignRecordings { detail: String, ids: Vec<i64> },
    #[error("{0}")]
    CaseAlreadyClosed(String),
    #[error("{0}")]
    RetentionLowering(String),
    #[error("{0}")]
    BundleNotReady(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::ForeignRecordings { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MalformedJson(_) | Self::BadQuery(_) | Self::PageTooLarge(_) => StatusCode::BAD_REQUEST,
            Self::Invalid(_) | Self::UnknownRecordings { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::CaseAlreadyClosed(_) | Self::RetentionLowering(_) | Self::BundleNotReady(_) => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::MalformedJson(_) => "malformed_json",
            Self::BadQuery(_) => "bad_query",
            Self::PageTooLarge(_) => "page_too_large",
            Self::Invalid(_) => "invalid_request",
            Self::UnknownRecordings { .. } => "unknown_recordings",
            Self::ForeignRecordings { .. } => "other_unit_recordings",
            Self::CaseAlreadyClosed(_) => "case_already_closed",
            Self::RetentionLowering(_) => "retention_lowering",
            Self::BundleNotReady(_) => "bundle_not_ready",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "A valid bearer token is required",
            Self::Forbidden(_) | Self::ForeignRecordings { .. } => "Not allowed for this principal",
            Self::NotFound(_) => "No such resource",
            Self::MalformedJson(_) => "The body is not the JSON this route takes",
            Self::BadQuery(_) => "The query string is not valid",
            Self::PageTooLarge(_) => "The page size is above the maximum",
            Self::Invalid(_) => "The request is not valid",
            Self::UnknownRecordings { .. } => "Recordings named in the request do not exist",
            Self::CaseAlreadyClosed(_) => "The case was closed before with other terms",
            Self::RetentionLowering(_) => "Retention can only be raised",
            Self::BundleNotReady(_) => "The bundle is not ready",
            Self::Unavailable(_) => "A service the API needs is unavailable",
            Self::Internal(_) => "Internal error",
        }
    }

    pub fn problem(&self) -> Problem {
        let ids = match self {
            Self::UnknownRecordings { ids, .. } | Self::ForeignRecordings { ids, .. } => ids.clone(),
            _ => Vec::new(),
        };
        Problem {
            kind: format!("{TYPE_BASE}{}", self.code()),
            title: self.title().into(),
            status: self.status().as_u16(),
            detail: self.to_string(),
            code: self.code().into(),
            ids,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if matches!(self, Self::Internal(_) | Self::Unavailable(_)) {
            tracing::error!(error = %self, "request failed");
        }
        let status = self.status();
        let mut resp = (status, Json(self.problem())).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<recvault_db::DbError> for ApiError {
    fn from(e: recvault_db::DbError) -> Self {
        match e.code() {
            "db_unreachable" => Self::Unavailable(format!("postgres: {e}")),
            _ => Self::Internal(format!("postgres: {e}")),
        }
    }
}

impl From<recvault_store::StoreError> for ApiError {
    fn from(e: recvault_store::StoreError) -> Self {
        Self::Unavailable(format!("object store: {e}"))
    }
}

impl From<recvault_queue::QueueError> for ApiError {
    fn from(e: recvault_queue::QueueError) -> Self {
        Self::Unavailable(format!("broker: {e}"))
    }
}

impl From<recvault_core::access::Denied> for ApiError {
    fn from(e: recvault_core::access::Denied) -> Self {
        Self::Forbidden(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_names_its_code_in_its_type() {
        let all = [
            ApiError::Unauthenticated(String::new()),
            ApiError::Forbidden(String::new()),
            ApiError::NotFound(String::new()),
            ApiError::MalformedJson(String::new()),
            ApiError::BadQuery(String::new()),
            ApiError::PageTooLarge(String::new()),
            ApiError::Invalid(String::new()),
            ApiError::UnknownRecordings { detail: String::new(), ids: vec![1] },
            ApiError::ForeignRecordings { detail: String::new(), ids: vec![2] },
            ApiError::CaseAlreadyClosed(String::new()),
            ApiError::RetentionLowering(String::new()),
            ApiError::BundleNotReady(String::new()),
            ApiError::Unavailable(String::new()),
            ApiError::Internal(String::new()),
        ];
        let mut codes = std::collections::HashSet::new();
        for e in all {
            let p = e.problem();
            assert!(p.kind.ends_with(&p.code));
            assert_eq!(p.status, e.status().as_u16());
            assert!(codes.insert(p.code), "codes are unique");
        }
    }
}
