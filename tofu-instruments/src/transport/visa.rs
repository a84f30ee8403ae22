//! VISA through the vendor's library (NI-VISA, Keysight IO Libraries, R&S VISA…), loaded at
//! run time: nothing of it is needed to build, and without it opening a VISA resource is a
//! clear error. `TOFU_VISA_LIBRARY` names the library when it is not in a standard place.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use libloading::{Library, Symbol};

use super::Transport;
use crate::error::InstrumentError;

type ViSession = u32;
type ViStatus = i32;

const VI_ATTR_TMO_VALUE: u32 = 0x3FFF_001A;
const VI_ATTR_TERMCHAR: u32 = 0x3FFF_0018;
const VI_ATTR_TERMCHAR_EN: u32 = 0x3FFF_0038;
const VI_ERROR_TMO: ViStatus = 0xBFFF_0015_u32 as i32;
const VI_ERROR_CONN_LOST: ViStatus = 0xBFFF_00A6_u32 as i32;

/// Where vendors install the library, tried in order after `TOFU_VISA_LIBRARY`.
pub const DEFAULT_LIBRARIES: &[&str] = if cfg!(windows) {
    &["visa64.dll", "visa32.dll"]
} else if cfg!(target_os = "macos") {
    &["/Library/Frameworks/VISA.framework/VISA"]
} else {
    &["libvisa.so", "libvisa.so.0", "libiovisa.so", "librsvisa.so"]
};

/// A loaded VISA library and its default resource manager.
#[derive(Debug)]
pub struct VisaLibrary {
    library: Library,
    resource_manager: ViSession,
}

impl VisaLibrary {
    /// Loads the first library of `candidates` that loads and opens a resource manager.
    pub fn load_from(candidates: &[&str]) -> Result<VisaLibrary, String> {
        let mut tried = Vec::new();
        for name in candidates {
            // SAFETY: loading a VISA library runs its initialisers; that is what a VISA
            // library is for, and the user pointed us at it (or it is a vendor's standard
            // name).
            match unsafe { Library::new(*name) } {
                Ok(library) => {
                    let mut rm: ViSession = 0;
                    // SAFETY: viOpenDefaultRM's C signature is `ViStatus (ViSession*)`.
                    let open = unsafe {
                        library.get::<unsafe extern "C" fn(*mut ViSession) -> ViStatus>(
                            b"viOpenDefaultRM\0",
                        )
                    };
                    let status = match open {
                        // SAFETY: as above; `rm` outlives the call.
                        Ok(open) => unsafe { open(&mut rm) },
                        Err(e) => {
                            tried.push(format!(
                                "{name}: not a VISA library (no viOpenDefaultRM: {e})"
                            ));
                            continue;
                        }
                    };
                    if status < 0 {
                        tried.push(format!("{name}: viOpenDefaultRM failed ({status:#x})"));
                        continue;
                    }
                    return Ok(VisaLibrary {
                        library,
                        resource_manager: rm,
                    });
                }
                Err(e) => tried.push(format!("{name}: {e}")),
            }
        }
        Err(format!(
            "no VISA library could be loaded (install your instrument vendor's VISA, or set \
             TOFU_VISA_LIBRARY to its path); tried: {}",
            tried.join("; ")
        ))
    }

    /// Loads `TOFU_VISA_LIBRARY` if set, else the standard names.
    pub fn load() -> Result<VisaLibrary, String> {
        match std::env::var("TOFU_VISA_LIBRARY") {
            Ok(path) if !path.is_empty() => VisaLibrary::load_from(&[path.as_str()]),
            _ => VisaLibrary::load_from(DEFAULT_LIBRARIES),
        }
    }

    fn symbol<T>(&self, name: &[u8]) -> io::Result<Symbol<'_, T>> {
        // SAFETY: each caller names the VISA function and gives its C signature as T.
        unsafe { self.library.get(name) }.map_err(io::Error::other)
    }
}

impl Drop for VisaLibrary {
    fn drop(&mut self) {
        if let Ok(close) = self.symbol::<unsafe extern "C" fn(ViSession) -> ViStatus>(b"viClose\0")
        {
            // SAFETY: viClose(ViObject) on the resource manager opened by viOpenDefaultRM, once.
            unsafe {
                close(self.resource_manager);
            }
        }
    }
}

/// An open VISA session.
#[derive(Debug)]
pub struct VisaTransport {
    library: Arc<VisaLibrary>,
    session: ViSession,
    timeout: Option<Duration>,
}

fn check(status: ViStatus, what: &str) -> io::Result<()> {
    match status {
        s if s >= 0 => Ok(()),
        VI_ERROR_TMO => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what}: timeout"),
        )),
        VI_ERROR_CONN_LOST => Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            format!("{what}: connection lost"),
        )),
        s => Err(io::Error::other(format!(
            "{what} failed: VISA status {s:#x}"
        ))),
    }
}

impl VisaTransport {
    /// Opens `resource` through the VISA library.
    pub fn open(resource: &str, timeout: Duration) -> Result<VisaTransport, InstrumentError> {
        let unavailable = |why: String| InstrumentError::VisaUnavailable {
            address: resource.to_owned(),
            why,
        };
        let library = Arc::new(VisaLibrary::load().map_err(unavailable)?);
        let name =
            CString::new(resource).map_err(|_| unavailable("a NUL in the resource".into()))?;
        let mut session: ViSession = 0;
        let status = {
            type ViOpen = unsafe extern "C" fn(
                ViSession,
                *const std::ffi::c_char,
                u32,
                u32,
                *mut ViSession,
            ) -> ViStatus;
            let open = library
                .symbol::<ViOpen>(b"viOpen\0")
                .map_err(|e| unavailable(e.to_string()))?;
            let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
            // SAFETY: viOpen(ViSession rm, ViRsrc name, ViAccessMode mode, ViUInt32 timeout,
            // ViSession* vi); `name` and `session` outlive the call.
            unsafe { open(library.resource_manager, name.as_ptr(), 0, ms, &mut session) }
        };
        check(status, "viOpen").map_err(|e| unavailable(e.to_string()))?;
        let mut t = VisaTransport {
            library,
            session,
            timeout: None,
        };
        t.set_attribute(VI_ATTR_TERMCHAR, usize::from(b'\n'))
            .and_then(|()| t.set_attribute(VI_ATTR_TERMCHAR_EN, 1))
            .map_err(|e| unavailable(e.to_string()))?;
        Ok(t)
    }

    fn set_attribute(&mut self, attribute: u32, value: usize) -> io::Result<()> {
        let set = self
            .library
            .symbol::<unsafe extern "C" fn(ViSession, u32, usize) -> ViStatus>(
                b"viSetAttribute\0",
            )?;
        // SAFETY: viSetAttribute(ViObject, ViAttr, ViAttrState); ViAttrState is pointer-sized.
        check(
            unsafe { set(self.session, attribute, value) },
            "viSetAttribute",
        )
    }

    fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        if self.timeout != Some(timeout) {
            let ms = usize::try_from(timeout.as_millis())
                .unwrap_or(usize::MAX)
                .max(1);
            self.set_attribute(VI_ATTR_TMO_VALUE, ms)?;
            self.timeout = Some(timeout);
        }
        Ok(())
    }
}

impl Transport for VisaTransport {
    fn write_all(&mut self, mut data: &[u8], timeout: Duration) -> io::Result<()> {
        self.set_timeout(timeout)?;
        let write =
            self.library
                .symbol::<unsafe extern "C" fn(ViSession, *const u8, u32, *mut u32) -> ViStatus>(
                    b"viWrite\0",
                )?;
        while !data.is_empty() {
            let count = u32::try_from(data.len()).unwrap_or(u32::MAX);
            let mut written = 0u32;
            // SAFETY: viWrite(ViSession, ViConstBuf, ViUInt32 count, ViUInt32* written) reads
            // at most `count` bytes of `data`.
            check(
                unsafe { write(self.session, data.as_ptr(), count, &mut written) },
                "viWrite",
            )?;
            data = data.get(written as usize..).unwrap_or_default();
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.set_timeout(timeout)?;
        let read =
            self.library
                .symbol::<unsafe extern "C" fn(ViSession, *mut u8, u32, *mut u32) -> ViStatus>(
                    b"viRead\0",
                )?;
        let count = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let mut got = 0u32;
        // SAFETY: viRead writes at most `count` bytes into `buf`.
        check(
            unsafe { read(self.session, buf.as_mut_ptr(), count, &mut got) },
            "viRead",
        )?;
        Ok(got as usize)
    }

    fn clear(&mut self) -> io::Result<()> {
        let clear = self
            .library
            .symbol::<unsafe extern "C" fn(ViSession) -> ViStatus>(b"viClear\0")?;
        // SAFETY: viClear(ViSession).
        check(unsafe { clear(self.session) }, "viClear")
    }
}

impl Drop for VisaTransport {
    fn drop(&mut self) {
        if let Ok(close) = self
            .library
            .symbol::<unsafe extern "C" fn(ViSession) -> ViStatus>(b"viClose\0")
        {
            // SAFETY: viClose(ViObject) on the session opened by viOpen, once.
            unsafe {
                close(self.session);
            }
        }
    }
}
