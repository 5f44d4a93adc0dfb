//! A template line as a pattern: its literal text, with every `{{…}}`
//! expression a wildcard, matched against a rendered line.
use super::tokens::{Kind, Tok};
use super::MAX_LITERAL;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Piece {
    Lit(String),
    Wild,
}

#[derive(Debug, Clone)]
pub(super) struct Pattern {
    pub(super) pieces: Vec<Piece>,
    /// Characters of partial indentation in front of the template's own text.
    pub(super) indent: usize,
}

pub(super) fn nonws(s: &str) -> i32 {
    let n = s.chars().filter(|c| !c.is_whitespace()).count();
    n.min(MAX_LITERAL as usize) as i32
}

impl Pattern {
    pub(super) fn new(indent: &str, toks: &[Tok]) -> Pattern {
        let mut pieces: Vec<Piece> = Vec::new();
        let mut push = |p: Piece| match (pieces.last_mut(), p) {
            (Some(Piece::Lit(a)), Piece::Lit(b)) => a.push_str(&b),
            (Some(Piece::Wild), Piece::Wild) => {}
            (_, p) => pieces.push(p),
        };
        if !indent.is_empty() {
            push(Piece::Lit(indent.to_string()));
        }
        // Blocks opened and closed on this line: the whole span is one
        // wildcard (`{{#if a}}init{{else}}join{{/if}}` renders one branch).
        let mut inline = 0usize;
        for tok in toks {
            match &tok.kind {
                Kind::Open(_) => {
                    if inline == 0 {
                        push(Piece::Wild);
                    }
                    inline += 1;
                }
                Kind::Close => match inline {
                    0 => push(Piece::Wild),
                    _ => inline -= 1,
                },
                _ if inline > 0 => {}
                Kind::Text => push(Piece::Lit(tok.text.clone())),
                Kind::Comment => {}
                Kind::Expr | Kind::Else | Kind::Partial(_) => push(Piece::Wild),
            }
        }
        Pattern {
            pieces,
            indent: indent.chars().count(),
        }
    }

    pub(super) fn has_wild(&self) -> bool {
        self.pieces.contains(&Piece::Wild)
    }

    pub(super) fn blank(&self) -> bool {
        self.pieces.iter().all(|p| match p {
            Piece::Lit(l) => l.trim().is_empty(),
            Piece::Wild => false,
        })
    }

    pub(super) fn literal(&self) -> i32 {
        let n: i32 = self
            .pieces
            .iter()
            .map(|p| match p {
                Piece::Lit(l) => nonws(l),
                Piece::Wild => 0,
            })
            .sum();
        n.min(MAX_LITERAL)
    }

    pub(super) fn prefix(&self) -> &str {
        match self.pieces.first() {
            Some(Piece::Lit(l)) => l,
            _ => "",
        }
    }

    pub(super) fn suffix(&self) -> &str {
        match self.pieces.last() {
            Some(Piece::Lit(l)) if self.pieces.len() > 1 => l,
            _ => "",
        }
    }

    /// Whether `s` is this line with each wildcard standing for any text.
    pub(super) fn matches(&self, s: &str) -> bool {
        if self.blank() {
            // Partial indentation and trailing blanks vary on empty lines.
            return s.trim().is_empty();
        }
        let p = &self.pieces;
        let mut s = s;
        let mut from = 0;
        let mut to = p.len();
        if let Some(Piece::Lit(l)) = p.first() {
            match s.strip_prefix(l.as_str()) {
                Some(rest) => s = rest,
                None => return false,
            }
            if p.len() == 1 {
                return s.is_empty();
            }
            from = 1;
        }
        if to > from {
            if let Some(Piece::Lit(l)) = p.last() {
                match s.strip_suffix(l.as_str()) {
                    Some(rest) => s = rest,
                    None => return false,
                }
                to -= 1;
            }
        }
        // Only wildcards at both ends now: leftmost matches of the literals
        // in order decide.
        for piece in &p[from..to] {
            if let Piece::Lit(l) = piece {
                match s.find(l.as_str()) {
                    Some(k) => s = &s[k + l.len()..],
                    None => return false,
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_matching() {
        let p = |t: &str| {
            let toks = super::super::tokens::tokens(t);
            Pattern::new("", &super::super::tokens::source_lines(toks)[0].toks)
        };
        assert!(p("a{{x}}b{{y}}c").matches("a1b2c"));
        assert!(p("a{{x}}b{{y}}c").matches("abc"));
        assert!(!p("a{{x}}b{{y}}c").matches("a1c"));
        assert!(!p("ab{{x}}b").matches("ab"));
        assert!(p("{{x}}").matches("anything"));
        assert!(p("  ").matches(""));
        assert!(!p("key: 1").matches("key: 12"));
    }
}
