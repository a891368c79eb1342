//! Percent-encoding (RFC 5849 §3.6) and form decoding (§3.4.1.3.1).
//!
//! Hand-written rather than with the `percent-encoding` crate: the rule is a
//! few lines, and getting an `AsciiSet` subtly wrong (e.g. leaving `*` or `'`
//! unencoded, as `form_urlencoded` does) would break every signature.

/// Encodes a string per RFC 5849 §3.6: the UTF-8 bytes of `ALPHA`, `DIGIT`,
/// `-`, `.`, `_` and `~` are kept; every other byte becomes `%XX` with
/// uppercase hex. A space is `%20`, never `+`.
pub fn percent_encode(input: &str) -> String {
    percent_encode_bytes(input.as_bytes())
}

/// [`percent_encode`] on raw bytes, for decoded parameters that need not be
/// valid UTF-8 (`%FF` in a query is signed as the byte it stands for).
pub(crate) fn percent_encode_bytes(input: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(input.len());
    for &b in input {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0F)]));
        }
    }
    out
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The name/value pairs of an `application/x-www-form-urlencoded` string (a
/// query or a form body), decoded to bytes: `+` is a space, `%XX` its byte.
///
/// Works on bytes so that a signature covers exactly what the server will
/// decode, even for sequences that are not UTF-8. A `%` not followed by two
/// hex digits is kept as is (as lenient servers do). Empty segments (`a&&b`)
/// are skipped; a segment without `=` is a name with an empty value.
pub(crate) fn form_pairs(input: &[u8]) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    input
        .split(|&b| b == b'&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| match segment.iter().position(|&b| b == b'=') {
            Some(i) => (form_decode(&segment[..i]), form_decode(&segment[i + 1..])),
            None => (form_decode(segment), Vec::new()),
        })
}

fn form_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = input.get(i + 1).copied().and_then(hex_value);
                let lo = input.get(i + 2).copied().and_then(hex_value);
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push((hi << 4) | lo);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &str) -> Vec<(String, String)> {
        form_pairs(s.as_bytes())
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn encodes_per_rfc5849() {
        assert_eq!(percent_encode("AZaz09-._~"), "AZaz09-._~");
        assert_eq!(percent_encode("a b+c"), "a%20b%2Bc");
        assert_eq!(percent_encode("*'()!"), "%2A%27%28%29%21");
        assert_eq!(percent_encode("/?#[]@&=%"), "%2F%3F%23%5B%5D%40%26%3D%25");
        assert_eq!(percent_encode("é☃"), "%C3%A9%E2%98%83");
        assert_eq!(percent_encode(""), "");
        assert_eq!(percent_encode_bytes(&[0x00, 0x7F, 0xFF]), "%00%7F%FF");
    }

    #[test]
    fn decodes_forms() {
        assert_eq!(
            pairs("a=1&b=x+y&c=%2B%7e&&d&e="),
            [("a", "1"), ("b", "x y"), ("c", "+~"), ("d", ""), ("e", ""),]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(pairs("k=a=b"), [("k".to_owned(), "a=b".to_owned())]);
        assert_eq!(pairs("%zz=%4"), [("%zz".to_owned(), "%4".to_owned())]);
        let raw: Vec<_> = form_pairs(b"x=%FF%00").collect();
        assert_eq!(raw, [(b"x".to_vec(), vec![0xFF, 0x00])]);
    }
}
