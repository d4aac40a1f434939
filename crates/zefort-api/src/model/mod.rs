//! The Zefort API's data, by API area: contracts and their search (`contracts.rs`), bulk
//! requests (`bulk.rs`), tasks (`tasks.rs`) and tags (`tags.rs`); the value types they share (dates,
//! the paging envelope) live here.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::{Error, Result};

mod bulk;
mod contracts;
mod tags;
mod tasks;

pub use bulk::{BulkUpdate, ContractAttributes, Target};
pub use contracts::{Contract, ContractId, ContractQuery, ContractStatus, EsignStatus};
pub use tags::{Tag, TagId, TagOutcome};
pub use tasks::{FrontendStatus, Task, TaskDetails, TaskId};

/// A calendar date, written `YYYY-MM-DD` as the API expects.
///
/// ```
/// use zefort_api::Date;
/// let d: Date = "2023-02-15".parse()?;
/// assert_eq!(d.to_string(), "2023-02-15");
/// assert!("2023-02-30".parse::<Date>().is_err());
/// # Ok::<(), zefort_api::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    /// A date from its parts; an impossible date is [`crate::ErrorKind::InvalidInput`].
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self> {
        let leap =
            (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => 0,
        };
        if year == 0 || year > 9999 || day == 0 || day > days {
            return Err(Error::invalid_input(format!(
                "{year:04}-{month:02}-{day:02} is not a calendar date"
            )));
        }
        Ok(Date { year, month, day })
    }

    /// The year.
    pub fn year(&self) -> u16 {
        self.year
    }

    /// The month (1–12).
    pub fn month(&self) -> u8 {
        self.month
    }

    /// The day of the month.
    pub fn day(&self) -> u8 {
        self.day
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl FromStr for Date {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::invalid_input(format!("{s:?} is not a date in the form YYYY-MM-DD"));
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(bad());
        }
        let part = |r: std::ops::Range<usize>| {
            s.get(r)
                .filter(|p| p.bytes().all(|c| c.is_ascii_digit()))
                .and_then(|p| p.parse::<u16>().ok())
                .ok_or_else(bad)
        };
        let (y, m, d) = (part(0..4)?, part(5..7)?, part(8..10)?);
        Date::new(y, m as u8, d as u8)
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One page of a list: the vendor's paging envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Page<T> {
    /// Items in the whole list, if given.
    #[serde(default)]
    pub count: Option<u64>,
    /// URL of the next page; `None` on the last page.
    #[serde(default)]
    pub next: Option<String>,
    /// URL of the previous page.
    #[serde(default)]
    pub previous: Option<String>,
    /// This page's items.
    pub results: Vec<T>,
    /// This page's number (from 1), if given.
    #[serde(default)]
    pub page: Option<u64>,
    /// The page size, if given.
    #[serde(default)]
    pub page_size: Option<u64>,
    /// The last page's number, if given.
    #[serde(default)]
    pub last_page: Option<u64>,
}

pub(crate) fn to_value<T: Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v)
        .map_err(|e| Error::invalid_input("could not encode the request").with_source(e))
}
