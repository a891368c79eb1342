#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The lenient token-response parser against providers' documented replies
//! (fake token values).

use keyrelay_catalog::TokenResponsePointers;
use keyrelay_oauth::{TokenError, TokenSet, parse_token_response};
use serde_json::{Value, json};

const JSON: Option<&str> = Some("application/json; charset=utf-8");
const FORM: Option<&str> = Some("application/x-www-form-urlencoded; charset=utf-8");

fn ok(status: u16, ct: Option<&str>, body: &str) -> TokenSet {
    parse_token_response(status, ct, body.as_bytes(), None, " ")
        .unwrap_or_else(|e| panic!("expected tokens, got {e}"))
}

fn err(status: u16, ct: Option<&str>, body: &str) -> TokenError {
    match parse_token_response(status, ct, body.as_bytes(), None, " ") {
        Ok(t) => panic!("expected an error, got {t:?}"),
        Err(e) => e,
    }
}

fn scopes(t: &TokenSet) -> Vec<&str> {
    t.scopes
        .as_ref()
        .expect("scopes")
        .iter()
        .map(String::as_str)
        .collect()
}

/// No key named access_token/refresh_token at any depth.
fn assert_no_tokens(v: &Value) {
    match v {
        Value::Object(m) => {
            assert!(!m.contains_key("access_token"), "access_token in {v}");
            assert!(!m.contains_key("refresh_token"), "refresh_token in {v}");
            m.values().for_each(assert_no_tokens);
        }
        Value::Array(a) => a.iter().for_each(assert_no_tokens),
        _ => {}
    }
}

fn assert_not_leaked(t: &TokenSet, secrets: &[&str]) {
    let debug = format!("{t:?}");
    for s in secrets {
        assert!(!debug.contains(s), "{s} leaked in {debug}");
    }
    assert_no_tokens(&Value::Object(t.extra.clone()));
}

fn assert_error_not_leaked(e: &TokenError, secrets: &[&str]) {
    let shown = format!("{e} / {e:?}");
    for s in secrets {
        assert!(!shown.contains(s), "{s} leaked in {shown}");
    }
}

// ---------------------------------------------------------------- GitHub

#[test]
fn github_form_encoded() {
    let body =
        "access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=repo%2Cgist&token_type=bearer";
    // GitHub without `Accept: application/json` answers form-encoded; also
    // accept it when the content type is missing or wrong.
    for ct in [FORM, None, Some("text/plain")] {
        let t = parse_token_response(200, ct, body.as_bytes(), None, ",").unwrap();
        assert_eq!(
            t.access_token.expose_secret(),
            "gho_16C7e42F292c6912E7710c838347Ae178B4a"
        );
        assert_eq!(t.token_type.as_deref(), Some("bearer"));
        assert_eq!(scopes(&t), ["repo", "gist"]);
        assert_eq!(t.refresh_token, None);
        assert_eq!(t.expires_in, None);
        assert_eq!(t.extra.get("scope"), Some(&json!("repo,gist")));
        assert_not_leaked(&t, &["gho_16C7e42F292c6912E7710c838347Ae178B4a"]);
    }
}

#[test]
fn github_json() {
    let body = r#"{"access_token":"gho_16C7e42F292c6912E7710c838347Ae178B4a", "scope":"repo,gist", "token_type":"bearer"}"#;
    let t = ok(200, JSON, body);
    assert_eq!(
        t.access_token.expose_secret(),
        "gho_16C7e42F292c6912E7710c838347Ae178B4a"
    );
    assert_eq!(scopes(&t), ["repo", "gist"]);
}

#[test]
fn github_app_with_expiring_tokens() {
    // GitHub Apps with token expiration: form reply with refresh token.
    let body = "access_token=ghu_16C7e42F292c6912E7710c838347Ae178B4a&expires_in=28800&refresh_token=ghr_1B4a2e77838347a7E420ce178F2E7c6912E169246c34E1ccbF66C46812d16D5B1A9Dc86A1498&refresh_token_expires_in=15811200&scope=&token_type=bearer";
    let t = ok(200, FORM, body);
    assert_eq!(t.expires_in, Some(28800));
    assert!(
        t.refresh_token
            .as_ref()
            .unwrap()
            .expose_secret()
            .starts_with("ghr_1B4a")
    );
    assert_eq!(t.scopes, Some(vec![]));
    assert_eq!(
        t.extra.get("refresh_token_expires_in"),
        Some(&json!("15811200"))
    );
    assert_not_leaked(&t, &["ghu_16C7e42F", "ghr_1B4a2e77"]);
}

#[test]
fn github_error_in_200_form_reply() {
    let body = "error=bad_verification_code&error_description=The+code+passed+is+incorrect+or+expired.&error_uri=https%3A%2F%2Fdocs.github.com%2Fapps%2Fmanaging-oauth-apps%2Ftroubleshooting-oauth-app-access-token-request-errors%2F%23bad-verification-code";
    let e = err(200, FORM, body);
    assert_eq!(
        e,
        TokenError::OAuth {
            status: 200,
            error: "bad_verification_code".into(),
            description: Some("The code passed is incorrect or expired.".into()),
        }
    );
    assert_eq!(e.code(), "bad_verification_code");
    assert_eq!(e.status(), 200);
    let shown = e.to_string();
    assert!(shown.contains("bad_verification_code"), "{shown}");
    assert!(shown.contains("incorrect or expired"), "{shown}");
}

#[test]
fn github_error_in_200_json_reply() {
    let body = r#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired.","error_uri":"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code"}"#;
    let e = err(200, JSON, body);
    assert_eq!(e.code(), "bad_verification_code");
    assert!(matches!(e, TokenError::OAuth { status: 200, .. }));
}

// ----------------------------------------------------------------- Slack

const SLACK_V2: &str = r#"{
    "ok": true,
    "access_token": "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
    "token_type": "bot",
    "scope": "commands,incoming-webhook",
    "bot_user_id": "U0KRQLJ9H",
    "app_id": "A0KRD7HC3",
    "team": {"name": "Slack Softball Team", "id": "T9TK3CUKW"},
    "enterprise": null,
    "authed_user": {
        "id": "U1234",
        "scope": "chat:write",
        "access_token": "xoxp-1234",
        "token_type": "user"
    }
}"#;

#[test]
fn slack_bot_token_without_pointers() {
    let t = parse_token_response(200, JSON, SLACK_V2.as_bytes(), None, ",").unwrap();
    assert_eq!(
        t.access_token.expose_secret(),
        "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
    );
    assert_eq!(t.token_type.as_deref(), Some("bot"));
    assert_eq!(scopes(&t), ["commands", "incoming-webhook"]);
    assert_eq!(
        t.extra["team"],
        json!({"name": "Slack Softball Team", "id": "T9TK3CUKW"})
    );
    assert_eq!(
        t.extra["authed_user"],
        json!({"id": "U1234", "scope": "chat:write", "token_type": "user"})
    );
    assert_eq!(t.extra["bot_user_id"], json!("U0KRQLJ9H"));
    assert_eq!(t.extra["enterprise"], Value::Null);
    assert!(!t.extra.contains_key("access_token"));
    assert_not_leaked(&t, &["xoxb-17653672481", "xoxp-1234"]);
}

#[test]
fn slack_user_token_with_pointers() {
    let pointers = TokenResponsePointers {
        access_token: Some("/authed_user/access_token".into()),
        refresh_token: None,
        expires_in: None,
        scope: Some("/authed_user/scope".into()),
    };
    let t = parse_token_response(200, JSON, SLACK_V2.as_bytes(), Some(&pointers), ",").unwrap();
    assert_eq!(t.access_token.expose_secret(), "xoxp-1234");
    assert_eq!(scopes(&t), ["chat:write"]);
    // token_type is read next to the pointed-at token.
    assert_eq!(t.token_type.as_deref(), Some("user"));
    assert!(t.extra.contains_key("team"));
    assert!(t.extra.contains_key("authed_user"));
    assert_eq!(t.extra["authed_user"]["id"], json!("U1234"));
    assert_not_leaked(&t, &["xoxb-17653672481", "xoxp-1234"]);
}

#[test]
fn pointer_that_resolves_to_nothing_falls_back() {
    // A bot-only install has no user token: fall back to the top level.
    let body = r#"{"ok": true, "access_token": "xoxb-bot", "token_type": "bot", "scope": "commands", "authed_user": {"id": "U1234"}}"#;
    let pointers = TokenResponsePointers {
        access_token: Some("/authed_user/access_token".into()),
        refresh_token: Some("/authed_user/refresh_token".into()),
        expires_in: Some("/authed_user/expires_in".into()),
        scope: Some("/authed_user/scope".into()),
    };
    let t = parse_token_response(200, JSON, body.as_bytes(), Some(&pointers), ",").unwrap();
    assert_eq!(t.access_token.expose_secret(), "xoxb-bot");
    assert_eq!(t.token_type.as_deref(), Some("bot"));
    assert_eq!(scopes(&t), ["commands"]);
}

#[test]
fn pointers_for_every_field() {
    let body = r#"{"data": {"token": {"value": "at-nested", "renew": "rt-nested", "ttl": "7200", "perms": ["a", "b"]}}}"#;
    let pointers = TokenResponsePointers {
        access_token: Some("/data/token/value".into()),
        refresh_token: Some("/data/token/renew".into()),
        expires_in: Some("/data/token/ttl".into()),
        scope: Some("/data/token/perms".into()),
    };
    let t = parse_token_response(200, JSON, body.as_bytes(), Some(&pointers), " ").unwrap();
    assert_eq!(t.access_token.expose_secret(), "at-nested");
    assert_eq!(t.refresh_token.unwrap().expose_secret(), "rt-nested");
    assert_eq!(t.expires_in, Some(7200));
    assert_eq!(t.scopes, Some(vec!["a".into(), "b".into()]));
}

#[test]
fn slack_error_in_200() {
    let e = err(200, JSON, r#"{"ok": false, "error": "invalid_code"}"#);
    assert_eq!(
        e,
        TokenError::OAuth {
            status: 200,
            error: "invalid_code".into(),
            description: None
        }
    );
    assert_eq!(e.code(), "invalid_code");
}

#[test]
fn ok_false_without_error_is_malformed() {
    let e = err(200, JSON, r#"{"ok": false, "access_token": "xoxb-nope"}"#);
    assert!(matches!(e, TokenError::Malformed { status: 200, .. }));
    assert_eq!(e.code(), "invalid_token_response");
    assert_error_not_leaked(&e, &["xoxb-nope"]);
}

// ------------------------------------------------------ Google, Microsoft

#[test]
fn google_with_id_token() {
    let body = r#"{
      "access_token": "ya29.a0AfH6SMBx-fake-access",
      "expires_in": 3599,
      "refresh_token": "1//0gfake-refresh-token",
      "scope": "https://www.googleapis.com/auth/drive.metadata.readonly openid",
      "token_type": "Bearer",
      "id_token": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMDc2OSJ9.c2ln"
    }"#;
    let t = ok(200, JSON, body);
    assert_eq!(t.expires_in, Some(3599));
    assert_eq!(t.token_type.as_deref(), Some("Bearer"));
    assert_eq!(
        t.refresh_token.as_ref().unwrap().expose_secret(),
        "1//0gfake-refresh-token"
    );
    assert_eq!(
        scopes(&t),
        [
            "https://www.googleapis.com/auth/drive.metadata.readonly",
            "openid"
        ]
    );
    assert_eq!(
        t.extra["id_token"],
        json!("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMDc2OSJ9.c2ln")
    );
    assert_not_leaked(
        &t,
        &[
            "ya29.a0AfH6SMBx-fake-access",
            "1//0gfake-refresh-token",
            "eyJhbGciOiJSUzI1NiJ9",
        ],
    );
}

#[test]
fn microsoft_v2_numbers() {
    let body = r#"{
        "token_type": "Bearer",
        "scope": "User.Read Mail.Read",
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": "eyJ0eXAiOiJKV1QiLCJub25jZSI6IkFRQUJBQUFB-fake",
        "refresh_token": "AwABAAAAvPM1KaPlrEqdFSBzjqfTGAMxZGUTdM0t4B4-fake"
    }"#;
    let t = ok(200, JSON, body);
    assert_eq!(t.expires_in, Some(3599));
    assert_eq!(t.extra["ext_expires_in"], json!(3599));
    assert_eq!(scopes(&t), ["User.Read", "Mail.Read"]);
    assert_not_leaked(
        &t,
        &[
            "eyJ0eXAiOiJKV1Qi",
            "AwABAAAAvPM1KaPlrEqdFSBzjqfTGAMxZGUTdM0t4B4",
        ],
    );
}

#[test]
fn microsoft_v1_strings() {
    let body = r#"{
        "token_type": "Bearer",
        "scope": "user_impersonation",
        "expires_in": "3599",
        "ext_expires_in": "3599",
        "expires_on": "1388444763",
        "not_before": "1388440863",
        "resource": "https://service.contoso.com/",
        "access_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsIng1dCI6-fake",
        "refresh_token": "AwABAAAAvPM1KaPlrEqdFSBzjqfTGBCmLdgfSTLEMPGYuNHSUYBrq-fake",
        "id_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.eyJhdWQiOiIyZDRkMTFhMi-fake."
    }"#;
    let t = ok(200, JSON, body);
    assert_eq!(t.expires_in, Some(3599));
    assert_eq!(t.extra["expires_on"], json!("1388444763"));
    assert_eq!(t.extra["resource"], json!("https://service.contoso.com/"));
    assert!(t.extra.contains_key("id_token"));
}

// --------------------------------------------- Salesforce, Facebook, Strava

#[test]
fn salesforce_without_expires_in() {
    let body = r#"{
        "access_token": "00Dxx0000001gPL!AR8AQJXg5oj8jXSgxJfA0lBog.39AsX.LVpxezPwuX5VAIrrbbHMuol7GQxnMeYMN7cj8EoWr78nt1u44zU31IbYNNJguseu",
        "signature": "CMJ4l+CCaPQiKjoOEwEig9H4wqhpuLSk4J2urAe+fVg=",
        "scope": "refresh_token web api",
        "instance_url": "https://yourInstance.salesforce.com",
        "id": "https://login.salesforce.com/id/00Dxx0000001gPLEA0/005xx000001Sv6AAAS",
        "token_type": "Bearer",
        "issued_at": "1278448101416",
        "refresh_token": "5Aep8614iLM.Dq661ePDmPEgaAW9Oh_L3JKkDpB4xReb54_pZebnUG0h6Sb4KUVDpNtWEofWM39yg=="
    }"#;
    let t = ok(200, JSON, body);
    assert_eq!(t.expires_in, None);
    assert_eq!(
        t.extra["instance_url"],
        json!("https://yourInstance.salesforce.com")
    );
    assert_eq!(t.extra["issued_at"], json!("1278448101416"));
    assert!(t.extra.contains_key("id"));
    assert!(t.extra.contains_key("signature"));
    assert_eq!(scopes(&t), ["refresh_token", "web", "api"]);
    assert_not_leaked(&t, &["AR8AQJXg5oj8jXSgxJfA0lBog", "5Aep8614iLM"]);
}

#[test]
fn facebook() {
    let body =
        r#"{"access_token": "EAACEdEose0cBA-fake", "token_type": "bearer", "expires_in": 5183944}"#;
    let t = ok(200, JSON, body);
    assert_eq!(t.expires_in, Some(5_183_944));
    assert_eq!(t.token_type.as_deref(), Some("bearer"));
    assert_eq!(t.scopes, None);
}

#[test]
fn facebook_legacy_expires() {
    let t = ok(200, None, "access_token=EAAC-fake&expires=5183944");
    assert_eq!(t.expires_in, Some(5_183_944));
    // expires_in wins over expires when present.
    let t = ok(
        200,
        JSON,
        r#"{"access_token": "a", "expires_in": 60, "expires": 5183944}"#,
    );
    assert_eq!(t.expires_in, Some(60));
}

#[test]
fn facebook_object_error() {
    let body = r#"{"error": {"message": "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request", "type": "OAuthException", "code": 100, "error_subcode": 36008, "fbtrace_id": "AbCdEf"}}"#;
    let e = err(400, JSON, body);
    assert_eq!(e.code(), "OAuthException");
    assert!(e.to_string().contains("Error validating verification code"));
}

#[test]
fn strava_expires_at() {
    let body = r#"{
        "token_type": "Bearer",
        "expires_at": 1568775134,
        "expires_in": 21600,
        "refresh_token": "e5n567567-fake",
        "access_token": "a4b945687g-fake",
        "athlete": {"id": 134815, "username": "marianne_t", "firstname": "Marianne"}
    }"#;
    let t = ok(200, JSON, body);
    assert_eq!(t.expires_in, Some(21600));
    assert_eq!(t.extra["expires_at"], json!(1_568_775_134));
    assert_eq!(t.extra["athlete"]["id"], json!(134_815));
    assert_eq!(t.refresh_token.unwrap().expose_secret(), "e5n567567-fake");
}

// ------------------------------------------------------------ lenient bits

#[test]
fn scope_as_array() {
    let t = ok(
        200,
        JSON,
        r#"{"access_token": "a", "scope": ["read", "write"]}"#,
    );
    assert_eq!(scopes(&t), ["read", "write"]);
}

#[test]
fn scope_split_generously() {
    let t = parse_token_response(
        200,
        JSON,
        br#"{"access_token": "a", "scope": "read+write, admin  read+write"}"#,
        None,
        "+",
    )
    .unwrap();
    assert_eq!(scopes(&t), ["read", "write", "admin"]);
}

#[test]
fn expires_in_variants() {
    for (raw, expected) in [
        ("3600", Some(3600)),
        ("\"3600\"", Some(3600)),
        ("\" 3600 \"", Some(3600)),
        ("3600.0", Some(3600)),
        ("\"3600.5\"", Some(3600)),
        ("-5", None),
        ("\"-5\"", None),
        ("0", None),
        ("\"soon\"", None),
        ("null", None),
        ("true", None),
        ("[3600]", None),
        ("1e400", None),
    ] {
        let body = format!(r#"{{"access_token": "a", "expires_in": {raw}}}"#);
        let res = parse_token_response(200, JSON, body.as_bytes(), None, " ");
        if raw == "1e400" {
            // Out of f64 range: serde_json refuses the document.
            assert!(res.is_err());
            continue;
        }
        assert_eq!(res.unwrap().expires_in, expected, "expires_in: {raw}");
    }
}

#[test]
fn only_strings_are_tokens() {
    let e = err(200, JSON, r#"{"access_token": 12345}"#);
    assert_eq!(
        e,
        TokenError::Malformed {
            status: 200,
            reason: "no access_token in the reply".into()
        }
    );
    let t = ok(200, JSON, r#"{"access_token": "a", "refresh_token": 42}"#);
    assert_eq!(t.refresh_token, None);
    assert!(!t.extra.contains_key("refresh_token"));
}

#[test]
fn json_with_odd_content_types_and_whitespace() {
    for ct in [
        Some("text/plain"),
        Some("text/javascript; charset=utf-8"),
        Some("text/html"),
        None,
    ] {
        let t =
            parse_token_response(200, ct, b"\r\n  {\"access_token\": \"a\"}\n", None, " ").unwrap();
        assert_eq!(t.access_token.expose_secret(), "a");
    }
}

#[test]
fn utf8_bom_is_ignored() {
    let t = parse_token_response(
        200,
        JSON,
        b"\xEF\xBB\xBF{\"access_token\": \"a\"}",
        None,
        " ",
    )
    .unwrap();
    assert_eq!(t.access_token.expose_secret(), "a");
}

#[test]
fn rfc6749_error_400() {
    let e = err(
        400,
        JSON,
        r#"{"error":"invalid_grant","error_description":"Bad Request: the code has expired"}"#,
    );
    assert_eq!(
        e,
        TokenError::OAuth {
            status: 400,
            error: "invalid_grant".into(),
            description: Some("Bad Request: the code has expired".into()),
        }
    );
    assert_eq!(
        e.to_string(),
        "provider returned OAuth error `invalid_grant` (HTTP 400): Bad Request: the code has expired"
    );
}

#[test]
fn html_garbage_is_malformed() {
    let html = "<!DOCTYPE html><html><head><title>Bad Gateway</title></head><body>upstream error</body></html>";
    for status in [200, 502] {
        let e = err(status, Some("text/html"), html);
        match &e {
            TokenError::Malformed { status: s, reason } => {
                assert_eq!(*s, status);
                assert_eq!(reason, "body (text/html) is neither JSON nor form-encoded");
            }
            other => panic!("{other:?}"),
        }
        assert!(!e.to_string().contains("Bad Gateway"));
        assert!(e.to_string().contains(&status.to_string()));
    }
}

#[test]
fn plain_text_is_malformed() {
    for body in ["Unauthorized", "Service Unavailable", "ok", "=x", "a=b&c"] {
        let e = err(200, Some("text/plain"), body);
        assert!(matches!(e, TokenError::Malformed { .. }), "{body}: {e:?}");
    }
}

#[test]
fn empty_body_is_malformed() {
    for body in ["", "  \r\n"] {
        let e = err(200, JSON, body);
        assert_eq!(
            e,
            TokenError::Malformed {
                status: 200,
                reason: "empty body".into()
            }
        );
    }
    assert!(matches!(
        err(503, None, ""),
        TokenError::Malformed { status: 503, .. }
    ));
}

#[test]
fn json_without_access_token_is_malformed() {
    for body in [
        r#"{"token_type": "bearer", "refresh_token": "rt-secret-value"}"#,
        r#"{"access_token": "", "refresh_token": "rt-secret-value"}"#,
        r#"{"access_token": null}"#,
    ] {
        let e = err(200, JSON, body);
        assert_eq!(
            e,
            TokenError::Malformed {
                status: 200,
                reason: "no access_token in the reply".into()
            }
        );
        assert_error_not_leaked(&e, &["rt-secret-value"]);
    }
}

#[test]
fn non_object_json_is_malformed() {
    for body in ["[1, 2]", "{\"access_token\": ", "{}x"] {
        assert!(
            matches!(err(200, JSON, body), TokenError::Malformed { .. }),
            "{body}"
        );
    }
    // A JSON string body starting with a quote is not form-encoded either.
    assert!(matches!(
        err(200, JSON, "\"access_token\""),
        TokenError::Malformed { .. }
    ));
}

#[test]
fn error_status_without_oauth_error_is_malformed() {
    for body in [
        r#"{"message": "Internal error"}"#,
        r#"{"access_token": "at-secret-in-500"}"#,
    ] {
        let e = err(500, JSON, body);
        assert!(
            matches!(e, TokenError::Malformed { status: 500, .. }),
            "{e:?}"
        );
        assert_error_not_leaked(&e, &["at-secret-in-500", "Internal error"]);
    }
}

#[test]
fn errors_never_show_tokens_or_body() {
    let body = r#"{"error": "invalid_request", "access_token": "at-should-not-show", "refresh_token": "rt-should-not-show", "error_uri": "https://example.com/secret-body-part"}"#;
    let e = err(401, JSON, body);
    assert_eq!(e.code(), "invalid_request");
    assert_error_not_leaked(
        &e,
        &[
            "at-should-not-show",
            "rt-should-not-show",
            "secret-body-part",
        ],
    );
}

#[test]
fn oauth_error_fields_are_sanitized() {
    let long = "x".repeat(5000);
    let body = format!(r#"{{"error": "bad\nthing", "error_description": "{long}"}}"#);
    let e = err(400, JSON, &body);
    let TokenError::OAuth {
        error, description, ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(error, "bad thing");
    assert!(description.as_ref().unwrap().chars().count() <= 301);
}

#[test]
fn extra_strips_nested_tokens_everywhere() {
    let body = r#"{"access_token": "a", "refresh_token": "r", "accounts": [{"id": 1, "access_token": "n1", "deeper": {"refresh_token": "n2", "keep": true}}], "id_token": "jwt"}"#;
    let t = ok(200, JSON, body);
    assert_eq!(
        Value::Object(t.extra.clone()),
        json!({"accounts": [{"id": 1, "deeper": {"keep": true}}], "id_token": "jwt"})
    );
}

#[test]
fn token_set_debug_shows_extra_keys_only() {
    let body = r#"{"access_token": "at-value-123", "refresh_token": "rt-value-456", "id_token": "idtok-value-789", "instance_url": "https://secret-instance.example"}"#;
    let t = ok(200, JSON, body);
    let debug = format!("{t:?}");
    for s in [
        "at-value-123",
        "rt-value-456",
        "idtok-value-789",
        "secret-instance",
    ] {
        assert!(!debug.contains(s), "{s} in {debug}");
    }
    assert!(debug.contains("id_token"));
    assert!(debug.contains("instance_url"));
}
