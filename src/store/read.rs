//! Reading a benchmark folder: every Parquet file's footer is checked (readable, written by nasrob,
//! for the table its folder names, with this schema version) before polars scans the files lazily.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use polars::prelude::*;

use super::schema::{self, ColumnType, READABLE_SCHEMA_VERSIONS, SCHEMA_VERSION, TableSchema};
use super::write::{META_SCHEMA_VERSION, META_TABLE, Rows, Value};
use crate::fsutil::TEMP_PREFIX;
use crate::{Error, Result};

/// Checks one file's footer and returns the table it holds.
pub fn check_file(path: &Path) -> Result<&'static TableSchema> {
    let file = File::open(path).map_err(|e| Error::input_file(path, format!("cannot open: {e}")))?;
    let reader = SerializedFileReader::new(file).map_err(|e| {
        Error::input_file(
            path,
            format!("not a readable Parquet file (truncated or not Parquet: {e}); delete it or restore it from its source"),
        )
    })?;
    let metadata = reader.metadata().file_metadata();
    let kv = metadata.key_value_metadata();
    let get = |key: &str| {
        kv.and_then(|entries| entries.iter().find(|e| e.key == key).and_then(|e| e.value.clone()))
    };
    let Some(table_name) = get(META_TABLE) else {
        return Err(Error::input_file(
            path,
            "a Parquet file that nasrob did not write (no nasrob.table metadata); import foreign data with `nasrob import`",
        ));
    };
    let Some(table) = schema::table(&table_name) else {
        return Err(Error::input_file(path, format!("unknown table '{table_name}' in the file's metadata")));
    };
    let version = get(META_SCHEMA_VERSION).unwrap_or_default();
    if !READABLE_SCHEMA_VERSIONS.iter().any(|v| v.to_string() == version) {
        return Err(Error::input_file(
            path,
            format!(
                "written with schema version '{version}' but this nasrob reads versions {READABLE_SCHEMA_VERSIONS:?} \
                 (writes {SCHEMA_VERSION}); regenerate or re-import the table with this version"
            ),
        ));
    }
    check_columns(path, table, metadata)?;
    Ok(table)
}

/// Every column of the file is a column of `table`, of its type (older schema versions may lack
/// newer columns, which read as NULL).
fn check_columns(
    path: &Path,
    table: &TableSchema,
    metadata: &parquet::file::metadata::FileMetaData,
) -> Result<()> {
    let schema =
        parquet::arrow::parquet_to_arrow_schema(metadata.schema_descr(), metadata.key_value_metadata())
            .map_err(|e| Error::input_file(path, format!("unreadable column schema ({e})")))?;
    let expected = table.arrow_schema();
    for field in schema.fields() {
        let Ok(want) = expected.field_with_name(field.name()) else {
            return Err(Error::input_file(
                path,
                format!(
                    "has a column '{}' that table {} does not have: it was not written by this nasrob's schema; \
                     remove the file or re-import its source",
                    field.name(),
                    table.name
                ),
            ));
        };
        if want.data_type() != field.data_type() {
            return Err(Error::input_file(
                path,
                format!(
                    "column '{}' is {} but table {} stores {}: remove the file or re-import its source",
                    field.name(),
                    field.data_type(),
                    table.name,
                    want.data_type()
                ),
            ));
        }
    }
    Ok(())
}

/// An opened benchmark: the checked Parquet files of each table.
#[derive(Clone, Debug)]
pub struct Bench {
    root: PathBuf,
    files: BTreeMap<&'static str, Vec<PathBuf>>,
}

impl Bench {
    /// Opens `root`, checking every file's footer. Temp files of interrupted writes are ignored.
    pub fn open(root: impl Into<PathBuf>) -> Result<Bench> {
        let root = root.into();
        if !root.is_dir() {
            let problem = if root.exists() {
                "is a file, not a benchmark folder; pass the folder (--bench DIR)"
            } else {
                "benchmark folder not found; pass the folder an import, an attack or a sweep merge wrote"
            };
            return Err(Error::input_file(&root, problem));
        }
        super::transaction::check_not_interrupted(&root)?;
        let mut files: BTreeMap<&'static str, Vec<PathBuf>> = BTreeMap::new();
        for table in schema::TABLES {
            let dir = root.join(table.name);
            if !dir.is_dir() {
                continue;
            }
            let entries = std::fs::read_dir(&dir).map_err(|e| Error::input_file(&dir, e))?;
            let mut paths: Vec<PathBuf> = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| Error::input_file(&dir, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(TEMP_PREFIX) || !name.ends_with(".parquet") {
                    continue;
                }
                paths.push(entry.path());
            }
            paths.sort();
            for path in &paths {
                let found = check_file(path)?;
                if found.name != table.name {
                    return Err(Error::input_file(
                        path,
                        format!("holds table '{}' but lies in the folder of '{}'", found.name, table.name),
                    ));
                }
            }
            if !paths.is_empty() {
                files.insert(table.name, paths);
            }
        }
        Ok(Bench { root, files })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Names of the tables that have at least one file.
    pub fn tables(&self) -> Vec<&'static str> {
        self.files.keys().copied().collect()
    }

    pub fn has_table(&self, table: &str) -> bool {
        self.files.contains_key(table)
    }

    pub fn files(&self, table: &str) -> &[PathBuf] {
        self.files.get(table).map_or(&[], Vec::as_slice)
    }

    /// A lazy scan over all files of `table`; an empty frame with the table's columns when the
    /// benchmark has none.
    pub fn scan(&self, table: &str) -> Result<LazyFrame> {
        let Some(schema) = schema::table(table) else {
            let known: Vec<&str> = schema::TABLES.iter().map(|t| t.name).collect();
            return Err(Error::input(format!("unknown table '{table}': tables are {}", known.join(", "))));
        };
        let paths = self.files(table);
        if paths.is_empty() {
            return Ok(empty_frame(schema).lazy());
        }
        let mut sources: Vec<PlRefPath> = Vec::with_capacity(paths.len());
        for path in paths {
            let Some(text) = path.to_str() else {
                return Err(Error::input_file(path, "the path is not valid UTF-8, which polars cannot scan"));
            };
            sources.push(PlRefPath::new(text));
        }
        // Files of an older schema version lack the newer columns: they read as NULL.
        let args = ScanArgsParquet {
            glob: false,
            schema: Some(empty_frame(schema).schema().clone()),
            allow_missing_columns: true,
            ..Default::default()
        };
        LazyFrame::scan_parquet_files(sources.into_iter().collect(), args).map_err(polars_error)
    }

    /// Datasets that have rows in `evaluations` or `proxies`, sorted by name.
    pub fn datasets(&self) -> Result<Vec<String>> {
        let mut present = std::collections::BTreeSet::new();
        for table in ["evaluations", "proxies"] {
            if !self.has_table(table) {
                continue;
            }
            let df = self
                .scan(table)?
                .select([col("dataset")])
                .unique(None, UniqueKeepStrategy::Any)
                .collect()
                .map_err(polars_error)?;
            let column = df.column("dataset").and_then(|c| c.str()).map_err(polars_error)?;
            present.extend(column.iter().flatten().map(str::to_string));
        }
        Ok(present.into_iter().collect())
    }

    /// Collects a whole table.
    pub fn read(&self, table: &str) -> Result<DataFrame> {
        self.scan(table)?.collect().map_err(polars_error)
    }
}

/// Runs `lf` on polars' streaming engine, which reads files in morsels instead of whole
/// columns: lower peak memory for scans and aggregates over many rows.
pub fn collect_streaming(lf: LazyFrame) -> Result<DataFrame> {
    // A plan that ends in one collect has one sink, so the result is a single frame (only
    // `collect_all` plans with several sinks give several).
    Ok(lf.collect_with_engine(Engine::Streaming).map_err(polars_error)?.unwrap_single())
}

/// An empty frame with the columns of `schema`.
pub fn empty_frame(schema: &TableSchema) -> DataFrame {
    let columns: Vec<Column> =
        schema.columns.iter().map(|c| Column::new_empty(c.name.into(), &polars_type(c.kind))).collect();
    DataFrame::new(0, columns).unwrap_or_default()
}

/// A frame holding `rows`, with the column types that scanning their table gives.
pub fn frame_of(rows: &Rows) -> Result<DataFrame> {
    let columns: Vec<Column> = rows
        .schema()
        .columns
        .iter()
        .enumerate()
        .map(|(position, c)| {
            let values = rows.column(position);
            let name = c.name.into();
            match c.kind {
                ColumnType::Int32 => Column::new(name, values.iter().map(Value::as_i32).collect::<Vec<_>>()),
                ColumnType::Int64 => Column::new(name, values.iter().map(Value::as_i64).collect::<Vec<_>>()),
                ColumnType::Float64 => {
                    Column::new(name, values.iter().map(Value::as_f64).collect::<Vec<_>>())
                }
                ColumnType::Bool => Column::new(name, values.iter().map(Value::as_bool).collect::<Vec<_>>()),
                ColumnType::Utf8 => Column::new(name, values.iter().map(Value::as_str).collect::<Vec<_>>()),
                ColumnType::Binary => {
                    Column::new(name, values.iter().map(Value::as_bytes).collect::<Vec<_>>())
                }
            }
        })
        .collect();
    DataFrame::new(rows.len(), columns).map_err(polars_error)
}

fn polars_type(kind: ColumnType) -> DataType {
    match kind {
        ColumnType::Int32 => DataType::Int32,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Utf8 => DataType::String,
        ColumnType::Binary => DataType::Binary,
    }
}

/// Maps a polars error to nasrob's, on one line: I/O errors are the environment's (exit 1), the
/// rest arise from the query the user wrote (exit 2).
pub fn polars_error(e: PolarsError) -> Error {
    match e {
        PolarsError::IO { error, msg } => {
            let detail = msg.map(|m| format!(" ({m})")).unwrap_or_default();
            Error::Internal(one_line(&format!("reading tables: {error}{detail}")))
        }
        other => Error::input(one_line(&format!("query failed: {other}"))),
    }
}

/// Joins the lines of a multi-line message, so that the CLI prints one `error:` line.
pub fn one_line(message: &str) -> String {
    message.split('\n').map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ")
}
