//! Finding the program to exec, as runc does: `args[0]` in the process's own `PATH`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::setup::SetupError;
use super::spec::DEFAULT_PATH;

/// The program to run (`executable`, else `args[0]`) as a path: as given when it holds a
/// `/`, else the first executable file of that name in the `PATH` of `env` (the last
/// `PATH=` entry, [`DEFAULT_PATH`] when there is none), with runc's message when there is
/// no such file.
pub(crate) fn find_executable(
    executable: Option<&String>,
    args: &[String],
    env: &[String],
) -> Result<PathBuf, SetupError> {
    let program = executable.or(args.first()).ok_or(SetupError::NoCommand)?;
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
        .ok_or_else(|| SetupError::NotInPath {
            program: program.clone(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_name_is_looked_up_in_the_last_path_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (skipped, bin) = (dir.path().join("skipped"), dir.path().join("bin"));
        for d in [&skipped, &bin] {
            std::fs::create_dir(d).expect("dir");
        }
        // Not executable, or a directory: passed over.
        std::fs::write(skipped.join("tool"), b"").expect("file");
        std::fs::create_dir(skipped.join("sub")).expect("dir");
        std::fs::write(bin.join("tool"), b"").expect("file");
        std::fs::set_permissions(bin.join("tool"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let env = strings(&[
            "PATH=/nowhere",
            &format!("PATH=:{}:{}", skipped.display(), bin.display()),
        ]);
        let found = find_executable(None, &strings(&["tool", "-x"]), &env).expect("found");
        assert_eq!(found, bin.join("tool"));
        let e = find_executable(None, &strings(&["sub"]), &env).expect_err("a directory");
        assert_eq!(
            e.to_string(),
            "exec: \"sub\": executable file not found in $PATH"
        );
    }

    #[test]
    fn a_path_is_taken_as_given_and_no_command_is_refused() {
        let args = strings(&["./missing"]);
        assert_eq!(
            find_executable(None, &args, &[]).expect("as given"),
            Path::new("./missing")
        );
        assert!(matches!(
            find_executable(None, &[], &[]),
            Err(SetupError::NoCommand)
        ));
    }
}
