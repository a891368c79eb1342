//! Where a proxied request may go. The caller names only a path; it is
//! appended to the provider's `api_base_url` as sent (byte for byte), and
//! every way a path could change the host or leave the base path is refused
//! before anything is sent: dot segments, empty segments, backslashes,
//! encoded slashes and backslashes, control characters, scheme or
//! authority lookalikes, in raw form and percent-decoded up to three times
//! (so double and triple encoding are caught too). The built URI is then
//! checked again against the base.

use http::Uri;

/// Why a target was refused, in words for the caller.
pub type Refusal = String;

fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' && i + 2 < input.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

fn contains_ci(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Checks one form (raw or decoded) of the path.
fn check_form(path: &[u8]) -> Result<(), Refusal> {
    if path.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err("the path contains control characters".into());
    }
    if path.contains(&b'\\') {
        return Err("the path contains a backslash".into());
    }
    if contains_ci(path, b"%2f") || contains_ci(path, b"%5c") {
        return Err("the path contains an encoded slash or backslash".into());
    }
    if path.first() == Some(&b'/') || contains_ci(path, b"//") {
        return Err("the path contains an empty segment (//)".into());
    }
    for segment in path.split(|&b| b == b'/') {
        if segment == b"." || segment == b".." {
            return Err("the path contains a . or .. segment".into());
        }
    }
    let first = path.split(|&b| b == b'/').next().unwrap_or_default();
    if first.contains(&b':') || first.contains(&b'@') {
        return Err(
            "the path starts like a URL or a user name (':' or '@' in its first segment)".into(),
        );
    }
    Ok(())
}

/// Refuses paths that could escape the base (see the module docs).
pub fn check_path(raw: &str) -> Result<(), Refusal> {
    let mut form = raw.as_bytes().to_vec();
    for _ in 0..4 {
        check_form(&form)?;
        let decoded = percent_decode(&form);
        if decoded == form {
            return Ok(());
        }
        form = decoded;
    }
    Err("the path is percent-encoded too many times".into())
}

/// A parsed base URL: scheme, authority and path without a trailing slash.
#[derive(Debug, Clone)]
pub struct Base {
    pub scheme: String,
    pub authority: String,
    pub host: String,
    pub path: String,
    /// `scheme://authority/path`, what every target starts with.
    prefix: String,
}

impl Base {
    pub fn parse(url: &str) -> Result<Base, Refusal> {
        let parsed =
            url::Url::parse(url).map_err(|e| format!("the api_base_url is invalid: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("the api_base_url must be http(s)".into());
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("the api_base_url must not carry credentials".into());
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| "the api_base_url has no host".to_string())?
            .to_ascii_lowercase();
        let authority = match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        let scheme = parsed.scheme().to_string();
        let path = parsed.path().trim_end_matches('/').to_string();
        Ok(Base {
            prefix: format!("{scheme}://{authority}{path}/"),
            scheme,
            authority,
            host,
            path,
        })
    }

    /// The upstream URI for a checked raw path and raw query.
    pub fn join(&self, raw_path: &str, raw_query: Option<&str>) -> Result<Uri, Refusal> {
        let query_len = raw_query.map_or(0, |q| q.len() + 1);
        let mut text = String::with_capacity(self.prefix.len() + raw_path.len() + query_len);
        text.push_str(&self.prefix);
        text.push_str(raw_path);
        if let Some(query) = raw_query {
            text.push('?');
            text.push_str(query);
        }
        let uri: Uri = text
            .parse()
            .map_err(|_| "the path or query is not valid in a URL".to_string())?;
        // Belt and braces: the built URI must still point at the base.
        let same_origin = uri.scheme_str() == Some(self.scheme.as_str())
            && uri
                .authority()
                .is_some_and(|a| a.as_str().eq_ignore_ascii_case(&self.authority));
        let under_base = uri
            .path()
            .strip_prefix(self.path.as_str())
            .is_some_and(|rest| rest.starts_with('/'));
        if !same_origin || !under_base {
            return Err("the request would leave the provider's API base URL".into());
        }
        Ok(uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_paths_pass() {
        for ok in [
            "",
            "user",
            "users/@me",
            "repos/o/r/issues",
            "v1/files:batch",
            "a%20b",
            "a+b",
            "%E2%9C%93",
            "a.b/c..d/.e",
            "x/y.json",
        ] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn tricks_are_refused() {
        for bad in [
            "/evil.example",
            "..",
            "a/../..",
            "%2e%2e/x",
            "%2E%2E",
            ".%2e/x",
            "%252e%252e/x",
            "%25252e%25252e/x",
            "a%2Fb",
            "a%2fb",
            "%252F",
            "a\\b",
            "%5c",
            "%255c",
            "a//b",
            "%2F%2Fevil",
            "http:x",
            "https:/evil.example",
            "@evil.example",
            "u:p@evil",
            "x%00y",
            "%0d%0aHost:%20evil",
            ".",
            "./a",
            "a/.",
            "%2e",
            "a%2f..%2fb",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn joins_under_the_base_byte_for_byte() {
        let base = Base::parse("https://api.example.com/v2/").unwrap();
        let uri = base.join("users/%7Eme", Some("b=2&a=%20+x&a=")).unwrap();
        assert_eq!(
            uri.to_string(),
            "https://api.example.com/v2/users/%7Eme?b=2&a=%20+x&a="
        );
        assert!(base.join("a b", None).is_err());
    }
}
