//! The JSON request body extractor every API handler uses.
//!
//! Why not `web::Json` alone: JSON has one number type, and the document says `integer` with
//! JSON Schema's meaning, in which `342.0` is the integer 342. serde refuses `342.0` for an `i64`,
//! so a client that writes whole numbers with a fraction (JavaScript's JSON of a float, some
//! spreadsheets' exports) got 422 for a value the document allows. The body is read as JSON (with
//! `web::Json`'s size limit, media type check and errors), every number with a zero fraction that
//! fits an `i64` is made an integer, and only then is it read into the request type.

use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

/// Request bodies (JSON, and the web pages' forms) larger than this are refused with 413 before
/// they are read.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// An ODS file (sent to the API or uploaded on a page) larger than this is refused with 413
/// before it is all read.
pub const MAX_ODS_FILE_BYTES: usize = 32 * 1024 * 1024;

/// A request body of type `T`, read from JSON (see the module's comment).
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let value = web::Json::<Value>::from_request(request, payload);
        Box::pin(async move {
            let mut value = value.await?.into_inner();
            whole_numbers_as_integers(&mut value);
            serde_json::from_value(value)
                .map(Json)
                .map_err(|cause| ApiError::Unprocessable(format!("invalid request body: {cause}")).into())
        })
    }
}

/// Turns every number with a zero fraction that fits an `i64` (`342.0`, `1e3`) into an integer.
pub(crate) fn whole_numbers_as_integers(value: &mut Value) {
    match value {
        Value::Number(number) if !number.is_i64() && !number.is_u64() => {
            if let Some(float) = number.as_f64()
                && float.fract() == 0.0
                && float >= i64::MIN as f64
                && float < i64::MAX as f64
            {
                *value = Value::from(float as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_numbers_become_integers_and_others_stay() {
        let mut value = json!({"quantity": 342.0, "nested": [1e3, 2.5, -4.0], "big": 1e300, "text": "7.0"});
        whole_numbers_as_integers(&mut value);
        assert_eq!(value, json!({"quantity": 342, "nested": [1000, 2.5, -4], "big": 1e300, "text": "7.0"}));
    }
}
