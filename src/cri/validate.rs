//! The Kubernetes rules for the names a CRI request carries, checked at the door: they
//! become file names, log paths and `CNI_ARGS` (`K8S_POD_NAME=…;K8S_POD_NAMESPACE=…`),
//! where a `;`, `=` or `/` would smuggle in other keys or paths. kubelet only sends what
//! the API server has validated; crictl and other clients send anything.
//!
//! As Kubernetes validates them (`IsDNS1123Subdomain`, `IsDNS1123Label`), with two
//! allowances for what critest 1.26, the CRI's own validation suite, sends: upper-case
//! letters (`PodSandbox-for-create-test-<uuid>`), and container names longer than a
//! label (up to a subdomain's 253 characters; `container-with-RunAsGroup-without-
//! RunAsUser-test-<uuid>` is 86).

use tonic::Status;

/// A DNS-1123 label's limit: a namespace.
const LABEL_MAX: usize = 63;
/// A DNS-1123 subdomain's limit: a pod name; here a container name and a uid too.
const SUBDOMAIN_MAX: usize = 253;

/// `metadata.name` of a pod: a DNS-1123 subdomain.
pub fn pod_name(value: &str) -> Result<(), Status> {
    subdomain("metadata.name", value)
}

/// `metadata.namespace` of a pod: a DNS-1123 label.
pub fn namespace(value: &str) -> Result<(), Status> {
    label("metadata.namespace", value)
}

/// `metadata.uid` of a pod: Kubernetes gives UUIDs (static pods: hex hashes); any
/// letters, digits, `-`, `_` and `.` are taken.
pub fn uid(value: &str) -> Result<(), Status> {
    let field = "metadata.uid";
    length(field, value, SUBDOMAIN_MAX)?;
    match value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        Some(c) => Err(bad(
            field,
            value,
            &format!("{c:?} is not allowed (letters, digits, '-', '_' and '.' are)"),
        )),
        None => Ok(()),
    }
}

/// `metadata.name` of a container: Kubernetes makes it a DNS-1123 label, but critest
/// sends dots (`…-block-chmod.json-…`), so labels joined by dots are taken, as long as a
/// subdomain may be. Nothing that could separate keys or paths gets through.
pub fn container_name(value: &str) -> Result<(), Status> {
    subdomain("metadata.name", value)
}

fn label(field: &str, value: &str) -> Result<(), Status> {
    length(field, value, LABEL_MAX)?;
    label_chars(field, value)
}

/// Letters, digits and `-`, starting and ending with a letter or digit.
fn label_chars(field: &str, value: &str) -> Result<(), Status> {
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(bad(
            field,
            value,
            &format!("{c:?} is not allowed (letters, digits and '-' are)"),
        ));
    }
    ends_alphanumeric(field, value)
}

/// Labels joined by dots.
fn subdomain(field: &str, value: &str) -> Result<(), Status> {
    length(field, value, SUBDOMAIN_MAX)?;
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.')))
    {
        return Err(bad(
            field,
            value,
            &format!("{c:?} is not allowed (letters, digits, '-' and '.' are)"),
        ));
    }
    let ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if value
        .split('.')
        .any(|part| !ok(part.chars().next()) || !ok(part.chars().last()))
    {
        return Err(bad(
            field,
            value,
            "must be labels joined by dots, each starting and ending with a letter or a digit",
        ));
    }
    Ok(())
}

fn length(field: &str, value: &str, max: usize) -> Result<(), Status> {
    if value.is_empty() {
        return Err(bad(field, value, "must not be empty"));
    }
    if value.len() > max {
        let why = format!(
            "is {} characters long; at most {max} are allowed",
            value.len()
        );
        return Err(bad(field, value, &why));
    }
    Ok(())
}

fn ends_alphanumeric(field: &str, value: &str) -> Result<(), Status> {
    let ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if ok(value.chars().next()) && ok(value.chars().last()) {
        return Ok(());
    }
    Err(bad(
        field,
        value,
        "must start and end with a letter or a digit",
    ))
}

fn bad(field: &str, value: &str, why: &str) -> Status {
    // A 300-character value is shown shortened: the field and the reason say enough.
    let shown: String = value.chars().take(80).collect();
    let more = if shown.len() < value.len() { "…" } else { "" };
    Status::invalid_argument(format!("{field} {shown:?}{more} {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_kubelet_and_critest_send_is_taken() {
        pod_name("nginx-7c5ddbdf54-x2x9q").expect("kubelet");
        pod_name("PodSandbox-for-create-test-5e9f2c8a-1d3b-4b4e-9f0a-0c6b1c2d3e4f")
            .expect("critest");
        pod_name("kube-proxy.node-1").expect("dots");
        namespace("kube-system").expect("namespace");
        uid("5e9f2c8a-1d3b-4b4e-9f0a-0c6b1c2d3e4f").expect("uuid");
        uid("cri-test-uid5e9f2c8a").expect("critest uid");
        container_name(&format!(
            "container-with-RunAsGroup-without-RunAsUser-test-{}",
            "5e9f2c8a-1d3b-4b4e-9f0a-0c6b1c2d3e4f"
        ))
        .expect("critest container");
        container_name("seccomp-container-localhost--tmp-seccomp-tests1-block-chmod.json-c9d418d")
            .expect("critest seccomp container");
    }

    #[test]
    fn what_could_smuggle_keys_or_paths_is_refused() {
        for bad in [
            "a;b", "a=b", "a/b", "../x", "a b", "", "-a", "a-", "a..b", "a\0b",
        ] {
            let e = pod_name(bad).expect_err(bad);
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{bad}");
            assert!(e.message().starts_with("metadata.name"), "{}", e.message());
            assert!(container_name(bad).is_err(), "{bad}");
            assert!(namespace(bad).is_err(), "{bad}");
        }
        assert!(namespace("a.b").is_err(), "a namespace is a label");
        assert!(uid("a;b").is_err() && uid("a/b").is_err() && uid("").is_err());
        let long = "a".repeat(300);
        for e in [
            pod_name(&long),
            container_name(&long),
            namespace(&long),
            uid(&long),
        ] {
            let e = e.expect_err("300 characters");
            assert!(
                e.message().contains("300 characters long"),
                "{}",
                e.message()
            );
        }
        assert!(namespace(&"a".repeat(64)).is_err());
        namespace(&"a".repeat(63)).expect("63");
        pod_name(&"a".repeat(253)).expect("253");
    }
}
