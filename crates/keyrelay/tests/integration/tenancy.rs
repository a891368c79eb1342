//! A project never sees or touches another project's data: another
//! project's names answer exactly as names that do not exist.

use keyrelay_testkit::{Backend, TestServer, both_backends};
use serde_json::json;

both_backends! {
    other_projects_names_are_404 => other_projects_names_are_404;
    keys_are_not_interchangeable => keys_are_not_interchangeable;
}

async fn other_projects_names_are_404(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (_, key_a) = server.create_project("a").await;
    let (_, key_b) = server.create_project("b").await;
    server
        .create_integration("shared-name", &key_a, "secret-a")
        .await;
    server
        .create_integration("only-b", &key_b, "secret-b")
        .await;

    // A lists only its own.
    let list_a = server.get("/v1/integrations", &key_a).await;
    assert_eq!(list_a.body["integrations"].as_array().unwrap().len(), 1);
    assert!(!list_a.text.contains("only-b"));

    // B's name from A: the same answer as a name that does not exist.
    let missing = server.get("/v1/integrations/does-not-exist", &key_a).await;
    for (method, body) in [
        (reqwest::Method::GET, None),
        (reqwest::Method::PATCH, Some(json!({"scopes": ["x"]}))),
        (reqwest::Method::DELETE, None),
    ] {
        let resp = server
            .call(
                method.clone(),
                "/v1/integrations/only-b",
                Some(&key_a),
                body,
            )
            .await;
        assert_eq!(resp.status, 404, "{method} {}", resp.text);
        assert_eq!(resp.code(), "unknown_integration");
        assert_eq!(
            resp.message().replace("only-b", "X"),
            missing.message().replace("does-not-exist", "X"),
            "another project's name must look exactly like a missing one"
        );
    }
    // B's integration is untouched.
    let b = server.get("/v1/integrations/only-b", &key_b).await;
    assert_eq!(b.status, 200);
    assert_eq!(b.body["scopes"], json!(["repo"]));

    // The same key in two projects is two integrations.
    server
        .create_integration("shared-name", &key_b, "secret-b2")
        .await;
    let deleted = server.delete("/v1/integrations/shared-name", &key_b).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(
        server
            .get("/v1/integrations/shared-name", &key_a)
            .await
            .status,
        200
    );

    // Each project sees only itself.
    let me_a = server.get("/v1/project", &key_a).await;
    assert_eq!(me_a.body["name"], "a");
}

async fn keys_are_not_interchangeable(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (id_a, key_a) = server.create_project("a").await;
    let (id_b, _) = server.create_project("b").await;

    // A project key cannot use admin routes, not even for its own project.
    for path in [
        "/v1/admin/projects".to_string(),
        format!("/v1/admin/projects/{id_a}/secret-keys"),
        format!("/v1/admin/projects/{id_b}/secret-keys"),
    ] {
        let resp = server.get(&path, &key_a).await;
        assert_eq!(
            (resp.status, resp.code()),
            (401, "invalid_api_key"),
            "{path}"
        );
    }
    // The admin token is not a project key.
    let resp = server.get("/v1/project", &server.admin_token).await;
    assert_eq!((resp.status, resp.code()), (401, "invalid_api_key"));
    assert!(resp.message().contains("admin token"), "{}", resp.message());
    // A's key cannot delete B's keys through a guessed id either.
    let keys_b = server
        .get(
            &format!("/v1/admin/projects/{id_b}/secret-keys"),
            &server.admin_token,
        )
        .await;
    let kid_b = keys_b.body["secret_keys"][0]["id"].as_str().unwrap();
    let wrong_project = server
        .delete(
            &format!("/v1/admin/projects/{id_a}/secret-keys/{kid_b}"),
            &server.admin_token,
        )
        .await;
    assert_eq!(
        (wrong_project.status, wrong_project.code()),
        (404, "unknown_secret_key")
    );
}
