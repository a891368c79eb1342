//! A database that goes away: requests get 503 and `/readyz` fails, the
//! process keeps running, nothing half-written is left, and service resumes
//! when the database is back. PostgreSQL is reached through a TCP forwarder
//! that the test cuts and restores.

use std::time::{Duration, Instant};

use keyrelay_testkit::{Backend, TcpProxy, TestDatabase, TestServer};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_gives_503_and_recovers() {
    let Some(db) = TestDatabase::postgres().await.unwrap() else {
        return;
    };
    let mut url = url::Url::parse(&db.url).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let target = tokio::net::lookup_host(target)
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = TcpProxy::start(target).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();

    let server = TestServer::builder(Backend::Postgres)
        .database_url(url.to_string())
        .start()
        .await
        .unwrap();
    let (_, key) = server.create_project("survivor").await;
    server.create_integration("before", &key, "kept").await;

    proxy.cut();
    let resp = server.get("/v1/integrations", &key).await;
    assert_eq!(
        (resp.status, resp.code()),
        (503, "database_unavailable"),
        "{}",
        resp.text
    );
    assert!(resp.message().contains("retry"));
    let ready = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let health = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "the process itself is fine");
    let write = server
        .post(
            "/v1/integrations",
            &key,
            json!({"key": "during", "provider": "github", "client_id": "a", "client_secret": "b"}),
        )
        .await;
    assert_eq!(write.status, 503, "{}", write.text);

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = server
            .client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap();
        if ready.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "keyrelay did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let list = server.get("/v1/integrations", &key).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let keys: Vec<&str> = list.body["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["before"], "the refused write left nothing behind");
    server.create_integration("after", &key, "fine").await;
}
