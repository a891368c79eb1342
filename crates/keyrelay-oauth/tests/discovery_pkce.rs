#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Discovery (RFC 8414 / OpenID) and PKCE (RFC 7636).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyrelay_oauth::{
    OAuthError, ServerMetadata, discovery_urls, new_state, parse_metadata, pkce_s256,
    s256_challenge,
};

#[test]
fn rfc7636_appendix_b() {
    assert_eq!(
        s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}

#[test]
fn pkce_pairs_are_fresh_and_well_formed() {
    let a = pkce_s256();
    let b = pkce_s256();
    for p in [&a, &b] {
        let v = p.verifier.expose_secret();
        assert_eq!(v.len(), 43);
        assert!(
            v.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(p.challenge, s256_challenge(v));
        assert_eq!(p.challenge.len(), 43);
    }
    assert_ne!(a.verifier, b.verifier);
    assert!(!format!("{a:?}").contains(a.verifier.expose_secret()));
}

#[test]
fn states_are_256_bits() {
    let s = new_state();
    assert_eq!(s.expose_secret().len(), 43);
    assert_eq!(URL_SAFE_NO_PAD.decode(s.expose_secret()).unwrap().len(), 32);
    assert_ne!(new_state(), s);
}

#[test]
fn discovery_urls_without_path() {
    for issuer in ["https://as.example.com", "https://as.example.com/"] {
        assert_eq!(
            discovery_urls(issuer).unwrap(),
            [
                "https://as.example.com/.well-known/oauth-authorization-server",
                "https://as.example.com/.well-known/openid-configuration",
            ]
        );
    }
}

#[test]
fn discovery_urls_with_path_rfc8414_example() {
    for issuer in [
        "https://as.example.com/tenant1",
        "https://as.example.com/tenant1/",
    ] {
        assert_eq!(
            discovery_urls(issuer).unwrap(),
            [
                "https://as.example.com/.well-known/oauth-authorization-server/tenant1",
                "https://as.example.com/tenant1/.well-known/openid-configuration",
            ]
        );
    }
    assert_eq!(
        discovery_urls("http://localhost:8080/realms/main").unwrap(),
        [
            "http://localhost:8080/.well-known/oauth-authorization-server/realms/main",
            "http://localhost:8080/realms/main/.well-known/openid-configuration",
        ]
    );
}

#[test]
fn discovery_urls_refuses_bad_issuers() {
    for issuer in [
        "as.example.com",
        "ftp://as.example.com",
        "https://as.example.com/?x=1",
        "https://as.example.com/#f",
    ] {
        assert!(
            matches!(discovery_urls(issuer), Err(OAuthError::InvalidUrl(_))),
            "{issuer}"
        );
    }
}

const GOOGLE_LIKE: &str = r#"{
  "issuer": "https://accounts.google.com",
  "authorization_endpoint": "https://accounts.google.com/o/oauth2/v2/auth",
  "device_authorization_endpoint": "https://oauth2.googleapis.com/device/code",
  "token_endpoint": "https://oauth2.googleapis.com/token",
  "userinfo_endpoint": "https://openidconnect.googleapis.com/v1/userinfo",
  "revocation_endpoint": "https://oauth2.googleapis.com/revoke",
  "jwks_uri": "https://www.googleapis.com/oauth2/v3/certs",
  "response_types_supported": ["code", "token", "id_token"],
  "scopes_supported": ["openid", "email", "profile"],
  "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
  "code_challenge_methods_supported": ["plain", "S256"],
  "grant_types_supported": ["authorization_code", "refresh_token"]
}"#;

#[test]
fn parse_metadata_ok() {
    let m = parse_metadata(GOOGLE_LIKE.as_bytes(), "https://accounts.google.com").unwrap();
    assert_eq!(
        m.token_endpoint.as_deref(),
        Some("https://oauth2.googleapis.com/token")
    );
    assert_eq!(
        m.revocation_endpoint.as_deref(),
        Some("https://oauth2.googleapis.com/revoke")
    );
    assert_eq!(m.introspection_endpoint, None);
    assert!(m.supports_s256());
    assert_eq!(m.scopes_supported, ["openid", "email", "profile"]);
    assert!(!m.authorization_response_iss_parameter_supported);
    // One trailing slash on either side is tolerated.
    assert!(parse_metadata(GOOGLE_LIKE.as_bytes(), "https://accounts.google.com/").is_ok());
}

#[test]
fn parse_metadata_minimal_and_nulls() {
    let m: ServerMetadata = parse_metadata(
        br#"{"issuer": "https://as.example.com/tenant1/", "code_challenge_methods_supported": null,
             "authorization_response_iss_parameter_supported": true}"#,
        "https://as.example.com/tenant1",
    )
    .unwrap();
    assert!(!m.supports_s256());
    assert!(m.authorization_response_iss_parameter_supported);
    assert!(m.token_endpoint.is_none());

    let m = parse_metadata(
        br#"{"issuer": "https://as.example.com", "code_challenge_methods_supported": ["plain"]}"#,
        "https://as.example.com",
    )
    .unwrap();
    assert!(!m.supports_s256());
}

#[test]
fn parse_metadata_issuer_mismatch_refused() {
    for expected in [
        "https://evil.example.com",
        "https://accounts.google.com/tenant",
        "https://ACCOUNTS.google.com",
        "https://accounts.google.com//",
        "http://accounts.google.com",
    ] {
        let e = parse_metadata(GOOGLE_LIKE.as_bytes(), expected).unwrap_err();
        assert!(
            matches!(&e, OAuthError::Discovery(m) if m.contains("issuer mismatch")),
            "{expected}: {e}"
        );
    }
}

#[test]
fn parse_metadata_refuses_relative_endpoints_and_garbage() {
    let e = parse_metadata(
        br#"{"issuer": "https://as.example.com", "token_endpoint": "/token"}"#,
        "https://as.example.com",
    )
    .unwrap_err();
    assert_eq!(
        e,
        OAuthError::Discovery("token_endpoint is not an absolute http(s) URL".into())
    );
    for body in [&b"<html>"[..], b"{}", b"[]", br#"{"issuer": 5}"#] {
        assert!(
            matches!(
                parse_metadata(body, "https://as.example.com"),
                Err(OAuthError::Discovery(_))
            ),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}
