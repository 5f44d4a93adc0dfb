//! The admin listener (`serve --admin`, default 127.0.0.1:9080): a read-only
//! status page for people watching a rack come up, on an address and port of
//! its own, never the nodes' HTTP port. It answers `GET`/`HEAD` of `/` (the
//! page, `serve::page`) and `/status.json` (the `serve --status --format json`
//! document), `404` for every other path and `405` for other methods. Requests
//! are read with the node server's head parser and limits
//! (`http::request`), and answered with its response code; they are not
//! written to the transfer log, which is the nodes' timeline.
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::http::conn;
use super::http::request::{self, Request};
use super::http::response::{self, Head};
use super::{log, page, Shared};

/// The default address of the admin listener.
pub(crate) const DEFAULT: &str = "127.0.0.1:9080";
/// Connections open at once; more get 503 (a few browsers and scripts, not a rack).
const MAX_CONNECTIONS: usize = 32;

/// `--admin`'s value: where to listen, or nowhere (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

/// Parses `--admin`: an address and port, or `off`.
pub(crate) fn parse_flag(text: &str) -> Result<Listen, String> {
    if text == "off" {
        return Ok(Listen(None));
    }
    text.parse().map(|addr| Listen(Some(addr))).map_err(|_| {
        format!("{text:?} is not ADDR:PORT (e.g. 127.0.0.1:9080, [::1]:9080) or `off`")
    })
}

pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
}

/// Accepts connections until the listener is shut down.
pub(crate) fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if shared.shutdown.load(Ordering::SeqCst) {
            break;
        }
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(err) => {
                crate::warn!("admin: accept: {err}");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if open.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = response::simple(&mut stream, 503, false, false, &[("Retry-After", "1")]);
            continue;
        }
        open.fetch_add(1, Ordering::SeqCst);
        let (shared, counter) = (shared.clone(), open.clone());
        let spawned = thread::Builder::new()
            .name("admin-conn".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                serve_connection(stream, &shared);
                counter.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(err) = spawned {
            open.fetch_sub(1, Ordering::SeqCst);
            crate::warn!("admin: cannot start a connection thread: {err}");
        }
    }
}

fn serve_connection(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(shared.config.http_timeout));
    let mut buf = Vec::new();
    loop {
        let Some(req) = conn::next_head(&mut stream, &mut buf, shared.config.http_timeout) else {
            return;
        };
        // No request here has a body: one that comes with a body is answered,
        // then the connection closes rather than read it.
        let keep = req.keep_alive()
            && !req.chunked
            && req.content_length.unwrap_or(0) == 0
            && !shared.shutdown.load(Ordering::SeqCst);
        if answer(&mut stream, &req, keep, shared).is_err() || !keep {
            return;
        }
    }
}

/// What a request target names.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Page,
    Json,
    NotFound,
}

fn route(target: &str) -> Route {
    match request::decode_path(target).as_deref() {
        Some("/") => Route::Page,
        Some("/status.json") => Route::Json,
        _ => Route::NotFound,
    }
}

fn answer(
    stream: &mut TcpStream,
    req: &Request,
    keep: bool,
    shared: &Shared,
) -> std::io::Result<()> {
    let head_only = req.method == "HEAD";
    if !host_allowed(req.host.as_deref(), &this_host()) {
        return response::simple(stream, 403, keep, head_only, &[]);
    }
    let route = route(&req.target);
    if route == Route::NotFound {
        return response::simple(stream, 404, keep, head_only, &[]);
    }
    if req.method != "GET" && !head_only {
        return response::simple(stream, 405, keep, false, &[("Allow", "GET, HEAD")]);
    }
    let nodes = log::with_known(shared.log.board(), &shared.nodes().names());
    let (body, content_type) = match route {
        Route::Page => {
            let tree = shared.config.dist.display().to_string();
            let html = page::render(&nodes, &tree, crate::clock::now_ms());
            (html, "text/html; charset=utf-8")
        }
        _ => {
            let json = log::status_json_of(&nodes);
            (format!("{json}\n"), "application/json")
        }
    };
    let head = Head::new(200, keep)
        .header("Content-Type", content_type)
        .header("Content-Length", &body.len().to_string())
        .header("Cache-Control", "no-store")
        // No script, no frame, nothing fetched: the page is text and one style.
        .header(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'",
        )
        .header("X-Content-Type-Options", "nosniff")
        .header("Referrer-Policy", "no-referrer")
        .finish();
    let mut out = head.into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&out)
}

/// Whether the page answers a request naming `host` (the Host field): an IP
/// address, `localhost`, or this machine's name (`this_host`). A web page the
/// operator opens elsewhere could point a name of its own at 127.0.0.1 (DNS
/// rebinding) and have the browser read the page under that name; such a
/// request carries the foreign name and is refused.
fn host_allowed(host: Option<&str>, this_host: &str) -> bool {
    let Some(host) = host else {
        return true; // HTTP/1.0 without Host: not a browser
    };
    let name = if let Some(v6) = host.strip_prefix('[') {
        return v6
            .split_once(']')
            .is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok());
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let first_label = |n: &str| n.split('.').next().unwrap_or_default().to_string();
    name.parse::<std::net::IpAddr>().is_ok()
        || name == "localhost"
        || name.ends_with(".localhost")
        || (!this_host.is_empty() && first_label(&name) == first_label(this_host))
}

/// This machine's host name, lower case ("" when unknown).
fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_takes_an_address_or_off() {
        assert_eq!(parse_flag("off"), Ok(Listen(None)));
        assert_eq!(
            parse_flag(DEFAULT),
            Ok(Listen(Some("127.0.0.1:9080".parse().unwrap())))
        );
        assert_eq!(
            parse_flag("[::1]:0"),
            Ok(Listen(Some("[::1]:0".parse().unwrap())))
        );
        for bad in ["9080", "127.0.0.1", "none", "localhost:9080", ""] {
            assert!(parse_flag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn foreign_host_names_are_refused() {
        for ok in [
            None,
            Some("127.0.0.1:9080"),
            Some("10.0.0.5"),
            Some("[::1]:9080"),
            Some("localhost:9080"),
            Some("LOCALHOST"),
            Some("boot1:9080"),
            Some("boot1.mgmt.example.:9080"),
        ] {
            assert!(host_allowed(ok, "boot1"), "{ok:?}");
        }
        for refused in [
            Some("evil.example:9080"),
            Some("127.0.0.1.evil.example"),
            Some("[::1"),
            Some(""),
        ] {
            assert!(!host_allowed(refused, "boot1"), "{refused:?}");
        }
        assert!(!host_allowed(Some("boot1"), ""));
    }

    #[test]
    fn only_the_page_and_the_json_are_routed() {
        assert_eq!(route("/"), Route::Page);
        assert_eq!(route("/?x=1"), Route::Page);
        assert_eq!(route("http://127.0.0.1:9080/status.json"), Route::Json);
        for other in [
            "/index.html",
            "/status.json/",
            "/beacon/cp1/x",
            "//",
            "*",
            "/%2F",
        ] {
            assert_eq!(route(other), Route::NotFound, "{other}");
        }
    }
}
