//! Maps a line of a document rendered from a Handlebars template back to the
//! template line that produced it, so that an error found in the rendered
//! Butane (which is never written anywhere) can name `templates/<name>.hbs`
//! and a line the operator can open.
//!
//! A plain line offset is wrong: a standalone block tag (`{{#if}}`,
//! `{{/each}}`, `{{else}}`, a comment) vanishes with its line, `{{#each}}`
//! repeats its body, `{{#if}}` drops it, a partial inserts another file and
//! an expression may insert several lines. Instead the template, with its
//! partials expanded, is compiled into a small automaton over lines: every
//! template line is a pattern whose `{{…}}` parts are wildcards, a block may
//! be skipped or take one of its branches, an `{{#each}}` body may repeat. The
//! whole rendered document is aligned with that automaton (like a diff,
//! maximising the lines matched and then the literal text matched), so a line
//! written several times in the template (`overwrite: true`) is told apart by
//! its neighbours, and a line that matches a wildcard pattern
//! (`- path: {{json link}}`) loses to one that matches literally. A rendered
//! line whose best alignments all explain it with one template line maps to
//! it; one that several template lines explain equally well is ambiguous; one
//! that only an unexplained gap covers is unmatched.
//!
//! The alignment is quadratic (rendered lines × template lines); a document
//! too large for it falls back to matching the one line against every
//! pattern, which still finds lines that occur once in the template.
use std::collections::BTreeSet;

/// A line of a template file: `name` as registered (`node.bu`,
/// `partials/units`, without `.hbs`) and its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TemplateLine {
    pub template: String,
    pub line: usize,
}

/// Where a rendered line came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// One template line. `chain` starts with the line itself and continues
    /// with the `{{> partial}}` lines that included its template, innermost
    /// first. `column` is the template column when the rendered column lies
    /// in literal text at the start of the line. `inserted` is true when the
    /// rendered line is not the template line's own text but part of several
    /// lines its expression inserted (`{{indent 10 files.kubeadm}}`).
    Line {
        chain: Vec<TemplateLine>,
        column: Option<usize>,
        inserted: bool,
    },
    /// Several template lines explain the rendered line equally well (each
    /// with its chain of including lines), in template order.
    Ambiguous(Vec<Vec<TemplateLine>>),
    /// No template line matches the rendered line.
    Unmatched,
}

/// How deep partials may include partials before the mapping stops expanding.
const MAX_PARTIAL_DEPTH: usize = 8;
/// Alignment matrices above this many cells use the line-by-line fallback.
const MAX_CELLS: usize = 4_000_000;
/// Weight of one line in the alignment; literal characters only break ties
/// between alignments that explain as many lines.
const K: i32 = 4096;
/// Literal characters counted per line (keeps `K` dominant).
const MAX_LITERAL: i32 = 1000;
const NEG: i32 = i32::MIN / 4;

// ---------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, PartialEq)]
enum Kind {
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
enum Block {
    /// Renders one of its branches or nothing (`if`, `unless`, `with`).
    Once,
    /// Renders its first branch any number of times, or another branch
    /// (`each`, and helpers pxebuild does not know).
    Repeat,
    /// Renders nothing where it stands (`{{#*inline}}` partial definitions).
    Hidden,
}

#[derive(Debug, Clone)]
struct Tok {
    kind: Kind,
    /// The text of a `Text` token.
    text: String,
    /// 1-based source line of the token's first character.
    line: usize,
    trim_before: bool,
    trim_after: bool,
}

fn tokens(src: &str) -> Vec<Tok> {
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
fn tag(inner: &str) -> Tok {
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
fn apply_whitespace_control(toks: &mut [Tok]) {
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
struct SourceLine {
    line: usize,
    toks: Vec<Tok>,
}

fn source_lines(toks: Vec<Tok>) -> Vec<SourceLine> {
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

// ---------------------------------------------------------------------------
// Patterns

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(String),
    Wild,
}

#[derive(Debug, Clone)]
struct Pattern {
    pieces: Vec<Piece>,
    /// Characters of partial indentation in front of the template's own text.
    indent: usize,
}

fn nonws(s: &str) -> i32 {
    let n = s.chars().filter(|c| !c.is_whitespace()).count();
    n.min(MAX_LITERAL as usize) as i32
}

impl Pattern {
    fn new(indent: &str, toks: &[Tok]) -> Pattern {
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

    fn has_wild(&self) -> bool {
        self.pieces.contains(&Piece::Wild)
    }

    fn blank(&self) -> bool {
        self.pieces.iter().all(|p| match p {
            Piece::Lit(l) => l.trim().is_empty(),
            Piece::Wild => false,
        })
    }

    fn literal(&self) -> i32 {
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

    fn prefix(&self) -> &str {
        match self.pieces.first() {
            Some(Piece::Lit(l)) => l,
            _ => "",
        }
    }

    fn suffix(&self) -> &str {
        match self.pieces.last() {
            Some(Piece::Lit(l)) if self.pieces.len() > 1 => l,
            _ => "",
        }
    }

    /// Whether `s` is this line with each wildcard standing for any text.
    fn matches(&self, s: &str) -> bool {
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

// ---------------------------------------------------------------------------
// Template tree, expanded partials

enum Item {
    Line(usize),
    Block {
        kind: Block,
        branches: Vec<Vec<Item>>,
    },
}

struct LineInfo {
    pattern: Pattern,
    chain: Vec<TemplateLine>,
}

struct Builder<'a> {
    sources: &'a [(String, String)],
    lines: Vec<LineInfo>,
}

impl Builder<'_> {
    /// The items of template `name`, indented by `indent`, included through
    /// `callers` (innermost first).
    fn items(&mut self, name: &str, indent: &str, callers: &[TemplateLine]) -> Vec<Item> {
        let sources = self.sources;
        let Some((_, src)) = sources.iter().find(|(n, _)| n == name) else {
            return Vec::new();
        };
        let mut stack: Vec<(Block, Vec<Vec<Item>>)> = vec![(Block::Once, vec![Vec::new()])];
        for sl in source_lines(tokens(src)) {
            let here = TemplateLine {
                template: name.to_string(),
                line: sl.line,
            };
            if let Some((lead, kind)) = standalone(&sl.toks) {
                match kind {
                    Kind::Open(block) => stack.push((*block, vec![Vec::new()])),
                    Kind::Else if stack.len() > 1 => {
                        stack.last_mut().expect("not empty").1.push(Vec::new())
                    }
                    Kind::Close if stack.len() > 1 => {
                        let (kind, branches) = stack.pop().expect("not empty");
                        push_item(&mut stack, Item::Block { kind, branches });
                    }
                    Kind::Partial(p) => {
                        let known = sources.iter().any(|(n, _)| n == p);
                        let looping = p == name || callers.iter().any(|c| &c.template == p);
                        let indent = format!("{indent}{lead}");
                        if known && !looping && callers.len() < MAX_PARTIAL_DEPTH {
                            let mut inner = vec![here.clone()];
                            inner.extend_from_slice(callers);
                            for item in self.items(p, &indent, &inner) {
                                push_item(&mut stack, item);
                            }
                        } else {
                            // Unknown text (a partial named by an expression,
                            // or too deep): lines of any shape from this line.
                            let mut chain = vec![here];
                            chain.extend_from_slice(callers);
                            let mut pieces = vec![Piece::Wild];
                            if !indent.is_empty() {
                                pieces.insert(0, Piece::Lit(indent));
                            }
                            self.lines.push(LineInfo {
                                pattern: Pattern { pieces, indent: 0 },
                                chain,
                            });
                            let item = Item::Block {
                                kind: Block::Repeat,
                                branches: vec![vec![Item::Line(self.lines.len() - 1)]],
                            };
                            push_item(&mut stack, item);
                        }
                    }
                    _ => {}
                }
                continue;
            }
            let mut chain = vec![here];
            chain.extend_from_slice(callers);
            self.lines.push(LineInfo {
                pattern: Pattern::new(indent, &sl.toks),
                chain,
            });
            push_item(&mut stack, Item::Line(self.lines.len() - 1));
        }
        // Unclosed blocks (Handlebars refuses them anyway): keep their lines.
        while stack.len() > 1 {
            let (kind, branches) = stack.pop().expect("not empty");
            push_item(&mut stack, Item::Block { kind, branches });
        }
        stack
            .pop()
            .map(|(_, mut b)| b.swap_remove(0))
            .unwrap_or_default()
    }
}

fn push_item(stack: &mut [(Block, Vec<Vec<Item>>)], item: Item) {
    let (_, branches) = stack.last_mut().expect("the root frame stays");
    branches
        .last_mut()
        .expect("a frame has a branch")
        .push(item);
}

/// A line holding only one block tag, comment or partial (and blanks):
/// Handlebars removes it with its line break. Returns the blanks before the
/// tag (a partial's indentation) and the tag.
fn standalone(toks: &[Tok]) -> Option<(&str, &Kind)> {
    let mut found: Option<&Kind> = None;
    let mut lead = "";
    for tok in toks {
        match &tok.kind {
            Kind::Text if tok.text.trim().is_empty() => {
                if found.is_none() {
                    lead = &tok.text;
                }
            }
            Kind::Text | Kind::Expr => return None,
            kind if found.is_none() => found = Some(kind),
            _ => return None,
        }
    }
    found.map(|k| (lead, k))
}

// ---------------------------------------------------------------------------
// The automaton and the alignment

enum Op {
    Line(usize),
    Eps(Vec<usize>),
}

fn compile(items: &[Item], ops: &mut Vec<Op>) {
    for item in items {
        match item {
            Item::Line(l) => ops.push(Op::Line(*l)),
            Item::Block {
                kind: Block::Hidden,
                ..
            } => {}
            Item::Block { kind, branches } => {
                let start = ops.len();
                ops.push(Op::Eps(Vec::new()));
                let mut starts = Vec::new();
                let mut ends = Vec::new();
                for (b, branch) in branches.iter().enumerate() {
                    starts.push(ops.len());
                    compile(branch, ops);
                    ends.push((ops.len(), b == 0 && *kind == Block::Repeat));
                    ops.push(Op::Eps(Vec::new()));
                }
                let end = ops.len();
                let mut first = starts.clone();
                first.push(end);
                ops[start] = Op::Eps(first);
                for (b, (at, repeat)) in ends.into_iter().enumerate() {
                    ops[at] = Op::Eps(if repeat {
                        vec![starts[b], end]
                    } else {
                        vec![end]
                    });
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    /// Line op's pattern matches the rendered line.
    Single(usize),
    /// First line of a multi-line expansion of a line op.
    First(usize),
    /// A line inside it.
    Middle(usize),
    /// Its last line.
    Last(usize),
    /// A rendered line nothing explains.
    Gap,
}

const SINGLE: u8 = 1;
const FIRST: u8 = 2;
const LAST: u8 = 4;

/// A rendered document aligned with the template that produced it.
pub struct LineMap {
    rendered: Vec<String>,
    lines: Vec<LineInfo>,
    /// Per rendered line and template line: SINGLE | FIRST | LAST.
    flags: Vec<u8>,
    /// (from, to, weight) at one rendered position, sorted by `from`.
    eps: Vec<(usize, usize, i32)>,
    /// (from, to, step) consuming one rendered line.
    consume: Vec<(usize, usize, Step)>,
    states: usize,
    /// Best score from the start to (rendered position, state), and from
    /// there to the end; empty when the document is too large.
    fwd: Vec<i32>,
    bwd: Vec<i32>,
    best: i32,
}

impl LineMap {
    /// Aligns `rendered` with template `main` of `sources` (name, text), the
    /// names as Handlebars registers them (`node.bu`, `partials/units`).
    pub fn new(sources: &[(String, String)], main: &str, rendered: &str) -> LineMap {
        LineMap::with_limit(sources, main, rendered, MAX_CELLS)
    }

    fn with_limit(
        sources: &[(String, String)],
        main: &str,
        rendered: &str,
        max_cells: usize,
    ) -> LineMap {
        let mut b = Builder {
            sources,
            lines: Vec::new(),
        };
        let items = b.items(main, "", &[]);
        let mut ops = Vec::new();
        compile(&items, &mut ops);
        let rendered: Vec<String> = split_lines(rendered);
        let lines = b.lines;
        let mut flags = vec![0u8; rendered.len() * lines.len()];
        for (i, r) in rendered.iter().enumerate() {
            for (l, info) in lines.iter().enumerate() {
                let p = &info.pattern;
                let mut f = 0;
                if p.matches(r) {
                    f |= SINGLE;
                }
                if p.has_wild() {
                    if r.starts_with(p.prefix()) {
                        f |= FIRST;
                    }
                    if r.ends_with(p.suffix()) {
                        f |= LAST;
                    }
                }
                flags[i * lines.len() + l] = f;
            }
        }
        // States: one before each op, the end, then one "inside a
        // multi-line expansion" state per line op with a wildcard.
        let end = ops.len();
        let mut states = end + 1;
        let mut eps = Vec::new();
        let mut consume = Vec::new();
        for (j, op) in ops.iter().enumerate() {
            match op {
                Op::Eps(targets) => eps.extend(targets.iter().map(|&t| (j, t, 0))),
                Op::Line(l) => {
                    eps.push((j, j + 1, -K));
                    consume.push((j, j + 1, Step::Single(*l)));
                    if lines[*l].pattern.has_wild() {
                        let m = states;
                        states += 1;
                        consume.push((j, m, Step::First(*l)));
                        consume.push((m, m, Step::Middle(*l)));
                        consume.push((m, j + 1, Step::Last(*l)));
                    }
                }
            }
        }
        for s in 0..=end {
            consume.push((s, s, Step::Gap));
        }
        eps.sort_by_key(|e| e.0);
        let mut map = LineMap {
            rendered,
            lines,
            flags,
            eps,
            consume,
            states,
            fwd: Vec::new(),
            bwd: Vec::new(),
            best: NEG,
        };
        if (map.rendered.len() + 1) * map.states <= max_cells {
            map.align(end);
        }
        map
    }

    /// The rendered line `line` (1-based), if there is one.
    pub fn rendered_line(&self, line: usize) -> Option<&str> {
        self.rendered.get(line.checked_sub(1)?).map(String::as_str)
    }

    fn weight(&self, i: usize, step: Step) -> Option<i32> {
        let n = self.lines.len();
        let flag = |l: usize, f: u8| self.flags[i * n + l] & f != 0;
        let p = |l: usize| &self.lines[l].pattern;
        match step {
            Step::Single(l) if flag(l, SINGLE) => {
                let lit = p(l).literal();
                let base = if lit > 0 { 2 * K } else { K };
                Some(base + lit)
            }
            Step::First(l) if flag(l, FIRST) => Some(evidence(p(l).prefix())),
            Step::Last(l) if flag(l, LAST) => Some(evidence(p(l).suffix())),
            Step::Middle(_) => Some(0),
            Step::Gap => Some(-K),
            _ => None,
        }
    }

    fn align(&mut self, end: usize) {
        let s = self.states;
        let n = self.rendered.len();
        let mut fwd = vec![NEG; (n + 1) * s];
        fwd[0] = 0;
        close_forward(&mut fwd[..s], &self.eps);
        for i in 0..n {
            let (done, next) = fwd.split_at_mut((i + 1) * s);
            let row = &done[i * s..];
            let next = &mut next[..s];
            for &(from, to, step) in &self.consume {
                if row[from] == NEG {
                    continue;
                }
                if let Some(w) = self.weight(i, step) {
                    next[to] = next[to].max(row[from] + w);
                }
            }
            close_forward(next, &self.eps);
        }
        let mut bwd = vec![NEG; (n + 1) * s];
        bwd[n * s + end] = 0;
        close_backward(&mut bwd[n * s..], &self.eps);
        for i in (0..n).rev() {
            let (head, tail) = bwd.split_at_mut((i + 1) * s);
            let row = &mut head[i * s..];
            let next = &tail[..s];
            for &(from, to, step) in &self.consume {
                if next[to] == NEG {
                    continue;
                }
                if let Some(w) = self.weight(i, step) {
                    row[from] = row[from].max(w + next[to]);
                }
            }
            close_backward(row, &self.eps);
        }
        self.best = fwd[n * s + end];
        self.fwd = fwd;
        self.bwd = bwd;
    }

    /// Where rendered line `line` (1-based) came from; `column` (1-based, in
    /// the rendered line) is carried over to the template when it lies in
    /// literal text at the line's start.
    pub fn locate(&self, line: usize, column: Option<usize>) -> Origin {
        let Some(i) = line.checked_sub(1).filter(|&i| i < self.rendered.len()) else {
            return Origin::Unmatched;
        };
        let steps: Vec<Step> = if self.fwd.is_empty() {
            // Too large to align: every pattern the line matches.
            (0..self.lines.len())
                .filter(|&l| self.flags[i * self.lines.len() + l] & SINGLE != 0)
                .map(Step::Single)
                .collect()
        } else {
            let s = self.states;
            let mut best = Vec::new();
            for &(from, to, step) in &self.consume {
                let (f, b) = (self.fwd[i * s + from], self.bwd[(i + 1) * s + to]);
                if f == NEG || b == NEG {
                    continue;
                }
                if let Some(w) = self.weight(i, step) {
                    if f + w + b == self.best {
                        best.push(step);
                    }
                }
            }
            best
        };
        let mut chains: BTreeSet<Vec<TemplateLine>> = BTreeSet::new();
        let mut single = None;
        let mut first = None;
        for step in &steps {
            let l = match *step {
                Step::Single(l) => {
                    single = Some(l);
                    l
                }
                Step::First(l) => {
                    first = Some(l);
                    l
                }
                Step::Middle(l) | Step::Last(l) => l,
                Step::Gap => continue,
            };
            chains.insert(self.lines[l].chain.clone());
        }
        match chains.len() {
            0 => Origin::Unmatched,
            1 => {
                let chain = chains.into_iter().next().expect("one chain");
                let lead = single.or(first).and_then(|l| {
                    let p = &self.lines[l].pattern;
                    let c = column?;
                    let lit = p.prefix().chars().count();
                    (c > p.indent && c <= lit + 1).then_some(c - p.indent)
                });
                let inserted = single.is_none() && (first.is_none() || lead.is_none());
                Origin::Line {
                    chain,
                    column: lead,
                    inserted,
                }
            }
            _ => Origin::Ambiguous(chains.into_iter().collect()),
        }
    }
}

/// Weight of the literal text a multi-line expansion's first or last line
/// matched.
fn evidence(lit: &str) -> i32 {
    match nonws(lit) {
        0 => 0,
        n => K + n,
    }
}

/// Spreads a row's scores along the ε-edges (skips, block entries, loops).
fn close_forward(row: &mut [i32], eps: &[(usize, usize, i32)]) {
    for _ in 0..64 {
        let mut changed = false;
        for &(from, to, w) in eps {
            if row[from] != NEG && row[from] + w > row[to] {
                row[to] = row[from] + w;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

fn close_backward(row: &mut [i32], eps: &[(usize, usize, i32)]) {
    for _ in 0..64 {
        let mut changed = false;
        for &(from, to, w) in eps.iter().rev() {
            if row[to] != NEG && row[to] + w > row[from] {
                row[from] = row[to] + w;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

/// Lines as YAML numbers them: a final line break ends the last line.
fn split_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .collect();
    if text.ends_with('\n') || text.is_empty() {
        lines.pop();
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(template: &str, line: usize) -> TemplateLine {
        TemplateLine {
            template: template.into(),
            line,
        }
    }

    fn one(template: &str, line: usize) -> Vec<TemplateLine> {
        vec![at(template, line)]
    }

    fn map(templates: &[(&str, &str)], rendered: &str) -> LineMap {
        let sources: Vec<(String, String)> = templates
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        LineMap::new(&sources, templates[0].0, rendered)
    }

    fn line_of(m: &LineMap, rendered: usize) -> Vec<TemplateLine> {
        match m.locate(rendered, None) {
            Origin::Line { chain, .. } => chain,
            other => panic!("rendered line {rendered}: {other:?}"),
        }
    }

    #[test]
    fn literal_lines_map_through_removed_block_lines() {
        let t = "a: 1\n{{#if x}}\nb: 2\n{{/if}}\nc: 3\n";
        let m = map(&[("t", t)], "a: 1\nb: 2\nc: 3\n");
        assert_eq!(line_of(&m, 1), one("t", 1));
        assert_eq!(line_of(&m, 2), one("t", 3));
        assert_eq!(line_of(&m, 3), one("t", 5));
        let m = map(&[("t", t)], "a: 1\nc: 3\n");
        assert_eq!(line_of(&m, 2), one("t", 5));
    }

    #[test]
    fn expressions_are_wildcards_and_columns_carry_over_in_literal_text() {
        let t = "# for {{name}}\nname: {{json name}}\nmode: \"rw\"\n";
        let m = map(&[("t", t)], "# for cp1\nname: \"cp1\"\nmode: \"rw\"\n");
        assert_eq!(line_of(&m, 2), one("t", 2));
        assert_eq!(
            m.locate(3, Some(7)),
            Origin::Line {
                chain: one("t", 3),
                column: Some(7),
                inserted: false
            }
        );
        // In text an expression produced, the template column is unknown.
        assert_eq!(
            m.locate(1, Some(8)),
            Origin::Line {
                chain: one("t", 1),
                column: None,
                inserted: false
            }
        );
    }

    #[test]
    fn each_bodies_repeat_and_identical_lines_are_told_apart_by_neighbours() {
        let t = "\
links:
{{#each sysexts}}
  - path: {{json link}}
    target: {{json path}}
    overwrite: true
{{/each}}
{{#if kured}}
  - path: /etc/systemd/system/locksmithd.service
    target: /dev/null
    overwrite: true
{{/if}}
files:
  - path: /a
    overwrite: true
";
        let rendered = "\
links:
  - path: \"/etc/extensions/a.raw\"
    target: \"/opt/a.raw\"
    overwrite: true
  - path: \"/etc/extensions/b.raw\"
    target: \"/opt/b.raw\"
    overwrite: true
  - path: /etc/systemd/system/locksmithd.service
    target: /dev/null
    overwrite: true
files:
  - path: /a
    overwrite: true
";
        let m = map(&[("t", t)], rendered);
        assert_eq!(line_of(&m, 4), one("t", 5));
        assert_eq!(line_of(&m, 6), one("t", 4));
        assert_eq!(line_of(&m, 7), one("t", 5));
        // The literal line wins over the wildcard pattern it also matches.
        assert_eq!(line_of(&m, 9), one("t", 9));
        assert_eq!(line_of(&m, 10), one("t", 10));
        assert_eq!(line_of(&m, 13), one("t", 14));
    }

    #[test]
    fn else_branches_and_inline_blocks() {
        let t = "\
{{#if static}}
x: {{ip}}
{{else}}
x: dhcp
{{/if}}
d: kubeadm {{#if init}}init{{else}}join{{/if}} for {{name}}
{{! a comment line }}
e: 1
";
        let m = map(&[("t", t)], "x: dhcp\nd: kubeadm join for cp2\ne: 1\n");
        assert_eq!(line_of(&m, 1), one("t", 4));
        assert_eq!(line_of(&m, 2), one("t", 6));
        assert_eq!(line_of(&m, 3), one("t", 8));
    }

    #[test]
    fn partials_report_their_own_line_and_the_including_line() {
        let main = "a:\n{{#each xs}}\n  {{> item}}\n{{/each}}\nz: 1\n";
        let item = "- name: {{name}}\n  bad: key\n";
        let m = map(
            &[("main", main), ("item", item)],
            "a:\n  - name: x\n    bad: key\n  - name: y\n    bad: key\nz: 1\n",
        );
        assert_eq!(line_of(&m, 5), vec![at("item", 2), at("main", 3)]);
        assert_eq!(line_of(&m, 6), one("main", 5));
        // The partial's indentation is not part of the template column.
        assert_eq!(
            m.locate(3, Some(5)),
            Origin::Line {
                chain: vec![at("item", 2), at("main", 3)],
                column: Some(3),
                inserted: false
            }
        );
    }

    #[test]
    fn lines_inserted_by_an_expression_map_to_its_line() {
        let t = "a:\n  inline: |\n    {{indent 4 text}}\nb: 1\n";
        let m = map(
            &[("t", t)],
            "a:\n  inline: |\n    one\n    two\n    three\nb: 1\n",
        );
        assert_eq!(line_of(&m, 6), one("t", 4));
        match m.locate(4, None) {
            Origin::Line {
                chain, inserted, ..
            } => {
                assert_eq!(chain, one("t", 3));
                assert!(inserted);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_line_no_template_line_matches_is_unmatched() {
        let t = "a: 1\nb: 2\n";
        let m = map(&[("t", t)], "a: 1\nzzz\nb: 2\n");
        assert_eq!(m.locate(2, None), Origin::Unmatched);
        assert_eq!(m.locate(9, None), Origin::Unmatched);
        assert_eq!(m.rendered_line(2), Some("zzz"));
    }

    #[test]
    fn a_line_two_template_lines_explain_equally_is_ambiguous() {
        // Either optional block may have produced the one `b: 2`.
        let t = "a: 1\n{{#if x}}\nb: 2\n{{/if}}\n{{#if y}}\nb: 2\n{{/if}}\nc: 3\n";
        let m = map(&[("t", t)], "a: 1\nb: 2\nc: 3\n");
        assert_eq!(
            m.locate(2, None),
            Origin::Ambiguous(vec![one("t", 3), one("t", 6)])
        );
    }

    #[test]
    fn whitespace_control_and_escapes() {
        let t = "a: {{~x~}}\n  b\n\\{{literal}}: 1\n";
        let m = map(&[("t", t)], "a:1b\n{{literal}}: 1\n");
        assert_eq!(line_of(&m, 2), one("t", 3));
    }

    #[test]
    fn nested_loops_and_unknown_partials() {
        let t = "\
units:
{{#each units}}
  - name: {{name}}
    dropins:
{{#each dropins}}
      - name: {{this}}
{{/each}}
{{/each}}
{{> missing}}
end: 1
";
        let rendered = "\
units:
  - name: a
    dropins:
      - name: x
      - name: y
  - name: b
    dropins:
      - name: z
whatever the missing partial wrote
end: 1
";
        let m = map(&[("t", t)], rendered);
        assert_eq!(line_of(&m, 5), one("t", 6));
        assert_eq!(line_of(&m, 6), one("t", 3));
        assert_eq!(line_of(&m, 8), one("t", 6));
        // What a partial that is not there wrote: the line including it.
        assert_eq!(line_of(&m, 9), one("t", 9));
        assert_eq!(line_of(&m, 10), one("t", 10));
    }

    #[test]
    fn too_large_documents_map_lines_that_occur_once() {
        let t = "a: 1\n{{#each xs}}\n- x: {{this}}\n  same: 1\n{{/each}}\nz: 1\n";
        let rendered = "a: 1\n- x: 1\n  same: 1\n- x: 2\n  same: 1\nz: 1\n";
        let sources = vec![("t".to_string(), t.to_string())];
        let m = LineMap::with_limit(&sources, "t", rendered, 10);
        assert!(m.fwd.is_empty(), "no alignment");
        assert_eq!(line_of(&m, 5), one("t", 4));
        assert_eq!(line_of(&m, 6), one("t", 6));
    }

    #[test]
    fn large_documents_align() {
        // 2,000 lines inserted by one expression, 200 optional lines after.
        let mut t = String::from("a:\n  text: |\n    {{indent 4 text}}\n");
        for n in 0..200 {
            t.push_str(&format!("{{{{#if x}}}}\nk{n}: {{{{v}}}}\n{{{{/if}}}}\n"));
        }
        let mut rendered = String::from("a:\n  text: |\n");
        for n in 0..2000 {
            rendered.push_str(&format!("    line {n}: x\n"));
        }
        for n in (0..200).step_by(2) {
            rendered.push_str(&format!("k{n}: 1\n"));
        }
        let m = map(&[("t", &t)], &rendered);
        assert!(!m.fwd.is_empty(), "aligned, not the fallback");
        // k100 is the 51st line after the inserted ones.
        assert_eq!(line_of(&m, 2 + 2000 + 51), one("t", 3 + 3 * 100 + 2));
        for line in [3, 1000, 2002] {
            assert_eq!(
                m.locate(line, None),
                Origin::Line {
                    chain: one("t", 3),
                    column: None,
                    inserted: true
                },
                "line {line}"
            );
        }
    }

    #[test]
    fn pattern_matching() {
        let p = |t: &str| {
            let toks = tokens(t);
            Pattern::new("", &source_lines(toks)[0].toks)
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
