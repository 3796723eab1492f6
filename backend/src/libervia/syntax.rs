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
        _ if from == to => text.to_owned(),
        _ => xhtml_to_markdown(&xhtml)?,
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

/// XHTML as markdown (what `blog edit` shows for an XHTML post): paragraphs,
/// headings, emphasis, code, links, lists, quotes and line breaks; other elements
/// give their text. Markdown's special characters in text are escaped.
pub fn xhtml_to_markdown(xhtml: &str) -> Result<String, SyntaxError> {
    let div: tokio_xmpp::minidom::Element = format!("<div xmlns='{NS_XHTML}'>{xhtml}</div>")
        .parse()
        .map_err(|e: tokio_xmpp::minidom::Error| SyntaxError::BadXhtml(e.to_string()))?;
    let mut out = String::new();
    md_children(&div, &mut out, "");
    Ok(out.trim().to_owned() + "\n")
}

fn md_children(e: &tokio_xmpp::minidom::Element, out: &mut String, prefix: &str) {
    use tokio_xmpp::minidom::Node;
    for n in e.nodes() {
        match n {
            Node::Text(t) => {
                // A line break already ended the line.
                let at_line_start = out.ends_with('\n') || out.ends_with(&format!("\n{prefix}"));
                let t = if at_line_start {
                    t.trim_start_matches('\n')
                } else {
                    t
                };
                let t = t.replace('\n', " ");
                if !(t.trim().is_empty() && (out.is_empty() || out.ends_with('\n'))) {
                    out.push_str(&md_escape(&t));
                }
            }
            Node::Element(c) => md_element(c, out, prefix),
        }
    }
}

fn md_block_start(out: &mut String, prefix: &str) {
    let t = out.trim_end_matches(' ');
    let len = t.len();
    out.truncate(len);
    if !out.is_empty() {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        if !out.ends_with("\n\n") {
            out.push_str(prefix.trim_end());
            out.push('\n');
        }
    }
    out.push_str(prefix);
}

fn md_element(e: &tokio_xmpp::minidom::Element, out: &mut String, prefix: &str) {
    let inline = |out: &mut String, mark: &str| {
        out.push_str(mark);
        md_children(e, out, prefix);
        out.push_str(mark);
    };
    match e.name() {
        "p" | "div" => {
            md_block_start(out, prefix);
            md_children(e, out, prefix);
        }
        h @ ("h1" | "h2" | "h3" | "h4" | "h5" | "h6") => {
            md_block_start(out, prefix);
            let level = h[1..].parse::<usize>().unwrap_or(1);
            out.push_str(&"#".repeat(level));
            out.push(' ');
            md_children(e, out, prefix);
        }
        "em" | "i" => inline(out, "*"),
        "strong" | "b" => inline(out, "**"),
        "del" | "s" => inline(out, "~~"),
        "code" => {
            out.push('`');
            out.push_str(&deep_text(e));
            out.push('`');
        }
        "pre" => {
            md_block_start(out, prefix);
            out.push_str("```\n");
            for line in deep_text(e).trim_end_matches('\n').split('\n') {
                out.push_str(prefix);
                out.push_str(line);
                out.push('\n');
            }
            out.push_str(prefix);
            out.push_str("```");
        }
        "br" => {
            out.push_str("  \n");
            out.push_str(prefix);
        }
        "a" => {
            out.push('[');
            md_children(e, out, prefix);
            out.push_str("](");
            out.push_str(e.attr("href").unwrap_or_default());
            out.push(')');
        }
        "img" => {
            out.push_str(&format!(
                "![{}]({})",
                e.attr("alt").unwrap_or_default(),
                e.attr("src").unwrap_or_default()
            ));
        }
        "blockquote" => {
            md_block_start(out, prefix);
            let inner = format!("{prefix}> ");
            // The quote's own blocks start on its prefixed lines.
            let mut q = String::new();
            md_children(e, &mut q, &inner);
            out.push_str("> ");
            out.push_str(q.trim_start_matches(inner.as_str()).trim_start());
        }
        list @ ("ul" | "ol") => {
            let mut n = 0;
            for li in e.children().filter(|c| c.name() == "li") {
                n += 1;
                let marker = if list == "ol" {
                    format!("{n}. ")
                } else {
                    "* ".to_owned()
                };
                if n == 1 {
                    md_block_start(out, prefix);
                } else {
                    out.push('\n');
                    out.push_str(prefix);
                }
                out.push_str(&marker);
                let inner = format!("{prefix}{}", " ".repeat(marker.len()));
                let mut item = String::new();
                md_children(li, &mut item, &inner);
                out.push_str(item.trim_start());
            }
        }
        "script" | "style" => {}
        _ => md_children(e, out, prefix),
    }
}

/// All the text inside an element, markup dropped.
fn deep_text(e: &tokio_xmpp::minidom::Element) -> String {
    use tokio_xmpp::minidom::Node;
    e.nodes()
        .map(|n| match n {
            Node::Text(t) => t.clone(),
            Node::Element(c) => deep_text(c),
        })
        .collect()
}

fn md_escape(t: &str) -> String {
    let mut s = String::with_capacity(t.len());
    for c in t.chars() {
        if matches!(c, '\\' | '*' | '_' | '`' | '[' | ']') {
            s.push('\\');
        }
        s.push(c);
    }
    s
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

        assert_eq!(convert("*x*", "markdown", "markdown").unwrap(), "*x*");
    }

    #[test]
    fn xhtml_becomes_markdown_that_converts_back_to_the_same_xhtml() {
        let md = "# Title\n\nSome *em*, **strong**, `code` and [a link](http://example.org/).  \n\
                  next line with a \\* star\n\n* a\n* b\n\n1. one\n2. two\n\n> quoted";
        let x = convert(md, "markdown", "xhtml").unwrap();
        let back = convert(&x, "xhtml", "markdown").unwrap();
        assert_eq!(back, md, "{x}");
        assert_eq!(convert(&back, "markdown", "xhtml").unwrap(), x);
        assert_eq!(
            convert("<pre><code>a &lt; b\nc</code></pre>", "xhtml", "markdown").unwrap(),
            "```\na < b\nc\n```"
        );
    }
}
