//! Cursor and page-number pagination as lazy streams.

use std::future::Future;

use futures::{Stream, TryStreamExt};

use crate::error::{Error, ErrorKind, Result};

/// One page of results and where the next page starts (`None` on the last page).
#[derive(Debug, Clone)]
pub struct Page<T, C> {
    /// The page's items.
    pub items: Vec<T>,
    /// The cursor (or page number) of the next page, `None` when this was the last page.
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// A page with its items and the next cursor.
    pub fn new(items: Vec<T>, next: Option<C>) -> Self {
        Page { items, next }
    }
}

/// Turns a page-fetching function into a stream of items.
///
/// Pages are fetched one at a time, only when the consumer has taken every item of the previous
/// page, so memory holds at most one page. The stream ends after the page whose `next` is
/// `None`, or with an error: a failed fetch ends it, and so does a vendor that hands back the
/// cursor it was just given (which would otherwise loop forever).
///
/// ```
/// use bulk_common::paginate::{paginate, Page};
/// use futures::TryStreamExt;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> bulk_common::Result<()> {
/// let items: Vec<u32> = paginate(0u32, |page| async move {
///     let next = (page < 2).then_some(page + 1);
///     Ok(Page::new(vec![page * 10, page * 10 + 1], next))
/// })
/// .try_collect()
/// .await?;
/// assert_eq!(items, [0, 1, 10, 11, 20, 21]);
/// # Ok(()) }
/// ```
pub fn paginate<T, C, F, Fut>(first: C, mut fetch: F) -> impl Stream<Item = Result<T>> + Send
where
    T: Send,
    C: Clone + PartialEq + Send,
    F: FnMut(C) -> Fut + Send,
    Fut: Future<Output = Result<Page<T, C>>> + Send,
{
    futures::stream::try_unfold(Some(first), move |cursor| {
        let fetching = cursor.map(|c| (c.clone(), fetch(c)));
        async move {
            let Some((used, fetching)) = fetching else {
                return Ok(None);
            };
            let page = fetching.await?;
            if page.next.as_ref() == Some(&used) {
                return Err(Error::new(
                    ErrorKind::Decode,
                    "the vendor returned the same page cursor again; stopping to avoid a loop",
                ));
            }
            let items = futures::stream::iter(page.items.into_iter().map(Ok));
            Ok(Some((items, page.next)))
        }
    })
    .try_flatten()
}
