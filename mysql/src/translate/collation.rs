//! Collations across engines: MySQL's `utf8mb4_0900_*` (UCA 9.0.0) and
//! MariaDB's `utf8mb4_uca1400_*` (UCA 14.0.0, MariaDB 10.10 and later),
//! mapped so that strings compare the same way; the collations both
//! engines have under one name keep it (checked on the real servers by
//! `tests/tests/schema_translation.rs`: same name, same id), except
//! Croatian, which is two collations under one name.
//!
//! - Pad: every MySQL 0900 collation is NO PAD (trailing spaces count).
//!   MariaDB has both; MySQL → MariaDB takes the `_nopad_` one, so equal
//!   stays equal. MariaDB → MySQL maps the PAD SPACE ones too (MySQL has no
//!   PAD SPACE UCA 9.0 collation): there, strings that differ only in
//!   trailing spaces become different — no two rows of a unique key can
//!   collide on the way there, but the reverse stream can meet two rows
//!   MariaDB holds equal. The translation notes it.
//! - Accent and case: `ai_ci`, `as_ci`, `as_cs` as they are; MariaDB's
//!   `ai_cs` and the locales' `as_ci` have no MySQL counterpart, MySQL's
//!   Japanese `as_cs_ks` none on MariaDB: refused.
//! - Locales: MySQL's language codes to MariaDB's names (`sv` ↔
//!   `swedish`, `de_pb` ↔ `german2`, `es_trad` ↔ `spanish2`, `la` ↔
//!   `roman`, …); those only one engine has are refused.
//! - UCA versions: characters added to Unicode after 9.0 compare by code
//!   point on MySQL and by their UCA 14.0 weights on MariaDB.
//! - MariaDB before 10.10 (no UCA 14.0): `utf8mb4_0900_ai_ci` becomes
//!   `utf8mb4_unicode_520_nopad_ci` (UCA 5.2.0, NO PAD), the others are
//!   refused.
//! - Binary: `utf8mb4_0900_bin` ↔ `utf8mb4_nopad_bin` (both NO PAD, by
//!   code point).
//! - Croatian: MySQL's `<cs>_croatian_ci` is MariaDB's
//!   `<cs>_croatian_mysql561_ci` (same id); MariaDB's own
//!   `<cs>_croatian_ci` is a later tailoring MySQL does not have: refused.
//! - Other MariaDB NO PAD collations (`utf8mb4_general_nopad_ci`,
//!   `utf8mb4_unicode_520_nopad_ci`, …) and `uca1400` collations of other
//!   character sets have no MySQL counterpart: refused.

use std::collections::BTreeSet;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::engine::{Flavor, Server, Version};
use crate::MysqlError;

/// MySQL's locale codes in `utf8mb4_<code>_0900_*` and MariaDB's names in
/// `utf8mb4_uca1400_<name>_*`, for the locales both have.
const LOCALES: [(&str, &str); 20] = [
    ("cs", "czech"),
    ("da", "danish"),
    ("de_pb", "german2"),
    ("eo", "esperanto"),
    ("es", "spanish"),
    ("es_trad", "spanish2"),
    ("et", "estonian"),
    ("hr", "croatian"),
    ("hu", "hungarian"),
    ("is", "icelandic"),
    ("la", "roman"),
    ("lt", "lithuanian"),
    ("lv", "latvian"),
    ("pl", "polish"),
    ("ro", "romanian"),
    ("sk", "slovak"),
    ("sl", "slovenian"),
    ("sv", "swedish"),
    ("tr", "turkish"),
    ("vi", "vietnamese"),
];

/// Character sets with a Croatian collation named differently.
const CROATIAN_CHARSETS: [&str; 5] = ["utf8mb3", "utf8mb4", "ucs2", "utf16", "utf32"];

/// What a collation becomes on the other engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Mapped {
    /// The same name means the same collation there.
    Same,
    /// This one, and what changes if anything (for the operator).
    To(String, Option<String>),
    /// None: why.
    Refused(String),
}

/// The collation `name` (of the source engine `from`) on `to`.
pub(super) fn map(name: &str, from: Flavor, to: &Server) -> Mapped {
    match (from, to.flavor) {
        (Flavor::Mysql, Flavor::Mariadb) => to_mariadb(&name.to_ascii_lowercase(), to.version),
        (Flavor::Mariadb, Flavor::Mysql) => to_mysql(&name.to_ascii_lowercase(), to.version),
        _ => Mapped::Same,
    }
}

fn to_mariadb(name: &str, version: Version) -> Mapped {
    if let Some(cs) = croatian_charset(name, "_croatian_ci") {
        return Mapped::To(format!("{cs}_croatian_mysql561_ci"), None);
    }
    if name == "utf8mb4_0900_bin" {
        return Mapped::To("utf8mb4_nopad_bin".into(), None);
    }
    let Some((locale, suffix)) = name
        .strip_prefix("utf8mb4_")
        .and_then(|rest| rest.split_once("0900_"))
    else {
        return Mapped::Same;
    };
    let locale = locale.trim_end_matches('_');
    if suffix == "as_cs_ks" {
        return Mapped::Refused(format!(
            "MariaDB has no kana-sensitive collation like MySQL's {name}"
        ));
    }
    let tailoring = if locale.is_empty() {
        String::new()
    } else {
        match LOCALES.iter().find(|(code, _)| *code == locale) {
            Some((_, tailoring)) => format!("{tailoring}_"),
            None => {
                return Mapped::Refused(format!(
                    "MariaDB has no '{locale}' tailoring of the Unicode collation ({name})"
                ))
            }
        }
    };
    if version >= Version(10, 10, 0) {
        return Mapped::To(format!("utf8mb4_uca1400_{tailoring}nopad_{suffix}"), None);
    }
    if locale.is_empty() && suffix == "ai_ci" {
        return Mapped::To(
            "utf8mb4_unicode_520_nopad_ci".into(),
            Some(format!(
                "MariaDB {version} has no UCA 14.0 collations: UCA 5.2.0 weights instead of 9.0.0"
            )),
        );
    }
    Mapped::Refused(format!(
        "MariaDB {version} has no counterpart of {name} (its UCA 14.0 collations came in 10.10)"
    ))
}

fn to_mysql(name: &str, version: Version) -> Mapped {
    if let Some(cs) = croatian_charset(name, "_croatian_mysql561_ci") {
        return Mapped::To(format!("{cs}_croatian_ci"), None);
    }
    if croatian_charset(name, "_croatian_ci").is_some() {
        return Mapped::Refused(format!(
            "MariaDB's {name} is a later Croatian tailoring than MySQL's collation of that name; \
             MySQL's is MariaDB's {}",
            name.replace("_croatian_ci", "_croatian_mysql561_ci")
        ));
    }
    let no_0900 = || {
        Mapped::Refused(format!(
            "MySQL {version} has no utf8mb4_0900 collations (MySQL 8.0 and later), no counterpart of {name}"
        ))
    };
    if name == "utf8mb4_nopad_bin" {
        if version < Version(8, 0, 0) {
            return no_0900();
        }
        return Mapped::To("utf8mb4_0900_bin".into(), None);
    }
    if let Some(rest) = name.strip_prefix("utf8mb4_uca1400_") {
        if version < Version(8, 0, 0) {
            return no_0900();
        }
        let (rest, suffix) = rest.split_at(rest.len().saturating_sub(5));
        let rest = rest.trim_end_matches('_');
        let (tailoring, nopad) = match rest.strip_suffix("nopad") {
            Some(t) => (t.trim_end_matches('_'), true),
            None => (rest, false),
        };
        let locale = if tailoring.is_empty() {
            String::new()
        } else {
            match LOCALES.iter().find(|(_, t)| *t == tailoring) {
                Some((code, _)) => format!("{code}_"),
                None => {
                    return Mapped::Refused(format!(
                        "MySQL has no {tailoring} tailoring of the Unicode collation ({name})"
                    ))
                }
            }
        };
        let exists = match suffix {
            "ai_ci" | "as_cs" => true,
            "as_ci" => locale.is_empty(),
            _ => false,
        };
        if !exists {
            return Mapped::Refused(format!(
                "MySQL has no utf8mb4_{locale}0900_{suffix} collation, no counterpart of {name}"
            ));
        }
        let to = format!("utf8mb4_{locale}0900_{suffix}");
        let note = (!nopad).then(|| {
            format!(
                "{name} is PAD SPACE, {to} is NO PAD: strings that differ only in trailing \
                 spaces are different on MySQL"
            )
        });
        return Mapped::To(to, note);
    }
    if name.contains("_uca1400_") {
        return Mapped::Refused(format!(
            "MySQL has UCA 9.0 collations for utf8mb4 only, no counterpart of {name}"
        ));
    }
    if name.contains("nopad") {
        return Mapped::Refused(format!(
            "MySQL has no NO PAD counterpart of {name} (its NO PAD collations are the utf8mb4_0900 ones)"
        ));
    }
    Mapped::Same
}

/// The character set of `<cs><suffix>` when it is one with two Croatian
/// collations.
fn croatian_charset<'a>(name: &'a str, suffix: &str) -> Option<&'a str> {
    let cs = name.strip_suffix(suffix)?;
    CROATIAN_CHARSETS.contains(&cs).then_some(cs)
}

/// Every collation name `server` accepts, lower case: on MariaDB 10.10
/// and later the `uca1400` ones under their full names too
/// (`utf8mb4_uca1400_ai_ci`: `information_schema.COLLATIONS` lists them
/// without their character set).
pub async fn server_collations(conn: &mut Conn) -> Result<BTreeSet<String>, MysqlError> {
    let server = Server::of(conn).await?;
    let mut names: Vec<String> = conn
        .query("SELECT COLLATION_NAME FROM information_schema.COLLATIONS")
        .await
        .map_err(|e| MysqlError::query("read the server's collations", e))?;
    if server.flavor == Flavor::Mariadb && server.version >= Version(10, 10, 0) {
        let full: Vec<String> = conn
            .query(
                "SELECT FULL_COLLATION_NAME FROM information_schema.COLLATION_CHARACTER_SET_APPLICABILITY",
            )
            .await
            .map_err(|e| MysqlError::query("read the server's collations", e))?;
        names.extend(full);
    }
    Ok(names.into_iter().map(|n| n.to_ascii_lowercase()).collect())
}

/// Every mapping [`map`] makes between the 0900 and uca1400 families, as
/// (MySQL, MariaDB) pairs, for the tests that check the names exist.
pub fn uca_pairs() -> Vec<(String, String)> {
    let mut pairs = vec![(
        "utf8mb4_0900_bin".to_string(),
        "utf8mb4_nopad_bin".to_string(),
    )];
    for suffix in ["ai_ci", "as_ci", "as_cs"] {
        pairs.push((
            format!("utf8mb4_0900_{suffix}"),
            format!("utf8mb4_uca1400_nopad_{suffix}"),
        ));
    }
    for (code, tailoring) in LOCALES {
        for suffix in ["ai_ci", "as_cs"] {
            pairs.push((
                format!("utf8mb4_{code}_0900_{suffix}"),
                format!("utf8mb4_uca1400_{tailoring}_nopad_{suffix}"),
            ));
        }
    }
    for cs in CROATIAN_CHARSETS {
        pairs.push((
            format!("{cs}_croatian_ci"),
            format!("{cs}_croatian_mysql561_ci"),
        ));
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maria() -> Server {
        Server::from_version("10.11.19-MariaDB-0+deb12u1-log")
    }
    fn mysql() -> Server {
        Server::from_version("9.7.4-2")
    }

    #[test]
    fn mysql_0900_to_mariadb_uca1400_nopad() {
        let to = |n: &str| map(n, Flavor::Mysql, &maria());
        assert_eq!(
            to("utf8mb4_0900_ai_ci"),
            Mapped::To("utf8mb4_uca1400_nopad_ai_ci".into(), None)
        );
        assert_eq!(
            to("UTF8MB4_0900_AS_CS"),
            Mapped::To("utf8mb4_uca1400_nopad_as_cs".into(), None)
        );
        assert_eq!(
            to("utf8mb4_0900_bin"),
            Mapped::To("utf8mb4_nopad_bin".into(), None)
        );
        assert_eq!(
            to("utf8mb4_sv_0900_ai_ci"),
            Mapped::To("utf8mb4_uca1400_swedish_nopad_ai_ci".into(), None)
        );
        assert_eq!(
            to("utf8mb4_es_trad_0900_as_cs"),
            Mapped::To("utf8mb4_uca1400_spanish2_nopad_as_cs".into(), None)
        );
        assert!(matches!(to("utf8mb4_ja_0900_as_cs"), Mapped::Refused(_)));
        assert!(matches!(to("utf8mb4_ja_0900_as_cs_ks"), Mapped::Refused(_)));
        assert!(matches!(to("utf8mb4_zh_0900_as_cs"), Mapped::Refused(_)));
        assert_eq!(
            to("utf8mb4_croatian_ci"),
            Mapped::To("utf8mb4_croatian_mysql561_ci".into(), None)
        );
        assert_eq!(to("utf8mb4_general_ci"), Mapped::Same);
        assert_eq!(to("latin1_swedish_ci"), Mapped::Same);
        assert_eq!(to("utf8mb4_bin"), Mapped::Same);
    }

    #[test]
    fn older_mariadb_has_unicode_520_nopad_only() {
        let old = Server::from_version("10.6.18-MariaDB");
        assert!(matches!(
            map("utf8mb4_0900_ai_ci", Flavor::Mysql, &old),
            Mapped::To(n, Some(_)) if n == "utf8mb4_unicode_520_nopad_ci"
        ));
        assert!(matches!(
            map("utf8mb4_0900_as_cs", Flavor::Mysql, &old),
            Mapped::Refused(_)
        ));
    }

    #[test]
    fn mariadb_uca1400_to_mysql_0900() {
        let to = |n: &str| map(n, Flavor::Mariadb, &mysql());
        assert_eq!(
            to("utf8mb4_uca1400_nopad_ai_ci"),
            Mapped::To("utf8mb4_0900_ai_ci".into(), None)
        );
        assert!(matches!(
            to("utf8mb4_uca1400_ai_ci"),
            Mapped::To(n, Some(note)) if n == "utf8mb4_0900_ai_ci" && note.contains("PAD SPACE")
        ));
        assert_eq!(
            to("utf8mb4_uca1400_swedish_nopad_as_cs"),
            Mapped::To("utf8mb4_sv_0900_as_cs".into(), None)
        );
        assert_eq!(
            to("utf8mb4_uca1400_german2_ai_ci").clone(),
            Mapped::To(
                "utf8mb4_de_pb_0900_ai_ci".into(),
                Some(
                    "utf8mb4_uca1400_german2_ai_ci is PAD SPACE, utf8mb4_de_pb_0900_ai_ci is NO \
                     PAD: strings that differ only in trailing spaces are different on MySQL"
                        .into()
                )
            )
        );
        assert_eq!(
            to("utf8mb4_nopad_bin"),
            Mapped::To("utf8mb4_0900_bin".into(), None)
        );
        assert!(matches!(to("utf8mb4_uca1400_ai_cs"), Mapped::Refused(_)));
        assert!(matches!(
            to("utf8mb4_uca1400_swedish_as_ci"),
            Mapped::Refused(_)
        ));
        assert!(matches!(
            to("utf8mb4_uca1400_persian_ai_ci"),
            Mapped::Refused(_)
        ));
        assert!(matches!(to("utf8mb3_uca1400_ai_ci"), Mapped::Refused(_)));
        assert!(matches!(to("utf8mb4_general_nopad_ci"), Mapped::Refused(_)));
        assert!(matches!(to("utf8mb4_croatian_ci"), Mapped::Refused(_)));
        assert_eq!(
            to("utf8mb4_croatian_mysql561_ci"),
            Mapped::To("utf8mb4_croatian_ci".into(), None)
        );
        assert_eq!(to("utf8mb4_unicode_ci"), Mapped::Same);
        assert_eq!(to("utf8mb4_general_ci"), Mapped::Same);
    }

    #[test]
    fn pairs_map_both_ways() {
        for (my, ma) in uca_pairs() {
            assert_eq!(
                map(&my, Flavor::Mysql, &maria()),
                Mapped::To(ma.clone(), None),
                "{my} → MariaDB"
            );
            assert_eq!(
                map(&ma, Flavor::Mariadb, &mysql()),
                Mapped::To(my.clone(), None),
                "{ma} → MySQL"
            );
        }
    }
}
