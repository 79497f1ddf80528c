//! A Server-Sent Events client for the tests: the response read as it
//! arrives and parsed by `kiln-client`'s parser, which reads it the way
//! the HTML standard's `EventSource` does (`field: value` lines; a blank
//! line dispatches an event that has data).

use kiln_client::events::Events;
use std::io::{BufReader, Read};

pub use kiln_client::events::Event;

/// What the tests read of an event.
pub trait EventExt {
    /// The data as JSON.
    fn json(&self) -> serde_json::Value;
    /// The id as the number Kiln sends.
    fn version(&self) -> u64;
}

impl EventExt for Event {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {}", self.data))
    }

    fn version(&self) -> u64 {
        self.id
            .as_deref()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("event without a numeric id: {self:?}"))
    }
}

/// An open event stream.
pub struct EventStream {
    /// The response status.
    pub status: u16,
    /// The response headers.
    pub headers: http::HeaderMap,
    events: Events<BufReader<Box<dyn Read + Send>>>,
}

impl EventStream {
    pub(crate) fn new(status: u16, headers: http::HeaderMap, body: Box<dyn Read + Send>) -> Self {
        EventStream {
            status,
            headers,
            events: Events::new(BufReader::new(body)),
        }
    }

    /// The header's value; panics if it is absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no `{name}` header in {:?}", self.headers))
            .to_str()
            .expect("ASCII header")
    }

    /// Blocks for the next event; `None` once the server ended the stream.
    pub fn next_event(&mut self) -> Option<Event> {
        self.events.next_event().expect("reading the stream")
    }

    /// Every remaining event, until the server ends the stream.
    pub fn rest(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.next_event()).collect()
    }
}
