//! The request and response records the core speaks, independent of any HTTP
//! stack: the component converts wasi-http or the typed WIT records into
//! these, and tests build them directly.

/// An HTTP request read in full.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Method, e.g. `GET` (compared case-sensitively, as HTTP says).
    pub method: String,
    /// Path and query as received, still percent-encoded.
    pub path_with_query: String,
    /// `http` or `https`; `None` means `http`.
    pub scheme: Option<String>,
    /// Host and port the client used; falls back to the `Host` header.
    pub authority: Option<String>,
    /// Headers in arrival order, names in any case.
    pub headers: Vec<(String, String)>,
    /// The body, empty when there is none.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header of that name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// `scheme://authority` as the client reached the service.
    pub fn origin(&self) -> String {
        let scheme = self.scheme.as_deref().unwrap_or("http");
        let authority = self.authority.as_deref().or_else(|| self.header("host")).unwrap_or("localhost");
        format!("{scheme}://{authority}")
    }
}

/// An HTTP response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// A response with a SCIM JSON body.
    pub fn scim_json(status: u16, body: &serde_json::Value) -> Self {
        Response {
            status,
            headers: vec![("content-type".into(), crate::SCIM_MEDIA_TYPE.into())],
            // Serialising a `Value` cannot fail.
            body: serde_json::to_vec(body).unwrap_or_default(),
        }
    }

    /// A response without a body.
    pub fn empty(status: u16) -> Self {
        Response { status, headers: Vec::new(), body: Vec::new() }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }
}

/// Splits `path?query` and decodes the query into name/value pairs.
///
/// Decoding happens exactly once and `+` means space (form encoding, which
/// Entra uses) while `%2B` stays a literal plus: this is what keeps
/// `user+tag@example.com` intact whether a client sends `+`-encoded spaces
/// (Entra) or `%20` (Okta).
pub fn split_query(path_with_query: &str) -> (&str, Vec<(String, String)>) {
    let (path, query) = match path_with_query.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path_with_query, ""),
    };
    let pairs = query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            (form_decode(name), form_decode(value))
        })
        .collect();
    (path, pairs)
}

/// Decodes one `application/x-www-form-urlencoded` component; invalid
/// escapes are kept literally and invalid UTF-8 is replaced, never panics.
pub fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (crate::hex::nibble(bytes[i + 1]), crate::hex::nibble(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes one percent-encoded path segment (`+` stays a plus).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (crate::hex::nibble(bytes[i + 1]), crate::hex::nibble(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_decoded_once_with_plus_as_space() {
        let (path, q) = split_query("/Users?filter=userName+eq+%22a%2Bb%40x.io%22&count=5");
        assert_eq!(path, "/Users");
        assert_eq!(q, vec![("filter".into(), "userName eq \"a+b@x.io\"".into()), ("count".into(), "5".into())]);
        let (_, q) = split_query("/Users?filter=userName%20eq%20%22a%2525%22");
        assert_eq!(q[0].1, "userName eq \"a%25\"");
    }

    #[test]
    fn bad_escapes_are_kept() {
        assert_eq!(form_decode("%zz%4"), "%zz%4");
        assert_eq!(form_decode("%"), "%");
        assert_eq!(percent_decode("a%2Fb%"), "a/b%");
        assert_eq!(percent_decode("a+b"), "a+b");
    }
}
