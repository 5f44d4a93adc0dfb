//! The template tree compiled into an automaton over lines, the rendered
//! document aligned with it (best score from the start and to the end of
//! every state), and the answer for one rendered line.
use std::collections::BTreeSet;

use super::pattern::nonws;
use super::tokens::Block;
use super::tree::{Builder, Item, LineInfo};
use super::{Origin, TemplateLine, K, MAX_CELLS, NEG};

pub(super) enum Op {
    Line(usize),
    Eps(Vec<usize>),
}

pub(super) fn compile(items: &[Item], ops: &mut Vec<Op>) {
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
pub(super) enum Step {
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

pub(super) const SINGLE: u8 = 1;
pub(super) const FIRST: u8 = 2;
pub(super) const LAST: u8 = 4;

/// A rendered document aligned with the template that produced it.
pub struct LineMap {
    pub(super) rendered: Vec<String>,
    pub(super) lines: Vec<LineInfo>,
    /// Per rendered line and template line: SINGLE | FIRST | LAST.
    pub(super) flags: Vec<u8>,
    /// (from, to, weight) at one rendered position, sorted by `from`.
    pub(super) eps: Vec<(usize, usize, i32)>,
    /// (from, to, step) consuming one rendered line.
    pub(super) consume: Vec<(usize, usize, Step)>,
    pub(super) states: usize,
    /// Best score from the start to (rendered position, state), and from
    /// there to the end; empty when the document is too large.
    pub(super) fwd: Vec<i32>,
    pub(super) bwd: Vec<i32>,
    pub(super) best: i32,
}

impl LineMap {
    /// Aligns `rendered` with template `main` of `sources` (name, text), the
    /// names as Handlebars registers them (`node.bu`, `partials/units`).
    pub fn new(sources: &[(String, String)], main: &str, rendered: &str) -> LineMap {
        LineMap::with_limit(sources, main, rendered, MAX_CELLS)
    }

    pub(super) fn with_limit(
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

    pub(super) fn weight(&self, i: usize, step: Step) -> Option<i32> {
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

    pub(super) fn align(&mut self, end: usize) {
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
pub(super) fn evidence(lit: &str) -> i32 {
    match nonws(lit) {
        0 => 0,
        n => K + n,
    }
}

/// Spreads a row's scores along the ε-edges (skips, block entries, loops).
pub(super) fn close_forward(row: &mut [i32], eps: &[(usize, usize, i32)]) {
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

pub(super) fn close_backward(row: &mut [i32], eps: &[(usize, usize, i32)]) {
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
pub(super) fn split_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .collect();
    if text.ends_with('\n') || text.is_empty() {
        lines.pop();
    }
    lines
}
