#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The OAuth 1.0a three-legged flow: request builders and reply parsers.

use std::collections::BTreeMap;

use keyrelay_oauth::oauth1::{
    Oauth1Error, Oauth1Signer, SignatureMethod, SigningParams, authorization_redirect_url,
    parse_callback, parse_temporary_credentials, parse_token_credentials,
    temporary_credentials_request, token_credentials_request,
};
use keyrelay_vault::{AuthorizationCode, ClientSecret, TokenSecret};

fn signer() -> Oauth1Signer {
    Oauth1Signer::new(
        SignatureMethod::HmacSha1,
        "dpf43f3p2l4k3l03",
        ClientSecret::new("kd94hf93k423kf44"),
    )
    .unwrap()
    .with_realm("Photos")
}

fn params(nonce: &str, timestamp: u64) -> SigningParams {
    SigningParams {
        nonce: nonce.to_owned(),
        timestamp,
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

// ------------------------------------------------------- requests

#[test]
fn temporary_credentials_request_is_rfc5849_example() {
    // A token on the signer is not used for this request.
    let s = signer().with_token("stale", TokenSecret::new("stale-secret"));
    let req = temporary_credentials_request(
        &s,
        "https://photos.example.net/initiate",
        "http://printer.example.com/ready",
        &BTreeMap::new(),
        &params("wIjqoS", 137131200),
    )
    .unwrap();
    assert_eq!(req.url, "https://photos.example.net/initiate");
    assert_eq!(req.body, "");
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        req.header("authorization"),
        Some(
            "OAuth realm=\"Photos\", oauth_consumer_key=\"dpf43f3p2l4k3l03\", \
             oauth_signature_method=\"HMAC-SHA1\", oauth_timestamp=\"137131200\", \
             oauth_nonce=\"wIjqoS\", oauth_callback=\"http%3A%2F%2Fprinter.example.com%2Fready\", \
             oauth_signature=\"74KNZJeDHnMBp0EMJ9ZHt%2FXKycU%3D\""
        )
    );
    let debug = format!("{req:?}");
    assert!(!debug.contains("74KNZ"), "{debug}");
}

#[test]
fn temporary_credentials_extra_params_are_in_the_signed_body() {
    let p = params("n", 7);
    let extra = map(&[
        ("x_auth_access_type", "write"),
        ("scope", "a b"),
        ("oauth_callback", "https://evil.example/"),
    ]);
    let s = signer();
    let req =
        temporary_credentials_request(&s, "https://api.example/request_token", "oob", &extra, &p)
            .unwrap();
    assert_eq!(req.body, "scope=a+b&x_auth_access_type=write");
    // The same header as signing that body by hand.
    let expected = s
        .authorization_header(
            "POST",
            "https://api.example/request_token",
            Some(req.body.as_bytes()),
            &[("oauth_callback", "oob")],
            &p,
        )
        .unwrap();
    assert_eq!(req.header("Authorization"), Some(expected.expose_secret()));
    assert!(!req.header("Authorization").unwrap().contains("evil"));
}

#[test]
fn token_credentials_request_is_rfc5849_example() {
    let req = token_credentials_request(
        &signer(),
        "https://photos.example.net/token",
        "hh5s93j4hdidpola",
        &TokenSecret::new("hdhd0244k9j7ao03"),
        &AuthorizationCode::new("hfdp7dh39dks9884"),
        &params("walatlh", 137131201),
    )
    .unwrap();
    assert_eq!(req.url, "https://photos.example.net/token");
    assert_eq!(req.body, "");
    let auth = req.header("Authorization").unwrap();
    assert!(auth.contains("oauth_token=\"hh5s93j4hdidpola\""), "{auth}");
    assert!(
        auth.contains("oauth_verifier=\"hfdp7dh39dks9884\""),
        "{auth}"
    );
    assert!(
        auth.ends_with("oauth_signature=\"gKgrFCywp7rO0OXSjdot%2FIHF7IU%3D\""),
        "{auth}"
    );
}

#[test]
fn requests_refuse_bad_endpoints() {
    let p = params("n", 1);
    let err =
        temporary_credentials_request(&signer(), "ftp://a.example/", "oob", &BTreeMap::new(), &p)
            .unwrap_err();
    assert!(matches!(err, Oauth1Error::InvalidUrl(_)));
    let err = token_credentials_request(
        &signer(),
        "not a url",
        "t",
        &TokenSecret::new("s"),
        &AuthorizationCode::new("v"),
        &p,
    )
    .unwrap_err();
    assert!(matches!(err, Oauth1Error::InvalidUrl(_)));
}

#[test]
fn authorization_url_keeps_existing_query() {
    let url = authorization_redirect_url(
        "https://www.flickr.com/services/oauth/authorize?lang=de&oauth_token=old",
        "72157-abc",
        &map(&[("perms", "write"), ("lang", "fr"), ("oauth_token", "x")]),
    )
    .unwrap();
    assert_eq!(
        url.as_str(),
        "https://www.flickr.com/services/oauth/authorize?lang=de&oauth_token=72157-abc&perms=write"
    );

    let url = authorization_redirect_url(
        "https://api.x.com/oauth/authorize?force_login=true",
        "tok en/+",
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(
        url.as_str(),
        "https://api.x.com/oauth/authorize?force_login=true&oauth_token=tok+en%2F%2B"
    );
    let token: Vec<_> = url
        .query_pairs()
        .filter(|(k, _)| k == "oauth_token")
        .collect();
    assert_eq!(token.len(), 1);
    assert_eq!(token[0].1, "tok en/+");

    let err =
        authorization_redirect_url("https://a.example/auth#x", "t", &BTreeMap::new()).unwrap_err();
    assert!(matches!(err, Oauth1Error::InvalidUrl(_)));
}

// ------------------------------------------------------- replies

#[test]
fn temporary_credentials_reply() {
    let creds = parse_temporary_credentials(
        200,
        b"oauth_token=hh5s93j4hdidpola&oauth_token_secret=hdhd0244k9j7ao03&oauth_callback_confirmed=true",
    )
    .unwrap();
    assert_eq!(creds.token, "hh5s93j4hdidpola");
    assert_eq!(creds.token_secret.expose_secret(), "hdhd0244k9j7ao03");
    assert!(creds.extra.is_empty());
    let debug = format!("{creds:?}");
    assert!(
        !debug.contains("hh5s93") && !debug.contains("hdhd02"),
        "{debug}"
    );
}

#[test]
fn temporary_credentials_need_callback_confirmed() {
    for body in [
        "oauth_token=t&oauth_token_secret=s".as_bytes(),
        b"oauth_token=t&oauth_token_secret=s&oauth_callback_confirmed=false",
        b"oauth_token=t&oauth_token_secret=s&oauth_callback_confirmed=",
    ] {
        let err = parse_temporary_credentials(200, body).unwrap_err();
        assert_eq!(err, Oauth1Error::CallbackNotConfirmed);
        assert!(err.to_string().contains("oauth_callback_confirmed"));
    }
}

#[test]
fn temporary_credentials_missing_fields() {
    let err =
        parse_temporary_credentials(200, b"oauth_token_secret=s&oauth_callback_confirmed=true")
            .unwrap_err();
    assert_eq!(
        err,
        Oauth1Error::MissingField {
            status: 200,
            field: "oauth_token"
        }
    );
    let err = parse_temporary_credentials(200, b"oauth_token=t&oauth_callback_confirmed=true")
        .unwrap_err();
    assert_eq!(
        err,
        Oauth1Error::MissingField {
            status: 200,
            field: "oauth_token_secret"
        }
    );
}

#[test]
fn token_reply_keeps_provider_fields() {
    let creds = parse_token_credentials(
        200,
        b"\xEF\xBB\xBFoauth_token=6253282-eWudHldSbIaelX7swmsiHImEL4KinwaGloHANdrY&\
          oauth_token_secret=2EEfA6BG5ly3sR3XjE0IBSnlQu4ZrUzPiYTmrkVU&user_id=6253282&\
          screen_name=twitterapi&user_id=ignored\n",
    )
    .unwrap();
    assert_eq!(
        creds.token.expose_secret(),
        "6253282-eWudHldSbIaelX7swmsiHImEL4KinwaGloHANdrY"
    );
    assert_eq!(
        creds.token_secret.expose_secret(),
        "2EEfA6BG5ly3sR3XjE0IBSnlQu4ZrUzPiYTmrkVU"
    );
    assert_eq!(
        creds.extra,
        map(&[("screen_name", "twitterapi"), ("user_id", "6253282")])
    );
    let debug = format!("{creds:?}");
    assert!(debug.contains("screen_name"));
    assert!(
        !debug.contains("eWudHld") && !debug.contains("2EEfA6"),
        "{debug}"
    );
}

#[test]
fn token_reply_as_json_is_accepted() {
    let creds = parse_token_credentials(
        200,
        br#"{"oauth_token": "t", "oauth_token_secret": "s", "user_nsid": "1@N0", "expires": 3600}"#,
    )
    .unwrap();
    assert_eq!(creds.token.expose_secret(), "t");
    assert_eq!(
        creds.extra,
        map(&[("expires", "3600"), ("user_nsid", "1@N0")])
    );
}

#[test]
fn oauth_problem_is_reported_whatever_the_status() {
    let err = parse_token_credentials(
        401,
        b"oauth_problem=signature_invalid&oauth_problem_advice=Check%20the%20key\
          &oauth_token_secret=should-not-appear",
    )
    .unwrap_err();
    assert_eq!(
        err,
        Oauth1Error::Problem {
            status: 401,
            problem: "signature_invalid".to_owned(),
            advice: Some("Check the key".to_owned()),
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("oauth_problem `signature_invalid` (HTTP 401): Check the key"),
        "{msg}"
    );
    assert!(msg.contains("consumer secret"), "{msg}");
    assert!(!msg.contains("should-not-appear"));

    let err = parse_temporary_credentials(200, b"oauth_problem=timestamp_refused").unwrap_err();
    assert!(
        matches!(&err, Oauth1Error::Problem { status: 200, problem, advice: None } if problem == "timestamp_refused")
    );
    assert!(err.to_string().contains("clock"));

    // Control characters are stripped and length is bounded.
    let long = format!("oauth_problem=a%0Ab{}", "x".repeat(500));
    let err = parse_token_credentials(400, long.as_bytes()).unwrap_err();
    let Oauth1Error::Problem { problem, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(problem.starts_with("a b"));
    assert!(problem.chars().count() <= 101);
}

#[test]
fn error_statuses_without_a_problem() {
    for body in [
        br#"{"errors":[{"code":32,"message":"Could not authenticate you."}]}"#.as_slice(),
        b"<html>Forbidden</html>",
        b"",
        b"oauth_token=t&oauth_token_secret=secret-in-an-error",
    ] {
        let err = parse_token_credentials(401, body).unwrap_err();
        assert_eq!(err, Oauth1Error::Rejected { status: 401 });
        assert!(err.to_string().contains("consumer key"));
    }
}

#[test]
fn malformed_success_replies() {
    let err = parse_token_credentials(200, b"").unwrap_err();
    assert!(matches!(
        err,
        Oauth1Error::MalformedReply { status: 200, .. }
    ));
    let err = parse_token_credentials(200, b"<html><body>Hello</body></html>").unwrap_err();
    assert!(matches!(err, Oauth1Error::MalformedReply { .. }));
    assert!(!err.to_string().contains("Hello"));
    let err = parse_token_credentials(200, b"[1, 2]").unwrap_err();
    assert!(matches!(err, Oauth1Error::MalformedReply { .. }));
    let err = parse_token_credentials(200, b"user_id=1").unwrap_err();
    assert!(matches!(
        err,
        Oauth1Error::MissingField {
            field: "oauth_token",
            ..
        }
    ));
    let err = parse_token_credentials(200, b"oauth_token=&oauth_token_secret=s").unwrap_err();
    assert!(matches!(
        err,
        Oauth1Error::MissingField {
            field: "oauth_token",
            ..
        }
    ));
}

// ------------------------------------------------------- callback

#[test]
fn callback_with_verifier() {
    let cb =
        parse_callback("?oauth_token=hh5s93j4hdidpola&oauth_verifier=hfdp7dh39dks9884&state=x")
            .unwrap();
    assert_eq!(cb.token, "hh5s93j4hdidpola");
    assert_eq!(cb.verifier.expose_secret(), "hfdp7dh39dks9884");
    let debug = format!("{cb:?}");
    assert!(
        !debug.contains("hh5s93") && !debug.contains("hfdp7d"),
        "{debug}"
    );
}

#[test]
fn callback_denied() {
    for query in [
        "denied=hh5s93j4hdidpola",
        "oauth_problem=user_refused",
        "oauth_problem=permission_denied&oauth_token=t",
    ] {
        let err = parse_callback(query).unwrap_err();
        assert_eq!(err, Oauth1Error::AccessDenied, "{query}");
        assert!(!err.to_string().contains("hh5s93"));
    }
}

#[test]
fn callback_without_verifier_or_token() {
    let err = parse_callback("oauth_token=t").unwrap_err();
    assert!(matches!(&err, Oauth1Error::InvalidCallback(m) if m.contains("oauth_verifier")));
    let err = parse_callback("oauth_verifier=v").unwrap_err();
    assert!(matches!(&err, Oauth1Error::InvalidCallback(m) if m.contains("oauth_token")));
    let err = parse_callback("").unwrap_err();
    assert!(matches!(err, Oauth1Error::InvalidCallback(_)));
    let err = parse_callback("oauth_problem=token_expired").unwrap_err();
    assert!(matches!(&err, Oauth1Error::InvalidCallback(m) if m.contains("token_expired")));
}
