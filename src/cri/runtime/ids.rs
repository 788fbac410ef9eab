//! crictl's id prefixes: a CRI client may name a pod or container by any unique prefix of
//! its id (`crictl stop 3f2a`). The core's ids are exact; this door resolves them.

use tonic::Status;

/// The full id `wanted` names among `ids`: itself, or the one id it is a prefix of.
/// `None` when it names none; InvalidArgument when it is empty or names several.
pub fn resolve(what: &str, ids: Vec<String>, wanted: &str) -> Result<Option<String>, Status> {
    if wanted.is_empty() {
        return Err(Status::invalid_argument(format!(
            "{what} id must not be empty"
        )));
    }
    let matches: Vec<String> = ids
        .into_iter()
        .filter(|id| id.starts_with(wanted))
        .collect();
    if matches.iter().any(|id| id == wanted) {
        return Ok(Some(wanted.to_string()));
    }
    match matches.len() {
        0 => Ok(None),
        1 => Ok(matches.into_iter().next()),
        count => Err(Status::invalid_argument(format!(
            "{what} id prefix {wanted:?} matches {count} ids"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_then_unique_prefix() {
        let ids = || vec!["abc1".to_string(), "abc12".to_string(), "def".to_string()];
        assert_eq!(
            resolve("c", ids(), "abc1").expect("exact"),
            Some("abc1".into())
        );
        assert_eq!(
            resolve("c", ids(), "d").expect("prefix"),
            Some("def".into())
        );
        assert_eq!(resolve("c", ids(), "x").expect("none"), None);
        let e = resolve("container", ids(), "ab").expect_err("ambiguous");
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("matches 2 ids"), "{}", e.message());
        assert!(resolve("c", ids(), "").is_err());
    }
}
