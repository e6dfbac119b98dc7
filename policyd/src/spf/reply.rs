//! SPF reply texts and the why-URL: the placeholders they take (see [`crate::template`]).

use crate::template;

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

/// Checks that every `{…}` in `template` is an SPF placeholder.
///
/// # Errors
/// The first unknown placeholder or unclosed brace.
pub fn check_template(template: &str) -> Result<(), String> {
    template::check(template, PLACEHOLDERS)
}

/// Expands an SPF template.
pub fn expand(template: &str, v: &Vars<'_>) -> String {
    let vars = [
        ("result", v.result),
        ("identity", v.identity),
        ("domain", v.domain),
        ("sender", v.sender),
        ("ip", v.ip),
        ("helo", v.helo),
        ("explanation", v.explanation),
        ("url", v.url),
    ];
    template::expand(template, &vars)
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
        let vars = Vars { result: "fail", domain: "example.org", ip: "192.0.2.1", ..Vars::default() };
        assert_eq!(
            expand("SPF {result}: {domain} does not allow {ip}. {explanation} {url}", &vars),
            "SPF fail: example.org does not allow 192.0.2.1."
        );
    }
}
