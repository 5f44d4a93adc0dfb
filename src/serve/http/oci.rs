//! The read-only OCI distribution (pull) API under `/v2/`: the tree's
//! `http/v2/` holds every manifest as `<reference>.<kind>` and every blob
//! under its digest (`crate::layout`), so answering a pull is finding that
//! file, naming its media type and digest, and sending it like any other file
//! (Range, conditional requests, sendfile). Pushes and deletions are refused
//! with the spec's `UNSUPPORTED`, missing names, manifests and blobs get the
//! spec's JSON errors, and every answer is one transfer log line with the
//! asking node's name, as for the rest of the tree.
//!
//! Manifest digests come from `manifest.json` (read when the manifest is
//! loaded), never from hashing a file per request.
use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::Instant;

use super::file_reply;
use super::request::Request;
use super::response::Head;
use crate::layout::{self, OciRequest};
use crate::manifest::Manifest;
use crate::serve::log::Entry;
use crate::serve::root::{self, Opened, Refusal};
use crate::serve::Shared;

/// Sent with every answer under `/v2/`: clients check it on `/v2/`.
const API_VERSION: (&str, &str) = ("Docker-Distribution-API-Version", "registry/2.0");

/// The media type of blobs (configs and layers are sent as bytes).
const BLOB_TYPE: &str = "application/octet-stream";

/// The sha256 of every manifest file of a tree (`http/v2/…/manifests/…`),
/// from its `manifest.json`, by dist path.
#[derive(Debug, Default)]
pub struct ManifestDigests(HashMap<String, String>);

impl ManifestDigests {
    pub fn from_manifest(manifest: &Manifest) -> ManifestDigests {
        let prefix = format!("{}/{}/", layout::HTTP, layout::OCI_V2);
        ManifestDigests(
            manifest
                .files
                .iter()
                .filter(|f| f.path.starts_with(&prefix) && f.path.contains("/manifests/"))
                .map(|f| (f.path.clone(), f.sha256.clone()))
                .collect(),
        )
    }

    fn get(&self, dist_path: &str) -> Option<&str> {
        self.0.get(dist_path).map(String::as_str)
    }
}

/// Whether a decoded request path (`/v2`, `/v2/…`) belongs to the pull API.
pub(crate) fn is_oci(path: &str) -> bool {
    path == "/v2" || path.starts_with("/v2/")
}

/// One spec error: status, `code`, message, and the log line's result.
struct ApiError {
    status: u16,
    code: &'static str,
    message: String,
    result: String,
}

impl ApiError {
    fn new(status: u16, code: &'static str, message: impl Into<String>, result: &str) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            result: result.to_string(),
        }
    }

    /// `{"errors":[{"code","message","detail"}]}`, as the distribution spec shapes it.
    fn body(&self, detail: &serde_json::Value) -> String {
        serde_json::json!({
            "errors": [{"code": self.code, "message": self.message, "detail": detail}]
        })
        .to_string()
    }
}

/// Answers one request under `/v2/` (`path` is decoded, without its leading
/// `/`); returns whether the connection may stay open.
#[allow(clippy::too_many_arguments)]
pub(crate) fn answer(
    stream: &mut TcpStream,
    shared: &Shared,
    entry: &mut Entry<'_>,
    path: &str,
    req: &Request,
    keep: bool,
    mac: Option<&str>,
    started: Instant,
) -> bool {
    let peer = match entry.client {
        Some(peer) => peer.ip(),
        None => return false,
    };
    if req.method != "GET" && req.method != "HEAD" {
        let err = ApiError::new(
            405,
            "UNSUPPORTED",
            "this registry is read-only: only pulls (GET and HEAD) are served",
            "refused:read-only",
        );
        let detail = serde_json::json!({ "method": req.method });
        return error(stream, shared, entry, req, keep, &err, &detail);
    }
    if path == layout::OCI_V2 || path == format!("{}/", layout::OCI_V2) {
        return base(stream, shared, entry, req, keep);
    }
    if let Some(name) = path
        .strip_prefix("v2/")
        .and_then(|rest| rest.strip_suffix("/tags/list"))
    {
        return tags(stream, shared, entry, req, keep, name);
    }
    let found = match locate(shared, path) {
        Ok(found) => found,
        Err((err, detail)) => return error(stream, shared, entry, req, keep, &err, &detail),
    };
    let verdict = shared.judge(layout::HTTP, &found.opened, peer, mac);
    let mut entry = Entry {
        node: verdict.node.as_deref().or(entry.node),
        ..entry.clone()
    };
    let entry = &mut entry;
    if let Some(owner) = &verdict.refused {
        // No tree puts a node-bound file under v2/; a link to one is refused as elsewhere.
        let err = ApiError::new(
            403,
            "DENIED",
            "not served to this client",
            &format!("refused:belongs-to-{}", owner.node),
        );
        return error(
            stream,
            shared,
            entry,
            req,
            keep,
            &err,
            &serde_json::Value::Null,
        );
    }
    let headers = [
        ("Docker-Content-Digest", found.digest.as_str()),
        API_VERSION,
    ];
    let (keep, result) = file_reply::send_with(
        stream,
        req,
        &found.opened,
        keep,
        entry,
        found.media_type,
        &headers,
    );
    let logged = Entry {
        ms: started.elapsed().as_millis(),
        result: &result,
        ..entry.clone()
    };
    shared.log.write(&logged);
    keep
}

/// A manifest or blob file found for a request, with what its answer names.
struct Found {
    opened: Opened,
    media_type: &'static str,
    digest: String,
}

type Refused = (ApiError, serde_json::Value);

/// The file a manifest or blob request names, or the spec's error for it.
fn locate(shared: &Shared, path: &str) -> Result<Found, Refused> {
    // The lexical rules of every other path first: `..`, NUL, `%`, `\`.
    if let Err(refusal) = root::normalize(path) {
        let why = refusal.as_str();
        let err = ApiError::new(
            400,
            "NAME_INVALID",
            "invalid repository name",
            &format!("refused:{why}"),
        );
        return Err((err, serde_json::Value::Null));
    }
    let Some(request) = layout::parse_oci_request(path) else {
        // Uploads, the catalog: not part of what a tree serves.
        let err = ApiError::new(
            404,
            "UNSUPPORTED",
            "only manifests, blobs and tag lists are served",
            "not-found:unsupported",
        );
        return Err((err, serde_json::Value::Null));
    };
    match request {
        // `v2/` itself was answered before; `v2/.` and such end up here.
        OciRequest::Base => Err((
            ApiError::new(
                404,
                "UNSUPPORTED",
                "not a pull route",
                "not-found:unsupported",
            ),
            serde_json::Value::Null,
        )),
        OciRequest::Manifest { name, reference } => manifest(shared, name, reference),
        OciRequest::Blob { name, digest } => blob(shared, name, digest),
    }
}

fn manifest(shared: &Shared, name: &str, reference: &str) -> Result<Found, Refused> {
    check_name(name)?;
    let by_digest = reference.contains(':');
    if by_digest {
        check_digest(reference)?;
    } else if !valid_tag(reference) {
        let err = ApiError::new(
            400,
            "NAME_INVALID",
            "invalid tag",
            "refused:invalid-reference",
        );
        return Err((err, serde_json::json!({ "reference": reference })));
    }
    let digests = shared.manifest_digests();
    for (kind, media_type) in layout::OCI_MANIFEST_KINDS {
        let dist_path = layout::oci_manifest(name, reference, kind);
        let Some(rel) = layout::http_relative(&dist_path) else {
            continue;
        };
        let opened = match shared.http_root.open(rel) {
            Ok(opened) => opened,
            Err(Refusal::NotFound) => continue,
            Err(refusal) => return Err(refused(refusal)),
        };
        let Some(sha256) = digests.get(&dist_path) else {
            // A file the manifest does not list is not part of the tree.
            let err = ApiError::new(
                404,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
                "not-found:not-in-manifest",
            );
            return Err((err, detail(name, reference)));
        };
        let digest = format!("sha256:{sha256}");
        if by_digest && digest != reference {
            // The tree was changed after it was built: `--check` names the file.
            let err = ApiError::new(
                404,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
                "refused:digest-mismatch",
            );
            return Err((err, detail(name, reference)));
        }
        return Ok(Found {
            opened,
            media_type,
            digest,
        });
    }
    Err(unknown(shared, name, reference, "MANIFEST_UNKNOWN"))
}

fn blob(shared: &Shared, name: &str, digest: &str) -> Result<Found, Refused> {
    check_name(name)?;
    check_digest(digest)?;
    let dist_path = layout::oci_blob(name, digest);
    let rel = layout::http_relative(&dist_path).unwrap_or(&dist_path);
    match shared.http_root.open(rel) {
        // Blobs are content-addressed: the name is the digest, verified at
        // build time and by `--check`.
        Ok(opened) => Ok(Found {
            opened,
            media_type: BLOB_TYPE,
            digest: digest.to_string(),
        }),
        Err(Refusal::NotFound) => Err(unknown(shared, name, digest, "BLOB_UNKNOWN")),
        Err(refusal) => Err(refused(refusal)),
    }
}

/// A missing manifest or blob: `NAME_UNKNOWN` when the tree has no such
/// repository at all, else `code`.
fn unknown(shared: &Shared, name: &str, reference: &str, code: &'static str) -> Refused {
    let repo = shared.http_root.dir().join(layout::OCI_V2).join(name);
    let err = if repo.is_dir() {
        let what = if code == "BLOB_UNKNOWN" {
            "blob unknown to registry"
        } else {
            "manifest unknown"
        };
        let result = format!("not-found:{}", code.to_ascii_lowercase().replace('_', "-"));
        ApiError::new(404, code, what, &result)
    } else {
        ApiError::new(
            404,
            "NAME_UNKNOWN",
            "repository name not known to registry: the tree does not carry this image",
            "not-found:name-unknown",
        )
    };
    (err, detail(name, reference))
}

fn detail(name: &str, reference: &str) -> serde_json::Value {
    serde_json::json!({ "name": name, "reference": reference })
}

/// A file the resolver refused (a symlink out of the tree, a directory).
fn refused(refusal: Refusal) -> Refused {
    let (status, code) = match refusal {
        Refusal::NotAFile => (404, "NAME_UNKNOWN"),
        Refusal::Invalid(_) => (400, "NAME_INVALID"),
        _ => (403, "DENIED"),
    };
    let err = ApiError::new(
        status,
        code,
        "not served",
        &format!("refused:{}", refusal.as_str()),
    );
    (err, serde_json::Value::Null)
}

/// Repository names as the spec writes them (lower-case components joined
/// by `.`, `_`, `__` or dashes), plus `:` for a registry's port in the
/// first component (dist names start with the registry: `host:5000/app`).
fn check_name(name: &str) -> Result<(), Refused> {
    let component_ok = |part: &str, first: bool| {
        !part.is_empty()
            && part.len() <= 255
            && part.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b"._-".contains(&b)
                    || (first && b == b':')
            })
            && part.as_bytes()[0].is_ascii_alphanumeric()
    };
    let ok = name.len() <= 255
        && name
            .split('/')
            .enumerate()
            .all(|(i, part)| component_ok(part, i == 0));
    if ok {
        return Ok(());
    }
    let err = ApiError::new(
        400,
        "NAME_INVALID",
        "invalid repository name",
        "refused:invalid-name",
    );
    Err((err, serde_json::json!({ "name": name })))
}

/// `sha256:` and 64 lower-case hex digits: the only digests a tree carries.
fn check_digest(digest: &str) -> Result<(), Refused> {
    let ok = digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        return Ok(());
    }
    let err = ApiError::new(
        400,
        "DIGEST_INVALID",
        "provided digest did not match uploaded content",
        "refused:invalid-digest",
    );
    Err((err, serde_json::json!({ "digest": digest })))
}

/// A tag as the spec allows it: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b))
}

/// `/v2/<name>/tags/list`: the tags the tree carries for `name` (its
/// manifest files not named by a digest), sorted; skopeo asks for it.
fn tags(
    stream: &mut TcpStream,
    shared: &Shared,
    entry: &mut Entry<'_>,
    req: &Request,
    keep: bool,
    name: &str,
) -> bool {
    let checked = root::normalize(name)
        .map_err(|refusal| {
            let why = format!("refused:{}", refusal.as_str());
            let err = ApiError::new(400, "NAME_INVALID", "invalid repository name", &why);
            (err, serde_json::Value::Null)
        })
        .and_then(|_| check_name(name));
    if let Err((err, detail)) = checked {
        return error(stream, shared, entry, req, keep, &err, &detail);
    }
    let dir = shared
        .http_root
        .dir()
        .join(layout::OCI_V2)
        .join(name)
        .join("manifests");
    let Ok(files) = std::fs::read_dir(&dir) else {
        let (err, detail) = unknown(shared, name, "tags/list", "NAME_UNKNOWN");
        return error(stream, shared, entry, req, keep, &err, &detail);
    };
    let mut tags: Vec<String> = files
        .filter_map(|f| f.ok()?.file_name().into_string().ok())
        .filter_map(|file| {
            let (reference, kind) = file.rsplit_once('.')?;
            let known = layout::oci_media_type(kind).is_some();
            (known && !reference.contains(':')).then(|| reference.to_string())
        })
        .collect();
    tags.sort();
    tags.dedup();
    let body = serde_json::json!({ "name": name, "tags": tags }).to_string();
    let written = json(stream, 200, keep, req.method == "HEAD", &body, &[]);
    let logged = Entry {
        status: Some(200),
        result: "ok",
        bytes: body.len() as u64,
        ..entry.clone()
    };
    shared.log.write(&logged);
    keep && written.is_ok()
}

/// `/v2/`: the version check, `{}` (an empty tree is an empty registry).
fn base(
    stream: &mut TcpStream,
    shared: &Shared,
    entry: &mut Entry<'_>,
    req: &Request,
    keep: bool,
) -> bool {
    let written = json(stream, 200, keep, req.method == "HEAD", "{}", &[]);
    entry.status = Some(200);
    entry.result = "ok";
    shared.log.write(entry);
    keep && written.is_ok()
}

fn error(
    stream: &mut TcpStream,
    shared: &Shared,
    entry: &mut Entry<'_>,
    req: &Request,
    keep: bool,
    err: &ApiError,
    detail: &serde_json::Value,
) -> bool {
    let allow = [("Allow", "GET, HEAD")];
    let extra: &[(&str, &str)] = if err.status == 405 { &allow } else { &[] };
    let written = json(
        stream,
        err.status,
        keep,
        req.method == "HEAD",
        &err.body(detail),
        extra,
    );
    let logged = Entry {
        status: Some(err.status),
        result: &err.result,
        ..entry.clone()
    };
    shared.log.write(&logged);
    keep && written.is_ok()
}

/// A small JSON response with the API version header.
fn json(
    stream: &mut TcpStream,
    status: u16,
    keep: bool,
    head_only: bool,
    body: &str,
    extra: &[(&str, &str)],
) -> std::io::Result<()> {
    let mut head = Head::new(status, keep).header(API_VERSION.0, API_VERSION.1);
    for (name, value) in extra {
        head = head.header(name, value);
    }
    let head = head
        .header("Content-Type", "application/json")
        .header("Content-Length", &body.len().to_string())
        .finish();
    let mut out = head.into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_digests_and_tags() {
        assert!(check_name("registry.k8s.io/pause").is_ok());
        assert!(check_name("docker.io/library/busybox").is_ok());
        assert!(check_name("127.0.0.1:5000/a/b-c__d").is_ok());
        assert!(check_name("Upper/case").is_err());
        assert!(check_name("a//b").is_err());
        assert!(check_name("a/b:c").is_err());
        assert!(check_name("a/.hidden").is_err());
        let hex = "a".repeat(64);
        assert!(check_digest(&format!("sha256:{hex}")).is_ok());
        assert!(check_digest("sha256:abc").is_err());
        assert!(check_digest(&format!("sha512:{hex}")).is_err());
        assert!(check_digest(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(valid_tag("3.10"));
        assert!(valid_tag("v1.31.2_x-y"));
        assert!(!valid_tag(".hidden"));
        assert!(!valid_tag(&"a".repeat(129)));
    }

    #[test]
    fn digests_come_from_the_manifest_files() {
        let manifest = Manifest {
            format: 1,
            inputs: "00".into(),
            files: vec![
                crate::manifest::FileEntry {
                    path: "http/v2/r/a/blobs/sha256:00".into(),
                    sha256: "00".into(),
                    size: 1,
                },
                crate::manifest::FileEntry {
                    path: "http/v2/r/a/manifests/1.oci-manifest".into(),
                    sha256: "ab".into(),
                    size: 1,
                },
            ],
            nodes: vec![],
            access: vec![],
            flatcar: None,
            images: vec![],
        };
        let digests = ManifestDigests::from_manifest(&manifest);
        assert_eq!(
            digests.get("http/v2/r/a/manifests/1.oci-manifest"),
            Some("ab")
        );
        assert_eq!(digests.get("http/v2/r/a/blobs/sha256:00"), None);
    }

    #[test]
    fn error_bodies_follow_the_spec() {
        let err = ApiError::new(404, "BLOB_UNKNOWN", "blob unknown to registry", "x");
        let body: serde_json::Value =
            serde_json::from_str(&err.body(&serde_json::json!({"digest": "d"}))).unwrap();
        assert_eq!(body["errors"][0]["code"], "BLOB_UNKNOWN");
        assert_eq!(body["errors"][0]["detail"]["digest"], "d");
    }
}
