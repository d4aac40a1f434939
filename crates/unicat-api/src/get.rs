//! Bulk get: the items of a selection, page by page, as a stream.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bulk_common::paginate::{Page, paginate};
use bulk_common::{Error, ErrorKind, Idempotency, Method, Result};
use futures::Stream;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::client::Client;
use crate::model::{Gid, envelope, missing};
use crate::selection::{Kind, Records, Selection};

/// The default page size (the API's default).
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// The largest page size this client asks for.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// One item of a bulk get: its gid and its data (from the reply's `data` side-store), decoded
/// into `T`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Item<T> {
    /// The item's gid.
    pub gid: Gid,
    /// For schema items: `definition`, `class` or `field`; `None` for records and assets.
    pub schema_type: Option<String>,
    /// The item's data.
    pub data: T,
}

/// A bulk get being set up; finish with [`stream`](Self::stream).
///
/// ```no_run
/// use futures::TryStreamExt;
/// use unicat_api::{Children, Client, RecordSelection};
/// # async fn run(client: Client) -> unicat_api::Result<()> {
/// let selection = RecordSelection::new().children(Children::of("r-root"));
/// let mut records = client.records().get(&selection).page_size(500).stream::<serde_json::Value>();
/// while let Some(record) = records.try_next().await? {
///     println!("{} {}", record.gid, record.data);
/// }
/// # Ok(()) }
/// ```
#[must_use]
pub struct BulkGet<K> {
    client: Client,
    selection: Selection<K>,
    page_size: u32,
    extra: Map<String, Value>,
}

impl<K: Kind> fmt::Debug for BulkGet<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkGet")
            .field("selection", &self.selection)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

impl<K: Kind> BulkGet<K> {
    pub(crate) fn new(client: Client, selection: Selection<K>) -> Self {
        BulkGet {
            client,
            selection,
            page_size: DEFAULT_PAGE_SIZE,
            extra: Map::new(),
        }
    }

    /// Items per page (1 to 1000; default 100). Pages may come back shorter (gids that name
    /// nothing take a slot), so only the end of the cursor ends the stream.
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = size.clamp(1, MAX_PAGE_SIZE);
        self
    }

    /// Streams the items, fetching a page only when the previous one has been consumed. A
    /// page request is a read, so it is retried on transient failures.
    pub fn stream<T: DeserializeOwned + Send + 'static>(self) -> ItemStream<T> {
        let size = Arc::new(AtomicU64::new(UNKNOWN));
        let seen = size.clone();
        let BulkGet {
            client,
            selection,
            page_size,
            extra,
        } = self;
        let path = client.bulk_path::<K>("get");
        let selection = selection.to_json();
        let (list_key, size_key) = keys(K::AREA);
        let inner = paginate(None::<Value>, move |cursor: Option<Value>| {
            let mut body = extra.clone();
            body.insert("selection".into(), selection.clone());
            let mut page = Map::new();
            page.insert("size".into(), json!(page_size));
            if let Some(c) = cursor {
                // The cursor is opaque: echoed exactly as received.
                page.insert("cursor".into(), c);
            }
            body.insert("page".into(), Value::Object(page));
            let request = client
                .http()
                .request(Method::Post, path.clone())
                .idempotency(Idempotency::Idempotent)
                .json(&body);
            let seen = seen.clone();
            async move {
                let (result, data) = request.send_decoded(envelope::<Map<String, Value>>).await?;
                if let Some(n) = result.get(size_key).and_then(Value::as_u64) {
                    seen.store(n, Ordering::Relaxed);
                }
                let items = page_items::<T>(&result, &data, list_key)?;
                let next = match result.get("page.cursor") {
                    None | Some(Value::Null) => None,
                    Some(c) => Some(Some(c.clone())),
                };
                Ok(Page::new(items, next))
            }
        });
        ItemStream {
            inner: Box::pin(inner),
            size,
            yielded: 0,
        }
    }
}

impl BulkGet<Records> {
    /// Record data in this language only.
    pub fn language(mut self, language: impl Into<String>) -> Self {
        self.extra
            .insert("language".into(), Value::String(language.into()));
        self
    }

    /// Record data in these languages.
    pub fn languages<S: Into<String>>(mut self, languages: impl IntoIterator<Item = S>) -> Self {
        let list = languages
            .into_iter()
            .map(|l| Value::String(l.into()))
            .collect();
        self.extra.insert("languages".into(), Value::Array(list));
        self
    }
}

const UNKNOWN: u64 = u64::MAX;

fn keys(area: &str) -> (&'static str, &'static str) {
    match area {
        "records" => ("records", "records.size"),
        "assets" => ("assets", "assets.size"),
        _ => ("schema_items", "schema_items.size"),
    }
}

fn page_items<T: DeserializeOwned>(
    result: &Map<String, Value>,
    data: &Value,
    list_key: &str,
) -> Result<Vec<Item<T>>> {
    let Some(Value::Array(list)) = result.get(list_key) else {
        return Err(missing(&format!("result.{list_key} list")));
    };
    list.iter()
        .map(|entry| {
            let (gid, schema_type, store) = match entry {
                Value::String(g) => (g.clone(), None, list_key),
                Value::Object(o) => {
                    let gid = o.get("item").and_then(Value::as_str);
                    let ty = o.get("type").and_then(Value::as_str);
                    let (Some(gid), Some(ty)) = (gid, ty) else {
                        return Err(missing("type and item in a schema_items entry"));
                    };
                    let store = match ty {
                        "definition" => "definitions",
                        "class" => "classes",
                        "field" => "fields",
                        _ => "",
                    };
                    (gid.to_owned(), Some(ty.to_owned()), store)
                }
                other => {
                    return Err(Error::new(
                        ErrorKind::Decode,
                        format!("unexpected entry {other} in result.{list_key}"),
                    ));
                }
            };
            let raw = data
                .get(store)
                .and_then(|s| s.get(&gid))
                .cloned()
                .unwrap_or(Value::Null);
            let data = serde_json::from_value(raw).map_err(|e| {
                Error::decode(
                    format!(
                        "item {gid} is not the expected {}",
                        std::any::type_name::<T>()
                    ),
                    e,
                )
            })?;
            Ok(Item {
                gid: Gid::from(gid),
                schema_type,
                data,
            })
        })
        .collect()
}

/// The items of a bulk get, lazily fetched page by page.
///
/// `size_hint` uses the vendor's count (`records.size`, `assets.size`, `schema_items.size`)
/// once the first page has arrived; [`size`](Self::size) gives the count itself.
pub struct ItemStream<T> {
    inner: Pin<Box<dyn Stream<Item = Result<Item<T>>> + Send>>,
    size: Arc<AtomicU64>,
    yielded: u64,
}

impl<T> fmt::Debug for ItemStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ItemStream")
            .field("size", &self.size())
            .field("yielded", &self.yielded)
            .finish_non_exhaustive()
    }
}

impl<T> ItemStream<T> {
    /// The number of items the vendor says the selection holds, once a page has arrived.
    pub fn size(&self) -> Option<u64> {
        match self.size.load(Ordering::Relaxed) {
            UNKNOWN => None,
            n => Some(n),
        }
    }
}

impl<T> Stream for ItemStream<T> {
    type Item = Result<Item<T>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(_))) = &polled {
            self.yielded += 1;
        }
        polled
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.size() {
            Some(n) => {
                let left = n.saturating_sub(self.yielded);
                (0, Some(usize::try_from(left).unwrap_or(usize::MAX)))
            }
            None => (0, None),
        }
    }
}
