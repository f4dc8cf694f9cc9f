//! Header lists of requests and responses: names compared without case (and kept in lower
//! case, as the `http` crate keeps them), values as bytes, order and repeats kept.
//!
//! The headers the library sets itself (`content-type` of `Response::text`) are borrowed
//! from static strings, as `http::HeaderValue::from_static` is: a response costs no
//! allocation for them.

use alloc::borrow::Cow;
use alloc::vec::Vec;

/// The headers of a [`Request`](crate::Request) or [`Response`](crate::Response).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(Cow<'static, str>, Cow<'static, [u8]>)>,
}

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Headers::default()
    }

    /// The first value of header `name` (any case), as bytes.
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| &value[..])
    }

    /// The first value of header `name` (any case), if it is UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_bytes(name)
            .and_then(|value| core::str::from_utf8(value).ok())
    }

    /// Every value of header `name` (any case), in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.entries
            .iter()
            .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| &value[..])
    }

    /// Adds a value of `name`, after any it already has.
    pub fn append(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.entries.push((
            Cow::Owned(name.to_ascii_lowercase()),
            Cow::Owned(value.into()),
        ));
    }

    /// Sets `name` (in lower case) to `value` alone, without copying either.
    pub(crate) fn insert_static(&mut self, name: &'static str, value: &'static [u8]) {
        debug_assert!(!name.bytes().any(|byte| byte.is_ascii_uppercase()));
        self.remove(name);
        self.entries
            .push((Cow::Borrowed(name), Cow::Borrowed(value)));
    }

    /// Sets `name` to `value` alone, replacing every value it had.
    pub fn insert(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.remove(name);
        self.append(name, value);
    }

    /// Removes every value of `name`.
    pub fn remove(&mut self, name: &str) {
        self.entries
            .retain(|(key, _)| !key.eq_ignore_ascii_case(name));
    }

    /// Whether `name` has a value.
    pub fn contains(&self, name: &str) -> bool {
        self.get_all(name).next().is_some()
    }

    /// Every `(name, value)`, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + Clone {
        self.entries
            .iter()
            .map(|(name, value)| (&name[..], &value[..]))
    }

    /// How many values there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<'a> FromIterator<(&'a str, &'a [u8])> for Headers {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a [u8])>>(entries: I) -> Self {
        let mut headers = Headers::new();
        for (name, value) in entries {
            headers.append(name, value);
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_in_any_case_and_repeats_are_kept() {
        let mut headers = Headers::new();
        headers.append("X-Tag", "a");
        headers.append("x-tag", "b");
        headers.append("Content-Type", "text/plain");
        assert_eq!(headers.get("X-TAG"), Some("a"));
        assert_eq!(headers.get_all("x-Tag").collect::<Vec<_>>(), [b"a", b"b"]);
        headers.insert("X-tag", "c");
        assert_eq!(headers.get_all("x-tag").collect::<Vec<_>>(), [b"c"]);
        assert_eq!(
            headers.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            ["content-type", "x-tag"]
        );
        headers.remove("CONTENT-TYPE");
        assert!(!headers.contains("content-type"));
        assert_eq!(headers.len(), 1);
    }

    #[test]
    fn a_static_header_replaces_and_reads_as_any_other() {
        let mut headers = Headers::new();
        headers.append("Content-Type", "text/html");
        headers.insert_static("content-type", b"text/plain");
        assert_eq!(headers.get("CONTENT-TYPE"), Some("text/plain"));
        assert_eq!(headers.len(), 1);
    }

    #[test]
    fn a_value_that_is_not_utf8_is_only_bytes() {
        let mut headers = Headers::new();
        headers.append("x-raw", [0xff, 0x41]);
        assert_eq!(headers.get("x-raw"), None);
        assert_eq!(headers.get_bytes("x-raw"), Some(&[0xff, 0x41][..]));
    }
}
