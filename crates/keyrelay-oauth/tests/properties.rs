#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Property tests: the parser never panics; the authorization URL round-trips.

use std::collections::BTreeMap;

use keyrelay_catalog::TokenResponsePointers;
use keyrelay_oauth::{AuthorizationRequest, authorization_url, parse_token_response};
use proptest::prelude::*;

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("application/json".to_owned())),
        Just(Some("application/x-www-form-urlencoded".to_owned())),
        Just(Some("text/html; charset=utf-8".to_owned())),
        any::<String>().prop_map(Some),
    ]
}

/// Bodies near the interesting shapes, plus raw noise.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let json_value = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        "[a-z0-9 ,]{0,12}".prop_map(|s| format!("\"{s}\"")),
        Just("[\"a\", 1, null]".to_owned()),
        Just("{\"access_token\": \"n\", \"x\": [{}]}".to_owned()),
    ];
    let key = prop_oneof![
        Just("access_token"),
        Just("refresh_token"),
        Just("expires_in"),
        Just("expires"),
        Just("scope"),
        Just("token_type"),
        Just("error"),
        Just("error_description"),
        Just("ok"),
        Just("authed_user"),
    ];
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        any::<String>().prop_map(String::into_bytes),
        proptest::collection::vec((key.clone(), json_value), 0..6).prop_map(|fields| {
            let inner: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("\"{k}\": {v}"))
                .collect();
            format!("{{{}}}", inner.join(", ")).into_bytes()
        }),
        proptest::collection::vec((key, "[a-zA-Z0-9%+=&.-]{0,10}"), 0..6).prop_map(|fields| {
            let inner: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            inner.join("&").into_bytes()
        }),
    ]
}

fn pointer() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("/authed_user/access_token".to_owned())),
        Just(Some("/authed_user/scope".to_owned())),
        Just(Some(String::new())),
        Just(Some("/".to_owned())),
        Just(Some("no-leading-slash".to_owned())),
        Just(Some("/access_token/0/~1".to_owned())),
        any::<String>().prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_token_response_never_panics(
        status in any::<u16>(),
        ct in content_type(),
        body in body(),
        ptrs in proptest::option::of((pointer(), pointer(), pointer(), pointer())),
        sep in prop_oneof![Just(" "), Just(","), Just(""), Just("+")],
    ) {
        let ptrs = ptrs.map(|(a, r, e, s)| TokenResponsePointers {
            access_token: a,
            refresh_token: r,
            expires_in: e,
            scope: s,
        });
        let res = parse_token_response(status, ct.as_deref(), &body, ptrs.as_ref(), sep);
        match res {
            Ok(t) => {
                prop_assert!((200..300).contains(&status));
                prop_assert!(!t.access_token.expose_secret().trim().is_empty());
                prop_assert!(!t.extra.contains_key("access_token"));
                prop_assert!(!t.extra.contains_key("refresh_token"));
                let _ = format!("{t:?}");
            }
            Err(e) => {
                let _ = (e.to_string(), format!("{e:?}"), e.code());
            }
        }
    }

    #[test]
    fn authorization_url_round_trips(
        state in any::<String>(),
        redirect_uri in any::<String>(),
        client_id in any::<String>(),
        scopes in proptest::collection::vec("[^ ]{1,10}", 0..4),
        challenge in proptest::option::of("[A-Za-z0-9_-]{43}"),
        extra_key in any::<String>(),
        extra_value in any::<String>(),
    ) {
        let mut extras = BTreeMap::new();
        extras.insert(extra_key.clone(), extra_value.clone());
        let req = AuthorizationRequest {
            authorization_endpoint: "https://auth.example.com/authorize?tenant=acme",
            client_id: &client_id,
            redirect_uri: &redirect_uri,
            scopes: &scopes,
            scope_separator: " ",
            state: &state,
            code_challenge: challenge.as_deref(),
            extra_params: &extras,
        };
        let url = authorization_url(&req).unwrap();
        let q: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let get = |name: &str| -> Vec<&str> {
            q.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
        };
        prop_assert_eq!(get("state"), vec![state.as_str()]);
        prop_assert_eq!(get("redirect_uri"), vec![redirect_uri.as_str()]);
        prop_assert_eq!(get("client_id"), vec![client_id.as_str()]);
        prop_assert_eq!(get("response_type"), vec!["code"]);
        prop_assert_eq!(get("tenant"), vec!["acme"]);
        if !scopes.is_empty() {
            prop_assert_eq!(get("scope"), vec![scopes.join(" ")]);
        }
        if let Some(c) = &challenge {
            prop_assert_eq!(get("code_challenge"), vec![c.as_str()]);
            prop_assert_eq!(get("code_challenge_method"), vec!["S256"]);
        }
        // No name appears twice.
        let mut names: Vec<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        prop_assert_eq!(before, names.len());
    }
}
