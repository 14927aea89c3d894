//! The operator's allow-list of hosts an SPC may send the provider to (`--allowed-gateways`).
//!
//! A namespace user writes `akeylessGatewayURL`, so without a list the node's provider connects
//! wherever a tenant says (SSRF from the node). Patterns are `host` or `host:port`; a host may
//! start with `*.` to match any subdomain (`*.example.com` matches `gw.example.com` and
//! `a.b.example.com`, not `example.com`). Without a port any port matches. Hosts compare
//! case-insensitively; IP addresses match only literally. An empty list allows any host.

use url::Url;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Pattern {
    /// Lower-case host; for a wildcard, the suffix including its leading dot (`.example.com`).
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayAllowList {
    patterns: Vec<Pattern>,
}

impl GatewayAllowList {
    /// Parses a comma-separated list; the error names the bad pattern and the accepted forms.
    pub(crate) fn parse(list: &str) -> Result<Self, String> {
        let mut patterns = Vec::new();
        for raw in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            patterns.push(parse_pattern(raw).ok_or_else(|| {
                format!(
                    "{raw:?} is not a host pattern: use host, host:port, *.domain or *.domain:port \
                     (no scheme or path)"
                )
            })?);
        }
        Ok(GatewayAllowList { patterns })
    }

    /// Whether any host is allowed (no list given).
    pub(crate) fn allows_any(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `url` (an already validated http(s) URL) names an allowed host and port.
    pub(crate) fn allows(&self, url: &str) -> bool {
        if self.allows_any() {
            return true;
        }
        let Ok(url) = Url::parse(url) else {
            return false;
        };
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        self.patterns.iter().any(|p| {
            let host_ok = if p.wildcard {
                host.len() > p.host.len() && host.ends_with(&p.host)
            } else {
                host == p.host
            };
            host_ok && p.port.is_none_or(|want| want == port)
        })
    }

    /// The patterns as the operator wrote them (for messages).
    pub(crate) fn describe(&self) -> String {
        let shown: Vec<String> = self
            .patterns
            .iter()
            .map(|p| {
                let host = if p.wildcard {
                    format!("*{}", p.host)
                } else {
                    p.host.clone()
                };
                match p.port {
                    Some(port) => format!("{host}:{port}"),
                    None => host,
                }
            })
            .collect();
        shown.join(", ")
    }
}

fn parse_pattern(raw: &str) -> Option<Pattern> {
    if raw.contains("://") || raw.contains('/') || raw.contains('@') {
        return None;
    }
    let (wildcard, rest) = match raw.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    // Let the URL parser split host and port (it knows IPv6 brackets and IDNA).
    let url = Url::parse(&format!("https://{rest}/")).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    if host.is_empty() || host.contains('*') || (wildcard && url.host().is_some_and(is_ip)) {
        return None;
    }
    let port = url.port().or_else(|| {
        // `Url` drops a port equal to the scheme's default: keep an explicit :443.
        rest.rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .filter(|_| !rest.ends_with(']'))
    });
    Some(Pattern {
        host: if wildcard { format!(".{host}") } else { host },
        wildcard,
        port,
    })
}

fn is_ip(host: url::Host<&str>) -> bool {
    !matches!(host, url::Host::Domain(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_allows_everything() {
        let list = GatewayAllowList::parse(" , ").unwrap();
        assert!(list.allows_any());
        assert!(list.allows("https://anything.example:1234"));
    }

    #[test]
    fn hosts_wildcards_and_ports() {
        let list = GatewayAllowList::parse(
            "api.akeyless.io, *.gw.example.com, gw.internal:8000, 10.0.0.7:443, [fd00::1]:8000",
        )
        .unwrap();
        for ok in [
            "https://api.akeyless.io",
            "https://API.Akeyless.IO:8443/api/v2",
            "https://a.gw.example.com/api/v2",
            "https://a.b.gw.example.com",
            "http://gw.internal:8000",
            "https://gw.internal:8000/api/v2",
            "https://10.0.0.7",
            "https://[fd00::1]:8000",
        ] {
            assert!(list.allows(ok), "{ok} should be allowed");
        }
        for bad in [
            "https://gw.example.com",
            "https://evilgw.example.com",
            "https://gw.example.com.evil.io",
            "https://gw.internal:8001",
            "https://gw.internal",
            "http://10.0.0.7",
            "https://10.0.0.8",
            "https://169.254.169.254",
            "https://[fd00::1]:8001",
            "not a url",
        ] {
            assert!(!list.allows(bad), "{bad} must be refused");
        }
        assert_eq!(
            list.describe(),
            "api.akeyless.io, *.gw.example.com, gw.internal:8000, 10.0.0.7:443, [fd00::1]:8000"
        );
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "https://gw.example.com",
            "gw.example.com/api",
            "*",
            "*.",
            "a.*.example.com",
            "*.10.0.0.1",
            "user@host",
            "host:notaport",
            "host:70000",
        ] {
            let e = GatewayAllowList::parse(bad).unwrap_err();
            assert!(e.contains("host pattern"), "{bad}: {e}");
        }
    }
}
