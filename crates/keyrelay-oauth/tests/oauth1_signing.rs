#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! OAuth 1.0a signing against published vectors (RFC 5849, X's
//! walk-through), values computed independently, and edge cases.

use keyrelay_oauth::oauth1::{
    Oauth1Error, Oauth1Signer, SignatureMethod, SigningParams, form_body_for_signing,
    percent_encode, signature_base_string,
};
use keyrelay_vault::{ClientSecret, TokenSecret};

fn params(nonce: &str, timestamp: u64) -> SigningParams {
    SigningParams {
        nonce: nonce.to_owned(),
        timestamp,
    }
}

/// The `oauth_signature` of a header, decoded.
fn signature_of(header: &str) -> String {
    let encoded = header
        .split("oauth_signature=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("header has an oauth_signature");
    percent_decode(encoded)
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned()
}

fn photos_signer() -> Oauth1Signer {
    Oauth1Signer::new(
        SignatureMethod::HmacSha1,
        "dpf43f3p2l4k3l03",
        ClientSecret::new("kd94hf93k423kf44"),
    )
    .unwrap()
    .with_realm("Photos")
}

// ------------------------------------------------------- RFC 5849 §1.2

#[test]
fn rfc5849_temporary_credentials_request() {
    let header = photos_signer()
        .authorization_header(
            "POST",
            "https://photos.example.net/initiate",
            None,
            &[("oauth_callback", "http://printer.example.com/ready")],
            &params("wIjqoS", 137131200),
        )
        .unwrap();
    assert_eq!(
        header.expose_secret(),
        "OAuth realm=\"Photos\", \
         oauth_consumer_key=\"dpf43f3p2l4k3l03\", \
         oauth_signature_method=\"HMAC-SHA1\", \
         oauth_timestamp=\"137131200\", \
         oauth_nonce=\"wIjqoS\", \
         oauth_callback=\"http%3A%2F%2Fprinter.example.com%2Fready\", \
         oauth_signature=\"74KNZJeDHnMBp0EMJ9ZHt%2FXKycU%3D\""
    );
    assert_eq!(
        signature_of(header.expose_secret()),
        "74KNZJeDHnMBp0EMJ9ZHt/XKycU="
    );
}

#[test]
fn rfc5849_token_request() {
    let header = photos_signer()
        .with_token("hh5s93j4hdidpola", TokenSecret::new("hdhd0244k9j7ao03"))
        .authorization_header(
            "POST",
            "https://photos.example.net/token",
            None,
            &[("oauth_verifier", "hfdp7dh39dks9884")],
            &params("walatlh", 137131201),
        )
        .unwrap();
    assert_eq!(
        header.expose_secret(),
        "OAuth realm=\"Photos\", \
         oauth_consumer_key=\"dpf43f3p2l4k3l03\", \
         oauth_token=\"hh5s93j4hdidpola\", \
         oauth_signature_method=\"HMAC-SHA1\", \
         oauth_timestamp=\"137131201\", \
         oauth_nonce=\"walatlh\", \
         oauth_verifier=\"hfdp7dh39dks9884\", \
         oauth_signature=\"gKgrFCywp7rO0OXSjdot%2FIHF7IU%3D\""
    );
}

#[test]
fn rfc5849_resource_request() {
    let signer =
        photos_signer().with_token("nnch734d00sl2jdk", TokenSecret::new("pfkkdhi9sl3r4s00"));
    let url = "http://photos.example.net/photos?file=vacation.jpg&size=original";
    let p = params("chapoH", 137131202);
    assert_eq!(
        signer.base_string("GET", url, None, &[], &p).unwrap(),
        "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26\
         oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3DchapoH%26\
         oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131202%26\
         oauth_token%3Dnnch734d00sl2jdk%26size%3Doriginal"
    );
    let header = signer
        .authorization_header("GET", url, None, &[], &p)
        .unwrap();
    assert_eq!(
        header.expose_secret(),
        "OAuth realm=\"Photos\", \
         oauth_consumer_key=\"dpf43f3p2l4k3l03\", \
         oauth_token=\"nnch734d00sl2jdk\", \
         oauth_signature_method=\"HMAC-SHA1\", \
         oauth_timestamp=\"137131202\", \
         oauth_nonce=\"chapoH\", \
         oauth_signature=\"MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D\""
    );
    // Lowercase method, uppercase host, explicit default port: same request.
    let same = signer
        .authorization_header(
            "get",
            "HTTP://Photos.Example.NET:80/photos?size=original&file=vacation.jpg",
            None,
            &[],
            &p,
        )
        .unwrap();
    assert_eq!(same, header);
}

// ------------------------------------------------------- RFC 5849 §3.4.1.1

const RFC_3_4_1_1_BASE: &str = "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q\
    %26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2\
    %26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201\
    %26oauth_token%3Dkkk9d7dh3k39sjv7";

fn rfc_3_4_1_1_signer() -> Oauth1Signer {
    Oauth1Signer::new(
        SignatureMethod::HmacSha1,
        "9djdj82h48djs9d2",
        ClientSecret::new("j49sk3j29djd"),
    )
    .unwrap()
    .with_token("kkk9d7dh3k39sjv7", TokenSecret::new("dh893hdasih9"))
    .with_realm("Example")
}

const RFC_3_4_1_1_URL: &str = "http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b";

#[test]
fn rfc5849_base_string_example() {
    let p = params("7d8f3e4a", 137131201);
    let body = b"c2&a3=2+q".as_slice();
    let signer = rfc_3_4_1_1_signer();
    assert_eq!(
        signer
            .base_string("POST", RFC_3_4_1_1_URL, Some(body), &[], &p)
            .unwrap(),
        RFC_3_4_1_1_BASE
    );
    // The same through the free function, with realm and a stray signature
    // among the protocol parameters: both are left out.
    assert_eq!(
        signature_base_string(
            "POST",
            RFC_3_4_1_1_URL,
            Some(body),
            &[
                ("realm", "Example"),
                ("oauth_consumer_key", "9djdj82h48djs9d2"),
                ("oauth_token", "kkk9d7dh3k39sjv7"),
                ("oauth_signature_method", "HMAC-SHA1"),
                ("oauth_timestamp", "137131201"),
                ("oauth_nonce", "7d8f3e4a"),
                ("oauth_signature", "bYT5CMsGcbgUdFHObYMEfcx6bsw%3D"),
            ],
        )
        .unwrap(),
        RFC_3_4_1_1_BASE
    );
    // The RFC prints `bYT5CMsGcbgUdFHObYMEfcx6bsw=`, which does not match its
    // own base string; this is the HMAC-SHA1 of the base string above.
    let header = signer
        .authorization_header("POST", RFC_3_4_1_1_URL, Some(body), &[], &p)
        .unwrap();
    assert_eq!(
        signature_of(header.expose_secret()),
        "r6/TJjbCOr97/+UU0NsvSne7s5g="
    );
    assert!(
        header
            .expose_secret()
            .starts_with("OAuth realm=\"Example\", oauth_consumer_key=")
    );
}

// ------------------------------------------------------- X / Twitter

const X_BASE: &str = "POST&https%3A%2F%2Fapi.twitter.com%2F1.1%2Fstatuses%2Fupdate.json&\
    include_entities%3Dtrue%26oauth_consumer_key%3Dxvz1evFS4wEEPTGEFPHBog%26oauth_nonce%3D\
    kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg%26oauth_signature_method%3DHMAC-SHA1%26\
    oauth_timestamp%3D1318622958%26oauth_token%3D370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb\
    %26oauth_version%3D1.0%26status%3DHello%2520Ladies%2520%252B%2520Gentlemen%252C%2520a%2520\
    signed%2520OAuth%2520request%2521";

fn x_signer(method: SignatureMethod) -> Oauth1Signer {
    Oauth1Signer::new(
        method,
        "xvz1evFS4wEEPTGEFPHBog",
        ClientSecret::new("kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw"),
    )
    .unwrap()
    .with_token(
        "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
        TokenSecret::new("LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE"),
    )
    .with_oauth_version(true)
}

const X_URL: &str = "https://api.twitter.com/1.1/statuses/update.json?include_entities=true";
const X_BODY: &[u8] =
    b"status=Hello%20Ladies%20%2b%20Gentlemen%2c%20a%20signed%20OAuth%20request%21";

#[test]
fn x_creating_a_signature_example() {
    let signer = x_signer(SignatureMethod::HmacSha1);
    let p = params("kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg", 1318622958);
    assert_eq!(
        signer
            .base_string("POST", X_URL, Some(X_BODY), &[], &p)
            .unwrap(),
        X_BASE
    );
    let header = signer
        .authorization_header("POST", X_URL, Some(X_BODY), &[], &p)
        .unwrap();
    assert_eq!(
        signature_of(header.expose_secret()),
        "hCtSmYh+iHYCEqBWrE7C7hYmtUk="
    );
    assert!(
        header.expose_secret().contains(
            ", oauth_version=\"1.0\", oauth_signature=\"hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D\""
        )
    );
}

#[test]
fn hmac_sha256_matches_python_hmac() {
    // python3: base64(hmac.new(b"<enc cs>&<enc ts>", base, hashlib.sha256)) for
    // the X example with oauth_signature_method=HMAC-SHA256.
    let signer = x_signer(SignatureMethod::HmacSha256);
    let p = params("kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg", 1318622958);
    let base = signer
        .base_string("POST", X_URL, Some(X_BODY), &[], &p)
        .unwrap();
    assert_eq!(base, X_BASE.replace("HMAC-SHA1", "HMAC-SHA256"));
    let header = signer
        .authorization_header("POST", X_URL, Some(X_BODY), &[], &p)
        .unwrap();
    assert_eq!(
        signature_of(header.expose_secret()),
        "PLbq+OWUE2vwiOZeZBSR06GFvymUHoaBdCIHyD66IcM="
    );
    assert!(
        header
            .expose_secret()
            .contains("oauth_signature_method=\"HMAC-SHA256\"")
    );
}

#[test]
fn plaintext_signature_is_the_encoded_key() {
    let p = params("n", 1);
    let consumer = ClientSecret::new("c s&é~");
    let signer = Oauth1Signer::new(SignatureMethod::Plaintext, "key", consumer).unwrap();
    let header = signer
        .authorization_header("GET", "https://a.example/", None, &[], &p)
        .unwrap();
    assert_eq!(signature_of(header.expose_secret()), "c%20s%26%C3%A9~&");
    // In the header the key is encoded once more.
    assert!(
        header
            .expose_secret()
            .ends_with("oauth_signature=\"c%2520s%2526%25C3%25A9~%26\"")
    );

    let with_token = signer.with_token("t", TokenSecret::new("t+s"));
    let header = with_token
        .authorization_header("POST", "https://a.example/x?y=z", Some(b"q=1"), &[], &p)
        .unwrap();
    assert_eq!(
        signature_of(header.expose_secret()),
        "c%20s%26%C3%A9~&t%2Bs"
    );
    assert!(
        header
            .expose_secret()
            .contains("oauth_signature_method=\"PLAINTEXT\"")
    );
}

#[test]
fn empty_token_secret_keeps_the_ampersand() {
    let p = params("n", 1);
    let s = Oauth1Signer::new(SignatureMethod::Plaintext, "k", ClientSecret::new("cs"))
        .unwrap()
        .with_token("t", TokenSecret::new(""));
    let header = s
        .authorization_header("GET", "https://a.example/", None, &[], &p)
        .unwrap();
    assert_eq!(signature_of(header.expose_secret()), "cs&");
}

// ------------------------------------------------------- base string edge cases

fn base(method: &str, url: &str, body: Option<&str>) -> String {
    signature_base_string(method, url, body.map(str::as_bytes), &[]).unwrap()
}

/// The normalized parameters part of a base string, decoded once.
fn param_part(method: &str, url: &str, body: Option<&str>) -> String {
    let b = base(method, url, body);
    let encoded = b.splitn(3, '&').nth(2).unwrap().to_owned();
    percent_decode(&encoded)
}

#[test]
fn encoding_edge_cases() {
    assert_eq!(percent_encode("~-._"), "~-._");
    assert_eq!(percent_encode("a b"), "a%20b");
    assert_eq!(percent_encode("Ā😀"), "%C4%80%F0%9F%98%80");
    assert_eq!(
        percent_encode("!*'();:@&=+$,/?#[]"),
        "%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C%2F%3F%23%5B%5D"
    );
}

#[test]
fn parameters_are_decoded_then_reencoded() {
    // Non-ASCII UTF-8, `~` (unreserved, kept even when sent as %7E), space as
    // `+` or `%20`, `+` sent as %2B, and an empty value.
    assert_eq!(
        param_part(
            "GET",
            "https://a.example/p?n=%C3%A9%E2%82%AC&t=%7E~&s=a+b%20c&p=%2B&e=",
            None
        ),
        "e=&n=%C3%A9%E2%82%AC&p=%2B&s=a%20b%20c&t=~~"
    );
    // In a form body `+` is a space, signed as %20.
    assert_eq!(
        param_part("POST", "https://a.example/", Some("q=2+q&r=1%2B1")),
        "q=2%20q&r=1%2B1"
    );
    // A raw non-ASCII query (the URL parser encodes it as UTF-8 first).
    assert_eq!(
        param_part("GET", "https://a.example/?city=Zürich", None),
        "city=Z%C3%BCrich"
    );
    // Bytes that are not UTF-8 are signed as the bytes they are.
    assert_eq!(param_part("GET", "https://a.example/?b=%FF", None), "b=%FF");
}

#[test]
fn repeated_names_are_kept_and_sorted_by_value() {
    assert_eq!(
        param_part(
            "POST",
            "https://a.example/?a=3&b=1&a=1",
            Some("a=2&a=1&A=0")
        ),
        "A=0&a=1&a=1&a=2&a=3&b=1"
    );
    // Sorted on the encoded bytes: `%` sorts before letters and digits,
    // and `_` after uppercase.
    assert_eq!(
        param_part("GET", "https://a.example/?k=z&k=%21&k=_&k=Z&k=0", None),
        "k=%21&k=0&k=Z&k=_&k=z"
    );
}

#[test]
fn empty_values_and_names() {
    assert_eq!(
        param_part("GET", "https://a.example/?a&b=&c=1&&", None),
        "a=&b=&c=1"
    );
}

#[test]
fn ports_scheme_and_host() {
    let uri = |url: &str| base("GET", url, None).split('&').nth(1).unwrap().to_owned();
    assert_eq!(
        uri("HTTPS://API.Example.COM:443/Path"),
        "https%3A%2F%2Fapi.example.com%2FPath"
    );
    assert_eq!(uri("http://example.com:80/"), "http%3A%2F%2Fexample.com%2F");
    assert_eq!(
        uri("http://example.com:8080/"),
        "http%3A%2F%2Fexample.com%3A8080%2F"
    );
    assert_eq!(
        uri("https://example.com:80/"),
        "https%3A%2F%2Fexample.com%3A80%2F"
    );
    assert_eq!(uri("https://example.com"), "https%3A%2F%2Fexample.com%2F");
    assert_eq!(
        uri("https://example.com/a%20b?x#frag"),
        "https%3A%2F%2Fexample.com%2Fa%2520b"
    );
}

#[test]
fn method_is_uppercased_and_validated() {
    assert!(base("patch", "https://a.example/", None).starts_with("PATCH&"));
    assert!(matches!(
        signature_base_string("GET POST", "https://a.example/", None, &[]),
        Err(Oauth1Error::InvalidParameter(_))
    ));
}

#[test]
fn oauth_signature_in_the_request_is_not_signed() {
    assert_eq!(
        param_part(
            "POST",
            "https://a.example/?oauth_signature=x&a=1",
            Some("oauth_signature=y")
        ),
        "a=1"
    );
}

#[test]
fn only_form_bodies_are_signed() {
    let body = br#"{"a":1}"#.as_slice();
    let signed = form_body_for_signing(Some("application/json"), body);
    assert_eq!(signed, None);
    assert_eq!(
        signature_base_string("POST", "https://a.example/", signed, &[]).unwrap(),
        "POST&https%3A%2F%2Fa.example%2F&"
    );
}

// ------------------------------------------------------- signer behaviour

#[test]
fn extra_protocol_parameters_are_checked() {
    let s = photos_signer();
    let p = params("n", 1);
    let url = "https://a.example/";
    for extra in [
        vec![("callback", "x")],
        vec![("oauth_", "x")],
        vec![("oauth_nonce", "x")],
        vec![("oauth_signature", "x")],
        vec![("oauth_token", "x")],
        vec![("oauth_verifier", "a"), ("oauth_verifier", "b")],
    ] {
        let err = s
            .authorization_header("GET", url, None, &extra, &p)
            .unwrap_err();
        assert!(matches!(err, Oauth1Error::InvalidParameter(_)), "{extra:?}");
    }
    let err = s
        .authorization_header("GET", url, None, &[], &params("", 1))
        .unwrap_err();
    assert!(matches!(err, Oauth1Error::InvalidParameter(_)));
}

#[test]
fn header_values_are_encoded() {
    let s = Oauth1Signer::new(
        SignatureMethod::HmacSha1,
        "key with \"quotes\"",
        ClientSecret::new("s"),
    )
    .unwrap()
    .with_realm("My \"realm\"");
    let h = s
        .authorization_header(
            "GET",
            "https://a.example/",
            None,
            &[("oauth_callback", "oob")],
            &params("a b", 5),
        )
        .unwrap();
    let h = h.expose_secret();
    assert!(h.starts_with("OAuth realm=\"My%20%22realm%22\", "), "{h}");
    assert!(h.contains("oauth_consumer_key=\"key%20with%20%22quotes%22\""));
    assert!(h.contains("oauth_nonce=\"a%20b\""));
    assert!(h.contains("oauth_callback=\"oob\""));
    assert!(!h.contains("oauth_version"));
}

#[test]
fn generated_nonce_and_timestamp() {
    let a = SigningParams::generate().unwrap();
    let b = SigningParams::generate().unwrap();
    assert_eq!(a.nonce.len(), 32);
    assert!(a.nonce.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a.nonce, b.nonce);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(a.timestamp <= now && a.timestamp + 5 >= now);

    let s = photos_signer();
    let h1 = s.authorize("GET", "https://a.example/", None, &[]).unwrap();
    let h2 = s.authorize("GET", "https://a.example/", None, &[]).unwrap();
    assert_ne!(h1, h2, "fresh nonce per request");
}

#[test]
fn nothing_secret_in_debug() {
    let s = Oauth1Signer::new(
        SignatureMethod::Plaintext,
        "consumer-key",
        ClientSecret::new("consumer-secret-value"),
    )
    .unwrap()
    .with_token("token-value", TokenSecret::new("token-secret-value"));
    let header = s
        .authorization_header("GET", "https://a.example/", None, &[], &params("n", 1))
        .unwrap();
    assert!(header.expose_secret().contains("consumer-secret-value"));
    let debug = format!("{s:?} {header:?}");
    assert!(debug.contains("consumer-key"));
    for secret in ["consumer-secret-value", "token-secret-value", "token-value"] {
        assert!(!debug.contains(secret), "{debug}");
    }
    assert!(debug.contains("SignedHeader([redacted])"));
}

#[test]
fn rsa_sha1_is_not_made_with_a_consumer_secret() {
    let err = Oauth1Signer::new(SignatureMethod::RsaSha1, "k", ClientSecret::new("s")).unwrap_err();
    assert_eq!(err, Oauth1Error::RsaKeyRequired);
    assert!(err.to_string().contains("Oauth1Signer::rsa_sha1"));
}

#[cfg(not(feature = "rsa-sha1"))]
#[test]
fn rsa_sha1_without_the_feature_says_so() {
    let pem = include_str!("fixtures/oauth1-rsa-test-key.pem");
    let err = Oauth1Signer::rsa_sha1("k", pem).unwrap_err();
    assert_eq!(err, Oauth1Error::RsaSha1Unavailable);
    let msg = err.to_string();
    assert!(msg.contains("`rsa-sha1` feature"), "{msg}");
    assert!(msg.contains("RUSTSEC-2023-0071"), "{msg}");
}

// ------------------------------------------------------- RSA-SHA1

#[cfg(feature = "rsa-sha1")]
mod rsa_sha1 {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use rsa::pkcs8::DecodePublicKey as _;
    use rsa::{Pkcs1v15Sign, RsaPublicKey};
    use sha1::{Digest as _, Sha1};

    const PKCS8: &str = include_str!("fixtures/oauth1-rsa-test-key.pem");
    const PKCS1: &str = include_str!("fixtures/oauth1-rsa-test-key-pkcs1.pem");
    const PUBLIC: &str = include_str!("fixtures/oauth1-rsa-test-key.pub.pem");

    /// `printf '%s' "$BASE" | openssl dgst -sha1 -sign oauth1-rsa-test-key.pem | base64 -w0`
    /// (OpenSSL 3.0) for the RFC 5849 §1.2 resource request with RSA-SHA1.
    const OPENSSL_SIGNATURE: &str = "eizG9HFDkiPGglNqsD++vJCliF9R1IBLxcojGRhCoAcFcU8M/8G5FTIvKXYa8yh7i220vxZk4Z0mnykBjGiMa2tFQeX5GY6gNwWkqkcpJrlNPJW5jlvsAHaB0gQFZftej9NdUJg9Dh9+ulgtmXourvZN2scqXDbep5Ovxeb5bGEBhBp8kCh4L9WlKaN8f/hHcHU3G0uQBkQ1k2NKDEWsQs/c4R2iaPCB1wpFVkW+gJ/Q/UucTnRxcefgP/9hcA3yDuvU26MkkU215Be95ggyusAcffu7G3bmuDxR48Om+A0kUpWKso0FG1paVTYumorBNrZHUdipgSPPe1uF2juMUQ==";

    const BASE: &str = "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26\
        oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3DchapoH%26\
        oauth_signature_method%3DRSA-SHA1%26oauth_timestamp%3D137131202%26\
        oauth_token%3Dnnch734d00sl2jdk%26size%3Doriginal";

    fn sign(pem: &str) -> (String, String) {
        let signer = Oauth1Signer::rsa_sha1("dpf43f3p2l4k3l03", pem)
            .unwrap()
            // RSA-SHA1 ignores the token secret.
            .with_token("nnch734d00sl2jdk", TokenSecret::new("ignored"));
        assert_eq!(signer.signature_method(), SignatureMethod::RsaSha1);
        let url = "http://photos.example.net/photos?file=vacation.jpg&size=original";
        let p = params("chapoH", 137131202);
        let base = signer.base_string("GET", url, None, &[], &p).unwrap();
        let header = signer
            .authorization_header("GET", url, None, &[], &p)
            .unwrap();
        (base, signature_of(header.expose_secret()))
    }

    #[test]
    fn matches_openssl_for_pkcs8_and_pkcs1_keys() {
        let (base, sig) = sign(PKCS8);
        assert_eq!(base, BASE);
        assert_eq!(sig, OPENSSL_SIGNATURE);
        assert_eq!(sign(PKCS1).1, OPENSSL_SIGNATURE);
    }

    #[test]
    fn verifies_with_the_public_key() {
        let (base, sig) = sign(PKCS8);
        let public = RsaPublicKey::from_public_key_pem(PUBLIC).unwrap();
        let raw = STANDARD.decode(&sig).unwrap();
        let digest = Sha1::digest(base.as_bytes());
        public
            .verify(Pkcs1v15Sign::new::<Sha1>(), &digest, &raw)
            .unwrap();
        let other = Sha1::digest(format!("{base}x").as_bytes());
        assert!(
            public
                .verify(Pkcs1v15Sign::new::<Sha1>(), &other, &raw)
                .is_err()
        );
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        for pem in [
            "",
            "not a key",
            PUBLIC,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----",
        ] {
            let err = Oauth1Signer::rsa_sha1("k", pem).unwrap_err();
            assert!(matches!(err, Oauth1Error::InvalidRsaKey(_)), "{err}");
            assert!(!err.to_string().contains("MII"), "{err}");
        }
    }

    #[test]
    fn key_is_not_in_debug() {
        let signer = Oauth1Signer::rsa_sha1("k", PKCS8).unwrap();
        let debug = format!("{signer:?}");
        assert!(debug.contains("RsaSha1"), "{debug}");
        assert!(!debug.contains("RsaPrivateKey"), "{debug}");
        assert!(!debug.contains("BigUint"), "{debug}");
    }
}
