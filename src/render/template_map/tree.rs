//! The template as a tree: its lines (each a pattern with the chain of
//! partial lines that included it) inside nested blocks, partials expanded
//! with the indentation Handlebars gives them.
use super::pattern::{Pattern, Piece};
use super::tokens::{source_lines, tokens, Block, Kind, Tok};
use super::{TemplateLine, MAX_PARTIAL_DEPTH};

pub(super) enum Item {
    Line(usize),
    Block {
        kind: Block,
        branches: Vec<Vec<Item>>,
    },
}

pub(super) struct LineInfo {
    pub(super) pattern: Pattern,
    pub(super) chain: Vec<TemplateLine>,
}

pub(super) struct Builder<'a> {
    pub(super) sources: &'a [(String, String)],
    pub(super) lines: Vec<LineInfo>,
}

impl Builder<'_> {
    /// The items of template `name`, indented by `indent`, included through
    /// `callers` (innermost first).
    pub(super) fn items(
        &mut self,
        name: &str,
        indent: &str,
        callers: &[TemplateLine],
    ) -> Vec<Item> {
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

pub(super) fn push_item(stack: &mut [(Block, Vec<Vec<Item>>)], item: Item) {
    let (_, branches) = stack.last_mut().expect("the root frame stays");
    branches
        .last_mut()
        .expect("a frame has a branch")
        .push(item);
}

/// A line holding only one block tag, comment or partial (and blanks):
/// Handlebars removes it with its line break. Returns the blanks before the
/// tag (a partial's indentation) and the tag.
pub(super) fn standalone(toks: &[Tok]) -> Option<(&str, &Kind)> {
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
