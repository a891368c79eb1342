//! The admin and project APIs, end to end.

use keyrelay_testkit::{Backend, TestServer, both_backends};
use serde_json::json;

both_backends! {
    projects_and_keys => projects_and_keys;
    integrations_crud => integrations_crud;
    restart_keeps_everything => restart_keeps_everything;
    health => health;
}

async fn projects_and_keys(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let admin = server.admin_token.clone();
    let created = server
        .post(
            "/v1/admin/projects",
            &admin,
            json!({"name": "acme", "allowed_redirect_urls": ["https://acme.example/cb"],
                   "webhook_url": "https://acme.example/hooks"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_str().unwrap().to_string();
    let key1 = created.body["secret_key"].as_str().unwrap().to_string();
    assert!(id.starts_with("prj_"));
    assert!(key1.starts_with("kr_sk_"));
    assert!(
        created.body["webhook_secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );

    // The project sees itself, without any secret.
    let me = server.get("/v1/project", &key1).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["name"], "acme");
    assert_eq!(me.body["webhook_url"], "https://acme.example/hooks");
    assert!(me.body.get("secret_key").is_none() && me.body.get("webhook_secret").is_none());

    // PATCH: change redirect URLs, remove the webhook URL with null.
    let patched = server
        .patch(
            "/v1/project",
            &key1,
            json!({"allowed_redirect_urls": ["https://acme.example/a", "http://localhost:3000/b"],
                   "webhook_url": null}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(
        patched.body["allowed_redirect_urls"][1],
        "http://localhost:3000/b"
    );
    assert!(patched.body["webhook_url"].is_null());

    // A second key works; deleting the first locks it out.
    let made = server
        .post(
            &format!("/v1/admin/projects/{id}/secret-keys"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.text);
    let key2 = made.body["secret_key"].as_str().unwrap().to_string();
    assert_eq!(server.get("/v1/project", &key2).await.status, 200);
    let keys = server
        .get(&format!("/v1/admin/projects/{id}/secret-keys"), &admin)
        .await;
    let listed = keys.body["secret_keys"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(!keys.text.contains("kr_sk_"), "a listing shows no key");
    let key1_id = created.body["secret_key_id"].as_str().unwrap();
    let deleted = server
        .delete(
            &format!("/v1/admin/projects/{id}/secret-keys/{key1_id}"),
            &admin,
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let refused = server.get("/v1/project", &key1).await;
    assert_eq!((refused.status, refused.code()), (401, "invalid_api_key"));
    assert_eq!(server.get("/v1/project", &key2).await.status, 200);
    let again = server
        .delete(
            &format!("/v1/admin/projects/{id}/secret-keys/{key1_id}"),
            &admin,
        )
        .await;
    assert_eq!((again.status, again.code()), (404, "unknown_secret_key"));

    // The listing of projects shows no secrets.
    let list = server.get("/v1/admin/projects", &admin).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["projects"].as_array().unwrap().len(), 1);
    assert!(!list.text.contains("whsec_") && !list.text.contains("kr_sk_"));

    // The same name twice is a conflict.
    let dup = server
        .post("/v1/admin/projects", &admin, json!({"name": "acme"}))
        .await;
    assert_eq!((dup.status, dup.code()), (409, "project_exists"));
}

async fn integrations_crud(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (_, key) = server.create_project("p").await;
    let created = server
        .post(
            "/v1/integrations",
            &key,
            json!({"key": "github", "provider": "github", "client_id": "Iv1.abc",
                   "client_secret": "very-secret-value", "scopes": ["repo", "read:user"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["client_secret_set"], true);
    assert_eq!(created.body["auth_mode"], "oauth2");
    assert_eq!(
        created.body["callback_url"],
        format!("{}/oauth/callback", server.base_url)
    );
    assert!(!created.text.contains("very-secret-value"));

    // An inline definition.
    let inline = json!({
        "auth_mode": "oauth2",
        "display_name": "Acme ID",
        "authorization_endpoint": "https://id.acme.example/authorize",
        "token_endpoint": "https://id.acme.example/token",
        "api_base_url": "https://api.acme.example",
        "token_endpoint_auth_method": "client_secret_post"
    });
    let acme = server
        .post(
            "/v1/integrations",
            &key,
            json!({"key": "acme", "provider": inline, "client_id": "c", "client_secret": "s"}),
        )
        .await;
    assert_eq!(acme.status, 201, "{}", acme.text);
    assert_eq!(acme.body["provider"]["display_name"], "Acme ID");

    // An API-key provider needs no client credentials and has no callback.
    let stripe = server
        .post(
            "/v1/integrations",
            &key,
            json!({"key": "stripe", "provider": "stripe_api_key"}),
        )
        .await;
    assert_eq!(stripe.status, 201, "{}", stripe.text);
    assert!(stripe.body["callback_url"].is_null());
    assert_eq!(stripe.body["client_secret_set"], false);

    let list = server.get("/v1/integrations", &key).await;
    let keys: Vec<&str> = list.body["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["acme", "github", "stripe"]);
    assert!(!list.text.contains("very-secret-value"));

    // PATCH rotates the secret and scopes; GET shows the change.
    let patched = server
        .patch(
            "/v1/integrations/github",
            &key,
            json!({"client_secret": "rotated-secret", "scopes": ["repo"]}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["scopes"], json!(["repo"]));
    let secret = keyrelay_server::services::integrations::client_secret(
        server.app(),
        &project_id(&server, &key).await,
        "github",
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(secret.expose_secret(), "rotated-secret");

    let got = server.get("/v1/integrations/github", &key).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["client_id"], "Iv1.abc");

    let dup = server
        .post(
            "/v1/integrations",
            &key,
            json!({"key": "github", "provider": "github", "client_id": "x", "client_secret": "y"}),
        )
        .await;
    assert_eq!((dup.status, dup.code()), (409, "integration_exists"));

    let deleted = server.delete("/v1/integrations/github", &key).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let gone = server.get("/v1/integrations/github", &key).await;
    assert_eq!((gone.status, gone.code()), (404, "unknown_integration"));
}

async fn project_id(server: &TestServer, key: &str) -> String {
    server.get("/v1/project", key).await.body["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn restart_keeps_everything(backend: Backend) {
    let Some(mut server) = TestServer::start(backend).await else {
        return;
    };
    let (id, key) = server.create_project("kept").await;
    server
        .create_integration("github", &key, "kept-secret")
        .await;
    server.restart().await;
    assert_eq!(server.get("/v1/project", &key).await.body["id"], id);
    let secret =
        keyrelay_server::services::integrations::client_secret(server.app(), &id, "github")
            .await
            .unwrap()
            .unwrap();
    assert_eq!(secret.expose_secret(), "kept-secret");
}

async fn health(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let client = &server.client;
    let healthz = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), 200);
    let readyz = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(readyz.status(), 200);
    let body: serde_json::Value = readyz.json().await.unwrap();
    let expected = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(body["database"], expected);
}
