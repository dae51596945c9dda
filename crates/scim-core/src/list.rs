//! Query parameters of list and read requests, and the ListResponse.

use serde_json::{Value, json};

use crate::error::ScimError;
use crate::filter::Filter;
use crate::resource::Projection;
use crate::schema::{self, ResourceType};

/// Default page size when a client sends no `count`.
pub(crate) const DEFAULT_COUNT: usize = 100;
/// Largest page served; advertised as `filter.maxResults`.
pub(crate) const MAX_COUNT: usize = 1000;
/// Most resources one list request may examine: bounds the work of an
/// unindexed filter on a large account.
pub(crate) const MAX_SCAN: usize = 50_000;

/// Parsed `GET` query parameters (RFC 7644 §3.4.2).
#[derive(Debug)]
pub(crate) struct ListQuery {
    pub(crate) filter: Option<Filter>,
    /// 1-based.
    pub(crate) start_index: usize,
    pub(crate) count: usize,
    pub(crate) projection: Projection,
}

impl ListQuery {
    pub(crate) fn parse(rt: &ResourceType, params: &[(String, String)]) -> Result<Self, ScimError> {
        let get = |name: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
        let filter = match get("filter") {
            Some(text) if !text.trim().is_empty() => Some(Filter::parse(rt, text)?),
            Some(_) => return Err(ScimError::invalid_filter("the filter is empty")),
            None => None,
        };
        let number = |name: &str| -> Result<Option<i64>, ScimError> {
            match get(name) {
                None => Ok(None),
                Some(s) => s
                    .trim()
                    .parse::<i64>()
                    .map(Some)
                    .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer, got {s:?}"))),
            }
        };
        // RFC 7644 §3.4.2.4: values below 1 are treated as 1; a negative
        // count as 0.
        let start_index = number("startIndex")?.unwrap_or(1).max(1) as usize;
        let count = number("count")?.map(|c| c.clamp(0, MAX_COUNT as i64) as usize).unwrap_or(DEFAULT_COUNT);
        Ok(ListQuery { filter, start_index, count, projection: projection(rt, params) })
    }
}

/// `attributes` / `excludedAttributes` of a request.
pub(crate) fn projection(rt: &ResourceType, params: &[(String, String)]) -> Projection {
    let get = |name: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    Projection::parse(rt, get("attributes"), get("excludedAttributes"))
}

/// Builds a ListResponse.
pub(crate) fn list_response(total: usize, start_index: usize, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [schema::LIST_RESPONSE],
        "totalResults": total,
        "itemsPerPage": resources.len(),
        "startIndex": start_index,
        "Resources": resources,
    })
}

/// Collects the page `[start, start + count)` (1-based) of matching items
/// while counting every match.
#[derive(Debug)]
pub(crate) struct Pager<T> {
    start: usize,
    count: usize,
    pub(crate) total: usize,
    pub(crate) page: Vec<T>,
}

impl<T> Pager<T> {
    pub(crate) fn new(start: usize, count: usize) -> Self {
        Pager { start, count, total: 0, page: Vec::new() }
    }

    /// Whether the next match would land on the page.
    pub(crate) fn next_is_on_page(&self) -> bool {
        let position = self.total + 1;
        position >= self.start && position < self.start.saturating_add(self.count)
    }

    /// Records one match; keeps it if it falls on the page.
    pub(crate) fn push(&mut self, item: impl FnOnce() -> T) {
        if self.next_is_on_page() {
            self.page.push(item());
        }
        self.total += 1;
    }
}
