#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Request builders: authorization URL, token, revocation and introspection
//! requests.

use std::collections::BTreeMap;

use keyrelay_catalog::TokenEndpointAuthMethod;
use keyrelay_oauth::{
    AuthorizationRequest, ClientCredentials, FormRequest, Grant, OAuthError, authorization_url,
    introspection_request, parse_introspection, revocation_request, token_request,
};
use keyrelay_vault::{AuthorizationCode, ClientSecret, PkceVerifier, RefreshToken};
use url::form_urlencoded;

const TOKEN_URL: &str = "https://server.example.com/token";

fn creds<'a>(
    id: &'a str,
    secret: &'a ClientSecret,
    method: TokenEndpointAuthMethod,
) -> ClientCredentials<'a> {
    ClientCredentials {
        client_id: id,
        client_secret: secret,
        method,
    }
}

fn pairs(body: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn no_extras() -> BTreeMap<String, String> {
    BTreeMap::new()
}

fn assert_common_headers(req: &FormRequest) {
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(req.header("Accept"), Some("application/json"));
}

// --------------------------------------------------------- token requests

#[test]
fn authorization_code_with_basic_auth_rfc6749_example() {
    let secret = ClientSecret::new("7Fjfp0ZBr1KtDRbnfVdmIw");
    let code = AuthorizationCode::new("SplxlOBeZQQYbYS6WxSbIA");
    let grant = Grant::AuthorizationCode {
        code: &code,
        redirect_uri: "https://client.example.com/cb",
        code_verifier: None,
    };
    let req = token_request(
        TOKEN_URL,
        &grant,
        &creds(
            "s6BhdRkqt3",
            &secret,
            TokenEndpointAuthMethod::ClientSecretBasic,
        ),
        " ",
        &no_extras(),
    );
    assert_eq!(req.url, TOKEN_URL);
    assert_eq!(
        req.headers,
        vec![
            (
                "Content-Type",
                "application/x-www-form-urlencoded".to_owned()
            ),
            ("Accept", "application/json".to_owned()),
            (
                "Authorization",
                "Basic czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3".to_owned()
            ),
        ]
    );
    assert_eq!(
        req.body,
        "grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA&redirect_uri=https%3A%2F%2Fclient.example.com%2Fcb"
    );
}

#[test]
fn authorization_code_with_post_auth_and_pkce() {
    let secret = ClientSecret::new("7Fjfp0ZBr1KtDRbnfVdmIw");
    let code = AuthorizationCode::new("SplxlOBeZQQYbYS6WxSbIA");
    let verifier = PkceVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
    let grant = Grant::AuthorizationCode {
        code: &code,
        redirect_uri: "https://client.example.com/cb",
        code_verifier: Some(&verifier),
    };
    let req = token_request(
        TOKEN_URL,
        &grant,
        &creds(
            "s6BhdRkqt3",
            &secret,
            TokenEndpointAuthMethod::ClientSecretPost,
        ),
        " ",
        &no_extras(),
    );
    assert_common_headers(&req);
    assert_eq!(req.header("Authorization"), None);
    assert_eq!(req.headers.len(), 2);
    assert_eq!(
        req.body,
        "grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA\
         &redirect_uri=https%3A%2F%2Fclient.example.com%2Fcb\
         &code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk\
         &client_id=s6BhdRkqt3&client_secret=7Fjfp0ZBr1KtDRbnfVdmIw"
    );
}

#[test]
fn basic_auth_form_encodes_before_base64() {
    let secret = ClientSecret::new("a:b+c/d");
    let grant = Grant::ClientCredentials { scopes: &[] };
    let req = token_request(
        TOKEN_URL,
        &grant,
        &creds(
            "client id:1",
            &secret,
            TokenEndpointAuthMethod::ClientSecretBasic,
        ),
        " ",
        &no_extras(),
    );
    // base64("client+id%3A1:a%3Ab%2Bc%2Fd")
    assert_eq!(
        req.header("Authorization"),
        Some("Basic Y2xpZW50K2lkJTNBMTphJTNBYiUyQmMlMkZk")
    );
    assert_eq!(req.body, "grant_type=client_credentials");
}

#[test]
fn post_auth_encodes_special_characters() {
    let secret = ClientSecret::new("a:b+c/d &=é");
    let grant = Grant::ClientCredentials { scopes: &[] };
    let req = token_request(
        TOKEN_URL,
        &grant,
        &creds("id&x=1", &secret, TokenEndpointAuthMethod::ClientSecretPost),
        " ",
        &no_extras(),
    );
    assert_eq!(
        pairs(&req.body),
        vec![
            ("grant_type".into(), "client_credentials".into()),
            ("client_id".into(), "id&x=1".into()),
            ("client_secret".into(), "a:b+c/d &=é".into()),
        ]
    );
}

#[test]
fn refresh_grant_with_and_without_scopes() {
    let secret = ClientSecret::new("s3cr3t");
    let rt = RefreshToken::new("tGzv3JOkF0XG5Qx2TlKWIA");
    let client = creds("cid", &secret, TokenEndpointAuthMethod::ClientSecretBasic);
    let scopes = vec!["read".to_owned(), "write".to_owned()];

    let req = token_request(
        TOKEN_URL,
        &Grant::RefreshToken {
            refresh_token: &rt,
            scopes: Some(&scopes),
        },
        &client,
        ",",
        &no_extras(),
    );
    assert_eq!(
        req.body,
        "grant_type=refresh_token&refresh_token=tGzv3JOkF0XG5Qx2TlKWIA&scope=read%2Cwrite"
    );

    for scopes in [None, Some(&[][..])] {
        let req = token_request(
            TOKEN_URL,
            &Grant::RefreshToken {
                refresh_token: &rt,
                scopes,
            },
            &client,
            " ",
            &no_extras(),
        );
        assert_eq!(
            req.body,
            "grant_type=refresh_token&refresh_token=tGzv3JOkF0XG5Qx2TlKWIA"
        );
    }
}

#[test]
fn client_credentials_grant_with_scopes() {
    let secret = ClientSecret::new("s3cr3t");
    let scopes = vec!["api://x/.default".to_owned(), "b".to_owned()];
    let req = token_request(
        TOKEN_URL,
        &Grant::ClientCredentials { scopes: &scopes },
        &creds("cid", &secret, TokenEndpointAuthMethod::ClientSecretBasic),
        " ",
        &no_extras(),
    );
    assert_eq!(
        req.body,
        "grant_type=client_credentials&scope=api%3A%2F%2Fx%2F.default+b"
    );
    // An empty separator means a space.
    let req = token_request(
        TOKEN_URL,
        &Grant::ClientCredentials { scopes: &scopes },
        &creds("cid", &secret, TokenEndpointAuthMethod::ClientSecretBasic),
        "",
        &no_extras(),
    );
    assert!(req.body.ends_with("&scope=api%3A%2F%2Fx%2F.default+b"));
}

#[test]
fn extra_token_params_cannot_override() {
    let secret = ClientSecret::new("s3cr3t");
    let code = AuthorizationCode::new("the-code");
    let extras: BTreeMap<String, String> = [
        ("grant_type", "password"),
        ("code", "other"),
        ("redirect_uri", "https://evil.example"),
        ("client_id", "other-client"),
        ("client_secret", "other-secret"),
        ("code_verifier", "x"),
        ("audience", "https://api.example.com"),
        ("scope", "openid offline_access"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let req = token_request(
        TOKEN_URL,
        &Grant::AuthorizationCode {
            code: &code,
            redirect_uri: "https://client.example.com/cb",
            code_verifier: None,
        },
        &creds("cid", &secret, TokenEndpointAuthMethod::ClientSecretPost),
        " ",
        &extras,
    );
    assert_eq!(
        pairs(&req.body),
        vec![
            ("grant_type".into(), "authorization_code".into()),
            ("code".into(), "the-code".into()),
            (
                "redirect_uri".into(),
                "https://client.example.com/cb".into()
            ),
            ("client_id".into(), "cid".into()),
            ("client_secret".into(), "s3cr3t".into()),
            ("audience".into(), "https://api.example.com".into()),
            // No scope is sent for the code exchange, so a provider may add one.
            ("scope".into(), "openid offline_access".into()),
        ]
    );

    // When the request sends a scope itself, the extra one is skipped.
    let scopes = vec!["a".to_owned()];
    let req = token_request(
        TOKEN_URL,
        &Grant::ClientCredentials { scopes: &scopes },
        &creds("cid", &secret, TokenEndpointAuthMethod::ClientSecretBasic),
        " ",
        &extras,
    );
    assert_eq!(
        req.body,
        "grant_type=client_credentials&scope=a&audience=https%3A%2F%2Fapi.example.com"
    );
}

#[test]
fn form_request_debug_hides_secrets() {
    let secret = ClientSecret::new("super-secret-client-value");
    let code = AuthorizationCode::new("auth-code-value-xyz");
    let verifier = PkceVerifier::new("verifier-value-abc");
    let rt = RefreshToken::new("refresh-value-def");
    for method in [
        TokenEndpointAuthMethod::ClientSecretBasic,
        TokenEndpointAuthMethod::ClientSecretPost,
    ] {
        let client = creds("cid", &secret, method);
        let reqs = [
            token_request(
                TOKEN_URL,
                &Grant::AuthorizationCode {
                    code: &code,
                    redirect_uri: "https://client.example.com/cb",
                    code_verifier: Some(&verifier),
                },
                &client,
                " ",
                &no_extras(),
            ),
            token_request(
                TOKEN_URL,
                &Grant::RefreshToken {
                    refresh_token: &rt,
                    scopes: None,
                },
                &client,
                " ",
                &no_extras(),
            ),
            revocation_request(TOKEN_URL, "refresh-value-def", "refresh_token", &client),
        ];
        for req in reqs {
            let debug = format!("{req:?}");
            assert!(debug.contains(TOKEN_URL));
            assert!(debug.contains("Content-Type"));
            for s in [
                "super-secret-client-value",
                "auth-code-value-xyz",
                "verifier-value-abc",
                "refresh-value-def",
                "Basic ",
                "application/json",
            ] {
                assert!(!debug.contains(s), "{s} in {debug}");
            }
        }
    }
}

// ------------------------------------------------ revocation, introspection

#[test]
fn revocation_request_rfc7009() {
    let secret = ClientSecret::new("gX1fBat3bV");
    let req = revocation_request(
        "https://server.example.com/revoke",
        "45ghiukldjahdnhzdauz/",
        "refresh_token",
        &creds(
            "s6BhdRkqt3",
            &secret,
            TokenEndpointAuthMethod::ClientSecretBasic,
        ),
    );
    assert_eq!(req.url, "https://server.example.com/revoke");
    assert_eq!(
        req.header("Authorization"),
        Some("Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW")
    );
    assert_common_headers(&req);
    assert_eq!(
        req.body,
        "token=45ghiukldjahdnhzdauz%2F&token_type_hint=refresh_token"
    );

    let req = revocation_request(
        "https://server.example.com/revoke",
        "at",
        "access_token",
        &creds(
            "s6BhdRkqt3",
            &secret,
            TokenEndpointAuthMethod::ClientSecretPost,
        ),
    );
    assert_eq!(
        req.body,
        "token=at&token_type_hint=access_token&client_id=s6BhdRkqt3&client_secret=gX1fBat3bV"
    );
}

#[test]
fn introspection_request_rfc7662() {
    let secret = ClientSecret::new("gX1fBat3bV");
    let req = introspection_request(
        "https://server.example.com/introspect",
        "mF_9.B5f-4.1JqM",
        &creds(
            "s6BhdRkqt3",
            &secret,
            TokenEndpointAuthMethod::ClientSecretBasic,
        ),
    );
    assert_eq!(
        req.body,
        "token=mF_9.B5f-4.1JqM&token_type_hint=access_token"
    );
    assert_eq!(
        req.header("Authorization"),
        Some("Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW")
    );
}

#[test]
fn parse_introspection_replies() {
    // RFC 7662 §2.2 example.
    let body = br#"{
      "active": true,
      "client_id": "l238j323ds-23ij4",
      "username": "jdoe",
      "scope": "read write dolphin",
      "sub": "Z5O3upPC88QrAjx00dis",
      "aud": "https://protected.example.net/resource",
      "iss": "https://server.example.com/",
      "exp": 1419356238,
      "iat": 1419350238,
      "extension_field": "twenty-seven"
    }"#;
    let i = parse_introspection(body).unwrap();
    assert!(i.active);
    assert_eq!(i.client_id.as_deref(), Some("l238j323ds-23ij4"));
    assert_eq!(i.scope.as_deref(), Some("read write dolphin"));
    assert_eq!(i.sub.as_deref(), Some("Z5O3upPC88QrAjx00dis"));
    assert_eq!(i.exp, Some(1_419_356_238));

    let i = parse_introspection(br#"{"active": false}"#).unwrap();
    assert_eq!(
        i,
        keyrelay_oauth::Introspection {
            active: false,
            scope: None,
            exp: None,
            sub: None,
            client_id: None
        }
    );
    let i = parse_introspection(br#"{"active": "true", "exp": "1419356238"}"#).unwrap();
    assert!(i.active);
    assert_eq!(i.exp, Some(1_419_356_238));

    for bad in [
        &b"{}"[..],
        b"[]",
        b"not json",
        br#"{"active": 1}"#,
        br#"{"error": "invalid_client"}"#,
    ] {
        assert!(
            matches!(parse_introspection(bad), Err(OAuthError::Introspection(_))),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

// ------------------------------------------------------ authorization URL

fn query(url: &url::Url) -> Vec<(String, String)> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[test]
fn authorization_url_has_all_params_encoded() {
    let scopes = vec![
        "openid".to_owned(),
        "https://www.googleapis.com/auth/drive".to_owned(),
    ];
    let extras: BTreeMap<String, String> = [("access_type", "offline"), ("prompt", "consent")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let req = AuthorizationRequest {
        authorization_endpoint: "https://accounts.google.com/o/oauth2/v2/auth",
        client_id: "1234.apps.googleusercontent.com",
        redirect_uri: "https://keyrelay.example.com/oauth/callback?x=1&y=2",
        scopes: &scopes,
        scope_separator: " ",
        state: "af0ifjsldkj",
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        extra_params: &extras,
    };
    let url = authorization_url(&req).unwrap();
    assert_eq!(
        url.as_str(),
        "https://accounts.google.com/o/oauth2/v2/auth?response_type=code\
         &client_id=1234.apps.googleusercontent.com\
         &redirect_uri=https%3A%2F%2Fkeyrelay.example.com%2Foauth%2Fcallback%3Fx%3D1%26y%3D2\
         &scope=openid+https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fdrive\
         &state=af0ifjsldkj\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
         &code_challenge_method=S256\
         &access_type=offline&prompt=consent"
    );
}

#[test]
fn authorization_url_without_scopes_or_pkce() {
    let req = AuthorizationRequest {
        authorization_endpoint: "https://github.com/login/oauth/authorize",
        client_id: "Iv1.abc",
        redirect_uri: "http://localhost:3003/cb",
        scopes: &[],
        scope_separator: ",",
        state: "s",
        code_challenge: None,
        extra_params: &BTreeMap::new(),
    };
    let url = authorization_url(&req).unwrap();
    let q = query(&url);
    let keys: Vec<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["response_type", "client_id", "redirect_uri", "state"]
    );
}

#[test]
fn authorization_url_keeps_endpoint_query_and_refuses_overrides() {
    let scopes = vec!["read".to_owned(), "write".to_owned()];
    let extras: BTreeMap<String, String> = [
        ("state", "attacker-state"),
        ("redirect_uri", "https://evil.example/cb"),
        ("response_type", "token"),
        ("client_id", "other"),
        ("code_challenge_method", "plain"),
        ("scope", "admin"),
        ("tenant", "from-extras"),
        ("audience", "api"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let req = AuthorizationRequest {
        authorization_endpoint: "https://auth.example.com/authorize?tenant=acme&state=stale",
        client_id: "cid",
        redirect_uri: "https://keyrelay.example.com/cb",
        scopes: &scopes,
        scope_separator: ",",
        state: "real-state",
        code_challenge: Some("chal"),
        extra_params: &extras,
    };
    let url = authorization_url(&req).unwrap();
    assert_eq!(
        query(&url),
        [
            ("tenant", "acme"),
            ("response_type", "code"),
            ("client_id", "cid"),
            ("redirect_uri", "https://keyrelay.example.com/cb"),
            ("scope", "read,write"),
            ("state", "real-state"),
            ("code_challenge", "chal"),
            ("code_challenge_method", "S256"),
            ("audience", "api"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
}

#[test]
fn authorization_url_keeps_endpoint_query_verbatim() {
    let req = AuthorizationRequest {
        authorization_endpoint: "https://auth.example.com/authorize?a=b%20c&flag",
        client_id: "cid",
        redirect_uri: "https://keyrelay.example.com/cb",
        scopes: &[],
        scope_separator: " ",
        state: "st",
        code_challenge: None,
        extra_params: &BTreeMap::new(),
    };
    let url = authorization_url(&req).unwrap();
    assert!(
        url.as_str()
            .starts_with("https://auth.example.com/authorize?a=b%20c&flag&response_type=code"),
        "{url}"
    );
}

#[test]
fn authorization_url_refuses_bad_endpoints() {
    for endpoint in [
        "not a url",
        "/relative/authorize",
        "ftp://example.com/authorize",
        "https://example.com/authorize#frag",
        "javascript:alert(1)",
    ] {
        let req = AuthorizationRequest {
            authorization_endpoint: endpoint,
            client_id: "cid",
            redirect_uri: "https://keyrelay.example.com/cb",
            scopes: &[],
            scope_separator: " ",
            state: "st",
            code_challenge: None,
            extra_params: &BTreeMap::new(),
        };
        assert!(
            matches!(authorization_url(&req), Err(OAuthError::InvalidUrl(_))),
            "{endpoint}"
        );
    }
}
