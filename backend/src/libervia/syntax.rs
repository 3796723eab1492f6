//! Text syntaxes of Libervia's composition (`syntaxGet`, `syntaxConvert`, and the
//! `content_rich` of `mbSend`): markdown, xhtml and text, with XHTML as the pivot.
//!
//! Why here: a syntax is a property of how Libervia's frontends compose (the
//! `Composition/Syntax` param), not of Perch's blog plugin, which takes text and
//! XHTML. So the conversion is translation at this edge (`doc/libervia-compat.rst`).
//!
//! Markdown follows what 0.9 asks of its converter: raw HTML in the source is shown
//! as text, not interpreted (so a user who does not know markdown cannot break the
//! XHTML), a line break inside a paragraph is a `<br />`, and tables are understood.
//! The output is XHTML (self-closed void elements), a sequence of block elements.

use pulldown_cmark::{Event, Options, Parser};

/// The syntax a frontend names to mean "the profile's `Composition/Syntax`".
pub const CURRENT: &str = "@CURRENT@";

/// The syntaxes perchd converts between (Libervia's key spelling: lower case).
pub const KNOWN: &[&str] = &["markdown", "text", "xhtml"];

const NS_XHTML: &str = "http://www.w3.org/1999/xhtml";

#[derive(Debug, thiserror::Error)]
pub enum SyntaxError {
    /// Not a syntax perchd knows (0.9: `NotFound` with the name).
    #[error("{0}")]
    Unknown(String),
    /// Converting into this syntax is not done by perchd (markdown from XHTML).
    #[error("perchd does not convert XHTML into {0} yet")]
    Unsupported(String),
    /// The XHTML given is not well-formed.
    #[error("not XHTML: {0}")]
    BadXhtml(String),
}

/// `syntaxGet`: the key of a syntax name (case and surrounding spaces ignored).
pub fn key(name: &str) -> Result<&'static str, SyntaxError> {
    let k = name.trim().to_lowercase();
    KNOWN
        .iter()
        .find(|s| **s == k)
        .copied()
        .ok_or(SyntaxError::Unknown(name.to_owned()))
}

/// Converts `text` from one syntax to another through XHTML; trailing white space is
/// dropped, as 0.9 does (it would disturb change detection).
pub fn convert(text: &str, from: &str, to: &str) -> Result<String, SyntaxError> {
    let (from, to) = (key(from)?, key(to)?);
    let xhtml = match from {
        "markdown" => markdown_to_xhtml(text),
        "text" => escape(text),
        _ => text.to_owned(),
    };
    let out = match to {
        "xhtml" => xhtml,
        "text" => xhtml_to_text(&xhtml)?,
        other => {
            if from == other {
                text.to_owned()
            } else {
                return Err(SyntaxError::Unsupported(other.to_owned()));
            }
        }
    };
    Ok(out.trim_end().to_owned())
}

/// Markdown (CommonMark plus tables and strikethrough) as XHTML block elements.
pub fn markdown_to_xhtml(text: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let events = Parser::new_ext(text, options).map(|e| match e {
        // Raw HTML is text here, never markup.
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
        Event::SoftBreak => Event::HardBreak,
        e => e,
    });
    let mut html = String::with_capacity(text.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

/// XHTML's text content, block elements on their own lines.
pub fn xhtml_to_text(xhtml: &str) -> Result<String, SyntaxError> {
    let div: tokio_xmpp::minidom::Element = format!("<div xmlns='{NS_XHTML}'>{xhtml}</div>")
        .parse()
        .map_err(|e: tokio_xmpp::minidom::Error| SyntaxError::BadXhtml(e.to_string()))?;
    let mut out = String::new();
    text_of(&div, &mut out);
    Ok(out)
}

fn text_of(e: &tokio_xmpp::minidom::Element, out: &mut String) {
    use tokio_xmpp::minidom::Node;
    for n in e.nodes() {
        match n {
            // The newline between two blocks is already there.
            Node::Text(t) if out.is_empty() || out.ends_with('\n') => {
                out.push_str(t.strip_prefix('\n').unwrap_or(t))
            }
            Node::Text(t) => out.push_str(t),
            Node::Element(c) => match c.name() {
                "br" => out.push('\n'),
                "script" | "style" => {}
                name => {
                    text_of(c, out);
                    let block = matches!(
                        name,
                        "p" | "div"
                            | "li"
                            | "pre"
                            | "blockquote"
                            | "tr"
                            | "h1"
                            | "h2"
                            | "h3"
                            | "h4"
                            | "h5"
                            | "h6"
                    );
                    if block && !out.ends_with('\n') {
                        out.push('\n');
                    }
                }
            },
        }
    }
}

/// Text as XHTML text (what 0.9 does for the `text` syntax).
fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            c => s.push(c),
        }
    }
    s
}

impl From<SyntaxError> for super::errors::LibError {
    fn from(e: SyntaxError) -> Self {
        match &e {
            SyntaxError::Unknown(name) => Self::exc(super::errors::NOT_FOUND, name, ""),
            _ => Self::value(&e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive_and_unknown_is_named() {
        assert_eq!(key(" Markdown ").unwrap(), "markdown");
        assert_eq!(key("XHTML").unwrap(), "xhtml");
        assert!(
            matches!(key("wiki_dotclear"), Err(SyntaxError::Unknown(n)) if n == "wiki_dotclear")
        );
    }

    /// The expected XHTML is, byte for byte, what Libervia 0.9's backend makes of the
    /// same markdown (Python-Markdown with its extensions, raw HTML off).
    #[test]
    fn markdown_becomes_xhtml_with_raw_html_escaped_and_line_breaks() {
        let x = convert(
            "# Title\n\nSome *em* and **strong**,\nnext line <b>raw</b>\n\n- a\n- b\n",
            "markdown",
            "xhtml",
        )
        .unwrap();
        assert_eq!(
            x,
            "<h1>Title</h1>\n<p>Some <em>em</em> and <strong>strong</strong>,<br />\nnext line \
             &lt;b&gt;raw&lt;/b&gt;</p>\n<ul>\n<li>a</li>\n<li>b</li>\n</ul>"
        );
        // Well-formed: the text form of it parses.
        assert_eq!(
            xhtml_to_text(&x).unwrap(),
            "Title\nSome em and strong,\nnext line <b>raw</b>\na\nb\n"
        );
    }

    #[test]
    fn text_and_xhtml_round_trips() {
        assert_eq!(
            convert("a < b & c\n", "text", "xhtml").unwrap(),
            "a &lt; b &amp; c"
        );
        assert_eq!(
            convert("<p>one</p><p>two <em>x</em></p>", "xhtml", "text").unwrap(),
            "one\ntwo x"
        );
        assert_eq!(
            convert("<p>keep</p>", "xhtml", "xhtml").unwrap(),
            "<p>keep</p>"
        );
        assert!(matches!(
            convert("<p>open", "xhtml", "text"),
            Err(SyntaxError::BadXhtml(_))
        ));
        assert!(matches!(
            convert("<p>x</p>", "xhtml", "markdown"),
            Err(SyntaxError::Unsupported(_))
        ));
        assert_eq!(convert("*x*", "markdown", "markdown").unwrap(), "*x*");
    }
}
