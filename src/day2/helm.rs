//! helm argument vectors. Pure: tests assert the exact commands.
use std::path::Path;

use super::kubeconfig_args;

/// Release name and namespace of Argo CD.
pub(crate) const ARGO_RELEASE: &str = "argocd";
pub(crate) const ARGO_NAMESPACE: &str = "argocd";

/// One Helm release to install or upgrade.
#[derive(Debug, Clone)]
pub(crate) struct Release<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub chart: &'a str,
    /// Chart repository URL (`--repo`), e.g. a mirror for air-gapped sites.
    pub repo: &'a str,
    pub version: &'a str,
    pub values: &'a Path,
    /// How long `--wait` may take, e.g. "10m".
    pub timeout: &'a str,
}

/// `helm upgrade --install`: installs the first time, upgrades afterwards, and
/// waits for the workloads so the CRDs exist before anything uses them. An
/// `oci://` repository (a registry, as many mirrors are) is not a `--repo`:
/// the chart is named by its full reference there.
pub(crate) fn upgrade_install(kubeconfig: &Path, r: &Release) -> Vec<String> {
    let mut args = kubeconfig_args(kubeconfig);
    let oci_ref = r
        .repo
        .starts_with("oci://")
        .then(|| format!("{}/{}", r.repo.trim_end_matches('/'), r.chart));
    let chart = match &oci_ref {
        Some(reference) => vec![reference.as_str()],
        None => vec![r.chart, "--repo", r.repo],
    };
    args.extend(["upgrade", "--install", r.name].map(String::from));
    args.extend(chart.into_iter().map(String::from));
    let rest = [
        "--version",
        r.version,
        "--namespace",
        r.namespace,
        "--create-namespace",
        "--values",
        &r.values.display().to_string(),
        "--wait",
        "--timeout",
        r.timeout,
    ]
    .map(String::from);
    args.extend(rest);
    args
}

/// `helm get values RELEASE --namespace NS --output json`: the values a release
/// was installed with.
pub(crate) fn get_values(kubeconfig: &Path, release: &str, namespace: &str) -> Vec<String> {
    let mut args = kubeconfig_args(kubeconfig);
    let rest = [
        "get",
        "values",
        release,
        "--namespace",
        namespace,
        "--output",
        "json",
    ];
    args.extend(rest.map(String::from));
    args
}

/// `helm list --namespace NS --filter ^RELEASE$ --output json`.
pub(crate) fn list(kubeconfig: &Path, release: &str, namespace: &str) -> Vec<String> {
    let mut args = kubeconfig_args(kubeconfig);
    let filter = format!("^{release}$");
    let rest = [
        "list",
        "--namespace",
        namespace,
        "--all",
        "--filter",
        &filter,
        "--output",
        "json",
    ];
    args.extend(rest.map(String::from));
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::catalog::argocd;

    #[test]
    fn get_values_is_exact() {
        assert_eq!(
            get_values(Path::new("kc"), "cilium", "kube-system").join(" "),
            "--kubeconfig kc get values cilium --namespace kube-system --output json"
        );
    }

    #[test]
    fn upgrade_install_is_exact() {
        let values = Path::new("payload/bootstrap/argocd-values.yaml");
        let r = Release {
            name: ARGO_RELEASE,
            namespace: ARGO_NAMESPACE,
            chart: argocd::CHART,
            repo: argocd::HELM_REPO,
            version: "8.1.2",
            values,
            timeout: "10m",
        };
        assert_eq!(
            upgrade_install(Path::new("secrets/kubeconfig"), &r).join(" "),
            "--kubeconfig secrets/kubeconfig upgrade --install argocd argo-cd \
             --repo https://argoproj.github.io/argo-helm --version 8.1.2 --namespace argocd \
             --create-namespace --values payload/bootstrap/argocd-values.yaml --wait --timeout 10m"
        );
        let oci = Release {
            repo: "oci://registry.lan/charts/",
            ..r
        };
        assert_eq!(
            upgrade_install(Path::new("secrets/kubeconfig"), &oci).join(" "),
            "--kubeconfig secrets/kubeconfig upgrade --install argocd \
             oci://registry.lan/charts/argo-cd --version 8.1.2 --namespace argocd \
             --create-namespace --values payload/bootstrap/argocd-values.yaml --wait --timeout 10m"
        );
    }
}
