//! The SPF workload: senders over the fixture's domains, sent from client addresses the
//! fixture may or may not authorize. Each message gets a fresh `instance`, so a daemon cannot
//! reuse a per-message result; `--recipients-per-message K` makes K requests share one message,
//! as a message with K recipients does.

use std::fmt::Write as _;

use super::{Clients, Ctx, RcptRequest, set_ip};

/// Options of `--workload spf`.
#[derive(Debug, Clone)]
pub struct SpfSpec {
    pub sender_domains: Vec<String>,
    pub clients: Clients,
    /// Fixed HELO name; by default `mail.<sender domain>`.
    pub helo: Option<String>,
    /// Requests per message (same instance, client, HELO and sender), at least 1.
    pub recipients_per_message: u32,
    pub recipient_domain: String,
}

#[derive(Debug)]
pub(super) struct Spf {
    spec: SpfSpec,
    /// Recipients left in the current message.
    left: u32,
}

impl Spf {
    pub(super) fn new(spec: SpfSpec) -> Spf {
        Spf { spec, left: 0 }
    }

    pub(super) fn fill(&mut self, ctx: &mut Ctx, req: &mut RcptRequest) -> &'static str {
        let tag = if self.left == 0 {
            self.left = self.spec.recipients_per_message.max(1);
            ctx.new_message(req);
            let rng = &mut ctx.rng;
            set_ip(&mut req.client_address, self.spec.clients.pick(rng));
            let domains = &self.spec.sender_domains;
            let domain = &domains[usize::try_from(rng.below(u64::try_from(domains.len()).unwrap_or(1))).unwrap_or(0)];
            req.sender.clear();
            let _ = write!(req.sender, "user{}@{domain}", rng.below(1000));
            req.helo_name.clear();
            match &self.spec.helo {
                Some(h) => req.helo_name.push_str(h),
                None => {
                    let _ = write!(req.helo_name, "mail.{domain}");
                }
            }
            "first-rcpt"
        } else {
            "next-rcpt"
        };
        self.left -= 1;
        req.recipient.clear();
        let _ = write!(req.recipient, "rcpt{}@{}", ctx.rng.below(1000), self.spec.recipient_domain);
        tag
    }
}

#[cfg(test)]
mod tests {
    use super::super::{PolicySpec, PolicyWorkload};
    use super::*;

    #[test]
    fn messages_group_k_recipients() {
        let spec = SpfSpec {
            sender_domains: vec!["pass.test".into(), "fail.test".into()],
            clients: Clients::parse("192.0.2.0/24").unwrap(),
            helo: None,
            recipients_per_message: 3,
            recipient_domain: "example.net".into(),
        };
        let mut w = PolicyWorkload::new(&PolicySpec::Spf(spec), 5, 0, 1);
        let reqs: Vec<_> = (0..9)
            .map(|_| {
                let (r, t) = w.next();
                (r.clone(), t)
            })
            .collect();
        for msg in reqs.chunks(3) {
            assert_eq!(msg[0].1, "first-rcpt");
            assert!(msg[1..].iter().all(|(_, t)| *t == "next-rcpt"));
            let first = &msg[0].0;
            for (r, _) in msg {
                assert_eq!(
                    (&r.instance, &r.sender, &r.client_address),
                    (&first.instance, &first.sender, &first.client_address)
                );
                let domain = r.sender.rsplit_once('@').unwrap().1;
                assert_eq!(r.helo_name, format!("mail.{domain}"));
            }
        }
        assert_ne!(reqs[0].0.instance, reqs[3].0.instance);
        assert_ne!(reqs[3].0.instance, reqs[6].0.instance);
    }
}
