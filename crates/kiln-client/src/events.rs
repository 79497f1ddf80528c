//! Server-Sent Events, read as the HTML standard's parser does: fields
//! `id`, `event`, `data` (lines joined) and `retry`, an event dispatched at
//! each blank line, comments and unknown fields ignored.

use std::io::BufRead;
use std::time::Duration;

/// One event of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `id`: Kiln's job version, sent back as `Last-Event-ID`.
    pub id: Option<String>,
    /// `event`: `status` for Kiln's; `message` when the field is absent.
    pub kind: String,
    /// `data`, its lines joined with `\n`.
    pub data: String,
}

/// The events of one response body.
pub struct Events<R> {
    lines: R,
    /// The last `retry` the server asked for: how long to wait before
    /// reconnecting.
    pub retry: Option<Duration>,
}

impl<R: BufRead> Events<R> {
    /// Events read from `body`.
    pub fn new(body: R) -> Self {
        Events {
            lines: body,
            retry: None,
        }
    }

    /// The next event; `Ok(None)` once the server ended the stream.
    pub fn next_event(&mut self) -> std::io::Result<Option<Event>> {
        let mut event = Event {
            id: None,
            kind: String::new(),
            data: String::new(),
        };
        let mut has_data = false;
        let mut line = String::new();
        loop {
            line.clear();
            if self.lines.read_line(&mut line)? == 0 {
                // A last event without its blank line is not dispatched.
                return Ok(None);
            }
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if has_data {
                    if event.kind.is_empty() {
                        event.kind = "message".into();
                    }
                    return Ok(Some(event));
                }
                event.kind.clear();
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" if !value.contains('\0') => event.id = Some(value.to_owned()),
                "event" => event.kind = value.to_owned(),
                "data" => {
                    if has_data {
                        event.data.push('\n');
                    }
                    event.data.push_str(value);
                    has_data = true;
                }
                "retry" => {
                    if let Ok(millis) = value.parse::<u64>() {
                        self.retry = Some(Duration::from_millis(millis));
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &str) -> Vec<Event> {
        let mut events = Events::new(text.as_bytes());
        std::iter::from_fn(|| events.next_event().unwrap()).collect()
    }

    #[test]
    fn reads_kiln_s_status_events_with_their_ids() {
        let read = events(
            "retry: 1000\n\nid: 1\nevent: status\ndata: {\"a\":1}\n\nid: 3\nevent: status\ndata: {}\n\n",
        );
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].id.as_deref(), Some("1"));
        assert_eq!(read[0].kind, "status");
        assert_eq!(read[0].data, "{\"a\":1}");
        assert_eq!(read[1].id.as_deref(), Some("3"));
    }

    #[test]
    fn remembers_the_reconnection_time() {
        let mut stream = Events::new("retry: 1500\n\n".as_bytes());
        assert_eq!(stream.next_event().unwrap(), None);
        assert_eq!(stream.retry, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn joins_data_lines_and_skips_comments() {
        let read = events(": keep-alive\r\ndata: a\r\ndata:b\r\n\r\n");
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].data, "a\nb");
        assert_eq!(read[0].kind, "message");
    }

    #[test]
    fn an_event_cut_off_by_the_end_of_the_stream_is_dropped() {
        assert!(events("id: 4\ndata: {}\n").is_empty());
    }
}
