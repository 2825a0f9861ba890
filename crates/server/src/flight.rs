//! Arrow Flight: `DoPut` streams record batches into a table, group-committed
//! with the HTTP traffic. Descriptor path `[table]` or `[table, producer]`;
//! each batch's `app_metadata` may carry `{"sequence": n}`; one `PutResult`
//! per batch, once durable, with `{"sequence", "version", "duplicate"}`.
//!
//! Batches of one stream are committed in order, one after the other: the
//! next message is read only after the previous batch's ack, so gRPC flow
//! control is the back-pressure and a producer's sequences cannot overtake.

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest,
    HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use futures::{Stream, StreamExt, TryStreamExt};
use silt_ingest::Ingestor;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Auth, Role};
use crate::error::ApiError;

type BoxedStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The Flight service.
pub struct FlightIngest {
    ingestor: Arc<Ingestor>,
    auth: Auth,
}

impl FlightIngest {
    /// A service writing through `ingestor`.
    pub fn new(ingestor: Arc<Ingestor>, auth: Auth) -> Self {
        Self { ingestor, auth }
    }

    fn authorize<T>(&self, request: &Request<T>, role: Role) -> Result<(), Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        self.auth.check(header, role).map_err(|e| e.to_status())
    }
}

fn invalid(detail: impl Into<String>) -> Status {
    ApiError::invalid(detail).to_status()
}

/// `(table, producer)` from a DoPut descriptor.
fn target(descriptor: &FlightDescriptor) -> Result<(String, Option<String>), Status> {
    match descriptor.path.as_slice() {
        [table] => Ok((table.clone(), None)),
        [table, producer] if !producer.is_empty() && producer.len() <= 256 => {
            Ok((table.clone(), Some(producer.clone())))
        }
        _ => Err(invalid(
            "the descriptor path must be [table] or [table, producer_id]",
        )),
    }
}

/// The `sequence` of a batch's app_metadata, if any.
fn sequence(app_metadata: &[u8]) -> Result<Option<u64>, Status> {
    if app_metadata.is_empty() {
        return Ok(None);
    }
    let doc: serde_json::Value = serde_json::from_slice(app_metadata).map_err(|e| {
        invalid(format!(
            "batch app_metadata must be JSON like {{\"sequence\": 1}}: {e}"
        ))
    })?;
    match doc.get("sequence") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .filter(|s| i64::try_from(*s).is_ok())
            .map(Some)
            .ok_or_else(|| invalid("app_metadata sequence must be a whole number from 0 to 2^63-1")),
    }
}

#[tonic::async_trait]
impl FlightService for FlightIngest {
    type HandshakeStream = BoxedStream<HandshakeResponse>;
    type ListFlightsStream = BoxedStream<FlightInfo>;
    type DoGetStream = BoxedStream<FlightData>;
    type DoPutStream = BoxedStream<PutResult>;
    type DoExchangeStream = BoxedStream<FlightData>;
    type DoActionStream = BoxedStream<arrow_flight::Result>;
    type ListActionsStream = BoxedStream<ActionType>;

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        self.authorize(&request, Role::Writer)?;
        let mut input = request.into_inner();
        let first = input
            .message()
            .await?
            .ok_or_else(|| invalid("empty DoPut stream: send a descriptor and a schema"))?;
        let descriptor = first
            .flight_descriptor
            .clone()
            .ok_or_else(|| invalid("the first DoPut message must carry the flight descriptor"))?;
        let (table, producer) = target(&descriptor)?;
        let messages = futures::stream::once(async move { Ok(first) })
            .chain(input)
            .map_err(FlightError::from);
        let mut decoder = FlightDataDecoder::new(messages);
        let ingestor = self.ingestor.clone();
        let (sender, receiver) = mpsc::channel::<Result<PutResult, Status>>(1);
        tokio::spawn(async move {
            while let Some(item) = decoder.next().await {
                let decoded = match item {
                    Ok(decoded) => decoded,
                    Err(error) => {
                        let _ = sender
                            .send(Err(invalid(format!("cannot decode the Flight stream: {error}"))))
                            .await;
                        return;
                    }
                };
                let DecodedPayload::RecordBatch(batch) = decoded.payload else {
                    continue;
                };
                let answer = async {
                    let sequence = sequence(&decoded.inner.app_metadata)?;
                    let exactly_once = match (&producer, sequence) {
                        (Some(producer), Some(sequence)) => Some((producer.clone(), sequence)),
                        (None, None) => None,
                        (None, Some(_)) => {
                            return Err(invalid(
                                "a sequence needs a producer: use the descriptor path [table, producer_id]",
                            ));
                        }
                        (Some(_), None) => {
                            return Err(invalid(
                                "with a producer in the descriptor every batch needs {\"sequence\": n}",
                            ));
                        }
                    };
                    let ack = ingestor
                        .ingest_batches(&table, batch.schema(), vec![batch], exactly_once)
                        .await
                        .map_err(|e| ApiError::from(e).to_status())?;
                    let metadata = serde_json::json!({
                        "sequence": sequence,
                        "version": ack.version,
                        "duplicate": ack.duplicate,
                        "rows_written": ack.rows_written,
                        "rows_rejected": ack.rows_rejected,
                    });
                    Ok(PutResult {
                        app_metadata: serde_json::to_vec(&metadata).unwrap_or_default().into(),
                    })
                }
                .await;
                let failed = answer.is_err();
                if sender.send(answer).await.is_err() || failed {
                    return;
                }
            }
        });
        let stream = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn handshake(
        &self,
        _: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        Err(Status::unimplemented(
            "handshake is not used: send 'authorization: Bearer <token>'",
        ))
    }

    async fn list_flights(&self, _: Request<Criteria>) -> Result<Response<Self::ListFlightsStream>, Status> {
        Err(Status::unimplemented("list_flights is not served"))
    }

    async fn get_flight_info(&self, _: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        Err(Status::unimplemented(
            "get_flight_info is not served yet (Flight SQL arrives with the SQL endpoint)",
        ))
    }

    async fn poll_flight_info(&self, _: Request<FlightDescriptor>) -> Result<Response<PollInfo>, Status> {
        Err(Status::unimplemented("poll_flight_info is not served"))
    }

    async fn get_schema(&self, _: Request<FlightDescriptor>) -> Result<Response<SchemaResult>, Status> {
        Err(Status::unimplemented("get_schema is not served"))
    }

    async fn do_get(&self, _: Request<Ticket>) -> Result<Response<Self::DoGetStream>, Status> {
        Err(Status::unimplemented("do_get is not served yet"))
    }

    async fn do_exchange(
        &self,
        _: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented("do_exchange is not served"))
    }

    async fn do_action(&self, _: Request<Action>) -> Result<Response<Self::DoActionStream>, Status> {
        Err(Status::unimplemented("do_action is not served"))
    }

    async fn list_actions(&self, _: Request<Empty>) -> Result<Response<Self::ListActionsStream>, Status> {
        Err(Status::unimplemented("list_actions is not served"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_and_metadata_are_checked() {
        let descriptor = FlightDescriptor::new_path(vec!["t".into(), "p".into()]);
        assert_eq!(
            target(&descriptor).expect("ok"),
            ("t".to_string(), Some("p".to_string()))
        );
        assert!(target(&FlightDescriptor::new_path(vec![])).is_err());
        assert_eq!(sequence(b"{\"sequence\": 4}").expect("ok"), Some(4));
        assert_eq!(sequence(b"").expect("ok"), None);
        assert!(sequence(b"{\"sequence\": -1}").is_err());
        assert!(sequence(b"nope").is_err());
    }
}
