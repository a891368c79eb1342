//! Where keyrelay may send requests. Provider endpoints come from catalog
//! entries and from projects' inline definitions, so without a guard a
//! project could make keyrelay call its internal network (SSRF). Unless
//! local providers are allowed, every destination must resolve to public
//! addresses only; the check runs on the addresses actually connected to
//! (a resolver for reqwest), so DNS rebinding cannot slip past it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// True for addresses on the public internet: not loopback, private,
/// link-local (cloud metadata lives there), CGNAT, multicast, documentation
/// or otherwise reserved ranges.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || (first == 0x0064 && ip.segments()[1] == 0xff9b)) // NAT64 (can reach private v4)
}

/// Checks a URL's host when it is an IP literal (resolvers never see those).
pub fn check_url(url: &url::Url, allow_local: bool) -> Result<(), String> {
    if allow_local {
        return Ok(());
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(url::Host::Domain(d))
            if d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost") =>
        {
            return Err(format!("{d} is a local address"));
        }
        _ => return Ok(()),
    };
    if is_public(ip) {
        Ok(())
    } else {
        Err(format!(
            "{ip} is a loopback, private, link-local or reserved address"
        ))
    }
}

/// A resolver that drops non-public addresses (unless local providers are
/// allowed) and fails when none is left.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub allow_local: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_local = self.allow_local;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow_local || is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!(
                    "{host} resolves to no public address; keyrelay does not send requests to \
                     private networks unless KEYRELAY_ALLOW_LOCAL_PROVIDERS=true"
                )
                .into());
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The client for keyrelay's own calls to providers (token, revoke,
/// introspect, discovery, verification): short timeouts, no redirects
/// (a token endpoint that redirects is misconfigured, and following it could
/// carry credentials elsewhere), and the guarded resolver.
pub fn control_client(
    allow_local: bool,
    extra_roots: &[rustls_pki_types::CertificateDer<'static>],
) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder();
    for cert in extra_roots {
        builder = builder.add_root_certificate(reqwest::Certificate::from_der(cert)?);
    }
    builder
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        // Many servers (Node's default, Apache) drop idle keep-alive
        // connections after 5 s; a token call sent on one they just closed
        // fails with a reset. Keep idle connections for less than that.
        .pool_idle_timeout(Duration::from_secs(4))
        .user_agent(concat!("keyrelay/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(GuardedResolver { allow_local }))
        .build()
}

/// Parses the PEM certificates of an extra-CA file.
pub fn parse_pem_certs(
    pem: Option<&[u8]>,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject;
    let Some(pem) = pem else {
        return Ok(Vec::new());
    };
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the extra CA file is not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("the extra CA file holds no certificate".into());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "224.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "140.82.112.3", "2606:4700::1111", "100.128.0.1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn checks_literal_hosts() {
        let url = |s: &str| url::Url::parse(s).unwrap();
        assert!(check_url(&url("http://127.0.0.1:8080/x"), false).is_err());
        assert!(check_url(&url("http://[::1]/x"), false).is_err());
        assert!(check_url(&url("http://localhost/x"), false).is_err());
        assert!(check_url(&url("http://169.254.169.254/latest"), false).is_err());
        assert!(check_url(&url("https://api.github.com/"), false).is_ok());
        assert!(check_url(&url("http://127.0.0.1:8080/x"), true).is_ok());
    }
}
