//! The DNSBL workload: client addresses from the given ranges (the DNS fixture decides which
//! are listed), a fixed sender, a fresh message per request.

use std::fmt::Write as _;

use super::{Clients, Ctx, RcptRequest, set_ip};

/// Options of `--workload dnsbl`.
#[derive(Debug, Clone, Default)]
pub struct DnsblSpec {
    pub clients: Clients,
}

#[derive(Debug)]
pub(super) struct Dnsbl {
    spec: DnsblSpec,
}

impl Dnsbl {
    pub(super) fn new(spec: DnsblSpec) -> Dnsbl {
        Dnsbl { spec }
    }

    pub(super) fn fill(&mut self, ctx: &mut Ctx, req: &mut RcptRequest) -> &'static str {
        ctx.new_message(req);
        set_ip(&mut req.client_address, self.spec.clients.pick(&mut ctx.rng));
        req.recipient.clear();
        let _ = write!(req.recipient, "rcpt{}@example.net", ctx.rng.below(1000));
        ""
    }
}
