//! Where an account's server listens: DNS SRV records, XEP-0368 style.
//!
//! Why not tokio-xmpp's resolver: it looks up one service (`_xmpp-client` or
//! `_xmpps-client`), tries its records in the order DNS gave them rather than by
//! priority, and on any lookup failure falls back to a port on the domain, so
//! Direct TLS could never be "used when offered". Here both services are asked,
//! the records merged by priority (RFC 2782; Direct TLS first on equal priority,
//! as XEP-0368 §3 suggests), and an empty answer means "no records", letting the
//! caller fall back to the domain on 5222 with STARTTLS.

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::RData;

/// One place to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub direct_tls: bool,
    priority: u16,
    weight: u16,
}

/// The SRV targets of `domain`, in the order to try them; empty when it has none
/// (or DNS could not be asked, which the caller treats the same way).
pub async fn targets(domain: &str) -> Vec<Target> {
    if domain.parse::<std::net::IpAddr>().is_ok() {
        return Vec::new();
    }
    let resolver = match TokioResolver::builder_tokio().and_then(|b| b.build()) {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(%domain, error = %e, "no DNS resolver; no SRV lookup");
            return Vec::new();
        }
    };
    let mut all = Vec::new();
    for (service, direct_tls) in [("_xmpps-client._tcp", true), ("_xmpp-client._tcp", false)] {
        let name = format!("{service}.{domain}.");
        match resolver.srv_lookup(name.as_str()).await {
            Ok(lookup) => {
                for record in lookup.answers() {
                    if let RData::SRV(srv) = &record.data {
                        all.push(Target {
                            host: srv.target.to_ascii().trim_end_matches('.').to_owned(),
                            port: srv.port,
                            direct_tls,
                            priority: srv.priority,
                            weight: srv.weight,
                        });
                    }
                }
            }
            Err(e) => tracing::debug!(%domain, service, error = %e, "no SRV records"),
        }
    }
    order(all)
}

/// By priority, then Direct TLS first, then heavier weight first; a target of "."
/// (RFC 2782: the service is decidedly not available here) is dropped.
fn order(mut all: Vec<Target>) -> Vec<Target> {
    all.retain(|t| !t.host.is_empty() && t.port != 0);
    all.sort_by_key(|t| (t.priority, !t.direct_tls, std::cmp::Reverse(t.weight)));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(host: &str, port: u16, direct_tls: bool, priority: u16, weight: u16) -> Target {
        Target {
            host: host.into(),
            port,
            direct_tls,
            priority,
            weight,
        }
    }

    #[test]
    fn direct_tls_first_at_equal_priority_and_dots_dropped() {
        let got = order(vec![
            t("b", 5222, false, 5, 0),
            t("a", 5223, true, 10, 0),
            t("c", 443, true, 5, 0),
            t("", 0, false, 0, 0),
            t("d", 5222, false, 1, 0),
        ]);
        let hosts: Vec<_> = got.iter().map(|t| t.host.as_str()).collect();
        assert_eq!(hosts, ["d", "c", "b", "a"]);
    }

    #[tokio::test]
    async fn an_ip_address_has_no_records() {
        assert!(targets("127.0.0.1").await.is_empty());
    }
}
