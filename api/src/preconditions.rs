//! ETags and `If-Match` (RFC 9110): every single-resource GET carries an `ETag`; every update
//! must send `If-Match` (428 without it, 412 when it is stale; `*` matches any current version).

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, HttpResponseBuilder};
use db::Precondition;
use futures_util::future::{Ready, ready};
use serde::Serialize;

use crate::error::{ApiError, ApiResult};

pub fn etag(revision: i64) -> String {
    format!("\"{revision}\"")
}

/// A 200 response with the resource's ETag.
pub fn with_etag(mut builder: HttpResponseBuilder, revision: i64, body: &impl Serialize) -> HttpResponse {
    builder.insert_header((header::ETAG, etag(revision))).json(body)
}

/// The `If-Match` header of a request.
pub struct IfMatch(Option<String>);

impl IfMatch {
    /// What the update requires of the stored revision.
    pub fn precondition(&self) -> ApiResult<Precondition> {
        let value = self.0.as_deref().ok_or(ApiError::PreconditionRequired)?.trim();
        if value == "*" {
            return Ok(Precondition::Exists);
        }
        // RFC 9110: `*` or a list of entity tags. Anything else (an empty header, a bare word) is
        // a malformed request (400), not a stale one (412): the client has a bug to fix, not a
        // resource to fetch again.
        let tags = entity_tags(value)
            .ok_or_else(|| ApiError::BadRequest("If-Match must be * or entity tags such as \"3\"".into()))?;
        // Strong comparison: a weak tag never matches. Of several tags the first of ours is used;
        // one that is not ours can never match, so it yields a revision no resource has.
        let revision = tags
            .iter()
            .filter(|(weak, _)| !weak)
            .find_map(|(_, opaque)| opaque.parse::<i64>().ok())
            .unwrap_or(-1);
        Ok(Precondition::Revision(revision))
    }
}

/// The entity tags of a list (`"3", W/"x"`) as (weak, opaque text), or `None` when the list is
/// not one. A tag's quotes may hold commas, so the list is read tag by tag, not split.
fn entity_tags(list: &str) -> Option<Vec<(bool, &str)>> {
    let mut tags = Vec::new();
    let mut rest = list.trim_start();
    loop {
        let weak = rest.starts_with("W/");
        let quoted = rest.strip_prefix("W/").unwrap_or(rest).strip_prefix('"')?;
        let end = quoted.find('"')?;
        tags.push((weak, &quoted[..end]));
        rest = quoted[end + 1..].trim_start();
        match rest.strip_prefix(',') {
            Some(next) => rest = next.trim_start(),
            None if rest.is_empty() => return Some(tags),
            None => return None,
        }
    }
}

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = Ready<Result<IfMatch, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let value = request.headers().get(header::IF_MATCH).and_then(|v| v.to_str().ok()).map(str::to_owned);
        ready(Ok(IfMatch(value)))
    }
}

/// Deserialises a field that may be absent (no change), `null` (clear it) or a value.
pub fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}

/// An optional JSON body: empty or `null` is `None`; anything else must be valid (400 when
/// malformed, 422 when it does not fit), so a bad body is never mistaken for an absent one.
pub fn optional_json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<Option<T>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let mut value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    crate::body::whole_numbers_as_integers(&mut value);
    // serde would take a struct from an array of its fields; the document says object.
    if !(value.is_object() || value.is_null()) {
        return Err(ApiError::Unprocessable("the request body must be a JSON object".into()));
    }
    serde_json::from_value::<Option<T>>(value)
        .map_err(|e| ApiError::Unprocessable(format!("invalid request body: {e}")))
}

/// A page request from `limit` and `cursor` query parameters, refusing a limit out of range.
/// An empty cursor is the first page.
pub fn page_request(limit: Option<i64>, cursor: Option<String>) -> ApiResult<db::PageRequest> {
    let cursor = cursor.filter(|c| !c.is_empty());
    if let Some(limit) = limit
        && !(1..=db::page::MAX_LIMIT).contains(&limit)
    {
        return Err(ApiError::BadRequest(format!("limit must be between 1 and {}", db::page::MAX_LIMIT)));
    }
    Ok(db::PageRequest { limit, cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_tag_lists_are_read_tag_by_tag() {
        assert_eq!(entity_tags("\"3\""), Some(vec![(false, "3")]));
        assert_eq!(entity_tags(" W/\"a,b\" ,\t\"4\" "), Some(vec![(true, "a,b"), (false, "4")]));
        for malformed in ["", "abc", "\"1", "*, \"1\"", "\"1\" \"2\"", "\"1\","] {
            assert_eq!(entity_tags(malformed), None, "{malformed:?}");
        }
    }

    fn precondition(value: Option<&str>) -> ApiResult<Precondition> {
        IfMatch(value.map(str::to_owned)).precondition()
    }

    #[test]
    fn if_match_follows_rfc_9110() {
        assert!(matches!(precondition(None), Err(ApiError::PreconditionRequired)));
        assert!(matches!(precondition(Some("*")), Ok(Precondition::Exists)));
        assert!(matches!(precondition(Some("\"7\"")), Ok(Precondition::Revision(7))));
        assert!(matches!(precondition(Some("\"x\", \"7\"")), Ok(Precondition::Revision(7))));
        assert!(matches!(precondition(Some("W/\"7\"")), Ok(Precondition::Revision(-1))));
        assert_eq!(etag(7), "\"7\"");
    }
}
