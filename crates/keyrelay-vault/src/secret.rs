//! One wrapper type per kind of secret.
//!
//! Distinct types keep a `ClientSecret` from being passed where an
//! `AccessToken` is expected, and make leaking them by accident hard: the
//! value is zeroized on drop, `Debug`/`Display` print `[redacted]`, there is
//! no `Serialize` (a secret never ends up in a JSON response or log line by
//! deriving), comparison is constant time, and reading the value requires an
//! explicit, greppable `expose_secret()`.

use std::fmt;

use serde::{Deserialize, Deserializer};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Defines a redacted, zeroizing string secret type.
macro_rules! secret_type {
    ($name:ident, $what:literal) => {
        #[doc = concat!("A secret: ", $what, ".")]
        ///
        /// Zeroized on drop, redacted in `Debug`/`Display`, deserializable
        /// from a string but never serializable, compared in constant time.
        #[derive(Clone)]
        pub struct $name(Zeroizing<String>);

        impl $name {
            /// Wraps a value; the `String` is moved, not copied.
            pub fn new(value: impl Into<String>) -> Self {
                Self(Zeroizing::new(value.into()))
            }

            /// The secret value. Call only where it is actually sent or used.
            pub fn expose_secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }

        impl PartialEq for $name {
            /// Constant time in the contents, so comparing against a
            /// presented secret does not leak how many bytes matched.
            fn eq(&self, other: &Self) -> bool {
                self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
            }
        }

        impl Eq for $name {}

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(Self::new)
            }
        }
    };
}

secret_type!(ClientSecret, "an OAuth client secret of a provider app");
secret_type!(ProjectSecretKey, "a project's secret API key (`kr_sk_…`)");
secret_type!(
    AdminToken,
    "the administrator token of the keyrelay instance"
);
secret_type!(WebhookSecret, "a webhook signing secret (`whsec_…`)");
secret_type!(AccessToken, "an OAuth access token");
secret_type!(RefreshToken, "an OAuth refresh token");
secret_type!(ApiKey, "an API key of an upstream service");
secret_type!(Password, "a password");
secret_type!(AuthorizationCode, "an OAuth authorization code");
secret_type!(PkceVerifier, "a PKCE code verifier");
secret_type!(OAuthState, "an OAuth `state` parameter");
secret_type!(TokenSecret, "an OAuth 1.0a token secret");

/// Secret binary data (e.g. a decrypted field), zeroized on drop and redacted
/// when printed.
#[derive(Clone)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Wraps a value; the `Vec` is moved, not copied.
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The secret bytes. Call only where they are actually used.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl From<Zeroizing<Vec<u8>>> for SecretBytes {
    fn from(value: Zeroizing<Vec<u8>>) -> Self {
        Self(value)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes([redacted])")
    }
}

impl fmt::Display for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl PartialEq for SecretBytes {
    /// Constant time in the contents.
    fn eq(&self, other: &Self) -> bool {
        self.0.as_slice().ct_eq(other.0.as_slice()).into()
    }
}

impl Eq for SecretBytes {}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str = "s3cr3t-VALUE-that-must-not-leak";

    fn assert_redacted(debug: String, display: String, name: &str) {
        assert!(!debug.contains(VALUE), "{debug}");
        assert!(!display.contains(VALUE), "{display}");
        assert_eq!(debug, format!("{name}([redacted])"));
        assert_eq!(display, "[redacted]");
    }

    macro_rules! check {
        ($($t:ident),*) => {
            $(
                let s = $t::new(VALUE);
                assert_redacted(format!("{s:?}"), format!("{s}"), stringify!($t));
                assert_redacted(format!("{s:#?}"), s.to_string(), stringify!($t));
                assert_eq!(s.expose_secret(), VALUE);
                assert_eq!(s.clone(), s);
                assert_ne!($t::new("other"), s);
                let parsed: $t = serde_json::from_str(&format!("\"{VALUE}\"")).unwrap();
                assert_eq!(parsed, s);
            )*
        };
    }

    #[test]
    fn every_secret_type_is_redacted() {
        check!(
            ClientSecret,
            ProjectSecretKey,
            AdminToken,
            WebhookSecret,
            AccessToken,
            RefreshToken,
            ApiKey,
            Password,
            AuthorizationCode,
            PkceVerifier,
            OAuthState,
            TokenSecret
        );
    }

    #[test]
    fn secret_bytes_are_redacted() {
        let b = SecretBytes::new(VALUE.as_bytes().to_vec());
        assert_redacted(format!("{b:?}"), format!("{b}"), "SecretBytes");
        assert_eq!(b.expose_secret(), VALUE.as_bytes());
        assert_eq!(b.clone(), b);
        assert_ne!(SecretBytes::new(b"x".to_vec()), b);
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Credentials {
        client_id: String,
        client_secret: ClientSecret,
        refresh_token: Option<RefreshToken>,
        #[serde(skip)]
        raw: Vec<SecretBytes>,
    }

    #[test]
    fn containing_structs_do_not_leak() {
        let c: Credentials = serde_json::from_value(serde_json::json!({
            "client_id": "public-id",
            "client_secret": VALUE,
            "refresh_token": VALUE,
        }))
        .unwrap();
        let c = Credentials {
            raw: vec![SecretBytes::new(VALUE.as_bytes().to_vec())],
            ..c
        };
        for out in [format!("{c:?}"), format!("{c:#?}")] {
            assert!(!out.contains(VALUE), "{out}");
            assert!(out.contains("public-id"));
            assert!(out.contains("ClientSecret([redacted])"));
        }
        assert_eq!(c.client_secret.expose_secret(), VALUE);
    }

    #[test]
    fn deserialize_rejects_non_strings() {
        assert!(serde_json::from_str::<AccessToken>("42").is_err());
    }
}
