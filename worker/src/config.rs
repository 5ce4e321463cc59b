//! A capture stream's configuration from what an operator or a stream spec
//! says about it; the rest (heartbeat, batching, loop filter, replica
//! server id) is decided here once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use revdoor_capture::binlog::{BinlogReader, LoopFilter};
use revdoor_capture::ddl::{OnDdl, OnDdlError};
use revdoor_capture::route::Router;
use revdoor_capture::{CaptureConfig, CaptureError};
use revdoor_core::gtid::StoredPosition;
use revdoor_core::keyrange::KeyRange;
use revdoor_core::names::{Direction, NameError, StreamId, WorkflowName};
use revdoor_core::progress::Progress;
use revdoor_core::workflow::StreamSpec;

/// Rows per copy chunk unless told otherwise.
pub const DEFAULT_COPY_CHUNK_ROWS: usize = 5000;

/// A stream's configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A URL that does not parse, or whose password reference does not
    /// resolve here (shown without its password).
    #[error(transparent)]
    Url(revdoor_mysql::MysqlError),
    #[error("table '{0}' must be written as database.table")]
    Table(String),
    #[error(transparent)]
    Route(#[from] CaptureError),
    #[error("on_ddl '{value}': {reason}")]
    OnDdl {
        value: String,
        /// Not a `#[source]`: the message says it already.
        reason: OnDdlError,
    },
    #[error(transparent)]
    Workflow(#[from] NameError),
}

/// Connection options from a server URL, its password reference
/// (`password_env` / `password_file`) resolved in this process.
pub fn mysql_opts(url: &str) -> Result<mysql_async::Opts, ConfigError> {
    revdoor_mysql::conn::opts(url).map_err(ConfigError::Url)
}

/// `db.table` names as `(db, table)`.
pub fn parse_tables(tables: &[String]) -> Result<HashSet<(String, String)>, ConfigError> {
    tables
        .iter()
        .map(|t| match t.split_once('.') {
            Some((db, table)) if !db.is_empty() && !table.is_empty() => {
                Ok((db.to_string(), table.to_string()))
            }
            _ => Err(ConfigError::Table(t.clone())),
        })
        .collect()
}

/// What decides one capture stream.
pub struct CaptureSettings {
    pub brokers: String,
    pub workflow: WorkflowName,
    /// The loop filter drops the other direction's writes.
    pub direction: Direction,
    /// Origin shard.
    pub shard: KeyRange,
    /// Source server URL.
    pub source: String,
    /// `db.table` names.
    pub tables: Vec<String>,
    pub router: Router,
    /// Partitions of the direction topic.
    pub partitions: i32,
    pub start_position: Option<StoredPosition>,
    pub on_ddl: OnDdl,
    pub copy: bool,
    pub copy_chunk_rows: usize,
    /// The largest message the producer sends.
    pub max_message_bytes: u32,
    /// Replica server id; default: derived from the transactional id.
    pub server_id: Option<u32>,
    pub progress: Arc<Progress>,
}

impl CaptureSettings {
    /// The capture's configuration (parses the URL and the tables).
    pub fn config(self) -> Result<CaptureConfig, ConfigError> {
        let id = StreamId {
            workflow: self.workflow.clone(),
            direction: self.direction,
            shard: self.shard,
        };
        Ok(CaptureConfig {
            brokers: self.brokers,
            id: id.clone(),
            router: self.router,
            partitions: self.partitions,
            reader: BinlogReader {
                opts: mysql_opts(&self.source)?,
                server_id: self
                    .server_id
                    .unwrap_or_else(|| revdoor_capture::replica_server_id(&id.transactional_id())),
                tables: parse_tables(&self.tables)?,
                heartbeat: Duration::from_secs(1),
                watermark_stream: None,
                loop_filter: Some(LoopFilter {
                    workflow: self.workflow,
                    direction: self.direction.opposite(),
                }),
            },
            start_position: self.start_position,
            batch_max_txns: 500,
            batch_interval: Duration::from_millis(10),
            on_ddl: self.on_ddl,
            copy: self.copy,
            copy_chunk_rows: self.copy_chunk_rows,
            max_message_bytes: self.max_message_bytes,
            progress: self.progress,
        })
    }

    /// A capture stream the coordinator assigned.
    pub(crate) fn from_spec(
        brokers: &str,
        spec: &StreamSpec,
        max_message_bytes: u32,
        progress: Arc<Progress>,
    ) -> Result<Self, ConfigError> {
        let mut keys = HashMap::new();
        for (t, cols) in &spec.sharding_keys {
            if let Some((db, table)) = t.split_once('.') {
                keys.insert((db.to_string(), table.to_string()), cols.clone());
            }
        }
        let router = if spec.routes.is_empty() {
            Router::single(0)
        } else {
            Router::by_range(spec.routes.clone(), keys)?
        };
        let on_ddl = spec.on_ddl.parse().map_err(|reason| ConfigError::OnDdl {
            value: spec.on_ddl.clone(),
            reason,
        })?;
        Ok(CaptureSettings {
            brokers: brokers.to_string(),
            workflow: spec.workflow.clone(),
            direction: spec.direction,
            shard: spec.shard,
            source: spec.url.clone(),
            tables: spec.tables.clone(),
            router,
            partitions: spec.partitions,
            start_position: spec.start_position.clone(),
            on_ddl,
            copy: spec.copy,
            copy_chunk_rows: DEFAULT_COPY_CHUNK_ROWS,
            max_message_bytes,
            server_id: None,
            progress,
        })
    }
}

#[cfg(test)]
mod tests {
    use revdoor_core::workflow::StreamKind;

    use super::*;

    fn spec(on_ddl: &str) -> StreamSpec {
        StreamSpec {
            workflow: "wf".parse().expect("workflow name"),
            direction: Direction::Reverse,
            kind: StreamKind::Capture,
            shard: "-80".parse().expect("range"),
            url: "mysql://u:secret@127.0.0.1:3306".into(),
            partition: 0,
            routes: Vec::new(),
            partitions: 2,
            tables: vec!["db.t".into()],
            sharding_keys: Default::default(),
            copy: true,
            start_position: None,
            on_ddl: on_ddl.into(),
        }
    }

    #[test]
    fn an_assigned_capture_filters_the_other_direction() {
        let settings = CaptureSettings::from_spec(
            "k:9092",
            &spec("ignore"),
            revdoor_capture::publish::DEFAULT_MAX_MESSAGE_BYTES,
            Default::default(),
        );
        let cfg = settings.and_then(CaptureSettings::config).expect("valid");
        assert_eq!(
            cfg.id.transactional_id(),
            StreamId {
                workflow: "wf".parse().expect("workflow"),
                direction: Direction::Reverse,
                shard: "-80".parse().expect("range"),
            }
            .transactional_id()
        );
        let filter = cfg.reader.loop_filter.expect("a loop filter");
        assert_eq!(
            (filter.workflow.as_str(), filter.direction.as_str()),
            ("wf", "forward")
        );
        assert_eq!(
            cfg.reader.server_id,
            revdoor_capture::replica_server_id(&cfg.id.transactional_id())
        );
        assert_eq!(cfg.on_ddl, OnDdl::Ignore);
        assert_eq!(cfg.copy_chunk_rows, DEFAULT_COPY_CHUNK_ROWS);
        assert!(cfg.copy);
    }

    #[test]
    fn bad_settings_say_which() {
        let e = CaptureSettings::from_spec(
            "k",
            &spec("drop"),
            revdoor_capture::publish::DEFAULT_MAX_MESSAGE_BYTES,
            Default::default(),
        )
        .err()
        .expect("a bad on_ddl");
        assert_eq!(
            e.to_string(),
            "on_ddl 'drop': on_ddl must be stop, ignore or exec, not 'drop'"
        );
        let e = mysql_opts("postgres://u:secret@h/").expect_err("not MySQL");
        assert!(
            e.to_string()
                .starts_with("bad MySQL URL 'postgres://u:***@h/'"),
            "{e}"
        );
    }

    #[test]
    fn tables_need_a_database() {
        assert!(parse_tables(&["t".into()]).is_err());
        let t = parse_tables(&["d.t".into()]).expect("valid");
        assert!(t.contains(&("d".to_string(), "t".to_string())));
    }
}
