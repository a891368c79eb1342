//! A browser without a browser: follows redirects by hand and keeps cookies
//! per host, so tests can walk the connect flow (and tamper with it).

use std::collections::HashMap;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

/// A cookie jar and a client that never follows redirects on its own.
pub struct Browser {
    client: reqwest::Client,
    cookies: HashMap<String, HashMap<String, String>>,
}

/// What keyrelay's callback answered.
#[derive(Debug)]
pub struct CallbackResult {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub location: Option<url::Url>,
    /// The redirect's query (empty for pages).
    pub query: HashMap<String, String>,
    pub body: String,
}

impl CallbackResult {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }
}

fn host_key(url: &url::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(0)
    )
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    /// The cookies this browser holds for a URL's host.
    pub fn cookies_for(&self, url: &str) -> HashMap<String, String> {
        let url = url::Url::parse(url).unwrap();
        self.cookies
            .get(&host_key(&url))
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces this browser's cookies for a host (to simulate another browser).
    pub fn set_cookies_for(&mut self, url: &str, cookies: HashMap<String, String>) {
        let url = url::Url::parse(url).unwrap();
        self.cookies.insert(host_key(&url), cookies);
    }

    /// One GET with this browser's cookies; remembers the cookies it is sent.
    pub async fn get(&mut self, url: &str) -> reqwest::Response {
        let parsed = url::Url::parse(url).unwrap();
        let key = host_key(&parsed);
        let mut req = self.client.get(parsed);
        if let Some(jar) = self.cookies.get(&key).filter(|j| !j.is_empty()) {
            let header: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header(COOKIE, header.join("; "));
        }
        let resp = req.send().await.unwrap();
        for value in resp.headers().get_all(SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let jar = self.cookies.entry(key.clone()).or_default();
                if value.is_empty() {
                    jar.remove(name.trim());
                } else {
                    jar.insert(name.trim().to_string(), value.trim().to_string());
                }
            }
        }
        resp
    }

    /// Follows redirects from `start` until one points at a URL starting with
    /// `stop_at` (returned, not fetched). Panics on a non-redirect on the way.
    pub async fn follow_until(&mut self, start: &str, stop_at: &str) -> String {
        let mut url = start.to_string();
        for _ in 0..20 {
            if url.starts_with(stop_at) {
                return url;
            }
            let resp = self.get(&url).await;
            let status = resp.status();
            let Some(location) = resp.headers().get(LOCATION).and_then(|l| l.to_str().ok()) else {
                let body = resp.text().await.unwrap_or_default();
                panic!("expected a redirect from {url}, got {status}: {body}");
            };
            url = url::Url::parse(&url)
                .unwrap()
                .join(location)
                .unwrap()
                .to_string();
        }
        panic!("too many redirects from {start}");
    }

    /// GETs keyrelay's callback URL and reads where it sends the browser.
    pub async fn callback(&mut self, url: &str) -> CallbackResult {
        let resp = self.get(url).await;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let location = headers
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(|l| url::Url::parse(l).unwrap());
        let query = location
            .as_ref()
            .map(|l| l.query_pairs().into_owned().collect())
            .unwrap_or_default();
        let body = resp.text().await.unwrap_or_default();
        CallbackResult {
            status,
            headers,
            location,
            query,
            body,
        }
    }
}
