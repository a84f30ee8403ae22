//! The client's v2 calls: runs (create, list, get, delete), procedures, attachments.

use chrono::{DateTime, Utc};
use reqwest::Method;

use super::request::{CreateRun, format_time};
use super::response::{Created, Procedure, ProcedurePage, Run, RunPage, UploadGrant};
use crate::TofuPilotClient;
use crate::client::{check_size, malformed, parse_json, to_json};
use crate::error::Error;

const OCTET_STREAM: &str = "application/octet-stream";
/// The most procedure pages read looking for a name (50 a page).
const MAX_PROCEDURE_PAGES: usize = 200;

/// Filters and paging of `GET /api/v2/runs`.
///
/// ```
/// let query = tofu_upload::v2::RunQuery::serial_number("SN-001").outcome("FAIL").limit(10);
/// assert_eq!(query.pairs()[0], ("serial_numbers".to_owned(), "SN-001".to_owned()));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunQuery {
    /// Units' serial numbers.
    pub serial_numbers: Vec<String>,
    /// Outcomes (`PASS`, `FAIL`…).
    pub outcomes: Vec<String>,
    /// Procedure ids.
    pub procedure_ids: Vec<String>,
    /// Station batches.
    pub execution_ids: Vec<String>,
    /// Part numbers.
    pub part_numbers: Vec<String>,
    /// Runs started at or after this.
    pub started_after: Option<DateTime<Utc>>,
    /// Runs started before this.
    pub started_before: Option<DateTime<Utc>>,
    /// At most this many a page (the server's default is 50).
    pub limit: Option<u32>,
    /// Where the page starts (a previous page's `meta.next_cursor`).
    pub cursor: Option<String>,
}

impl RunQuery {
    /// Every run (paged).
    pub fn new() -> Self {
        Self::default()
    }

    /// The runs of one unit.
    pub fn serial_number(serial: impl Into<String>) -> Self {
        RunQuery {
            serial_numbers: vec![serial.into()],
            ..Self::default()
        }
    }

    /// Adds an outcome to the filter.
    pub fn outcome(mut self, outcome: impl Into<String>) -> Self {
        self.outcomes.push(outcome.into());
        self
    }

    /// Adds a procedure id to the filter.
    pub fn procedure_id(mut self, id: impl Into<String>) -> Self {
        self.procedure_ids.push(id.into());
        self
    }

    /// Adds a station batch to the filter.
    pub fn execution_id(mut self, id: impl Into<String>) -> Self {
        self.execution_ids.push(id.into());
        self
    }

    /// Adds a part number to the filter.
    pub fn part_number(mut self, part: impl Into<String>) -> Self {
        self.part_numbers.push(part.into());
        self
    }

    /// Only runs started in `[after, before)`.
    pub fn started_between(mut self, after: DateTime<Utc>, before: DateTime<Utc>) -> Self {
        self.started_after = Some(after);
        self.started_before = Some(before);
        self
    }

    /// At most `limit` runs a page.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The page starting at `cursor`.
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// The query's pairs, keys repeated for lists (as the official client sends them).
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        let mut list = |key: &str, values: &[String]| {
            pairs.extend(values.iter().map(|v| (key.to_owned(), v.clone())));
        };
        list("serial_numbers", &self.serial_numbers);
        list("outcomes", &self.outcomes);
        list("procedure_ids", &self.procedure_ids);
        list("execution_ids", &self.execution_ids);
        list("part_numbers", &self.part_numbers);
        if let Some(t) = &self.started_after {
            pairs.push(("started_after".into(), format_time(t)));
        }
        if let Some(t) = &self.started_before {
            pairs.push(("started_before".into(), format_time(t)));
        }
        if let Some(limit) = self.limit {
            pairs.push(("limit".into(), limit.to_string()));
        }
        if let Some(cursor) = &self.cursor {
            pairs.push(("cursor".into(), cursor.clone()));
        }
        pairs
    }
}

/// Whether `text` is a UUID (`8-4-4-4-12` hex digits), as v2's procedure ids are.
pub fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

impl TofuPilotClient {
    async fn v2(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<(crate::client::Target, reqwest::StatusCode, Vec<u8>), Error> {
        let api = self.api_v2_url.clone();
        self.request_at(&api, method, path, query, body).await
    }

    /// Creates a run: `POST /api/v2/runs`; returns its id. `run.procedure_id` must be a
    /// procedure's id (see [`resolve_procedure_v2`](Self::resolve_procedure_v2)). With a
    /// `client_run_ref`, sending the same run again returns the same run.
    pub async fn create_run_v2(&self, run: &CreateRun) -> Result<String, Error> {
        let body = to_json(run)?;
        let (target, status, bytes) = self.v2(Method::POST, "/runs", &[], Some(body)).await?;
        let created: Created = parse_json(&target, status, &bytes)?;
        tracing::info!(target: "tofu_upload", id = %created.id, "run created (v2)");
        Ok(created.id)
    }

    /// One page of runs: `GET /api/v2/runs` with the query's filters.
    pub async fn get_runs_v2(&self, query: &RunQuery) -> Result<RunPage, Error> {
        let pairs = query.pairs();
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (target, status, bytes) = self.v2(Method::GET, "/runs", &pairs, None).await?;
        parse_json(&target, status, &bytes)
    }

    /// Every run matching the query, page after page (at most `max` runs).
    pub async fn all_runs_v2(&self, query: &RunQuery, max: usize) -> Result<Vec<Run>, Error> {
        let mut query = query.clone();
        let mut runs = Vec::new();
        loop {
            let page = self.get_runs_v2(&query).await?;
            runs.extend(page.data);
            let next = match page.meta.next_cursor {
                Some(serde_json::Value::String(s)) => Some(s),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            match next {
                Some(cursor) if page.meta.has_more && runs.len() < max => {
                    query.cursor = Some(cursor);
                }
                _ => break,
            }
        }
        runs.truncate(max);
        Ok(runs)
    }

    /// One run: `GET /api/v2/runs/{id}`.
    pub async fn get_run_v2(&self, id: &str) -> Result<Run, Error> {
        check_id(id)?;
        let (target, status, bytes) = self
            .v2(Method::GET, &format!("/runs/{id}"), &[], None)
            .await?;
        parse_json(&target, status, &bytes)
    }

    /// Deletes runs: `DELETE /api/v2/runs?ids=…`.
    pub async fn delete_runs_v2(&self, ids: &[&str]) -> Result<(), Error> {
        for id in ids {
            check_id(id)?;
        }
        let pairs: Vec<(&str, &str)> = ids.iter().map(|id| ("ids", *id)).collect();
        self.v2(Method::DELETE, "/runs", &pairs, None).await?;
        Ok(())
    }

    /// Downloads every file of a run into `dir` (named as on TofuPilot); returns the paths.
    pub async fn download_attachments_v2(
        &self,
        run_id: &str,
        dir: impl AsRef<std::path::Path>,
    ) -> Result<Vec<std::path::PathBuf>, Error> {
        let run = self.get_run_v2(run_id).await?;
        let dir = dir.as_ref();
        let mut paths = Vec::new();
        for attachment in &run.attachments {
            let name = attachment
                .filename
                .as_deref()
                .or(attachment.id.as_deref())
                .unwrap_or("attachment");
            let path = dir.join(tofu_core::fs::safe_file_name(name));
            self.download_attachment(attachment, &path).await?;
            paths.push(path);
        }
        Ok(paths)
    }

    /// Initializes an upload and `PUT`s the bytes; returns the upload's id.
    pub(crate) async fn store_attachment_v2(
        &self,
        name: &str,
        mime: Option<&str>,
        data: Vec<u8>,
    ) -> Result<String, Error> {
        check_size(std::path::Path::new(name), data.len() as u64)?;
        let mime = mime.filter(|m| !m.is_empty()).unwrap_or(OCTET_STREAM);
        let body = to_json(&serde_json::json!({ "name": name }))?;
        let (target, status, bytes) = self
            .v2(Method::POST, "/attachments", &[], Some(body))
            .await?;
        let grant: UploadGrant = parse_json(&target, status, &bytes)?;
        if grant.id.is_empty() || grant.upload_url.is_empty() {
            return Err(malformed(
                &target,
                status,
                "missing 'id' or 'upload_url'",
                &bytes,
            ));
        }
        self.put_presigned(&target, status, &grant.upload_url, mime, data)
            .await?;
        Ok(grant.id)
    }

    /// `POST /api/v2/attachments/{id}/finalize`: the server checks the stored file.
    pub(crate) async fn finalize_attachment_v2(&self, upload_id: &str) -> Result<(), Error> {
        check_id(upload_id)?;
        self.v2(
            Method::POST,
            &format!("/attachments/{upload_id}/finalize"),
            &[],
            None,
        )
        .await?;
        Ok(())
    }

    /// Links uploads to a run: `PATCH /api/v2/runs/{id} {attachments: [ids]}` (linking one
    /// twice links it once).
    pub(crate) async fn link_attachments_v2(
        &self,
        run_id: &str,
        upload_ids: &[&str],
    ) -> Result<(), Error> {
        check_id(run_id)?;
        let body = to_json(&serde_json::json!({ "attachments": upload_ids }))?;
        self.v2(Method::PATCH, &format!("/runs/{run_id}"), &[], Some(body))
            .await?;
        Ok(())
    }

    /// Uploads bytes as a file of a run, v2's way: initialize, `PUT`, finalize, link.
    /// Returns the upload's id.
    pub async fn upload_attachment_v2(
        &self,
        run_id: &str,
        name: &str,
        mime: Option<&str>,
        data: Vec<u8>,
    ) -> Result<String, Error> {
        check_id(run_id)?;
        let id = self.store_attachment_v2(name, mime, data).await?;
        self.finalize_attachment_v2(&id).await?;
        self.link_attachments_v2(run_id, &[&id]).await?;
        Ok(id)
    }

    /// The procedure named `name` (exactly), looked for with `GET /api/v2/procedures`.
    pub async fn find_procedure_v2(&self, name: &str) -> Result<Option<Procedure>, Error> {
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PROCEDURE_PAGES {
            let mut pairs = vec![("search_query", name), ("limit", "50")];
            if let Some(c) = &cursor {
                pairs.push(("cursor", c.as_str()));
            }
            let (target, status, bytes) = self.v2(Method::GET, "/procedures", &pairs, None).await?;
            let page: ProcedurePage = parse_json(&target, status, &bytes)?;
            if let Some(found) = page.data.into_iter().find(|p| p.name == name) {
                return Ok(Some(found));
            }
            cursor = match page.meta.next_cursor {
                Some(serde_json::Value::String(s)) if page.meta.has_more => Some(s),
                Some(serde_json::Value::Number(n)) if page.meta.has_more => Some(n.to_string()),
                _ => return Ok(None),
            };
        }
        Ok(None)
    }

    /// Creates a procedure: `POST /api/v2/procedures {name}`; returns its id.
    pub async fn create_procedure_v2(&self, name: &str) -> Result<String, Error> {
        let body = to_json(&serde_json::json!({ "name": name }))?;
        let (target, status, bytes) = self
            .v2(Method::POST, "/procedures", &[], Some(body))
            .await?;
        let created: Created = parse_json(&target, status, &bytes)?;
        tracing::info!(target: "tofu_upload", name, id = %created.id, "procedure created (v2)");
        Ok(created.id)
    }

    /// The v2 id of the procedure a run names: `TOFUPILOT_PROCEDURE_ID` (or the builder's
    /// [`procedure_id`](crate::ClientBuilder::procedure_id)) when set; else `name` itself when
    /// it is a UUID; else the procedure of that name on TofuPilot, created when
    /// [`create_procedures`](crate::ClientBuilder::create_procedures) allows it. Names found
    /// are remembered for the client's life. [`Error::UnknownProcedure`] names the procedure
    /// when there is none.
    pub async fn resolve_procedure_v2(&self, name: &str) -> Result<String, Error> {
        if let Some(id) = self.config().procedure_id() {
            return Ok(id.to_owned());
        }
        if is_uuid(name) {
            return Ok(name.to_owned());
        }
        if name.trim().is_empty() {
            return Err(Error::InvalidInput(
                "the run names no procedure (set the test's procedure id, or TOFUPILOT_PROCEDURE_ID)"
                    .into(),
            ));
        }
        if let Some(id) = self.cached_procedure(name) {
            return Ok(id);
        }
        let id = match self.find_procedure_v2(name).await? {
            Some(found) => found.id,
            None if self.config().create_procedures() => self.create_procedure_v2(name).await?,
            None => {
                return Err(Error::UnknownProcedure {
                    name: name.to_owned(),
                    advice: unknown_procedure_advice(),
                });
            }
        };
        self.procedures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), id.clone());
        Ok(id)
    }

    fn cached_procedure(&self, name: &str) -> Option<String> {
        self.procedures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }
}

/// What to do about a procedure v2 doesn't have.
pub(crate) fn unknown_procedure_advice() -> String {
    "create it on TofuPilot, or set TOFUPILOT_PROCEDURE_ID to its id, or let the uploader \
     create it with TOFUPILOT_CREATE_PROCEDURES=1; the run stays in the outbox until then"
        .to_owned()
}

fn check_id(id: &str) -> Result<(), Error> {
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::InvalidInput(format!("{id:?} is not a TofuPilot id")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_told_from_names() {
        for (text, uuid) in [
            ("b5a7f3a4-0000-4000-8000-000000000001", true),
            ("B5A7F3A4-0000-4000-8000-00000000000F", true),
            ("FVT1", false),
            ("b5a7f3a4-0000-4000-8000-00000000001", false),
            ("b5a7f3a4-0000-4000-8000-00000000000g", false),
            ("b5a7f3a400004000800000000000000001", false),
            ("", false),
        ] {
            assert_eq!(is_uuid(text), uuid, "{text}");
        }
    }

    #[test]
    fn a_query_repeats_its_list_keys() {
        let t = DateTime::from_timestamp_millis(1_737_387_126_058).unwrap_or_default();
        let q = RunQuery::serial_number("A")
            .outcome("PASS")
            .outcome("FAIL")
            .started_between(t, t)
            .limit(5)
            .cursor("10");
        let pairs = q.pairs();
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "serial_numbers",
                "outcomes",
                "outcomes",
                "started_after",
                "started_before",
                "limit",
                "cursor"
            ]
        );
        assert_eq!(pairs[3].1, "2025-01-20T15:32:06.058000Z");
    }
}
