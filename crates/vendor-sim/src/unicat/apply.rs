//! What a job does to the catalogue, one item at a time.

use crate::unicat::{Inner, Rec};

pub(super) fn subtree(list: &[Rec], root: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut frontier = vec![root.to_owned()];
    while let Some(g) = frontier.pop() {
        for (i, r) in list.iter().enumerate() {
            if r.gid == g {
                out.push(i);
            }
            if r.parent.as_deref() == Some(g.as_str()) {
                frontier.push(r.gid.clone());
            }
        }
    }
    out
}

/// Applies one item of a job; `false` when it fails for this item.
pub(super) fn apply(
    inner: &mut Inner,
    area: &str,
    op: &str,
    gid: &str,
    param: Option<&str>,
) -> bool {
    if area == "schema" {
        let Some(pos) = inner.schema.iter().position(|s| s.gid == gid) else {
            return false;
        };
        match op {
            "commit" | "revert" => inner.schema[pos].committed = true,
            _ => {
                inner.copies += 1;
                let mut copy = inner.schema[pos].clone();
                copy.gid = format!("{gid}-copy{}", inner.copies);
                copy.committed = false;
                inner.schema.push(copy);
            }
        }
        return true;
    }
    inner.copies += 1;
    let copies = inner.copies;
    let list = inner.list(area);
    let Some(pos) = list.iter().position(|r| r.gid == gid) else {
        return false;
    };
    match op {
        "delete" | "undelete" => {
            let deleting = op == "delete";
            if list[pos].deleted == deleting {
                return false;
            }
            for i in subtree(list, gid) {
                list[i].deleted = deleting;
            }
        }
        "permanent_delete" => {
            if !list[pos].deleted {
                return false;
            }
            let mut doomed = subtree(list, gid);
            doomed.sort_unstable();
            for i in doomed.into_iter().rev() {
                list.remove(i);
            }
        }
        "move" => list[pos].parent = param.map(str::to_owned),
        _ => {
            // duplicate, link, shallow_copy: a copy, under `param` when given.
            let mut copy = list[pos].clone();
            copy.gid = format!("{gid}-copy{copies}");
            if let Some(p) = param {
                copy.parent = Some(p.to_owned());
            }
            list.push(copy);
        }
    }
    true
}
