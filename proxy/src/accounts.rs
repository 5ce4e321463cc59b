//! Client accounts: `user:password` lines of `--accounts-file`. The proxy
//! checks a client's `mysql_native_password` answer against them and
//! connects to the backends with the same account. Passwords are never
//! logged or printed (`Debug` shows the user names only).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use anyhow::{bail, Context};

/// The accounts a proxy accepts.
#[derive(Clone, Default)]
pub struct Accounts(HashMap<String, String>);

impl fmt::Debug for Accounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut users: Vec<&String> = self.0.keys().collect();
        users.sort();
        f.debug_tuple("Accounts").field(&users).finish()
    }
}

impl Accounts {
    /// Read `path`: one `user:password` a line; blank lines and lines
    /// starting with `#` are skipped.
    pub fn read(path: &Path) -> anyhow::Result<Accounts> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--accounts-file {}: cannot read it", path.display()))?;
        Accounts::parse(&text).with_context(|| format!("--accounts-file {}", path.display()))
    }

    /// Parse `user:password` lines (the password may contain `:`).
    pub fn parse(text: &str) -> anyhow::Result<Accounts> {
        let mut map = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let Some((user, password)) = line.split_once(':') else {
                bail!("line {}: expected user:password (no ':' found)", n + 1);
            };
            if user.is_empty() {
                bail!("line {}: the user name before ':' is empty", n + 1);
            }
            if map.insert(user.to_string(), password.to_string()).is_some() {
                bail!("line {}: user {user} is listed twice; keep one line", n + 1);
            }
        }
        if map.is_empty() {
            bail!("no account in it; add user:password lines");
        }
        Ok(Accounts(map))
    }

    /// The password of `user` when `auth_data` is its `mysql_native_password`
    /// answer to `salt`.
    pub fn check(&self, user: &str, salt: &[u8], auth_data: &[u8]) -> Option<&str> {
        let password = self.0.get(user)?;
        let expected = mysql_common::scramble::scramble_native(salt, password.as_bytes());
        let ok = match expected {
            // An empty password: the client sends an empty answer.
            None => auth_data.is_empty(),
            Some(e) => e.as_slice() == auth_data,
        };
        ok.then_some(password.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_check() {
        let a = Accounts::parse("# app\napp:app-pw\n\nro:p:w\n").unwrap();
        let salt = b"abcdefghijklmnopqrst";
        let answer = mysql_common::scramble::scramble_native(salt, b"app-pw").unwrap();
        assert_eq!(a.check("app", salt, &answer), Some("app-pw"));
        let wrong = mysql_common::scramble::scramble_native(salt, b"nope").unwrap();
        assert_eq!(a.check("app", salt, &wrong), None);
        assert_eq!(a.check("nobody", salt, &answer), None);
        let colon = mysql_common::scramble::scramble_native(salt, b"p:w").unwrap();
        assert_eq!(a.check("ro", salt, &colon), Some("p:w"));
        assert!(!format!("{a:?}").contains("app-pw"));
    }

    #[test]
    fn bad_files_name_the_line() {
        let e = Accounts::parse("app:x\njunk\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("user:password"), "{e}");
        let e = Accounts::parse(":x\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("empty"), "{e}");
        let e = Accounts::parse("a:x\na:y\n").unwrap_err().to_string();
        assert!(e.contains("twice"), "{e}");
        assert!(Accounts::parse("# only\n").is_err());
    }
}
