//! The response a function returns, shaped like `http::Response`: status, headers, body.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::Serialize;

use crate::Headers;

/// An HTTP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Headers,
    body: Vec<u8>,
}

impl Response {
    /// An empty response with `status` (100-999; another is answered as a 500 saying so).
    pub fn status(status: u16) -> Self {
        Response {
            status,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// `200 OK` with a `text/plain; charset=utf-8` body.
    pub fn text(text: impl Into<String>) -> Self {
        Response::status(200).with_text(text)
    }

    /// `200 OK` with `value` as a JSON body (`application/json`); a value that does not
    /// serialise (a map with keys that are not strings) is a 500 saying why.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => {
                let mut response = Response::status(200).with_body(body);
                response
                    .headers
                    .insert_static("content-type", b"application/json");
                response
            }
            Err(error) => Response::status(500)
                .with_text(format!("the response did not serialise as JSON: {error}")),
        }
    }

    /// `200 OK` with a body of bytes (`application/octet-stream`).
    pub fn bytes(body: impl Into<Vec<u8>>) -> Self {
        let mut response = Response::status(200).with_body(body);
        response
            .headers
            .insert_static("content-type", b"application/octet-stream");
        response
    }

    /// The same response with `status`.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The same response with header `name` set to `value` (any value it had replaced).
    pub fn with_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// The same response with `body` (its content type unchanged).
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The same response with a text body and its content type.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.headers
            .insert_static("content-type", b"text/plain; charset=utf-8");
        self.with_body(text.into().into_bytes())
    }

    pub fn status_code(&self) -> u16 {
        self.status
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// What a function may return: its response, or what becomes one.
#[diagnostic::on_unimplemented(
    message = "a function returns a `Response`, not `{Self}`",
    label = "not a response",
    note = "return a `Response` (`Response::text`, `Response::json`, `Response::status`), a `String`, a `&str`, or a `Result` of those"
)]
pub trait IntoResponse {
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for &str {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

/// `Ok` is the response, `Err` too (say with `Response::status(400)`).
impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(response) => response.into_response(),
            Err(response) => response.into_response(),
        }
    }
}

impl From<&str> for Response {
    fn from(text: &str) -> Self {
        Response::text(text)
    }
}

impl From<String> for Response {
    fn from(text: String) -> Self {
        Response::text(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;

    #[test]
    fn text_and_json_set_their_content_type() {
        let response = Response::text("hello");
        assert_eq!(response.status_code(), 200);
        assert_eq!(
            response.headers().get("Content-Type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(response.body(), b"hello");

        #[derive(serde::Serialize)]
        struct Area {
            area: u32,
        }
        let response = Response::json(&Area { area: 12 });
        assert_eq!(
            response.headers().get("content-type"),
            Some("application/json")
        );
        assert_eq!(response.body(), br#"{"area":12}"#);
    }

    #[test]
    fn json_that_does_not_serialise_is_a_500() {
        let mut map = BTreeMap::new();
        map.insert((1, 2), 3);
        let response = Response::json(&map);
        assert_eq!(response.status_code(), 500);
        assert!(
            response
                .body()
                .starts_with(b"the response did not serialise")
        );
    }

    #[test]
    fn results_and_text_are_responses() {
        let ok: Result<&str, Response> = Ok("fine");
        assert_eq!(ok.into_response().body(), b"fine");
        let err: Result<String, Response> = Err(Response::status(400).with_text("bad"));
        assert_eq!(err.into_response().status_code(), 400);
    }

    #[test]
    fn a_status_and_headers_chain() {
        let response = Response::status(404)
            .with_text("no such size")
            .with_header("x-tag", "a");
        assert_eq!(response.status_code(), 404);
        assert_eq!(response.headers().get("x-tag"), Some("a"));
        assert_eq!(Response::text("x").with_status(201).status_code(), 201);
    }
}
