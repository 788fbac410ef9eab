//! `serve`'s flags by name, for the two other places they come from:
//!
//! - the `--config` TOML file, whose keys are any flag's long name or alias, `-` or `_`;
//! - `MESOS_<FLAG>` environment variables, read as the Mesos agent reads its own (stout's
//!   flags with the `MESOS_` prefix): the rest of the name, any case, is a flag's long
//!   name or alias with `_` for `-` (`MESOS_WORK_DIR`, `MESOS_IMAGE_GC_CONFIG`,
//!   `MESOS_cni_conf_dir`). Variables that name no flag of ucr's are ignored, as Mesos
//!   ignores unknown ones (a DC/OS node sets many for agent features ucr lacks). A
//!   repeatable flag takes a comma-separated list.
//!
//! The names come from clap's own description of the flags, so a new flag is known to
//! both at once. Precedence (in `settings`): command line, then environment, then file.

use std::collections::BTreeMap;

use clap::Args;

use super::cli::{Cli, Command, ServeFlags};
use super::ConfigError;

/// The prefix of the environment variables, Mesos's.
pub const ENV_PREFIX: &str = "MESOS_";

struct Flag {
    /// The long name clap knows it by (`cni-conf-dir`).
    long: String,
    /// The struct field, which is the file's key after kebab-casing (`cni_conf_dir`).
    id: String,
    /// Repeatable (`--registry-mirror`, …).
    many: bool,
}

/// Lower-case, `_` for `-`: the form every spelling is compared in.
fn normal(name: &str) -> String {
    name.to_ascii_lowercase().replace('-', "_")
}

/// Every spelling of every `serve` flag (worked out once).
fn flags() -> &'static BTreeMap<String, Flag> {
    static FLAGS: std::sync::OnceLock<BTreeMap<String, Flag>> = std::sync::OnceLock::new();
    FLAGS.get_or_init(spellings)
}

fn spellings() -> BTreeMap<String, Flag> {
    let cmd = ServeFlags::augment_args(clap::Command::new("serve"));
    let mut out = BTreeMap::new();
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        let many = matches!(arg.get_action(), clap::ArgAction::Append);
        let spellings = std::iter::once(long).chain(arg.get_all_aliases().unwrap_or_default());
        for name in spellings {
            out.insert(
                normal(name),
                Flag {
                    long: long.to_string(),
                    id: arg.get_id().to_string(),
                    many,
                },
            );
        }
    }
    out
}

/// A `--config` file key in the form the file's deserializer knows (the field's name,
/// kebab-cased), whichever spelling it was written in; unknown keys are left as they
/// are, to be refused by name.
pub fn file_key(key: &str) -> String {
    match flags().get(&normal(key)) {
        Some(f) => f.id.replace('_', "-"),
        // Unknown: kept as written, so the error names the key the file has.
        None => key.to_string(),
    }
}

/// The flags the environment gives (`MESOS_<FLAG>=value`), as if given on a command
/// line of their own, each checked by the command line's own parser: a bad value is
/// refused naming its variable. Also returns the names of the variables read and of
/// those ignored (to be logged once logging is up; never their values).
pub fn from_env(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(ServeFlags, Vec<String>, Vec<String>), ConfigError> {
    let known = flags();
    let mut args: Vec<String> = Vec::new();
    let mut read = Vec::new();
    let mut ignored = Vec::new();
    for (var, value) in vars {
        let Some(name) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let Some(flag) = known.get(&normal(name)) else {
            ignored.push(var);
            continue;
        };
        let values: Vec<&str> = if flag.many {
            value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .collect()
        } else {
            vec![value.as_str()]
        };
        let mine: Vec<String> = values
            .iter()
            .map(|v| format!("--{}={v}", flag.long))
            .collect();
        // Alone first, so that a refusal names the variable.
        parse(&mine).map_err(|e| ConfigError::Env {
            var: var.clone(),
            reason: e,
        })?;
        args.extend(mine);
        read.push(var);
    }
    let flags = parse(&args).map_err(|reason| ConfigError::Env {
        var: read.join(", "),
        reason,
    })?;
    Ok((flags, read, ignored))
}

fn parse(args: &[String]) -> Result<ServeFlags, String> {
    use clap::Parser;
    let argv = ["ucr", "serve"]
        .into_iter()
        .map(String::from)
        .chain(args.iter().cloned());
    match Cli::try_parse_from(argv).map(|c| c.command) {
        Ok(Command::Serve(flags)) => Ok(*flags),
        Ok(_) => Err("not the serve command".into()),
        // clap's first line names the value and the flag; the usage text is not wanted.
        Err(e) => Err(e
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_string()),
    }
}

/// A boolean as Mesos parses one: `true`/`1` or `false`/`0`.
pub fn mesos_bool(value: &str) -> Result<bool, String> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err("Expecting a boolean (e.g., true or false)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn mesos_variables_by_any_spelling() {
        let (f, read, ignored) = from_env(env(&[
            ("MESOS_WORK_DIR", "/w"),
            ("MESOS_network_cni_config_dir", "/cni"),
            ("MESOS_INSECURE_REGISTRY", "a:5000, b:5000"),
            ("MESOS_AUTHENTICATE_HTTP_READONLY", "1"),
            // As DC/OS sets it (mesos-slave-common).
            ("MESOS_IMAGE_GC_CONFIG", r#"{"image_disk_headroom": 0.1}"#),
            ("MESOS_MASTER", "zk://elsewhere"),
            ("PATH", "/bin"),
        ]))
        .expect("valid");
        assert_eq!(f.root.as_deref(), Some(std::path::Path::new("/w")));
        assert_eq!(
            f.cni_conf_dir.as_deref(),
            Some(std::path::Path::new("/cni"))
        );
        assert_eq!(f.insecure_registry, ["a:5000", "b:5000"]);
        assert_eq!(f.authenticate_http_readonly, Some(true));
        assert_eq!(
            f.image_gc_config.as_deref(),
            Some(r#"{"image_disk_headroom": 0.1}"#)
        );
        assert_eq!(read.len(), 5, "MESOS_MASTER is no flag of ucr's: {read:?}");
        assert_eq!(ignored, ["MESOS_MASTER"]);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let e =
            from_env(env(&[("MESOS_MAX_CONCURRENT_DOWNLOADS", "many")])).expect_err("not a number");
        let m = e.to_string();
        assert!(
            m.contains("MESOS_MAX_CONCURRENT_DOWNLOADS") && m.contains("many"),
            "{m}"
        );
        let e = from_env(env(&[("MESOS_AUTHENTICATE_HTTP_READWRITE", "yes")]))
            .expect_err("Mesos booleans are true/false/1/0");
        assert!(e.to_string().contains("Expecting a boolean"), "{e}");
    }

    #[test]
    fn file_keys_in_any_spelling() {
        assert_eq!(file_key("network_cni_config_dir"), "cni-conf-dir");
        assert_eq!(file_key("work_dir"), "root");
        assert_eq!(file_key("image-gc-config"), "image-gc-config");
        // Unknown keys are kept as written, for the error to name.
        assert_eq!(file_key("no_such_flag"), "no_such_flag");
    }
}
