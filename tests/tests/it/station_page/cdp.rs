//! A small Chrome DevTools Protocol client: Debian's chromium, headless, driven over a sync
//! WebSocket. One connection per page (`/devtools/page/<id>`); every JavaScript exception,
//! console error and error log entry of the page is collected, and fails the test.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// How long a page may take to reach a state the test waits for.
pub(crate) const WAIT: Duration = Duration::from_secs(15);

// The browser, or `None` with a loud "SKIPPED" (a failure when `TOFU_REQUIRE_BROWSER=1`), as
// the report's browser tests find it.
use crate::report::chromium;

/// A headless chromium, killed when dropped.
pub(crate) struct Browser {
    child: Child,
    /// `127.0.0.1:<port>` of its DevTools.
    devtools: String,
    browser_ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// The browser's process id (its renderers are its descendants).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts chromium; `None` when there is none (see [`chromium`]).
    pub(crate) fn launch() -> Option<Browser> {
        let path = chromium()?;
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(path)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("can't run chromium: {e}"));
        let stderr = child.stderr.take().unwrap();
        let (found, url) = std::sync::mpsc::channel();
        // Read stderr to its end (chromium blocks on a full pipe); the first ws:// URL is ours.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(at) = line.find("ws://") {
                    let _ = found.send(line[at..].trim().to_owned());
                    sent = true;
                }
            }
        });
        let url = url
            .recv_timeout(Duration::from_secs(30))
            .expect("chromium printed no DevTools URL within 30 s");
        let devtools = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let (browser_ws, _) = tungstenite::connect(url.as_str()).unwrap();
        Some(Browser {
            child,
            devtools,
            browser_ws,
            next_id: 0,
            _profile: profile,
        })
    }

    /// A new tab, 1366×768, showing `url`, its errors collected.
    pub(crate) fn open(&mut self, url: &str, name: &str) -> Page {
        self.next_id += 1;
        let id = self.next_id;
        let request =
            json!({"id": id, "method": "Target.createTarget", "params": {"url": "about:blank"}});
        self.browser_ws
            .send(Message::text(request.to_string()))
            .unwrap();
        let target = loop {
            let message = self.browser_ws.read().unwrap();
            let Ok(text) = message.to_text() else {
                continue;
            };
            let value: Value = serde_json::from_str(text).unwrap();
            if value["id"] == id {
                break value["result"]["targetId"].as_str().unwrap().to_owned();
            }
        };
        let ws_url = format!("ws://{}/devtools/page/{target}", self.devtools);
        let (ws, _) = tungstenite::connect(ws_url.as_str()).unwrap();
        if let MaybeTlsStream::Plain(stream) = ws.get_ref() {
            stream
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
        }
        let mut page = Page {
            ws,
            next_id: 0,
            errors: Vec::new(),
            name: name.to_owned(),
        };
        page.call("Runtime.enable", json!({}));
        page.call("Log.enable", json!({}));
        page.call("Page.enable", json!({}));
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": false}),
        );
        page.navigate(url);
        page
    }
}

/// One tab.
pub(crate) struct Page {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// The page's JavaScript exceptions, console errors and error log entries so far.
    pub(crate) errors: Vec<String>,
    name: String,
}

impl Drop for Page {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.screenshot("failed");
        }
    }
}

impl Page {
    /// Sends a command; returns its result, collecting the events that come before it.
    pub(crate) fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({"id": id, "method": method, "params": params});
        self.ws.send(Message::text(request.to_string())).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "no answer to {method} in 30 s");
            let message = match self.ws.read() {
                Ok(message) => message,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => panic!("the DevTools connection failed during {method}: {e}"),
            };
            let Ok(text) = message.to_text() else {
                continue;
            };
            let value: Value = serde_json::from_str(text).unwrap();
            if value["id"] == id {
                if let Some(error) = value.get("error") {
                    panic!("{method} failed: {error}");
                }
                return value["result"].clone();
            }
            self.collect(&value);
        }
    }

    fn collect(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.exceptionThrown") => self.errors.push(format!(
                "exception: {}",
                params["exceptionDetails"]["exception"]["description"]
                    .as_str()
                    .or(params["exceptionDetails"]["text"].as_str())
                    .unwrap_or("?")
            )),
            Some("Runtime.consoleAPICalled")
                if matches!(params["type"].as_str(), Some("error" | "assert")) =>
            {
                self.errors
                    .push(format!("console.error: {}", params["args"]));
            }
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => self
                .errors
                .push(format!("log: {}", params["entry"]["text"])),
            _ => {}
        }
    }

    /// Goes to `url` and waits for its scripts to have run.
    pub(crate) fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for("document.readyState === 'complete'", "the page loads");
    }

    /// Reloads the page and waits for its scripts to have run.
    pub(crate) fn reload(&mut self) {
        self.call("Page.reload", json!({}));
        std::thread::sleep(Duration::from_millis(100));
        self.wait_for(
            "document.readyState === 'complete' && window.tofuStation !== undefined",
            "the page reloads",
        );
    }

    /// The value of a JavaScript expression (promises awaited).
    pub(crate) fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(details) = result.get("exceptionDetails") {
            panic!("{expression} threw: {details}");
        }
        result["result"]["value"].clone()
    }

    /// Waits until `expression` is true (saying `what` if it never is).
    pub(crate) fn wait_for(&mut self, expression: &str, what: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.call(
                "Runtime.evaluate",
                json!({"expression": format!("!!({expression})"), "returnByValue": true}),
            );
            if value["result"]["value"] == true {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "[{}] timed out waiting for {what} ({expression}); page errors: {:?}",
                    self.name, self.errors
                );
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Waits for slot `slot`'s card to be in `state`.
    pub(crate) fn wait_state(&mut self, slot: usize, state: &str) {
        self.wait_for(
            &format!(
                "document.querySelector('[data-slot=\"{slot}\"]')?.dataset.state === '{state}'"
            ),
            &format!("slot {slot} to be {state}"),
        );
    }

    /// Clicks the middle of the element `selector` (as a finger or a mouse would).
    pub(crate) fn click(&mut self, selector: &str) {
        let at = self.eval(&format!(
            "(() => {{ const e = document.querySelector({selector:?}); if (!e) return null; \
             e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
             return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
        ));
        let (x, y) = match (at[0].as_f64(), at[1].as_f64()) {
            (Some(x), Some(y)) => (x, y),
            _ => panic!("[{}] nothing to click: {selector}", self.name),
        };
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }

    /// Types `text` into the focused field, as a barcode scanner does, then Enter.
    pub(crate) fn scan(&mut self, text: &str) {
        self.call("Input.insertText", json!({"text": text}));
        self.press_enter();
    }

    pub(crate) fn press_enter(&mut self) {
        self.call(
            "Input.dispatchKeyEvent",
            json!({"type": "keyDown", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"}),
        );
        self.call(
            "Input.dispatchKeyEvent",
            json!({"type": "keyUp", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}),
        );
    }

    /// Fails if the page had a JavaScript error or a console error.
    pub(crate) fn assert_no_errors(&mut self) {
        // Let pending events in.
        self.eval("1");
        assert!(
            self.errors.is_empty(),
            "[{}] the page had errors: {:#?}",
            self.name,
            self.errors
        );
    }

    /// Saves a PNG of the page under `target/tmp/station-page-screenshots/`; returns its path.
    pub(crate) fn screenshot(&mut self, why: &str) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("station-page-screenshots");
        let _ = std::fs::create_dir_all(&dir);
        let test = std::thread::current()
            .name()
            .unwrap_or("test")
            .replace("::", "-");
        let path = dir.join(format!("{test}-{}-{why}.png", self.name));
        // Not `call`: a screenshot taken while a test fails must not panic again.
        self.next_id += 1;
        let id = self.next_id;
        let request =
            json!({"id": id, "method": "Page.captureScreenshot", "params": {"format": "png"}});
        if self.ws.send(Message::text(request.to_string())).is_err() {
            return path;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let Ok(message) = self.ws.read() else {
                continue;
            };
            let Ok(text) = message.to_text() else {
                continue;
            };
            let Ok(value) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            if value["id"] == id {
                if let Some(data) = value["result"]["data"].as_str()
                    && let Ok(png) = base64::engine::general_purpose::STANDARD.decode(data)
                {
                    let _ = std::fs::write(&path, png);
                    let _ = writeln!(std::io::stderr(), "screenshot: {}", path.display());
                }
                break;
            }
        }
        path
    }
}
