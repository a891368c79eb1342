//! Bundled catalog, validation table and serde behaviour.

use keyrelay_catalog::{
    AuthInjection, AuthMode, Catalog, CatalogError, ProviderDefinition, SignatureMethod,
    TokenEndpointAuthMethod, ValidationOptions, is_valid_provider_name,
};

const STRICT: ValidationOptions = ValidationOptions { allow_local: false };
const LOCAL: ValidationOptions = ValidationOptions { allow_local: true };

fn parse_def(json: &str) -> Result<ProviderDefinition, String> {
    serde_json::from_str(json).map_err(|e| e.to_string())
}

/// Deserializes then validates, returning all messages joined.
fn problems(json: &str, opts: &ValidationOptions) -> String {
    match parse_def(json) {
        Err(e) => e,
        Ok(def) => match def.validate(opts) {
            Ok(()) => String::new(),
            Err(e) => e.to_string(),
        },
    }
}

#[test]
fn bundled_catalog_validates() {
    let catalog = Catalog::bundled().expect("bundled catalog must be valid");
    assert!(catalog.len() >= 100, "only {} entries", catalog.len());
    for (name, def) in catalog.iter() {
        assert!(is_valid_provider_name(name), "{name}");
        def.validate(&STRICT)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(def.docs_url.is_some(), "{name} lacks docs_url");
        assert!(def.api_base_url.is_some(), "{name} lacks api_base_url");
    }
    let github = catalog.get("github").unwrap();
    assert_eq!(github.auth_mode, AuthMode::OAuth2);
    assert_eq!(
        github.token_endpoint_auth_method,
        TokenEndpointAuthMethod::ClientSecretPost
    );
    assert_eq!(catalog.get("slack").unwrap().scope_separator(), ",");
    assert!(!catalog.get("slack").unwrap().pkce);
    assert_eq!(catalog.get("google").unwrap().scope_separator(), " ");
    assert_eq!(catalog.get("twilio").unwrap().auth_mode, AuthMode::Basic);
    assert_eq!(
        catalog.get("anthropic").unwrap().auth_injection(),
        AuthInjection::Header {
            name: "x-api-key".into(),
            format: None
        }
    );
    assert!(catalog.get("nope").is_none());
}

#[test]
fn bad_definitions_are_refused_with_useful_messages() {
    let oauth2 = r#""auth_mode":"oauth2","authorization_endpoint":"https://p.example.com/auth","token_endpoint":"https://p.example.com/token""#;
    let oauth1 = r#""auth_mode":"oauth1","authorization_endpoint":"https://p.example.com/a","access_token_endpoint":"https://p.example.com/at""#;
    let cases: Vec<(String, &str)> = vec![
        (
            format!(r#"{{{oauth2},"token_endpiont":"https://x.example.com"}}"#),
            "unknown field `token_endpiont`",
        ),
        (r#"{"auth_mode":"oauth3"}"#.into(), "unknown variant `oauth3`"),
        (
            r#"{"auth_mode":"oauth2"}"#.into(),
            "authorization_endpoint: required for auth_mode oauth2",
        ),
        (
            r#"{"auth_mode":"oauth2","authorization_endpoint":"https://p.example.com/a"}"#.into(),
            "token_endpoint: required for auth_mode oauth2",
        ),
        (
            r#"{"auth_mode":"oauth2_client_credentials"}"#.into(),
            "token_endpoint: required for auth_mode oauth2_client_credentials",
        ),
        (
            r#"{"auth_mode":"oauth2","authorization_endpoint":"https://p.example.com/a","token_endpoint":"http://p.example.com/t"}"#.into(),
            "token_endpoint: must be an https:// URL (got http://p.example.com/t); http is only allowed with KEYRELAY_ALLOW_LOCAL_PROVIDERS=true",
        ),
        (
            format!(r#"{{{oauth2},"api_base_url":"https://127.0.0.1/api"}}"#),
            "api_base_url: host 127.0.0.1 is a local",
        ),
        (
            format!(r#"{{{oauth2},"api_base_url":"https://localhost:8080"}}"#),
            "api_base_url: host localhost is a local",
        ),
        (
            format!(r#"{{{oauth2},"api_base_url":"https://[::1]/"}}"#),
            "is a local",
        ),
        (
            format!(r#"{{{oauth2},"api_base_url":"https://10.1.2.3/"}}"#),
            "is a local",
        ),
        (
            format!(r#"{{{oauth2},"api_base_url":"ftp://files.example.com/"}}"#),
            "api_base_url: must be an https:// URL",
        ),
        (
            format!(r#"{{{oauth2},"api_base_url":"https://user:pw@api.example.com/"}}"#),
            "api_base_url: must not contain user:password@",
        ),
        (
            format!(r#"{{{oauth2},"revocation_endpoint":"https://p.example.com/r#frag"}}"#),
            "revocation_endpoint: must not contain a #fragment",
        ),
        (
            format!(r#"{{{oauth2},"api_base_url":"not a url"}}"#),
            "api_base_url: not an absolute URL",
        ),
        (
            format!(r#"{{{oauth2},"api_base_url":"https://{{connection_config.region}}.example.com"}}"#),
            "not declared in connection_config; add \"region\" to connection_config",
        ),
        (
            format!(r#"{{{oauth2},"connection_config":["region"],"api_base_url":"https://{{region}}.example.com"}}"#),
            "unknown placeholder {region}",
        ),
        (
            format!(r#"{{{oauth2},"connection_config":["s"],"api_base_url":"{{connection_config.s}}://example.com"}}"#),
            "placeholder {connection_config.s} is in the scheme",
        ),
        (
            format!(r#"{{{oauth2},"connection_config":["p"],"api_base_url":"https://example.com:{{connection_config.p}}/"}}"#),
            "is in the port",
        ),
        (
            format!(r#"{{{oauth2},"connection_config":["q"],"api_base_url":"https://example.com/x?a={{connection_config.q}}"}}"#),
            "is in the query or fragment",
        ),
        (
            format!(r#"{{{oauth2},"api_base_url":"https://{{connection_config.s.example.com"}}"#),
            "'{' without a matching '}'",
        ),
        (
            format!(r#"{{{oauth2},"auth_injection":{{"type":"header","name":"X Api Key"}}}}"#),
            "auth_injection.name: \"X Api Key\" is not a valid HTTP header name",
        ),
        (
            format!(r#"{{{oauth2},"auth_injection":{{"type":"header","name":"Host"}}}}"#),
            "auth_injection.name: the proxy sets Host itself",
        ),
        (
            format!(r#"{{{oauth2},"auth_injection":{{"type":"header","name":"Authorization","format":"Token {{secret}}"}}}}"#),
            "auth_injection.format: unknown placeholder {secret}",
        ),
        (
            format!(r#"{{{oauth2},"auth_injection":{{"type":"header","name":"Authorization","format":"Token"}}}}"#),
            "does not contain the credential",
        ),
        (
            format!(r#"{{{oauth2},"auth_injection":{{"type":"query","name":""}}}}"#),
            "auth_injection.name: \"\" is not a usable query parameter name",
        ),
        (
            format!(r#"{{{oauth2},"auth_injection":{{"type":"cookie","name":"a"}}}}"#),
            "unknown variant `cookie`",
        ),
        (
            format!(r#"{{{oauth2},"verification":{{"path":"user"}}}}"#),
            "verification.path: \"user\" must be a path relative to api_base_url starting with a single /",
        ),
        (
            format!(r#"{{{oauth2},"verification":{{"path":"//evil.example.com/x"}}}}"#),
            "verification.path",
        ),
        (
            format!(r#"{{{oauth2},"verification":{{"method":"DELETE","path":"/user"}}}}"#),
            "verification.method: \"DELETE\" is not supported",
        ),
        (
            r#"{"auth_mode":"oauth1","authorization_endpoint":"https://p.example.com/a","access_token_endpoint":"https://p.example.com/at"}"#.into(),
            "request_token_endpoint: required for auth_mode oauth1",
        ),
        (
            r#"{"auth_mode":"oauth1","request_token_endpoint":"https://p.example.com/rt","access_token_endpoint":"https://p.example.com/at"}"#.into(),
            "authorization_endpoint: required for auth_mode oauth1",
        ),
        (
            r#"{"auth_mode":"oauth1","request_token_endpoint":"https://p.example.com/rt","authorization_endpoint":"https://p.example.com/a"}"#.into(),
            "access_token_endpoint: required for auth_mode oauth1",
        ),
        (
            format!(r#"{{{oauth1},"request_token_endpoint":"http://p.example.com/rt"}}"#),
            "request_token_endpoint: must be an https:// URL",
        ),
        (
            format!(r#"{{{oauth1},"token_endpoint":"https://p.example.com/t"}}"#),
            "token_endpoint: not used with auth_mode oauth1",
        ),
        (
            format!(r#"{{{oauth1},"pkce":false}}"#),
            "pkce: not used with auth_mode oauth1 (it is an OAuth 2.0 field)",
        ),
        (
            format!(r#"{{{oauth1},"token_endpoint_auth_method":"client_secret_post"}}"#),
            "token_endpoint_auth_method: not used with auth_mode oauth1",
        ),
        (
            format!(r#"{{{oauth1},"auth_injection":{{"type":"bearer"}}}}"#),
            "auth_injection: not used with auth_mode oauth1 (the proxy always signs",
        ),
        (
            format!(r#"{{{oauth1},"authorization_params":{{"oauth_token":"x"}}}}"#),
            "authorization_params.oauth_token: names starting with \"oauth_\" are OAuth 1.0a protocol parameters",
        ),
        (
            format!(r#"{{{oauth1},"authorization_params":{{"":"x"}}}}"#),
            "authorization_params: parameter names must not be empty",
        ),
        (
            format!(r#"{{{oauth2},"authorization_params":{{"scope":"x"}}}}"#),
            "authorization_params.scope: set by keyrelay itself",
        ),
        (
            format!(r#"{{{oauth2},"signature_method":"HMAC-SHA1"}}"#),
            "signature_method: only used with auth_mode oauth1",
        ),
        (
            r#"{"auth_mode":"api_key","token_endpoint":"https://p.example.com/t"}"#.into(),
            "token_endpoint: not used with auth_mode api_key (it has no OAuth flow)",
        ),
        (
            r#"{"auth_mode":"basic","auth_injection":{"type":"bearer"}}"#.into(),
            "auth_injection: not used with auth_mode basic",
        ),
        (
            format!(r#"{{{oauth2},"connection_config":["Sub-Domain"]}}"#),
            "connection_config: \"Sub-Domain\" is not a valid name",
        ),
        (
            format!(r#"{{{oauth2},"connection_config":["a","a"]}}"#),
            "connection_config: \"a\" is listed twice",
        ),
        (
            format!(r#"{{{oauth2},"token_response":{{"access_token":"authed_user.access_token"}}}}"#),
            "token_response.access_token: \"authed_user.access_token\" is not a JSON pointer",
        ),
        (
            format!(r#"{{{oauth2},"token_response":{{"expires_in":"/a~2b"}}}}"#),
            "token_response.expires_in",
        ),
        (
            format!(r#"{{{oauth2},"token_response":{{"id_token":"/x"}}}}"#),
            "unknown field `id_token`",
        ),
        (
            format!(r#"{{{oauth2},"scope_separator":""}}"#),
            "scope_separator: must not be empty",
        ),
        (
            format!(r#"{{{oauth2},"default_scopes":["read write"]}}"#),
            "contains the scope separator",
        ),
        (
            format!(r#"{{{oauth2},"authorization_params":{{"state":"x"}}}}"#),
            "authorization_params.state: set by keyrelay itself",
        ),
        (
            format!(r#"{{{oauth2},"token_params":{{"grant_type":"x"}}}}"#),
            "token_params.grant_type: set by keyrelay itself",
        ),
        (
            format!(r#"{{{oauth2},"allowed_hosts":["https://api.example.com"]}}"#),
            "allowed_hosts: \"https://api.example.com\" has a scheme",
        ),
        (
            format!(r#"{{{oauth2},"allowed_hosts":["api.example.com:443"]}}"#),
            "allowed_hosts: \"api.example.com:443\" contains characters",
        ),
        (
            format!(r#"{{{oauth2},"allowed_hosts":["localhost"]}}"#),
            "allowed_hosts: \"localhost\" is a local",
        ),
        (
            format!(r#"{{{oauth2},"docs_url":"docs.example.com"}}"#),
            "docs_url: must be an http(s) URL",
        ),
        (
            format!(r#"{{{oauth2},"issuer":"https://p.example.com?tenant=1"}}"#),
            "issuer: must not contain a ?query",
        ),
        (
            format!(r#"{{{oauth2},"token_lifetime_seconds":0}}"#),
            "token_lifetime_seconds: must be greater than 0",
        ),
        (
            format!(r#"{{{oauth2},"signature_method":"HMAC-MD5"}}"#),
            "unknown variant `HMAC-MD5`",
        ),
    ];
    for (json, expected) in &cases {
        let got = problems(json, &STRICT);
        assert!(
            got.contains(expected),
            "definition {json}\nexpected problem containing: {expected}\ngot: {got:?}"
        );
    }
}

#[test]
fn all_problems_are_collected() {
    let err = parse_def(
        r#"{"auth_mode":"oauth2","api_base_url":"http://x.example.com","connection_config":["A"]}"#,
    )
    .unwrap()
    .validate(&STRICT)
    .unwrap_err();
    assert_eq!(err.problems.len(), 4, "{err}");
    assert!(
        err.to_string()
            .starts_with("provider definition is invalid: ")
    );
}

#[test]
fn allow_local_permits_http_and_private_hosts() {
    let json = r#"{"auth_mode":"oauth2","authorization_endpoint":"http://127.0.0.1:8080/auth","token_endpoint":"http://localhost:8080/token","api_base_url":"http://192.168.1.5","allowed_hosts":["localhost"]}"#;
    assert!(problems(json, &STRICT).contains("KEYRELAY_ALLOW_LOCAL_PROVIDERS=true"));
    assert_eq!(problems(json, &LOCAL), "");

    let oauth1 = r#"{"auth_mode":"oauth1","request_token_endpoint":"http://localhost:8080/rt","authorization_endpoint":"http://127.0.0.1:8080/a","access_token_endpoint":"http://localhost:8080/at"}"#;
    let strict = problems(oauth1, &STRICT);
    for field in [
        "request_token_endpoint",
        "authorization_endpoint",
        "access_token_endpoint",
    ] {
        assert!(
            strict.contains(&format!("{field}: must be an https:// URL")),
            "{strict}"
        );
    }
    assert_eq!(problems(oauth1, &LOCAL), "");
}

#[test]
fn valid_variants_pass() {
    let ok = [
        // issuer alone: endpoints discovered later.
        r#"{"auth_mode":"oauth2","issuer":"https://login.example.com"}"#,
        r#"{"auth_mode":"oauth2_client_credentials","token_endpoint":"https://p.example.com/t","default_scopes":["a","b"]}"#,
        r#"{"auth_mode":"oauth1","request_token_endpoint":"https://p.example.com/rt","authorization_endpoint":"https://p.example.com/a","access_token_endpoint":"https://p.example.com/at","signature_method":"HMAC-SHA256"}"#,
        // Provider parameters on the OAuth 1.0a authorize redirect, including
        // names keyrelay reserves for OAuth 2.0 (Trello's scope).
        r#"{"auth_mode":"oauth1","request_token_endpoint":"https://p.example.com/rt","authorization_endpoint":"https://p.example.com/a","access_token_endpoint":"https://p.example.com/at","authorization_params":{"scope":"read,write","expiration":"never","name":"App","state":"s"},"pkce":true}"#,
        r#"{"auth_mode":"oauth1","connection_config":["host"],"request_token_endpoint":"https://{connection_config.host}/plugins/servlet/oauth/request-token","authorization_endpoint":"https://{connection_config.host}/plugins/servlet/oauth/authorize","access_token_endpoint":"https://{connection_config.host}/plugins/servlet/oauth/access-token","signature_method":"RSA-SHA1","api_base_url":"https://{connection_config.host}/rest/api/2"}"#,
        r#"{"auth_mode":"api_key","api_base_url":"https://api.example.com/v1","auth_injection":{"type":"header","name":"Authorization","format":"Token {api_key}"}}"#,
        r#"{"auth_mode":"api_key","auth_injection":{"type":"query","name":"key"}}"#,
        r#"{"auth_mode":"basic"}"#,
        r#"{"auth_mode":"oauth2","connection_config":["subdomain","tenant_id"],"authorization_endpoint":"https://{connection_config.subdomain}.example.com/{connection_config.tenant_id}/auth","token_endpoint":"https://{connection_config.subdomain}.example.com:8443/token","token_response":{"access_token":"/authed_user/access_token","scope":"","expires_in":"/a~1b~0c"},"verification":{"path":"/me?fields=id"},"allowed_hosts":["files.example.com","8.8.8.8"]}"#,
    ];
    for json in ok {
        assert_eq!(problems(json, &STRICT), "", "{json}");
    }
}

#[test]
fn defaults_and_accessors() {
    let def = parse_def(r#"{"auth_mode":"oauth1","verification":{"path":"/x"}}"#).unwrap();
    assert!(def.pkce);
    assert_eq!(def.scope_separator(), " ");
    assert_eq!(def.auth_injection(), AuthInjection::Bearer);
    assert_eq!(def.signature_method(), SignatureMethod::HmacSha1);
    assert_eq!(
        def.token_endpoint_auth_method,
        TokenEndpointAuthMethod::ClientSecretBasic
    );
    assert_eq!(def.verification.unwrap().method, "GET");
    assert_eq!(
        AuthMode::OAuth2ClientCredentials.to_string(),
        "oauth2_client_credentials"
    );
    assert_eq!(
        ProviderDefinition::new(AuthMode::Basic),
        parse_def(r#"{"auth_mode":"basic"}"#).unwrap()
    );
}

#[test]
fn json_round_trip() {
    let catalog = Catalog::bundled().unwrap();
    for (name, def) in catalog.iter() {
        let json = serde_json::to_string(def).unwrap();
        let back: ProviderDefinition = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, def, "{name}: {json}");
    }
    let full = ProviderDefinition {
        display_name: Some("Example".into()),
        token_endpoint: Some("https://p.example.com/t".into()),
        pkce: false,
        signature_method: Some(SignatureMethod::RsaSha1),
        token_response: Some(keyrelay_catalog::TokenResponsePointers {
            access_token: Some("/a".into()),
            ..Default::default()
        }),
        auth_injection: Some(AuthInjection::Query { name: "k".into() }),
        token_lifetime_seconds: Some(3600),
        ..ProviderDefinition::new(AuthMode::OAuth2)
    };
    let value = serde_json::to_value(&full).unwrap();
    assert_eq!(value["signature_method"], "RSA-SHA1");
    assert_eq!(value["auth_injection"]["type"], "query");
    assert_eq!(value["pkce"], false);
    let back: ProviderDefinition = serde_json::from_value(value).unwrap();
    assert_eq!(back, full);

    // None / empty fields are omitted.
    let minimal = serde_json::to_value(ProviderDefinition::new(AuthMode::ApiKey)).unwrap();
    let keys: Vec<&String> = minimal.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["auth_mode", "token_endpoint_auth_method"]);
}

#[test]
fn catalog_file_errors() {
    let wrong_version = "version = 2\n[providers.x]\nauth_mode = \"basic\"\n";
    match Catalog::parse("test.toml", wrong_version, &STRICT) {
        Err(CatalogError::Parse {
            source_name,
            message,
        }) => {
            assert_eq!(source_name, "test.toml");
            assert!(
                message.contains("unsupported catalog file version 2"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    let missing_version = "[providers.x]\nauth_mode = \"basic\"\n";
    assert!(matches!(
        Catalog::parse("t", missing_version, &STRICT),
        Err(CatalogError::Parse { .. })
    ));
    let unknown_top = "version = 1\nextra = true\n";
    let err = Catalog::parse("t", unknown_top, &STRICT)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `extra`"), "{err}");
    assert!(matches!(
        Catalog::parse("t", "version = = 1", &STRICT),
        Err(CatalogError::Parse { .. })
    ));

    // All invalid entries are reported, each under its name.
    let text = r#"
version = 1
[providers.good]
auth_mode = "basic"
[providers.bad_one]
auth_mode = "api_key"
token_endpoint = "https://p.example.com/t"
[providers.bad_two]
auth_mode = "oauth2"
colour = "blue"
[providers."Bad Name"]
auth_mode = "basic"
"#;
    match Catalog::parse("t", text, &STRICT) {
        Err(CatalogError::Invalid { provider, error }) => {
            assert_eq!(provider, "Bad Name, bad_one, bad_two");
            let all = error.to_string();
            assert!(
                all.contains("providers.bad_one: token_endpoint: not used"),
                "{all}"
            );
            assert!(
                all.contains("providers.bad_two: unknown field `colour`"),
                "{all}"
            );
            assert!(
                all.contains("providers.Bad Name: invalid provider name"),
                "{all}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn json_catalog_merge_and_load_file() {
    let json = r#"{"version":1,"providers":{"github":{"auth_mode":"api_key","api_base_url":"https://ghe.example.com/api/v3"},"acme":{"auth_mode":"basic"}}}"#;
    let overrides = Catalog::parse("overrides.json", json, &STRICT).unwrap();
    assert_eq!(overrides.len(), 2);

    let mut catalog = Catalog::bundled().unwrap();
    let before = catalog.len();
    catalog.merge(overrides);
    assert_eq!(catalog.len(), before + 1);
    assert_eq!(catalog.get("github").unwrap().auth_mode, AuthMode::ApiKey);
    assert!(catalog.get("acme").is_some());
    let names: Vec<&str> = catalog.iter().map(|(n, _)| n).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);

    let empty = Catalog::parse("e", "version = 1\n", &STRICT).unwrap();
    assert!(empty.is_empty());

    let dir = std::env::temp_dir().join(format!("keyrelay-catalog-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("providers.json");
    std::fs::write(&path, json).unwrap();
    assert_eq!(Catalog::load_file(&path, &STRICT).unwrap().len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
    match Catalog::load_file(&dir.join("missing.toml"), &STRICT) {
        Err(CatalogError::Io { path, .. }) => assert!(path.ends_with("missing.toml")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn provider_names() {
    for ok in [
        "github",
        "a",
        "0x",
        "google-workspace",
        "stripe_api_key",
        &"a".repeat(64),
    ] {
        assert!(is_valid_provider_name(ok), "{ok}");
    }
    for bad in ["", "-a", "_a", "GitHub", "a b", "a.b", "ä", &"a".repeat(65)] {
        assert!(!is_valid_provider_name(bad), "{bad}");
    }
}

#[test]
fn bearer_injection_refuses_extra_fields() {
    let got = problems(
        r#"{"auth_mode":"api_key","auth_injection":{"type":"bearer","name":"x"}}"#,
        &STRICT,
    );
    assert!(got.contains("unknown field `name`"), "{got}");
    let got = problems(
        r#"{"auth_mode":"api_key","auth_injection":{"type":"header","name":"a","nmae":"b"}}"#,
        &STRICT,
    );
    assert!(got.contains("unknown field `nmae`"), "{got}");
    let got = problems(
        r#"{"auth_mode":"api_key","auth_injection":{"name":"a"}}"#,
        &STRICT,
    );
    assert!(got.contains("missing field `type`"), "{got}");
}
