//! The handshake the server sends as soon as a client connects (auth-anchors §1.2): the same
//! lines, in the same order, as Dovecot 2.3. Postfix needs only VERSION, MECH and DONE, but
//! Dovecot's own client library (`doveadm auth test`) also wants a COOKIE, and Postfix
//! refuses a SPID that comes before any MECH.

use std::fmt::Write as _;

/// A mechanism's security properties, announced as Dovecot's flag words. Postfix filters
/// mechanisms with them (`smtpd_sasl_security_options`): `noplaintext` drops `plaintext`
/// mechanisms, `noactive` drops `active` ones, and so on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MechFlags {
    pub plaintext: bool,
    pub dictionary: bool,
    pub active: bool,
    pub mutual_auth: bool,
}

impl MechFlags {
    /// The flag words in Dovecot's fixed order (private, anonymous, plaintext, dictionary,
    /// active, forward-secrecy, mutual-auth; `mech.c`), tab-separated.
    fn words(self) -> impl Iterator<Item = &'static str> {
        [
            (self.plaintext, "plaintext"),
            (self.dictionary, "dictionary"),
            (self.active, "active"),
            (self.mutual_auth, "mutual-auth"),
        ]
        .into_iter()
        .filter_map(|(on, word)| on.then_some(word))
    }
}

/// What one connection is told before `DONE`.
#[derive(Debug, Clone)]
pub struct Handshake<'a> {
    /// Mechanism names and flags, in the order to announce.
    pub mechs: &'a [(&'static str, MechFlags)],
    /// Our process id (Dovecot's auth process pid).
    pub spid: u32,
    /// Connection number, unique in this process.
    pub cuid: u64,
    /// 16 random bytes, sent as 32 hex digits.
    pub cookie: [u8; 16],
}

impl Handshake<'_> {
    /// The complete handshake text, each line LF-terminated.
    pub fn render(&self) -> String {
        let (major, minor) = super::VERSION;
        let mut out = format!("VERSION\t{major}\t{minor}\n");
        for (name, flags) in self.mechs {
            out.push_str("MECH\t");
            out.push_str(name);
            for word in flags.words() {
                out.push('\t');
                out.push_str(word);
            }
            out.push('\n');
        }
        let _ = write!(out, "SPID\t{}\nCUID\t{}\nCOOKIE\t", self.spid, self.cuid);
        for byte in self.cookie {
            let _ = write!(out, "{byte:02x}");
        }
        out.push_str("\nDONE\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dovecot_layout() {
        let plain = MechFlags { plaintext: true, ..MechFlags::default() };
        let cram = MechFlags { dictionary: true, active: true, ..MechFlags::default() };
        let scram = MechFlags { mutual_auth: true, ..MechFlags::default() };
        let mechs = [("PLAIN", plain), ("LOGIN", plain), ("CRAM-MD5", cram), ("SCRAM-SHA-256", scram)];
        let hs = Handshake { mechs: &mechs, spid: 17885, cuid: 1, cookie: [0xde; 16] };
        assert_eq!(
            hs.render(),
            "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\nMECH\tCRAM-MD5\tdictionary\tactive\n\
             MECH\tSCRAM-SHA-256\tmutual-auth\nSPID\t17885\nCUID\t1\nCOOKIE\tdededededededededededededededede\nDONE\n"
        );
    }
}
