//! The status page of the admin listener (`serve::admin`): one HTML table,
//! rendered on the server from the same per-node statuses as
//! `serve --status` (`log::NodeStatus`), one row per node and one column per
//! boot stage with the time since the node's first request. It refreshes
//! itself with `<meta http-equiv="refresh">`: no script at all, so the page
//! can be served under a Content-Security-Policy that forbids scripts. Node
//! names, paths and beacon details come from the network (a detail is the
//! text a node sent): everything is HTML-escaped.
use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::serve::log::NodeStatus;
use crate::serve::stage::Stage;

/// Seconds between the page's own reloads.
pub(crate) const REFRESH_SECS: u32 = 5;

/// `text` with the five characters HTML gives a meaning replaced, so it is
/// text in an element and in a quoted attribute alike.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Time since the first request, as the cells show it: `+4.2 s`,
/// `+3 min 07 s`, `+1 h 05 min`.
pub(crate) fn elapsed(ms: i64) -> String {
    let ms = ms.max(0);
    let secs = ms / 1000;
    if secs < 60 {
        format!("+{}.{} s", secs, (ms % 1000) / 100)
    } else if secs < 3600 {
        format!("+{} min {:02} s", secs / 60, secs % 60)
    } else {
        format!("+{} h {:02} min", secs / 3600, (secs % 3600) / 60)
    }
}

/// The time of day of a log timestamp (`…T21:50:00.123Z` → `21:50:00`).
fn clock_time(at: &str) -> &str {
    at.get(11..19).unwrap_or(at)
}

const STYLE: &str = "\
body{font-family:system-ui,sans-serif;font-size:.9rem;margin:1rem;color:#111;background:#fff}\
table{border-collapse:collapse;font-variant-numeric:tabular-nums}\
caption{text-align:left;padding:.3rem 0}\
th,td{border:1px solid #bbb;padding:.3rem .45rem;text-align:left;vertical-align:top;white-space:nowrap}\
thead th{background:#eee}\
td.none{color:#767676}\
td.reached{background:#e7f4e4}\
td.file{white-space:normal;overflow-wrap:anywhere;max-width:10rem}\
small{color:#444;white-space:normal;display:inline-block;max-width:22rem;overflow-wrap:anywhere}";

/// The whole page: `nodes` (the manifest's nodes included, seen or not) as of
/// `now_ms`, titled with the tree being served.
pub(crate) fn render(nodes: &BTreeMap<String, NodeStatus>, tree: &str, now_ms: i64) -> String {
    let now = crate::clock::rfc3339_ms(now_ms);
    let seen = nodes.values().filter(|s| s.first_seen().is_some()).count();
    let joined = nodes
        .values()
        .filter(|s| s.stages.contains_key(&Stage::Kubeadm))
        .count();
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\n\
         <title>pxebuild serve: {tree}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>pxebuild serve: {tree}</h1>\n\
         <p id=\"summary\">{seen} of {total} nodes seen, {joined} through kubeadm. \
         Updated <time datetime=\"{now}\">{clock} UTC</time>; this page reloads every \
         {REFRESH_SECS} s (the same data: <a href=\"/status.json\">status.json</a>).</p>\n",
        tree = escape(tree),
        total = nodes.len(),
        clock = clock_time(&now),
    );
    page.push_str(
        "<table>\n<caption>Boot stages per node, as time since the node's first request \
         (DHCP done: usually its loader over TFTP)</caption>\n<thead>\n<tr><th scope=\"col\">Node</th>",
    );
    for stage in Stage::ALL {
        let _ = write!(page, "<th scope=\"col\">{}</th>", stage.title());
    }
    page.push_str(
        "<th scope=\"col\">Last beacon</th><th scope=\"col\">Last file</th></tr>\n</thead>\n<tbody>\n",
    );
    for (name, status) in nodes {
        row(&mut page, name, status);
    }
    page.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    page
}

fn row(page: &mut String, name: &str, status: &NodeStatus) {
    let name = escape(name);
    let _ = write!(
        page,
        "<tr data-node=\"{name}\"><th scope=\"row\">{name}</th>"
    );
    for stage in Stage::ALL {
        let reached = status.stages.get(&stage);
        match (reached, status.elapsed_ms(stage)) {
            (Some(at), Some(ms)) => {
                let shown = if stage == Stage::Dhcp {
                    clock_time(at).to_string()
                } else {
                    elapsed(ms)
                };
                let _ = write!(
                    page,
                    "<td class=\"reached\" data-stage=\"{}\" data-elapsed-ms=\"{ms}\">\
                     <time datetime=\"{at}\" title=\"{at}\">{shown}</time></td>",
                    stage.name(),
                    at = escape(at),
                    shown = escape(&shown),
                );
            }
            _ => {
                let _ = write!(
                    page,
                    "<td class=\"none\" data-stage=\"{}\">&ndash;</td>",
                    stage.name()
                );
            }
        }
    }
    match &status.milestone {
        Some((milestone, at)) => {
            let _ = write!(
                page,
                "<td class=\"beacon\">{}<br><time datetime=\"{at}\">{}</time>",
                escape(milestone),
                escape(clock_time(at)),
                at = escape(at),
            );
            if let Some(detail) = &status.milestone_detail {
                let _ = write!(page, "<br><small>{}</small>", escape(detail));
            }
            page.push_str("</td>");
        }
        None => page.push_str("<td class=\"none\">&ndash;</td>"),
    }
    match &status.last_fetch {
        Some((path, at)) => {
            let _ = write!(
                page,
                "<td class=\"file\">{}<br><time datetime=\"{at}\">{}</time></td>",
                escape(&crate::layout::redact(path)),
                escape(clock_time(at)),
                at = escape(at),
            );
        }
        None => page.push_str("<td class=\"none\">&ndash;</td>"),
    }
    page.push_str("</tr>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::log::node_status;

    const LOG: &str = "\
2026-01-01T00:00:01.000Z tftp 10.0.0.11:1 node=cp1 path=tftp/lpxelinux.0 bytes=1 ms=1 result=ok
2026-01-01T00:00:01.500Z tftp 10.0.0.11:1 node=cp1 path=tftp/pxelinux.cfg/01-52-54-00-00-00-11 bytes=1 ms=1 result=ok
2026-01-01T00:00:03.000Z http 10.0.0.11:2 node=cp1 path=http/flatcar/1/flatcar_production_pxe.vmlinuz bytes=1 ms=1 result=ok
2026-01-01T00:00:04.000Z http 10.0.0.11:2 node=cp1 path=http/flatcar/1/flatcar_production_pxe_image.cpio.gz bytes=1 ms=1 result=ok
2026-01-01T00:01:10.000Z http 10.0.0.11:2 node=cp1 path=http/ignition/cp1-x/install.ign bytes=1 ms=1 result=ok
2026-01-01T00:05:00.000Z http 10.0.0.11:2 node=cp1 milestone=install-done status=204 result=ok
2026-01-01T01:10:00.000Z http 10.0.0.11:2 node=cp1 milestone=kubeadm-done status=204 result=ok
";

    /// The `data-stage` cells of a node's row that carry a time, in page order.
    fn reached(page: &str, node: &str) -> Vec<(String, i64)> {
        let start = page.find(&format!("<tr data-node=\"{node}\">")).unwrap();
        let row = &page[start..start + page[start..].find("</tr>").unwrap()];
        row.split("data-stage=\"")
            .skip(1)
            .filter_map(|cell| {
                let (stage, rest) = cell.split_once('"')?;
                let ms = rest
                    .strip_prefix(" data-elapsed-ms=\"")?
                    .split('"')
                    .next()?;
                Some((stage.to_string(), ms.parse().ok()?))
            })
            .collect()
    }

    #[test]
    fn a_row_shows_the_stages_reached_in_order_with_elapsed_times() {
        let mut nodes = node_status(LOG);
        nodes.entry("w1".into()).or_default();
        let page = render(&nodes, "dist", 0);
        assert_eq!(
            reached(&page, "cp1"),
            [
                ("dhcp".to_string(), 0),
                ("loader".into(), 0),
                ("config".into(), 500),
                ("kernel".into(), 2000),
                ("initrd".into(), 3000),
                ("ignition".into(), 69_000),
                ("install".into(), 299_000),
                ("kubeadm".into(), 4_199_000),
            ]
        );
        assert!(page.contains(">+4 min 59 s</time>"), "{page}");
        assert!(page.contains(">+1 h 09 min</time>"), "{page}");
        assert!(
            page.contains(">00:00:01</time>"),
            "the first request's clock time"
        );
        // A manifest node never seen has a row with no stage reached.
        assert_eq!(reached(&page, "w1"), []);
        assert!(
            page.contains("1 of 2 nodes seen, 1 through kubeadm"),
            "{page}"
        );
        assert!(page.contains("<meta http-equiv=\"refresh\" content=\"5\">"));
        assert!(!page.contains("<script"), "no script: the CSP forbids it");
    }

    #[test]
    fn names_details_and_paths_are_escaped() {
        let evil = "<script>alert(\"x\")</script>&'";
        let log = format!(
            "2026-01-01T00:00:01.000Z http 10.0.0.11:2 node={evil} milestone=install-disk-missing \
             detail={evil} status=204 result=ok\n\
             2026-01-01T00:00:02.000Z http 10.0.0.11:2 node={evil} path=http/{evil} bytes=1 ms=1 result=ok\n"
        );
        let page = render(&node_status(&log), "<dist>", 0);
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("alert(\""), "{page}");
        let escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;";
        assert!(
            page.contains(&format!("<tr data-node=\"{escaped}\">")),
            "{page}"
        );
        assert!(
            page.contains(&format!("<small>{escaped}</small>")),
            "{page}"
        );
        assert!(page.contains(&format!("http/{escaped}<br><time")), "{page}");
        assert!(page.contains("<title>pxebuild serve: &lt;dist&gt;</title>"));
    }

    #[test]
    fn the_last_file_hides_the_random_part_of_ignition_paths() {
        let log = "2026-01-01T00:00:01.000Z http 10.0.0.11:2 node=cp1 \
                   path=http/ignition/cp1-9f2c41d0/node.ign bytes=1 ms=1 result=ok\n";
        let page = render(&node_status(log), "dist", 0);
        assert!(
            page.contains("http/ignition/cp1-&lt;id&gt;/node.ign<br>"),
            "{page}"
        );
        assert!(!page.contains("9f2c41d0"), "{page}");
    }

    #[test]
    fn elapsed_times_read_at_every_scale() {
        assert_eq!(elapsed(0), "+0.0 s");
        assert_eq!(elapsed(4_250), "+4.2 s");
        assert_eq!(elapsed(187_000), "+3 min 07 s");
        assert_eq!(elapsed(3_900_000), "+1 h 05 min");
        assert_eq!(elapsed(-5), "+0.0 s");
    }
}
