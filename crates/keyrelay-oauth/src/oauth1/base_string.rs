//! The signature base string (RFC 5849 §3.4.1).

use url::Url;

use super::Oauth1Error;
use super::encode::{form_pairs, percent_encode, percent_encode_bytes};

/// The body to sign, if any: RFC 5849 §3.4.1.3.1 signs the body's parameters
/// only when it is `application/x-www-form-urlencoded` (compared without
/// parameters such as `charset`, case-insensitively). JSON, multipart and
/// other bodies are not signed, so this returns `None` for them.
pub fn form_body_for_signing<'a>(content_type: Option<&str>, body: &'a [u8]) -> Option<&'a [u8]> {
    let media_type = content_type?.split(';').next()?.trim();
    media_type
        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        .then_some(body)
}

/// The signature base string of a request (§3.4.1): the uppercased method,
/// the base string URI and the normalized parameters, each encoded (§3.6)
/// and joined by `&`.
///
/// - `url` is the absolute `http(s)` URL the request goes to. Its query
///   parameters are signed; the base string URI keeps scheme, host
///   (lowercased), a non-default port and the path, and drops the query,
///   fragment and userinfo (§3.4.1.2).
/// - `form_body` is the body when it is form-encoded (see
///   [`form_body_for_signing`]), else `None`.
/// - `protocol_params` are the `oauth_*` parameters with their plain
///   (decoded) values, as they go in the `Authorization` header; `realm` and
///   `oauth_signature` are left out (§3.4.1.3.1).
///
/// Every name and value is decoded from its form encoding (`+` is a space),
/// re-encoded per §3.6, and the pairs are sorted by name then value; repeated
/// names are all kept.
pub fn signature_base_string(
    method: &str,
    url: &str,
    form_body: Option<&[u8]>,
    protocol_params: &[(&str, &str)],
) -> Result<String, Oauth1Error> {
    let method = normalize_method(method)?;
    let url = parse_request_url(url)?;
    let params = normalized_parameters(&url, form_body, protocol_params);
    let mut out = method;
    out.push('&');
    out.push_str(&percent_encode(&base_string_uri(&url)));
    out.push('&');
    out.push_str(&percent_encode(&params));
    Ok(out)
}

/// The method uppercased; it must be an HTTP token of letters, digits, `-`
/// or `_` (so it cannot smuggle an `&` into the base string).
fn normalize_method(method: &str) -> Result<String, Oauth1Error> {
    let ok = !method.is_empty()
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if ok {
        Ok(method.to_ascii_uppercase())
    } else {
        Err(Oauth1Error::InvalidParameter(
            "the HTTP method must be a token such as GET or POST".to_owned(),
        ))
    }
}

/// Parses the request URL: absolute, `http` or `https`, with a host.
pub(crate) fn parse_request_url(url: &str) -> Result<Url, Oauth1Error> {
    let parsed = Url::parse(url.trim())
        .map_err(|e| Oauth1Error::InvalidUrl(format!("request URL is not an absolute URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Oauth1Error::InvalidUrl(
            "request URL must be http or https (RFC 5849 defines no other scheme)".to_owned(),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Oauth1Error::InvalidUrl(
            "request URL has no host".to_owned(),
        ));
    }
    Ok(parsed)
}

/// `scheme://host[:port]/path` (§3.4.1.2). The `url` crate has already
/// lowercased scheme and host and dropped a default port (80 for `http`, 443
/// for `https`), exactly the normalization the RFC asks for, and the path is
/// what the HTTP client will send.
fn base_string_uri(url: &Url) -> String {
    let mut out = String::with_capacity(url.as_str().len());
    out.push_str(url.scheme());
    out.push_str("://");
    out.push_str(url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        out.push(':');
        out.push_str(&port.to_string());
    }
    out.push_str(url.path());
    out
}

/// The normalized parameter string (§3.4.1.3.2), not yet encoded as a whole.
fn normalized_parameters(
    url: &Url,
    form_body: Option<&[u8]>,
    protocol_params: &[(&str, &str)],
) -> String {
    let from_request = url
        .query()
        .map(str::as_bytes)
        .into_iter()
        .chain(form_body)
        .flat_map(form_pairs)
        .filter(|(name, _)| name.as_slice() != b"oauth_signature")
        .map(|(name, value)| (percent_encode_bytes(&name), percent_encode_bytes(&value)));
    let protocol = protocol_params
        .iter()
        .filter(|(name, _)| !matches!(*name, "realm" | "oauth_signature"))
        .map(|(name, value)| (percent_encode(name), percent_encode(value)));
    let mut pairs: Vec<(String, String)> = from_request.chain(protocol).collect();
    pairs.sort_unstable();
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_string_uri_normalization() {
        let uri = |u: &str| base_string_uri(&parse_request_url(u).unwrap());
        assert_eq!(
            uri("HTTP://EXAMPLE.COM:80/r%20v/X?id=123#frag"),
            "http://example.com/r%20v/X"
        );
        assert_eq!(
            uri("https://www.example.net:8080/?q=1"),
            "https://www.example.net:8080/"
        );
        assert_eq!(uri("https://example.net:443"), "https://example.net/");
        assert_eq!(uri("http://example.net:443/"), "http://example.net:443/");
        assert_eq!(uri("https://example.net:80/"), "https://example.net:80/");
        assert_eq!(
            uri("https://user:pw@Example.net/a"),
            "https://example.net/a"
        );
        assert_eq!(uri("http://[::1]:8000/x"), "http://[::1]:8000/x");
    }

    #[test]
    fn rejects_bad_urls_and_methods() {
        for url in ["/relative", "ftp://example.com/", "mailto:a@b.c", "http://"] {
            assert!(
                matches!(
                    signature_base_string("GET", url, None, &[]),
                    Err(Oauth1Error::InvalidUrl(_))
                ),
                "{url}"
            );
        }
        for method in ["", "GE T", "GET&x", "PØST"] {
            assert!(matches!(
                signature_base_string(method, "https://a.example/", None, &[]),
                Err(Oauth1Error::InvalidParameter(_))
            ));
        }
    }

    #[test]
    fn form_body_only_when_form_encoded() {
        let body = b"a=1".as_slice();
        let form = Some("Application/X-WWW-Form-Urlencoded; charset=UTF-8");
        assert_eq!(form_body_for_signing(form, body), Some(body));
        assert_eq!(form_body_for_signing(Some("application/json"), body), None);
        assert_eq!(
            form_body_for_signing(Some("multipart/form-data; boundary=x"), body),
            None
        );
        assert_eq!(form_body_for_signing(None, body), None);
    }
}
