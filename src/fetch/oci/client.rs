//! One image's repository on a registry (or on the site's
//! `registry_mirror`): manifests fetched with the four manifest media types
//! accepted and kept byte for byte, their digest computed from those bytes
//! and checked against `Docker-Content-Digest` and a pinned digest; blobs
//! streamed into the content store, their digest checked as they stream.
//! Anonymous bearer tokens are asked for when the registry answers 401.
use std::path::Path;
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};

use super::manifest::hex_of;
use super::token;
use crate::engine::store::Store;
use crate::error::BadInput;
use crate::fetch::fetcher::DigestMismatch;
use crate::fetch::http::{Answer, Client, Extra};
use crate::fetch::progress::Bar;
use crate::images::ImageRef;

/// Manifests are small; anything larger is not a manifest.
const MANIFEST_LIMIT: u64 = 4 << 20;

/// A manifest as served: its bytes, media type and digest (verified).
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    pub bytes: Vec<u8>,
    pub media_type: &'static str,
    pub digest: String,
}

/// Where one image's repository is asked.
pub(crate) struct Registry {
    client: Client,
    /// What messages call the registry: its API host, or the mirror's URL.
    pub shown: String,
    /// `<scheme>://<host>/v2/<repository>` (upstream) or
    /// `<mirror>/v2/<dist name>` (the site's registry mirror).
    base: String,
    /// The repository's name in dist/, for progress lines.
    name: String,
    /// The anonymous token, and the host that asked for it (a registry may
    /// redirect its API to another host, which is the one that checks it).
    token: Mutex<Option<(String, String)>>,
}

/// Docker Hub's API host: `docker.io` names the registry, not the server.
pub(crate) fn api_host(registry: &str) -> &str {
    if registry == "docker.io" {
        "registry-1.docker.io"
    } else {
        registry
    }
}

impl Registry {
    pub(crate) fn new(client: Client, image: &ImageRef, mirror: Option<&str>) -> Registry {
        let (shown, base) = match mirror {
            Some(mirror) => {
                let mirror = mirror.trim_end_matches('/');
                (
                    mirror.to_string(),
                    format!("{mirror}/v2/{}", image.dist_name()),
                )
            }
            None => {
                let host = api_host(&image.registry);
                (
                    host.to_string(),
                    format!("https://{host}/v2/{}", image.repository),
                )
            }
        };
        Registry {
            client,
            shown,
            base,
            name: image.dist_name(),
            token: Mutex::new(None),
        }
    }

    /// The manifest `reference` (a tag or a digest) names, verified: its
    /// digest is the SHA-256 of the bytes served, which must equal
    /// `Docker-Content-Digest` when sent and the reference when a digest.
    pub(crate) fn manifest(&self, reference: &str) -> Result<Fetched> {
        let accept = crate::layout::OCI_MANIFEST_KINDS
            .iter()
            .map(|(_, media)| *media)
            .collect::<Vec<_>>()
            .join(", ");
        let url = format!("{}/manifests/{reference}", self.base);
        let answer = self.get(&url, vec![("Accept", accept)], MANIFEST_LIMIT)?;
        match answer.status {
            200 => {}
            404 => {
                return Err(BadInput::new(format!(
                    "no such image or tag: {} answered HTTP 404; check the reference \
                     (and, with [images] registry_mirror, that the mirror holds it)",
                    answer.url
                )))
            }
            status => bail!("{} answered HTTP {status}", answer.url),
        }
        let digest = format!("sha256:{}", crate::digest::sha256_hex(&answer.body));
        if let Some(sent) = answer.header("docker-content-digest") {
            if sent.trim() != digest {
                return Err(DigestMismatch(format!(
                    "digest mismatch: {} sent Docker-Content-Digest {} but its bytes are {digest}",
                    answer.url,
                    sent.trim()
                ))
                .into());
            }
        }
        if reference.starts_with("sha256:") && reference != digest {
            return Err(DigestMismatch(format!(
                "digest mismatch: {} is pinned, the manifest served is {digest}",
                reference
            ))
            .into());
        }
        let media_type = super::manifest::media_type(&answer.body, answer.header("content-type"))
            .with_context(|| answer.url.clone())?;
        Ok(Fetched {
            bytes: answer.body,
            media_type,
            digest,
        })
    }

    /// Streams the blob `digest` (`size` bytes) into `store`, checking the
    /// digest while it streams; the temp file goes unless it verified.
    /// Resumes a partial download left by a killed build.
    pub(crate) fn blob(&self, store: &Store, locks: &Path, digest: &str, size: u64) -> Result<()> {
        let hex = hex_of(digest)?;
        if store.has(hex, size) {
            return Ok(());
        }
        let url = format!("{}/blobs/{digest}", self.base);
        let _lock = crate::fsutil::lock_file(&locks.join(format!("oci-{hex}.lock")), || {})?;
        if store.has(hex, size) {
            return Ok(());
        }
        let temp = store.temp_dir()?.join(format!("oci-{hex}.part"));
        let bar = Bar::new(&format!("{} blob {}", self.name, &hex[..12]));
        let download = || {
            let extra = Extra {
                headers: Vec::new(),
                bearer: self.current_token(),
                raw_status: false,
            };
            self.client.download_with(&url, &temp, &bar, &extra)
        };
        // A token expires (Docker Hub's after minutes) and a registry may
        // ask for one for blobs only: a 401 gets a new token and one retry.
        let got = match download().or_else(|e| {
            if !format!("{e:#}").contains("HTTP status 401") {
                return Err(e);
            }
            self.authorize(&url)?;
            download()
        }) {
            Ok(got) => got,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                bar.finish("download failed");
                return Err(e);
            }
        };
        if got.sha256 != hex || got.size != size {
            let _ = std::fs::remove_file(&temp);
            bar.finish("digest mismatch");
            return Err(DigestMismatch(format!(
                "digest mismatch: {url} streamed {} bytes with digest sha256:{}, the manifest \
                 names {size} bytes with {digest}",
                got.size, got.sha256
            ))
            .into());
        }
        store.adopt(&temp, hex, size)?;
        bar.finish("verified");
        Ok(())
    }

    fn current_token(&self) -> Option<(String, String)> {
        self.token.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Answers the challenge of `url` (HEAD) for a token, when it has one.
    fn authorize(&self, url: &str) -> Result<()> {
        let answer = self.client.fetch_answer(url, true, &[], None, 0)?;
        if answer.status == 401 {
            self.challenge(&answer)?;
        }
        Ok(())
    }

    /// Gets a token for the challenge in a 401 `answer` and keeps it.
    fn challenge(&self, answer: &Answer) -> Result<(String, String)> {
        let challenge = answer
            .header("www-authenticate")
            .and_then(token::parse_challenge)
            .ok_or_else(|| {
                anyhow!(
                    "{} asks for credentials (HTTP 401 without a bearer challenge); pxebuild \
                     pulls anonymously: use [images] registry_mirror with a registry that \
                     holds the image",
                    answer.url
                )
            })?;
        let token = (
            crate::fetch::http::host_of(&answer.hop),
            token::fetch(&self.client, &challenge)
                .with_context(|| format!("realm {}", challenge.realm))?,
        );
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.clone());
        Ok(token)
    }

    /// A GET with the token (once one was needed); a 401 with a Bearer
    /// challenge gets a token and one retry.
    fn get(&self, url: &str, headers: Vec<(&'static str, String)>, limit: u64) -> Result<Answer> {
        let with_token = |token: Option<(String, String)>| {
            self.client.fetch_answer(url, false, &headers, token, limit)
        };
        let answer = with_token(self.current_token())?;
        if answer.status != 401 {
            return Ok(answer);
        }
        let token = self.challenge(&answer)?;
        let answer = with_token(Some(token))?;
        if answer.status == 401 {
            bail!(
                "the registry refused the token: {} answered HTTP 401 to the token its realm gave",
                answer.url
            );
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A one-request-per-connection HTTP server on loopback: `answer` gets
    /// the server's port and the request's path and head, and returns the
    /// whole response. Returns the port.
    fn loopback(answer: impl Fn(u16, &str, &str) -> Vec<u8> + Send + 'static) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let mut conn = conn.unwrap();
                let mut buf = [0u8; 4096];
                let n = conn.read(&mut buf).unwrap();
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split_whitespace().nth(1).unwrap().to_string();
                let _ = conn.write_all(&answer(port, &path, &head));
            }
        });
        port
    }

    /// A registry on loopback that serves one manifest only with the token
    /// its realm hands out; answers (path, had the token) for each request.
    fn token_registry(manifest: &'static [u8]) -> (u16, std::sync::mpsc::Receiver<String>) {
        let (seen, log) = std::sync::mpsc::channel();
        let port = loopback(move |port, path, head| {
            let authorized = head
                .lines()
                .any(|l| l.eq_ignore_ascii_case("authorization: bearer t0k"));
            let _ = seen.send(format!("{path} {authorized}"));
            let (status, headers, body): (&str, String, &[u8]) = if path.starts_with("/token") {
                ("200 OK", String::new(), br#"{"access_token":"t0k"}"#)
            } else if authorized {
                ("200 OK", "Content-Type: text/plain\r\n".into(), manifest)
            } else {
                (
                    "401 Unauthorized",
                    format!(
                        "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",\
                         service=\"reg\",scope=\"repository:a/b:pull\"\r\n"
                    ),
                    b"",
                )
            };
            let mut reply = format!(
                "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            reply.extend_from_slice(body);
            reply
        });
        (port, log)
    }

    /// A front that redirects every request to `to` (another host:port).
    fn redirector(to: u16) -> u16 {
        loopback(move |_, path, _| {
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{to}{path}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .into_bytes()
        })
    }

    /// A client of `example.org/a/b` that asks the registry on `port` (as its mirror).
    fn registry_at(port: u16) -> Registry {
        let policy = crate::fetch::http::Policy::from_env().unwrap();
        let image: ImageRef = "example.org/a/b:1".parse().unwrap();
        let mirror = format!("http://127.0.0.1:{port}");
        Registry::new(Client::new(policy), &image, Some(&mirror))
    }

    #[test]
    fn the_token_goes_to_the_host_that_asked_for_it_behind_a_redirect() {
        // As registry.k8s.io sends its API requests on to another host.
        const MANIFEST: &[u8] = br#"{"schemaVersion":2,"config":{"digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","size":2},"layers":[]}"#;
        let (port, log) = token_registry(MANIFEST);
        let registry = registry_at(redirector(port));
        let got = registry.manifest("1").unwrap();
        assert_eq!(got.bytes, MANIFEST);
        let seen: Vec<String> = log.try_iter().collect();
        assert_eq!(
            seen.last().map(String::as_str),
            Some("/v2/example.org/a/b/manifests/1 true"),
            "{seen:?}"
        );
    }

    #[test]
    fn a_blob_that_asks_for_a_token_gets_one_and_streams_into_the_store() {
        const BLOB: &[u8] = b"{\"a layer, as far as the store can tell\"}";
        let (port, log) = token_registry(BLOB);
        let registry = registry_at(port);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let hex = crate::digest::sha256_hex(BLOB);
        let digest = format!("sha256:{hex}");
        registry
            .blob(&store, dir.path(), &digest, BLOB.len() as u64)
            .unwrap();
        assert_eq!(store.read(&hex).unwrap(), BLOB);
        let seen: Vec<String> = log.try_iter().collect();
        assert_eq!(
            seen.last().map(String::as_str),
            Some(format!("/v2/example.org/a/b/blobs/{digest} true").as_str()),
            "{seen:?}"
        );
        // A blob whose bytes are not its digest stays out of the store.
        let wrong = format!("sha256:{}", "1".repeat(64));
        let err = registry
            .blob(&store, dir.path(), &wrong, BLOB.len() as u64)
            .unwrap_err();
        assert!(format!("{err:#}").contains("digest mismatch"), "{err:#}");
        assert!(!store.path_of(&"1".repeat(64)).exists());
    }

    #[test]
    fn a_401_gets_an_anonymous_token_and_the_retry_carries_it() {
        const MANIFEST: &[u8] = br#"{"schemaVersion":2,"config":{"digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":2},"layers":[]}"#;
        let (port, log) = token_registry(MANIFEST);
        let registry = registry_at(port);
        let got = registry.manifest("1").unwrap();
        assert_eq!(got.bytes, MANIFEST);
        assert_eq!(
            got.digest,
            format!("sha256:{}", crate::digest::sha256_hex(MANIFEST))
        );
        // A static server's generic type: the document's shape decides.
        assert_eq!(got.media_type, "application/vnd.oci.image.manifest.v1+json");
        let seen: Vec<String> = log.try_iter().collect();
        assert_eq!(
            seen,
            [
                "/v2/example.org/a/b/manifests/1 false",
                "/token?service=reg&scope=repository%3Aa%2Fb%3Apull false",
                "/v2/example.org/a/b/manifests/1 true",
            ]
        );
        // The pinned digest must be what is served.
        let wrong = format!("sha256:{}", "0".repeat(64));
        let err = registry.manifest(&wrong).unwrap_err();
        assert!(format!("{err:#}").contains("digest mismatch"), "{err:#}");
    }

    #[test]
    fn docker_hub_is_asked_at_its_api_host_and_a_mirror_by_dist_name() {
        let policy = crate::fetch::http::Policy::from_env().unwrap();
        let image: ImageRef = "busybox:1.36".parse().unwrap();
        let hub = Registry::new(Client::new(policy.clone()), &image, None);
        assert_eq!(hub.shown, "registry-1.docker.io");
        assert_eq!(hub.base, "https://registry-1.docker.io/v2/library/busybox");
        let mirror = Registry::new(Client::new(policy), &image, Some("http://127.0.0.1:5000/"));
        assert_eq!(
            mirror.base,
            "http://127.0.0.1:5000/v2/docker.io/library/busybox"
        );
        assert_eq!(mirror.shown, "http://127.0.0.1:5000");
    }
}
