//! Canonical forms of text, phone numbers and e-mail addresses, so provider noise
//! (whitespace, punctuation, letter case, HTML bodies) never registers as a change.
//!
//! Every normalising function here ([`line()`], [`text`], [`text_comparable`],
//! [`phone_digits`], [`email`]) is idempotent on every string: normalising twice is
//! normalising once (`tests/model_props.rs` checks it on arbitrary input).

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
///
/// The result never looks like HTML, so `text(text(x)) == text(x)` for every string: an HTML
/// body whose text itself starts with a tag (`&lt;p&gt;...`) is converted again until it
/// does not (each round removes at least the leading tag, so this ends).
pub fn text(input: &str) -> String {
    let mut current = std::borrow::Cow::Borrowed(input);
    while looks_like_html(&current) {
        current = std::borrow::Cow::Owned(html_to_text(&current));
    }
    clean_lines(&current)
}

/// The comparable form of a multi-line text: [`text`], with whitespace inside each line
/// collapsed and blank lines dropped. Bodies that went through an HTML editor (paragraphs,
/// reflowed spaces) compare equal to the text they were made from.
pub fn text_comparable(input: &str) -> String {
    let mut out = String::new();
    for l in text(input).split('\n') {
        let l = line(l);
        if l.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&l);
    }
    out
}

/// Line endings as `\n`, trailing spaces removed, blank lines trimmed and collapsed.
fn clean_lines(input: &str) -> String {
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

/// Whether a body is HTML rather than text (Graph returns HTML bodies by default): it starts
/// (after whitespace) with an `<html`, `<!doctype`, `<body`, `<div`, `<meta` or `<p` tag,
/// and that tag is closed by a `>`.
pub fn looks_like_html(input: &str) -> bool {
    let t = input.trim_start();
    if !t.contains('>') {
        // An unclosed `<div` is text that happens to start with a bracket.
        return false;
    }
    let starts_with = |prefix: &str| {
        t.as_bytes()
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
    };
    if ["<html", "<!doctype", "<body", "<div", "<meta"]
        .iter()
        .any(|p| starts_with(p))
    {
        return true;
    }
    // `<p>` or `<p class=...>`, not `<pre>` or `<param>`. Any whitespace counts, so that
    // collapsing whitespace never turns text into HTML.
    starts_with("<p")
        && t[2..]
            .chars()
            .next()
            .is_some_and(|c| c == '>' || c == '/' || c.is_whitespace())
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
        } else if name == "br"
            || (closing
                && matches!(
                    name.as_str(),
                    "p" | "div"
                        | "li"
                        | "tr"
                        | "ul"
                        | "ol"
                        | "table"
                        | "blockquote"
                        | "h1"
                        | "h2"
                        | "h3"
                        | "h4"
                        | "h5"
                        | "h6"
                ))
        {
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
/// extension after `;ext=`. "+33 (0)1 23-45" and "+33 1 23 45" compare equal; "(0)1 23 45"
/// keeps its trunk zero.
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
    let international = main.trim_start().starts_with('+');
    if international {
        out.push('+');
    }
    // "(0)" is the trunk prefix shown in international numbers: not dialled. In a national
    // number ("(0)6 12 34 56 78") it is the trunk prefix itself, and is dialled.
    let main = if international {
        std::borrow::Cow::Owned(main.replace("(0)", ""))
    } else {
        std::borrow::Cow::Borrowed(main)
    };
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

    /// Bug: an HTML body whose text starts with an escaped tag became HTML-looking text, so
    /// a second `text` stripped it: normalising twice was not normalising once.
    #[test]
    fn text_is_idempotent_when_html_decodes_to_html() {
        for input in [
            "<p>&lt;p&gt;hello</p>",
            "<div>&lt;div&gt;&amp;lt;p&amp;gt;x&lt;/div&gt;</div>",
            "<p>&lt;p\tclass=x&gt;y",
        ] {
            let once = text(input);
            assert_eq!(text(&once), once, "{input:?}");
            assert!(!looks_like_html(&once), "{input:?} -> {once:?}");
        }
        assert_eq!(text("<p>&lt;p&gt;hello</p>"), "hello");
    }

    /// Bug: text starting with an unclosed `<div` was read as HTML.
    #[test]
    fn an_unclosed_tag_is_text() {
        assert!(!looks_like_html("<div is where it goes"));
        assert_eq!(text("<div is where it goes"), "<div is where it goes");
        assert!(looks_like_html("  <P class=x>y</P>"));
        assert!(looks_like_html("<p\t>y"));
        assert!(!looks_like_html("<pre>y</pre>"));
    }

    #[test]
    fn comparable_text_ignores_paragraphs_and_reflow() {
        let html = "<html><body><p>Agenda:  budget</p><p>Q&amp;A</p></body></html>";
        assert_eq!(
            text_comparable(html),
            text_comparable("Agenda: budget\n\n  Q&A\n")
        );
        let once = text_comparable(html);
        assert_eq!(text_comparable(&once), once);
    }

    /// Bug: "(0)" was dropped from national numbers too, where the zero is dialled.
    #[test]
    fn trunk_zero_is_kept_in_national_numbers() {
        assert_eq!(phone_digits("(0)6 12 34 56 78"), "0612345678");
        assert_eq!(phone_digits("+33 (0)6 12 34 56 78"), "+33612345678");
    }

    #[test]
    fn emails_compare_case_insensitively() {
        assert_eq!(email(" Ann@Example.COM "), "ann@example.com");
    }
}
