//! Per-message state: the pipeline runs once per message (Postfix's `instance` attribute)
//! and every further recipient gets the same answer; headers go out one per request, so a
//! message gets each header exactly once however many recipients it has.
//!
//! Postfix accepts one `PREPEND` per reply. With two headers (`header = "both"`, or SPF plus
//! a DNSBL score), the second goes out with the next recipient, or with the DATA-stage
//! request when policyd is also listed under `smtpd_data_restrictions`.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use lru::LruCache;
use shared::policy::{Action, ProtocolState};

use crate::pipeline::Verdict;

/// Messages remembered at once. An smtpd handles one message at a time, so this covers
/// thousands of concurrent sessions; an evicted message is simply evaluated again.
const MESSAGES: usize = 8192;

/// One message's verdict and the headers not sent yet.
#[derive(Debug)]
pub struct Message {
    pub verdict: Verdict,
    pending: Mutex<VecDeque<shared::policy::Header>>,
}

impl Message {
    pub fn new(verdict: Verdict) -> Message {
        let pending = Mutex::new(verdict.headers.iter().cloned().collect());
        Message { verdict, pending }
    }

    /// The answer to one request of this message.
    pub fn answer(&self, state: &ProtocolState) -> Action {
        if let Some(refuse) = &self.verdict.refuse {
            return refuse.clone();
        }
        // PREPEND cannot work after the message content (smtpd_end_of_data_restrictions).
        if matches!(state, ProtocolState::Mail | ProtocolState::Rcpt | ProtocolState::Data)
            && let Some(header) = self.pending.lock().unwrap_or_else(PoisonError::into_inner).pop_front()
        {
            return Action::Prepend(header);
        }
        Action::Dunno
    }
}

/// Messages by (instance, client address).
pub struct Messages {
    map: Mutex<LruCache<(String, IpAddr), Arc<Message>>>,
}

impl Default for Messages {
    fn default() -> Self {
        Messages { map: Mutex::new(LruCache::new(NonZeroUsize::new(MESSAGES).unwrap_or(NonZeroUsize::MIN))) }
    }
}

impl Messages {
    pub fn get(&self, instance: &str, ip: IpAddr) -> Option<Arc<Message>> {
        if instance.is_empty() {
            return None;
        }
        self.map.lock().unwrap_or_else(PoisonError::into_inner).get(&(instance.to_owned(), ip)).cloned()
    }

    /// Remembers a message (no-op without an instance) and returns it.
    pub fn insert(&self, instance: &str, ip: IpAddr, verdict: Verdict) -> Arc<Message> {
        let message = Arc::new(Message::new(verdict));
        if !instance.is_empty() {
            self.map.lock().unwrap_or_else(PoisonError::into_inner).put((instance.to_owned(), ip), message.clone());
        }
        message
    }
}
