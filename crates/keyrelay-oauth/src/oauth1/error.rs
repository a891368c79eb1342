//! Errors of OAuth 1.0a signing and of the three-legged flow.

use crate::lenient;

/// Why an OAuth 1.0a request could not be signed or a reply was refused.
///
/// Messages say what happened and what to do. They never contain a secret,
/// a token or a raw reply body; a provider's `oauth_problem` code and advice
/// are included, stripped of control characters and shortened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Oauth1Error {
    /// The request or endpoint URL is not an absolute `http(s)` URL.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// A method, parameter name or value cannot be signed as given.
    #[error("invalid OAuth 1.0a parameter: {0}")]
    InvalidParameter(String),
    /// An `oauth_signature_method` name keyrelay does not implement.
    #[error(
        "unsupported OAuth 1.0a signature method `{0}`; use HMAC-SHA1, HMAC-SHA256, PLAINTEXT or RSA-SHA1"
    )]
    UnsupportedSignatureMethod(String),
    /// RSA-SHA1 was asked for, but this build has no RSA support.
    #[error(
        "RSA-SHA1 signing is not available: this build of keyrelay lacks the `rsa-sha1` feature of \
         keyrelay-oauth (off by default because the `rsa` crate has an unfixed timing side channel, \
         RUSTSEC-2023-0071); rebuild with that feature, or use HMAC-SHA1 if the provider allows it"
    )]
    RsaSha1Unavailable,
    /// RSA-SHA1 signs with a private key, which `Oauth1Signer::new` does not take.
    #[error(
        "RSA-SHA1 signs with the consumer's RSA private key, not a consumer secret: create the \
         signer with `Oauth1Signer::rsa_sha1`"
    )]
    RsaKeyRequired,
    /// The RSA private key could not be used.
    #[error("invalid RSA-SHA1 private key: {0}")]
    InvalidRsaKey(String),
    /// Computing the signature failed.
    #[error("could not sign the OAuth 1.0a request: {0}")]
    Signing(String),
    /// The system clock is before 1970, so there is no valid `oauth_timestamp`.
    #[error("the system clock is before 1970-01-01; fix it, OAuth 1.0a requests carry a timestamp")]
    Clock,
    /// The provider refused the request and said why (the Problem Reporting
    /// extension: `oauth_problem=…`, optionally `oauth_problem_advice=…`).
    #[error(
        "the provider refused the OAuth 1.0a request with oauth_problem `{problem}` (HTTP {status}){}{}",
        advice.as_deref().map(|a| format!(": {a}")).unwrap_or_default(),
        problem_hint(problem)
    )]
    Problem {
        status: u16,
        problem: String,
        advice: Option<String>,
    },
    /// The provider answered with an error status and no `oauth_problem`.
    #[error(
        "the provider refused the OAuth 1.0a request (HTTP {status}) without saying why; check the \
         consumer key and secret, the callback URL registered with the provider, and the system clock"
    )]
    Rejected { status: u16 },
    /// A 2xx reply that is not a form-encoded credentials reply.
    #[error("invalid OAuth 1.0a reply (HTTP {status}): {reason}")]
    MalformedReply { status: u16, reason: String },
    /// A 2xx form reply without a required field.
    #[error(
        "the provider's OAuth 1.0a reply (HTTP {status}) has no `{field}`; it is not a credentials \
         reply, check the endpoint URL"
    )]
    MissingField { status: u16, field: &'static str },
    /// The temporary-credentials reply lacks `oauth_callback_confirmed=true`.
    #[error(
        "the provider did not confirm the callback (`oauth_callback_confirmed=true` is missing): it \
         speaks OAuth 1.0, not 1.0a, whose flow allows session fixation, so keyrelay refuses it"
    )]
    CallbackNotConfirmed,
    /// The user declined on the provider's consent page.
    #[error("the user denied access at the provider; start the connection again to retry")]
    AccessDenied,
    /// The callback request is not a usable OAuth 1.0a callback.
    #[error("invalid OAuth 1.0a callback: {0}")]
    InvalidCallback(String),
}

/// What to do about the common `oauth_problem` codes of the Problem
/// Reporting extension.
fn problem_hint(problem: &str) -> &'static str {
    match problem {
        "signature_invalid" => {
            "; check the consumer secret, the token secret and the signature method"
        }
        "signature_method_rejected" => "; the provider wants another signature method",
        "consumer_key_unknown" | "consumer_key_rejected" | "consumer_key_refused" => {
            "; check the consumer key"
        }
        "timestamp_refused" => "; check the system clock",
        "nonce_used" => "; retry the request",
        "token_expired" | "token_revoked" | "token_rejected" | "token_used" => {
            "; the token is no longer valid, connect the account again"
        }
        "permission_denied" | "user_refused" => "; the user did not grant access",
        "parameter_absent" | "parameter_rejected" => {
            "; the provider expects other parameters, check its documentation"
        }
        _ => "",
    }
}

pub(crate) const MAX_PROBLEM_CHARS: usize = 100;
pub(crate) const MAX_ADVICE_CHARS: usize = 300;

impl Oauth1Error {
    pub(crate) fn problem(status: u16, problem: &str, advice: Option<&str>) -> Self {
        Oauth1Error::Problem {
            status,
            problem: lenient::sanitize(problem.trim(), MAX_PROBLEM_CHARS),
            advice: advice
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(|a| lenient::sanitize(a, MAX_ADVICE_CHARS)),
        }
    }
}
