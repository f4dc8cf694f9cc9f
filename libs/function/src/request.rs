//! The request a function handles, shaped like `http::Request`: method, path and query,
//! headers, body.

use alloc::string::String;
use alloc::vec::Vec;
use serde::de::DeserializeOwned;
use unikernel_abi::function::RequestView;

use crate::Headers;

/// An HTTP request, as the gateway received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method, then the path and query as sent: one allocation for both.
    head: String,
    /// Where the method ends in `head`.
    method_len: usize,
    headers: Headers,
    body: Vec<u8>,
}

impl Request {
    /// A request of `method` for `target` (path and query: `/resize?w=10`), without headers
    /// or body: for testing a handler on the host.
    pub fn new(method: &str, target: &str) -> Self {
        let mut head = String::with_capacity(method.len() + target.len());
        head.push_str(method);
        head.push_str(target);
        Request {
            head,
            method_len: method.len(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// `GET target`.
    pub fn get(target: &str) -> Self {
        Request::new("GET", target)
    }

    /// `POST target` with `body`.
    pub fn post(target: &str, body: impl Into<Vec<u8>>) -> Self {
        Request::new("POST", target).with_body(body)
    }

    /// The same request with header `name` set to `value`.
    pub fn with_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// The same request with `body`.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// A copy of a decoded request (the buffer it came in is reused for the response).
    pub(crate) fn from_view(view: RequestView<'_>) -> Self {
        let mut request = Request::new(view.method, view.target);
        request.headers = view.headers.collect();
        request.body = view.body.into();
        request
    }

    /// `GET`, `POST`, ...
    pub fn method(&self) -> &str {
        &self.head[..self.method_len]
    }

    /// The path, without the query: `/resize`.
    pub fn path(&self) -> &str {
        let target = self.uri();
        match target.split_once('?') {
            Some((path, _)) => path,
            None => target,
        }
    }

    /// The query, without its `?`: `w=10`; `None` when the target has no `?`.
    pub fn query(&self) -> Option<&str> {
        self.uri().split_once('?').map(|(_, query)| query)
    }

    /// The value of query parameter `name` as written (not percent-decoded): `w` of
    /// `/resize?w=10&h=5` is `10`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query()?
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }

    /// Path and query, as sent: `/resize?w=10`.
    pub fn uri(&self) -> &str {
        &self.head[self.method_len..]
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The first value of header `name` (any case), if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body, taken out of the request.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// The body as text, if it is UTF-8.
    pub fn text(&self) -> Result<&str, core::str::Utf8Error> {
        core::str::from_utf8(&self.body)
    }

    /// The body parsed as JSON into `T` (`serde_json`).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_splits_into_path_and_query() {
        let request = Request::get("/resize?w=10&flag&h=5");
        assert_eq!(request.path(), "/resize");
        assert_eq!(request.query(), Some("w=10&flag&h=5"));
        assert_eq!(request.query_param("h"), Some("5"));
        assert_eq!(request.query_param("flag"), Some(""));
        assert_eq!(request.query_param("x"), None);
        let request = Request::get("/hello");
        assert_eq!(request.method(), "GET");
        assert_eq!(request.path(), "/hello");
        assert_eq!(request.query(), None);
        assert_eq!(request.uri(), "/hello");
    }

    #[test]
    fn a_json_body_parses_into_a_type() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Size {
            w: u32,
            h: u32,
        }
        let request = Request::post("/resize", r#"{"w": 3, "h": 4}"#);
        assert_eq!(request.json::<Size>().unwrap(), Size { w: 3, h: 4 });
        assert!(Request::post("/resize", "{").json::<Size>().is_err());
    }
}
