//! Sending keyrelay's own form requests to providers and describing network
//! failures without leaking what was sent.

use keyrelay_oauth::FormRequest;

use crate::app::App;

/// A provider's answer, read whole (token replies are small; capped anyway).
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    /// The provider's `Retry-After` (seconds or an HTTP date), if any.
    pub retry_after: Option<std::time::Duration>,
    pub body: Vec<u8>,
}

/// `Retry-After` as delta-seconds or an HTTP date (RFC 9110 §10.2.3).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<std::time::Duration> {
    let text = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(std::time::Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

const MAX_REPLY_BYTES: usize = 1024 * 1024;

/// POSTs a form request built by `keyrelay_oauth`. The error is a short
/// description fit for users: it names the cause, never the request body.
pub async fn send_form(app: &App, request: &FormRequest) -> Result<Reply, String> {
    let url = url::Url::parse(&request.url).map_err(|e| format!("invalid URL: {e}"))?;
    crate::net::check_url(&url, app.config.allow_local_providers)?;
    let mut builder = app.http.post(url);
    for (name, value) in &request.headers {
        builder = builder.header(*name, value);
    }
    let resp = builder
        .body(request.body.clone())
        .send()
        .await
        .map_err(|e| describe(&e))?;
    read(resp).await
}

/// Reads a response whole, up to a limit.
pub async fn read(mut resp: reqwest::Response) -> Result<Reply, String> {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let retry_after = retry_after(resp.headers());
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err("the provider's reply is larger than 1 MiB".into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Reply {
        status,
        content_type,
        retry_after,
        body,
    })
}

/// What went wrong on the network, in a few words (reqwest's messages can
/// contain the URL; ours name the cause only).
pub fn describe(err: &reqwest::Error) -> String {
    use std::error::Error;
    let mut cause = String::new();
    let mut source = err.source();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_redirect() {
        "redirected"
    } else if err.is_body() || err.is_decode() {
        "the reply could not be read"
    } else {
        "the request failed"
    };
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {cause}")
    }
}
