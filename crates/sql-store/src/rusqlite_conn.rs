//! [`Sql`] over a native rusqlite connection (feature `rusqlite`): SQLite as
//! Spin runs local databases, statements one at a time with positional
//! parameters. The Spin test host answers `fermyon:spin/sqlite` with it and
//! drives [`SqlStore`](crate::SqlStore) through it, and any native program
//! can open a database of this layout with it.

use rusqlite::types::{Value, ValueRef};

use crate::{Sql, SqlValue};

fn bind(v: &SqlValue) -> Value {
    match v {
        SqlValue::Integer(i) => Value::Integer(*i),
        SqlValue::Real(r) => Value::Real(*r),
        SqlValue::Text(t) => Value::Text(t.clone()),
        SqlValue::Blob(b) => Value::Blob(b.clone()),
        SqlValue::Null => Value::Null,
    }
}

fn read(v: ValueRef<'_>) -> SqlValue {
    match v {
        ValueRef::Integer(i) => SqlValue::Integer(i),
        ValueRef::Real(r) => SqlValue::Real(r),
        ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
        ValueRef::Null => SqlValue::Null,
    }
}

/// Column names and rows, as Spin's `execute` answers.
pub type Rows = (Vec<String>, Vec<Vec<SqlValue>>);

/// Runs one statement.
pub fn query(conn: &rusqlite::Connection, statement: &str, params: &[SqlValue]) -> Result<Rows, String> {
    let mut stmt = conn.prepare_cached(statement).map_err(|e| e.to_string())?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let n = columns.len();
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter().map(bind))).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        out.push((0..n).map(|i| row.get_ref(i).map(read)).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?);
    }
    Ok((columns, out))
}

/// A native [`Sql`] connection over rusqlite.
pub struct Rusqlite(pub rusqlite::Connection);

impl Sql for Rusqlite {
    fn execute(&self, statement: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, String> {
        query(&self.0, statement, params).map(|(_, rows)| rows)
    }
}
