//! Where revdoor connects: shard URLs (`mysql://user:password@host:port`)
//! parsed into connection options, and shown without their password.

use mysql_async::{Opts, OptsBuilder, UrlError};

use crate::MysqlError;

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

/// The connection options of a shard URL; a bad URL is named without its
/// password. See [`exact`].
pub fn opts(url: &str) -> Result<Opts, MysqlError> {
    exact(url).map_err(|source| MysqlError::Url {
        url: redact(url),
        source,
    })
}

/// The connection options of `url`, connecting exactly where it says: over
/// TCP to its host and port, or through the Unix socket it names
/// (`?socket=…`). mysql_async's default (`prefer_socket`) would move a TCP
/// connection to a local server onto the socket path that server reports
/// after the handshake — and another server's socket may be at that path.
pub fn exact(url: &str) -> Result<Opts, UrlError> {
    let opts = Opts::from_url(url)?;
    Ok(OptsBuilder::from_opts(opts).prefer_socket(false).into())
}

/// What to do about a failed connection, for an operator: the common
/// mistakes in a URL named.
pub fn connect_hint(e: &mysql_async::Error) -> &'static str {
    match e {
        mysql_async::Error::Server(se) if se.code == crate::codes::ACCESS_DENIED => {
            "wrong user or password in the URL (or the account may not log in from this host): \
             fix the URL"
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
