//! Checks before any work: the server settings capture depends on and the
//! account's privileges. Each
//! refusal names the setting or privilege, what it is and what it must be.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::engine::Flavor;
use crate::MysqlError;

/// Check the settings capture depends on. Each failure names the setting,
/// its value and the value needed.
pub async fn binlog_settings(conn: &mut Conn) -> Result<(), MysqlError> {
    let row: Option<(String, String, String, String)> = conn
        .query_first(
            "SELECT @@global.binlog_format, @@global.binlog_row_image, \
             @@global.binlog_row_metadata, CAST(@@global.log_bin AS CHAR)",
        )
        .await
        .map_err(|e| MysqlError::query("read binlog settings", e))?;
    let Some((format, image, metadata, log_bin)) = row else {
        return Err(MysqlError::Refused(
            "binlog settings query returned no row".into(),
        ));
    };
    // log_bin reads as 1 or ON depending on server and cast.
    let log_bin = if log_bin == "1" {
        "ON".to_string()
    } else {
        log_bin
    };
    let checks = [
        ("log_bin", log_bin, "ON"),
        ("binlog_format", format, "ROW"),
        ("binlog_row_image", image, "FULL"),
        ("binlog_row_metadata", metadata, "FULL"),
    ];
    for (name, have, want) in checks {
        check_setting(name, &have, want)?;
    }
    if Flavor::of(conn).await? == Flavor::Mysql {
        // Each of these exists from some 8.0 release on; a server
        // without the variable cannot have the feature.
        for (name, want) in [
            ("gtid_mode", "ON"),
            ("enforce_gtid_consistency", "ON"),
            ("binlog_transaction_compression", "0"),
            ("binlog_row_value_options", ""),
        ] {
            let have: Option<Option<String>> = conn
                .query_first(format!("SELECT CAST(@@global.{name} AS CHAR)"))
                .await
                .ok();
            if let Some(Some(have)) = have {
                let have = match (name, have.as_str()) {
                    ("binlog_transaction_compression", "1") => "ON".to_string(),
                    ("binlog_transaction_compression", "0") => "0".to_string(),
                    _ => have,
                };
                let want_text = if name == "binlog_transaction_compression" {
                    "OFF"
                } else {
                    want
                };
                let have_text = if have == "0" {
                    "OFF".to_string()
                } else {
                    have.clone()
                };
                if !have.eq_ignore_ascii_case(want) {
                    check_setting(name, &have_text, want_text)?;
                }
            }
        }
    }
    Ok(())
}

fn check_setting(name: &str, have: &str, want: &str) -> Result<(), MysqlError> {
    if have.eq_ignore_ascii_case(want) {
        return Ok(());
    }
    Err(MysqlError::Refused(format!(
        "server setting {name} is '{have}', revdoor needs '{want}' \
         (set it in the server's config and restart, or SET GLOBAL where dynamic)"
    )))
}

/// A privilege revdoor needs, with the names that grant it on one engine
/// (the first is the one a refusal names).
struct Needed {
    why: &'static str,
    names: &'static [&'static str],
}

/// The privileges capture needs: to read the binlog and the server's
/// position.
fn capture_privileges(flavor: Flavor) -> [Needed; 2] {
    let binlog = Needed {
        why: "to read the binlog",
        names: &["REPLICATION SLAVE", "REPLICATION REPLICA"],
    };
    match flavor {
        // MariaDB 10.5 renamed REPLICATION CLIENT to BINLOG MONITOR (SHOW
        // GRANTS prints the new name).
        Flavor::Mariadb => [
            binlog,
            Needed {
                why: "to read positions",
                names: &["BINLOG MONITOR", "REPLICATION CLIENT"],
            },
        ],
        Flavor::Mysql => [
            binlog,
            Needed {
                why: "to read positions",
                names: &["REPLICATION CLIENT"],
            },
        ],
    }
}

/// The privileges `--fence=read-only` needs on the side it makes read-only:
/// to set `read_only`, and to keep writing there (the reverse stream's
/// apply) while it is on.
fn read_only_privileges(flavor: Flavor) -> Vec<Needed> {
    match flavor {
        Flavor::Mariadb => vec![Needed {
            why: "to set read_only and keep applying while it is on",
            names: &["READ_ONLY ADMIN", "SUPER"],
        }],
        Flavor::Mysql => vec![
            Needed {
                why: "to set read_only",
                names: &["SYSTEM_VARIABLES_ADMIN", "SUPER"],
            },
            Needed {
                why: "to keep applying while read_only is on",
                names: &["CONNECTION_ADMIN", "SUPER"],
            },
        ],
    }
}

/// Check that the connected account may read the binlog and positions.
/// The refusal names each missing privilege in the server's own spelling.
pub async fn check_privileges(conn: &mut Conn) -> Result<(), MysqlError> {
    let flavor = Flavor::of(conn).await?;
    check(conn, &capture_privileges(flavor), "").await
}

/// Check that the connected account may make this server read-only and
/// keep writing to it (`--fence=read-only`). The refusal names each missing
/// privilege in the server's own spelling.
pub async fn check_read_only_privileges(conn: &mut Conn) -> Result<(), MysqlError> {
    let flavor = Flavor::of(conn).await?;
    check(
        conn,
        &read_only_privileges(flavor),
        " for --fence=read-only",
    )
    .await
}

async fn check(conn: &mut Conn, needed: &[Needed], purpose: &str) -> Result<(), MysqlError> {
    let grants: Vec<String> = conn
        .query("SHOW GRANTS FOR CURRENT_USER()")
        .await
        .map_err(|e| MysqlError::query("read grants", e))?;
    let text = grants.join("\n").to_ascii_uppercase();
    if text.contains("ALL PRIVILEGES ON *.*") {
        return Ok(());
    }
    let missing: Vec<&Needed> = needed
        .iter()
        .filter(|n| !n.names.iter().any(|name| text.contains(name)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let what: Vec<String> = missing
        .iter()
        .map(|n| format!("{} ({})", n.names[0], n.why))
        .collect();
    let grant: Vec<&str> = missing.iter().map(|n| n.names[0]).collect();
    Err(MysqlError::Refused(format!(
        "the revdoor account lacks {}{purpose}: GRANT {} ON *.* TO it",
        what.join(" and "),
        grant.join(", ")
    )))
}
