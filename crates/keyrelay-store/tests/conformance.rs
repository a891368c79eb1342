//! One conformance suite for every `Store` implementation: each case runs
//! against SQLite and (when KEYRELAY_TEST_DATABASE_URL is set) PostgreSQL,
//! each on a fresh database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use keyrelay_store::testing::TestDatabase;
use keyrelay_store::{
    ConnectSession, Connection, ConnectionFilter, DataKeyRecord, Event, EventFilter, Integration,
    OAuthFlow, Project, Revocation, SecretKeyRecord, Store, StoreError,
};
use serde_json::json;

async fn sqlite() -> (Arc<dyn Store>, TestDatabase) {
    let db = TestDatabase::sqlite().unwrap();
    let store = keyrelay_store::open(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    (store, db)
}

async fn postgres() -> Option<(Arc<dyn Store>, TestDatabase)> {
    let db = TestDatabase::postgres().await.unwrap()?;
    let store = keyrelay_store::open(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    Some((store, db))
}

macro_rules! conformance {
    ($($case:ident),+ $(,)?) => {
        $(
            mod $case {
                #[tokio::test]
                async fn sqlite() {
                    let (store, _db) = super::sqlite().await;
                    super::$case(store.as_ref()).await;
                }
                #[tokio::test]
                async fn postgres() {
                    let Some((store, _db)) = super::postgres().await else { return };
                    super::$case(store.as_ref()).await;
                }
            }
        )+
    };
}

conformance!(
    migrate_is_idempotent,
    meta_first_writer_wins,
    data_keys_rewrap_only_from_the_expected_kid,
    projects_round_trip,
    secret_keys_are_scoped_to_their_project,
    integrations_round_trip_and_are_scoped,
    timestamps_keep_their_instant,
    connect_sessions_are_single_use,
    oauth_flows_are_taken_once,
    connections_round_trip_with_version_checks,
    connections_list_filters_and_pages,
    leases_are_exclusive_until_they_lapse,
    due_connections_are_claimed_once,
    updates_record_their_event_atomically,
    events_list_filters_and_pages,
    integration_problems_are_set_and_cleared,
    revocations_are_claimed_rescheduled_and_deleted,
);

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + seconds, 0).unwrap()
}

fn project(id: &str, name: &str) -> Project {
    Project {
        id: id.into(),
        name: name.into(),
        allowed_redirect_urls: vec!["https://a.example/cb".into()],
        webhook_url: None,
        webhook_secret: vec![1, 2, 3, 0, 255],
        created_at: t(0),
        updated_at: t(0),
    }
}

fn integration(id: &str, project_id: &str, key: &str) -> Integration {
    Integration {
        id: id.into(),
        project_id: project_id.into(),
        key: key.into(),
        provider_name: Some("github".into()),
        provider: None,
        client_id: Some("cid".into()),
        client_secret: Some(vec![9, 8, 7]),
        scopes: vec!["repo".into(), "read:user".into()],
        created_at: t(1),
        updated_at: t(1),
        problem: None,
    }
}

async fn migrate_is_idempotent(store: &dyn Store) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
}

async fn meta_first_writer_wins(store: &dyn Store) {
    assert_eq!(store.get_meta("k").await.unwrap(), None);
    assert!(store.set_meta_if_absent("k", "first").await.unwrap());
    assert!(!store.set_meta_if_absent("k", "second").await.unwrap());
    assert_eq!(store.get_meta("k").await.unwrap().as_deref(), Some("first"));
}

async fn data_keys_rewrap_only_from_the_expected_kid(store: &dyn Store) {
    for (i, id) in ["dk_b", "dk_a"].iter().enumerate() {
        store
            .insert_data_key(&DataKeyRecord {
                id: (*id).into(),
                master_kid: "mk_old".into(),
                wrapped: vec![i as u8; 60],
                created_at: t(i as i64),
            })
            .await
            .unwrap();
    }
    let listed = store.list_data_keys().await.unwrap();
    assert_eq!(
        listed.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
        ["dk_b", "dk_a"],
        "oldest first"
    );
    assert!(
        store
            .rewrap_data_key("dk_a", "mk_old", "mk_new", &[7; 60])
            .await
            .unwrap()
    );
    // A second rotation that read the old state loses.
    assert!(
        !store
            .rewrap_data_key("dk_a", "mk_old", "mk_other", &[8; 60])
            .await
            .unwrap()
    );
    let got = store.get_data_key("dk_a").await.unwrap().unwrap();
    assert_eq!(
        (got.master_kid.as_str(), got.wrapped),
        ("mk_new", vec![7; 60])
    );
    assert!(store.get_data_key("dk_missing").await.unwrap().is_none());
    let dup = store.insert_data_key(&listed[0]).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
}

async fn projects_round_trip(store: &dyn Store) {
    let mut p = project("prj_1", "one");
    store.insert_project(&p).await.unwrap();
    assert_eq!(store.get_project("prj_1").await.unwrap().unwrap(), p);
    p.allowed_redirect_urls
        .push("http://localhost:3000/x".into());
    p.webhook_url = Some("https://hooks.example/".into());
    p.updated_at = t(50);
    store.update_project(&p).await.unwrap();
    assert_eq!(store.get_project("prj_1").await.unwrap().unwrap(), p);
    let dup = store.insert_project(&project("prj_2", "one")).await;
    assert!(
        matches!(dup, Err(StoreError::Conflict(_))),
        "names are unique: {dup:?}"
    );
    store
        .insert_project(&project("prj_2", "two"))
        .await
        .unwrap();
    let names: Vec<String> = store
        .list_projects()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names.len(), 2);
    assert!(store.get_project("prj_missing").await.unwrap().is_none());
}

async fn secret_keys_are_scoped_to_their_project(store: &dyn Store) {
    store.insert_project(&project("prj_a", "a")).await.unwrap();
    store.insert_project(&project("prj_b", "b")).await.unwrap();
    let key = SecretKeyRecord {
        id: "sk_1".into(),
        project_id: "prj_a".into(),
        hash: vec![0xAB; 32],
        created_at: t(2),
    };
    store.insert_secret_key(&key).await.unwrap();
    assert_eq!(
        store.find_secret_key(&[0xAB; 32]).await.unwrap().unwrap(),
        key
    );
    assert!(store.find_secret_key(&[0xAC; 32]).await.unwrap().is_none());
    assert_eq!(store.list_secret_keys("prj_a").await.unwrap().len(), 1);
    assert!(store.list_secret_keys("prj_b").await.unwrap().is_empty());
    assert!(
        !store.delete_secret_key("prj_b", "sk_1").await.unwrap(),
        "not B's key"
    );
    assert!(store.find_secret_key(&[0xAB; 32]).await.unwrap().is_some());
    assert!(store.delete_secret_key("prj_a", "sk_1").await.unwrap());
    assert!(store.find_secret_key(&[0xAB; 32]).await.unwrap().is_none());
    let orphan = SecretKeyRecord {
        project_id: "prj_none".into(),
        ..key
    };
    assert!(
        store.insert_secret_key(&orphan).await.is_err(),
        "foreign key enforced"
    );
}

async fn integrations_round_trip_and_are_scoped(store: &dyn Store) {
    store.insert_project(&project("prj_a", "a")).await.unwrap();
    store.insert_project(&project("prj_b", "b")).await.unwrap();
    let mut gh = integration("int_1", "prj_a", "github");
    store.insert_integration(&gh).await.unwrap();
    assert_eq!(
        store
            .get_integration("prj_a", "github")
            .await
            .unwrap()
            .unwrap(),
        gh
    );
    assert!(
        store
            .get_integration("prj_b", "github")
            .await
            .unwrap()
            .is_none()
    );

    let dup = store
        .insert_integration(&integration("int_2", "prj_a", "github"))
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    store
        .insert_integration(&integration("int_3", "prj_b", "github"))
        .await
        .unwrap();

    gh.provider_name = None;
    gh.provider = Some(json!({"auth_mode": "api_key", "api_base_url": "https://x.example"}));
    gh.client_secret = None;
    gh.scopes = vec![];
    gh.updated_at = t(99);
    store.update_integration(&gh).await.unwrap();
    assert_eq!(
        store
            .get_integration("prj_a", "github")
            .await
            .unwrap()
            .unwrap(),
        gh
    );

    // Updating through another project's id changes nothing.
    let mut foreign = gh.clone();
    foreign.project_id = "prj_b".into();
    foreign.client_id = Some("hijacked".into());
    store.update_integration(&foreign).await.unwrap();
    assert_eq!(
        store
            .get_integration("prj_a", "github")
            .await
            .unwrap()
            .unwrap()
            .client_id
            .as_deref(),
        Some("cid")
    );

    store
        .insert_integration(&integration("int_4", "prj_a", "another"))
        .await
        .unwrap();
    let keys: Vec<String> = store
        .list_integrations("prj_a")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(keys, ["another", "github"]);
    assert_eq!(store.list_all_integrations().await.unwrap().len(), 3);
    assert!(!store.delete_integration("prj_b", "another").await.unwrap());
    assert!(store.delete_integration("prj_a", "another").await.unwrap());
    assert!(
        store
            .get_integration("prj_a", "another")
            .await
            .unwrap()
            .is_none()
    );
}

async fn timestamps_keep_their_instant(store: &dyn Store) {
    let mut p = project("prj_t", "t");
    p.created_at = t(0) + Duration::milliseconds(123);
    store.insert_project(&p).await.unwrap();
    let got = store.get_project("prj_t").await.unwrap().unwrap();
    assert_eq!(got.created_at, p.created_at);
}

async fn setup_integration(store: &dyn Store) {
    store.insert_project(&project("prj_a", "a")).await.unwrap();
    store
        .insert_integration(&integration("int_a", "prj_a", "github"))
        .await
        .unwrap();
}

async fn connect_sessions_are_single_use(store: &dyn Store) {
    setup_integration(store).await;
    let session = ConnectSession {
        token_hash: vec![1; 32],
        id: "cs_1".into(),
        project_id: "prj_a".into(),
        integration_id: "int_a".into(),
        integration_key: "github".into(),
        user_id: "u1".into(),
        redirect_url: "https://a.example/cb".into(),
        scopes: vec!["repo".into()],
        connection_config: serde_json::Map::from_iter([("org".to_string(), json!("acme"))]),
        expires_at: t(600),
        created_at: t(0),
        used_at: None,
    };
    store.insert_connect_session(&session).await.unwrap();
    let taken = store
        .take_connect_session(&[1; 32], t(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.used_at, Some(t(5)));
    assert_eq!(taken.connection_config["org"], "acme");
    assert!(
        store
            .take_connect_session(&[1; 32], t(6))
            .await
            .unwrap()
            .is_none(),
        "single use"
    );
    assert!(
        store
            .take_connect_session(&[2; 32], t(6))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.delete_expired_flows(t(601)).await.unwrap(), 1);
}

fn flow(hash: u8) -> OAuthFlow {
    OAuthFlow {
        state_hash: vec![hash; 32],
        session_id: "cs_1".into(),
        binding_hash: vec![7; 32],
        project_id: "prj_a".into(),
        integration_id: "int_a".into(),
        integration_key: "github".into(),
        user_id: "u1".into(),
        redirect_url: "https://a.example/cb".into(),
        redirect_uri: "http://127.0.0.1:8844/oauth/callback".into(),
        scopes: vec![],
        connection_config: serde_json::Map::new(),
        pkce_verifier: Some(vec![3; 40]),
        expected_issuer: Some("https://issuer.example".into()),
        expires_at: t(600),
        created_at: t(0),
    }
}

async fn oauth_flows_are_taken_once(store: &dyn Store) {
    setup_integration(store).await;
    store.insert_oauth_flow(&flow(1)).await.unwrap();
    store.insert_oauth_flow(&flow(2)).await.unwrap();
    assert_eq!(
        store.get_oauth_flow(&[1; 32]).await.unwrap().unwrap(),
        flow(1)
    );
    assert_eq!(
        store.take_oauth_flow(&[1; 32]).await.unwrap().unwrap(),
        flow(1)
    );
    assert!(
        store.take_oauth_flow(&[1; 32]).await.unwrap().is_none(),
        "a state works once"
    );
    assert!(store.get_oauth_flow(&[1; 32]).await.unwrap().is_none());
    assert_eq!(store.delete_expired_flows(t(599)).await.unwrap(), 0);
    assert_eq!(store.delete_expired_flows(t(601)).await.unwrap(), 1);
}

fn connection(id: &str, user: &str, at: i64) -> Connection {
    Connection {
        id: id.into(),
        project_id: "prj_a".into(),
        integration_id: "int_a".into(),
        integration_key: "github".into(),
        user_id: user.into(),
        auth_mode: "oauth2".into(),
        status: "active".into(),
        scopes: vec!["repo".into()],
        expires_at: Some(t(at + 3600)),
        credentials: vec![0xC0; 48],
        connection_config: serde_json::Map::new(),
        created_at: t(at),
        updated_at: t(at),
        last_refresh_at: None,
        refresh_count: 0,
        last_error: None,
        version: 1,
        next_refresh_at: None,
        refresh_failures: 0,
    }
}

async fn connections_round_trip_with_version_checks(store: &dyn Store) {
    setup_integration(store).await;
    let mut c = connection("con_1", "user@example.com", 0);
    store.insert_connection(&c).await.unwrap();
    assert_eq!(
        store
            .get_connection("prj_a", "github", "user@example.com")
            .await
            .unwrap()
            .unwrap(),
        c
    );
    assert!(
        store
            .get_connection("prj_b", "github", "user@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let dup = store
        .insert_connection(&connection("con_2", "user@example.com", 1))
        .await;
    assert!(
        matches!(dup, Err(StoreError::Conflict(_))),
        "one connection per (integration, user)"
    );

    c.credentials = vec![0xC1; 48];
    c.refresh_count = 1;
    c.last_refresh_at = Some(t(10));
    c.last_error = Some(json!({"code": "x", "message": "y", "at": "z"}));
    c.status = "reauthorization_required".into();
    assert!(store.update_connection(&c, 1, None).await.unwrap());
    assert!(
        !store.update_connection(&c, 1, None).await.unwrap(),
        "a stale writer loses"
    );
    let got = store
        .get_connection("prj_a", "github", "user@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.version, 2);
    assert_eq!(got.credentials, vec![0xC1; 48]);
    assert_eq!(got.last_error, c.last_error);
    assert_eq!(got.status, "reauthorization_required");

    assert_eq!(store.count_connections("int_a").await.unwrap(), 1);
    assert!(
        store.delete_integration("prj_a", "github").await.is_err(),
        "connections pin their integration"
    );
    assert!(store.delete_connection("con_1").await.unwrap());
    assert!(!store.delete_connection("con_1").await.unwrap());
    assert_eq!(store.count_connections("int_a").await.unwrap(), 0);
}

async fn connections_list_filters_and_pages(store: &dyn Store) {
    setup_integration(store).await;
    for i in 0..7 {
        let mut c = connection(&format!("con_{i}"), &format!("u{i}"), i);
        if i % 2 == 0 {
            c.status = "reauthorization_required".into();
        }
        store.insert_connection(&c).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut filter = ConnectionFilter {
        limit: 3,
        ..Default::default()
    };
    loop {
        let page = store.list_connections("prj_a", &filter).await.unwrap();
        seen.extend(page.iter().map(|c| c.user_id.clone()));
        if page.len() < 3 {
            break;
        }
        let last = page.last().unwrap();
        filter.after = Some((last.created_at, last.id.clone()));
    }
    assert_eq!(
        seen,
        ["u6", "u5", "u4", "u3", "u2", "u1", "u0"],
        "newest first, no gaps"
    );
    let only = |f: ConnectionFilter| async move {
        store
            .list_connections("prj_a", &ConnectionFilter { limit: 100, ..f })
            .await
            .unwrap()
            .len()
    };
    assert_eq!(
        only(ConnectionFilter {
            status: Some("active".into()),
            ..Default::default()
        })
        .await,
        3
    );
    assert_eq!(
        only(ConnectionFilter {
            user_id: Some("u3".into()),
            ..Default::default()
        })
        .await,
        1
    );
    assert_eq!(
        only(ConnectionFilter {
            integration_key: Some("other".into()),
            ..Default::default()
        })
        .await,
        0
    );
    assert!(
        store
            .list_connections(
                "prj_b",
                &ConnectionFilter {
                    limit: 100,
                    ..Default::default()
                }
            )
            .await
            .unwrap()
            .is_empty()
    );
}

async fn leases_are_exclusive_until_they_lapse(store: &dyn Store) {
    setup_integration(store).await;
    let c = connection("con_1", "u1", 0);
    store.insert_connection(&c).await.unwrap();
    assert!(
        store
            .lease_connection("con_1", 1, "a", t(0), t(30))
            .await
            .unwrap()
    );
    assert!(
        !store
            .lease_connection("con_1", 1, "b", t(10), t(40))
            .await
            .unwrap(),
        "a live lease keeps others out"
    );
    assert!(
        store
            .lease_connection("con_1", 1, "a", t(10), t(40))
            .await
            .unwrap(),
        "its owner may extend it"
    );
    assert!(
        store
            .lease_connection("con_1", 1, "b", t(41), t(70))
            .await
            .unwrap(),
        "a lapsed lease can be taken"
    );
    store.release_connection_lease("con_1", "a").await.unwrap();
    assert!(
        !store
            .lease_connection("con_1", 1, "c", t(42), t(70))
            .await
            .unwrap(),
        "only the owner releases"
    );
    store.release_connection_lease("con_1", "b").await.unwrap();
    assert!(
        store
            .lease_connection("con_1", 1, "c", t(42), t(70))
            .await
            .unwrap()
    );
    // A write releases the lease, and a lease is only for the version read.
    assert!(store.update_connection(&c, 1, None).await.unwrap());
    assert!(
        !store
            .lease_connection("con_1", 1, "d", t(43), t(70))
            .await
            .unwrap(),
        "version 1 was replaced: no refresh may start from it"
    );
    assert!(
        store
            .lease_connection("con_1", 2, "d", t(43), t(70))
            .await
            .unwrap()
    );
    assert!(
        !store
            .lease_connection("missing", 1, "d", t(43), t(70))
            .await
            .unwrap()
    );
}

async fn due_connections_are_claimed_once(store: &dyn Store) {
    setup_integration(store).await;
    for i in 0..5 {
        let mut c = connection(&format!("con_{i}"), &format!("u{i}"), i);
        c.next_refresh_at = Some(t(100 + i));
        if i == 4 {
            c.status = "reauthorization_required".into();
        }
        store.insert_connection(&c).await.unwrap();
    }
    let mut none = connection("con_x", "ux", 9);
    none.next_refresh_at = None;
    store.insert_connection(&none).await.unwrap();

    let first = store
        .claim_due_connections("a", t(102), t(130), 2)
        .await
        .unwrap();
    let mut ids: Vec<_> = first.iter().map(|c| c.id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["con_0", "con_1"], "earliest first, limited");
    assert_eq!(first[0].next_refresh_at.map(|_| ()), Some(()));
    let second = store
        .claim_due_connections("b", t(110), t(140), 10)
        .await
        .unwrap();
    let ids: Vec<_> = second.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids.len(),
        2,
        "leased, dead and unscheduled ones are skipped: {ids:?}"
    );
    assert!(ids.contains(&"con_2") && ids.contains(&"con_3"));
    assert!(
        !store
            .lease_connection("con_0", 1, "b", t(111), t(140))
            .await
            .unwrap(),
        "a claim is a lease"
    );
    let later = store
        .claim_due_connections("c", t(131), t(160), 10)
        .await
        .unwrap();
    assert_eq!(later.len(), 2, "lapsed claims come back");
}

fn event(id: &str, user: &str, kind: &str, at: i64) -> Event {
    Event {
        id: id.into(),
        project_id: "prj_a".into(),
        integration_key: "github".into(),
        user_id: user.into(),
        kind: kind.into(),
        detail: json!({"reason": "test", "n": at}),
        created_at: t(at),
    }
}

async fn updates_record_their_event_atomically(store: &dyn Store) {
    setup_integration(store).await;
    let c = connection("con_1", "u1", 0);
    store.insert_connection(&c).await.unwrap();
    let e1 = event("evt_1", "u1", "refreshed", 5);
    assert!(store.update_connection(&c, 1, Some(&e1)).await.unwrap());
    let e2 = event("evt_2", "u1", "refreshed", 6);
    assert!(!store.update_connection(&c, 1, Some(&e2)).await.unwrap());
    let all = store
        .list_events(
            "prj_a",
            &EventFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(all, vec![e1], "a lost write records no event");
}

async fn events_list_filters_and_pages(store: &dyn Store) {
    setup_integration(store).await;
    store.insert_project(&project("prj_b", "b")).await.unwrap();
    for i in 0..6 {
        let kind = if i % 2 == 0 {
            "refreshed"
        } else {
            "refresh_failed"
        };
        store
            .insert_event(&event(&format!("evt_{i}"), &format!("u{}", i % 3), kind, i))
            .await
            .unwrap();
    }
    let mut other = event("evt_b", "u0", "refreshed", 1);
    other.project_id = "prj_b".into();
    store.insert_event(&other).await.unwrap();

    let f = |kind: Option<&str>, user: Option<&str>, limit| EventFilter {
        integration_key: Some("github".into()),
        user_id: user.map(Into::into),
        kind: kind.map(Into::into),
        after: None,
        limit,
    };
    let ids = |v: Vec<Event>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store
            .list_events("prj_a", &f(None, None, 10))
            .await
            .unwrap()),
        ["evt_5", "evt_4", "evt_3", "evt_2", "evt_1", "evt_0"]
    );
    assert_eq!(
        ids(store
            .list_events("prj_a", &f(Some("refreshed"), None, 10))
            .await
            .unwrap()),
        ["evt_4", "evt_2", "evt_0"]
    );
    assert_eq!(
        ids(store
            .list_events("prj_a", &f(None, Some("u1"), 10))
            .await
            .unwrap()),
        ["evt_4", "evt_1"]
    );
    let page = store.list_events("prj_a", &f(None, None, 2)).await.unwrap();
    let last = page.last().unwrap();
    let mut next = f(None, None, 10);
    next.after = Some((last.created_at, last.id.clone()));
    assert_eq!(
        ids(store.list_events("prj_a", &next).await.unwrap()),
        ["evt_3", "evt_2", "evt_1", "evt_0"]
    );
    assert_eq!(
        ids(store
            .list_events("prj_b", &f(None, None, 10))
            .await
            .unwrap()),
        ["evt_b"]
    );
}

async fn integration_problems_are_set_and_cleared(store: &dyn Store) {
    setup_integration(store).await;
    let problem = json!({"code": "invalid_client", "message": "m", "at": "t"});
    store
        .set_integration_problem("int_a", Some(&problem))
        .await
        .unwrap();
    let got = store
        .get_integration("prj_a", "github")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.problem, Some(problem));
    let mut cleared = got.clone();
    cleared.problem = None;
    store.update_integration(&cleared).await.unwrap();
    let got = store
        .get_integration("prj_a", "github")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.problem, None);
}

async fn revocations_are_claimed_rescheduled_and_deleted(store: &dyn Store) {
    setup_integration(store).await;
    let r = Revocation {
        id: "rev_1".into(),
        project_id: "prj_a".into(),
        integration_id: "int_a".into(),
        integration_key: "github".into(),
        user_id: "u1".into(),
        tokens: vec![0xAB; 40],
        reason: Some("user left".into()),
        attempts: 1,
        next_attempt_at: t(100),
        last_error: Some("503".into()),
        created_at: t(0),
    };
    store.insert_revocation(&r).await.unwrap();
    assert!(
        store
            .claim_due_revocations(t(99), t(130), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store
        .claim_due_revocations(t(100), t(130), 10)
        .await
        .unwrap();
    assert_eq!(claimed, vec![r.clone()]);
    assert!(
        store
            .claim_due_revocations(t(101), t(130), 10)
            .await
            .unwrap()
            .is_empty(),
        "claimed once"
    );
    store
        .reschedule_revocation("rev_1", 2, t(200), "network")
        .await
        .unwrap();
    assert!(
        store
            .claim_due_revocations(t(150), t(180), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store
        .claim_due_revocations(t(200), t(230), 10)
        .await
        .unwrap();
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].last_error.as_deref(), Some("network"));
    store.delete_revocation("rev_1").await.unwrap();
    assert!(
        store
            .claim_due_revocations(t(999), t(1030), 10)
            .await
            .unwrap()
            .is_empty()
    );
}
