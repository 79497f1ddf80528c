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
    body: R,
    /// The last `retry` the server asked for: how long to wait before
    /// reconnecting.
    pub retry: Option<Duration>,
    /// The last line ended with a CR: an LF right after it ends nothing.
    after_cr: bool,
    /// Nothing read yet: a byte order mark there is skipped.
    at_start: bool,
}

/// The longest line read: a stream that never ends one is an error, not
/// a growing buffer (Kiln's longest line is one operation's JSON).
const MAX_LINE: usize = 1024 * 1024;

impl<R: BufRead> Events<R> {
    /// Events read from `body`.
    pub fn new(body: R) -> Self {
        Events {
            body,
            retry: None,
            after_cr: false,
            at_start: true,
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
        let mut line = Vec::new();
        loop {
            // A last event without its blank line is not dispatched.
            if !self.read_line(&mut line)? {
                return Ok(None);
            }
            let line = String::from_utf8_lossy(&line);
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
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
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
                "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                    if let Ok(millis) = value.parse::<u64>() {
                        self.retry = Some(Duration::from_millis(millis));
                    }
                }
                _ => {}
            }
        }
    }

    /// The next line, without its end (CRLF, LF or CR alone); `false` at
    /// the end of the stream, where a line without its end is dropped.
    fn read_line(&mut self, line: &mut Vec<u8>) -> std::io::Result<bool> {
        line.clear();
        loop {
            let buffer = self.body.fill_buf()?;
            if buffer.is_empty() {
                return Ok(false);
            }
            if std::mem::take(&mut self.at_start) && buffer.starts_with("\u{feff}".as_bytes()) {
                self.body.consume(3);
                continue;
            }
            if std::mem::take(&mut self.after_cr) && buffer[0] == b'\n' {
                self.body.consume(1);
                continue;
            }
            let end = buffer.iter().position(|&b| b == b'\n' || b == b'\r');
            let taken = end.unwrap_or(buffer.len());
            if line.len() + taken > MAX_LINE {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "an event stream line over 1 MiB",
                ));
            }
            line.extend_from_slice(&buffer[..taken]);
            match end {
                Some(end) => {
                    self.after_cr = buffer[end] == b'\r';
                    self.body.consume(end + 1);
                    return Ok(true);
                }
                None => self.body.consume(taken),
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
    fn lines_may_end_with_cr_alone_and_a_bom_is_skipped() {
        let read = events("\u{feff}id: 7\rdata: a\r\rdata: b\r\n\r\n");
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].id.as_deref(), Some("7"));
        assert_eq!(read[0].data, "a");
        assert_eq!(read[1].data, "b");
    }

    #[test]
    fn a_crlf_split_across_reads_ends_one_line() {
        // One byte at a time: the LF of a CRLF arrives in a read of its own.
        let text = "data: a\r\n\r\ndata: b\r\n\r\n";
        let mut stream = Events::new(std::io::BufReader::with_capacity(1, text.as_bytes()));
        let first = stream.next_event().unwrap().unwrap();
        let second = stream.next_event().unwrap().unwrap();
        assert_eq!((first.data.as_str(), second.data.as_str()), ("a", "b"));
        assert_eq!(stream.next_event().unwrap(), None);
    }

    #[test]
    fn ids_with_nul_and_retries_that_are_not_digits_are_ignored() {
        let mut stream = Events::new("retry: 500\n\nretry: +9\nid: 1\0\ndata: x\n\n".as_bytes());
        let event = stream.next_event().unwrap().unwrap();
        assert_eq!(event.id, None);
        assert_eq!(stream.retry, Some(Duration::from_millis(500)));
    }

    #[test]
    fn a_line_that_never_ends_is_an_error() {
        let endless = vec![b'a'; MAX_LINE + 10];
        let mut stream = Events::new(endless.as_slice());
        assert!(stream.next_event().is_err());
    }

    #[test]
    fn an_event_cut_off_by_the_end_of_the_stream_is_dropped() {
        assert!(events("id: 4\ndata: {}\n").is_empty());
    }
}
