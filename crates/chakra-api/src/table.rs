//! Updates read from table rows, such as a CSV file's header and records.

use serde_json::{Map, Value};

use crate::model::ProcessUpdate;
use crate::{Error, Result};

/// The update fields a table may carry as columns of their own, as the API spells them.
const ROOT: [&str; 5] = ["state", "status", "assignedTo", "nextActionAt", "isDeleted"];

#[derive(Debug, Clone, PartialEq)]
enum Column {
    /// The identifier: `id`, or the procedure's primary-key attribute (`lead_id`).
    Identifier(String),
    /// `data.<attribute>`.
    Data(String),
    /// One of [`ROOT`].
    Root(&'static str),
}

/// How the columns of a table (a CSV file, a spreadsheet export) map to [`ProcessUpdate`]s.
///
/// A table has exactly one identifier column: `id` (the process id), or the procedure's
/// primary-key attribute named with [`with_primary_key`](Self::with_primary_key) (such as
/// `lead_id`). The other columns are any of `data.<attribute>`, `state`, `status`,
/// `assignedTo`, `nextActionAt` (epoch milliseconds) and `isDeleted`. Any other column is an
/// error: a misspelt `stat` is never taken for an identifier, and a file without an identifier
/// column is refused before anything is sent. Empty cells are left out of the update. Numbers
/// and booleans in `data.*` cells, `nextActionAt`, `isDeleted` and a primary-key value are sent
/// as such (a number with a leading zero stays text); everything else is text.
///
/// ```
/// use chakra_api::TableLayout;
/// let layout = TableLayout::with_primary_key(&["lead_id", "state", "data.score"], "lead_id")?;
/// let update = layout.update(&["L-1", "QUALIFIED", "80"]);
/// assert!(update.validate().is_ok());
/// assert_eq!(
///     serde_json::to_value(&update).ok(),
///     Some(serde_json::json!({"lead_id": "L-1", "update": {"state": "QUALIFIED", "data": {"score": 80}}}))
/// );
/// assert!(TableLayout::new(&["lead_id", "state"]).is_err()); // which column is the key?
/// # Ok::<(), chakra_api::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TableLayout {
    columns: Vec<Column>,
}

impl TableLayout {
    /// Reads the header row of a table identified by process `id`. It is an
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind) error when there is no `id` column, an
    /// unknown column, a repeated column or an empty `data.` name.
    pub fn new<S: AsRef<str>>(header: &[S]) -> Result<TableLayout> {
        Self::build(header, None)
    }

    /// Reads the header row of a table identified by process `id` or by the primary-key
    /// attribute `key` (exactly one of the two columns must be present).
    pub fn with_primary_key<S: AsRef<str>>(header: &[S], key: &str) -> Result<TableLayout> {
        let key = key.trim();
        if key.is_empty() || key.starts_with("data.") || ROOT.contains(&key) {
            return Err(Error::invalid_input(format!(
                "`{key}` cannot be the primary-key attribute"
            )));
        }
        Self::build(header, Some(key))
    }

    fn build<S: AsRef<str>>(header: &[S], key: Option<&str>) -> Result<TableLayout> {
        let mut columns = Vec::with_capacity(header.len());
        let mut unknown = Vec::new();
        for (i, name) in header.iter().enumerate() {
            let name = name.as_ref().trim();
            if header[..i].iter().any(|h| h.as_ref().trim() == name) {
                return Err(Error::invalid_input(format!(
                    "column `{name}` appears twice"
                )));
            }
            let column = if let Some(attr) = name.strip_prefix("data.") {
                if attr.is_empty() {
                    return Err(Error::invalid_input(format!(
                        "column {} is named `data.` without an attribute",
                        i + 1
                    )));
                }
                Column::Data(attr.to_owned())
            } else if let Some(root) = ROOT.iter().find(|r| **r == name) {
                Column::Root(root)
            } else if name.is_empty() {
                return Err(Error::invalid_input(format!(
                    "column {} has no name",
                    i + 1
                )));
            } else if name == "id" || Some(name) == key {
                Column::Identifier(name.to_owned())
            } else {
                unknown.push(format!("`{name}`"));
                continue;
            };
            columns.push(column);
        }
        let key_hint = match key {
            Some(k) => format!("`id` or `{k}`"),
            None => {
                "`id`, or the procedure's primary-key attribute once it is named (--key)".to_owned()
            }
        };
        if !unknown.is_empty() {
            return Err(Error::invalid_input(format!(
                "unknown columns: {}; columns must be the identifier ({key_hint}), \
                 `data.<attribute>` or one of {}",
                unknown.join(", "),
                ROOT.join(", ")
            )));
        }
        let identifiers = columns
            .iter()
            .filter(|c| matches!(c, Column::Identifier(_)))
            .count();
        match identifiers {
            1 => Ok(TableLayout { columns }),
            0 => Err(Error::invalid_input(format!(
                "no identifier column: add {key_hint}"
            ))),
            _ => Err(Error::invalid_input(
                "both `id` and the primary-key attribute are columns; keep exactly one identifier",
            )),
        }
    }

    /// The identifier column's name.
    pub fn identifier(&self) -> &str {
        self.columns
            .iter()
            .find_map(|c| match c {
                Column::Identifier(name) => Some(name.as_str()),
                _ => None,
            })
            .unwrap_or("id")
    }

    /// One row as an update. Never fails: a row with a missing identifier or nothing to change
    /// is kept and fails [`ProcessUpdate::validate`] (so it is reported as invalid, not sent).
    /// Cells beyond the header are ignored.
    pub fn update<S: AsRef<str>>(&self, cells: &[S]) -> ProcessUpdate {
        let mut item = Map::new();
        let mut update = Map::new();
        let mut data = Map::new();
        for (column, cell) in self.columns.iter().zip(cells) {
            let cell = cell.as_ref();
            if cell.is_empty() {
                continue;
            }
            match column {
                Column::Data(attr) => {
                    data.insert(attr.clone(), cell_value(cell));
                }
                Column::Root(name @ ("nextActionAt" | "isDeleted")) => {
                    update.insert((*name).to_owned(), cell_value(cell));
                }
                Column::Root(name) => {
                    update.insert((*name).to_owned(), Value::String(cell.to_owned()));
                }
                Column::Identifier(name) if name == "id" => {
                    item.insert(name.clone(), Value::String(cell.to_owned()));
                }
                Column::Identifier(name) => {
                    item.insert(name.clone(), cell_value(cell));
                }
            }
        }
        if !data.is_empty() {
            update.insert("data".into(), Value::Object(data));
        }
        item.insert("update".into(), Value::Object(update));
        ProcessUpdate::from_wire(Value::Object(item))
    }
}

/// A cell as JSON: numbers and booleans as such (a leading zero keeps it text), else text.
fn cell_value(cell: &str) -> Value {
    match serde_json::from_str::<Value>(cell) {
        Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
        _ => Value::String(cell.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_missing_columns_are_named() {
        let e = TableLayout::with_primary_key(&["lead_id", "stat"], "lead_id")
            .err()
            .map(|e| e.to_string());
        assert!(e.as_deref().is_some_and(|m| m.contains("`stat`")), "{e:?}");
        // A lone unknown column is not taken for the identifier.
        let e = TableLayout::new(&["leadid", "state"])
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref().is_some_and(|m| m.contains("`leadid`")),
            "{e:?}"
        );
        let e = TableLayout::with_primary_key(&["state", "data.x"], "lead_id")
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref().is_some_and(|m| m.contains("no identifier")),
            "{e:?}"
        );
        let e = TableLayout::new(&["state", "data.x"])
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref().is_some_and(|m| m.contains("no identifier")),
            "{e:?}"
        );
        assert!(TableLayout::new(&["id", "id"]).is_err());
    }

    #[test]
    fn empty_cells_are_left_out_and_an_empty_row_is_invalid() {
        let layout = TableLayout::new(&["id", "state", "data.city"]).ok();
        let u = layout.as_ref().map(|l| l.update(&["p1", "", "Pune"]));
        assert_eq!(u.as_ref().map(|u| u.update().state.clone()), Some(None));
        let empty = layout.map(|l| l.update(&["p1", "", ""]));
        assert!(empty.is_some_and(|u| u.validate().is_err()));
    }
}
