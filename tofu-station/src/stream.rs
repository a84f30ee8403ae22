//! `GET /events`: the events as server-sent events, one stream for every slot.
//!
//! Each event is sent as `id: <seq>` and `data: <its JSON form>` (docs/events.md). A stream
//! that resumes (`Last-Event-ID`, which a browser's `EventSource` sends when it reconnects, or
//! `?last_event_id=`) gets the events after that id, while the replay buffer still holds them.
//! A new stream, or one whose id is too old, first gets an `event: snapshot` (every slot's
//! state, `id:` its `seq`), then the events after it: nothing is missed either way.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use tokio::sync::watch;

use crate::app::App;
use crate::hub::{Hub, Next};

struct Cursor {
    hub: Arc<Hub>,
    /// The last event sent; `None` before the first (a snapshot then).
    seen: Option<u64>,
    ready: VecDeque<Event>,
    changed: watch::Receiver<u64>,
}

pub(crate) async fn events(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            uri.query()?.split('&').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                (name == "last_event_id").then(|| value.to_owned())
            })
        })
        .and_then(|id| id.trim().parse::<u64>().ok());
    let cursor = Cursor {
        hub: Arc::clone(&app.hub),
        seen: resume,
        ready: VecDeque::new(),
        changed: app.hub.watch(),
    };
    let events = stream::unfold(cursor, |mut cursor| async move {
        let event = cursor.next().await?;
        Some((Ok::<Event, Infallible>(event), cursor))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

impl Cursor {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            let next = match self.seen {
                None => Next::Snapshot,
                Some(seen) => self.hub.after(seen),
            };
            match next {
                Next::Snapshot => {
                    let (seq, json) = self.hub.snapshot();
                    self.seen = Some(seq);
                    return Some(
                        Event::default()
                            .event("snapshot")
                            .id(seq.to_string())
                            .data(json),
                    );
                }
                Next::Events(events) => {
                    if let Some((last, _)) = events.last() {
                        self.seen = Some(*last);
                    }
                    self.ready.extend(
                        events
                            .into_iter()
                            .map(|(seq, json)| Event::default().id(seq.to_string()).data(&*json)),
                    );
                }
                Next::Nothing => {
                    // The hub's sender lives as long as the server: an error means it stops.
                    self.changed.changed().await.ok()?;
                }
            }
        }
    }
}
