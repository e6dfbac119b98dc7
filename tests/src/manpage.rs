//! The section-5 man pages (`postward-<daemon>.toml(5)`) are made from the commented default
//! configuration files in `contrib/config/`, which show every key with its default and say
//! what it does: one source, so the page cannot drift from the file (and the file is checked
//! against the code's defaults by the config tests). `tests/tests/manpages.rs` fails when a
//! committed page differs from what this produces.

/// Renders `contrib/config/<daemon>.toml` as roff.
///
/// The file's leading comment becomes the description; each `[section]` a subsection; each
/// `key = value` an entry with the comment lines above it as its explanation. Commented-out
/// examples (`# key = value`) stay in the explanation as examples.
pub fn config_page(daemon: &str, version: &str, toml: &str) -> String {
    let name = format!("postward-{daemon}.toml");
    let mut out = String::new();
    out.push_str(&format!(
        ".\\\" Generated from contrib/config/{daemon}.toml by tests/src/manpage.rs; do not edit.\n\
         .TH {} 5 \"\" \"postward {version}\" \"File Formats\"\n\
         .SH NAME\n{name} \\- configuration of postward-{daemon}(8)\n\
         .SH SYNOPSIS\n/etc/postward/{daemon}.toml\n",
        name.to_uppercase()
    ));
    let mut comments: Vec<String> = Vec::new();
    let mut in_header = true;
    for line in toml.lines() {
        let trimmed = line.trim();
        if let Some(text) = trimmed.strip_prefix('#') {
            let text = text.strip_prefix(' ').unwrap_or(text);
            if !in_header && text.starts_with("[[") && text.ends_with("]]") {
                // A commented-out array of tables (`# [[dnsbl.list]]`): a section of its own,
                // the comment above it as its description.
                out.push_str(&format!(".SH {}\n", escape(text)));
                out.push_str(&paragraph(&comments));
                comments.clear();
            } else if let Some(inner) = text.strip_prefix("# ").filter(|_| !in_header) {
                // `# # what the next key does`: a comment inside a commented-out example.
                comments.push(inner.to_owned());
            } else if !in_header && looks_like_setting(text) {
                // A commented-out key: an optional setting with no default.
                let (key, value) = text.split_once(" = ").unwrap_or((text, ""));
                out.push_str(&format!(".TP\n\\fB{} = {}\\fR\n(not set by default)\n", escape(key), escape(value)));
                out.push_str(&paragraph(&comments));
                comments.clear();
            } else {
                comments.push(text.to_owned());
            }
        } else if trimmed.is_empty() {
            if in_header && !comments.is_empty() {
                out.push_str(".SH DESCRIPTION\n");
                out.push_str(&paragraph(&comments));
                out.push_str(
                    ".PP\nThe file is TOML. Every key is optional; the values shown are the defaults.\n\
                     Unknown keys are errors, reported with their line by\n\
                     .B \\-\\-check\\-config\n.\n",
                );
                comments.clear();
                in_header = false;
            }
        } else if let Some(section) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            if in_header {
                out.push_str(".SH DESCRIPTION\n");
                out.push_str(&paragraph(&comments));
                in_header = false;
            } else if !comments.is_empty() {
                out.push_str(&paragraph(&comments));
            }
            comments.clear();
            out.push_str(&format!(".SH [{}]\n", escape(section)));
        } else if let Some((key, value)) = trimmed.split_once('=') {
            // Inline font changes, not `.B`: `.B` would eat the quotes of string values.
            out.push_str(&format!(".TP\n\\fB{} = {}\\fR\n", escape(key.trim()), escape(value.trim())));
            out.push_str(&paragraph(&comments));
            comments.clear();
        }
    }
    if !comments.is_empty() {
        out.push_str(&paragraph(&comments));
    }
    out.push_str(&format!(
        ".SH FILES\n/etc/postward/{daemon}.toml\n.SH SEE ALSO\npostward-{daemon}(8), postfix(1), master(5)\n"
    ));
    out
}

/// Comment lines as roff text: lines that look like examples (indented, or `key = value`)
/// are kept verbatim, the rest fills.
fn paragraph(lines: &[String]) -> String {
    let mut out = String::new();
    let mut verbatim = false;
    for line in lines {
        let example = line.starts_with(' ') || looks_like_setting(line);
        if example && !verbatim {
            out.push_str(".nf\n");
            verbatim = true;
        } else if !example && verbatim {
            out.push_str(".fi\n");
            verbatim = false;
        }
        if line.trim().is_empty() {
            out.push_str(".sp\n");
        } else {
            out.push_str(&escape(line));
            out.push('\n');
        }
    }
    if verbatim {
        out.push_str(".fi\n");
    }
    out
}

fn looks_like_setting(line: &str) -> bool {
    line.split_once(" = ").is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
}

/// Escapes roff's specials: backslashes, and a leading `.` or `'` that would be a request.
fn escape(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    if text.starts_with('.') || text.starts_with('\'') { format!("\\&{text}") } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_keys_and_explanations() {
        let page = config_page(
            "demo",
            "0.1.0",
            "# /etc/postward/demo.toml: the demo.\n\n[server]\n# Where to listen.\nlisten = [\"unix:/x\"]\n# e.g.\n# user = \"postward\"\n",
        );
        assert!(page.contains(".TH POSTWARD-DEMO.TOML 5"), "{page}");
        assert!(page.contains(".SH DESCRIPTION\n/etc/postward/demo.toml: the demo.\n"), "{page}");
        assert!(page.contains(".SH [server]\n.TP\n\\fBlisten = [\"unix:/x\"]\\fR\nWhere to listen.\n"), "{page}");
        assert!(page.contains(".TP\n\\fBuser = \"postward\"\\fR\n(not set by default)\ne.g.\n"), "{page}");
    }

    #[test]
    fn roff_requests_are_escaped() {
        assert_eq!(escape(".hidden"), "\\&.hidden");
        assert_eq!(escape("a\\b-c"), "a\\eb\\-c");
    }
}
