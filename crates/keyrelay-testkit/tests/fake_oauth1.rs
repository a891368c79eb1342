//! The fake OAuth 1.0a provider, driven by keyrelay's own signer: two
//! independent implementations of RFC 5849 have to agree for these to pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use keyrelay_oauth::FormRequest;
use keyrelay_oauth::oauth1::{
    Oauth1Error, Oauth1Signer, SignatureMethod, SigningParams, TemporaryCredentials,
    TokenCredentials, authorization_redirect_url, form_body_for_signing, parse_callback,
    parse_temporary_credentials, parse_token_credentials, temporary_credentials_request,
    token_credentials_request,
};
use keyrelay_testkit::{
    FakeOauth1Options, FakeOauth1Provider, Oauth1AuthorizeMode, Oauth1SignatureMethod,
    TEST_RSA_PRIVATE_KEY_PEM,
};
use keyrelay_vault::{AuthorizationCode, ClientSecret, TokenSecret};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Needs `=`, `&`, `+`, a space and non-ASCII encoded in the signing key.
const SECRET: &str = "s3cr&t+/ =é~";
const CALLBACK: &str = "http://127.0.0.1:9/oauth1/callback?keep=yes&x=a%20b";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn options(method: Oauth1SignatureMethod) -> FakeOauth1Options {
    FakeOauth1Options {
        consumer_key: "ck-fake 1".into(),
        consumer_secret: SECRET.into(),
        signature_method: method,
        ..FakeOauth1Options::default()
    }
}

fn signer(method: Oauth1SignatureMethod) -> Oauth1Signer {
    let (method, key) = match method {
        Oauth1SignatureMethod::HmacSha1 => (SignatureMethod::HmacSha1, SECRET),
        Oauth1SignatureMethod::HmacSha256 => (SignatureMethod::HmacSha256, SECRET),
        Oauth1SignatureMethod::Plaintext => (SignatureMethod::Plaintext, SECRET),
        Oauth1SignatureMethod::RsaSha1 => {
            return Oauth1Signer::rsa_sha1("ck-fake 1", TEST_RSA_PRIVATE_KEY_PEM).unwrap();
        }
    };
    Oauth1Signer::new(method, "ck-fake 1", ClientSecret::new(key)).unwrap()
}

fn fresh() -> SigningParams {
    SigningParams::generate().unwrap()
}

async fn send(request: &FormRequest) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut builder = client().post(&request.url).body(request.body.clone());
    for (name, value) in &request.headers {
        builder = builder.header(*name, value);
    }
    let response = builder.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

async fn temporary(fake: &FakeOauth1Provider, signer: &Oauth1Signer) -> TemporaryCredentials {
    let request = temporary_credentials_request(
        signer,
        &fake.request_token_url(),
        CALLBACK,
        &BTreeMap::new(),
        &fresh(),
    )
    .unwrap();
    let (status, _, body) = send(&request).await;
    parse_temporary_credentials(status, &body).unwrap()
}

/// The provider's redirect for the temporary token, as a URL.
async fn authorize(fake: &FakeOauth1Provider, token: &str) -> url::Url {
    let url = authorization_redirect_url(&fake.authorize_url(), token, &BTreeMap::new()).unwrap();
    let response = client().get(url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 302);
    let location = response.headers()["location"].to_str().unwrap();
    url::Url::parse(location).unwrap()
}

async fn exchange(
    fake: &FakeOauth1Provider,
    signer: &Oauth1Signer,
    temp: &TemporaryCredentials,
    verifier: &AuthorizationCode,
) -> Result<TokenCredentials, Oauth1Error> {
    let request = token_credentials_request(
        signer,
        &fake.access_token_url(),
        &temp.token,
        &temp.token_secret,
        verifier,
        &fresh(),
    )
    .unwrap();
    let (status, _, body) = send(&request).await;
    parse_token_credentials(status, &body)
}

/// All three legs; returns a signer holding the access token.
async fn connect(fake: &FakeOauth1Provider, signer: &Oauth1Signer) -> (Oauth1Signer, String) {
    let temp = temporary(fake, signer).await;
    assert!(temp.token.starts_with("tmp-"));
    let redirect = authorize(fake, &temp.token).await;
    assert_eq!(redirect.path(), "/oauth1/callback");
    let query: Vec<(String, String)> = redirect.query_pairs().into_owned().collect();
    assert_eq!(query[0], ("keep".into(), "yes".into()), "{redirect}");
    assert_eq!(query[1], ("x".into(), "a b".into()), "{redirect}");
    let callback = parse_callback(redirect.query().unwrap()).unwrap();
    assert_eq!(callback.token, temp.token);
    let creds = exchange(fake, signer, &temp, &callback.verifier)
        .await
        .unwrap();
    assert_eq!(
        creds.extra.get("user_id").map(String::as_str),
        Some("783214")
    );
    assert_eq!(
        creds.extra.get("screen_name").map(String::as_str),
        Some("fake_user")
    );
    let token = creds.token.expose_secret().to_owned();
    assert!(fake.issued_access_tokens().contains(&token));
    assert!(fake.access_token_active(&token));
    (
        signer.clone().with_token(token.clone(), creds.token_secret),
        token,
    )
}

/// A signed request: `form` is sent as a form body (and signed) when given.
async fn signed(
    signer: &Oauth1Signer,
    method: &str,
    url: &str,
    form: Option<&str>,
    params: &SigningParams,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let content_type = "application/x-www-form-urlencoded; charset=UTF-8";
    let body = form.unwrap_or_default().as_bytes();
    let signed_body = form.and_then(|_| form_body_for_signing(Some(content_type), body));
    let header = signer
        .authorization_header(method, url, signed_body, &[], params)
        .unwrap();
    let mut builder = client()
        .request(method.parse().unwrap(), url)
        .header("authorization", header.expose_secret());
    if form.is_some() {
        builder = builder
            .header("content-type", content_type)
            .body(body.to_vec());
    }
    let response = builder.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn problem(body: &[u8]) -> String {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "oauth_problem")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no oauth_problem in {}", String::from_utf8_lossy(body)))
}

fn pairs(list: &[(&str, &str)]) -> Value {
    list.iter().map(|(k, v)| json!([k, v])).collect()
}

const QUERY: &str = "q=hello%20world&plus=a%2Bb&space=a+b&slash=x%2Fy&r=2&r=1&u=caf%C3%A9%20%E2%98%83&empty=&flag&star=*";

async fn full_flow(method: Oauth1SignatureMethod) {
    let fake = FakeOauth1Provider::start(options(method)).await;
    let (api, token) = connect(&fake, &signer(method)).await;

    // A GET with a query the encodings can disagree about.
    let url = format!("{}/items/a%20b?{QUERY}", fake.api_base_url());
    let (status, _, body) = signed(&api, "GET", &url, None, &fresh()).await;
    assert_eq!(status, 200, "{method}: {}", String::from_utf8_lossy(&body));
    let echo: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/api/items/a%20b");
    assert_eq!(echo["user"], "783214");
    assert_eq!(
        echo["query"],
        pairs(&[
            ("q", "hello world"),
            ("plus", "a+b"),
            ("space", "a b"),
            ("slash", "x/y"),
            ("r", "2"),
            ("r", "1"),
            ("u", "café ☃"),
            ("empty", ""),
            ("flag", ""),
            ("star", "*"),
        ])
    );
    assert_eq!(echo["form"], json!([]));

    // A POST with a form body (signed) and a query.
    let form = "status=Hello%20Ladies%20%2B%20Gentlemen%2C%20a%20signed%20OAuth%20request%21&include_entities=true&r=b&r=a&u=%E6%97%A5%E6%9C%AC";
    let url = format!(
        "{}/statuses/update.json?include_entities=true",
        fake.api_base_url()
    );
    let (status, _, body) = signed(&api, "POST", &url, Some(form), &fresh()).await;
    assert_eq!(status, 200, "{method}: {}", String::from_utf8_lossy(&body));
    let echo: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(
        echo["form"],
        pairs(&[
            (
                "status",
                "Hello Ladies + Gentlemen, a signed OAuth request!"
            ),
            ("include_entities", "true"),
            ("r", "b"),
            ("r", "a"),
            ("u", "日本"),
        ])
    );
    let digest: String = Sha256::digest(form.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(echo["body_sha256"], digest);

    // /api/me.
    let (status, _, body) = signed(
        &api,
        "GET",
        &format!("{}/me", fake.api_base_url()),
        None,
        &fresh(),
    )
    .await;
    assert_eq!(status, 200);
    let me: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(me, json!({"user_id": "783214", "screen_name": "fake_user"}));

    assert_eq!(fake.verified_api_requests(), 3);
    assert_eq!(fake.rejected_requests(), 0, "{:?}", fake.problems());
    let recorded = fake.api_requests();
    assert_eq!(recorded.len(), 3);
    assert!(recorded.iter().all(|r| r.problem.is_none()));
    assert_eq!(recorded[0].raw_query.as_deref(), Some(QUERY));
    assert_eq!(recorded[1].form[4], ("u".into(), "日本".into()));
    assert!(
        recorded[0]
            .oauth_params
            .contains(&("oauth_token".into(), token.clone()))
    );

    // The provider revokes the token: 401 token_revoked from then on.
    assert!(fake.revoke_access_token(&token));
    let (status, headers, body) = signed(&api, "GET", &url, None, &fresh()).await;
    assert_eq!(status, 401);
    assert_eq!(problem(&body), "token_revoked");
    assert_eq!(headers["www-authenticate"], "OAuth realm=\"fake-oauth1\"");
}

#[tokio::test]
async fn three_legged_flow_hmac_sha1() {
    full_flow(Oauth1SignatureMethod::HmacSha1).await;
}

#[tokio::test]
async fn three_legged_flow_hmac_sha256() {
    full_flow(Oauth1SignatureMethod::HmacSha256).await;
}

#[tokio::test]
async fn three_legged_flow_plaintext() {
    full_flow(Oauth1SignatureMethod::Plaintext).await;
}

#[tokio::test]
async fn three_legged_flow_rsa_sha1() {
    full_flow(Oauth1SignatureMethod::RsaSha1).await;
}

#[tokio::test]
async fn realm_and_version_are_accepted() {
    let method = Oauth1SignatureMethod::HmacSha1;
    let fake = FakeOauth1Provider::start(options(method)).await;
    let with = signer(method)
        .with_realm("https://api.example/")
        .with_oauth_version(true);
    let (api, _) = connect(&fake, &with).await;
    let url = format!("{}/x?{QUERY}", fake.api_base_url());
    let (status, _, body) = signed(&api, "DELETE", &url, None, &fresh()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn wrong_consumer_secret_is_signature_invalid() {
    let method = Oauth1SignatureMethod::HmacSha1;
    let fake = FakeOauth1Provider::start(options(method)).await;
    let wrong = Oauth1Signer::new(
        SignatureMethod::HmacSha1,
        "ck-fake 1",
        ClientSecret::new("nope"),
    )
    .unwrap();
    let request = temporary_credentials_request(
        &wrong,
        &fake.request_token_url(),
        CALLBACK,
        &BTreeMap::new(),
        &fresh(),
    )
    .unwrap();
    let (status, headers, body) = send(&request).await;
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], "OAuth realm=\"fake-oauth1\"");
    match parse_temporary_credentials(status, &body).unwrap_err() {
        Oauth1Error::Problem {
            status, problem, ..
        } => {
            assert_eq!((status, problem.as_str()), (401, "signature_invalid"));
        }
        other => panic!("{other:?}"),
    }
    // The fake tells what it signed: the same base string as keyrelay's.
    let expected = wrong
        .base_string(
            "POST",
            &fake.request_token_url(),
            Some(b""),
            &[("oauth_callback", CALLBACK)],
            &SigningParams {
                nonce: "n".into(),
                timestamp: 1,
            },
        )
        .unwrap();
    let fakes = fake.last_rejected_base_string().unwrap();
    let strip = |s: &str| {
        // Nonce and timestamp differ; compare the rest.
        s.split("%26")
            .filter(|p| !p.starts_with("oauth_nonce") && !p.starts_with("oauth_timestamp"))
            .collect::<Vec<_>>()
            .join("%26")
    };
    assert_eq!(strip(&fakes), strip(&expected));

    // And on the API, with a valid token but the wrong secret.
    let (token, secret) = fake.mint_access_token();
    let api = wrong.with_token(token, TokenSecret::new(secret));
    let (status, _, body) = signed(
        &api,
        "GET",
        &format!("{}/me", fake.api_base_url()),
        None,
        &fresh(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(problem(&body), "signature_invalid");
    assert_eq!(fake.last_problem().as_deref(), Some("signature_invalid"));
    assert_eq!(fake.rejected_requests(), 2);
}

#[tokio::test]
async fn reused_nonce_is_refused() {
    let method = Oauth1SignatureMethod::HmacSha256;
    let fake = FakeOauth1Provider::start(options(method)).await;
    let (api, _) = connect(&fake, &signer(method)).await;
    let url = format!("{}/me", fake.api_base_url());
    let params = fresh();
    let (status, _, _) = signed(&api, "GET", &url, None, &params).await;
    assert_eq!(status, 200);
    let (status, _, body) = signed(&api, "GET", &url, None, &params).await;
    assert_eq!(status, 401);
    assert_eq!(problem(&body), "nonce_used");
    assert_eq!(fake.verified_api_requests(), 1);
}

#[tokio::test]
async fn tampered_requests_are_refused() {
    let method = Oauth1SignatureMethod::HmacSha1;
    let fake = FakeOauth1Provider::start(options(method)).await;
    let (api, _) = connect(&fake, &signer(method)).await;
    let base = fake.api_base_url();
    let client = client();

    // Signed for ?amount=1, sent with ?amount=100.
    let header = api
        .authorization_header("GET", &format!("{base}/pay?amount=1"), None, &[], &fresh())
        .unwrap();
    let response = client
        .get(format!("{base}/pay?amount=100"))
        .header("authorization", header.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(
        problem(&response.bytes().await.unwrap()),
        "signature_invalid"
    );

    // Signed form body, another body sent.
    let content_type = "application/x-www-form-urlencoded";
    let header = api
        .authorization_header(
            "POST",
            &format!("{base}/pay"),
            Some(b"to=alice"),
            &[],
            &fresh(),
        )
        .unwrap();
    let response = client
        .post(format!("{base}/pay"))
        .header("authorization", header.expose_secret())
        .header("content-type", content_type)
        .body("to=mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(
        problem(&response.bytes().await.unwrap()),
        "signature_invalid"
    );

    // Signed for GET, sent as DELETE.
    let header = api
        .authorization_header("GET", &format!("{base}/pay"), None, &[], &fresh())
        .unwrap();
    let response = client
        .delete(format!("{base}/pay"))
        .header("authorization", header.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);

    // Unsigned.
    let response = client.get(format!("{base}/me")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(
        problem(&response.bytes().await.unwrap()),
        "parameter_absent"
    );

    assert_eq!(fake.verified_api_requests(), 0);
    assert_eq!(fake.rejected_requests(), 4);
    let received = fake.api_requests();
    assert_eq!(received.len(), 4);
    assert_eq!(received[0].raw_query.as_deref(), Some("amount=100"));
    assert_eq!(received[0].problem.as_deref(), Some("signature_invalid"));
    assert_eq!(received[1].form, [("to".to_owned(), "mallory".to_owned())]);
    assert_eq!(received[2].method, "DELETE");
    assert_eq!(received[3].problem.as_deref(), Some("parameter_absent"));
    assert!(received[3].oauth_params.is_empty());
}

#[tokio::test]
async fn verifier_must_match_and_temporary_tokens_are_single_use() {
    let method = Oauth1SignatureMethod::HmacSha1;
    let fake = FakeOauth1Provider::start(options(method)).await;
    let signer = signer(method);
    let temp = temporary(&fake, &signer).await;

    // Not authorized yet.
    let err = exchange(&fake, &signer, &temp, &AuthorizationCode::new("guess"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Oauth1Error::Problem { problem, status: 401, .. } if problem == "permission_unknown"),
        "{err:?}"
    );

    let callback = parse_callback(authorize(&fake, &temp.token).await.query().unwrap()).unwrap();
    let err = exchange(&fake, &signer, &temp, &AuthorizationCode::new("wrong"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Oauth1Error::Problem { problem, status: 401, .. } if problem == "parameter_rejected"),
        "{err:?}"
    );

    // The right verifier still works, once.
    exchange(&fake, &signer, &temp, &callback.verifier)
        .await
        .unwrap();
    let err = exchange(&fake, &signer, &temp, &callback.verifier)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Oauth1Error::Problem { problem, status: 401, .. } if problem == "token_used"),
        "{err:?}"
    );
    assert_eq!(fake.issued_access_tokens().len(), 1);
    assert_eq!(fake.access_token_calls(), 4);

    // A temporary token is no access token.
    let other = temporary(&fake, &signer).await;
    let api = signer
        .clone()
        .with_token(other.token.clone(), other.token_secret.clone());
    let (status, _, body) = signed(
        &api,
        "GET",
        &format!("{}/me", fake.api_base_url()),
        None,
        &fresh(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(problem(&body), "token_rejected");
}

#[tokio::test]
async fn protocol_checks() {
    let method = Oauth1SignatureMethod::HmacSha256;
    let fake = FakeOauth1Provider::start(options(method)).await;
    let me = format!("{}/me", fake.api_base_url());
    let (api, _) = connect(&fake, &signer(method)).await;

    // A stale timestamp.
    let stale = SigningParams {
        nonce: "stale".into(),
        timestamp: fresh().timestamp - 3600,
    };
    let (status, _, body) = signed(&api, "GET", &me, None, &stale).await;
    assert_eq!(
        (status, problem(&body).as_str()),
        (401, "timestamp_refused")
    );

    // Another signature method than the provider's.
    let (token, secret) = fake.mint_access_token();
    let sha1_api = Oauth1Signer::new(
        SignatureMethod::HmacSha1,
        "ck-fake 1",
        ClientSecret::new(SECRET),
    )
    .unwrap()
    .with_token(token, TokenSecret::new(secret));
    let (status, _, body) = signed(&sha1_api, "GET", &me, None, &fresh()).await;
    assert_eq!(
        (status, problem(&body).as_str()),
        (400, "signature_method_rejected")
    );

    // An unknown consumer key.
    let stranger = Oauth1Signer::new(
        SignatureMethod::HmacSha256,
        "someone-else",
        ClientSecret::new(SECRET),
    )
    .unwrap();
    let request = temporary_credentials_request(
        &stranger,
        &fake.request_token_url(),
        CALLBACK,
        &BTreeMap::new(),
        &fresh(),
    )
    .unwrap();
    let (status, _, body) = send(&request).await;
    assert_eq!(
        (status, problem(&body).as_str()),
        (401, "consumer_key_unknown")
    );

    // A request token call without oauth_callback.
    let header = signer(method)
        .authorization_header("POST", &fake.request_token_url(), Some(b""), &[], &fresh())
        .unwrap();
    let response = client()
        .post(fake.request_token_url())
        .header("authorization", header.expose_secret())
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body = response.bytes().await.unwrap();
    assert_eq!(problem(&body), "parameter_absent");
    assert!(String::from_utf8_lossy(&body).contains("oauth_parameters_absent=oauth_callback"));

    // An unknown access token.
    let unknown = signer(method).with_token("783214-nope", TokenSecret::new("x"));
    let (status, _, body) = signed(&unknown, "GET", &me, None, &fresh()).await;
    assert_eq!((status, problem(&body).as_str()), (401, "token_rejected"));

    assert_eq!(
        fake.problems(),
        [
            "timestamp_refused",
            "signature_method_rejected",
            "consumer_key_unknown",
            "parameter_absent",
            "token_rejected"
        ]
    );
}

#[tokio::test]
async fn modes_deny_unconfirmed_callback_and_rejected_exchange() {
    let method = Oauth1SignatureMethod::HmacSha1;
    let fake = FakeOauth1Provider::start(options(method)).await;
    let signer = signer(method);

    for mode in [
        Oauth1AuthorizeMode::DenyDenied,
        Oauth1AuthorizeMode::DenyProblem,
    ] {
        fake.set_options(|o| o.authorize = mode);
        let temp = temporary(&fake, &signer).await;
        let redirect = authorize(&fake, &temp.token).await;
        assert!(redirect.as_str().contains("keep=yes"), "{redirect}");
        assert_eq!(
            parse_callback(redirect.query().unwrap()).unwrap_err(),
            Oauth1Error::AccessDenied
        );
    }
    fake.set_options(|o| o.authorize = Oauth1AuthorizeMode::Approve);

    fake.set_options(|o| o.callback_confirmed = false);
    let request = temporary_credentials_request(
        &signer,
        &fake.request_token_url(),
        CALLBACK,
        &BTreeMap::new(),
        &fresh(),
    )
    .unwrap();
    let (status, _, body) = send(&request).await;
    assert_eq!(status, 200);
    assert_eq!(
        parse_temporary_credentials(status, &body).unwrap_err(),
        Oauth1Error::CallbackNotConfirmed
    );
    fake.set_options(|o| o.callback_confirmed = true);

    fake.set_options(|o| o.reject_token_exchange = true);
    let temp = temporary(&fake, &signer).await;
    let callback = parse_callback(authorize(&fake, &temp.token).await.query().unwrap()).unwrap();
    let err = exchange(&fake, &signer, &temp, &callback.verifier)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Oauth1Error::Problem { problem, status: 401, .. } if problem == "token_rejected"),
        "{err:?}"
    );
    assert!(fake.issued_access_tokens().is_empty());
    assert_eq!(fake.request_token_calls(), 4);
    assert_eq!(fake.authorize_calls(), 3);
}

#[tokio::test]
async fn every_method_refuses_forgeries() {
    for method in Oauth1SignatureMethod::ALL {
        let fake = FakeOauth1Provider::start(options(method)).await;
        let base = fake.api_base_url();
        let (token, secret) = fake.mint_access_token();
        let api = signer(method).with_token(token.clone(), TokenSecret::new(secret.clone()));

        // Signed for one query, sent with another. PLAINTEXT signs nothing
        // of the request (its "signature" is the key), so it lets this pass.
        let header = api
            .authorization_header("GET", &format!("{base}/x?a=1"), None, &[], &fresh())
            .unwrap();
        let response = client()
            .get(format!("{base}/x?a=2"))
            .header("authorization", header.expose_secret())
            .send()
            .await
            .unwrap();
        let plaintext = method == Oauth1SignatureMethod::Plaintext;
        assert_eq!(
            response.status().as_u16(),
            if plaintext { 200 } else { 401 },
            "{method}"
        );
        if !plaintext {
            assert_eq!(
                problem(&response.bytes().await.unwrap()),
                "signature_invalid",
                "{method}"
            );
        }

        // The wrong token secret (RSA-SHA1 does not use it).
        let wrong_token = signer(method).with_token(token.clone(), TokenSecret::new("guess"));
        let (status, _, _) =
            signed(&wrong_token, "GET", &format!("{base}/x"), None, &fresh()).await;
        let expected = if method == Oauth1SignatureMethod::RsaSha1 {
            200
        } else {
            401
        };
        assert_eq!(status, expected, "{method}");

        // The wrong consumer secret.
        if method != Oauth1SignatureMethod::RsaSha1 {
            let m = method.name().parse::<SignatureMethod>().unwrap();
            let wrong = Oauth1Signer::new(m, "ck-fake 1", ClientSecret::new(format!("{SECRET}x")))
                .unwrap()
                .with_token(token.clone(), TokenSecret::new(secret.clone()));
            let (status, _, body) =
                signed(&wrong, "GET", &format!("{base}/x"), None, &fresh()).await;
            assert_eq!(
                (status, problem(&body).as_str()),
                (401, "signature_invalid"),
                "{method}"
            );
        }
        let passed = usize::from(plaintext) + usize::from(method == Oauth1SignatureMethod::RsaSha1);
        assert_eq!(fake.verified_api_requests(), passed, "{method}");
    }
}
