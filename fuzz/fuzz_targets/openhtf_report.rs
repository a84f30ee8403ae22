//! OpenHTF reports given to the import: any bytes. A report that is read goes on to its upload,
//! which fails at once (the client points at a closed loopback port).

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tofu_upload::blocking::TofuPilotClient;

fn client() -> &'static TofuPilotClient {
    static CLIENT: OnceLock<TofuPilotClient> = OnceLock::new();
    CLIENT.get_or_init(|| {
        tofu_upload::ClientBuilder::new()
            .api_key("tp_fuzz_key_0123456789")
            .base_url("http://127.0.0.1:9")
            .timeout(Duration::from_secs(1))
            .build_blocking()
            .expect("a client")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Err(tofu_upload::Error::InvalidReport { path, .. }) =
        client().create_run_from_openhtf_json("report.json", data.to_vec())
    {
        assert_eq!(path, std::path::Path::new("report.json"));
    }
});
