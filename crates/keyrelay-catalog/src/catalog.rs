//! A named collection of provider definitions: the bundled catalog, optionally
//! extended or overridden by an operator's own file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::definition::ProviderDefinition;
use crate::error::{CatalogError, ValidationError};
use crate::validate::ValidationOptions;

/// The catalog shipped with keyrelay.
const BUNDLED: &str = include_str!("../providers.toml");
const BUNDLED_NAME: &str = "providers.toml (bundled)";
const SUPPORTED_VERSION: u32 = 1;

/// On-disk shape. Entries are kept as raw values at first so that a bad
/// entry is reported under its own name and every bad entry is reported at
/// once, instead of serde stopping at the first.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile<V> {
    version: u32,
    #[serde(default = "BTreeMap::new")]
    providers: BTreeMap<String, V>,
}

/// Validated provider definitions by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    providers: BTreeMap<String, ProviderDefinition>,
}

impl Catalog {
    /// Parses and validates the catalog embedded in the binary (with
    /// `allow_local = false`: bundled entries must be production-safe).
    pub fn bundled() -> Result<Catalog, CatalogError> {
        Catalog::parse(BUNDLED_NAME, BUNDLED, &ValidationOptions::default())
    }

    /// Parses a catalog file. The text is TOML, or JSON of the same shape
    /// (`{"version": 1, "providers": {...}}`) when it starts with `{`.
    /// `source_name` only labels error messages.
    pub fn parse(
        source_name: &str,
        text: &str,
        opts: &ValidationOptions,
    ) -> Result<Catalog, CatalogError> {
        let parse_error = |message: String| CatalogError::Parse {
            source_name: source_name.to_owned(),
            message,
        };
        let entries: Vec<(String, Result<ProviderDefinition, String>)> =
            if text.trim_start().starts_with('{') {
                let file: CatalogFile<serde_json::Value> =
                    serde_json::from_str(text).map_err(|e| parse_error(e.to_string()))?;
                check_version(file.version).map_err(parse_error)?;
                decode_entries(file.providers, |v| {
                    serde_json::from_value(v).map_err(|e| e.to_string())
                })
            } else {
                let file: CatalogFile<toml::Value> =
                    toml::from_str(text).map_err(|e| parse_error(e.to_string()))?;
                check_version(file.version).map_err(parse_error)?;
                decode_entries(file.providers, |v| {
                    v.try_into().map_err(|e: toml::de::Error| e.to_string())
                })
            };

        let mut invalid_names = Vec::new();
        let mut problems = Vec::new();
        let mut providers = BTreeMap::new();
        for (name, decoded) in entries {
            let mut entry_problems = Vec::new();
            if !is_valid_provider_name(&name) {
                entry_problems.push(
                    "invalid provider name; use 1-64 characters of a-z, 0-9, _ and -, starting with a letter or digit"
                        .to_owned(),
                );
            }
            match decoded {
                Err(message) => entry_problems.push(message.trim().replace('\n', " ")),
                Ok(def) => match def.validate(opts) {
                    Err(err) => entry_problems.extend(err.problems),
                    Ok(()) => {
                        if entry_problems.is_empty() {
                            providers.insert(name.clone(), def);
                        }
                    }
                },
            }
            if !entry_problems.is_empty() {
                problems.extend(
                    entry_problems
                        .into_iter()
                        .map(|p| format!("providers.{name}: {p}")),
                );
                invalid_names.push(name);
            }
        }
        if invalid_names.is_empty() {
            Ok(Catalog { providers })
        } else {
            Err(CatalogError::Invalid {
                provider: invalid_names.join(", "),
                error: ValidationError { problems },
            })
        }
    }

    /// Reads and parses a catalog file (see [`Catalog::parse`]).
    pub fn load_file(path: &Path, opts: &ValidationOptions) -> Result<Catalog, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|e| CatalogError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Catalog::parse(&path.display().to_string(), &text, opts)
    }

    /// Adds `other`'s entries, replacing same-named ones wholesale (no
    /// field-level merging, so an override is exactly what its file says).
    pub fn merge(&mut self, other: Catalog) {
        self.providers.extend(other.providers);
    }

    pub fn get(&self, name: &str) -> Option<&ProviderDefinition> {
        self.providers.get(name)
    }

    /// Entries in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ProviderDefinition)> {
        self.providers.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.providers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }
}

/// `[a-z0-9][a-z0-9_-]{0,63}`: safe in URLs, file names and log lines.
pub fn is_valid_provider_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            (first.is_ascii_lowercase() || first.is_ascii_digit())
                && rest.len() <= 63
                && rest.iter().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-'
                })
        }
        None => false,
    }
}

fn check_version(version: u32) -> Result<(), String> {
    if version == SUPPORTED_VERSION {
        Ok(())
    } else {
        Err(format!(
            "version: unsupported catalog file version {version}; this keyrelay reads version {SUPPORTED_VERSION} (set version = {SUPPORTED_VERSION} or upgrade keyrelay)"
        ))
    }
}

fn decode_entries<V, F>(
    raw: BTreeMap<String, V>,
    decode: F,
) -> Vec<(String, Result<ProviderDefinition, String>)>
where
    F: Fn(V) -> Result<ProviderDefinition, String>,
{
    raw.into_iter()
        .map(|(name, value)| {
            let decoded = decode(value);
            (name, decoded)
        })
        .collect()
}
