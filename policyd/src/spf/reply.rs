//! Reply texts and the why-URL: `{placeholder}` templates checked when the configuration is
//! loaded, so a typo is a configuration error and not a strange reply to a customer.

use shared::logging::printable;

const PLACEHOLDERS: &[&str] = &["result", "identity", "domain", "sender", "ip", "helo", "explanation", "url"];

/// The values a template can use.
#[derive(Debug, Clone, Default)]
pub struct Vars<'a> {
    pub result: &'a str,
    pub identity: &'a str,
    pub domain: &'a str,
    pub sender: &'a str,
    pub ip: &'a str,
    pub helo: &'a str,
    pub explanation: &'a str,
    pub url: &'a str,
}

impl Vars<'_> {
    fn get(&self, name: &str) -> &str {
        match name {
            "result" => self.result,
            "identity" => self.identity,
            "domain" => self.domain,
            "sender" => self.sender,
            "ip" => self.ip,
            "helo" => self.helo,
            "explanation" => self.explanation,
            "url" => self.url,
            _ => "",
        }
    }
}

/// Checks that every `{…}` in `template` is a known placeholder.
///
/// # Errors
/// The first unknown placeholder or unclosed brace, as a message for the configuration error.
pub fn check_template(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!("unclosed '{{' in {template:?}"));
        };
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!("unknown placeholder {{{name}}} (known: {})", PLACEHOLDERS.join(", ")));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// Expands `template`. Values from the network are made printable; runs of spaces left by
/// empty placeholders collapse to one, and the ends are trimmed.
pub fn expand(template: &str, vars: &Vars<'_>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                out.push_str(&printable(vars.get(&after[..close])));
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    let words: Vec<&str> = out.split_whitespace().collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert!(check_template("SPF {result} for {domain} {url}").is_ok());
        assert_eq!(
            check_template("SPF {reslt}").unwrap_err(),
            "unknown placeholder {reslt} (known: result, identity, domain, sender, ip, helo, explanation, url)"
        );
        assert!(check_template("SPF {result").unwrap_err().contains("unclosed"));
        let vars = Vars { result: "fail", domain: "example.org", ip: "192.0.2.1", ..Vars::default() };
        assert_eq!(
            expand("SPF {result}: {domain} does not allow {ip}. {explanation} {url}", &vars),
            "SPF fail: example.org does not allow 192.0.2.1."
        );
        let hostile = Vars { domain: "evil\r\nexample", ..Vars::default() };
        assert!(!expand("{domain}", &hostile).contains('\n'));
    }
}
