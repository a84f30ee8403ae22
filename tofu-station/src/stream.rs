//! `GET /events`: the events as server-sent events, one stream for every slot.
//!
//! Each event is sent as `id: <seq>` and `data: <its JSON form>` (docs/events.md). A stream
//! that resumes (`Last-Event-ID`, which a browser's `EventSource` sends when it reconnects, or
//! `?last_event_id=`) gets the events after that id, while the replay buffer still holds them.
//! A new stream, or one whose id is too old, first gets an `event: snapshot` (every slot's
//! state, `id:` its `seq`), then the events after it: nothing is missed either way.
//!
//! The events waiting for a stream are written together (up to [`BATCH`] in one write), so a
//! fast test costs one write per batch, not one per event. With `?batch=1` each
//! such write is one server-sent event: a `data:` line per event (its JSON form), then `id:` the
//! last one's `seq`, so a client handles one message per batch; resuming after that id is
//! exact, as for single events. A batched stream starts with `retry: 500`: a browser then
//! reconnects after half a second, not three.
//!
//! `?coalesce=1` (the page's) is a batched stream without the events whose effect on a slot's
//! card a later event of the same batch replaces: a slot's measurement set, phase started,
//! phase ended without a failure or log line (INFO and above) followed by another of the same
//! kind, and log lines below INFO. A page applying the rest ends each batch in the state it
//! would reach with every event, at a fraction of the work: a busy station sends hundreds of
//! thousands of events a second, more than a browser sharing the machine can parse. It also
//! stays current rather than complete: when the stream falls behind the station (see
//! [`LIVE_LAG`]), it sends a snapshot instead of events that are no longer news.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt as _, stream};
use tokio::sync::watch;

use crate::app::App;
use crate::hub::{Framing, Hub, Next};

/// The most events written at once (one batch).
const BATCH: usize = 1000;
/// The most events one batch of the page's view covers (it sends few of them).
const COALESCED_BATCH: usize = 4096;
/// The page's view stays current rather than complete when its stream falls behind the
/// station (four slots running flat out on a busy machine): when the events it would send
/// next are this many behind the station's last, it sends a snapshot (the state now)
/// instead. At a bench's pace (phases of milliseconds) that doesn't happen.
const LIVE_LAG: u64 = 20_000;
/// How long a stream waits to be told of new events before it looks again: the bus wakes its
/// readers at least every 20 ms while a phase runs and for the events that matter, but not for
/// a phase's detail that follows a wake closely and is followed by nothing (the last phase's
/// end before a long teardown).
const LOOK_AGAIN: Duration = Duration::from_millis(50);
/// How soon a page's `EventSource` reconnects (`retry:`, sent first on a batched stream):
/// soon enough that the events it missed are still in the replay buffer at a busy station's
/// pace (browsers wait 3 s by default).
const RETRY: &[u8] = b"retry: 500\n\n";
/// A comment is sent after this long without events, so proxies and browsers keep the
/// connection.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

struct Cursor {
    hub: Arc<Hub>,
    /// The last event sent; `None` before the first (a snapshot then).
    seen: Option<u64>,
    framing: Framing,
    changed: watch::Receiver<u64>,
}

pub(crate) async fn events(State(app): State<Arc<App>>, headers: HeaderMap, uri: Uri) -> Response {
    let query = |wanted: &str| {
        uri.query()?.split('&').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name == wanted).then(|| value.to_owned())
        })
    };
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query("last_event_id"))
        .and_then(|id| id.trim().parse::<u64>().ok());
    let yes = |name: &str| matches!(query(name).as_deref(), Some("1" | "true"));
    let framing = if yes("coalesce") {
        Framing::Coalesced
    } else if yes("batch") {
        Framing::Batch
    } else {
        Framing::Each
    };
    let cursor = Cursor {
        hub: Arc::clone(&app.hub),
        seen: resume,
        framing,
        changed: app.hub.watch(),
    };
    let retry = match framing {
        Framing::Batch | Framing::Coalesced => Some(Ok(Bytes::from_static(RETRY))),
        Framing::Each => None,
    };
    let chunks = stream::iter(retry).chain(stream::unfold(cursor, |mut cursor| async move {
        let chunk = cursor.next().await?;
        Some((Ok::<Bytes, Infallible>(chunk), cursor))
    }));
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(chunks),
    )
        .into_response()
}

impl Cursor {
    /// The next text to write: a snapshot, a batch of events, or a keep-alive comment; `None`
    /// when the server stops.
    async fn next(&mut self) -> Option<Bytes> {
        let live = self.framing == Framing::Coalesced;
        let since = tokio::time::Instant::now();
        loop {
            let next = match self.seen {
                None => Next::Snapshot,
                Some(seen) if live => match self.hub.after(seen, COALESCED_BATCH, self.framing) {
                    Next::Events(_, last)
                        if self.hub.station_seq().saturating_sub(last) > LIVE_LAG =>
                    {
                        Next::Snapshot
                    }
                    next => next,
                },
                Some(seen) => self.hub.after(seen, BATCH, self.framing),
            };
            match next {
                Next::Snapshot => {
                    let (seq, json) = self.hub.snapshot();
                    self.seen = Some(seq);
                    return Some(format!("event: snapshot\nid: {seq}\ndata: {json}\n\n").into());
                }
                Next::Events(text, last) => {
                    self.seen = Some(last);
                    return Some(text);
                }
                Next::Nothing => {
                    match tokio::time::timeout(LOOK_AGAIN, self.changed.changed()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return None,
                        Err(_) if since.elapsed() < KEEP_ALIVE => {}
                        Err(_) => return Some(Bytes::from_static(b": keep-alive\n\n")),
                    }
                }
            }
        }
    }
}
