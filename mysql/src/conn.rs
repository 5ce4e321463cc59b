//! Where revdoor connects: shard URLs (`mysql://user:password@host:port`)
//! parsed into connection options, and shown without their password.
//!
//! # Passwords
//!
//! A shard URL either holds its password (`mysql://u:pw@h:3306`: accepted
//! by the one-stream commands and found in records written by revdoor
//! before 0.1's secrets work) or names where it is:
//! `mysql://u@h:3306?password_env=NAME` or `?password_file=/path` — the
//! form `keyspace add` stores, so that etcd holds no password. [`Dsn`]
//! splits the two; [`opts`] resolves the reference in the process that
//! connects, each time it builds connection options.

use mysql_async::{Opts, OptsBuilder, UrlError};

use crate::secret::{PasswordRef, Secret, PASSWORD_ENV, PASSWORD_FILE};
use crate::MysqlError;

/// A shard URL with its password kept apart: `Display` and `Debug` show
/// it with `***` in place of a password, and never a reference's value.
#[derive(Clone, PartialEq, Eq)]
pub struct Dsn {
    /// Without the password and the reference parameter.
    bare: String,
    password: Option<Password>,
}

/// Where a [`Dsn`]'s password is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// Inside the URL.
    Inline(Secret),
    /// Named by the URL, resolved where revdoor connects.
    Ref(PasswordRef),
}

impl Dsn {
    /// Split `url`; a URL with both a password and a reference, or two
    /// references, is refused.
    pub fn parse(url: &str) -> Result<Dsn, MysqlError> {
        let refused =
            |why: &str| MysqlError::Refused(format!("MySQL URL '{}': {why}", redact(url)));
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (url, None),
        };
        let mut reference = None;
        let mut kept = Vec::new();
        for p in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
        {
            let r = match p.split_once('=') {
                Some((PASSWORD_ENV, name)) => PasswordRef::env(name)?,
                Some((PASSWORD_FILE, path)) => PasswordRef::file(std::path::Path::new(path))?,
                _ => {
                    kept.push(p);
                    continue;
                }
            };
            if reference.replace(r).is_some() {
                return Err(refused(&format!(
                    "give one of {PASSWORD_ENV} and {PASSWORD_FILE}, once"
                )));
            }
        }
        let mut bare = base.to_string();
        let mut inline = None;
        if let (Some(s), Some(at)) = (base.find("://"), base.rfind('@')) {
            if at > s {
                if let Some(c) = base[s + 3..at].find(':') {
                    let c = s + 3 + c;
                    inline = Some(Secret::new(&base[c + 1..at]));
                    bare = format!("{}{}", &base[..c], &base[at..]);
                }
            }
        }
        if !kept.is_empty() {
            bare.push('?');
            bare.push_str(&kept.join("&"));
        }
        let password = match (inline, reference) {
            (Some(_), Some(_)) => {
                return Err(refused(&format!(
                    "holds a password and {PASSWORD_ENV}/{PASSWORD_FILE}: give one"
                )))
            }
            (Some(p), None) => Some(Password::Inline(p)),
            (None, Some(r)) => Some(Password::Ref(r)),
            (None, None) => None,
        };
        Ok(Dsn { bare, password })
    }

    pub fn password(&self) -> Option<&Password> {
        self.password.as_ref()
    }

    /// The same server and account with `reference` for its password
    /// (replacing a password inside the URL).
    pub fn with_ref(&self, reference: PasswordRef) -> Dsn {
        Dsn {
            bare: self.bare.clone(),
            password: Some(Password::Ref(reference)),
        }
    }

    /// The URL to store: its reference kept, never an inline password
    /// (`None` when it holds one).
    pub fn stored(&self) -> Option<String> {
        match &self.password {
            Some(Password::Inline(_)) => None,
            Some(Password::Ref(r)) => Some(self.with_param(&r.param())),
            None => Some(self.bare.clone()),
        }
    }

    fn with_param(&self, param: &str) -> String {
        let sep = if self.bare.contains('?') { '&' } else { '?' };
        format!("{}{sep}{param}", self.bare)
    }

    /// Connection options; a reference is resolved now, in this process.
    /// See [`exact`].
    pub fn opts(&self) -> Result<Opts, MysqlError> {
        let bad = |source| MysqlError::Url {
            url: self.to_string(),
            source,
        };
        let mut b =
            OptsBuilder::from_opts(Opts::from_url(&self.bare).map_err(bad)?).prefer_socket(false);
        match &self.password {
            Some(Password::Inline(_)) => {
                // The URL's own decoding of its password (percent-escapes).
                let full = self.inline_url();
                b = OptsBuilder::from_opts(Opts::from_url(full.expose()).map_err(bad)?)
                    .prefer_socket(false);
            }
            Some(Password::Ref(r)) => b = b.pass(Some(r.resolve()?.expose().to_string())),
            None => {}
        }
        Ok(b.into())
    }

    /// The URL with its inline password back in place.
    fn inline_url(&self) -> Secret {
        let Some(Password::Inline(pw)) = &self.password else {
            return Secret::new(self.bare.clone());
        };
        let s = self.bare.find("://").map_or(0, |s| s + 3);
        let at = self.bare[s..].find('@').map_or(s, |a| s + a);
        Secret::new(format!(
            "{}:{}{}",
            &self.bare[..at],
            pw.expose(),
            &self.bare[at..]
        ))
    }
}

impl std::fmt::Display for Dsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.password {
            Some(Password::Inline(_)) => {
                let s = self.bare.find("://").map_or(0, |s| s + 3);
                let at = self.bare[s..].find('@').map_or(s, |a| s + a);
                write!(f, "{}:***{}", &self.bare[..at], &self.bare[at..])
            }
            Some(Password::Ref(r)) => f.write_str(&self.with_param(&r.param())),
            None => f.write_str(&self.bare),
        }
    }
}

impl std::fmt::Debug for Dsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dsn({self})")
    }
}

/// A URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The connection options of a shard URL, its password reference
/// resolved here; a bad URL is named without its password. See [`exact`].
pub fn opts(url: &str) -> Result<Opts, MysqlError> {
    Dsn::parse(url)?.opts()
}

/// The connection options of `url`, connecting exactly where it says: over
/// TCP to its host and port, or through the Unix socket it names
/// (`?socket=…`). mysql_async's default (`prefer_socket`) would move a TCP
/// connection to a local server onto the socket path that server reports
/// after the handshake — and another server's socket may be at that path.
/// A password reference is dropped, not resolved: for callers that log in
/// with an account of their own (the bank workload); [`opts`] for
/// revdoor's account.
pub fn exact(url: &str) -> Result<Opts, UrlError> {
    let bare = match Dsn::parse(url) {
        Ok(
            d @ Dsn {
                password: Some(Password::Ref(_)),
                ..
            },
        ) => d.bare,
        _ => url.to_string(),
    };
    let opts = Opts::from_url(&bare)?;
    Ok(OptsBuilder::from_opts(opts).prefer_socket(false).into())
}

/// What to do about a failed connection, for an operator: the common
/// mistakes in a URL named.
pub fn connect_hint(e: &mysql_async::Error) -> &'static str {
    match e {
        mysql_async::Error::Server(se) if se.code == crate::codes::ACCESS_DENIED => {
            "wrong user or password in the URL, or in the password_env / password_file it names \
             (or the account may not log in from this host): fix them"
        }
        mysql_async::Error::Io(io) => match io {
            mysql_async::IoError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                "nothing listens at that host and port: check them in the URL, and that the \
                 server runs"
            }
            _ => "the server could not be reached: check host and port in the URL, and the network",
        },
        _ => "check the URL and the server",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dsn_keeps_its_password_apart() {
        let d = Dsn::parse("mysql://u:s3cret@127.0.0.1:3306/db?socket=/x").expect("parse");
        assert_eq!(d.to_string(), "mysql://u:***@127.0.0.1:3306/db?socket=/x");
        assert_eq!(
            format!("{d:?}"),
            "Dsn(mysql://u:***@127.0.0.1:3306/db?socket=/x)"
        );
        assert_eq!(d.stored(), None, "an inline password is never stored");
        let o = d.opts().expect("opts");
        assert_eq!(o.pass(), Some("s3cret"));
        assert_eq!(o.user(), Some("u"));
        assert!(!o.prefer_socket());
        // A reference: stored and shown as written, resolved at opts().
        std::env::set_var("REVDOOR_CONN_TEST_PW", "from-env");
        let r = Dsn::parse("mysql://u@127.0.0.1:3306?password_env=REVDOOR_CONN_TEST_PW")
            .expect("parse");
        assert_eq!(
            r.stored().as_deref(),
            Some("mysql://u@127.0.0.1:3306?password_env=REVDOOR_CONN_TEST_PW")
        );
        assert_eq!(r.opts().expect("opts").pass(), Some("from-env"));
        assert!(!format!("{r} {r:?}").contains("from-env"));
        assert_eq!(
            opts(&r.stored().expect("stored")).expect("opts").pass(),
            Some("from-env")
        );
        // The password moved out of a URL into a reference.
        let moved = d.with_ref(PasswordRef::env("REVDOOR_CONN_TEST_PW").expect("name"));
        assert_eq!(
            moved.stored().as_deref(),
            Some("mysql://u@127.0.0.1:3306/db?socket=/x&password_env=REVDOOR_CONN_TEST_PW")
        );
        assert_eq!(moved.opts().expect("opts").pass(), Some("from-env"));
        // exact() drops a reference (the bank workload's own account).
        assert_eq!(
            exact(&r.stored().expect("stored")).expect("exact").pass(),
            None
        );
        let e = Dsn::parse("mysql://u:pw@h:1?password_env=X").expect_err("both");
        assert!(e.to_string().contains("mysql://u:***@h:1"), "{e}");
        assert!(!e.to_string().contains("pw@"), "{e}");
        let e = Dsn::parse("mysql://u@h:1?password_env=X&password_file=/p").expect_err("two");
        assert!(e.to_string().contains("give one of"), "{e}");
        let e =
            opts("mysql://u@127.0.0.1:1?password_env=REVDOOR_CONN_TEST_UNSET").expect_err("unset");
        assert!(
            e.to_string()
                .contains("REVDOOR_CONN_TEST_UNSET: the variable is not set"),
            "{e}"
        );
    }

    #[test]
    fn urls_are_shown_without_passwords() {
        assert_eq!(redact("mysql://u:pw@h:1"), "mysql://u:***@h:1");
        assert_eq!(redact("mysql://u@h:1"), "mysql://u@h:1");
        assert!(!opts("mysql://u:pw@127.0.0.1:3306")
            .expect("url")
            .prefer_socket());
        assert!(!opts("mysql://u:pw@127.0.0.1:3306?prefer_socket=true")
            .expect("url")
            .prefer_socket());
        let bad = opts("mysql://u:secret@h:notaport").expect_err("bad port");
        assert!(!bad.to_string().contains("secret"), "{bad}");
        assert!(
            bad.to_string()
                .starts_with("bad MySQL URL 'mysql://u:***@h:notaport'"),
            "{bad}"
        );
    }
}
