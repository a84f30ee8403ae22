//! A blocking facade over [`crate::TofuPilotClient`] for test scripts and programs
//! without an async runtime.
//!
//! It owns a private current-thread tokio runtime. Unlike `reqwest::blocking`, it can
//! also be called from inside an async runtime: the request then runs on a scoped
//! helper thread, so nothing panics (the calling task's thread is blocked meanwhile).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use crate::config::{ClientBuilder, Config};
use crate::error::Error;
use crate::types::{CreateRun, ImportedRun, Run, RunAttachment, RunCreated, UploadedAttachment};
use crate::v2;

/// Owns the runtime and shuts it down without blocking, so that dropping the client
/// inside an async context does not panic.
struct RuntimeHolder(Option<tokio::runtime::Runtime>);

impl Drop for RuntimeHolder {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Blocking TofuPilot client: the same calls as [`crate::TofuPilotClient`], each
/// waiting for its result.
///
/// ```no_run
/// use std::time::Duration;
/// use tofu_upload::blocking::TofuPilotClient;
/// use tofu_upload::{CreateRun, UnitUnderTest};
///
/// let client = TofuPilotClient::from_env()?; // TOFUPILOT_API_KEY, TOFUPILOT_URL
/// let run = CreateRun::new(
///     UnitUnderTest::new("PCB1A002").part_number("PCB1").revision("A").batch_number("12-24"),
///     true,
/// )
/// .procedure_id("FVT1")
/// .procedure_version("1.2.3")
/// .duration(Duration::from_secs(154));
/// let created = client.create_run(&run)?;
/// println!("created {}", created.id);
/// for run in client.get_runs("PCB1A002")? {
///     println!("{} {:?}", run.id, run.outcome);
/// }
/// # Ok::<(), tofu_upload::Error>(())
/// ```
#[derive(Clone)]
pub struct TofuPilotClient {
    inner: crate::TofuPilotClient,
    runtime: Arc<RuntimeHolder>,
}

impl std::fmt::Debug for TofuPilotClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("blocking::TofuPilotClient")
            .field("config", self.inner.config())
            .finish_non_exhaustive()
    }
}

impl TofuPilotClient {
    /// A builder for explicit settings (anything unset comes from the environment).
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A client configured from `TOFUPILOT_API_KEY` and `TOFUPILOT_URL`.
    pub fn from_env() -> Result<Self, Error> {
        ClientBuilder::new().build_blocking()
    }

    /// A client for a resolved configuration.
    pub fn from_config(config: Config) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        let inner = {
            let _guard = runtime.enter();
            crate::TofuPilotClient::from_config(config)?
        };
        Ok(Self {
            inner,
            runtime: Arc::new(RuntimeHolder(Some(runtime))),
        })
    }

    /// The async client underneath (shares the connection pool; drive it from this
    /// client's calls or from your own runtime).
    pub fn as_async(&self) -> &crate::TofuPilotClient {
        &self.inner
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        self.inner.config()
    }

    fn block_on<F>(&self, future: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        let Some(runtime) = self.runtime.0.as_ref() else {
            unreachable!("the runtime lives as long as the client")
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return runtime.block_on(future);
        }
        std::thread::scope(
            |scope| match scope.spawn(|| runtime.block_on(future)).join() {
                Ok(output) => output,
                Err(panic) => std::panic::resume_unwind(panic),
            },
        )
    }

    /// See [`crate::TofuPilotClient::create_run`].
    pub fn create_run(&self, run: &CreateRun) -> Result<RunCreated, Error> {
        self.block_on(self.inner.create_run(run))
    }

    /// See [`crate::TofuPilotClient::upload_attachment`].
    pub fn upload_attachment(
        &self,
        run_id: &str,
        path: impl AsRef<Path>,
    ) -> Result<UploadedAttachment, Error> {
        self.block_on(self.inner.upload_attachment(run_id, path.as_ref()))
    }

    /// See [`crate::TofuPilotClient::upload_attachment_bytes`].
    pub fn upload_attachment_bytes(
        &self,
        run_id: &str,
        name: &str,
        mime: Option<&str>,
        data: Vec<u8>,
    ) -> Result<UploadedAttachment, Error> {
        self.block_on(self.inner.upload_attachment_bytes(run_id, name, mime, data))
    }

    /// See [`crate::TofuPilotClient::get_runs`].
    pub fn get_runs(&self, serial_number: &str) -> Result<Vec<Run>, Error> {
        self.block_on(self.inner.get_runs(serial_number))
    }

    /// See [`crate::TofuPilotClient::delete_run`].
    pub fn delete_run(&self, run_id: &str) -> Result<(), Error> {
        self.block_on(self.inner.delete_run(run_id))
    }

    /// See [`crate::TofuPilotClient::download_attachment`].
    pub fn download_attachment(
        &self,
        attachment: &RunAttachment,
        dest: impl AsRef<Path>,
    ) -> Result<u64, Error> {
        self.block_on(self.inner.download_attachment(attachment, dest.as_ref()))
    }

    /// See [`crate::TofuPilotClient::download`].
    pub fn download(&self, url: &str, dest: impl AsRef<Path>) -> Result<u64, Error> {
        self.block_on(self.inner.download(url, dest.as_ref()))
    }

    /// See [`crate::TofuPilotClient::create_run_from_openhtf_report`].
    ///
    /// ```no_run
    /// let client = tofu_upload::blocking::TofuPilotClient::from_env()?;
    /// let imported = client.create_run_from_openhtf_report("PCB01A69658.openhtf_test.json")?;
    /// println!("run {}", imported.id);
    /// # Ok::<(), tofu_upload::Error>(())
    /// ```
    pub fn create_run_from_openhtf_report(
        &self,
        path: impl AsRef<Path>,
    ) -> Result<ImportedRun, Error> {
        self.block_on(self.inner.create_run_from_openhtf_report(path.as_ref()))
    }

    /// See [`crate::TofuPilotClient::create_run_from_openhtf_json`].
    pub fn create_run_from_openhtf_json(
        &self,
        file_name: &str,
        report: Vec<u8>,
    ) -> Result<ImportedRun, Error> {
        self.block_on(self.inner.create_run_from_openhtf_json(file_name, report))
    }

    /// See [`crate::TofuPilotClient::create_run_v2`].
    pub fn create_run_v2(&self, run: &v2::CreateRun) -> Result<String, Error> {
        self.block_on(self.inner.create_run_v2(run))
    }

    /// See [`crate::TofuPilotClient::get_runs_v2`].
    pub fn get_runs_v2(&self, query: &v2::RunQuery) -> Result<v2::RunPage, Error> {
        self.block_on(self.inner.get_runs_v2(query))
    }

    /// See [`crate::TofuPilotClient::all_runs_v2`].
    pub fn all_runs_v2(&self, query: &v2::RunQuery, max: usize) -> Result<Vec<v2::Run>, Error> {
        self.block_on(self.inner.all_runs_v2(query, max))
    }

    /// See [`crate::TofuPilotClient::get_run_v2`].
    pub fn get_run_v2(&self, id: &str) -> Result<v2::Run, Error> {
        self.block_on(self.inner.get_run_v2(id))
    }

    /// See [`crate::TofuPilotClient::delete_runs_v2`].
    pub fn delete_runs_v2(&self, ids: &[&str]) -> Result<(), Error> {
        self.block_on(self.inner.delete_runs_v2(ids))
    }

    /// See [`crate::TofuPilotClient::download_attachments_v2`].
    pub fn download_attachments_v2(
        &self,
        run_id: &str,
        dir: impl AsRef<Path>,
    ) -> Result<Vec<std::path::PathBuf>, Error> {
        self.block_on(self.inner.download_attachments_v2(run_id, dir.as_ref()))
    }

    /// See [`crate::TofuPilotClient::upload_attachment_v2`].
    pub fn upload_attachment_v2(
        &self,
        run_id: &str,
        name: &str,
        mime: Option<&str>,
        data: Vec<u8>,
    ) -> Result<String, Error> {
        self.block_on(self.inner.upload_attachment_v2(run_id, name, mime, data))
    }

    /// See [`crate::TofuPilotClient::resolve_procedure_v2`].
    pub fn resolve_procedure_v2(&self, name: &str) -> Result<String, Error> {
        self.block_on(self.inner.resolve_procedure_v2(name))
    }

    pub(crate) fn store_attachment_v2(
        &self,
        name: &str,
        mime: Option<&str>,
        data: Vec<u8>,
    ) -> Result<String, Error> {
        self.block_on(self.inner.store_attachment_v2(name, mime, data))
    }

    pub(crate) fn finalize_attachment_v2(&self, upload_id: &str) -> Result<(), Error> {
        self.block_on(self.inner.finalize_attachment_v2(upload_id))
    }

    pub(crate) fn link_attachments_v2(&self, run_id: &str, ids: &[&str]) -> Result<(), Error> {
        self.block_on(self.inner.link_attachments_v2(run_id, ids))
    }
}

impl ClientBuilder {
    /// Builds the blocking client.
    pub fn build_blocking(self) -> Result<TofuPilotClient, Error> {
        TofuPilotClient::from_config(self.config()?)
    }
}
