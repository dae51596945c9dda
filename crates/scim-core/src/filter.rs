//! SCIM filters (RFC 7644 §3.4.2.2): parsing, checking against the schema,
//! and evaluation on a resource's JSON representation.
//!
//! Parsing and checking happen once per request; evaluation cannot fail, so a
//! filter that passed [`Filter::parse`] never turns into an error halfway
//! through a listing. The planner ([`Filter::index_hint`]) extracts an
//! equality the store has an index for; everything else is evaluated here.

use std::cmp::Ordering;

use serde_json::Value;

use crate::env::parse_rfc3339;
use crate::error::ScimError;
use crate::schema::{self, Attribute, ResourceType, Type};

/// Longest filter accepted, in bytes: bounds parsing work per request.
pub const MAX_FILTER_LEN: usize = 4096;
/// Deepest nesting of parentheses and `not` accepted.
const MAX_DEPTH: usize = 32;

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// equal
    Eq,
    /// not equal
    Ne,
    /// contains
    Co,
    /// starts with
    Sw,
    /// ends with
    Ew,
    /// greater than
    Gt,
    /// greater than or equal
    Ge,
    /// less than
    Lt,
    /// less than or equal
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }
}

/// A literal on the right of a comparison, already converted to the
/// attribute's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A string (string, reference and binary attributes).
    Str(String),
    /// A boolean.
    Bool(bool),
    /// A number (integer and decimal attributes).
    Num(f64),
    /// A timestamp, milliseconds since the epoch.
    Time(i64),
    /// `null`.
    Null,
}

/// Which value(s) of a resource an expression looks at.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The extension URN the attribute lives under, if any.
    pub extension: Option<&'static str>,
    /// The top-level attribute.
    pub attribute: &'static Attribute,
    /// The sub-attribute, if any.
    pub sub: Option<&'static Attribute>,
    /// Inside a value path the expression is evaluated on one element of
    /// the multi-valued attribute and only `sub` applies.
    relative: bool,
}

impl Target {
    /// The definition whose type and case-exactness govern comparisons.
    pub fn definition(&self) -> &'static Attribute {
        match (self.sub, self.attribute) {
            (Some(sub), _) => sub,
            // `emails eq "x"` compares the `value` sub-attribute (RFC 7644 §3.4.2.2).
            (None, a) if a.ty == Type::Complex => a.sub("value").unwrap_or(a),
            (None, a) => a,
        }
    }

    /// The values this target selects in `context`, flattened.
    fn values<'v>(&self, context: &'v Value) -> Vec<&'v Value> {
        let mut out = Vec::new();
        if self.relative {
            if let Some(sub) = self.sub {
                push_flat(context.get(sub.name), &mut out);
            }
            return out;
        }
        let holder = match self.extension {
            Some(urn) => context.get(urn),
            None => Some(context),
        };
        let Some(top) = holder.and_then(|h| h.get(self.attribute.name)) else { return out };
        let sub =
            self.sub.or_else(|| (self.attribute.ty == Type::Complex).then(|| self.attribute.sub("value")).flatten());
        let elements: Vec<&Value> = match top {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for element in elements {
            match sub {
                Some(sub) => push_flat(element.get(sub.name), &mut out),
                None => push_flat(Some(element), &mut out),
            }
        }
        out
    }
}

fn push_flat<'v>(value: Option<&'v Value>, out: &mut Vec<&'v Value>) {
    match value {
        Some(Value::Array(items)) => out.extend(items.iter().filter(|v| !v.is_null())),
        Some(Value::Null) | None => {}
        Some(v) => out.push(v),
    }
}

/// Resolves an attribute reference (e.g. a `sortBy` value) to a target.
pub(crate) fn target_for(rt: &ResourceType, path: &str) -> Option<Target> {
    let resolved = schema::resolve(rt, path)?;
    Some(Target {
        extension: resolved.extension.then_some(resolved.schema.id),
        attribute: resolved.attribute,
        sub: resolved.sub,
        relative: false,
    })
}

impl Target {
    /// The value a resource sorts by (RFC 7644 §3.4.2.3): for a
    /// multi-valued attribute the primary value, else the first.
    pub(crate) fn sort_value<'v>(&self, resource: &'v Value) -> Option<&'v Value> {
        if self.attribute.multi_valued {
            let holder = match self.extension {
                Some(urn) => resource.get(urn)?,
                None => resource,
            };
            let items = holder.get(self.attribute.name)?.as_array()?;
            let item = items.iter().find(|i| i.get("primary") == Some(&Value::Bool(true))).or_else(|| items.first())?;
            let sub = self.sub.or_else(|| self.attribute.sub("value"))?;
            return item.get(sub.name);
        }
        self.values(resource).into_iter().next()
    }

    /// Orders two sort values by the attribute's type and case-exactness;
    /// a missing value sorts after every present one.
    pub(crate) fn compare(&self, a: Option<&Value>, b: Option<&Value>) -> Ordering {
        let def = self.definition();
        match (a, b) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => match (a, b) {
                (Value::String(x), Value::String(y)) if def.ty == Type::DateTime => {
                    parse_rfc3339(x).cmp(&parse_rfc3339(y))
                }
                (Value::String(x), Value::String(y)) if def.case_exact => x.cmp(y),
                (Value::String(x), Value::String(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
                (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal),
                (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
                _ => Ordering::Equal,
            },
        }
    }
}

/// A checked filter expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// `attr op value`
    Compare(Target, CompareOp, Literal),
    /// `attr pr`
    Present(Target),
    /// `a and b`
    And(Box<Expr>, Box<Expr>),
    /// `a or b`
    Or(Box<Expr>, Box<Expr>),
    /// `not (a)`
    Not(Box<Expr>),
    /// `attr[filter]`, optionally followed by `.sub op value` (the form
    /// Entra uses: `emails[type eq "work"].value eq "x"`).
    ValuePath {
        /// The multi-valued complex attribute.
        target: Target,
        /// Evaluated on each element.
        filter: Box<Expr>,
        /// A further comparison on the same element.
        then: Option<(Target, CompareOp, Literal)>,
    },
}

/// A parsed and checked filter for one resource type.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The expression tree.
    pub expr: Expr,
}

/// An equality the planner can answer from an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexHint {
    /// `id eq`
    Id(String),
    /// `userName eq` (users)
    UserName(String),
    /// `externalId eq`
    ExternalId(String),
    /// `emails.value eq` in any of its spellings (users)
    Email(String),
    /// `displayName eq`
    DisplayName(String),
    /// `members.value eq` (groups)
    Member(String),
    /// `userName sw` (users)
    UserNamePrefix(String),
    /// `displayName sw` (groups)
    DisplayNamePrefix(String),
}

impl Filter {
    /// Parses `text` and checks it against the resource type's schemas.
    pub fn parse(rt: &ResourceType, text: &str) -> Result<Self, ScimError> {
        if text.len() > MAX_FILTER_LEN {
            return Err(ScimError::invalid_filter(format!("filter is longer than {MAX_FILTER_LEN} bytes")));
        }
        let tokens = lex(text)?;
        let mut parser = Parser { rt, tokens, pos: 0, depth: 0, text };
        let expr = parser.or_expr(None)?;
        if let Some(tok) = parser.peek() {
            return Err(ScimError::invalid_filter(format!(
                "unexpected {} at offset {} in filter {text:?}",
                tok.kind.describe(),
                tok.at
            )));
        }
        Ok(Filter { expr })
    }

    /// Parses a value filter evaluated on the elements of the complex
    /// attribute `parent` (the `[…]` of a PATCH path).
    pub fn parse_within(rt: &ResourceType, parent: &'static Attribute, text: &str) -> Result<Self, ScimError> {
        if text.len() > MAX_FILTER_LEN {
            return Err(ScimError::invalid_filter(format!("filter is longer than {MAX_FILTER_LEN} bytes")));
        }
        let tokens = lex(text)?;
        let mut parser = Parser { rt, tokens, pos: 0, depth: 0, text };
        let expr = parser.or_expr(Some(parent))?;
        if let Some(tok) = parser.peek() {
            return Err(ScimError::invalid_filter(format!(
                "unexpected {} at offset {} in {text:?}",
                tok.kind.describe(),
                tok.at
            )));
        }
        Ok(Filter { expr })
    }

    /// Whether any top-level attribute the filter reads is `name`.
    pub fn mentions(&self, name: &str) -> bool {
        fn walk(e: &Expr, name: &str) -> bool {
            match e {
                Expr::Compare(t, ..) | Expr::Present(t) => t.attribute.name == name,
                Expr::ValuePath { target, .. } => target.attribute.name == name,
                Expr::And(a, b) | Expr::Or(a, b) => walk(a, name) || walk(b, name),
                Expr::Not(a) => walk(a, name),
            }
        }
        walk(&self.expr, name)
    }

    /// The `sub eq value` pairs a value filter requires (for `a and b`
    /// chains of equalities), or `None` if it says more than that. A PATCH
    /// whose filter matches nothing uses them to create the element.
    pub fn required_equalities(&self) -> Option<Vec<(&'static str, serde_json::Value)>> {
        fn walk(e: &Expr, out: &mut Vec<(&'static str, serde_json::Value)>) -> bool {
            match e {
                Expr::And(a, b) => walk(a, out) && walk(b, out),
                Expr::Compare(t, CompareOp::Eq, lit) if t.relative => {
                    let Some(sub) = t.sub else { return false };
                    let v = match lit {
                        Literal::Str(s) => serde_json::Value::String(s.clone()),
                        Literal::Bool(b) => serde_json::Value::Bool(*b),
                        _ => return false,
                    };
                    out.push((sub.name, v));
                    true
                }
                _ => false,
            }
        }
        let mut out = Vec::new();
        walk(&self.expr, &mut out).then_some(out)
    }

    /// Whether the resource (its full JSON representation) matches.
    pub fn matches(&self, resource: &Value) -> bool {
        eval(&self.expr, resource)
    }

    /// An indexed equality that every match must satisfy, if there is one.
    pub fn index_hint(&self) -> Option<IndexHint> {
        hint(&self.expr)
    }

    /// Index lookups whose union holds every match: one for an equality,
    /// one per branch of an `or` whose every branch has one. `None` when
    /// some match could escape every index.
    pub fn index_plan(&self) -> Option<Vec<IndexHint>> {
        fn plan(e: &Expr) -> Option<Vec<IndexHint>> {
            match e {
                Expr::Or(a, b) => {
                    let mut out = plan(a)?;
                    out.extend(plan(b)?);
                    Some(out)
                }
                Expr::And(a, b) => match (plan(a), plan(b)) {
                    (Some(x), Some(y)) => Some(if x.len() <= y.len() { x } else { y }),
                    (x, y) => x.or(y),
                },
                Expr::Compare(t, CompareOp::Sw, Literal::Str(v))
                    if t.extension.is_none() && !t.relative && t.sub.is_none() && prefix_indexable(v) =>
                {
                    match t.attribute.name {
                        "userName" => Some(vec![IndexHint::UserNamePrefix(v.clone())]),
                        "displayName" => Some(vec![IndexHint::DisplayNamePrefix(v.clone())]),
                        _ => None,
                    }
                }
                other => hint(other).map(|h| vec![h]),
            }
        }
        plan(&self.expr)
    }

    /// The values a filter compares attribute `name` with, when every
    /// mention of it is an `eq` on its `value` (`members[value eq "u"]`,
    /// `members.value eq "u"`, `members eq "u"`): a resource rendered with
    /// just those of its `name` elements whose value is listed matches
    /// exactly when the full resource would. `None` when the filter says
    /// anything else about `name`.
    pub fn compared_values(&self, name: &str) -> Option<Vec<String>> {
        fn walk(e: &Expr, name: &str, out: &mut Vec<String>) -> bool {
            let is_value = |t: &Target| t.sub.is_none_or(|s| s.name == "value");
            match e {
                Expr::And(a, b) | Expr::Or(a, b) => walk(a, name, out) && walk(b, name, out),
                Expr::Not(a) => walk(a, name, out),
                Expr::Compare(t, op, lit) if t.attribute.name == name => match (op, lit) {
                    (CompareOp::Eq, Literal::Str(v)) if t.extension.is_none() && is_value(t) => {
                        out.push(v.clone());
                        true
                    }
                    _ => false,
                },
                Expr::Present(t) => t.attribute.name != name,
                Expr::Compare(..) => true,
                Expr::ValuePath { target, filter, then } if target.attribute.name == name => {
                    let inner = match filter.as_ref() {
                        Expr::Compare(t, CompareOp::Eq, Literal::Str(v))
                            if t.sub.is_some_and(|s| s.name == "value") =>
                        {
                            v.clone()
                        }
                        _ => return false,
                    };
                    out.push(inner);
                    then.is_none()
                }
                Expr::ValuePath { .. } => true,
            }
        }
        let mut out = Vec::new();
        walk(&self.expr, name, &mut out).then_some(out)
    }
}

/// Whether a `sw` literal can be answered from a case-folded index: its
/// lower-case form must be a prefix of the lower-case form of every value
/// it starts, which context-sensitive lowering (final sigma) can break.
fn prefix_indexable(v: &str) -> bool {
    !v.is_empty() && !v.chars().any(|c| matches!(c, 'Σ' | 'σ' | 'ς'))
}

fn hint(expr: &Expr) -> Option<IndexHint> {
    match expr {
        Expr::And(a, b) => hint(a).or_else(|| hint(b)),
        Expr::Compare(t, CompareOp::Eq, Literal::Str(v)) if t.extension.is_none() && !t.relative => {
            match (t.attribute.name, t.sub.map(|s| s.name)) {
                ("id", None) => Some(IndexHint::Id(v.clone())),
                ("userName", None) => Some(IndexHint::UserName(v.clone())),
                ("externalId", None) => Some(IndexHint::ExternalId(v.clone())),
                ("displayName", None) => Some(IndexHint::DisplayName(v.clone())),
                ("emails", None | Some("value")) => Some(IndexHint::Email(v.clone())),
                ("members", None | Some("value")) => Some(IndexHint::Member(v.clone())),
                _ => None,
            }
        }
        Expr::ValuePath { target, filter, then } if target.extension.is_none() => {
            let from_then = match then {
                Some((t, CompareOp::Eq, Literal::Str(v))) if t.sub.map(|s| s.name) == Some("value") => Some(v.clone()),
                _ => None,
            };
            let value = from_then.or_else(|| match filter.as_ref() {
                Expr::Compare(t, CompareOp::Eq, Literal::Str(v)) if t.sub.map(|s| s.name) == Some("value") => {
                    Some(v.clone())
                }
                _ => None,
            })?;
            match target.attribute.name {
                "emails" => Some(IndexHint::Email(value)),
                "members" => Some(IndexHint::Member(value)),
                _ => None,
            }
        }
        _ => None,
    }
}

fn eval(expr: &Expr, context: &Value) -> bool {
    match expr {
        Expr::Compare(target, op, literal) => {
            let values = target.values(context);
            compare_any(target.definition(), &values, *op, literal)
        }
        Expr::Present(target) => target.values(context).iter().any(|v| match v {
            Value::String(s) => !s.is_empty(),
            Value::Object(m) => !m.is_empty(),
            _ => true,
        }),
        Expr::And(a, b) => eval(a, context) && eval(b, context),
        Expr::Or(a, b) => eval(a, context) || eval(b, context),
        Expr::Not(a) => !eval(a, context),
        Expr::ValuePath { target, filter, then } => {
            let holder = match target.extension {
                Some(urn) => context.get(urn),
                None => Some(context),
            };
            let Some(top) = holder.and_then(|h| h.get(target.attribute.name)) else { return false };
            let elements: Vec<&Value> = match top {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            elements.into_iter().any(|element| {
                eval(filter, element)
                    && match then {
                        Some((t, op, lit)) => compare_any(t.definition(), &t.values(element), *op, lit),
                        None => true,
                    }
            })
        }
    }
}

fn compare_any(def: &Attribute, values: &[&Value], op: CompareOp, literal: &Literal) -> bool {
    if *literal == Literal::Null {
        // `eq null` asks for absence, `ne null` for presence.
        return match op {
            CompareOp::Eq => values.is_empty(),
            CompareOp::Ne => !values.is_empty(),
            _ => false,
        };
    }
    if op == CompareOp::Ne {
        return !compare_any(def, values, CompareOp::Eq, literal);
    }
    values.iter().any(|v| compare_one(def, v, op, literal))
}

fn compare_one(def: &Attribute, value: &Value, op: CompareOp, literal: &Literal) -> bool {
    match (literal, value) {
        (Literal::Str(lit), Value::String(s)) => {
            if def.case_exact {
                compare_str(s, lit, op)
            } else {
                compare_str(&s.to_lowercase(), &lit.to_lowercase(), op)
            }
        }
        (Literal::Bool(lit), Value::Bool(b)) => match op {
            CompareOp::Eq => b == lit,
            _ => false,
        },
        (Literal::Num(lit), Value::Number(n)) => n.as_f64().is_some_and(|n| ordered(n.partial_cmp(lit), op)),
        (Literal::Time(lit), Value::String(s)) => parse_rfc3339(s).is_some_and(|t| ordered(Some(t.cmp(lit)), op)),
        _ => false,
    }
}

fn compare_str(s: &str, lit: &str, op: CompareOp) -> bool {
    match op {
        CompareOp::Co => s.contains(lit),
        CompareOp::Sw => s.starts_with(lit),
        CompareOp::Ew => s.ends_with(lit),
        _ => ordered(Some(s.cmp(lit)), op),
    }
}

fn ordered(ord: Option<Ordering>, op: CompareOp) -> bool {
    let Some(ord) = ord else { return false };
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        // Substring operators on non-strings never match (rejected at parse).
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

// ---------------------------------------------------------------- lexing

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Str(String),
    Word(String),
}

impl Kind {
    fn describe(&self) -> String {
        match self {
            Kind::Open => "'('".into(),
            Kind::Close => "')'".into(),
            Kind::OpenBracket => "'['".into(),
            Kind::CloseBracket => "']'".into(),
            Kind::Str(s) => format!("string {s:?}"),
            Kind::Word(w) => format!("{w:?}"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    at: usize,
}

fn lex(text: &str) -> Result<Vec<Token>, ScimError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(at, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | '[' | ']' => {
                chars.next();
                let kind = match c {
                    '(' => Kind::Open,
                    ')' => Kind::Close,
                    '[' => Kind::OpenBracket,
                    _ => Kind::CloseBracket,
                };
                tokens.push(Token { kind, at });
            }
            '"' => {
                // A JSON string literal: reuse serde_json's unescaping.
                chars.next();
                let mut escaped = false;
                let mut end = None;
                for (i, ch) in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if ch == '\\' {
                        escaped = true;
                    } else if ch == '"' {
                        end = Some(i);
                        break;
                    }
                }
                let end = end.ok_or_else(|| {
                    ScimError::invalid_filter(format!("unterminated string starting at offset {at} in filter {text:?}"))
                })?;
                let s: String = serde_json::from_str(&text[at..=end]).map_err(|_| {
                    ScimError::invalid_filter(format!("invalid escape in string at offset {at} in filter {text:?}"))
                })?;
                tokens.push(Token { kind: Kind::Str(s), at });
            }
            _ => {
                let mut end = at;
                while let Some(&(i, ch)) = chars.peek() {
                    if ch.is_whitespace() || matches!(ch, '(' | ')' | '[' | ']' | '"') {
                        break;
                    }
                    end = i + ch.len_utf8();
                    chars.next();
                }
                tokens.push(Token { kind: Kind::Word(text[at..end].to_owned()), at });
            }
        }
    }
    Ok(tokens)
}

// ---------------------------------------------------------------- parsing

struct Parser<'a> {
    rt: &'a ResourceType,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let tok = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        tok
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: Kind::Word(w), .. }) if w.eq_ignore_ascii_case(keyword))
    }

    fn error(&self, what: &str) -> ScimError {
        match self.peek() {
            Some(tok) => ScimError::invalid_filter(format!(
                "{what}, found {} at offset {} in filter {:?}",
                tok.kind.describe(),
                tok.at,
                self.text
            )),
            None => ScimError::invalid_filter(format!("{what}, found the end of filter {:?}", self.text)),
        }
    }

    fn enter(&mut self) -> Result<(), ScimError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ScimError::invalid_filter(format!("filter nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    /// `or` binds loosest.
    fn or_expr(&mut self, parent: Option<&'static Attribute>) -> Result<Expr, ScimError> {
        let mut left = self.and_expr(parent)?;
        while self.peek_keyword("or") {
            self.next();
            let right = self.and_expr(parent)?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self, parent: Option<&'static Attribute>) -> Result<Expr, ScimError> {
        let mut left = self.unary(parent)?;
        while self.peek_keyword("and") {
            self.next();
            let right = self.unary(parent)?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, parent: Option<&'static Attribute>) -> Result<Expr, ScimError> {
        if self.peek_keyword("not") {
            self.next();
            if !matches!(self.peek(), Some(Token { kind: Kind::Open, .. })) {
                return Err(self.error("expected '(' after 'not'"));
            }
            return Ok(Expr::Not(Box::new(self.unary(parent)?)));
        }
        if matches!(self.peek(), Some(Token { kind: Kind::Open, .. })) {
            self.next();
            self.enter()?;
            let inner = self.or_expr(parent)?;
            self.depth -= 1;
            match self.next() {
                Some(Token { kind: Kind::Close, .. }) => return Ok(inner),
                _ => {
                    self.pos -= 1;
                    return Err(self.error("expected ')'"));
                }
            }
        }
        self.attribute_expr(parent)
    }

    fn attribute_expr(&mut self, parent: Option<&'static Attribute>) -> Result<Expr, ScimError> {
        let (path, at) = match self.next() {
            Some(Token { kind: Kind::Word(w), at }) => (w, at),
            _ => {
                self.pos -= 1;
                return Err(self.error("expected an attribute name"));
            }
        };
        if matches!(self.peek(), Some(Token { kind: Kind::OpenBracket, .. })) {
            if parent.is_some() {
                return Err(ScimError::invalid_filter(format!(
                    "value paths cannot nest (offset {at} in filter {:?})",
                    self.text
                )));
            }
            let target = self.target(&path, None, at)?;
            self.next();
            if target.sub.is_some() || target.attribute.ty != Type::Complex {
                return Err(ScimError::invalid_filter(format!(
                    "{path:?} is not a complex attribute and cannot take a [filter] (offset {at})"
                )));
            }
            self.enter()?;
            let filter = self.or_expr(Some(target.attribute))?;
            self.depth -= 1;
            match self.next() {
                Some(Token { kind: Kind::CloseBracket, .. }) => {}
                _ => {
                    self.pos -= 1;
                    return Err(self.error("expected ']'"));
                }
            }
            // Optional `.sub op value` after the bracket.
            let then = match self.peek() {
                Some(Token { kind: Kind::Word(w), at }) if w.starts_with('.') => {
                    let (w, at) = (w[1..].to_owned(), *at);
                    self.next();
                    let sub = self.target(&w, Some(target.attribute), at)?;
                    match self.comparison(&sub)? {
                        Expr::Compare(t, op, lit) => Some((t, op, lit)),
                        Expr::Present(t) => Some((t, CompareOp::Ne, Literal::Null)).filter(|_| t.sub.is_some()),
                        _ => None,
                    }
                }
                _ => None,
            };
            return Ok(Expr::ValuePath { target, filter: Box::new(filter), then });
        }
        let target = self.target(&path, parent, at)?;
        self.comparison(&target)
    }

    fn comparison(&mut self, target: &Target) -> Result<Expr, ScimError> {
        let op_word = match self.next() {
            Some(Token { kind: Kind::Word(w), .. }) => w,
            _ => {
                self.pos -= 1;
                return Err(self.error("expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)"));
            }
        };
        if op_word.eq_ignore_ascii_case("pr") {
            return Ok(Expr::Present(*target));
        }
        let Some(op) = CompareOp::parse(&op_word) else {
            self.pos -= 1;
            return Err(self.error("expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)"));
        };
        let value = match self.next() {
            Some(tok) => tok,
            None => return Err(self.error("expected a value")),
        };
        let literal = self.literal(target, op, value)?;
        Ok(Expr::Compare(*target, op, literal))
    }

    fn literal(&self, target: &Target, op: CompareOp, token: Token) -> Result<Literal, ScimError> {
        let def = target.definition();
        let name = def.name;
        let bad =
            |why: String| ScimError::invalid_filter(format!("{why} (offset {} in filter {:?})", token.at, self.text));
        let raw = match &token.kind {
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Word(w) => match w.to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                _ => match serde_json::from_str::<serde_json::Number>(w) {
                    Ok(n) => Value::Number(n),
                    Err(_) => return Err(bad(format!("{w:?} is not a value; strings must be quoted"))),
                },
            },
            other => return Err(bad(format!("expected a value, found {}", other.describe()))),
        };
        if raw.is_null() {
            return match op {
                CompareOp::Eq | CompareOp::Ne => Ok(Literal::Null),
                _ => Err(bad("null can only be compared with eq or ne".into())),
            };
        }
        let substring = matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
        let ordering = matches!(op, CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le);
        match def.ty {
            Type::String | Type::Reference | Type::Binary | Type::Complex => match raw {
                Value::String(s) => Ok(Literal::Str(s)),
                _ => Err(bad(format!("{name} is a string; compare it with a quoted string"))),
            },
            Type::Boolean => {
                if substring || ordering {
                    return Err(bad(format!("{name} is a boolean; only eq and ne apply")));
                }
                match raw {
                    Value::Bool(b) => Ok(Literal::Bool(b)),
                    // Entra writes `primary eq "True"`.
                    Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
                    Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
                    _ => Err(bad(format!("{name} is a boolean; compare it with true or false"))),
                }
            }
            Type::Integer | Type::Decimal => {
                if substring {
                    return Err(bad(format!("{name} is a number; co, sw and ew do not apply")));
                }
                match raw {
                    Value::Number(n) if def.ty == Type::Integer && !(n.is_i64() || n.is_u64()) => {
                        Err(bad(format!("{name} is an integer; {n} is not")))
                    }
                    Value::Number(n) => Ok(Literal::Num(n.as_f64().unwrap_or(f64::NAN))),
                    _ => Err(bad(format!("{name} is a number; compare it with an unquoted number"))),
                }
            }
            Type::DateTime => {
                if substring {
                    return Err(bad(format!("{name} is a dateTime; co, sw and ew do not apply")));
                }
                match raw {
                    Value::String(s) => parse_rfc3339(&s).map(Literal::Time).ok_or_else(|| {
                        bad(format!("{s:?} is not an RFC 3339 dateTime, e.g. \"2026-01-31T12:00:00Z\""))
                    }),
                    _ => Err(bad(format!("{name} is a dateTime; compare it with a quoted RFC 3339 timestamp"))),
                }
            }
        }
    }

    fn target(&self, path: &str, parent: Option<&'static Attribute>, at: usize) -> Result<Target, ScimError> {
        let unknown = || {
            ScimError::invalid_filter(format!(
                "unknown attribute {path:?} for {} (offset {at} in filter {:?})",
                self.rt.name, self.text
            ))
        };
        if let Some(parent) = parent {
            let sub = parent.sub(path).ok_or_else(unknown)?;
            return Ok(Target { extension: None, attribute: parent, sub: Some(sub), relative: true });
        }
        let resolved = schema::resolve(self.rt, path).ok_or_else(unknown)?;
        if resolved.target().ty == Type::Complex && resolved.sub.is_none() && resolved.attribute.sub("value").is_none()
        {
            // `name eq "x"` has nothing to compare with.
            if !self.tokens.get(self.pos).is_some_and(|t| t.kind == Kind::OpenBracket)
                && !matches!(self.tokens.get(self.pos), Some(Token { kind: Kind::Word(w), .. }) if w.eq_ignore_ascii_case("pr"))
            {
                return Err(ScimError::invalid_filter(format!(
                    "{path:?} is complex; name one of its sub-attributes, e.g. {path}.{} (offset {at})",
                    resolved.attribute.sub_attributes.first().map(|a| a.name).unwrap_or("value")
                )));
            }
        }
        Ok(Target {
            extension: resolved.extension.then_some(resolved.schema.id),
            attribute: resolved.attribute,
            sub: resolved.sub,
            relative: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{GROUP_TYPE, USER_TYPE};
    use serde_json::json;

    fn user() -> Value {
        json!({
            "id": "2819c223",
            "userName": "Bjensen@Example.com",
            "externalId": "bjensen",
            "name": {"familyName": "Jensen", "givenName": "Barbara"},
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "meta": {"resourceType": "User", "lastModified": "2026-05-13T04:42:34.000Z"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Tour Operations", "manager": {"value": "m1"}}
        })
    }

    fn check(filter: &str) -> bool {
        Filter::parse(&USER_TYPE, filter).unwrap_or_else(|e| panic!("{filter}: {e}")).matches(&user())
    }

    #[test]
    fn operators_follow_types_and_case_exactness() {
        assert!(check(r#"userName eq "bjensen@example.com""#));
        assert!(check(r#"USERNAME EQ "BJENSEN@EXAMPLE.COM""#));
        assert!(!check(r#"externalId eq "BJENSEN""#), "externalId is caseExact");
        assert!(check(r#"externalId eq "bjensen""#));
        assert!(check(r#"name.familyName co "ens""#));
        assert!(check(r#"userName sw "bj" and userName ew ".COM""#));
        assert!(check(r#"title pr or active eq true"#));
        assert!(!check(r#"title pr"#));
        assert!(check(r#"not (title pr)"#));
        assert!(check(r#"meta.lastModified gt "2026-05-01T00:00:00Z""#));
        assert!(!check(r#"meta.lastModified lt "2026-05-13T04:42:34Z""#));
        assert!(check(r#"meta.lastModified le "2026-05-13T06:42:34+02:00""#));
        assert!(check(r#"active eq "True""#));
        assert!(check(r#"userName ne "other""#));
        assert!(check(r#"title eq null"#));
    }

    #[test]
    fn value_paths_and_extensions() {
        assert!(check(r#"emails[type eq "work" and value co "@example.com"]"#));
        assert!(!check(r#"emails[type eq "home" and value co "@example.com"]"#));
        assert!(check(r#"emails[type eq "work"].value eq "BJENSEN@example.com""#));
        assert!(check(r#"emails.value eq "babs@jensen.org""#));
        assert!(check(r#"emails eq "babs@jensen.org""#));
        assert!(check(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "tour operations""#));
        assert!(check(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m1""#));
        assert!(check(r#"(userName eq "x" or emails[primary eq true]) and not (active eq false)"#));
    }

    #[test]
    fn precedence_is_not_and_or() {
        // a or b and c  ==  a or (b and c)
        assert!(check(r#"active eq true or userName eq "x" and title pr"#));
        assert!(!check(r#"(active eq true or userName eq "x") and title pr"#));
    }

    #[test]
    fn errors_point_at_the_problem() {
        for (bad, needle) in [
            (r#"userName eq"#, "expected a value"),
            (r#"userName eq bjensen"#, "must be quoted"),
            (r#"userName xx "a""#, "expected an operator"),
            (r#"nope eq "a""#, "unknown attribute \"nope\""),
            (r#"(userName eq "a""#, "expected ')'"),
            (r#"userName eq "a" extra"#, "unexpected"),
            (r#"active gt true"#, "only eq and ne"),
            (r#"meta.created gt "yesterday""#, "RFC 3339"),
            (r#"userName eq "unterminated"#, "unterminated"),
            (r#"emails[type eq "work""#, "expected ']'"),
            (r#"name eq "x""#, "is complex"),
            (r#"not userName eq "a""#, "expected '('"),
            ("", "expected an attribute name"),
        ] {
            let err = Filter::parse(&USER_TYPE, bad).unwrap_err();
            assert_eq!(err.status, 400);
            assert_eq!(err.scim_type, Some(crate::error::ScimType::InvalidFilter));
            assert!(err.detail.contains(needle), "{bad}: {}", err.detail);
        }
        let deep = format!("{}userName pr{}", "(".repeat(100), ")".repeat(100));
        assert!(Filter::parse(&USER_TYPE, &deep).is_err());
    }

    #[test]
    fn planner_finds_indexed_equalities() {
        let hint = |f: &str| Filter::parse(&USER_TYPE, f).unwrap().index_hint();
        assert_eq!(hint(r#"userName eq "a""#), Some(IndexHint::UserName("a".into())));
        assert_eq!(hint(r#"active eq true and externalId eq "e""#), Some(IndexHint::ExternalId("e".into())));
        assert_eq!(hint(r#"emails[type eq "work"].value eq "m@x""#), Some(IndexHint::Email("m@x".into())));
        assert_eq!(hint(r#"emails[value eq "m@x"]"#), Some(IndexHint::Email("m@x".into())));
        assert_eq!(hint(r#"userName eq "a" or externalId eq "b""#), None);
        let g = Filter::parse(&GROUP_TYPE, r#"members[value eq "u1"]"#).unwrap();
        assert_eq!(g.index_hint(), Some(IndexHint::Member("u1".into())));
        let g = Filter::parse(&GROUP_TYPE, r#"displayName eq "Ops""#).unwrap();
        assert_eq!(g.index_hint(), Some(IndexHint::DisplayName("Ops".into())));
    }
}
