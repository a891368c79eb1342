//! Which headers cross the proxy. Hop-by-hop headers (RFC 9110 §7.6.1, and
//! any named in `Connection`) belong to one connection, not the message;
//! `Host` is the upstream's; the caller's `Authorization` and `Keyrelay-*`
//! headers are for keyrelay only. Everything else passes unchanged.

use http::HeaderMap;
use http::header::{self, HeaderName};

const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    // Proxy-Connection and other Proxy-* headers speak to a proxy, not the origin.
    let proxy_named: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for name in proxy_named {
        headers.remove(name);
    }
}

/// The request headers to send upstream (before credentials are stamped).
pub fn request_headers(mut headers: HeaderMap) -> HeaderMap {
    strip_hop_by_hop(&mut headers);
    headers.remove(header::HOST);
    headers.remove(header::AUTHORIZATION);
    let keyrelay: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("keyrelay-"))
        .cloned()
        .collect();
    for name in keyrelay {
        headers.remove(name);
    }
    headers
}

/// The response headers to return to the caller.
pub fn response_headers(headers: &mut HeaderMap) {
    strip_hop_by_hop(headers);
}
