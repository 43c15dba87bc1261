//! Canonical forms of text, phone numbers and e-mail addresses, so provider noise
//! (whitespace, punctuation, letter case, HTML bodies) never registers as a change.
//!
//! Every function here is idempotent: normalising twice is normalising once.

/// A one-line text: trimmed, with every run of whitespace collapsed to one space.
pub fn line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// A multi-line text: HTML bodies turned into text, line endings as `\n`, trailing spaces
/// of each line removed, blank lines at the start and end removed, and runs of more than
/// one blank line collapsed to one.
pub fn text(input: &str) -> String {
    let plain;
    let input = if looks_like_html(input) {
        plain = html_to_text(input);
        plain.as_str()
    } else {
        input
    };
    let unified = input.replace("\r\n", "\n").replace('\r', "\n");
    let mut lines: Vec<&str> = Vec::new();
    let mut blank_run = 0;
    for l in unified.split('\n') {
        let l = l.trim_end();
        if l.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        lines.push(l);
    }
    while lines.first().is_some_and(|l| l.is_empty()) {
        lines.remove(0);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

/// Whether a body is HTML rather than text (Graph returns HTML bodies by default).
pub fn looks_like_html(input: &str) -> bool {
    let t = input.trim_start();
    let lower_start: String = t.chars().take(15).collect::<String>().to_ascii_lowercase();
    lower_start.starts_with("<html")
        || lower_start.starts_with("<!doctype")
        || lower_start.starts_with("<body")
        || lower_start.starts_with("<div")
        || lower_start.starts_with("<p>")
        || lower_start.starts_with("<p ")
        || lower_start.starts_with("<meta")
}

/// Turns an HTML body into text: block ends and `<br>` become line breaks, tags are
/// dropped (with the content of `<head>`, `<style>` and `<script>`), and entities decoded.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    let mut skip_until: Option<&'static str> = None;
    while let Some(lt) = rest.find('<') {
        if skip_until.is_none() {
            out.push_str(&decode_entities(&rest[..lt]));
        }
        let after = &rest[lt + 1..];
        let Some(gt) = after.find('>') else {
            if skip_until.is_none() {
                out.push_str(&decode_entities(&rest[lt..]));
            }
            rest = "";
            break;
        };
        let tag = after[..gt].trim().to_ascii_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let closing = tag.starts_with('/');
        if let Some(end) = skip_until {
            if closing && name == end {
                skip_until = None;
            }
        } else if !closing && matches!(name.as_str(), "head" | "style" | "script") {
            skip_until = Some(match name.as_str() {
                "head" => "head",
                "style" => "style",
                _ => "script",
            });
        } else if name == "br" || (closing && matches!(name.as_str(), "p" | "div" | "li" | "tr")) {
            out.push('\n');
        }
        rest = &after[gt + 1..];
    }
    if skip_until.is_none() {
        out.push_str(&decode_entities(rest));
    }
    // Text inside HTML is reflowed by browsers: collapse spaces inside each line.
    out.split('\n').map(line).collect::<Vec<_>>().join("\n")
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let entity = &after[..e];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(' '),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The comparable form of a phone number: its digits, with a leading `+` kept, and an
/// extension after `;ext=`. "+33 (0)1 23-45" and "+33012345" compare equal.
pub fn phone_digits(number: &str) -> String {
    let lower = number.to_ascii_lowercase();
    let (main, ext) = match lower
        .find("ext")
        .or_else(|| lower.find(';'))
        .or_else(|| lower.find('x'))
    {
        Some(i) => (&lower[..i], Some(&lower[i..])),
        None => (lower.as_str(), None),
    };
    let mut out = String::new();
    if main.trim_start().starts_with('+') {
        out.push('+');
    }
    // "(0)" is the trunk prefix shown in international numbers: not dialled.
    let main = main.replace("(0)", "");
    out.extend(main.chars().filter(char::is_ascii_digit));
    if let Some(ext) = ext {
        let digits: String = ext.chars().filter(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            out.push_str(";ext=");
            out.push_str(&digits);
        }
    }
    out
}

/// The comparable form of an e-mail address: trimmed and lower-cased.
pub fn email(address: &str) -> String {
    address.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_collapse_whitespace() {
        assert_eq!(line("  Kick\t off \n"), "Kick off");
        assert_eq!(line(&line(" a  b ")), line(" a  b "));
    }

    #[test]
    fn text_unifies_line_endings_and_blank_lines() {
        assert_eq!(text("\r\nA  \r\n\r\n\r\nB\n\n"), "A\n\nB");
    }

    #[test]
    fn html_bodies_read_as_text() {
        let html = "<html><head><style>p{}</style></head><body><p>Agenda:&nbsp;budget</p><div>Q&amp;A<br>end</div></body></html>";
        assert_eq!(text(html), "Agenda: budget\nQ&A\nend");
        assert_eq!(text(html), text("Agenda: budget\nQ&A\nend"));
    }

    #[test]
    fn phones_compare_by_digits() {
        assert_eq!(phone_digits("+33 (0)1 23-45"), "+331 2345".replace(' ', ""));
        assert_eq!(phone_digits("+1 555 0100 ext. 12"), "+15550100;ext=12");
        assert_eq!(phone_digits("06.12.34.56.78"), "0612345678");
    }

    #[test]
    fn emails_compare_case_insensitively() {
        assert_eq!(email(" Ann@Example.COM "), "ann@example.com");
    }
}
