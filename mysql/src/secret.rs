//! Secrets that are never shown, and where a shard's password comes from.
//!
//! A [`Secret`] prints `***` through `Debug` and `Display`: a password kept
//! in one cannot reach a log line or an error message by accident. A
//! [`PasswordRef`] names where the password is — a variable or a file of
//! the process that connects — and is what revdoor stores in etcd instead
//! of the password: each worker, coordinator and CLI resolves it locally
//! when it connects.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::MysqlError;

/// A value never shown: `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that needs it (the login).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a password is read: an environment variable or a file of the
/// process that connects. In a shard URL: `?password_env=NAME` or
/// `?password_file=/absolute/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordRef {
    Env(String),
    File(PathBuf),
}

/// The URL parameters naming a [`PasswordRef`].
pub const PASSWORD_ENV: &str = "password_env";
pub const PASSWORD_FILE: &str = "password_file";

impl PasswordRef {
    /// A variable name: letters, digits and `_`, not starting with a digit.
    pub fn env(name: &str) -> Result<PasswordRef, MysqlError> {
        let ok = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(MysqlError::Refused(format!(
                "{PASSWORD_ENV} '{name}' is not a variable name: use letters, digits and _ \
                 (e.g. REVDOOR_SHARD_PASSWORD)"
            )));
        }
        Ok(PasswordRef::Env(name.to_string()))
    }

    /// An absolute path without characters a URL would need to escape.
    pub fn file(path: &Path) -> Result<PasswordRef, MysqlError> {
        let text = path.to_string_lossy();
        if !path.is_absolute() {
            return Err(MysqlError::Refused(format!(
                "{PASSWORD_FILE} '{text}' is not an absolute path: every revdoor process reads \
                 it from its own working directory otherwise; give the full path"
            )));
        }
        if let Some(c) = text
            .chars()
            .find(|c| matches!(c, '&' | '#' | '?' | '%') || c.is_whitespace())
        {
            return Err(MysqlError::Refused(format!(
                "{PASSWORD_FILE} '{text}' holds '{c}', which a shard URL cannot carry: move the \
                 file to a path without it"
            )));
        }
        Ok(PasswordRef::File(path.to_path_buf()))
    }

    /// The URL parameter, `password_env=NAME` / `password_file=PATH`.
    pub fn param(&self) -> String {
        match self {
            PasswordRef::Env(n) => format!("{PASSWORD_ENV}={n}"),
            PasswordRef::File(p) => format!("{PASSWORD_FILE}={}", p.display()),
        }
    }

    /// The password, read now. A file's one trailing newline is not part
    /// of it.
    pub fn resolve(&self) -> Result<Secret, MysqlError> {
        let value = match self {
            PasswordRef::Env(name) => std::env::var(name).map_err(|e| {
                MysqlError::Refused(format!(
                    "{PASSWORD_ENV} {name}: {}: set it in the environment of every revdoor \
                     process that connects to this shard (workers, coordinators, and the CLI \
                     that checks it), or use {PASSWORD_FILE}",
                    match e {
                        std::env::VarError::NotPresent => "the variable is not set",
                        std::env::VarError::NotUnicode(_) => "the variable is not UTF-8",
                    }
                ))
            })?,
            PasswordRef::File(path) => {
                let mut text = std::fs::read_to_string(path).map_err(|e| {
                    MysqlError::Refused(format!(
                        "{PASSWORD_FILE} {}: cannot read it: {e}: the file must exist and be \
                         readable wherever revdoor connects to this shard (workers, \
                         coordinators, and the CLI that checks it)",
                        path.display()
                    ))
                })?;
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
                text
            }
        };
        if value.is_empty() {
            return Err(MysqlError::Refused(format!(
                "{}: the password is empty",
                self.param()
            )));
        }
        Ok(Secret(value))
    }
}

/// Write `password` to a new file only its owner can read (mode 0600),
/// replacing what was there: a `password_file` for a shard URL.
pub fn write_password_file(path: &Path, password: &Secret) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?
        .write_all(password.expose().as_bytes())
}

impl fmt::Display for PasswordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.param())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_never_shown() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?} {:?}", Some(&s)), "*** *** Some(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn references_resolve_or_say_what_to_do() {
        let dir = std::env::temp_dir().join(format!("revdoor-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("pw");
        std::fs::write(&file, "s3cret\n").expect("write");
        let r = PasswordRef::file(&file).expect("absolute");
        assert_eq!(r.resolve().expect("read").expose(), "s3cret");
        std::fs::write(&file, "").expect("write");
        let e = r.resolve().expect_err("empty");
        assert!(e.to_string().contains("the password is empty"), "{e}");
        let missing = PasswordRef::file(&dir.join("nope")).expect("absolute");
        let e = missing.resolve().expect_err("missing").to_string();
        assert!(
            e.starts_with(&format!(
                "password_file {}/nope: cannot read it",
                dir.display()
            )),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        let e = PasswordRef::file(Path::new("pw.txt")).expect_err("relative");
        assert!(e.to_string().contains("not an absolute path"), "{e}");
        let e = PasswordRef::file(Path::new("/a b")).expect_err("space");
        assert!(e.to_string().contains("cannot carry"), "{e}");
        let e = PasswordRef::env("A-B").expect_err("name");
        assert!(e.to_string().contains("not a variable name"), "{e}");
        let unset = PasswordRef::env("REVDOOR_SECRET_TEST_UNSET_VARIABLE").expect("name");
        let e = unset.resolve().expect_err("unset").to_string();
        assert!(
            e.contains("REVDOOR_SECRET_TEST_UNSET_VARIABLE: the variable is not set"),
            "{e}"
        );
    }
}
