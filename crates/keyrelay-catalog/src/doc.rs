//! Human-readable documentation generated from a catalog.
//!
//! `docs/providers.md` at the repository root is the output of
//! [`markdown_table`] for the bundled catalog; a test keeps the two in sync
//! (regenerate with `KEYRELAY_BLESS=1 cargo test -p keyrelay-catalog`).

use crate::catalog::Catalog;
use crate::definition::{AuthMode, ProviderDefinition, TokenEndpointAuthMethod};

/// Shown in cells that do not apply to an entry's auth mode.
const NOT_APPLICABLE: &str = "–";

/// Renders the catalog as a Markdown document: a short preamble and one table
/// row per provider (name, display name, auth mode, PKCE, token endpoint
/// client authentication, revocation, connection_config names, docs link),
/// in name order. Pure: the same catalog always yields the same text.
pub fn markdown_table(catalog: &Catalog) -> String {
    let mut out = String::new();
    out.push_str("# Bundled providers\n\n");
    out.push_str(
        "<!-- Generated from crates/keyrelay-catalog/providers.toml by \
         keyrelay_catalog::markdown_table; do not edit by hand. Regenerate with \
         `KEYRELAY_BLESS=1 cargo test -p keyrelay-catalog`. -->\n\n",
    );
    out.push_str(&format!(
        "keyrelay ships {} provider definitions. PKCE, token auth and revocation \
         only apply to OAuth 2.0 entries; `{NOT_APPLICABLE}` marks cells that do not \
         apply. Connection config lists the per-connection values an app must \
         supply (used as `{{connection_config.NAME}}` in URLs).\n\n",
        catalog.len()
    ));
    out.push_str(
        "| Name | Display name | Auth mode | PKCE | Token auth | Revocation | Connection config | Docs |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    for (name, def) in catalog.iter() {
        let cells = [
            format!("`{name}`"),
            escape(def.display_name.as_deref().unwrap_or(name)),
            format!("`{}`", def.auth_mode),
            pkce_cell(def),
            token_auth_cell(def),
            revocation_cell(def),
            connection_config_cell(def),
            docs_cell(def),
        ];
        out.push_str("| ");
        out.push_str(&cells.join(" | "));
        out.push_str(" |\n");
    }
    out
}

fn pkce_cell(def: &ProviderDefinition) -> String {
    // PKCE belongs to the authorization code grant only.
    if def.auth_mode != AuthMode::OAuth2 {
        return NOT_APPLICABLE.to_owned();
    }
    yes_no(def.pkce)
}

fn token_auth_cell(def: &ProviderDefinition) -> String {
    if !def.auth_mode.is_oauth2() {
        return NOT_APPLICABLE.to_owned();
    }
    match def.token_endpoint_auth_method {
        TokenEndpointAuthMethod::ClientSecretBasic => "`client_secret_basic`".to_owned(),
        TokenEndpointAuthMethod::ClientSecretPost => "`client_secret_post`".to_owned(),
    }
}

fn revocation_cell(def: &ProviderDefinition) -> String {
    if !def.auth_mode.is_oauth2() {
        return NOT_APPLICABLE.to_owned();
    }
    yes_no(def.revocation_endpoint.is_some())
}

fn connection_config_cell(def: &ProviderDefinition) -> String {
    if def.connection_config.is_empty() {
        return NOT_APPLICABLE.to_owned();
    }
    def.connection_config
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn docs_cell(def: &ProviderDefinition) -> String {
    match &def.docs_url {
        // Angle brackets keep URLs with parentheses or spaces intact.
        Some(url) => format!("[docs](<{}>)", url.replace(['<', '>', '|'], "")),
        None => NOT_APPLICABLE.to_owned(),
    }
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

/// Escapes text for a Markdown table cell.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' | '\\' | '*' | '_' | '`' | '[' | ']' | '<' | '>' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}
