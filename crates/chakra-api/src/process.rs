//! Reading processes: one by id, or a filtered list as a stream.

use bulk_common::paginate::{Page, paginate};
use bulk_common::{Method, encode_segment};
use futures::Stream;
use serde_json::json;

use crate::envelope::Envelope;
use crate::model::{Process, Query};
use crate::{Client, Error, Result};

/// The list endpoint's largest page.
pub const MAX_LIST_LIMIT: u32 = 100;

impl Client {
    /// Reads one process of `procedure` (UUID or shortId) by its id.
    pub async fn get_process(&self, procedure: &str, process_id: &str) -> Result<Process> {
        let path = format!(
            "/v1/ext/procedure/{}/process/{}",
            encode_segment(procedure),
            encode_segment(process_id)
        );
        let env = self
            .http
            .request(Method::Get, path)
            .send_decoded(|r| Envelope::<Process>::from_response(r, "a process"))
            .await?;
        Ok(env.data)
    }

    /// One page of the list endpoint: processes matching `query`, skipping `skip`, at most
    /// `limit` (1 to 100). Returns the processes and `_meta.hasMore`.
    pub async fn list_processes_page(
        &self,
        procedure: &str,
        query: &Query,
        skip: u64,
        limit: u32,
    ) -> Result<(Vec<Process>, bool)> {
        if limit == 0 || limit > MAX_LIST_LIMIT {
            return Err(Error::invalid_input(format!(
                "limit must be 1 to {MAX_LIST_LIMIT}, got {limit}"
            )));
        }
        let path = format!(
            "/v1/ext/procedure/{}/process/list",
            encode_segment(procedure)
        );
        // Listing changes nothing on the server: safe to retry like a read.
        let env = self
            .http
            .request(Method::Post, path)
            .idempotency(bulk_common::Idempotency::Idempotent)
            .json(&json!({ "where": query, "skip": skip, "limit": limit }))
            .send_decoded(|r| Envelope::<Vec<Process>>::from_response(r, "a process list page"))
            .await?;
        let has_more = env
            .meta
            .as_ref()
            .and_then(|m| m.get("hasMore"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        Ok((env.data, has_more))
    }

    /// Every process of `procedure` matching `query`, as a lazy stream of pages of `page_size`
    /// (at most 100), paged by `skip` while `_meta.hasMore` is true.
    ///
    /// ```no_run
    /// # async fn run(client: chakra_api::Client) -> chakra_api::Result<()> {
    /// use chakra_api::Query;
    /// use futures::TryStreamExt;
    /// let open: Vec<_> = client
    ///     .list_processes("lead", Query::new().eq("status", "OPEN"), 100)
    ///     .try_collect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn list_processes(
        &self,
        procedure: &str,
        query: Query,
        page_size: u32,
    ) -> impl Stream<Item = Result<Process>> + Send + 'static {
        let client = self.clone();
        let procedure = procedure.to_owned();
        let limit = page_size.clamp(1, MAX_LIST_LIMIT);
        paginate(0u64, move |skip| {
            let client = client.clone();
            let procedure = procedure.clone();
            let query = query.clone();
            async move {
                let (items, more) = client
                    .list_processes_page(&procedure, &query, skip, limit)
                    .await?;
                let next = (more && !items.is_empty()).then(|| skip + items.len() as u64);
                Ok(Page::new(items, next))
            }
        })
    }
}
