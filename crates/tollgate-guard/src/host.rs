//! Which `Host` values name this machine.
//!
//! A browser sends the name it resolved as `Host`. DNS rebinding points the attacker's own
//! name at 127.0.0.1, so a page on it reaches the loopback listener as a same-origin page;
//! only the `Host` still says `evil.example`. Names the attacker cannot point anywhere are
//! safe: `localhost` and `*.localhost` (browsers resolve them to loopback themselves),
//! loopback addresses, and the names the operator gave this machine.

use std::net::IpAddr;
use std::sync::Arc;

use crate::{Head, Refusal, Rule, shown};

/// Whether `ip` is a loopback address: 127.0.0.0/8, ::1, or 127.x written as IPv4-mapped IPv6.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The host names and addresses that name this machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalNames {
    /// Beyond `localhost`, `*.localhost` and loopback addresses; normalised by [`normalise`].
    extra: Vec<String>,
}

impl LocalNames {
    /// `localhost`, `*.localhost`, loopback addresses, and `extra` (names or addresses, with
    /// or without a port). Empty names and the unspecified addresses (`0.0.0.0`, `::`) name
    /// no machine in particular and are left out.
    pub fn new<I, S>(extra: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut names: Vec<String> = extra
            .into_iter()
            .filter_map(|name| normalise(name.as_ref()))
            .filter(|name| name.parse::<IpAddr>().map_or(true, |ip| !ip.is_unspecified()))
            .collect();
        names.sort();
        names.dedup();
        Self { extra: names }
    }

    /// For a server listening on `listen_host` (when the operator named one): the built-in
    /// names, that host, and this machine's host name where the system tells it cheaply
    /// (`/proc/sys/kernel/hostname`, else `/etc/hostname`).
    pub fn of_this_machine(listen_host: Option<&str>) -> Self {
        let hostname = ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .find_map(|path| std::fs::read_to_string(path).ok())
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty());
        Self::new(listen_host.map(str::to_owned).into_iter().chain(hostname))
    }

    /// Whether `authority` (a `Host` value: name or address, optional port) names this
    /// machine.
    pub fn allows(&self, authority: &str) -> bool {
        let Some(host) = normalise(authority) else { return false };
        if host == "localhost" || host.ends_with(".localhost") {
            return true;
        }
        if host.parse::<IpAddr>().is_ok_and(is_loopback) {
            return true;
        }
        self.extra.contains(&host)
    }
}

/// The host of an authority, lower-cased, without port, IPv6 brackets or a final dot; `None`
/// when it is not a plain `host[:port]`.
fn normalise(authority: &str) -> Option<String> {
    let authority = authority.trim();
    // A bare IPv6 address (a configured listen host is written so).
    if let Ok(ip) = authority.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    let parsed = crate::authority(authority)?;
    let host = parsed.host();
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// Refuses requests whose `Host` (or HTTP/2 `:authority`) does not name this machine. For
/// gateways without a master key, where every local caller is the admin.
#[derive(Debug, Clone)]
pub struct LocalHostsOnly {
    names: Arc<LocalNames>,
}

impl LocalHostsOnly {
    /// Allows `names`.
    pub fn new(names: LocalNames) -> Self {
        Self { names: Arc::new(names) }
    }
}

impl Rule for LocalHostsOnly {
    fn check(&self, head: &Head<'_>) -> Result<(), Refusal> {
        // Both when a request names both (absolute-form target and `Host`). A request with
        // neither is not from a browser (HTTP/1.0) and cannot be a rebinding.
        let named = head.headers.get_all(http::header::HOST).iter().map(|v| v.as_bytes());
        let named = named.chain(head.uri.authority().map(|a| a.as_str().as_bytes()));
        for authority in named {
            let allowed = std::str::from_utf8(authority).is_ok_and(|a| self.names.allows(a));
            if !allowed {
                return Err(Refusal::ForeignHost { host: shown(authority) });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use http::Request;

    use super::*;

    #[test]
    fn loopback_addresses() {
        assert!(is_loopback(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(is_loopback(IpAddr::V4(Ipv4Addr::new(127, 8, 9, 10))));
        assert!(is_loopback(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert!(is_loopback("::ffff:127.0.0.1".parse().unwrap()));
        for other in ["10.0.0.1", "0.0.0.0", "::", "::ffff:10.0.0.1", "2001:db8::1"] {
            assert!(!is_loopback(other.parse().unwrap()), "{other}");
        }
    }

    #[test]
    fn hosts_that_name_this_machine() {
        let names = LocalNames::new(["devbox", "192.168.1.5"]);
        for host in [
            "localhost",
            "localhost:4000",
            "LOCALHOST:4000",
            "localhost.:4000",
            "app.localhost:4001",
            "a.b.localhost",
            "127.0.0.1",
            "127.0.0.1:4000",
            "127.1.2.3:80",
            "[::1]",
            "[::1]:4000",
            "[::ffff:127.0.0.1]:4000",
            "devbox:4000",
            "DevBox",
            "192.168.1.5:4000",
        ] {
            assert!(names.allows(host), "{host} names this machine");
        }
    }

    #[test]
    fn hosts_that_do_not() {
        let names = LocalNames::new(["devbox"]);
        for host in [
            "evil.example",
            "evil.example:4000",
            "localhost.evil.example",
            "evillocalhost",
            "127.0.0.1.nip.io",
            "10.0.0.5:4000",
            "0.0.0.0:4000",
            "[::]:4000",
            "[2001:db8::1]:4000",
            "devbox.evil.example",
            "user@localhost",
            "localhost:port",
            "",
            " ",
        ] {
            assert!(!names.allows(host), "{host} does not name this machine");
        }
    }

    #[test]
    fn configured_names_are_normalised_and_unspecified_addresses_skipped() {
        let names = LocalNames::new(["0.0.0.0", "::", "", "[::1]", "GW.Lan.", "10.0.0.7"]);
        assert_eq!(names.extra, ["10.0.0.7", "::1", "gw.lan"]);
        assert!(names.allows("gw.lan:4000") && names.allows("10.0.0.7"));
        assert!(!LocalNames::new(["0.0.0.0"]).allows("0.0.0.0"));
        // The machine's own names are added; the built-in ones always hold.
        let here = LocalNames::of_this_machine(Some("10.1.1.1"));
        assert!(here.allows("10.1.1.1:4000") && here.allows("localhost"));
        assert!(!here.allows("evil.example"));
    }

    fn check(request: Request<()>) -> Result<(), Refusal> {
        let rule = LocalHostsOnly::new(LocalNames::default());
        let head = Head {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            has_body: false,
        };
        rule.check(&head)
    }

    #[test]
    fn the_rule_checks_every_authority_a_request_names() {
        let with_host = |host: &str| Request::builder().header("host", host).body(()).unwrap();
        assert_eq!(check(with_host("localhost:4000")), Ok(()));
        assert_eq!(
            check(with_host("evil.example:4000")),
            Err(Refusal::ForeignHost { host: "evil.example:4000".into() })
        );
        // HTTP/2 carries the authority in the URI.
        let h2 = Request::builder().uri("http://evil.example/key/list").body(()).unwrap();
        assert!(check(h2).is_err());
        let h2 = Request::builder().uri("http://127.0.0.1:4000/key/list").body(()).unwrap();
        assert_eq!(check(h2), Ok(()));
        // An absolute-form target and a `Host` that disagree.
        let both = Request::builder()
            .uri("http://localhost/key/list")
            .header("host", "evil.example")
            .body(())
            .unwrap();
        assert!(check(both).is_err());
        let twice = Request::builder()
            .header("host", "localhost")
            .header("host", "evil.example")
            .body(())
            .unwrap();
        assert!(check(twice).is_err());
        let binary = Request::builder().header("host", &b"local\xffhost"[..]).body(()).unwrap();
        assert!(check(binary).is_err());
        assert_eq!(check(Request::new(())), Ok(()));
    }
}
