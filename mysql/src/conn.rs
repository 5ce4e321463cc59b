//! Where revdoor connects: shard URLs (`mysql://user:password@host:port`)
//! parsed into connection options, and shown without their password.

use mysql_async::Opts;

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
/// password.
pub fn opts(url: &str) -> Result<Opts, MysqlError> {
    Opts::from_url(url).map_err(|source| MysqlError::Url {
        url: redact(url),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_passwords() {
        assert_eq!(redact("mysql://u:pw@h:1"), "mysql://u:***@h:1");
        assert_eq!(redact("mysql://u@h:1"), "mysql://u@h:1");
        let bad = opts("mysql://u:secret@h:notaport").expect_err("bad port");
        assert!(!bad.to_string().contains("secret"), "{bad}");
        assert!(
            bad.to_string()
                .starts_with("bad MySQL URL 'mysql://u:***@h:notaport'"),
            "{bad}"
        );
    }
}
