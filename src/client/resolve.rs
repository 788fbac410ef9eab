//! Id prefixes, as docker and crictl take them: a full id, or a prefix that names exactly
//! one id. The client resolves them itself (against a listing) so that every subcommand
//! accepts them, and so an ambiguous prefix is answered with the ids it matches.

use super::ClientError;

/// The one id `wanted` names among `ids`: itself when it is one, else the single id it
/// is a prefix of.
pub fn resolve<'a>(
    what: &'static str,
    ids: impl IntoIterator<Item = &'a str>,
    wanted: &str,
) -> Result<String, ClientError> {
    let not_found = || ClientError::NotFound {
        what,
        id: wanted.to_string(),
    };
    if wanted.is_empty() {
        return Err(not_found());
    }
    let mut matches: Vec<&str> = ids
        .into_iter()
        .filter(|id| id.starts_with(wanted))
        .collect();
    if matches.contains(&wanted) {
        return Ok(wanted.to_string());
    }
    matches.sort_unstable();
    matches.dedup();
    match matches.as_slice() {
        [] => Err(not_found()),
        [one] => Ok(one.to_string()),
        many => Err(ClientError::Ambiguous {
            what,
            prefix: wanted.to_string(),
            matches: many.iter().map(|m| m.to_string()).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: [&str; 3] = ["3f2a91c0", "3f2b0000", "77aa"];

    #[test]
    fn a_unique_prefix_names_its_id() {
        assert_eq!(resolve("container", IDS, "3f2a").expect("one"), "3f2a91c0");
        assert_eq!(resolve("container", IDS, "7").expect("one"), "77aa");
        assert_eq!(resolve("container", IDS, "77aa").expect("exact"), "77aa");
    }

    #[test]
    fn an_exact_id_wins_over_longer_ones() {
        let ids = ["abc", "abcd"];
        assert_eq!(resolve("pod", ids, "abc").expect("exact"), "abc");
    }

    #[test]
    fn ambiguous_and_unknown_prefixes_are_errors_naming_them() {
        let e = resolve("container", IDS, "3f").expect_err("ambiguous");
        assert_eq!(
            e.to_string(),
            "container id prefix \"3f\" is ambiguous: it matches 3f2a91c0, 3f2b0000"
        );
        let e = resolve("container", IDS, "zz").expect_err("unknown");
        assert_eq!(e.to_string(), "no container matches \"zz\"");
        assert!(resolve("container", IDS, "").is_err());
    }
}
