//! Who is calling, as far as the network can tell: the client's address and whether it came
//! over TLS. Behind a reverse proxy the TCP peer is the proxy, so the proxy's `X-Forwarded-For`
//! and `X-Forwarded-Proto` say it; but any client can send those headers, so they are believed
//! only from the proxies configured in `CATALOGUE_TRUSTED_PROXIES`. Throttling is keyed on the
//! address this module gives, and the session cookie's `Secure` flag on the scheme.

use std::net::IpAddr;
use std::str::FromStr;

use actix_web::HttpRequest;
use ipnet::IpNet;

/// Addresses and networks of the reverse proxies in front of the service.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl FromStr for TrustedProxies {
    type Err = String;

    /// A comma-separated list of addresses (`127.0.0.1`) or networks (`10.0.0.0/8`).
    fn from_str(text: &str) -> Result<TrustedProxies, String> {
        let networks = text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                IpNet::from_str(item)
                    .or_else(|_| IpAddr::from_str(item).map(IpNet::from))
                    .map_err(|_| format!("{item:?} is not an IP address or network"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustedProxies(networks))
    }
}

impl TrustedProxies {
    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(&address))
    }

    /// The client's address: the TCP peer, unless the peer is a trusted proxy; then the
    /// rightmost address in `X-Forwarded-For` that is not itself a trusted proxy (addresses
    /// further left were written by the client and prove nothing).
    pub fn client_address(&self, request: &HttpRequest) -> Option<IpAddr> {
        let peer = request.peer_addr()?.ip();
        if !self.trusts(peer) {
            return Some(peer);
        }
        let forwarded: Vec<IpAddr> = request
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(|item| IpAddr::from_str(item.trim()))
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        Some(forwarded.into_iter().rev().find(|address| !self.trusts(*address)).unwrap_or(peer))
    }

    /// Whether the client reached the service over TLS: the connection's own scheme, or a
    /// trusted proxy's `X-Forwarded-Proto`.
    pub fn is_https(&self, request: &HttpRequest) -> bool {
        if request.app_config().secure() {
            return true;
        }
        let from_trusted_proxy = request.peer_addr().is_some_and(|peer| self.trusts(peer.ip()));
        from_trusted_proxy
            && request
                .headers()
                .get("x-forwarded-proto")
                .and_then(|value| value.to_str().ok())
                .is_some_and(|scheme| scheme.trim().eq_ignore_ascii_case("https"))
    }

    /// The key sign-in throttling counts per client.
    pub fn address_key(&self, request: &HttpRequest) -> String {
        self.client_address(request).map(|address| address.to_string()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn request(peer: &str, forwarded_for: Option<&str>, proto: Option<&str>) -> HttpRequest {
        let mut request = TestRequest::default()
            .peer_addr(format!("{peer}:40000").parse().unwrap_or_else(|e| panic!("{e}")));
        if let Some(value) = forwarded_for {
            request = request.insert_header(("x-forwarded-for", value));
        }
        if let Some(value) = proto {
            request = request.insert_header(("x-forwarded-proto", value));
        }
        request.to_http_request()
    }

    fn proxies(text: &str) -> TrustedProxies {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let none = TrustedProxies::default();
        let forged = request("198.51.100.7", Some("10.9.9.9"), Some("https"));
        assert_eq!(none.client_address(&forged), "198.51.100.7".parse().ok());
        assert!(!none.is_https(&forged));
        let other = proxies("127.0.0.2");
        assert_eq!(other.client_address(&forged), "198.51.100.7".parse().ok());
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_the_scheme() {
        let trusted = proxies("127.0.0.2, 10.0.0.0/8");
        let via_proxy = request("127.0.0.2", Some("203.0.113.9"), Some("https"));
        assert_eq!(trusted.client_address(&via_proxy), "203.0.113.9".parse().ok());
        assert!(trusted.is_https(&via_proxy));
        // The client wrote the leftmost entry itself; the rightmost untrusted one is believed.
        let spoofed = request("127.0.0.2", Some("1.2.3.4, 203.0.113.9, 10.1.1.1"), None);
        assert_eq!(trusted.client_address(&spoofed), "203.0.113.9".parse().ok());
        // A garbled header proves nothing: the proxy itself is the client.
        let garbled = request("127.0.0.2", Some("not an address"), None);
        assert_eq!(trusted.client_address(&garbled), "127.0.0.2".parse().ok());
    }

    #[test]
    fn bad_configuration_is_refused() {
        assert!("127.0.0.1, 10.0.0.0/8, ::1".parse::<TrustedProxies>().is_ok());
        assert!("nginx".parse::<TrustedProxies>().is_err());
        assert!("10.0.0.0/99".parse::<TrustedProxies>().is_err());
    }
}
