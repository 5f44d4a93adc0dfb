//! Warnings about releases that are no longer (or never were) supported
//! together: the facts and their sources are in `site::versions`.
use super::{check_version, Checker, VPrefix};
use crate::site::schema::RawSiteFile;
use crate::site::source::KeyPath;
use crate::site::versions;

pub(super) fn check_support(c: &mut Checker<'_, '_>, file: &RawSiteFile, today: i64) {
    let k8s_path = KeyPath::of("cluster.kubernetes_version");
    let k8s = &file.cluster.kubernetes_version;
    // A stand-in for a bad or missing key, or a version already reported as
    // malformed, says nothing about what the site runs.
    if c.unsure(&k8s_path) || check_version(k8s, VPrefix::Required).is_err() {
        return;
    }
    if let Some(msg) = versions::kubernetes_problem(k8s, today) {
        c.warn(&k8s_path, msg);
    }
    let cilium_path = KeyPath::of("cilium.version");
    let cilium = &file.cilium.version;
    if c.unsure(&cilium_path) || check_version(cilium, VPrefix::Forbidden).is_err() {
        return;
    }
    if let Some(msg) = versions::cilium_problem(cilium, k8s) {
        c.warn(&cilium_path, msg);
    }
}
