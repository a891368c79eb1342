//! Table-driven bad input for every endpoint: each gets the documented
//! status, a stable code and a message that says what to fix, and nothing
//! changes.

use keyrelay_testkit::{Backend, TestServer, both_backends};
use reqwest::Method;
use serde_json::json;

both_backends! {
    every_endpoint_refuses_bad_input => every_endpoint_refuses_bad_input;
    unauthenticated_calls_are_refused => unauthenticated_calls_are_refused;
}

#[derive(Clone, Copy)]
enum Who {
    Admin,
    Project,
}

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    who: Who,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    /// A piece the message must contain (names the field or the fix).
    hint: &'static str,
}

#[allow(clippy::too_many_arguments)]
fn case(
    name: &'static str,
    method: Method,
    path: &str,
    who: Who,
    body: &str,
    status: u16,
    code: &'static str,
    hint: &'static str,
) -> Case {
    Case {
        name,
        method,
        path: path.to_string(),
        who,
        content_type: Some("application/json"),
        body: body.as_bytes().to_vec(),
        status,
        code,
        hint,
    }
}

/// The JSON endpoints all share these failures.
fn json_body_cases(method: Method, path: &str, who: Who, cases: &mut Vec<Case>) {
    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(100 * 1024));
    cases.push(case(
        "malformed",
        method.clone(),
        path,
        who,
        "{,}",
        400,
        "malformed_json",
        "not valid JSON",
    ));
    cases.push(case(
        "not json at all",
        method.clone(),
        path,
        who,
        "name=x",
        400,
        "malformed_json",
        "not valid JSON",
    ));
    cases.push(case(
        "array body",
        method.clone(),
        path,
        who,
        "[1,2]",
        400,
        "invalid_request",
        "invalid type",
    ));
    cases.push(case(
        "unknown field",
        method.clone(),
        path,
        who,
        r#"{"bogus_field": 1}"#,
        400,
        "invalid_request",
        "bogus_field",
    ));
    cases.push(case(
        "oversized",
        method.clone(),
        path,
        who,
        &big,
        413,
        "body_too_large",
        "larger",
    ));
    let mut wrong_type = case(
        "no content type",
        method,
        path,
        who,
        "{}",
        415,
        "unsupported_media_type",
        "application/json",
    );
    wrong_type.content_type = None;
    cases.push(wrong_type);
}

async fn every_endpoint_refuses_bad_input(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (id, key) = server.create_project("tenant").await;
    server.create_integration("github", &key, "s3cret").await;
    let before_projects = server
        .get("/v1/admin/projects", &server.admin_token)
        .await
        .text;
    let before_integrations = server.get("/v1/integrations", &key).await.text;

    let mut cases = Vec::new();
    use Method as M;
    use Who::{Admin as A, Project as P};

    // POST /v1/admin/projects
    let path = "/v1/admin/projects";
    json_body_cases(M::POST, path, A, &mut cases);
    cases.push(case(
        "missing name",
        M::POST,
        path,
        A,
        r#"{"allowed_redirect_urls": []}"#,
        400,
        "invalid_request",
        "missing field `name`",
    ));
    cases.push(case(
        "name wrong type",
        M::POST,
        path,
        A,
        r#"{"name": 5}"#,
        400,
        "invalid_request",
        "invalid type",
    ));
    cases.push(case(
        "blank name",
        M::POST,
        path,
        A,
        r#"{"name": "   "}"#,
        400,
        "invalid_request",
        "name",
    ));
    cases.push(case(
        "redirect not a URL",
        M::POST,
        path,
        A,
        r#"{"name": "n", "allowed_redirect_urls": ["not a url"]}"#,
        400,
        "invalid_request",
        "allowed_redirect_urls",
    ));
    cases.push(case(
        "redirect ftp",
        M::POST,
        path,
        A,
        r#"{"name": "n", "allowed_redirect_urls": ["ftp://x.example/"]}"#,
        400,
        "invalid_request",
        "http",
    ));
    cases.push(case(
        "redirect with fragment",
        M::POST,
        path,
        A,
        r#"{"name": "n", "allowed_redirect_urls": ["https://x.example/#f"]}"#,
        400,
        "invalid_request",
        "fragment",
    ));
    cases.push(case(
        "webhook with userinfo",
        M::POST,
        path,
        A,
        r#"{"name": "n", "webhook_url": "https://u:p@x.example/"}"#,
        400,
        "invalid_request",
        "webhook_url",
    ));
    cases.push(case(
        "duplicate name",
        M::POST,
        path,
        A,
        r#"{"name": "tenant"}"#,
        409,
        "project_exists",
        "tenant",
    ));

    // Secret keys.
    cases.push(case(
        "keys of unknown project",
        M::POST,
        "/v1/admin/projects/prj_nope/secret-keys",
        A,
        "",
        404,
        "unknown_project",
        "prj_nope",
    ));
    cases.push(case(
        "list keys of unknown project",
        M::GET,
        "/v1/admin/projects/prj_nope/secret-keys",
        A,
        "",
        404,
        "unknown_project",
        "GET /v1/admin/projects",
    ));
    cases.push(case(
        "delete unknown key",
        M::DELETE,
        &format!("/v1/admin/projects/{id}/secret-keys/sk_nope"),
        A,
        "",
        404,
        "unknown_secret_key",
        "sk_nope",
    ));
    cases.push(case(
        "delete key of unknown project",
        M::DELETE,
        "/v1/admin/projects/prj_nope/secret-keys/sk_nope",
        A,
        "",
        404,
        "unknown_project",
        "prj_nope",
    ));

    // PATCH /v1/project
    json_body_cases(M::PATCH, "/v1/project", P, &mut cases);
    cases.push(case(
        "patch bad url",
        M::PATCH,
        "/v1/project",
        P,
        r#"{"allowed_redirect_urls": ["nope"]}"#,
        400,
        "invalid_request",
        "allowed_redirect_urls",
    ));
    cases.push(case(
        "patch urls wrong type",
        M::PATCH,
        "/v1/project",
        P,
        r#"{"allowed_redirect_urls": "https://x.example"}"#,
        400,
        "invalid_request",
        "invalid type",
    ));
    cases.push(case(
        "patch name is not patchable",
        M::PATCH,
        "/v1/project",
        P,
        r#"{"name": "other"}"#,
        400,
        "invalid_request",
        "unknown field `name`",
    ));

    // POST /v1/integrations
    let path = "/v1/integrations";
    json_body_cases(M::POST, path, P, &mut cases);
    cases.push(case(
        "missing key",
        M::POST,
        path,
        P,
        r#"{"provider": "github"}"#,
        400,
        "invalid_request",
        "missing field `key`",
    ));
    cases.push(case(
        "missing provider",
        M::POST,
        path,
        P,
        r#"{"key": "k"}"#,
        400,
        "invalid_request",
        "missing field `provider`",
    ));
    cases.push(case(
        "bad key",
        M::POST,
        path,
        P,
        r#"{"key": "has space", "provider": "github", "client_id": "a", "client_secret": "b"}"#,
        400,
        "invalid_request",
        "integration key",
    ));
    cases.push(case(
        "long key",
        M::POST,
        path,
        P,
        &format!(
            r#"{{"key": "{}", "provider": "stripe_api_key"}}"#,
            "k".repeat(65)
        ),
        400,
        "invalid_request",
        "1-64",
    ));
    cases.push(case(
        "unknown provider",
        M::POST,
        path,
        P,
        r#"{"key": "k", "provider": "no-such-provider", "client_id": "a", "client_secret": "b"}"#,
        400,
        "unknown_provider",
        "providers list",
    ));
    cases.push(case(
        "provider wrong type",
        M::POST,
        path,
        P,
        r#"{"key": "k", "provider": 42}"#,
        400,
        "invalid_provider",
        "catalog name",
    ));
    cases.push(case("inline unknown field", M::POST, path, P, r#"{"key": "k", "provider": {"auth_mode": "oauth2", "tokn_endpoint": "https://x.example/t"}, "client_id": "a", "client_secret": "b"}"#, 400, "invalid_provider", "tokn_endpoint"));
    cases.push(case("inline missing endpoints", M::POST, path, P, r#"{"key": "k", "provider": {"auth_mode": "oauth2"}, "client_id": "a", "client_secret": "b"}"#, 400, "invalid_provider", "token_endpoint"));
    cases.push(case(
        "inline bad auth mode",
        M::POST,
        path,
        P,
        r#"{"key": "k", "provider": {"auth_mode": "oauth3"}}"#,
        400,
        "invalid_provider",
        "oauth3",
    ));
    cases.push(case(
        "oauth2 without secret",
        M::POST,
        path,
        P,
        r#"{"key": "k", "provider": "github", "client_id": "a"}"#,
        400,
        "invalid_request",
        "client_secret",
    ));
    cases.push(case(
        "oauth2 without client id",
        M::POST,
        path,
        P,
        r#"{"key": "k", "provider": "github", "client_secret": "b"}"#,
        400,
        "invalid_request",
        "client_id",
    ));
    cases.push(case(
        "empty secret",
        M::POST,
        path,
        P,
        r#"{"key": "k", "provider": "github", "client_id": "a", "client_secret": ""}"#,
        400,
        "invalid_request",
        "client_secret",
    ));
    cases.push(case(
        "secret wrong type",
        M::POST,
        path,
        P,
        r#"{"key": "k", "provider": "github", "client_id": "a", "client_secret": 7}"#,
        400,
        "invalid_request",
        "invalid type",
    ));
    cases.push(case("scope with space", M::POST, path, P, r#"{"key": "k", "provider": "github", "client_id": "a", "client_secret": "b", "scopes": ["a b"]}"#, 400, "invalid_request", "scopes"));
    cases.push(case(
        "existing key",
        M::POST,
        path,
        P,
        r#"{"key": "github", "provider": "github", "client_id": "a", "client_secret": "b"}"#,
        409,
        "integration_exists",
        "PATCH",
    ));

    // PATCH/GET/DELETE /v1/integrations/{key}
    let path = "/v1/integrations/github";
    json_body_cases(M::PATCH, path, P, &mut cases);
    cases.push(case(
        "patch unknown integration",
        M::PATCH,
        "/v1/integrations/nope",
        P,
        r#"{"scopes": []}"#,
        404,
        "unknown_integration",
        "GET /v1/integrations",
    ));
    cases.push(case(
        "patch key",
        M::PATCH,
        path,
        P,
        r#"{"key": "renamed"}"#,
        400,
        "invalid_request",
        "unknown field `key`",
    ));
    cases.push(case(
        "patch bad scopes",
        M::PATCH,
        path,
        P,
        r#"{"scopes": [""]}"#,
        400,
        "invalid_request",
        "scopes",
    ));
    cases.push(case(
        "patch unknown provider",
        M::PATCH,
        path,
        P,
        r#"{"provider": "nope"}"#,
        400,
        "unknown_provider",
        "nope",
    ));
    cases.push(case(
        "patch empty secret",
        M::PATCH,
        path,
        P,
        r#"{"client_secret": ""}"#,
        400,
        "invalid_request",
        "client_secret",
    ));
    cases.push(case(
        "get unknown",
        M::GET,
        "/v1/integrations/nope",
        P,
        "",
        404,
        "unknown_integration",
        "nope",
    ));
    cases.push(case(
        "delete unknown",
        M::DELETE,
        "/v1/integrations/nope",
        P,
        "",
        404,
        "unknown_integration",
        "nope",
    ));

    // Routes and methods that do not exist.
    cases.push(case(
        "unknown route",
        M::GET,
        "/v1/nothing-here",
        P,
        "",
        404,
        "not_found",
        "no such route",
    ));
    cases.push(case(
        "wrong method",
        M::PUT,
        "/v1/integrations",
        P,
        "{}",
        405,
        "method_not_allowed",
        "method",
    ));

    for c in &cases {
        let token = match c.who {
            Who::Admin => server.admin_token.as_str(),
            Who::Project => key.as_str(),
        };
        let resp = server
            .raw(
                c.method.clone(),
                &c.path,
                Some(token),
                c.content_type,
                c.body.clone(),
            )
            .await;
        assert_eq!(
            (resp.status, resp.code()),
            (c.status, c.code),
            "case {:?} ({} {}): {}",
            c.name,
            c.method,
            c.path,
            resp.text
        );
        assert!(
            resp.message().contains(c.hint),
            "case {:?}: message {:?} should mention {:?}",
            c.name,
            resp.message(),
            c.hint
        );
        assert_eq!(
            resp.headers.get("content-type").unwrap(),
            "application/json",
            "case {:?}",
            c.name
        );
    }
    assert!(cases.len() >= 50, "{} cases", cases.len());

    // Nothing was changed or lost by any of them.
    assert_eq!(
        server
            .get("/v1/admin/projects", &server.admin_token)
            .await
            .text,
        before_projects
    );
    assert_eq!(
        server.get("/v1/integrations", &key).await.text,
        before_integrations
    );
    let secret =
        keyrelay_server::services::integrations::client_secret(server.app(), &id, "github")
            .await
            .unwrap()
            .unwrap();
    assert_eq!(secret.expose_secret(), "s3cret");
}

async fn unauthenticated_calls_are_refused(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (id, key) = server.create_project("p").await;
    let endpoints = [
        (Method::POST, "/v1/admin/projects".to_string()),
        (Method::GET, "/v1/admin/projects".to_string()),
        (Method::POST, format!("/v1/admin/projects/{id}/secret-keys")),
        (Method::GET, format!("/v1/admin/projects/{id}/secret-keys")),
        (
            Method::DELETE,
            format!("/v1/admin/projects/{id}/secret-keys/sk_x"),
        ),
        (Method::GET, "/v1/project".to_string()),
        (Method::PATCH, "/v1/project".to_string()),
        (Method::POST, "/v1/integrations".to_string()),
        (Method::GET, "/v1/integrations".to_string()),
        (Method::GET, "/v1/integrations/github".to_string()),
        (Method::PATCH, "/v1/integrations/github".to_string()),
        (Method::DELETE, "/v1/integrations/github".to_string()),
    ];
    let wrong_key = format!("{key}x");
    for (method, path) in &endpoints {
        let none = server
            .call(method.clone(), path, None, Some(json!({})))
            .await;
        assert_eq!(
            (none.status, none.code()),
            (401, "missing_api_key"),
            "{method} {path}"
        );
        assert!(none.message().contains("Authorization: Bearer"));
        let wrong = server
            .call(method.clone(), path, Some(&wrong_key), Some(json!({})))
            .await;
        assert_eq!(
            (wrong.status, wrong.code()),
            (401, "invalid_api_key"),
            "{method} {path}"
        );
        assert!(!wrong.text.contains(&wrong_key), "errors never echo a key");
        let basic = server
            .client
            .request(method.clone(), server.url(path))
            .header("authorization", "Basic dXNlcjpwYXNz")
            .send()
            .await
            .unwrap();
        assert_eq!(basic.status(), 401, "{method} {path}");
    }
}
