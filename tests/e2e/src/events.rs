//! A Server-Sent Events client for the tests: the response read as it
//! arrives and parsed the way the HTML standard's `EventSource` does
//! (`field: value` lines; a blank line dispatches an event that has data).

use std::io::{BufRead, BufReader, Read};

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `id` field, if the event had one.
    pub id: Option<String>,
    /// The `event` field (`message` when absent).
    pub kind: String,
    /// The `data` lines, joined by line feeds.
    pub data: String,
}

impl Event {
    /// The data as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {}", self.data))
    }

    /// The id as the number Kiln sends.
    pub fn version(&self) -> u64 {
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
    lines: BufReader<Box<dyn Read + Send>>,
}

impl EventStream {
    pub(crate) fn new(status: u16, headers: http::HeaderMap, body: Box<dyn Read + Send>) -> Self {
        EventStream {
            status,
            headers,
            lines: BufReader::new(body),
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
        let mut event = Event {
            id: None,
            kind: "message".into(),
            data: String::new(),
        };
        let mut has_data = false;
        loop {
            let mut line = String::new();
            let read = self.lines.read_line(&mut line).expect("reading the stream");
            if read == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if has_data {
                    return Some(event);
                }
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => event.id = Some(value.to_owned()),
                "event" => event.kind = value.to_owned(),
                "data" => {
                    if has_data {
                        event.data.push('\n');
                    }
                    event.data.push_str(value);
                    has_data = true;
                }
                _ => {}
            }
        }
    }

    /// Every remaining event, until the server ends the stream.
    pub fn rest(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.next_event()).collect()
    }
}
