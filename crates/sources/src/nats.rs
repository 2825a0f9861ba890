//! `kind = "nats"`: a NATS JetStream durable pull consumer.
//!
//! Each session (connect → position → consume) positions the consumer from
//! what is known to be committed: the consumer is deleted and re-created to
//! deliver from its ack floor + 1 (messages are acknowledged only after
//! their commit, so everything at or below the floor is in the tables).
//! Re-creating it drops the broker's redelivery state, so messages then
//! arrive strictly in stream order and the tables' `txn` sequences tell
//! which of them are already committed (see [`crate::batch`]). A consumer
//! that does not exist starts where `start` says, or after the lowest
//! sequence a route table holds when one does.
//!
//! Acknowledgement is `AckPolicy::All`: acking a batch's last message acks
//! the whole batch, after every table's share of it is durable.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;

use crate::batch::{Incoming, Pipeline};
use crate::config::{NatsConfig, Start};
use crate::error::SourceError;
use crate::runtime::{Context, Session};
use crate::status::State;

/// How often the consumer's pending count is asked for.
const LAG_EVERY: Duration = Duration::from_millis(500);

/// A NATS source: its settings and the pipeline its sessions feed.
pub(crate) struct NatsSource {
    config: NatsConfig,
    pipeline: Pipeline,
}

impl NatsSource {
    pub(crate) fn new(config: NatsConfig, ctx: &Context) -> Self {
        let pipeline = Pipeline::new(
            &ctx.name,
            &config.stream,
            config.routes.clone(),
            config.format,
            Arc::clone(&ctx.ingestor),
            Arc::clone(&ctx.counters),
            Arc::clone(&ctx.observer),
        );
        Self { config, pipeline }
    }
}

impl Session for NatsSource {
    async fn session(&mut self, ctx: &mut Context) -> Result<(), SourceError> {
        session(&self.config, ctx, &mut self.pipeline).await
    }
}

/// Runs one session; `Ok` when the server stops.
async fn session(config: &NatsConfig, ctx: &mut Context, pipeline: &mut Pipeline) -> Result<(), SourceError> {
    let name = ctx.name.clone();
    let unreachable = |reason: String| SourceError::Unreachable {
        source_name: name.clone(),
        reason,
    };
    let broker = |reason: String| SourceError::Broker {
        source_name: name.clone(),
        reason,
    };
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("silt source {name}"))
        .connection_timeout(Duration::from_secs(5));
    if let Some(token) = &config.token {
        options = options.token(token.clone());
    }
    if let (Some(user), Some(password)) = (&config.user, &config.password) {
        options = options.user_and_password(user.clone(), password.clone());
    }
    let client = tokio::select! {
        client = options.connect(config.url.trim()) => client.map_err(|e| unreachable(e.to_string()))?,
        _ = ctx.stopping() => return Ok(()),
    };
    let js = jetstream::new(client.clone());
    let stream = js.get_stream(&config.stream).await.map_err(|e| {
        if matches!(
            e.kind(),
            jetstream::context::GetStreamErrorKind::JetStream(ref err)
                if err.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
        ) {
            SourceError::StreamNotFound {
                source_name: name.clone(),
                stream: config.stream.clone(),
            }
        } else {
            unreachable(e.to_string())
        }
    })?;

    let lowest_committed = pipeline.load_committed().await?;
    let durable = config.durable_name(&name);
    let deliver_policy = match stream.consumer_info(&durable).await {
        Ok(info) => {
            let start_sequence = info.ack_floor.stream_sequence + 1;
            stream
                .delete_consumer(&durable)
                .await
                .map_err(|e| broker(e.to_string()))?;
            consumer::DeliverPolicy::ByStartSequence { start_sequence }
        }
        Err(e) if e.kind() == jetstream::context::ConsumerInfoErrorKind::NotFound => {
            match (lowest_committed, config.start) {
                (Some(committed), _) => consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: committed + 1,
                },
                (None, Start::All) => consumer::DeliverPolicy::All,
                (None, Start::New) => consumer::DeliverPolicy::New,
            }
        }
        Err(e) => return Err(broker(e.to_string())),
    };
    let consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(durable.clone()),
            description: Some(format!("silt source {name}")),
            deliver_policy,
            ack_policy: consumer::AckPolicy::All,
            ack_wait: Duration::from_millis(config.ack_wait_ms),
            filter_subject: config.filter_subject(),
            ..Default::default()
        })
        .await
        .map_err(|e| broker(e.to_string()))?;
    tracing::info!(source = %name, stream = %config.stream, consumer = %durable, "source connected");
    ctx.counters.set_state(State::Running);

    let mut lag_at = tokio::time::Instant::now();
    'consume: loop {
        if ctx.paused() {
            ctx.counters.set_state(State::Paused);
            // The lag keeps being reported: it is what a paused source shows.
            loop {
                report_lag(ctx, &consumer).await;
                match tokio::time::timeout(LAG_EVERY, ctx.wait_resumed()).await {
                    Ok(true) => break,
                    Ok(false) => break 'consume,
                    Err(_) => {}
                }
            }
            ctx.counters.set_state(State::Running);
        }
        let fetch = consumer
            .batch()
            .max_messages(config.max_batch_messages)
            .max_bytes(config.max_batch_bytes)
            .expires(config.linger())
            .messages();
        let mut batch = tokio::select! {
            batch = fetch => batch.map_err(|e| unreachable(e.to_string()))?,
            _ = ctx.stopping() => break 'consume,
        };
        let mut messages = Vec::new();
        let mut last = None;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| unreachable(e.to_string()))?;
            let sequence = message
                .info()
                .map_err(|e| broker(format!("message without JetStream metadata: {e}")))?
                .stream_sequence;
            messages.push(Incoming {
                subject: message.subject.to_string(),
                sequence,
                payload: message.payload.clone(),
            });
            last = Some(message);
        }
        if let Some(last) = last {
            pipeline.commit(messages).await?;
            // Acks everything up to it (AckPolicy::All). A lost ack is a
            // redelivery on the next session, recognised as a duplicate.
            last.ack().await.map_err(|e| unreachable(e.to_string()))?;
            ctx.backoff_reset();
        }
        if lag_at.elapsed() >= LAG_EVERY {
            report_lag(ctx, &consumer).await;
            lag_at = tokio::time::Instant::now();
        }
    }
    // The last batch's ack is on its way out; a lost one would only be a
    // redelivery skipped as a duplicate next time.
    let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
    Ok(())
}

async fn report_lag(ctx: &Context, consumer: &consumer::PullConsumer) {
    if let Ok(info) = consumer.get_info().await {
        ctx.counters.set_lag(info.num_pending);
        ctx.observer.lag(&ctx.name, info.num_pending);
    }
}
