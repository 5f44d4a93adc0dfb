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
//!
//! The stages, one file each: `tokens` (a template's `{{…}}` tags and lines),
//! `pattern` (a template line as a pattern with wildcards), `tree` (the
//! template with its partials expanded, as nested blocks of lines) and
//! `align` (the automaton, the alignment and the answers of [`LineMap`]).
//! Used by `render::ignition` to name template lines in Butane errors.
mod align;
mod pattern;
mod tokens;
mod tree;

pub use align::LineMap;

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
}
