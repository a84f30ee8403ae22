//! The server: its routes, and the thread with the tokio runtime that runs them beside the
//! (synchronous) test program.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::oneshot;

use crate::api;
use crate::app::{App, RunCache};
use crate::files;
use crate::guard::{self, Guard};
use crate::hub::Hub;
use crate::{ServeError, StationPage};

/// The station page, served while this lives. Dropping it stops the server.
#[derive(Debug)]
pub struct PageServer {
    addr: SocketAddr,
    token: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PageServer {
    /// The address the server listens on (its port, when it was asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's address, with the token when one is required (open it as it is).
    pub fn url(&self) -> String {
        match &self.token {
            Some(token) => format!("http://{}/?token={token}", self.addr),
            None => format!("http://{}/", self.addr),
        }
    }

    /// The token every request must carry, when one is required.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether `ip` is the default's kind of address: this machine only, no token needed.
fn is_local_default(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4 == std::net::Ipv4Addr::LOCALHOST,
        IpAddr::V6(v6) => v6 == std::net::Ipv6Addr::LOCALHOST,
    }
}

pub(crate) fn start(page: StationPage) -> Result<PageServer, ServeError> {
    let token = match page.token {
        Some(token)
            if token.is_empty()
                || !token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            return Err(ServeError::BadToken);
        }
        Some(token) => Some(token),
        None if is_local_default(page.addr.ip()) => None,
        None => Some(guard::new_token().map_err(ServeError::Io)?),
    };
    let listener = TcpListener::bind(page.addr).map_err(|source| ServeError::Bind {
        addr: page.addr,
        source,
    })?;
    let addr = listener.local_addr().map_err(ServeError::Io)?;
    listener.set_nonblocking(true).map_err(ServeError::Io)?;
    let app = Arc::new(App {
        hub: Arc::new(Hub::start(&page.events, page.replay)),
        commands: page.commands,
        records: page.records,
        outbox: page.outbox,
        runs: RunCache::default(),
    });
    let router = routes(
        app,
        Guard {
            token: token.clone(),
        },
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(ServeError::Io)?;
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("tofu-station-page".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(e) => {
                        tracing::error!("the station page can't listen: {e}");
                        return;
                    }
                };
                // Streams never end by themselves: stopping drops them with the runtime.
                tokio::select! {
                    served = axum::serve(listener, router) => {
                        if let Err(e) = served {
                            tracing::error!("the station page stopped: {e}");
                        }
                    }
                    _ = stopped => {}
                }
            });
        })
        .map_err(ServeError::Io)?;
    let server = PageServer {
        addr,
        token,
        stop: Some(stop),
        thread: Some(thread),
    };
    if page.announce {
        eprintln!("station page: {}", server.url());
    }
    Ok(server)
}

fn routes(app: Arc<App>, guard: Guard) -> Router {
    Router::new()
        .route("/", get(files::index))
        .route("/static/app.js", get(files::app_js))
        .route("/static/app.css", get(files::app_css))
        .route("/static/uplot.js", get(files::uplot_js))
        .route("/static/uplot.css", get(files::uplot_css))
        .route("/events", get(crate::stream::events))
        .route("/api/state", get(api::state))
        .route("/api/runs", get(files::runs))
        .route("/api/uploads", get(files::uploads))
        .route("/reports/{name}", get(files::report))
        .route("/api/slots/{slot}/start", post(api::start))
        .route("/api/slots/{slot}/abort", post(api::abort_slot))
        .route("/api/prompts/{id}", post(api::answer))
        .route("/api/abort", post(api::abort_all))
        .with_state(app)
        .layer(axum::middleware::from_fn_with_state(guard, guard::check))
}
