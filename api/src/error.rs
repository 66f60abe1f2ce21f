//! The API's one error type. Every failure a handler can meet becomes an [`ApiError`], and every
//! `ApiError` becomes an RFC 9457 problem response in [`ApiError::error_response`]: the status,
//! a stable `type`, a title and a detail that never shows internals.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use db::DbError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An RFC 9457 problem details object, sent as `application/problem+json`.
#[derive(Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[schema(example = json!({
    "type": "urn:nhs-catalogue:problem:not-found",
    "title": "Not Found",
    "status": 404,
    "detail": "organisation not found"
}))]
pub struct Problem {
    /// A URI naming the kind of problem; stable, so clients can branch on it.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// The HTTP reason phrase of the status.
    pub title: String,
    pub status: u16,
    /// What went wrong, for a person to read.
    pub detail: String,
    /// For a refused seat claim: the seats that remain on the entitlement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats_remaining: Option<i64>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    #[error("{0}")]
    Conflict(String),
    #[error("not enough seats remain: {remaining} of the cap")]
    SeatsExhausted { remaining: i64 },
    #[error("the resource has changed since it was read; fetch it again and retry with the new ETag")]
    PreconditionFailed,
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("this update needs an If-Match header with the resource's ETag")]
    PreconditionRequired,
    #[error("too many attempts; try again later")]
    TooManyRequests { retry_after_seconds: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// Too much work is waiting (password checks in a storm): try again after the given time.
    #[error("the service is busy; try again shortly")]
    Busy { retry_after_seconds: u64 },
    /// Logged with its cause; the client sees only a bare 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    fn slug(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad-request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::MethodNotAllowed { .. } => "method-not-allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::SeatsExhausted { .. } => "seats-exhausted",
            ApiError::PreconditionFailed => "precondition-failed",
            ApiError::PayloadTooLarge => "payload-too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::PreconditionRequired => "precondition-required",
            ApiError::TooManyRequests { .. } => "too-many-requests",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Busy { .. } => "busy",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        let detail = match self {
            // Never show the cause of an internal error or an outage.
            ApiError::Internal(_) => "an unexpected error occurred; it has been logged".to_owned(),
            ApiError::Unavailable(_) => "the service is temporarily unavailable".to_owned(),
            other => other.to_string(),
        };
        Problem {
            problem_type: format!("urn:nhs-catalogue:problem:{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            seats_remaining: match self {
                ApiError::SeatsExhausted { remaining } => Some(*remaining),
                _ => None,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) | ApiError::SeatsExhausted { .. } => StatusCode::CONFLICT,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(cause) => tracing::error!(%cause, "internal error"),
            ApiError::Unavailable(cause) => tracing::warn!(%cause, "service unavailable"),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json")));
        match self {
            ApiError::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            ApiError::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, allow.as_str()));
            }
            ApiError::TooManyRequests { retry_after_seconds } | ApiError::Busy { retry_after_seconds } => {
                response.insert_header((header::RETRY_AFTER, retry_after_seconds.to_string()));
            }
            _ => {}
        }
        let body = serde_json::to_string(&self.problem()).unwrap_or_default();
        response.body(body)
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            DbError::Conflict(detail) => ApiError::Conflict(detail),
            DbError::SeatsExhausted { remaining } => ApiError::SeatsExhausted { remaining },
            DbError::Invalid(detail) => ApiError::Unprocessable(detail),
            DbError::StaleRevision => ApiError::PreconditionFailed,
            DbError::InvalidCursor => ApiError::BadRequest(DbError::InvalidCursor.to_string()),
            DbError::Unavailable(cause) => ApiError::Unavailable(cause),
            DbError::Migration(cause) | DbError::Internal(cause) => ApiError::Internal(cause),
            DbError::RolledBack => ApiError::Internal(DbError::RolledBack.to_string()),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(error.to_string())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    async fn problem_of(error: ApiError) -> (StatusCode, Problem) {
        let response = error.error_response();
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        assert_eq!(content_type, Some(HeaderValue::from_static("application/problem+json")));
        let body = to_bytes(response.into_body()).await.unwrap_or_default();
        (status, serde_json::from_slice(&body).unwrap_or_else(|e| panic!("not a problem: {e}")))
    }

    #[actix_web::test]
    async fn every_variant_maps_to_its_status_and_a_problem_body() {
        let cases = [
            (ApiError::BadRequest("x".into()), 400),
            (ApiError::Unauthorized, 401),
            (ApiError::Forbidden("x".into()), 403),
            (ApiError::NotFound("x".into()), 404),
            (ApiError::MethodNotAllowed { allow: "GET".into() }, 405),
            (ApiError::Conflict("x".into()), 409),
            (ApiError::SeatsExhausted { remaining: 3 }, 409),
            (ApiError::PreconditionFailed, 412),
            (ApiError::PayloadTooLarge, 413),
            (ApiError::UnsupportedMediaType("x".into()), 415),
            (ApiError::Unprocessable("x".into()), 422),
            (ApiError::PreconditionRequired, 428),
            (ApiError::TooManyRequests { retry_after_seconds: 5 }, 429),
            (ApiError::Unavailable("x".into()), 503),
            (ApiError::Busy { retry_after_seconds: 1 }, 503),
            (ApiError::Internal("x".into()), 500),
        ];
        for (error, expected) in cases {
            let (status, problem) = problem_of(error).await;
            assert_eq!(status.as_u16(), expected);
            assert_eq!(problem.status, expected);
            assert!(problem.problem_type.starts_with("urn:nhs-catalogue:problem:"));
            assert!(!problem.title.is_empty());
        }
    }

    #[actix_web::test]
    async fn internal_errors_never_show_their_cause() {
        let (_, problem) = problem_of(ApiError::Internal("password=hunter2 at db.rs:12".into())).await;
        assert!(!problem.detail.contains("hunter2"));
        let (_, problem) = problem_of(ApiError::Unavailable("postgres://u:secret@h".into())).await;
        assert!(!problem.detail.contains("secret"));
    }

    #[actix_web::test]
    async fn headers_that_the_status_requires_are_set() {
        let response = ApiError::Unauthorized.error_response();
        assert_eq!(
            response.headers().get(header::WWW_AUTHENTICATE).map(|v| v.as_bytes()),
            Some(&b"Bearer"[..])
        );
        let response = ApiError::MethodNotAllowed { allow: "GET, POST".into() }.error_response();
        assert_eq!(response.headers().get(header::ALLOW).map(|v| v.as_bytes()), Some(&b"GET, POST"[..]));
        let response = ApiError::TooManyRequests { retry_after_seconds: 7 }.error_response();
        assert_eq!(response.headers().get(header::RETRY_AFTER).map(|v| v.as_bytes()), Some(&b"7"[..]));
        let response = ApiError::Busy { retry_after_seconds: 2 }.error_response();
        assert_eq!(response.headers().get(header::RETRY_AFTER).map(|v| v.as_bytes()), Some(&b"2"[..]));
        let (_, problem) = problem_of(ApiError::SeatsExhausted { remaining: 4 }).await;
        assert_eq!(problem.seats_remaining, Some(4));
    }
}
