//! Tokens of a Handlebars template: text and the kinds of `{{…}}` tag, with
//! whitespace control applied, then grouped into the template's source lines.

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    Text,
    /// `{{x}}`, `{{{x}}}`, `{{helper a b}}`: output of unknown shape.
    Expr,
    /// `{{! … }}`, `{{!-- … --}}`, decorators: no output.
    Comment,
    /// `{{#x}}`, `{{^x}}`, `{{#> partial}}`.
    Open(Block),
    /// `{{else}}`, `{{else if …}}`, `{{^}}`.
    Else,
    /// `{{/x}}`.
    Close,
    /// `{{> name}}`.
    Partial(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Block {
    /// Renders one of its branches or nothing (`if`, `unless`, `with`).
    Once,
    /// Renders its first branch any number of times, or another branch
    /// (`each`, and helpers pxebuild does not know).
    Repeat,
    /// Renders nothing where it stands (`{{#*inline}}` partial definitions).
    Hidden,
}

#[derive(Debug, Clone)]
pub(super) struct Tok {
    pub(super) kind: Kind,
    /// The text of a `Text` token.
    pub(super) text: String,
    /// 1-based source line of the token's first character.
    pub(super) line: usize,
    pub(super) trim_before: bool,
    pub(super) trim_after: bool,
}

pub(super) fn tokens(src: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut text_line = 1;
    let mut line = 1;
    let mut i = 0;
    let push_text = |out: &mut Vec<Tok>, text: &mut String, text_line: usize| {
        if !text.is_empty() {
            out.push(Tok {
                kind: Kind::Text,
                text: std::mem::take(text),
                line: text_line,
                trim_before: false,
                trim_after: false,
            });
        }
    };
    while let Some(p) = src[i..].find("{{") {
        let at = i + p;
        if at > 0 && src.as_bytes()[at - 1] == b'\\' {
            // `\{{` is a literal `{{`.
            text.push_str(&src[i..at - 1]);
            text.push_str("{{");
            line += src[i..at].matches('\n').count();
            i = at + 2;
            continue;
        }
        text.push_str(&src[i..at]);
        line += src[i..at].matches('\n').count();
        let rest = &src[at..];
        let (open, close) = if rest.starts_with("{{!--") {
            (5, "--}}")
        } else if rest.starts_with("{{{{") {
            (4, "}}}}")
        } else if rest.starts_with("{{{") {
            (3, "}}}")
        } else {
            (2, "}}")
        };
        let Some(len) = rest[open..].find(close) else {
            // Unterminated: Handlebars refuses it; the rest is text here.
            text.push_str(rest);
            i = src.len();
            break;
        };
        push_text(&mut out, &mut text, text_line);
        let inner = &rest[open..open + len];
        let mut tok = tag(if open == 5 { "!" } else { inner });
        tok.line = line;
        out.push(tok);
        let end = at + open + len + close.len();
        line += src[at..end].matches('\n').count();
        text_line = line;
        i = end;
    }
    text.push_str(&src[i..]);
    push_text(&mut out, &mut text, text_line);
    apply_whitespace_control(&mut out);
    out
}

/// Classifies the inside of a `{{…}}` tag.
pub(super) fn tag(inner: &str) -> Tok {
    let mut s = inner;
    let trim_before = s.starts_with('~');
    if trim_before {
        s = &s[1..];
    }
    let trim_after = s.ends_with('~');
    if trim_after {
        s = &s[..s.len() - 1];
    }
    let s = s.trim();
    let first_word = |t: &str| {
        t.trim_start()
            .split(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("")
            .trim_matches(|c| c == '"' || c == '\'')
            .to_string()
    };
    let kind = match s.chars().next() {
        Some('!') | Some('*') => Kind::Comment,
        Some('#') => {
            let rest = &s[1..];
            if rest.starts_with('>') {
                Kind::Open(Block::Once)
            } else if rest.starts_with('*') {
                Kind::Open(Block::Hidden)
            } else {
                match first_word(rest).as_str() {
                    "if" | "unless" | "with" => Kind::Open(Block::Once),
                    _ => Kind::Open(Block::Repeat),
                }
            }
        }
        Some('^') if s[1..].trim().is_empty() => Kind::Else,
        Some('^') => Kind::Open(Block::Once),
        Some('/') => Kind::Close,
        Some('>') => Kind::Partial(first_word(&s[1..])),
        _ if s == "else" || s.starts_with("else ") => Kind::Else,
        _ => Kind::Expr,
    };
    Tok {
        kind,
        text: String::new(),
        line: 0,
        trim_before,
        trim_after,
    }
}

/// `{{~` and `~}}` remove the whitespace (line breaks included) beside a tag.
pub(super) fn apply_whitespace_control(toks: &mut [Tok]) {
    for k in 0..toks.len() {
        if toks[k].kind == Kind::Text {
            continue;
        }
        if toks[k].trim_before && k > 0 && toks[k - 1].kind == Kind::Text {
            let t = &mut toks[k - 1].text;
            t.truncate(t.trim_end().len());
        }
        if toks[k].trim_after && k + 1 < toks.len() && toks[k + 1].kind == Kind::Text {
            let next = &mut toks[k + 1];
            let kept = next.text.trim_start().len();
            let cut = next.text.len() - kept;
            next.line += next.text[..cut].matches('\n').count();
            next.text.drain(..cut);
        }
    }
}

/// A template line: its 1-based number and its tokens (no line breaks in
/// text tokens).
pub(super) struct SourceLine {
    pub(super) line: usize,
    pub(super) toks: Vec<Tok>,
}

pub(super) fn source_lines(toks: Vec<Tok>) -> Vec<SourceLine> {
    let mut out = Vec::new();
    let mut cur: Vec<Tok> = Vec::new();
    let mut start: Option<usize> = None;
    for tok in toks {
        if tok.kind != Kind::Text {
            start.get_or_insert(tok.line);
            cur.push(tok);
            continue;
        }
        let mut pieces = tok.text.split('\n').peekable();
        let mut n = tok.line;
        while let Some(piece) = pieces.next() {
            let last = pieces.peek().is_none();
            let piece = if last {
                piece
            } else {
                piece.strip_suffix('\r').unwrap_or(piece)
            };
            if !piece.is_empty() {
                start.get_or_insert(n);
                cur.push(Tok {
                    text: piece.to_string(),
                    line: n,
                    ..tok.clone()
                });
            }
            if !last {
                out.push(SourceLine {
                    line: start.take().unwrap_or(n),
                    toks: std::mem::take(&mut cur),
                });
                n += 1;
            }
        }
    }
    if !cur.is_empty() {
        out.push(SourceLine {
            line: start.unwrap_or(1),
            toks: cur,
        });
    }
    out
}
