//! Hostile inputs made from valid ones, deterministically (a fixed seed, no dependency): the
//! fuzz-style tests of the readers (limits files here; OpenHTF reports, outbox entries and
//! server answers in tofu-upload's tests, which include this file) and a runner that fails on
//! a panic or a hang.

#![allow(dead_code, unreachable_pub)]

use std::sync::mpsc;
use std::time::{Duration, Instant};

/// splitmix64: small, fast, and the same sequence everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// One hostile input and what was done to make it.
#[derive(Debug, Clone)]
pub struct Case {
    pub what: String,
    pub bytes: Vec<u8>,
}

/// `valid` cut at `count` offsets spread over the whole input (every offset when `count` is
/// at least its length).
pub fn truncations(valid: &[u8], count: usize) -> Vec<Case> {
    let step = (valid.len() / count.max(1)).max(1);
    (0..valid.len())
        .step_by(step)
        .map(|at| Case {
            what: format!("truncated at byte {at} of {}", valid.len()),
            bytes: valid[..at].to_vec(),
        })
        .collect()
}

/// `valid` with 1 to 4 bytes replaced by random ones, `count` times.
pub fn byte_flips(valid: &[u8], count: usize, rng: &mut Rng) -> Vec<Case> {
    (0..count)
        .map(|_| {
            let mut bytes = valid.to_vec();
            let mut at = Vec::new();
            for _ in 0..=rng.below(4) {
                if bytes.is_empty() {
                    break;
                }
                let i = rng.below(bytes.len());
                bytes[i] = rng.next_u64() as u8;
                at.push(i);
            }
            Case {
                what: format!("bytes changed at {at:?}"),
                bytes,
            }
        })
        .collect()
}

/// `valid` with one of `tokens` inserted, or a span replaced by one, `count` times: tokens that
/// mean something to the format reach deeper than random bytes.
pub fn token_splices(valid: &[u8], tokens: &[&str], count: usize, rng: &mut Rng) -> Vec<Case> {
    (0..count)
        .map(|_| {
            let token = rng.pick(tokens).as_bytes();
            let at = rng.below(valid.len() + 1);
            let cut = if rng.below(2) == 0 {
                0
            } else {
                rng.below(16).min(valid.len() - at)
            };
            let mut bytes = valid[..at].to_vec();
            bytes.extend_from_slice(token);
            bytes.extend_from_slice(&valid[at + cut..]);
            Case {
                what: format!(
                    "{:?} spliced at byte {at} over {cut} bytes",
                    String::from_utf8_lossy(token)
                ),
                bytes,
            }
        })
        .collect()
}

/// `count` inputs of random bytes, of random lengths up to `max_len`.
pub fn random_bytes(count: usize, max_len: usize, rng: &mut Rng) -> Vec<Case> {
    (0..count)
        .map(|i| {
            let len = rng.below(max_len + 1);
            Case {
                what: format!("random bytes #{i} ({len} bytes)"),
                bytes: rng.bytes(len),
            }
        })
        .collect()
}

/// `open` repeated `depth` times, then `close` as many times: `[[[…]]]`.
pub fn nested(prefix: &str, open: &str, inner: &str, close: &str, depth: usize) -> Vec<u8> {
    let mut s = String::with_capacity(prefix.len() + depth * (open.len() + close.len()));
    s.push_str(prefix);
    for _ in 0..depth {
        s.push_str(open);
    }
    s.push_str(inner);
    for _ in 0..depth {
        s.push_str(close);
    }
    s.into_bytes()
}

/// Runs `f` on its own thread; `Err` says it panicked (with the message) or was still running
/// at `deadline` (a hang: the thread is left behind, and the test fails).
pub fn bounded<T: Send + 'static>(
    deadline: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<(T, Duration), String> {
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    let handle = std::thread::Builder::new()
        .name("hostile-input".into())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(result);
        })
        .map_err(|e| format!("can't start a thread: {e}"))?;
    match rx.recv_timeout(deadline) {
        Ok(Ok(value)) => {
            let _ = handle.join();
            Ok((value, start.elapsed()))
        }
        Ok(Err(panic)) => {
            let _ = handle.join();
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic".to_owned());
            Err(format!("panicked: {message}"))
        }
        Err(_) => Err(format!("still running after {deadline:?} (a hang)")),
    }
}

/// Fails, listing them, when some cases went wrong.
pub fn assert_none_wrong(what: &str, wrong: &[String]) {
    assert!(
        wrong.is_empty(),
        "{what}: {} cases went wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
