//! Arbitrary input must yield an error, never a panic.

use keyrelay_catalog::{Catalog, ProviderDefinition, ValidationOptions};
use proptest::prelude::*;

proptest! {
    #[test]
    fn parse_never_panics(text in any::<String>(), allow_local in any::<bool>()) {
        let _ = Catalog::parse("fuzz", &text, &ValidationOptions { allow_local });
    }

    #[test]
    fn catalog_like_text_never_panics(
        body in r#"[a-z_ ="{}\[\]./:\n0-9#?@~-]{0,200}"#,
        json in any::<bool>(),
    ) {
        let text = if json {
            format!("{{\"version\":1,\"providers\":{{{body}}}}}")
        } else {
            format!("version = 1\n[providers.p]\n{body}")
        };
        let _ = Catalog::parse("fuzz", &text, &ValidationOptions::default());
    }

    #[test]
    fn url_validation_never_panics(url in r#"[a-z{}._:/?#@\[\]0-9%-]{0,80}"#) {
        let json = serde_json::json!({
            "auth_mode": "oauth2",
            "connection_config": ["a"],
            "authorization_endpoint": url,
            "token_endpoint": format!("https://{url}"),
            "api_base_url": format!("https://{{connection_config.a}}.example.com/{url}"),
        });
        let def: ProviderDefinition = serde_json::from_value(json).unwrap();
        let _ = def.validate(&ValidationOptions::default());
    }
}
