//! `docs/providers.md` must match the generated table for the bundled catalog.

use keyrelay_catalog::{Catalog, markdown_table};

const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/providers.md");

#[test]
fn providers_doc_is_up_to_date() {
    let catalog = Catalog::bundled().unwrap_or_else(|e| panic!("bundled catalog: {e}"));
    let expected = markdown_table(&catalog);
    if std::env::var("KEYRELAY_BLESS").as_deref() == Ok("1") {
        std::fs::write(DOC_PATH, &expected).unwrap_or_else(|e| panic!("writing {DOC_PATH}: {e}"));
        return;
    }
    let actual = std::fs::read_to_string(DOC_PATH).unwrap_or_default();
    assert!(
        actual == expected,
        "{DOC_PATH} is out of date with providers.toml; run `KEYRELAY_BLESS=1 cargo test -p keyrelay-catalog` to regenerate"
    );
}

#[test]
fn markdown_table_lists_every_provider() {
    let catalog = Catalog::bundled().unwrap_or_else(|e| panic!("bundled catalog: {e}"));
    let doc = markdown_table(&catalog);
    let rows: Vec<&str> = doc.lines().filter(|l| l.starts_with("| `")).collect();
    assert_eq!(rows.len(), catalog.len());
    for (name, _) in catalog.iter() {
        assert!(
            rows.iter().any(|r| r.starts_with(&format!("| `{name}` |"))),
            "{name} missing from the table"
        );
    }
    let slack = rows
        .iter()
        .find(|r| r.starts_with("| `slack` |"))
        .copied()
        .unwrap_or_default();
    assert_eq!(
        slack,
        "| `slack` | Slack | `oauth2` | no | `client_secret_basic` | yes | – | [docs](<https://api.slack.com/authentication/oauth-v2>) |"
    );
    let shopify = rows
        .iter()
        .find(|r| r.starts_with("| `shopify` |"))
        .copied()
        .unwrap_or_default();
    assert!(shopify.contains("| `shop` |"), "{shopify}");
    let openai = rows
        .iter()
        .find(|r| r.starts_with("| `openai` |"))
        .copied()
        .unwrap_or_default();
    assert!(openai.contains("| `api_key` | – | – | – |"), "{openai}");
    // Pure: same input, same output.
    assert_eq!(doc, markdown_table(&catalog));
}
