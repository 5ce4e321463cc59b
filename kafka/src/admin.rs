//! Topic administration: a workflow's stream and checkpoint topics and
//! the shared schema topic, created on first use and deleted at the end.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use revdoor_core::names::{self, WorkflowName};
use revdoor_core::registry::SCHEMAS_TOPIC;

use crate::KafkaError;

/// Create the stream topic and the compacted offsets topic if absent.
pub async fn ensure_topics(
    brokers: &str,
    topic: &str,
    offsets_topic: &str,
    partitions: i32,
) -> Result<(), KafkaError> {
    let admin = admin_client(brokers)?;
    let topics = [
        NewTopic::new(topic, partitions, TopicReplication::Fixed(1)),
        NewTopic::new(offsets_topic, 1, TopicReplication::Fixed(1))
            .set("cleanup.policy", "compact"),
        NewTopic::new(SCHEMAS_TOPIC, 1, TopicReplication::Fixed(1))
            .set("cleanup.policy", "compact"),
    ];
    let results = admin
        .create_topics(
            &topics,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .map_err(|e| KafkaError::new("create topics", e))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(KafkaError(format!("create topic {t}: {code}")));
            }
        }
    }
    Ok(())
}

fn admin_client(brokers: &str) -> Result<AdminClient<DefaultClientContext>, KafkaError> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| KafkaError::new("create Kafka admin client", e))
}

/// Which of a workflow's topics (`revdoor.<workflow>.forward|reverse|offsets`)
/// exist.
pub async fn workflow_topics(
    brokers: &str,
    workflow: &WorkflowName,
) -> Result<Vec<String>, KafkaError> {
    let brokers = brokers.to_string();
    let prefix = names::workflow_topics_prefix(workflow);
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .map_err(|e| KafkaError::new("create Kafka client", e))?;
        let md = consumer
            .fetch_metadata(None, Duration::from_secs(10))
            .map_err(|e| KafkaError::new("read Kafka metadata", e))?;
        Ok(md
            .topics()
            .iter()
            .map(|t| t.name().to_string())
            .filter(|n| {
                n.strip_prefix(&prefix)
                    .is_some_and(|rest| ["forward", "reverse", "offsets"].contains(&rest))
            })
            .collect())
    })
    .await
    .map_err(|e| KafkaError(format!("metadata task: {e}")))?
}

/// Delete a workflow's topics (after `complete` or `cancel`).
pub async fn delete_workflow_topics(
    brokers: &str,
    workflow: &WorkflowName,
) -> Result<(), KafkaError> {
    let topics = workflow_topics(brokers, workflow).await?;
    if topics.is_empty() {
        return Ok(());
    }
    let admin = admin_client(brokers)?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let results = admin
        .delete_topics(
            &names,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .map_err(|e| KafkaError::new("delete topics", e))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((t, code)) => return Err(KafkaError(format!("delete topic {t}: {code}"))),
        }
    }
    Ok(())
}
