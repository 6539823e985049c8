//! Writing tables as Parquet files: zstd, dictionary-encoded columns, row-group statistics and
//! key-value metadata (table, schema version, tool version, config hash), through a temp file
//! renamed into place. Appending to a benchmark means adding a file, never editing one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryArray, BooleanArray, Float64Array, Int32Array, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::schema::{ColumnType, SCHEMA_VERSION, TableSchema};
use crate::{Error, Result};

/// Metadata keys every nasrob Parquet file carries.
pub const META_TABLE: &str = "nasrob.table";
pub const META_SCHEMA_VERSION: &str = "nasrob.schema_version";
pub const META_TOOL_VERSION: &str = "nasrob.tool_version";
pub const META_CONFIG_HASH: &str = "nasrob.config_hash";

/// One cell value. Integers and floats are converted to the column's type when they fit.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Bytes(Vec<u8>),
}

/// The value as each column type reads it; `None` for NULL and for a value of another type
/// (which [`Rows::push`] never lets in).
impl Value {
    pub fn as_i32(&self) -> Option<i32> {
        match self {
            Value::Int(v) => i32::try_from(*v).ok(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// Integers read as floats in a Float64 column.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(v) => Some(*v),
            Value::Int(v) => Some(*v as f64),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(v) => Some(v),
            _ => None,
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::Int(v.into())
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(v.into())
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::Int(v as i64)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Str(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Str(v)
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Bytes(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// Rows of one table, checked against its schema as they are added.
pub struct Rows {
    schema: &'static TableSchema,
    columns: Vec<Vec<Value>>,
    positions: HashMap<&'static str, usize>,
}

impl Rows {
    pub fn new(schema: &'static TableSchema) -> Rows {
        let positions = schema.columns.iter().enumerate().map(|(i, c)| (c.name, i)).collect();
        Rows { schema, columns: vec![Vec::new(); schema.columns.len()], positions }
    }

    pub fn schema(&self) -> &'static TableSchema {
        self.schema
    }

    pub fn len(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a row given as (column, value) pairs; columns left out are NULL. Unknown columns, a
    /// NULL in a non-nullable column or a value of the wrong type are internal errors: the
    /// callers build rows from typed data.
    pub fn push(&mut self, row: &[(&str, Value)]) -> Result<()> {
        let mut values = vec![Value::Null; self.columns.len()];
        for (name, value) in row {
            let Some(&position) = self.positions.get(name) else {
                return Err(Error::Internal(format!("table {} has no column {name}", self.schema.name)));
            };
            values[position] = value.clone();
        }
        for (column, value) in self.schema.columns.iter().zip(&values) {
            let ok = match (value, column.kind) {
                (Value::Null, _) => column.nullable,
                (Value::Int(v), ColumnType::Int32) => i32::try_from(*v).is_ok(),
                (Value::Int(_), ColumnType::Int64 | ColumnType::Float64) => true,
                (Value::Float(_), ColumnType::Float64) => true,
                (Value::Bool(_), ColumnType::Bool) => true,
                (Value::Str(_), ColumnType::Utf8) => true,
                (Value::Bytes(_), ColumnType::Binary) => true,
                _ => false,
            };
            if !ok {
                return Err(Error::Internal(format!(
                    "table {}: value {value:?} does not fit column {} ({}{})",
                    self.schema.name,
                    column.name,
                    column.kind.name(),
                    if column.nullable { ", nullable" } else { "" }
                )));
            }
        }
        for (column, value) in self.columns.iter_mut().zip(values) {
            column.push(value);
        }
        Ok(())
    }

    /// The values of the column at `position` in the schema's column order.
    pub fn column(&self, position: usize) -> &[Value] {
        &self.columns[position]
    }

    /// Appends all rows of `other` (same table).
    pub fn extend(&mut self, other: Rows) -> Result<()> {
        if other.schema.name != self.schema.name {
            return Err(Error::Internal(format!(
                "cannot append {} rows to {}",
                other.schema.name, self.schema.name
            )));
        }
        for (mine, theirs) in self.columns.iter_mut().zip(other.columns) {
            mine.extend(theirs);
        }
        Ok(())
    }

    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = self
            .schema
            .columns
            .iter()
            .zip(&self.columns)
            .map(|(c, values)| build_array(c.kind, values))
            .collect();
        RecordBatch::try_new(self.schema.arrow_schema(), arrays)
            .map_err(|e| Error::Internal(format!("building {} batch: {e}", self.schema.name)))
    }
}

fn build_array(kind: ColumnType, values: &[Value]) -> ArrayRef {
    let values = values.iter();
    match kind {
        ColumnType::Int32 => Arc::new(Int32Array::from_iter(values.map(Value::as_i32))),
        ColumnType::Int64 => Arc::new(Int64Array::from_iter(values.map(Value::as_i64))),
        ColumnType::Float64 => Arc::new(Float64Array::from_iter(values.map(Value::as_f64))),
        ColumnType::Bool => Arc::new(BooleanArray::from_iter(values.map(Value::as_bool))),
        ColumnType::Utf8 => Arc::new(StringArray::from_iter(values.map(Value::as_str))),
        ColumnType::Binary => Arc::new(BinaryArray::from_iter(values.map(Value::as_bytes))),
    }
}

/// The writer settings of every nasrob file: zstd, dictionaries, chunk statistics and the
/// key-value metadata naming the table, schema version, tool version and config hash.
fn writer_properties(schema: &TableSchema, config_hash: Option<&str>) -> WriterProperties {
    let mut metadata = vec![
        KeyValue::new(META_TABLE.to_string(), schema.name.to_string()),
        KeyValue::new(META_SCHEMA_VERSION.to_string(), SCHEMA_VERSION.to_string()),
        KeyValue::new(META_TOOL_VERSION.to_string(), crate::VERSION.to_string()),
    ];
    if let Some(hash) = config_hash {
        metadata.push(KeyValue::new(META_CONFIG_HASH.to_string(), hash.to_string()));
    }
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_max_row_group_row_count(Some(1 << 17))
        .set_key_value_metadata(Some(metadata))
        .build()
}

/// Writes `rows` to the Parquet file `path` atomically. `config_hash` goes into the metadata.
pub fn write_parquet(path: &Path, rows: &Rows, config_hash: Option<&str>) -> Result<()> {
    write_batch(path, rows.schema(), &rows.to_record_batch()?, config_hash)
}

/// Writes a record batch of `table` to `path` atomically, with nasrob's metadata and settings.
pub fn write_batch(
    path: &Path,
    table: &TableSchema,
    batch: &RecordBatch,
    config_hash: Option<&str>,
) -> Result<()> {
    let props = writer_properties(table, config_hash);
    crate::fsutil::write_atomic(path, |file| {
        let mut writer = ArrowWriter::try_new(file.try_clone()?, batch.schema(), Some(props))
            .map_err(std::io::Error::other)?;
        writer.write(batch).map_err(std::io::Error::other)?;
        writer.close().map_err(std::io::Error::other)?;
        Ok(())
    })
}

/// A Parquet file written in chunks (for tables too large to hold as one [`Rows`]): the rows go to
/// a temp file in the target folder, which [`PartWriter::finish`] closes, syncs and renames into
/// place. Until then readers never see the file; dropping the writer unfinished removes the temp
/// file, and a killed process leaves only a temp file that readers skip.
pub struct PartWriter {
    schema: &'static TableSchema,
    path: PathBuf,
    tmp: PathBuf,
    writer: Option<ArrowWriter<std::fs::File>>,
    rows: usize,
}

impl PartWriter {
    /// Starts the file `path` for rows of `schema`.
    pub fn create(
        path: &Path,
        schema: &'static TableSchema,
        config_hash: Option<&str>,
    ) -> Result<PartWriter> {
        crate::fsutil::ensure_parent(path)?;
        let tmp = crate::fsutil::temp_path_for(path);
        let file = std::fs::File::create(&tmp).map_err(|e| Error::write(path, e))?;
        let writer =
            ArrowWriter::try_new(file, schema.arrow_schema(), Some(writer_properties(schema, config_hash)))
                .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                Error::write(path, std::io::Error::other(e))
            })?;
        Ok(PartWriter { schema, path: path.to_path_buf(), tmp, writer: Some(writer), rows: 0 })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Path of the temp file the rows go to until [`PartWriter::finish`].
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Appends `rows` (rows of this writer's table).
    pub fn write(&mut self, rows: &Rows) -> Result<()> {
        if rows.schema().name != self.schema.name {
            return Err(Error::Internal(format!(
                "cannot write {} rows to a {} file",
                rows.schema().name,
                self.schema.name
            )));
        }
        if rows.is_empty() {
            return Ok(());
        }
        let batch = rows.to_record_batch()?;
        let Some(writer) = self.writer.as_mut() else {
            return Err(Error::Internal("write after finish".into()));
        };
        writer.write(&batch).map_err(|e| Error::write(&self.path, std::io::Error::other(e)))?;
        self.rows += rows.len();
        Ok(())
    }

    /// Writes the footer, syncs and renames the file into place; returns its final path.
    pub fn finish(mut self) -> Result<PathBuf> {
        let Some(writer) = self.writer.take() else {
            return Err(Error::Internal("finish called twice".into()));
        };
        if let Err(e) = writer.close() {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(Error::write(&self.path, std::io::Error::other(e)));
        }
        crate::fsutil::rename_into_place(&self.tmp, &self.path)?;
        Ok(self.path.clone())
    }
}

impl Drop for PartWriter {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A benchmark folder: one sub-folder per table holding any number of Parquet files.
#[derive(Clone, Debug)]
pub struct BenchDir {
    root: PathBuf,
}

impl BenchDir {
    pub fn new(root: impl Into<PathBuf>) -> BenchDir {
        BenchDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn table_dir(&self, table: &str) -> PathBuf {
        self.root.join(table)
    }

    /// Writes `rows` as the new file `<root>/<table>/<part>.parquet`; refuses to replace an
    /// existing part, since appends never edit.
    pub fn append(&self, part: &str, rows: &Rows, config_hash: Option<&str>) -> Result<PathBuf> {
        let path = self.table_dir(rows.schema().name).join(format!("{part}.parquet"));
        if path.exists() {
            return Err(Error::input(format!(
                "{} already exists: a benchmark is appended to with new part names, never rewritten",
                path.display()
            )));
        }
        write_parquet(&path, rows, config_hash)?;
        Ok(path)
    }

    /// Path of the part `<root>/<table>/<part>.parquet`.
    pub fn part_path(&self, table: &str, part: &str) -> PathBuf {
        self.table_dir(table).join(format!("{part}.parquet"))
    }

    /// Starts the new part `<root>/<table>/<part>.parquet` for writing in chunks; refuses an
    /// existing part like [`BenchDir::append`].
    pub fn part_writer(
        &self,
        part: &str,
        schema: &'static TableSchema,
        config_hash: Option<&str>,
    ) -> Result<PartWriter> {
        let path = self.part_path(schema.name, part);
        if path.exists() {
            return Err(Error::input(format!(
                "{} already exists: a benchmark is appended to with new part names, never rewritten",
                path.display()
            )));
        }
        PartWriter::create(&path, schema, config_hash)
    }
}
