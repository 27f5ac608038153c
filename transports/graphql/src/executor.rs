//! [`TransportSchema`]: the schema as the transports run it, over HTTP and
//! on the socket.

use std::{any::TypeId, future::Future, sync::Arc};

use async_graphql::{Data, Executor, Request, Response, futures_util::stream::BoxStream};
use futures_util::StreamExt;

use crate::{
    errors::coded,
    schema::{ParlorSchema, SocketState},
    shared_delivery::SharedDelivery,
};

/// The schema with every response [`coded`], and `joinRoom`'s events
/// resolved once per selection for all of a room's subscribers
/// ([`SharedDelivery`]; on a socket, written by the socket's writer).
///
/// Why a wrapper and not a schema extension: an extension, even one that
/// only wraps requests and streams, puts every field of every subscription
/// event through async-graphql's extension chain (a registry lookup and a
/// boxed future per field) — a quarter of a big room's GraphQL delivery
/// time (docs/benchmarks.md, step 27).
#[derive(Clone)]
pub(crate) struct TransportSchema {
    schema: ParlorSchema,
    shared: Arc<SharedDelivery>,
}

impl TransportSchema {
    pub(crate) fn new(schema: ParlorSchema) -> Self {
        TransportSchema {
            schema,
            shared: Arc::default(),
        }
    }

    #[cfg(test)]
    pub(crate) fn shared(&self) -> &SharedDelivery {
        &self.shared
    }
}

/// The socket an operation came on (its session data), if any.
fn socket_state(data: &Data) -> Option<Arc<SocketState>> {
    data.get(&TypeId::of::<Arc<SocketState>>())?
        .downcast_ref::<Arc<SocketState>>()
        .cloned()
}

impl Executor for TransportSchema {
    fn execute(&self, request: Request) -> impl Future<Output = Response> + Send {
        let running = self.schema.execute(request);
        async move { coded(running.await) }
    }

    fn execute_stream(
        &self,
        mut request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let schema = self.schema.clone();
        let shared = Arc::clone(&self.shared);
        // On a socket, every operation takes its id, in order.
        let socket = session_data.as_deref().and_then(socket_state);
        let id = socket.as_ref().and_then(|s| s.deliveries.running());
        let plan = shared.prepare(&mut request);
        let join = Executor::execute_stream(&schema, request, session_data);
        match (plan, socket, id) {
            (Some(plan), Some(socket), Some(id)) => join
                .chain(plan.handed_to_writer(shared, socket, id))
                .map(coded)
                .boxed(),
            (Some(plan), _, _) => join.chain(plan.after_join(shared)).map(coded).boxed(),
            (None, _, _) => join.map(coded).boxed(),
        }
    }
}
