//! Extractors that answer their failures as problem documents: the principal of a bearer token,
//! and JSON bodies, query strings and path parameters whose rejection is a clear 400, not axum's
//! plain-text default.

use crate::App;
use crate::problem::ApiError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use recvault_core::access::Principal;
use serde::de::DeserializeOwned;

/// The principal a valid bearer token names.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

impl FromRequestParts<App> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthenticated("an Authorization: Bearer token is required".into()))?;
        let token =
            value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                .ok_or_else(|| ApiError::Unauthenticated("the Authorization header is not a bearer token".into()))?;
        app.verifier.verify(token.trim()).map(Auth)
    }
}

/// A JSON body of `T` (unknown fields refused by `T`), or 400 `malformed_json`.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(e) => Err(ApiError::MalformedJson(rejection_text(&e))),
        }
    }
}

fn rejection_text(e: &JsonRejection) -> String {
    recvault_core::text::escape_truncated(&e.body_text(), 500)
}

/// A query string of `T`, or 400 `bad_query`.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Self(v))
            .map_err(|e: QueryRejection| ApiError::BadQuery(recvault_core::text::escape_truncated(&e.body_text(), 500)))
    }
}

/// A path parameter of `T`, or 400 `bad_query` (an id that is not one).
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| Self(v))
            .map_err(|e: PathRejection| ApiError::BadQuery(recvault_core::text::escape_truncated(&e.body_text(), 500)))
    }
}
