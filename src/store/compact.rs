//! Compaction: many Parquet files of one table become one file, rows sorted by all columns (key
//! columns come first in every schema) with exact duplicates removed. The sweep's merge uses it.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::compute::{concat_batches, take_record_batch};
use arrow::row::{RowConverter, SortField};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::schema::TableSchema;
use super::write::{Rows, write_batch};
use crate::{Error, Result};

/// Reads all rows of `files` (each checked to hold `table`).
pub fn read_batches(table: &'static TableSchema, files: &[PathBuf]) -> Result<RecordBatch> {
    let schema = table.arrow_schema();
    let mut batches = Vec::new();
    for path in files {
        let found = super::read::check_file(path)?;
        if found.name != table.name {
            return Err(Error::input_file(
                path,
                format!("holds table {} instead of {}", found.name, table.name),
            ));
        }
        let file = File::open(path).map_err(|e| Error::input_file(path, e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|e| Error::input_file(path, format!("unreadable Parquet ({e})")))?;
        for batch in reader {
            let batch = batch.map_err(|e| Error::input_file(path, format!("unreadable Parquet ({e})")))?;
            let batch = RecordBatch::try_new(schema.clone(), batch.columns().to_vec()).map_err(|e| {
                Error::input_file(path, format!("columns differ from the {} schema ({e})", table.name))
            })?;
            batches.push(batch);
        }
    }
    if batches.is_empty() {
        return Rows::new(table).to_record_batch();
    }
    concat_batches(&schema, &batches).map_err(|e| Error::Internal(e.to_string()))
}

/// Sorts rows by all columns and drops exact duplicates.
pub fn sort_dedup(batch: &RecordBatch) -> Result<RecordBatch> {
    let fields: Vec<SortField> =
        batch.schema().fields().iter().map(|f| SortField::new(f.data_type().clone())).collect();
    let converter = RowConverter::new(fields).map_err(|e| Error::Internal(e.to_string()))?;
    let rows = converter.convert_columns(batch.columns()).map_err(|e| Error::Internal(e.to_string()))?;
    let mut order: Vec<usize> = (0..rows.num_rows()).collect();
    order.sort_by(|&a, &b| rows.row(a).cmp(&rows.row(b)));
    order.dedup_by(|a, b| rows.row(*a) == rows.row(*b));
    let indices = arrow::array::UInt32Array::from(order.into_iter().map(|i| i as u32).collect::<Vec<_>>());
    take_record_batch(batch, &indices).map_err(|e| Error::Internal(e.to_string()))
}

/// Compacts `files` of `table` into `out` (written atomically). Returns the row count.
pub fn compact(
    table: &'static TableSchema,
    files: &[PathBuf],
    out: &Path,
    config_hash: Option<&str>,
) -> Result<usize> {
    let merged = sort_dedup(&read_batches(table, files)?)?;
    let n = merged.num_rows();
    write_batch(out, table, &merged, config_hash)?;
    Ok(n)
}
