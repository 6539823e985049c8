//! The benchmark store: table schemas (mirrored in `schemas/*.json`), the Parquet writer every
//! stage writes through, the benchmark folder layout (`<bench>/<table>/<part>.parquet`), the
//! checked reader and SQL over the tables, importers of published benchmarks, provenance, and the
//! transactions every writer to a benchmark folder goes through.
//! Needs no libtorch.

pub mod compact;
pub mod import;
pub mod provenance;
pub mod read;
pub mod schema;
pub mod sql;
mod tables;
pub mod transaction;
mod write;

pub use read::{Bench, check_file};
pub use schema::{ANALYSIS_OUTPUTS, Column, ColumnType, SCHEMA_VERSION, TABLES, TableSchema};
pub use tables::{architecture_rows, cost_rows};
pub use transaction::Transaction;
pub use write::{
    BenchDir, META_CONFIG_HASH, META_SCHEMA_VERSION, META_TABLE, META_TOOL_VERSION, PartWriter, Rows, Value,
    write_batch, write_parquet,
};
