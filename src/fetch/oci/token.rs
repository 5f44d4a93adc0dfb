//! The anonymous bearer-token flow public registries use: a 401 carries
//! `WWW-Authenticate: Bearer realm="…",service="…",scope="…"`; a GET of
//! `realm?service=…&scope=…` answers `{"token": …}` (or `access_token`),
//! which the retried request sends as `Authorization: Bearer …`.
use anyhow::{anyhow, bail, Result};
use serde::Deserialize;

use crate::fetch::http::Client;

/// A bearer challenge's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub realm: String,
    pub service: Option<String>,
    pub scope: Option<String>,
}

/// Parses a `WWW-Authenticate` value; `None` unless it is a Bearer challenge
/// with a realm (Basic asks for credentials, which pxebuild does not have).
pub(crate) fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, params) = value.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut scope = None;
    for (key, val) in params_of(params) {
        match key.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(val),
            "service" => service = Some(val),
            "scope" => scope = Some(val),
            _ => {}
        }
    }
    Some(Challenge {
        realm: realm.filter(|r| !r.is_empty())?,
        service,
        scope,
    })
}

/// `key="value", key=value` pairs; quoted values may hold commas (a scope
/// with several actions: `repository:x:pull,push`).
fn params_of(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (val, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (quoted[..end].to_string(), &quoted[end + 1..]),
                None => (quoted.to_string(), ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (after[..end].trim().to_string(), &after[end..]),
                None => (after.trim().to_string(), ""),
            }
        };
        out.push((key, val));
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

/// Asks the challenge's realm for an anonymous token; a refusal (any
/// status but 200, or no token in the answer) is an error saying so.
pub(crate) fn fetch(client: &Client, challenge: &Challenge) -> Result<String> {
    let mut query = Vec::new();
    if let Some(service) = &challenge.service {
        query.push(format!("service={}", encode(service)));
    }
    if let Some(scope) = &challenge.scope {
        query.push(format!("scope={}", encode(scope)));
    }
    let sep = if challenge.realm.contains('?') {
        '&'
    } else {
        '?'
    };
    let url = if query.is_empty() {
        challenge.realm.clone()
    } else {
        format!("{}{sep}{}", challenge.realm, query.join("&"))
    };
    let answer = client.fetch_answer(&url, false, &[], None, 1 << 20)?;
    if answer.status != 200 {
        bail!(
            "the registry refused the token: {} answered HTTP {}",
            answer.url,
            answer.status
        );
    }
    let parsed: TokenAnswer = serde_json::from_slice(&answer.body).map_err(|e| {
        anyhow!(
            "the registry refused the token: {} did not answer a token ({e})",
            answer.url
        )
    })?;
    parsed
        .token
        .or(parsed.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            anyhow!(
                "the registry refused the token: {} answered no token",
                answer.url
            )
        })
}

/// Percent-encodes a query value (everything but unreserved characters).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_challenge_is_read_with_its_quoted_commas() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.realm, "https://auth.docker.io/token");
        assert_eq!(c.service.as_deref(), Some("registry.docker.io"));
        assert_eq!(
            c.scope.as_deref(),
            Some("repository:library/busybox:pull,push")
        );
        let bare = parse_challenge("bearer realm=http://h/t, service=s").unwrap();
        assert_eq!(bare.realm, "http://h/t");
        assert_eq!(bare.service.as_deref(), Some("s"));
        assert_eq!(bare.scope, None);
        assert_eq!(parse_challenge(r#"Basic realm="registry""#), None);
        assert_eq!(parse_challenge(r#"Bearer service="s""#), None);
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
    }
}
