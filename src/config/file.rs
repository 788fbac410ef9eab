//! The config files: `--config` (default `/etc/ucr/config.toml`) and the drop-ins of
//! `--config-dir` (default `/etc/ucr/config.d`), `*.toml` merged over it in lexical
//! order, as CRI-O merges `crio.conf.d`: a key in a later file replaces the earlier value
//! (a list too, whole). Keys are any flag's long name or alias, `-` or `_`. Each file is
//! checked on its own, so an unknown key is an error naming the key and its file. The
//! default paths may be missing; a path given explicitly must exist. An empty path turns
//! that source off.

use std::path::{Path, PathBuf};

use super::{ConfigError, ServeFlags};

pub const DEFAULT_CONFIG: &str = "/etc/ucr/config.toml";
pub const DEFAULT_CONFIG_DIR: &str = "/etc/ucr/config.d";

/// What the files say, merged. `config`/`config_dir`: the flag's value when given.
pub fn load(config: Option<&Path>, config_dir: Option<&Path>) -> Result<ServeFlags, ConfigError> {
    let mut merged = toml::Table::new();
    for path in files(config, config_dir)? {
        for (k, v) in read(&path)? {
            merged.insert(k, v);
        }
    }
    // Each file passed on its own; the merge of valid tables is valid.
    merged.try_into().map_err(|source| ConfigError::Parse {
        path: PathBuf::from("(merged config files)"),
        source: Box::new(source),
    })
}

/// The files to read, in order.
pub fn files(
    config: Option<&Path>,
    config_dir: Option<&Path>,
) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out = Vec::new();
    match config {
        Some(p) if p.as_os_str().is_empty() => {}
        Some(p) => out.push(p.to_path_buf()),
        None if Path::new(DEFAULT_CONFIG).exists() => out.push(DEFAULT_CONFIG.into()),
        None => {}
    }
    let (dir, explicit) = match config_dir {
        Some(d) if d.as_os_str().is_empty() => return Ok(out),
        Some(d) => (d.to_path_buf(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_DIR), false),
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => return Err(ConfigError::Read { path: dir, source }),
    };
    let mut drop_ins: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    drop_ins.sort();
    out.extend(drop_ins);
    Ok(out)
}

/// One file's table, its keys in the deserializer's spelling, checked against the flags.
fn read(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let parse = |source| ConfigError::Parse {
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let table: toml::Table = toml::from_str::<toml::Table>(&text)
        .map_err(parse)?
        .into_iter()
        .map(|(k, v)| (super::names::file_key(&k), v))
        .collect();
    // Checked alone, for an error that names this file (`unknown field `x``).
    table.clone().try_into::<ServeFlags>().map_err(parse)?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_ins_merge_in_lexical_order_over_the_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let main = dir.path().join("config.toml");
        std::fs::write(
            &main,
            "root = \"/a\"\nlog-level = \"debug\"\npinned-images = [\"x\"]\n",
        )
        .expect("w");
        let d = dir.path().join("config.d");
        std::fs::create_dir(&d).expect("mkdir");
        std::fs::write(d.join("20-late.toml"), "work_dir = \"/c\"\n").expect("w");
        std::fs::write(
            d.join("10-early.toml"),
            "root = \"/b\"\npinned-images = [\"y\", \"z\"]\n",
        )
        .expect("w");
        std::fs::write(d.join("05-ignored.conf"), "nonsense").expect("w");
        let f = load(Some(&main), Some(&d)).expect("merged");
        assert_eq!(
            f.root.as_deref(),
            Some(Path::new("/c")),
            "the last file wins"
        );
        assert_eq!(
            f.log_level.as_deref(),
            Some("debug"),
            "kept from the config"
        );
        assert_eq!(f.pinned_images, ["y", "z"], "a list is replaced whole");
    }

    #[test]
    fn an_unknown_key_names_itself_and_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("10-typo.toml"), "roott = \"/x\"\n").expect("w");
        let e = load(Some(Path::new("")), Some(dir.path())).expect_err("unknown key");
        let text = crate::error::chain(&e);
        assert!(
            text.contains("roott") && text.contains("10-typo.toml"),
            "{text}"
        );
    }

    #[test]
    fn given_paths_must_exist_and_empty_ones_turn_a_source_off() {
        let missing = Path::new("/nonexistent/ucr.toml");
        assert!(matches!(
            load(Some(missing), Some(Path::new(""))),
            Err(ConfigError::Read { .. })
        ));
        assert!(matches!(
            load(
                Some(Path::new("")),
                Some(Path::new("/nonexistent/config.d"))
            ),
            Err(ConfigError::Read { .. })
        ));
        assert_eq!(
            files(Some(Path::new("")), Some(Path::new(""))).expect("none"),
            Vec::<PathBuf>::new()
        );
    }
}
