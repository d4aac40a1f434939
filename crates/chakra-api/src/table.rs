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
/// A table has exactly one identifier column (`id`, or the primary-key attribute such as
/// `lead_id`) and any of `data.<attribute>`, `state`, `status`, `assignedTo`, `nextActionAt`
/// (epoch milliseconds) and `isDeleted`. Empty cells are left out of the update. Numbers and
/// booleans in `data.*` cells, `nextActionAt`, `isDeleted` and a primary-key value are sent as
/// such (a number with a leading zero stays text); everything else is text.
///
/// ```
/// use chakra_api::TableLayout;
/// let layout = TableLayout::new(&["lead_id", "state", "data.score"])?;
/// let update = layout.update(&["L-1", "QUALIFIED", "80"]);
/// assert!(update.validate().is_ok());
/// assert_eq!(
///     serde_json::to_value(&update).ok(),
///     Some(serde_json::json!({"lead_id": "L-1", "update": {"state": "QUALIFIED", "data": {"score": 80}}}))
/// );
/// # Ok::<(), chakra_api::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TableLayout {
    columns: Vec<Column>,
}

impl TableLayout {
    /// Reads the header row. It is an [`ErrorKind::InvalidInput`](crate::ErrorKind) error when
    /// there is no identifier column, more than one column that could be the identifier (an
    /// unknown column name, such as a misspelt `stat`, looks like one), a repeated column or an
    /// empty `data.` name.
    pub fn new<S: AsRef<str>>(header: &[S]) -> Result<TableLayout> {
        let mut columns = Vec::with_capacity(header.len());
        let mut identifiers = Vec::new();
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
            } else {
                identifiers.push(name.to_owned());
                Column::Identifier(name.to_owned())
            };
            columns.push(column);
        }
        match identifiers.as_slice() {
            [_] => Ok(TableLayout { columns }),
            [] => Err(Error::invalid_input(
                "no identifier column: add `id` or the procedure's primary-key attribute (such as `lead_id`)",
            )),
            many => Err(Error::invalid_input(format!(
                "unknown columns: {} could each be the identifier, but there must be exactly one; \
                 other columns must be `data.<attribute>` or one of {}",
                many.iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                ROOT.join(", ")
            ))),
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
        let e = TableLayout::new(&["lead_id", "stat"])
            .err()
            .map(|e| e.to_string());
        assert!(e.as_deref().is_some_and(|m| m.contains("`stat`")), "{e:?}");
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
