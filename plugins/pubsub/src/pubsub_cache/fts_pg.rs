//! The cache's full-text query language on PostgreSQL: an FTS5 query turned into a
//! `tsquery` (`to_tsquery('simple', …)`), so a frontend writes the same query on
//! either engine and gets the same items.
//!
//! Why a translator: PostgreSQL's own `websearch_to_tsquery` reads another language
//! (`-word`, `or`), and FTS5's is the documented one (`doc/pubsub_cache.rst`). What is
//! translated: barewords and `"quoted phrases"` (a phrase's words must follow each
//! other: `<->`), `*` after a phrase (a prefix), implicit and explicit `AND`, `OR`,
//! `NOT` (binary, as in FTS5), parentheses, the `text:` column filter (the only
//! column). Precedence as in FTS5: `NOT`, then `AND`, then `OR`. A phrase's words are
//! split at what is neither a letter nor a digit and lowered, as FTS5's `unicode61`
//! tokenizer does. `NEAR(a b, N)` of two phrases ([`Parser::near`]). Refused, with a
//! message in FTS5's manner: `NEAR` of three phrases or more, `^`, another column, a
//! syntax error. Accents are folded as FTS5's `remove_diacritics 2` does
//! ([`fold`]), in the indexed text and in the query alike, so `echec` finds `échec`
//! (done here rather than with PostgreSQL's `unaccent` extension, which needs its
//! installation in each database).

/// `text` without its diacritics (`Échec` → `Echec`): decomposed, its combining
/// marks dropped, composed again. What PostgreSQL's index holds and its queries
/// look for, as SQLite's FTS5 folds both (`remove_diacritics 2`).
pub fn fold(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;
    if text.is_ascii() {
        return text.to_owned();
    }
    text.nfd()
        .filter(|c| !is_combining_mark(*c))
        .nfc()
        .collect()
}

/// `query` as a `tsquery` text, or why FTS5 would refuse it.
pub fn to_tsquery(query: &str) -> Result<String, String> {
    let tokens = lex(query)?;
    let mut p = Parser { tokens, at: 0 };
    let out = p.or()?;
    match p.tokens.get(p.at) {
        None => Ok(out),
        Some(t) => Err(format!("fts5: syntax error near \"{}\"", t.text())),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A bareword or a quoted string, and whether `*` follows it.
    Phrase(String, bool),
    And,
    Or,
    Not,
    Open,
    Close,
    /// `NEAR` before its `(`.
    Near,
    Comma,
}

impl Token {
    fn text(&self) -> String {
        match self {
            Self::Phrase(s, _) => s.clone(),
            Self::And => "AND".into(),
            Self::Or => "OR".into(),
            Self::Not => "NOT".into(),
            Self::Open => "(".into(),
            Self::Close => ")".into(),
            Self::Near => "NEAR".into(),
            Self::Comma => ",".into(),
        }
    }
}

fn bareword_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || !c.is_ascii()
}

fn lex(query: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = query.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | ',' => {
                chars.next();
                out.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Comma,
                });
            }
            '*' => match out.last_mut() {
                Some(Token::Phrase(_, star @ false)) => {
                    *star = true;
                    chars.next();
                }
                _ => return Err("fts5: syntax error near \"*\"".into()),
            },
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            s.push('"');
                        }
                        Some('"') => break,
                        Some(c) => s.push(c),
                        None => return Err("unterminated string".into()),
                    }
                }
                out.push(Token::Phrase(s, false));
            }
            c if bareword_char(c) => {
                let mut s = String::new();
                while let Some(&c) = chars.peek().filter(|c| bareword_char(**c)) {
                    s.push(c);
                    chars.next();
                }
                if chars.peek() == Some(&':') {
                    chars.next();
                    if s != "text" {
                        return Err(format!("no such column: {s}"));
                    }
                    continue;
                }
                out.push(match s.as_str() {
                    "AND" => Token::And,
                    "OR" => Token::Or,
                    "NOT" => Token::Not,
                    "NEAR" if chars.peek() == Some(&'(') => Token::Near,
                    _ => Token::Phrase(s, false),
                });
            }
            other => return Err(format!("fts5: syntax error near \"{other}\"")),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn or(&mut self) -> Result<String, String> {
        let mut out = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            out = format!("({out} | {})", self.and()?);
        }
        Ok(out)
    }

    /// Explicit `AND`, or two phrases side by side (FTS5 takes no implicit `AND`
    /// next to a parenthesis: `(a OR b) c` is a syntax error there, and here).
    fn and(&mut self) -> Result<String, String> {
        let mut out = self.not()?;
        loop {
            let after_phrase = matches!(self.tokens.get(self.at - 1), Some(Token::Phrase(..)));
            match self.peek() {
                Some(Token::And) => self.at += 1,
                Some(Token::Phrase(..)) if after_phrase => {}
                _ => return Ok(out),
            }
            out = format!("({out} & {})", self.not()?);
        }
    }

    fn not(&mut self) -> Result<String, String> {
        let mut out = self.primary()?;
        while self.peek() == Some(&Token::Not) {
            self.at += 1;
            out = format!("({out} & !{})", self.primary()?);
        }
        Ok(out)
    }

    fn primary(&mut self) -> Result<String, String> {
        let token = self.peek().cloned();
        self.at += 1;
        match token {
            Some(Token::Open) => {
                let inner = self.or()?;
                if self.peek() != Some(&Token::Close) {
                    return Err("fts5: syntax error near \"(\"".into());
                }
                self.at += 1;
                Ok(inner)
            }
            Some(Token::Phrase(s, star)) => phrase(&s, star),
            Some(Token::Near) => self.near(),
            Some(t) => Err(format!("fts5: syntax error near \"{}\"", t.text())),
            None => Err("fts5: syntax error near \"\"".into()),
        }
    }
}

impl Parser {
    /// `NEAR(p1 p2, N)` (after `NEAR`): the two phrases in either order with at
    /// most N tokens (10 by default) between the end of the first and the start of
    /// the second, as FTS5 reads it; in `tsquery`, one `<k>` (the right phrase
    /// starts k positions after the left one ends) for each k up to N + 1, both
    /// ways. More than two phrases would need every order and every split of the
    /// distance: refused.
    fn near(&mut self) -> Result<String, String> {
        let syntax = |t: Option<&Token>| {
            let near = t.map_or_else(String::new, Token::text);
            format!("fts5: syntax error near \"{near}\"")
        };
        if self.peek() != Some(&Token::Open) {
            return Err(syntax(self.peek()));
        }
        self.at += 1;
        let mut phrases = Vec::new();
        while let Some(Token::Phrase(s, star)) = self.peek().cloned() {
            phrases.push(phrase(&s, star)?);
            self.at += 1;
        }
        let mut distance = 10;
        if self.peek() == Some(&Token::Comma) {
            self.at += 1;
            distance = match self.peek() {
                Some(Token::Phrase(n, false)) => {
                    n.parse::<u16>().map_err(|_| syntax(self.peek()))?
                }
                other => return Err(syntax(other)),
            };
            self.at += 1;
        }
        if self.peek() != Some(&Token::Close) || phrases.is_empty() {
            return Err(syntax(self.peek()));
        }
        self.at += 1;
        match phrases.as_slice() {
            [one] => Ok(one.clone()),
            [a, b] => Ok(format!(
                "({})",
                (1..=u32::from(distance) + 1)
                    .map(|k| format!("{a} <{k}> {b} | {b} <{k}> {a}"))
                    .collect::<Vec<_>>()
                    .join(" | ")
            )),
            _ => Err("NEAR with more than two phrases is not available on PostgreSQL".into()),
        }
    }
}

/// A `tsquery` that matches no text.
const NOTHING: &str = "('nothing' & !'nothing')";

/// A phrase's words in order (`<->`), the last one a prefix when `star`.
fn phrase(s: &str, star: bool) -> Result<String, String> {
    // A word may fold to nothing (marks that are letters to `is_alphanumeric`).
    let words: Vec<String> = s
        .split(|c: char| !c.is_alphanumeric())
        .map(|w| fold(&w.to_lowercase()))
        .filter(|w| !w.is_empty())
        .map(|w| format!("'{w}'"))
        .collect();
    if words.is_empty() {
        // FTS5 matches nothing with an empty phrase; neither does an impossible term
        // (PostgreSQL refuses an empty lexeme, `''`).
        return Ok(NOTHING.into());
    }
    let mut out = words.join(" <-> ");
    if star {
        out.push_str(":*");
    }
    Ok(if words.len() > 1 {
        format!("({out})")
    } else {
        out
    })
}

#[cfg(test)]
mod tests {
    use super::to_tsquery;

    #[test]
    fn fts5_queries_become_tsqueries() {
        for (fts, ts) in [
            ("alpha", "'alpha'"),
            ("Alpha beta", "('alpha' & 'beta')"),
            ("alpha AND beta OR gamma", "(('alpha' & 'beta') | 'gamma')"),
            ("alpha OR beta gamma", "('alpha' | ('beta' & 'gamma'))"),
            ("alpha NOT beta", "('alpha' & !'beta')"),
            ("\"Hello, world\"", "('hello' <-> 'world')"),
            ("bonj*", "'bonj':*"),
            ("(a OR b) AND c", "(('a' | 'b') & 'c')"),
            ("text:échec", "'echec'"),
            ("ÉCHEC", "'echec'"),
            ("naïve", "'naive'"),
            ("한국", "'한국'"),
        ] {
            assert_eq!(to_tsquery(fts).as_deref(), Ok(ts), "{fts}");
        }
        assert_eq!(
            to_tsquery("NEAR(a b, 1)").as_deref(),
            Ok("('a' <1> 'b' | 'b' <1> 'a' | 'a' <2> 'b' | 'b' <2> 'a')")
        );
        assert_eq!(to_tsquery("NEAR(a)").as_deref(), Ok("'a'"));
        // Nothing left of a word: no empty lexeme (PostgreSQL refuses `''`).
        for nothing in ["\u{8ca}", "\"_\"", "\u{94d}"] {
            assert_eq!(
                to_tsquery(nothing).as_deref(),
                Ok(super::NOTHING),
                "{nothing:?}"
            );
        }
        assert_eq!(
            to_tsquery("NEAR(\"a b\" c*)").map(|q| q.matches('|').count()),
            Ok(21)
        );
        for bad in [
            "alpha AND",
            "\"open",
            "title:x",
            "NEAR(a b c)",
            "NEAR(a b,)",
            "NEAR(a b, x)",
            "NEAR()",
            "a, b",
            "(a",
            "a )",
            "* a",
        ] {
            assert!(to_tsquery(bad).is_err(), "{bad}");
        }
    }
}
