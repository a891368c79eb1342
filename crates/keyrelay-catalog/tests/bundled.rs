//! Coverage and quirks of the bundled provider catalog.

use keyrelay_catalog::{
    AuthInjection, AuthMode, Catalog, ProviderDefinition, SignatureMethod, TokenEndpointAuthMethod,
    ValidationOptions,
};

// Test helpers: clippy's allow-panic-in-tests only covers #[test] fns.
#[allow(clippy::panic)]
fn bundled() -> Catalog {
    Catalog::bundled().unwrap_or_else(|e| panic!("bundled catalog must be valid: {e}"))
}

#[allow(clippy::panic)]
fn entry<'a>(catalog: &'a Catalog, name: &str) -> &'a ProviderDefinition {
    catalog
        .get(name)
        .unwrap_or_else(|| panic!("bundled catalog lacks {name:?}"))
}

/// Providers the catalog promises to cover, by entry name.
const MUST_COVER: &[&str] = &[
    // Pre-existing names other crates rely on.
    "github",
    "google",
    "slack",
    "notion",
    "salesforce",
    "zendesk",
    "stripe_api_key",
    "openai",
    "sendgrid",
    "anthropic",
    "twilio",
    // Required coverage.
    "microsoft",
    "gitlab",
    "bitbucket",
    "discord",
    "atlassian",
    "asana",
    "linear",
    "hubspot",
    "zoom",
    "dropbox",
    "box",
    "spotify",
    "twitch",
    "linkedin",
    "intercom",
    "shopify",
    "quickbooks",
    "xero",
    "stripe-connect",
    "airtable",
    "figma",
    "miro",
    "calendly",
    "docusign",
    "mailchimp",
    "pipedrive",
    "monday",
    "clickup",
    "todoist",
    "reddit",
    "x",
    "facebook",
    "instagram",
    "strava",
    "fitbit",
    "okta",
    "auth0",
    "slack-user",
];

#[test]
fn catalog_is_large_and_every_entry_is_complete() {
    let catalog = bundled();
    assert!(
        catalog.len() >= 100,
        "bundled catalog has only {} entries",
        catalog.len()
    );
    for (name, def) in catalog.iter() {
        def.validate(&ValidationOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            def.display_name.as_deref().is_some_and(|n| !n.is_empty()),
            "{name} lacks display_name"
        );
        assert!(def.docs_url.is_some(), "{name} lacks docs_url");
        assert!(def.api_base_url.is_some(), "{name} lacks api_base_url");
        assert!(!def.categories.is_empty(), "{name} lacks categories");
        if def.auth_mode == AuthMode::OAuth1 {
            assert!(
                def.request_token_endpoint.is_some()
                    && def.authorization_endpoint.is_some()
                    && def.access_token_endpoint.is_some(),
                "{name}: OAuth 1.0a entries need all three endpoints"
            );
            assert!(
                def.signature_method.is_some(),
                "{name}: OAuth 1.0a entries name the documented signature method"
            );
        }
        if def.auth_mode == AuthMode::OAuth2 {
            assert!(
                def.issuer.is_some()
                    || (def.authorization_endpoint.is_some() && def.token_endpoint.is_some()),
                "{name}: OAuth 2.0 entries need explicit endpoints or an issuer"
            );
        }
    }
}

#[test]
fn must_cover_providers_are_present() {
    let catalog = bundled();
    let missing: Vec<&str> = MUST_COVER
        .iter()
        .copied()
        .filter(|name| catalog.get(name).is_none())
        .collect();
    assert!(missing.is_empty(), "missing providers: {missing:?}");
}

#[test]
fn provider_quirks_are_encoded() {
    let catalog = bundled();

    // Google: refresh tokens only with access_type=offline + prompt=consent,
    // for the umbrella entry and every Google sub-API.
    for name in [
        "google",
        "gmail",
        "google-drive",
        "google-calendar",
        "google-sheets",
        "youtube",
    ] {
        let def = entry(&catalog, name);
        assert_eq!(
            def.authorization_params
                .get("access_type")
                .map(String::as_str),
            Some("offline"),
            "{name}"
        );
        assert_eq!(
            def.authorization_params.get("prompt").map(String::as_str),
            Some("consent"),
            "{name}"
        );
    }

    // Slack: comma scopes; bot token at the top level, user token nested.
    let slack = entry(&catalog, "slack");
    assert_eq!(slack.scope_separator(), ",");
    assert!(slack.token_response.is_none());
    let slack_user = entry(&catalog, "slack-user");
    assert_eq!(slack_user.scope_separator(), ",");
    let pointers = slack_user
        .token_response
        .as_ref()
        .unwrap_or_else(|| panic!("slack-user needs token_response"));
    assert_eq!(
        pointers.access_token.as_deref(),
        Some("/authed_user/access_token")
    );
    assert_eq!(pointers.scope.as_deref(), Some("/authed_user/scope"));

    // Notion: HTTP Basic client authentication, owner=user.
    let notion = entry(&catalog, "notion");
    assert_eq!(
        notion.token_endpoint_auth_method,
        TokenEndpointAuthMethod::ClientSecretBasic
    );
    assert_eq!(
        notion.authorization_params.get("owner").map(String::as_str),
        Some("user")
    );

    // Per-connection hosts.
    let salesforce = entry(&catalog, "salesforce");
    assert!(
        salesforce
            .api_base_url
            .as_deref()
            .is_some_and(|u| u.contains("{connection_config.instance}")),
        "salesforce api_base_url needs the instance placeholder"
    );
    assert!(salesforce.token_lifetime_seconds.is_some());

    let microsoft = entry(&catalog, "microsoft");
    for endpoint in [&microsoft.authorization_endpoint, &microsoft.token_endpoint] {
        let endpoint = endpoint.as_deref().unwrap_or_default();
        assert!(
            endpoint.starts_with("https://login.microsoftonline.com/{connection_config.tenant}/"),
            "microsoft endpoint without tenant placeholder: {endpoint}"
        );
    }
    assert_eq!(microsoft.connection_config, ["tenant"]);
    assert!(
        entry(&catalog, "microsoft-common")
            .token_endpoint
            .as_deref()
            .is_some_and(|u| u.contains("/common/"))
    );

    let shopify = entry(&catalog, "shopify");
    assert!(
        shopify
            .token_endpoint
            .as_deref()
            .is_some_and(|u| u.starts_with("https://{connection_config.shop}.myshopify.com/"))
    );
    assert_eq!(shopify.scope_separator(), ",");
    assert_eq!(
        shopify.auth_injection(),
        AuthInjection::Header {
            name: "X-Shopify-Access-Token".into(),
            format: None
        }
    );

    let zendesk = entry(&catalog, "zendesk");
    assert!(
        zendesk
            .api_base_url
            .as_deref()
            .is_some_and(|u| u.contains("{connection_config.subdomain}"))
    );
    for name in ["okta", "auth0"] {
        let def = entry(&catalog, name);
        assert_eq!(def.connection_config, ["domain"], "{name}");
        assert!(
            def.issuer
                .as_deref()
                .is_some_and(|u| u.starts_with("https://{connection_config.domain}")),
            "{name}"
        );
    }

    // Atlassian: audience + consent prompt, for every 3LO entry.
    for name in ["atlassian", "jira", "confluence"] {
        let def = entry(&catalog, name);
        assert_eq!(
            def.authorization_params.get("audience").map(String::as_str),
            Some("api.atlassian.com"),
            "{name}"
        );
        assert_eq!(
            def.authorization_params.get("prompt").map(String::as_str),
            Some("consent"),
            "{name}"
        );
        assert_eq!(
            def.api_base_url.as_deref(),
            Some("https://api.atlassian.com")
        );
    }

    // Dropbox: refresh tokens need token_access_type=offline.
    assert_eq!(
        entry(&catalog, "dropbox")
            .authorization_params
            .get("token_access_type")
            .map(String::as_str),
        Some("offline")
    );

    // Reddit: Basic client auth, duration=permanent.
    let reddit = entry(&catalog, "reddit");
    assert_eq!(
        reddit.token_endpoint_auth_method,
        TokenEndpointAuthMethod::ClientSecretBasic
    );
    assert_eq!(
        reddit
            .authorization_params
            .get("duration")
            .map(String::as_str),
        Some("permanent")
    );

    // X: PKCE mandatory, split twitter.com / api.x.com hosts.
    let x = entry(&catalog, "x");
    assert!(x.pkce);
    assert_eq!(
        x.authorization_endpoint.as_deref(),
        Some("https://twitter.com/i/oauth2/authorize")
    );
    assert_eq!(
        x.token_endpoint.as_deref(),
        Some("https://api.x.com/2/oauth2/token")
    );

    // GitHub keeps client_secret_post; Strava uses comma scopes.
    assert_eq!(
        entry(&catalog, "github").token_endpoint_auth_method,
        TokenEndpointAuthMethod::ClientSecretPost
    );
    assert_eq!(entry(&catalog, "strava").scope_separator(), ",");

    // Non-standard token replies.
    let withings = entry(&catalog, "withings");
    assert_eq!(
        withings
            .token_response
            .as_ref()
            .and_then(|p| p.access_token.as_deref()),
        Some("/body/access_token")
    );
    assert_eq!(
        withings.token_params.get("action").map(String::as_str),
        Some("requesttoken")
    );

    // Header-injected API keys.
    assert_eq!(
        entry(&catalog, "postmark").auth_injection(),
        AuthInjection::Header {
            name: "X-Postmark-Server-Token".into(),
            format: None
        }
    );
    assert_eq!(
        entry(&catalog, "pinecone").auth_injection(),
        AuthInjection::Header {
            name: "Api-Key".into(),
            format: None
        }
    );
    assert_eq!(
        entry(&catalog, "personio").auth_mode,
        AuthMode::OAuth2ClientCredentials
    );
    assert_eq!(entry(&catalog, "mailgun").auth_mode, AuthMode::Basic);
}

#[test]
fn oauth1_providers_are_encoded() {
    let catalog = bundled();
    let mut oauth1: Vec<&str> = catalog
        .iter()
        .filter(|(_, def)| def.auth_mode == AuthMode::OAuth1)
        .map(|(name, _)| name)
        .collect();
    oauth1.sort_unstable();
    assert_eq!(
        oauth1,
        [
            "discogs",
            "evernote",
            "evernote-sandbox",
            "flickr",
            "garmin-oauth1",
            "jira-data-center-oauth1",
            "smugmug",
            "trello",
            "tumblr-oauth1",
            "x-oauth1",
        ]
    );
    // OpenStreetMap shut OAuth 1.0a down on 2024-06-01.
    assert!(catalog.get("openstreetmap").is_none());

    let param = |name: &str, key: &str| {
        entry(&catalog, name)
            .authorization_params
            .get(key)
            .cloned()
            .unwrap_or_default()
    };
    // Trello: its own authorize parameters; tokens that outlive 30 days.
    assert_eq!(param("trello", "expiration"), "never");
    assert_eq!(param("trello", "scope"), "read");
    assert_eq!(param("flickr", "perms"), "read");
    assert_eq!(param("smugmug", "Access"), "Full");

    let signature = |name: &str| entry(&catalog, name).signature_method();
    assert_eq!(signature("discogs"), SignatureMethod::Plaintext);
    assert_eq!(signature("flickr"), SignatureMethod::HmacSha1);
    assert_eq!(
        signature("jira-data-center-oauth1"),
        SignatureMethod::RsaSha1
    );

    // Evernote: production and sandbox differ only in the host; one URL
    // serves the temporary and the access token.
    for (name, host) in [
        ("evernote", "www.evernote.com"),
        ("evernote-sandbox", "sandbox.evernote.com"),
    ] {
        let def = entry(&catalog, name);
        let oauth = format!("https://{host}/oauth");
        assert_eq!(def.request_token_endpoint.as_deref(), Some(oauth.as_str()));
        assert_eq!(def.access_token_endpoint.as_deref(), Some(oauth.as_str()));
        assert_eq!(
            def.authorization_endpoint.as_deref(),
            Some(format!("https://{host}/OAuth.action").as_str())
        );
    }

    // Jira Data Center: per-installation host.
    let jira = entry(&catalog, "jira-data-center-oauth1");
    assert_eq!(jira.connection_config, ["host"]);
    for endpoint in [
        &jira.request_token_endpoint,
        &jira.authorization_endpoint,
        &jira.access_token_endpoint,
        &jira.api_base_url,
    ] {
        assert!(
            endpoint
                .as_deref()
                .is_some_and(|u| u.starts_with("https://{connection_config.host}/")),
            "{endpoint:?}"
        );
    }

    // X keeps its OAuth 2.0 entry; the OAuth 1.0a one is separate.
    assert_eq!(entry(&catalog, "x").auth_mode, AuthMode::OAuth2);
    assert_eq!(
        entry(&catalog, "x-oauth1")
            .authorization_endpoint
            .as_deref(),
        Some("https://api.x.com/oauth/authorize")
    );
}

/// The file is grouped into `# ====` sections with entries sorted by name
/// inside each, so it stays reviewable as it grows.
#[test]
fn providers_toml_is_sorted_within_sections() {
    let text = include_str!("../providers.toml");
    let mut sections: Vec<(String, Vec<String>)> = vec![("(top)".to_owned(), Vec::new())];
    for line in text.lines() {
        if let Some(title) = line.strip_prefix("# ====") {
            let title = title.trim_start_matches('=').trim().to_owned();
            sections.push((title, Vec::new()));
        } else if let Some(rest) = line.strip_prefix("[providers.") {
            let name = rest.trim_end_matches(']').trim_matches('"').to_owned();
            if let Some((_, names)) = sections.last_mut() {
                names.push(name);
            }
        }
    }
    for (title, names) in &sections {
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, &sorted, "section {title:?} is not in name order");
    }
    let total: usize = sections.iter().map(|(_, n)| n.len()).sum();
    assert_eq!(total, bundled().len());
}
