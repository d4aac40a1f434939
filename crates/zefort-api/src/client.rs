//! The Zefort client, its builder, and the API's operations.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use bulk_common::paginate::{self, Page as Paged};
use bulk_common::poll::{JobWait, PollPolicy, WaitOptions};
use bulk_common::{
    Auth, BaseUrl, ErrorDecoder, ErrorKind, HttpClient, HttpOptions, HttpStats, Idempotency,
    Method, Response, RetryEvent, SecretString, VendorError, encode_segment,
};
use futures::Stream;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::job::{JobHandle, JobWatch};
use crate::model::{
    BulkUpdate, Contract, ContractQuery, Page, Tag, TagId, TagOutcome, Target, Task, TaskId,
};
use crate::{Error, Result};

const PRODUCT: &str = concat!("zefort-api/", env!("CARGO_PKG_VERSION"));

/// Where the API lives: a named Zefort host or any other origin.
///
/// Parsed from text by [`Host::from_str`]: `sandbox`, `my` (or `eu`), `us`, or a URL such as
/// `https://zefort.example.com` (`http://` only on loopback). A URL must be the origin only; a
/// trailing `/api` or `/api/` is removed, since every path this crate sends starts with `/api/`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Host {
    /// `https://sandbox.zefort.com`, for trying things out.
    Sandbox,
    /// `https://my.zefort.com`, the EU service.
    My,
    /// `https://us.zefort.com`, the US service.
    Us,
    /// A dedicated host or a local server speaking the Zefort API.
    Url(BaseUrl),
}

impl Host {
    /// The origin requests go to.
    pub fn base_url(&self) -> Result<BaseUrl> {
        match self {
            Host::Sandbox => BaseUrl::parse("https://sandbox.zefort.com"),
            Host::My => BaseUrl::parse("https://my.zefort.com"),
            Host::Us => BaseUrl::parse("https://us.zefort.com"),
            Host::Url(base) => Ok(base.clone()),
        }
    }
}

impl FromStr for Host {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        match s.to_ascii_lowercase().as_str() {
            "sandbox" => return Ok(Host::Sandbox),
            "my" | "eu" => return Ok(Host::My),
            "us" => return Ok(Host::Us),
            _ => {}
        }
        if !s.contains("://") {
            return Err(Error::config(format!(
                "{s:?} is not a Zefort host: use sandbox, my (or eu), us, or the URL of a \
                 dedicated instance such as https://zefort.example.com"
            )));
        }
        let trimmed = s.trim_end_matches('/');
        let origin = trimmed.strip_suffix("/api").unwrap_or(trimmed);
        BaseUrl::parse(origin).map(Host::Url).map_err(|e| {
            e.context("the Zefort host must be sandbox, my (or eu), us, or an https:// URL")
        })
    }
}

/// Builds a [`Client`].
///
/// ```no_run
/// use zefort_api::{Client, Host, SecretString};
/// # fn run() -> zefort_api::Result<()> {
/// let client = Client::builder()
///     .api_key(SecretString::from("my-api-key"))
///     .host(Host::Sandbox)
///     .build()?;
/// # let _ = client; Ok(()) }
/// ```
#[must_use]
pub struct ClientBuilder {
    api_key: Option<SecretString>,
    host: Result<Host>,
    options: HttpOptions,
    reconcile: bool,
    resubmit_if_absent: bool,
    max_resubmissions: u32,
    reconcile_scan_limit: usize,
    acknowledge_finished: bool,
    on_retry: Option<RetryObserver>,
}

type RetryObserver = Arc<dyn Fn(&RetryEvent<'_>) + Send + Sync>;

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("host", &self.host)
            .field("options", &self.options)
            .field("reconcile", &self.reconcile)
            .field("resubmit_if_absent", &self.resubmit_if_absent)
            .field("max_resubmissions", &self.max_resubmissions)
            .field("reconcile_scan_limit", &self.reconcile_scan_limit)
            .field("acknowledge_finished", &self.acknowledge_finished)
            .finish()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            api_key: None,
            host: Ok(Host::My),
            options: HttpOptions::default(),
            reconcile: true,
            resubmit_if_absent: true,
            max_resubmissions: 2,
            reconcile_scan_limit: 200,
            acknowledge_finished: true,
            on_retry: None,
        }
    }
}

impl ClientBuilder {
    /// The API key (sent as the basic-auth user, with an empty password). Required.
    pub fn api_key(mut self, key: SecretString) -> Self {
        self.api_key = Some(key);
        self
    }

    /// The host (default [`Host::My`]).
    pub fn host(mut self, host: Host) -> Self {
        self.host = Ok(host);
        self
    }

    /// The host as text: `sandbox`, `my`, `us`, or a URL (see [`Host`]). Errors show at
    /// [`build`](Self::build).
    pub fn base_url(mut self, url: &str) -> Self {
        self.host = url.parse();
        self
    }

    /// Timeouts, retry policy and user-agent prefix (bulk-common's defaults otherwise).
    pub fn http_options(mut self, options: HttpOptions) -> Self {
        self.options = options;
        self
    }

    /// Whether [`Client::bulk_update`] looks for its task among recent tasks after an ambiguous
    /// outcome, instead of failing at once (default: yes). See the crate docs for the rule.
    pub fn reconcile(mut self, yes: bool) -> Self {
        self.reconcile = yes;
        self
    }

    /// Whether [`Client::bulk_update`] submits once more when, after an ambiguous outcome, the
    /// task list proves that no task was created (default: yes). With `false` the
    /// [`ErrorKind::AmbiguousOutcome`] error is returned instead. Each new submission needs its
    /// own proof, and there are at most [`max_resubmissions`](Self::max_resubmissions); the proof
    /// and its limits are in the crate docs ("Reconciliation").
    pub fn resubmit_if_absent(mut self, yes: bool) -> Self {
        self.resubmit_if_absent = yes;
        self
    }

    /// How many times, at most, one bulk update is submitted again after proof that the
    /// previous submission created nothing (default 2, so three submissions in all; 0 is the
    /// same as `resubmit_if_absent(false)`).
    pub fn max_resubmissions(mut self, n: u32) -> Self {
        self.max_resubmissions = n;
        self
    }

    /// How many of the most recent tasks reconciliation reads (default 200).
    pub fn reconcile_scan_limit(mut self, tasks: usize) -> Self {
        self.reconcile_scan_limit = tasks.max(1);
        self
    }

    /// Whether a wait acknowledges a task it sees finish successfully (`PATCH` with
    /// `frontend_status = done`), so the task leaves the web UI's pending list (default: yes).
    ///
    /// This is the default of every [`JobWatch`] the client makes, so of [`Client::wait`],
    /// [`Client::watch`] and [`Client::run_bulk_update`]; one watch can differ with
    /// [`JobWatch::acknowledge`]. Failed tasks are never acknowledged: they stay for people to
    /// see.
    pub fn acknowledge_finished(mut self, yes: bool) -> Self {
        self.acknowledge_finished = yes;
        self
    }

    /// Called before every retry wait (for logs, metrics and progress displays).
    pub fn on_retry(mut self, observer: impl Fn(&RetryEvent<'_>) + Send + Sync + 'static) -> Self {
        self.on_retry = Some(Arc::new(observer));
        self
    }

    /// Builds the client. Fails with [`ErrorKind::Config`] without an API key or with a bad host.
    pub fn build(self) -> Result<Client> {
        let key = self
            .api_key
            .ok_or_else(|| Error::config("no Zefort API key was configured"))?;
        let base = self.host?.base_url()?;
        let decoder: ErrorDecoder = Arc::new(decode_error);
        let mut http = HttpClient::builder(PRODUCT)
            .base(base)
            .auth(Auth::basic(key, None)?)
            .options(self.options)
            .error_decoder(decoder);
        if let Some(observer) = self.on_retry {
            http = http.on_retry(move |e| observer(e));
        }
        let http = http.build()?;
        Ok(Client {
            http,
            settings: Arc::new(Settings {
                reconcile: self.reconcile,
                resubmissions: if self.resubmit_if_absent {
                    self.max_resubmissions
                } else {
                    0
                },
                scan_limit: self.reconcile_scan_limit,
                acknowledge: self.acknowledge_finished,
            }),
        })
    }
}

#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) reconcile: bool,
    /// How many more submissions may follow proof of absence (0: none).
    pub(crate) resubmissions: u32,
    pub(crate) scan_limit: usize,
    /// The default of [`JobWatch::acknowledge`].
    pub(crate) acknowledge: bool,
}

/// A Zefort API client.
///
/// Cheap to clone: clones share one connection pool and configuration. Every call has a timeout
/// and retries transient failures of requests that are safe to repeat (see bulk-common).
/// `Debug` never shows the API key.
#[derive(Clone)]
pub struct Client {
    pub(crate) http: HttpClient,
    pub(crate) settings: Arc<Settings>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("http", &self.http)
            .field("settings", &self.settings)
            .finish()
    }
}

impl Client {
    /// Starts a builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client from the environment: `ZEFORT_API_KEY` (required) and `ZEFORT_BASE_URL`
    /// (optional: `sandbox`, `my`, `us` or a URL; default `my`).
    pub fn from_env() -> Result<Client> {
        let key = std::env::var("ZEFORT_API_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| Error::config("ZEFORT_API_KEY is not set"))?;
        let mut builder = Client::builder().api_key(SecretString::from(key));
        if let Ok(url) = std::env::var("ZEFORT_BASE_URL")
            && !url.trim().is_empty()
        {
            let host: Host = url
                .parse()
                .map_err(|e: Error| e.context("ZEFORT_BASE_URL"))?;
            builder = builder.host(host);
        }
        builder.build()
    }

    /// The origin requests go to.
    pub fn base_url(&self) -> &BaseUrl {
        self.http.base_url()
    }

    /// HTTP counters (attempts, retries) since the client was built.
    pub fn stats(&self) -> HttpStats {
        self.http.stats()
    }

    /// Zefort's polling defaults, the one place they live: bulk-common's
    /// [`PollPolicy::default`] (first look after 1 s, growing by 1.5 up to 30 s between looks, a
    /// one-hour deadline). [`Client::wait`] adds a first look at once, for resumed tasks.
    pub fn default_poll_policy() -> PollPolicy {
        PollPolicy::default()
    }

    /// The task of `handle` as an owned [`Job`](bulk_common::poll::Job) (a [`JobWatch`]), for
    /// callers that drive bulk-common's poll driver themselves or want to change one watch
    /// ([`JobWatch::acknowledge`]) before waiting ([`JobWatch::wait`]).
    pub fn watch(&self, handle: &JobHandle) -> JobWatch {
        JobWatch::new(self.clone(), handle, self.settings.acknowledge)
    }

    /// Waits for a task to finish and returns it, acknowledged (see [`JobWatch`]).
    ///
    /// The returned [`JobWait`] is awaited directly or after setting options: a policy (default
    /// [`Client::default_poll_policy`]), cancellation, a progress observer. The first look is
    /// immediate, so this also resumes a task started by an earlier process. A failed task is a
    /// [`ErrorKind::JobFailed`] error carrying `backend_status_info`; the deadline is
    /// [`ErrorKind::DeadlineExceeded`].
    ///
    /// ```no_run
    /// use zefort_api::{Client, JobHandle};
    /// # async fn run(client: Client, saved: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// let handle: JobHandle = serde_json::from_str(saved)?;
    /// let task = client
    ///     .wait(&handle)
    ///     .on_progress(|e| eprintln!("task {}: {:?}", e.job, e.progress.status))
    ///     .await?;
    /// println!("task {} is {}", task.id, task.backend_status);
    /// # Ok(()) }
    /// ```
    pub fn wait(&self, handle: &JobHandle) -> JobWait<JobWatch> {
        self.watch(handle).wait()
    }

    /// Submits a bulk update (`POST /api/contracts/bulk_update/`) and returns the task it
    /// started, without waiting for it. See [`Client::run_bulk_update`] for the whole flow.
    ///
    /// The request is not idempotent and is never re-sent blindly. If the connection breaks
    /// after the request was sent (or the server answers 5xx), the client looks for the task the
    /// request created (crate docs, "Reconciliation") and returns it.
    pub async fn bulk_update(&self, update: &BulkUpdate) -> Result<Task> {
        let body = update.to_json()?;
        crate::reconcile::submit_bulk_update(self, &body).await
    }

    /// The whole bulk update: submit (reconciling a lost reply, see the crate docs), wait with
    /// `options` (unset ones keep [`Client::wait`]'s defaults), acknowledge (unless the client
    /// says otherwise, [`ClientBuilder::acknowledge_finished`]), and return the finished task.
    ///
    /// ```no_run
    /// use zefort_api::{BulkUpdate, Client, ContractQuery, ContractStatus, Target, WaitOptions};
    /// # async fn run() -> zefort_api::Result<()> {
    /// let client = Client::from_env()?;
    /// let update = BulkUpdate::new(Target::search(ContractQuery::new().q_tags("contracts of service")))
    ///     .end_date("2023-02-15".parse()?)
    ///     .status(ContractStatus::Done);
    /// let task = client.run_bulk_update(&update, &WaitOptions::new()).await?;
    /// println!("{} finished: {}", task.id, task.backend_status);
    /// # Ok(()) }
    /// ```
    pub async fn run_bulk_update(
        &self,
        update: &BulkUpdate,
        options: &WaitOptions,
    ) -> Result<Task> {
        let task = self.bulk_update(update).await?;
        tracing::info!(task = %task.id, "bulk update submitted");
        self.wait(&JobHandle::from(&task))
            .options(options.clone())
            .await
    }

    pub(crate) async fn post_bulk_update(&self, body: &Value) -> Result<Task> {
        let reply = self
            .http
            .request(Method::Post, "/api/contracts/bulk_update/")
            .json(body)
            .send()
            .await?;
        // The server accepted the update, so a task exists; without a readable reply its id is
        // as unknown as after a lost reply, and reconciliation applies.
        reply.json().map_err(|e: Error| {
            e.with_kind(ErrorKind::AmbiguousOutcome)
                .with_retryable(false)
                .context("the bulk update was accepted, but its reply is unreadable")
        })
    }

    /// Creates a tag (`POST /api/tags/`).
    pub async fn create_tag(&self, name: &str, active: bool) -> Result<Tag> {
        if name.trim().is_empty() {
            return Err(Error::invalid_input("the tag name is empty"));
        }
        self.http
            .request(Method::Post, "/api/tags/")
            .json(&json!({ "tag_name": name, "active": active }))
            .send()
            .await?
            .json()
    }

    /// The tags, across pages (`GET /api/tags/`).
    pub fn tags(&self) -> impl Stream<Item = Result<Tag>> + Send + 'static {
        self.pages("/api/tags/", None, None)
    }

    /// Attaches a tag to many contracts (`POST /api/tags/{id}/contracts/`).
    ///
    /// Attaching a tag twice leaves the same result, so this request is retried like a read
    /// after transient failures.
    pub async fn tag_contracts(&self, tag: &TagId, target: &Target) -> Result<TagOutcome> {
        let body = target_body(target)?;
        let value: Value = self
            .http
            .request(
                Method::Post,
                format!("/api/tags/{}/contracts/", encode_segment(tag.as_str())),
            )
            .json(&body)
            .idempotency(Idempotency::Idempotent)
            .send_json()
            .await?;
        Ok(match serde_json::from_value::<Task>(value.clone()) {
            Ok(task) => TagOutcome::Task(task),
            Err(_) => TagOutcome::Other(value),
        })
    }

    /// One task (`GET /api/tasks/{id}/`).
    pub async fn task(&self, id: &TaskId) -> Result<Task> {
        self.http
            .request(Method::Get, task_path(id))
            .send_json()
            .await
    }

    /// One page of the task list (`GET /api/tasks/?page=N`).
    pub async fn tasks_page(&self, page: u64, page_size: Option<u64>) -> Result<Page<Task>> {
        let mut req = self
            .http
            .request(Method::Get, "/api/tasks/")
            .query("page", page);
        if let Some(size) = page_size {
            req = req.query("page_size", size);
        }
        req.send_decoded(decode_page).await
    }

    /// Every task, across pages.
    pub fn tasks(&self) -> impl Stream<Item = Result<Task>> + Send + 'static {
        self.pages("/api/tasks/", None, None)
    }

    /// Marks a task as seen (`PATCH /api/tasks/{id}/` with `{"frontend_status": "done"}`), which
    /// removes it from the web UI's pending-task list. Returns the updated task.
    ///
    /// The change is idempotent, so it is retried after transient failures.
    pub async fn acknowledge_task(&self, id: &TaskId) -> Result<Task> {
        self.http
            .request(Method::Patch, task_path(id))
            .json(&json!({ "frontend_status": "done" }))
            .idempotency(Idempotency::Idempotent)
            .send_json()
            .await
    }

    /// One page of contract search results (`GET /api/contracts/?…&page=N`).
    pub async fn contracts_page(
        &self,
        query: &ContractQuery,
        page: u64,
        page_size: Option<u64>,
    ) -> Result<Page<Contract>> {
        query.check()?;
        let mut req = self
            .http
            .request(Method::Get, "/api/contracts/")
            .query_pairs(query)
            .query("page", page);
        if let Some(size) = page_size {
            req = req.query("page_size", size);
        }
        req.send_decoded(decode_page).await
    }

    /// Every contract a search matches, fetched page by page as the stream is read
    /// (`page_size` per request, or the vendor's default). The stream ends after the page whose
    /// `next` is null.
    ///
    /// ```no_run
    /// use futures::TryStreamExt;
    /// use zefort_api::{Client, ContractQuery};
    /// # async fn run(client: Client) -> zefort_api::Result<()> {
    /// let query = ContractQuery::new().q_tags("contracts of service");
    /// let mut contracts = std::pin::pin!(client.search_contracts(&query, Some(100)));
    /// while let Some(contract) = contracts.try_next().await? {
    ///     println!("{} {}", contract.id, contract.title.unwrap_or_default());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn search_contracts(
        &self,
        query: &ContractQuery,
        page_size: Option<u64>,
    ) -> impl Stream<Item = Result<Contract>> + Send + 'static {
        use futures::StreamExt;
        if let Err(e) = query.check() {
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        self.pages("/api/contracts/", Some(query.clone()), page_size)
            .boxed()
    }

    /// Pages through a list by page number until `next` is null. The query's parameters are
    /// encoded by bulk-common's request builder, as for [`Client::contracts_page`].
    fn pages<T>(
        &self,
        path: &'static str,
        query: Option<ContractQuery>,
        page_size: Option<u64>,
    ) -> impl Stream<Item = Result<T>> + Send + 'static
    where
        T: DeserializeOwned + Send + 'static,
    {
        let client = self.http.clone();
        paginate::paginate(1u64, move |page| {
            let mut req = client.request(Method::Get, path);
            if let Some(query) = &query {
                req = req.query_pairs(query);
            }
            if let Some(size) = page_size {
                req = req.query("page_size", size);
            }
            let req = req.query("page", page);
            async move {
                let p: Page<T> = req.send_decoded(decode_page).await?;
                let next = p.next.as_ref().map(|_| page + 1);
                Ok(Paged::new(p.results, next))
            }
        })
    }
}

fn task_path(id: &TaskId) -> String {
    format!("/api/tasks/{}/", encode_segment(id.as_str()))
}

fn target_body(target: &Target) -> Result<Value> {
    target.check()?;
    let mut body = serde_json::Map::new();
    target.write(&mut body)?;
    Ok(Value::Object(body))
}

/// Decodes a list reply: the paging envelope, or a bare JSON array (one page).
fn decode_page<T: DeserializeOwned>(reply: &Response) -> Result<Page<T>> {
    let value: Value = reply.json()?;
    if value.is_array() {
        let results: Vec<T> = serde_json::from_value(value)
            .map_err(|e| Error::decode("the list reply has unexpected items", e))?;
        return Ok(Page {
            count: Some(results.len() as u64),
            next: None,
            previous: None,
            results,
            page: Some(1),
            page_size: None,
            last_page: Some(1),
        });
    }
    serde_json::from_value(value).map_err(|e| {
        Error::decode("the list reply is not the expected paging envelope", e)
            .with_body(reply.body())
    })
}

/// Reads DRF-style error bodies: `{"detail": ".."}`, `{"non_field_errors": [..]}` or
/// `{"field": ["message", ..], ..}` (nested for nested fields).
fn decode_error(reply: &Response) -> Option<VendorError> {
    let status = reply.status();
    if (200..300).contains(&status) {
        return None;
    }
    let body: Value = serde_json::from_slice(reply.body()).ok()?;
    let obj = body.as_object()?;
    if let Some(detail) = obj.get("detail").and_then(Value::as_str) {
        let code = obj.get("code").and_then(Value::as_str).map(str::to_owned);
        return Some(VendorError::new(code, Some(detail.to_owned())).details(body.clone()));
    }
    let mut messages = Vec::new();
    flatten_field_errors("", &body, &mut messages);
    if messages.is_empty() {
        return None;
    }
    let vendor = VendorError::new(None, Some(messages.join("; "))).details(body.clone());
    Some(if status == 400 {
        vendor.kind(ErrorKind::InvalidInput)
    } else {
        vendor
    })
}

fn flatten_field_errors(prefix: &str, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let name = match (prefix.is_empty(), k.as_str()) {
                    (_, "non_field_errors") => prefix.to_owned(),
                    (true, _) => k.clone(),
                    (false, _) => format!("{prefix}.{k}"),
                };
                flatten_field_errors(&name, v, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                flatten_field_errors(prefix, item, out);
            }
        }
        Value::String(msg) if prefix.is_empty() => out.push(msg.clone()),
        Value::String(msg) => out.push(format!("{prefix}: {msg}")),
        _ => {}
    }
}
