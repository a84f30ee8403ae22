//! The comparison with the captures is strict: a request rebuilt from a capture
//! passes, and each kind of difference fails.

use serde_json::Value;

use crate::support::capture::{self, Allow, Capture};
use crate::support::server::{Recorded, TEST_KEY};

/// The capture's own first request, as our client would send it (our client name and
/// version, our key, transport headers of our own).
fn rebuilt(capture: &Capture, body: &str) -> Recorded {
    let want = &capture.requests()[0];
    Recorded {
        method: want["method"].as_str().unwrap().to_owned(),
        path: want["path"].as_str().unwrap().to_owned(),
        query: vec![],
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("authorization".into(), format!("Bearer {TEST_KEY}")),
            ("accept".into(), "*/*".into()),
            ("user-agent".into(), "tofu-upload/test".into()),
            ("host".into(), "127.0.0.1:1".into()),
            ("content-length".into(), body.len().to_string()),
        ],
        body: body.as_bytes().to_vec(),
    }
}

/// The captured body text, in its own key order, with our client's name and version.
fn multidim_body() -> String {
    let raw =
        std::fs::read_to_string(capture::captured_path("create_run_multidimensional")).unwrap();
    let start = raw.find("\"json\": {").unwrap() + "\"json\": ".len();
    let end = raw[start..]
        .find("\n      },\n      \"response_status\"")
        .unwrap()
        + start
        + 8;
    let text = &raw[start..end];
    let _: Value = serde_json::from_str(text).unwrap();
    text.replace("\"Python\"", "\"tofu\"").replace(
        "\"2.26.1\"",
        &format!("\"{}\"", tofu_upload::CLIENT_VERSION),
    )
}

fn check(body: &str, edit: impl FnOnce(&mut Recorded)) {
    let capture = capture::load("create_run_multidimensional");
    let mut recorded = rebuilt(&capture, body);
    edit(&mut recorded);
    capture::assert_requests_match(&capture, &[recorded], &Allow::default());
}

#[test]
fn the_capture_itself_passes() {
    check(&multidim_body(), |_| {});
}

#[test]
#[should_panic(expected = "key order")]
fn key_order_is_checked() {
    let body = multidim_body().replacen(
        "\"procedure_name\": null,\n        \"procedure_version\": null",
        "\"procedure_version\": null,\n        \"procedure_name\": null",
        1,
    );
    check(&body, |_| {});
}

#[test]
#[should_panic(expected = "body")]
fn integer_versus_float_is_checked() {
    let body = multidim_body().replacen("11.0", "11", 1);
    check(&body, |_| {});
}

#[test]
#[should_panic(expected = "body")]
fn null_versus_absent_is_checked() {
    let body = multidim_body().replacen("\"procedure_name\": null,", "", 1);
    check(&body, |_| {});
}

#[test]
#[should_panic(expected = "header content-type missing")]
fn missing_header_is_checked() {
    check(&multidim_body(), |r| {
        r.headers.retain(|(n, _)| n != "content-type")
    });
}

#[test]
#[should_panic(expected = "extra header")]
fn extra_header_is_checked() {
    check(&multidim_body(), |r| {
        r.headers.push(("x-client".into(), "tofu".into()))
    });
}

#[test]
#[should_panic(expected = "authorization")]
fn bearer_key_is_checked() {
    check(&multidim_body(), |r| {
        r.headers.retain(|(n, _)| n != "authorization");
        r.headers.push(("authorization".into(), "Token x".into()));
    });
}
