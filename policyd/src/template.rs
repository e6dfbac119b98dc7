//! `{placeholder}` reply templates, checked when the configuration is loaded so a typo is a
//! configuration error and not a strange reply to a customer. Each check names its own
//! placeholders.

use shared::logging::printable;

/// Checks that every `{…}` in `template` is one of `known`.
///
/// # Errors
/// The first unknown placeholder or unclosed brace, as a message for the configuration error.
pub fn check(template: &str, known: &[&str]) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!("unclosed '{{' in {template:?}"));
        };
        let name = &after[..close];
        if !known.contains(&name) {
            return Err(format!("unknown placeholder {{{name}}} (known: {})", known.join(", ")));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// Expands `template` with `(name, value)` pairs. Values from the network are made
/// printable; runs of spaces left by empty placeholders collapse to one, and the ends are
/// trimmed.
pub fn expand(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                let value = vars.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| v);
                out.push_str(&printable(value));
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
    fn check_and_expand() {
        let known = ["result", "domain", "ip", "url"];
        assert!(check("SPF {result} for {domain} {url}", &known).is_ok());
        assert_eq!(
            check("SPF {reslt}", &known).unwrap_err(),
            "unknown placeholder {reslt} (known: result, domain, ip, url)"
        );
        assert!(check("SPF {result", &known).unwrap_err().contains("unclosed"));
        let vars = [("result", "fail"), ("domain", "example.org"), ("ip", "192.0.2.1"), ("url", "")];
        assert_eq!(
            expand("SPF {result}: {domain} does not allow {ip}. {url}", &vars),
            "SPF fail: example.org does not allow 192.0.2.1."
        );
        assert!(!expand("{domain}", &[("domain", "evil\r\nexample")]).contains('\n'));
    }
}
