//! `CommandInfo.environment` as Mesos validates and resolves it: a VALUE variable's value
//! (none is the empty string), a SECRET variable's secret, which ucr can resolve when it
//! carries its value (a reference needs a secret store ucr does not have). The value is
//! handed to the container alone: errors name the variable, never what it holds.

use http::StatusCode;

use super::codec::Refused;
use super::wire::v1::{environment::variable::Type, secret, Environment};

pub fn variables(env: Option<&Environment>) -> Result<Vec<(String, String)>, Refused> {
    let bad = |name: &str, why: &str| {
        Refused(
            StatusCode::BAD_REQUEST,
            format!("Failed to validate agent::Call: environment variable {name:?} {why}"),
        )
    };
    let mut out = Vec::new();
    for v in env.iter().flat_map(|e| &e.variables) {
        let value = match v.r#type() {
            Type::Value => {
                if v.secret.is_some() {
                    return Err(bad(&v.name, "of type VALUE must not have a secret"));
                }
                v.value.clone().unwrap_or_default()
            }
            Type::Secret => {
                if v.value.is_some() {
                    return Err(bad(&v.name, "of type SECRET must not have a value"));
                }
                let s = v
                    .secret
                    .as_ref()
                    .ok_or_else(|| bad(&v.name, "of type SECRET needs a secret"))?;
                match (s.r#type(), &s.value) {
                    (secret::Type::Value, Some(data)) => String::from_utf8(data.data.clone())
                        .map_err(|_| bad(&v.name, "has a secret that is not UTF-8"))?,
                    (secret::Type::Reference, _) => {
                        return Err(bad(
                            &v.name,
                            "names a secret reference: ucr has no secret resolver; send the value",
                        ))
                    }
                    _ => return Err(bad(&v.name, "has a secret without a value")),
                }
            }
            Type::Unknown => return Err(bad(&v.name, "has type UNKNOWN")),
        };
        out.push((v.name.clone(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_secret_values_resolve_and_errors_do_not_show_secrets() {
        let env: Environment = serde_json::from_str(
            r#"{"variables": [
                {"name": "PLAIN", "type": "VALUE", "value": "v"},
                {"name": "UNTYPED", "value": "u"},
                {"name": "EMPTY"},
                {"name": "TOKEN", "type": "SECRET", "secret": {"type": "VALUE", "value": {"data": "aHVudGVyMg=="}}}
            ]}"#,
        )
        .expect("an Environment");
        assert_eq!(
            variables(Some(&env)).expect("valid"),
            [
                ("PLAIN".to_string(), "v".to_string()),
                ("UNTYPED".into(), "u".into()),
                ("EMPTY".into(), String::new()),
                ("TOKEN".into(), "hunter2".into()),
            ]
        );
        let reference: Environment = serde_json::from_str(
            r#"{"variables": [{"name": "TOKEN", "type": "SECRET", "secret": {"type": "REFERENCE", "reference": {"name": "db"}}}]}"#,
        )
        .expect("an Environment");
        let e = variables(Some(&reference)).expect_err("no resolver");
        assert_eq!(e.0, StatusCode::BAD_REQUEST);
        assert!(e.1.contains("TOKEN"), "{}", e.1);
        let mixed: Environment = serde_json::from_str(
            r#"{"variables": [{"name": "X", "type": "SECRET", "value": "hunter2"}]}"#,
        )
        .expect("an Environment");
        let e = variables(Some(&mixed)).expect_err("value on a secret");
        assert!(!e.1.contains("hunter2"), "{}", e.1);
        assert!(variables(None).expect("none").is_empty());
    }
}
