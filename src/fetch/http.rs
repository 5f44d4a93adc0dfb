//! Downloads over HTTP(S) with ureq: redirects followed, bounded timeouts,
//! retries with backoff on transient faults, and resume of a partial temp file
//! with a Range request. The body is hashed while it streams; the caller
//! decides whether the result is trusted.
//!
//! Two clocks bound a transfer: an idle timeout (no bytes for N seconds, per
//! read) ends a stalled one promptly, and ureq's body timeout is a total
//! budget per request. An attempt that ends early keeps its partial file and
//! the next resumes it; attempts that grew the file beyond what it held do not
//! count against the retry limit (up to a hard cap), so a slow link finishes
//! and a stalled one fails. An attempt that had to start over from byte 0 (the
//! server ignored Range) is not progress, so such a server cannot loop.
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use sha2::{Digest, Sha256};

use super::progress::Bar;

/// Timeouts and retry policy. `PXEBUILD_HTTP_TIMEOUT` (seconds) sets the
/// connect/response timeouts; `PXEBUILD_HTTP_IDLE_TIMEOUT` how long a read may
/// wait for the next bytes; `PXEBUILD_HTTP_BODY_TIMEOUT` the per-attempt body
/// budget; `PXEBUILD_HTTP_RETRIES` the attempts without progress.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub timeout: Duration,
    /// No bytes for this long ends the attempt (a stalled transfer).
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
    pub attempts: u32,
    pub backoff: Duration,
}

impl Policy {
    /// A set variable that is not a whole number is bad input (exit 2), not
    /// silently the default: the user asked for something else.
    pub(crate) fn from_env() -> Result<Policy> {
        let num = |name: &str, default: u64| -> Result<u64> {
            match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => v.trim().parse::<u64>().map_err(|_| {
                    crate::error::BadInput::new(format!(
                        "{name}={v:?} is not a whole number (seconds, or milliseconds \
                         for PXEBUILD_HTTP_BACKOFF_MS, or a count for PXEBUILD_HTTP_RETRIES)"
                    ))
                }),
                _ => Ok(default),
            }
        };
        Ok(Policy {
            timeout: Duration::from_secs(num("PXEBUILD_HTTP_TIMEOUT", 30)?),
            idle_timeout: Duration::from_secs(num("PXEBUILD_HTTP_IDLE_TIMEOUT", 30)?.max(1)),
            body_timeout: Duration::from_secs(num("PXEBUILD_HTTP_BODY_TIMEOUT", 600)?),
            // Bounded so `attempts × 4` (the hard cap) cannot overflow.
            attempts: num("PXEBUILD_HTTP_RETRIES", 4)?.clamp(1, 1000) as u32,
            backoff: Duration::from_millis(num("PXEBUILD_HTTP_BACKOFF_MS", 500)?),
        })
    }
}

/// A host that could not be reached: its name did not resolve (never
/// retried: no DNS answer comes by asking again at once), or every attempt
/// failed. Attached to the error as context, so callers can group failures
/// by host and give [`NETWORK_ADVICE`] once instead of per file.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub(crate) struct Unreachable {
    pub host: String,
    /// The name did not resolve (rather than attempts running out).
    pub dns: bool,
    what: String,
}

impl Unreachable {
    fn dns(url: &str) -> Unreachable {
        let host = host_of(url);
        Unreachable {
            what: format!("cannot resolve {host}"),
            host,
            dns: true,
        }
    }

    fn gave_up(url: &str, attempts: u32) -> Unreachable {
        Unreachable {
            host: host_of(url),
            dns: false,
            what: format!("giving up on {url} after {attempts} attempts"),
        }
    }
}

/// What to do when hosts cannot be reached: said once per command, after
/// every failure it applies to.
pub(crate) const NETWORK_ADVICE: &str =
    "no network? Build with --offline to use the cache alone, or \
     set PXEBUILD_MIRROR to a mirror you can reach (`pxebuild mirror DIR` writes one)";

/// The host (and port, if any) of `url`, for grouping failures.
pub(crate) fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, h)| h)
        .to_string()
}

/// Whether `err` (anywhere in its chain) is a host that could not be reached.
pub(crate) fn unreachable(err: &anyhow::Error) -> Option<&Unreachable> {
    // anyhow finds a context value through any contexts added above it.
    err.downcast_ref::<Unreachable>()
}

/// Why one attempt failed.
enum Failure {
    /// Worth another attempt (5xx, timeouts, dropped connections).
    Transient(anyhow::Error),
    /// Transient, but the attempt moved the transfer forward (not counted).
    Progressed(anyhow::Error),
    /// Retrying cannot help (404, 403, bad URL).
    Permanent(anyhow::Error),
}

/// A finished download: the digest and size of the temp file.
#[derive(Debug, Clone)]
pub(crate) struct Downloaded {
    pub sha256: String,
    pub size: u64,
}

/// What a request carries beyond the defaults.
#[derive(Debug, Clone, Default)]
pub(crate) struct Extra {
    /// Headers sent to the URL's own host (not to a host a redirect leads to).
    pub headers: Vec<(&'static str, String)>,
    /// A bearer token and the host (`host:port`) it was issued for: sent to
    /// that host wherever it comes in the redirect chain, and to no other.
    pub bearer: Option<(String, String)>,
    /// Error statuses come back as answers instead of errors.
    pub raw_status: bool,
}

/// A response read whole: its status, headers (names lowercase), body, and
/// the URL that answered (with the hop a redirect led to).
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub url: String,
    /// The URL that answered (the last hop of the redirects).
    pub hop: String,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone)]
pub(crate) struct Client {
    agent: ureq::Agent,
    policy: Policy,
}

impl Client {
    pub(crate) fn new(policy: Policy) -> Client {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(policy.timeout))
            .timeout_recv_response(Some(policy.timeout))
            .timeout_recv_body(Some(policy.body_timeout))
            .timeout_per_read(Some(policy.idle_timeout))
            // Redirects are followed by `send`, so an error can name the hop
            // that failed (a CDN behind github.com), not just the first URL.
            .max_redirects(0)
            // Artifacts are stored byte for byte as served and resumed with
            // `Range`, which counts bytes of the encoded body: a gzip-encoded
            // transfer would be decoded into the `.part` while the range
            // asks for an offset in the compressed stream. Identity keeps
            // both the same (ureq is built without transparent decoding).
            .accept_encoding("identity")
            .user_agent(concat!("pxebuild/", env!("CARGO_PKG_VERSION")))
            .build();
        Client {
            agent: config.new_agent(),
            policy,
        }
    }

    /// Sends a GET (or HEAD) for `url`, following up to `MAX_REDIRECTS`
    /// redirects. The response comes with the URL that answered; an error
    /// with the URL that failed (`url` itself, or the hop it redirected to).
    fn send(
        &self,
        url: &str,
        head: bool,
        range: Option<u64>,
    ) -> std::result::Result<(ureq::http::Response<ureq::Body>, String), (String, ureq::Error)>
    {
        self.send_with(url, head, range, &Extra::default())
    }

    /// [`Client::send`] with request headers (dropped when a redirect leaves
    /// the host, so a registry's token never reaches its blob CDN) and,
    /// with `extra.raw_status`, 4xx/5xx answers returned as responses.
    fn send_with(
        &self,
        url: &str,
        head: bool,
        range: Option<u64>,
        extra: &Extra,
    ) -> std::result::Result<(ureq::http::Response<ureq::Body>, String), (String, ureq::Error)>
    {
        let mut hop = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let mut req = if head {
                self.agent.head(&hop)
            } else {
                self.agent.get(&hop)
            };
            if let Some(have) = range {
                req = req.header("Range", &format!("bytes={have}-"));
            }
            if host_of(&hop) == host_of(url) {
                for (name, value) in &extra.headers {
                    req = req.header(*name, value);
                }
            }
            if let Some((host, token)) = &extra.bearer {
                if host_of(&hop) == *host {
                    req = req.header("Authorization", &format!("Bearer {token}"));
                }
            }
            if extra.raw_status {
                req = req.config().http_status_as_error(false).build();
            }
            crate::debug!(
                "{} {hop}{}",
                if head { "HEAD" } else { "GET" },
                range.map_or(String::new(), |have| format!(" (from byte {have})"))
            );
            let resp = match req.call() {
                Ok(resp) => resp,
                Err(e) => return Err((hop, e)),
            };
            if !resp.status().is_redirection() {
                return Ok((resp, hop));
            }
            let location = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::trim);
            match location {
                Some(location) if !location.is_empty() => hop = join_location(&hop, location),
                // A 3xx without a place to go (304 and the like): as is.
                _ => return Ok((resp, hop)),
            }
        }
        Err((hop, ureq::Error::TooManyRedirects))
    }

    /// Whether `url` exists (HEAD, redirects followed): `Ok(None)` if so,
    /// on 404/410 the URL that answered it (`url`, with the hop it was
    /// redirected to).
    pub(crate) fn missing(&self, url: &str) -> Result<Option<String>> {
        self.retrying(url, || match self.send(url, true, None) {
            Ok(_) => Ok(None),
            Err((hop, ureq::Error::StatusCode(404 | 410))) => Ok(Some(shown(url, &hop))),
            // Some servers do not answer HEAD (or, with URLs signed for GET
            // only, forbid it); the download will tell.
            Err((_, ureq::Error::StatusCode(403 | 405 | 501))) => Ok(None),
            Err((hop, e)) => Err(classify(url, &hop, e)),
        })
    }

    /// A small file (signature, checksum list) into memory; `None` on 404.
    pub(crate) fn get_small(&self, url: &str) -> Result<Option<Vec<u8>>> {
        self.retrying(url, || match self.send(url, false, None) {
            Ok((mut resp, hop)) => resp
                .body_mut()
                .with_config()
                .limit(16 << 20)
                .read_to_vec()
                .map(Some)
                .map_err(|e| classify(url, &hop, e)),
            Err((_, ureq::Error::StatusCode(404 | 410))) => Ok(None),
            Err((hop, e)) => Err(classify(url, &hop, e)),
        })
    }

    /// Streams `url` into `temp`, resuming whatever `temp` already holds.
    pub(crate) fn download(&self, url: &str, temp: &Path, bar: &Bar) -> Result<Downloaded> {
        self.download_with(url, temp, bar, &Extra::default())
    }

    /// [`Client::download`] with request headers (a registry's token).
    pub(crate) fn download_with(
        &self,
        url: &str,
        temp: &Path,
        bar: &Bar,
        extra: &Extra,
    ) -> Result<Downloaded> {
        self.retrying(url, || self.attempt(url, temp, bar, extra))
    }

    /// A GET (or HEAD) whose answer is returned whatever its status (a
    /// registry's 401 carries the challenge to answer), the body read into
    /// memory up to `limit` bytes; retried on transient faults and 5xx.
    pub(crate) fn fetch_answer(
        &self,
        url: &str,
        head: bool,
        headers: &[(&'static str, String)],
        bearer: Option<(String, String)>,
        limit: u64,
    ) -> Result<Answer> {
        let extra = Extra {
            headers: headers.to_vec(),
            bearer,
            raw_status: true,
        };
        self.retrying(url, || {
            let (mut resp, hop) = match self.send_with(url, head, None, &extra) {
                Ok(answer) => answer,
                Err((hop, e)) => return Err(classify(url, &hop, e)),
            };
            let status = resp.status().as_u16();
            if status >= 500 || status == 408 || status == 429 {
                return Err(Failure::Transient(anyhow!(
                    "{}: HTTP status {status}",
                    shown(url, &hop)
                )));
            }
            let headers = resp
                .headers()
                .iter()
                .filter_map(|(k, v)| {
                    Some((
                        k.as_str().to_ascii_lowercase(),
                        v.to_str().ok()?.to_string(),
                    ))
                })
                .collect();
            let body = if head {
                Vec::new()
            } else {
                resp.body_mut()
                    .with_config()
                    .limit(limit)
                    .read_to_vec()
                    .map_err(|e| classify(url, &hop, e))?
            };
            Ok(Answer {
                status,
                headers,
                body,
                url: shown(url, &hop),
                hop,
            })
        })
    }

    /// Runs `once` until it succeeds, fails permanently, or runs out of
    /// attempts. An attempt that grew the temp file does not count, up to a
    /// hard cap of `attempts × 4` attempts in all.
    fn retrying<T>(
        &self,
        url: &str,
        mut once: impl FnMut() -> std::result::Result<T, Failure>,
    ) -> Result<T> {
        let mut failed = 0;
        let mut last = None;
        for _ in 0..self.policy.attempts * 4 {
            match once() {
                Ok(v) => return Ok(v),
                Err(Failure::Permanent(e)) => return Err(e),
                Err(Failure::Progressed(e)) => {
                    crate::verbose!("resuming {url}: {e:#}");
                    last = Some(e);
                }
                Err(Failure::Transient(e)) => {
                    failed += 1;
                    if failed >= self.policy.attempts {
                        return Err(e.context(Unreachable::gave_up(url, failed)));
                    }
                    crate::verbose!("retrying {url}: {e:#}");
                    std::thread::sleep(self.policy.backoff * 2u32.pow(failed - 1));
                }
            }
        }
        let last = last.map_or_else(String::new, |e| format!(" (the last: {e:#})"));
        Err(anyhow!(
            "giving up on {url} after {} interrupted attempts{last}; the transfer kept \
             breaking off part-way, which points at a flaky link or a proxy that cuts long \
             transfers: build again (verified files are kept), or try --jobs 1 so this \
             download has the link to itself",
            self.policy.attempts * 4
        ))
    }

    fn attempt(
        &self,
        url: &str,
        temp: &Path,
        bar: &Bar,
        extra: &Extra,
    ) -> std::result::Result<Downloaded, Failure> {
        let have = partial_len(temp).map_err(Failure::Permanent)?;
        let (mut resp, hop) = match self.send_with(url, false, (have > 0).then_some(have), extra) {
            Ok(answer) => answer,
            // The partial file is already complete or stale: start over.
            Err((hop, ureq::Error::StatusCode(416))) => {
                let _ = std::fs::remove_file(temp);
                return Err(Failure::Transient(anyhow!(
                    "{}: range not satisfiable",
                    shown(url, &hop)
                )));
            }
            Err((hop, e)) => return Err(classify(url, &hop, e)),
        };
        // Errors from here on name the URL that is streaming the body.
        let url = &*shown(url, &hop);
        let resumed = have > 0 && resp.status().as_u16() == 206 && range_starts_at(&resp, have);
        let start = if resumed { have } else { 0 };
        let total = content_length(&resp).map(|len| len + start);
        let (mut file, mut hasher) = open_temp(temp, resumed).map_err(Failure::Permanent)?;
        bar.start(total, start);
        let mut reader = resp.body_mut().with_config().reader();
        let streamed = stream(&mut reader, &mut file, &mut hasher, bar);
        let size = start + streamed.bytes;
        let read_error = match streamed.end {
            End::Body => None,
            End::Read(e) => Some(e),
            End::Write(e) => {
                // The cache, not the network: a full disk or quota does not get
                // better by downloading again, so fail at once.
                let _ = std::fs::remove_file(temp);
                return Err(Failure::Permanent(anyhow!(
                    "writing the download of {url} to {} failed after {size} bytes: {e}{}",
                    temp.display(),
                    if is_out_of_space(&e) {
                        "; free space in the cache (or set PXEBUILD_CACHE elsewhere), then build again"
                    } else {
                        ""
                    }
                )));
            }
        };
        let broken = match read_error {
            Some(e) => Some(anyhow!(
                "{url}: {} after {size} bytes: {e}",
                interruption(&e)
            )),
            None => total
                .filter(|&t| t != size)
                .map(|t| anyhow!("{url}: truncated download ({size} of {t} bytes)")),
        };
        if let Some(e) = broken {
            let _ = file.sync_all();
            // Progress means the file now holds more than before this attempt;
            // starting over from byte 0 and breaking off again is not progress.
            return Err(if size > have {
                Failure::Progressed(e)
            } else if have > 0 && !resumed {
                Failure::Transient(e.context(format!(
                    "the server ignored the Range request, so the transfer restarted at \
                     byte 0 and broke off again at byte {size}"
                )))
            } else {
                Failure::Transient(e)
            });
        }
        file.sync_all()
            .with_context(|| format!("syncing {}", temp.display()))
            .map_err(Failure::Permanent)?;
        Ok(Downloaded {
            sha256: hex::encode(hasher.finalize()),
            size,
        })
    }
}

/// What one pass over a response body did.
struct Streamed {
    bytes: u64,
    end: End,
}

/// Why a pass over a body stopped.
enum End {
    /// The body ended (complete or not: the length tells).
    Body,
    /// Reading the body failed (the network or the server).
    Read(std::io::Error),
    /// Writing the file failed (the local disk).
    Write(std::io::Error),
}

/// Copies the body into the file, hashing and counting as it goes; stops at
/// the end of the body or the first error (reading or writing).
fn stream(reader: &mut impl Read, file: &mut File, hasher: &mut Sha256, bar: &Bar) -> Streamed {
    let mut buf = vec![0u8; 256 * 1024];
    let mut bytes = 0;
    let end = loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break End::Body,
            Ok(n) => n,
            Err(e) => break End::Read(e),
        };
        if let Err(e) = file.write_all(&buf[..n]) {
            break End::Write(e);
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
        bar.inc(n as u64);
    };
    Streamed { bytes, end }
}

fn is_out_of_space(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

fn interruption(e: &std::io::Error) -> &'static str {
    if e.kind() == std::io::ErrorKind::TimedOut || e.to_string().contains("timeout") {
        "timed out"
    } else {
        "transfer interrupted"
    }
}

/// How much of a partial download `temp` holds. Anything there but a
/// regular file (a symlink planted in a shared cache, a directory) is not
/// ours to append to: it is removed, never followed, and the download
/// starts over.
fn partial_len(temp: &Path) -> Result<u64> {
    match std::fs::symlink_metadata(temp) {
        Ok(meta) if meta.file_type().is_file() => Ok(meta.len()),
        Ok(meta) => {
            crate::warn!(
                "{} is not a regular file (a symlink?); removing it, not following it",
                temp.display()
            );
            let removed = if meta.is_dir() {
                std::fs::remove_dir_all(temp)
            } else {
                std::fs::remove_file(temp)
            };
            removed.with_context(|| format!("removing {}", temp.display()))?;
            Ok(0)
        }
        Err(_) => Ok(0),
    }
}

/// Opens the temp file for appending (re-hashing what it holds) or afresh,
/// never through a symlink (`O_NOFOLLOW`: one planted after `partial_len`
/// looked makes the open fail rather than write elsewhere).
fn open_temp(temp: &Path, append: bool) -> Result<(File, Sha256)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut hasher = Sha256::new();
    if !append {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(temp)
            .with_context(|| format!("creating {}", temp.display()))?;
        return Ok((file, hasher));
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(temp)
        .with_context(|| format!("opening {}", temp.display()))?;
    file.seek(SeekFrom::Start(0))
        .with_context(|| format!("reading {}", temp.display()))?;
    std::io::copy(&mut (&file).take(u64::MAX), &mut HashWriter(&mut hasher))
        .with_context(|| format!("hashing {}", temp.display()))?;
    Ok((file, hasher))
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn content_length(resp: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    resp.headers()
        .get("content-length")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `Content-Range: bytes START-END/TOTAL` must continue where the file ends.
fn range_starts_at(resp: &ureq::http::Response<ureq::Body>, have: u64) -> bool {
    let Some(value) = resp
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    value
        .trim()
        .strip_prefix("bytes ")
        .and_then(|r| r.split('-').next())
        .and_then(|s| s.trim().parse::<u64>().ok())
        == Some(have)
}

/// Redirects followed before giving up (as browsers and curl do, roughly).
const MAX_REDIRECTS: u32 = 10;

/// `url`, and where it was redirected to when that is another URL.
fn shown(url: &str, hop: &str) -> String {
    if url == hop {
        url.to_string()
    } else {
        format!("{url} (redirected to {hop})")
    }
}

/// The URL a `Location` header points at, relative to the URL that sent it
/// (absolute, scheme-relative `//host/p`, absolute-path `/p`, or relative).
fn join_location(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    if let Some(authority_path) = location.strip_prefix("//") {
        return format!("{scheme}://{authority_path}");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    // Relative: beside the last segment of the base path (query dropped).
    let path = &rest[authority.len()..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    format!("{scheme}://{authority}{dir}{location}")
}

fn classify(url: &str, hop: &str, err: ureq::Error) -> Failure {
    let url = &*shown(url, hop);
    match err {
        ureq::Error::StatusCode(code) => {
            let e = anyhow!("{url}: HTTP status {code}");
            if code >= 500 || code == 408 || code == 429 {
                Failure::Transient(e)
            } else {
                Failure::Permanent(e.context(status_hint(code)))
            }
        }
        ureq::Error::Timeout(ureq::Timeout::Resolve) => Failure::Permanent(
            anyhow!("{url}: name resolution timed out").context(Unreachable::dns(hop)),
        ),
        e @ ureq::Error::HostNotFound => {
            Failure::Permanent(anyhow!("{url}: {e}").context(Unreachable::dns(hop)))
        }
        // std's resolver reports a failed lookup (no DNS server answering,
        // no such name) as an I/O error with these words.
        ureq::Error::Io(e) if e.to_string().contains("failed to lookup address") => {
            Failure::Permanent(anyhow!("{url}: {e}").context(Unreachable::dns(hop)))
        }
        ureq::Error::Timeout(t) => Failure::Transient(anyhow!("{url}: timed out ({t})")),
        e @ (ureq::Error::Io(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::Protocol(_)
        | ureq::Error::BodyStalled) => Failure::Transient(anyhow!("{url}: {e}")),
        e => Failure::Permanent(anyhow!("{url}: {e}")),
    }
}

/// What to do about a file the server does not have (download or preflight).
pub(crate) const NOT_FOUND_HINT: &str = "not found: check the pinned version (flatcar.version, \
     [sysext]) and, with a mirror, that the mirror holds this file (`pxebuild mirror` \
     writes the layout)";

fn status_hint(code: u16) -> String {
    match code {
        404 | 410 => NOT_FOUND_HINT.into(),
        401 | 403 => "access denied by the server or mirror".into(),
        _ => format!("the server refused the request (HTTP {code})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_that_does_not_resolve_is_not_retried() {
        let policy = Policy {
            timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(5),
            attempts: 4,
            backoff: Duration::from_secs(2),
        };
        let client = Client::new(policy);
        let started = std::time::Instant::now();
        // `.invalid` never resolves (RFC 2606), with or without a network.
        let err = client
            .get_small("http://pxebuild-test.invalid/x")
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "retried: {err:#}"
        );
        let why = unreachable(&err).unwrap_or_else(|| panic!("not marked: {err:?}"));
        assert!(why.dns, "{err:#}");
        assert_eq!(why.host, "pxebuild-test.invalid");
        assert!(
            format!("{err:#}").starts_with("cannot resolve pxebuild-test.invalid: http://"),
            "{err:#}"
        );
        assert_eq!(host_of("https://user@h.example:8443/a?b"), "h.example:8443");
    }

    #[test]
    fn a_location_is_resolved_against_the_url_that_sent_it() {
        let base = "https://github.com/o/r/releases/download/v1/f.raw?x=1";
        assert_eq!(
            join_location(base, "https://cdn.example/a/b"),
            "https://cdn.example/a/b"
        );
        assert_eq!(
            join_location(base, "//cdn.example/a"),
            "https://cdn.example/a"
        );
        assert_eq!(join_location(base, "/x/y"), "https://github.com/x/y");
        assert_eq!(
            join_location(base, "g.raw"),
            "https://github.com/o/r/releases/download/v1/g.raw"
        );
        assert_eq!(join_location("http://h:8080", "p"), "http://h:8080/p");
    }
}
