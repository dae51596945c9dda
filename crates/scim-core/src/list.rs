//! Listing: query parameters, the paging modes and the ListResponse, for
//! every resource type.
//!
//! Three ways through a collection, all in a stable order:
//! - index paging (`startIndex`/`count`, RFC 7644 §3.4.2.4), counting every
//!   match for `totalResults`;
//! - cursor paging (`cursor`/`count`, RFC 9865), which resumes from an index
//!   key, so a page costs the same wherever it lies;
//! - sorted listing (`sortBy`/`sortOrder`, §3.4.2.3), which must see every
//!   match and is bounded by [`MAX_SCAN`].

use serde_json::{Map, Value, json};

use crate::error::{ScimError, ScimType};
use crate::filter::{self, Filter, IndexHint, Target};
use crate::resource::Projection;
use crate::schema::{self, ResourceType};

/// Default page size when a client sends no `count`.
pub(crate) const DEFAULT_COUNT: usize = 100;
/// Largest page served; advertised as `filter.maxResults`.
pub(crate) const MAX_COUNT: usize = 1000;
/// Most resources one list request may examine: bounds the work of an
/// unindexed filter or a sort on a large account.
pub(crate) const MAX_SCAN: usize = 50_000;
/// URN of the SearchRequest message (RFC 7644 §3.4.3).
pub(crate) const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

const SCAN_PAGE: u32 = 500;

/// Parsed list parameters (RFC 7644 §3.4.2, RFC 9865).
#[derive(Debug)]
pub(crate) struct ListQuery {
    pub(crate) filter: Option<Filter>,
    /// 1-based.
    pub(crate) start_index: usize,
    pub(crate) count: usize,
    pub(crate) projection: Projection,
    pub(crate) sort: Option<(Target, bool)>,
    /// `Some("")` asks for the first page in cursor mode.
    pub(crate) cursor: Option<String>,
}

impl ListQuery {
    /// From query-string parameters.
    pub(crate) fn parse(rt: &ResourceType, params: &[(String, String)]) -> Result<Self, ScimError> {
        let get = |name: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
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
        Self::build(
            rt,
            get("filter"),
            number("startIndex")?,
            number("count")?,
            get("attributes"),
            get("excludedAttributes"),
            get("sortBy"),
            get("sortOrder"),
            get("cursor"),
        )
    }

    /// From a `POST …/.search` body (RFC 7644 §3.4.3).
    pub(crate) fn from_search(rt: &ResourceType, body: &Value) -> Result<Self, ScimError> {
        let Value::Object(map) = body else {
            return Err(ScimError::invalid_syntax("a search body must be a SearchRequest JSON object"));
        };
        let get = |name: &str| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
        if let Some(schemas) = get("schemas")
            && !schemas.as_array().is_some_and(|a| a.iter().any(|s| s.as_str() == Some(SEARCH_REQUEST)))
        {
            return Err(ScimError::invalid_syntax(format!("a SearchRequest must list the schema {SEARCH_REQUEST:?}")));
        }
        let string = |name: &str| -> Result<Option<String>, ScimError> {
            match get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                // `attributes` may be a JSON array of names.
                Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
                    Ok(Some(items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")))
                }
                Some(_) => Err(ScimError::invalid_value(format!("{name} must be a string"))),
            }
        };
        let number = |name: &str| -> Result<Option<i64>, ScimError> {
            match get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
                Some(_) => Err(ScimError::invalid_value(format!("{name} must be an integer"))),
            }
        };
        Self::build(
            rt,
            string("filter")?.as_deref(),
            number("startIndex")?,
            number("count")?,
            string("attributes")?.as_deref(),
            string("excludedAttributes")?.as_deref(),
            string("sortBy")?.as_deref(),
            string("sortOrder")?.as_deref(),
            string("cursor")?.as_deref(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        rt: &ResourceType,
        filter: Option<&str>,
        start_index: Option<i64>,
        count: Option<i64>,
        attributes: Option<&str>,
        excluded: Option<&str>,
        sort_by: Option<&str>,
        sort_order: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Self, ScimError> {
        let filter = match filter {
            Some(text) if !text.trim().is_empty() => Some(Filter::parse(rt, text)?),
            Some(_) => return Err(ScimError::invalid_filter("the filter is empty")),
            None => None,
        };
        let ascending = match sort_order {
            None => true,
            Some(o) if o.eq_ignore_ascii_case("ascending") => true,
            Some(o) if o.eq_ignore_ascii_case("descending") => false,
            Some(o) => {
                return Err(ScimError::invalid_value(format!("sortOrder must be ascending or descending, got {o:?}")));
            }
        };
        let sort = match sort_by {
            None => None,
            Some(path) => Some((
                filter::target_for(rt, path.trim()).ok_or_else(|| {
                    ScimError::invalid_value(format!("sortBy names no attribute of {}: {path:?}", rt.name))
                })?,
                ascending,
            )),
        };
        if cursor.is_some() && count.is_some_and(|c| c < 1) {
            return Err(ScimError::bad_request(
                ScimType::InvalidCount,
                "with a cursor, count must be a positive integer",
            ));
        }
        if cursor.is_some() && (start_index.is_some() || sort.is_some()) {
            return Err(ScimError::invalid_value("cursor cannot be combined with startIndex or sortBy"));
        }
        Ok(ListQuery {
            filter,
            // RFC 7644 §3.4.2.4: values below 1 mean 1; a negative count 0.
            start_index: start_index.unwrap_or(1).max(1) as usize,
            count: count.map(|c| c.clamp(0, MAX_COUNT as i64) as usize).unwrap_or(DEFAULT_COUNT),
            projection: Projection::parse(rt, attributes, excluded),
            sort,
            cursor: cursor.map(str::to_owned),
        })
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

/// The answer to a request that would examine more than [`MAX_SCAN`]
/// resources.
pub(crate) fn too_many_to_examine() -> ScimError {
    ScimError::new(
        400,
        Some(ScimType::TooMany),
        format!(
            "the request would examine more than {MAX_SCAN} resources; filter with an equality on an indexed attribute"
        ),
    )
}

/// A resource that matched: its list position, its rendering, its record
/// and whether the rendering holds the whole computed attribute.
type Examined<R> = (String, Value, Loaded<R>, bool);

/// One resource loaded for listing.
pub(crate) struct Loaded<T> {
    pub(crate) id: String,
    pub(crate) record: T,
}

/// What listing needs from a resource type's service.
pub(crate) trait Collection {
    /// The stored record type.
    type Record;
    /// The resource type listed.
    fn resource_type(&self) -> &'static ResourceType;
    /// The attribute that is computed from other records (`groups` of a
    /// user, `members` of a group), costly enough to skip when unneeded.
    fn computed(&self) -> &'static str;
    /// Prefix of the index that gives the stable listing order; each entry's
    /// value is a resource id.
    fn order_prefix(&self) -> String;
    /// Ids that can satisfy an indexed equality, or `None` when this
    /// collection has no index for it.
    fn lookup(&self, hint: &IndexHint) -> Result<Option<Vec<String>>, ScimError>;
    /// Loads resources by id, `None` for ids that no longer exist.
    fn load(&self, ids: &[String]) -> Result<Vec<Option<Loaded<Self::Record>>>, ScimError>;
    /// Renders a resource, with the computed attribute when `computed`.
    fn render(&self, item: &Loaded<Self::Record>, computed: bool) -> Result<Value, ScimError>;
    /// Renders a resource for evaluating `filter`, which mentions the
    /// computed attribute; `true` with a complete rendering. A collection
    /// may render only what the filter compares (see
    /// [`Filter::compared_values`]) and answer `false`.
    fn render_for_filter(&self, item: &Loaded<Self::Record>, filter: &Filter) -> Result<(Value, bool), ScimError> {
        let _ = filter;
        Ok((self.render(item, true)?, true))
    }
    /// How many entries the order index holds, when the collection keeps
    /// count (then an unfiltered index page reads only up to its end).
    fn count(&self) -> Result<Option<usize>, ScimError> {
        Ok(None)
    }
    /// The part of the order index that holds every match of `hint`, when
    /// the hint is a prefix of the ordering attribute.
    fn order_range(&self, hint: &IndexHint) -> Option<String> {
        let _ = hint;
        None
    }
    /// Scans the order index: (key, id) pairs, and whether more follow.
    fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<(Vec<(String, String)>, bool), ScimError>;
}

/// Answers a list request on a collection.
pub(crate) fn list<C: Collection>(c: &C, query: &ListQuery) -> Result<Value, ScimError> {
    let rt = c.resource_type();
    let computed = c.computed();
    let needs_computed = query.filter.as_ref().is_some_and(|f| f.mentions(computed))
        || query.sort.as_ref().is_some_and(|(t, _)| t.attribute.name == computed);
    let wants_computed = query.projection.wants(computed);
    let plan = query.filter.as_ref().and_then(Filter::index_plan);
    // A prefix of the order index itself (`userName sw`) is read in list
    // order like the whole index, only narrower.
    let range = match plan.as_deref() {
        Some([hint]) => c.order_range(hint),
        _ => None,
    };
    let fixed = match plan {
        _ if range.is_some() => None,
        Some(plan) => {
            let mut union = Some(Vec::new());
            for hint in &plan {
                match (c.lookup(hint)?, union.as_mut()) {
                    (Some(ids), Some(all)) => all.extend(ids),
                    _ => union = None,
                }
            }
            union.map(|mut ids| {
                ids.sort();
                ids.dedup();
                ids
            })
        }
        None => None,
    };
    let prefix = c.order_prefix();
    let range = range.unwrap_or_else(|| prefix.clone());
    let mut source = Source { collection: c, fixed, prefix, range, position: None, exhausted: false };
    let bounded = query.filter.is_some() || query.sort.is_some();
    let mut examined = 0usize;
    // Loads, renders and filters one batch, keeping list order.
    let sort_needs_computed = query.sort.as_ref().is_some_and(|(t, _)| t.attribute.name == computed);
    // Loads, renders and filters one batch, keeping list order. A filter
    // that only asks whether the computed attribute holds given values gets
    // just those rendered; `complete` says whether the rendering is whole.
    let mut examine = |batch: Vec<(String, String)>| -> Result<Vec<Examined<C::Record>>, ScimError> {
        if bounded {
            examined += batch.len();
            if examined > MAX_SCAN {
                return Err(too_many_to_examine());
            }
        }
        let ids: Vec<String> = batch.iter().map(|(_, id)| id.clone()).collect();
        let mut out = Vec::with_capacity(ids.len());
        for ((position, _), item) in batch.into_iter().zip(c.load(&ids)?) {
            let Some(item) = item else { continue };
            let (full, complete) = match query.filter.as_ref() {
                Some(f) if needs_computed && !sort_needs_computed => c.render_for_filter(&item, f)?,
                _ => (c.render(&item, needs_computed)?, needs_computed),
            };
            if query.filter.as_ref().is_none_or(|f| f.matches(&full)) {
                out.push((position, full, item, complete));
            }
        }
        Ok(out)
    };
    let finish = |full: Value, item: &Loaded<C::Record>, complete: bool| -> Result<Value, ScimError> {
        let full = if wants_computed && !complete { c.render(item, true)? } else { full };
        Ok(query.projection.apply(rt, full))
    };

    if let Some(cursor) = &query.cursor {
        source.resume(cursor)?;
        let mut page = Vec::new();
        let mut last: Option<String> = None;
        let mut more = false;
        'scan: while let Some(mut batch) = source.next_batch()? {
            if query.filter.is_none() {
                // Every entry matches: load the page and one more, which
                // says whether a next page exists.
                batch.truncate(query.count + 1 - page.len());
            }
            for (position, full, item, complete) in examine(batch)? {
                if page.len() == query.count {
                    more = true;
                    break 'scan;
                }
                page.push(finish(full, &item, complete)?);
                last = Some(position);
            }
        }
        let mut body = Map::new();
        body.insert("schemas".into(), json!([schema::LIST_RESPONSE]));
        body.insert("itemsPerPage".into(), json!(page.len()));
        if more {
            let next = match last {
                Some(position) => encode_cursor(&position),
                None => cursor.clone(),
            };
            body.insert("nextCursor".into(), Value::String(next));
        }
        body.insert("Resources".into(), Value::Array(page));
        return Ok(Value::Object(body));
    }

    let (start, count) = (query.start_index, query.count);
    if let Some((target, ascending)) = &query.sort {
        let mut all: Vec<(Value, Loaded<C::Record>, bool)> = Vec::new();
        while let Some(batch) = source.next_batch()? {
            all.extend(examine(batch)?.into_iter().map(|(_, full, item, complete)| (full, item, complete)));
        }
        // A stable sort keeps the listing order among equal values.
        all.sort_by(|(a, _, _), (b, _, _)| {
            let ord = target.compare(target.sort_value(a), target.sort_value(b));
            if *ascending { ord } else { ord.reverse() }
        });
        let total = all.len();
        let mut page = Vec::new();
        for (full, item, complete) in all.into_iter().skip(start - 1).take(count) {
            page.push(finish(full, &item, complete)?);
        }
        return Ok(list_response(total, start, page));
    }

    let mut total = 0usize;
    let mut page = Vec::new();
    let on_page = |n: usize| n >= start && n < start.saturating_add(count);
    // Unfiltered, with a count kept: read the index up to the page's end,
    // not to the end of the account.
    let known = if query.filter.is_none() { c.count()? } else { None };
    let page_end = start.saturating_add(count).saturating_sub(1);
    while known.is_none() || total < page_end {
        let Some(batch) = source.next_batch()? else { break };
        let batch = if query.filter.is_none() {
            // Every id matches: count without loading, load only the page.
            let wanted: Vec<(String, String)> = batch
                .into_iter()
                .filter(|_| {
                    total += 1;
                    on_page(total)
                })
                .collect();
            for (_, full, item, complete) in examine(wanted)? {
                page.push(finish(full, &item, complete)?);
            }
            continue;
        } else {
            batch
        };
        for (_, full, item, complete) in examine(batch)? {
            total += 1;
            if on_page(total) {
                page.push(finish(full, &item, complete)?);
            }
        }
    }
    Ok(list_response(known.unwrap_or(total), start, page))
}

/// Ids in listing order: either a fixed candidate list from an index
/// lookup or the order index, read in batches.
struct Source<'c, C> {
    collection: &'c C,
    fixed: Option<Vec<String>>,
    /// The order index; positions are keys relative to it.
    prefix: String,
    /// The part of it that is read: all of it, or the keys that start
    /// with a filter's prefix.
    range: String,
    /// Position after which the next batch starts: an index key, or an id
    /// for fixed candidates.
    position: Option<String>,
    exhausted: bool,
}

impl<C: Collection> Source<'_, C> {
    /// The next batch of (position, id), or `None` at the end.
    fn next_batch(&mut self) -> Result<Option<Vec<(String, String)>>, ScimError> {
        if self.exhausted {
            return Ok(None);
        }
        let batch: Vec<(String, String)> = match &self.fixed {
            Some(ids) => {
                // Sorted: resume after the position, a bounded batch at a time.
                let start = self.position.as_ref().map_or(0, |p| ids.partition_point(|id| id <= p));
                let end = (start + SCAN_PAGE as usize).min(ids.len());
                if end == ids.len() {
                    self.exhausted = true;
                }
                ids[start..end].iter().map(|id| (id.clone(), id.clone())).collect()
            }
            None => {
                let after = self.position.as_ref().map(|p| format!("{}{p}", self.prefix));
                let (entries, more) = self.collection.scan(&self.range, after.as_deref(), SCAN_PAGE)?;
                if !more {
                    self.exhausted = true;
                }
                entries.into_iter().map(|(key, id)| (key[self.prefix.len()..].to_owned(), id)).collect()
            }
        };
        if let Some((position, _)) = batch.last() {
            self.position = Some(position.clone());
        }
        Ok((!batch.is_empty()).then_some(batch))
    }

    fn resume(&mut self, cursor: &str) -> Result<(), ScimError> {
        if !cursor.is_empty() {
            self.position = Some(decode_cursor(cursor)?);
        }
        Ok(())
    }
}

/// Cursors are the hex of a position inside one account's order index:
/// opaque to clients, and meaningless in another account (every position
/// is prefixed with the account's own key space when used).
pub(crate) fn encode_cursor(position: &str) -> String {
    crate::hex::encode(position.as_bytes())
}

pub(crate) fn decode_cursor(cursor: &str) -> Result<String, ScimError> {
    let invalid =
        || ScimError::bad_request(ScimType::InvalidCursor, format!("cursor {cursor:?} was not issued by this server"));
    if cursor.len() > 4096 {
        return Err(invalid());
    }
    let bytes = crate::hex::decode(cursor).ok_or_else(invalid)?;
    String::from_utf8(bytes).map_err(|_| invalid())
}

/// Answers `POST /.search` (RFC 7644 §3.4.3): users then groups, paged as
/// one list. A filter must make sense for at least one of the two; an
/// attribute only one type has simply matches nothing in the other.
pub(crate) fn search_all<U: Collection, G: Collection>(
    users: &U,
    groups: &G,
    body: &Value,
) -> Result<Value, ScimError> {
    let u = ListQuery::from_search(users.resource_type(), body);
    let g = ListQuery::from_search(groups.resource_type(), body);
    let (u, g) = match (u, g) {
        (Err(e), Err(_)) => return Err(e),
        (u, g) => (u.ok(), g.ok()),
    };
    let start = u.as_ref().or(g.as_ref()).map(|q| q.start_index).unwrap_or(1);
    let count = u.as_ref().or(g.as_ref()).map(|q| q.count).unwrap_or(DEFAULT_COUNT);
    if u.as_ref().or(g.as_ref()).is_some_and(|q| q.cursor.is_some() || q.sort.is_some()) {
        return Err(ScimError::invalid_value(
            "a search across resource types supports neither cursor nor sortBy; search /Users or /Groups",
        ));
    }
    let mut total = 0;
    let mut resources = Vec::new();
    if let Some(q) = u {
        let first = list(users, &q)?;
        let n = first["totalResults"].as_u64().unwrap_or(0) as usize;
        total += n;
        resources.extend(first["Resources"].as_array().cloned().unwrap_or_default());
    }
    if let Some(mut q) = g {
        // The groups' part of the page starts where the users ran out.
        let users_before = total;
        q.start_index = start.saturating_sub(users_before).max(1);
        q.count = count.saturating_sub(resources.len());
        let second = list(groups, &q)?;
        total += second["totalResults"].as_u64().unwrap_or(0) as usize;
        resources.extend(second["Resources"].as_array().cloned().unwrap_or_default());
    }
    Ok(list_response(total, start, resources))
}
