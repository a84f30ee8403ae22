//! VISA: without a vendor library, opening a VISA resource is a clear error (these tests run
//! with the `visa` feature, enabled for the tests by the crate's dev-dependency on itself).

use tofu_instruments::transport::visa::VisaLibrary;
use tofu_instruments::{Address, InstrumentError, Scpi, ScpiOptions};

#[test]
fn an_absent_library_is_named_with_what_to_do() {
    let err = VisaLibrary::load_from(&["/nonexistent/libvisa-tofu-test.so"]).unwrap_err();
    assert!(err.contains("/nonexistent/libvisa-tofu-test.so"), "{err}");
    assert!(err.contains("TOFU_VISA_LIBRARY"), "{err}");
}

#[test]
fn opening_a_visa_resource_without_the_library_fails_clearly() {
    if VisaLibrary::load().is_ok() {
        eprintln!("a VISA library is installed here: the 'absent' case can't be tried");
        return;
    }
    let address = Address::parse("USB0::0x2A8D::0x0101::MY123::INSTR").unwrap();
    match Scpi::connect("dmm", &address, ScpiOptions::default()) {
        Err(e @ InstrumentError::VisaUnavailable { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("USB0::0x2A8D::0x0101::MY123::INSTR") && msg.contains("VISA"),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_library_that_is_not_visa_is_refused() {
    // A real shared library without viOpenDefaultRM.
    let candidates = ["libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"];
    let err = VisaLibrary::load_from(&candidates).unwrap_err();
    assert!(err.contains("viOpenDefaultRM"), "{err}");
}
