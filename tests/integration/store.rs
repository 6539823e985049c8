use std::fs::File;

use parquet::file::reader::{FileReader, SerializedFileReader};

use nasrob::store::{ANALYSIS_OUTPUTS, META_SCHEMA_VERSION, META_TABLE, SCHEMA_VERSION, TABLES};

use crate::common::nasrob;

#[test]
fn space_export_writes_readable_parquet_with_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let arch_path = dir.path().join("architectures.parquet");
    let cost_path = dir.path().join("costs.parquet");
    let out = nasrob(&[
        "space",
        "export",
        "--out",
        arch_path.to_str().unwrap(),
        "--costs-out",
        cost_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reader = SerializedFileReader::new(File::open(&arch_path).unwrap()).unwrap();
    let meta = reader.metadata().file_metadata();
    assert_eq!(meta.num_rows(), 15_625);
    let kv = meta.key_value_metadata().unwrap();
    let get = |k: &str| kv.iter().find(|e| e.key == k).and_then(|e| e.value.clone());
    assert_eq!(get(META_TABLE).as_deref(), Some("architectures"));
    assert_eq!(get(META_SCHEMA_VERSION), Some(SCHEMA_VERSION.to_string()));
    let costs = SerializedFileReader::new(File::open(&cost_path).unwrap()).unwrap();
    assert_eq!(costs.metadata().file_metadata().num_rows(), 3 * 15_625);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[test]
fn schema_json_files_match_the_code() {
    let schemas = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let bless = std::env::var_os("NASROB_BLESS_SCHEMAS").is_some();
    for table in TABLES.iter().chain(&ANALYSIS_OUTPUTS) {
        let path = schemas.join(format!("{}.json", table.name));
        let expected = serde_json::to_string_pretty(&table.to_json()).unwrap() + "\n";
        if bless {
            std::fs::write(&path, &expected).unwrap();
        }
        let found = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            found,
            expected,
            "{} differs from src/store/schema.rs; regenerate with NASROB_BLESS_SCHEMAS=1 cargo test schema_json",
            path.display()
        );
    }
    let files = std::fs::read_dir(&schemas).unwrap().count();
    assert_eq!(
        files,
        TABLES.len() + ANALYSIS_OUTPUTS.len(),
        "schemas/ holds a file for a table the code does not define"
    );
}

// ---- reader ------------------------------------------------------------------------------------

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int32Array, StringArray};
use arrow::datatypes::{DataType as ArrowType, Field, Schema};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use polars::prelude::{AnyValue, DataType};

use nasrob::store::schema::{EVALUATIONS, TableSchema};
use nasrob::store::{Bench, BenchDir, ColumnType, PartWriter, Rows, Value};

use crate::common::{assert_bad_input, stderr};

/// The value of column `j` in test row `r`; row 1 is NULL in every nullable column.
fn test_value(schema: &TableSchema, j: usize, r: usize) -> Value {
    let column = &schema.columns[j];
    if r == 1 && column.nullable {
        return Value::Null;
    }
    match column.kind {
        ColumnType::Int32 => Value::Int((r * 100 + j) as i64 - 7),
        ColumnType::Int64 => Value::Int(((r * 100 + j) as i64) << 33),
        ColumnType::Float64 => Value::Float(r as f64 * 0.5 + j as f64 / 1024.0 - 1.0),
        ColumnType::Bool => Value::Bool((r + j).is_multiple_of(2)),
        ColumnType::Utf8 => Value::Str(format!("{}-{r}-é", column.name)),
        ColumnType::Binary => Value::Bytes(vec![r as u8, j as u8, 0xff, 0]),
    }
}

fn expected_any(value: &Value, kind: ColumnType) -> AnyValue<'static> {
    match (value, kind) {
        (Value::Null, _) => AnyValue::Null,
        (Value::Int(v), ColumnType::Int32) => AnyValue::Int32(*v as i32),
        (Value::Int(v), ColumnType::Int64) => AnyValue::Int64(*v),
        (Value::Float(v), _) => AnyValue::Float64(*v),
        (Value::Bool(v), _) => AnyValue::Boolean(*v),
        (Value::Str(v), _) => AnyValue::StringOwned(v.as_str().into()),
        (Value::Bytes(v), _) => AnyValue::BinaryOwned(v.clone()),
        other => panic!("no test value {other:?}"),
    }
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

fn rows_for(schema: &'static TableSchema, n: usize) -> Rows {
    let mut rows = Rows::new(schema);
    for r in 0..n {
        let row: Vec<(&str, Value)> =
            schema.columns.iter().enumerate().map(|(j, c)| (c.name, test_value(schema, j, r))).collect();
        rows.push(&row).unwrap();
    }
    rows
}

#[test]
fn every_table_round_trips_writer_to_reader() {
    let dir = tempfile::tempdir().unwrap();
    let bench_dir = BenchDir::new(dir.path());
    for table in TABLES {
        bench_dir.append("part-a", &rows_for(table, 3), Some("cafe")).unwrap();
    }
    let bench = Bench::open(dir.path()).unwrap();
    assert_eq!(bench.tables().len(), TABLES.len());
    for table in TABLES {
        let df = bench.read(table.name).unwrap();
        assert_eq!(df.height(), 3, "{}", table.name);
        let names: Vec<String> = df.get_column_names().iter().map(|n| n.to_string()).collect();
        let expected_names: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
        assert_eq!(names, expected_names, "column order of {}", table.name);
        for (j, column) in table.columns.iter().enumerate() {
            let series = df.column(column.name).unwrap().as_materialized_series().clone();
            assert_eq!(series.dtype(), &polars_type(column.kind), "{}.{}", table.name, column.name);
            for r in 0..3 {
                let found = series.get(r).unwrap().into_static();
                let expected = expected_any(&test_value(table, j, r), column.kind);
                assert_eq!(found, expected, "{}.{} row {r}", table.name, column.name);
            }
        }
    }
    // SQL sees the same rows by table name.
    let df =
        nasrob::store::sql::sql(&bench, "SELECT count(*) AS n FROM confusion WHERE seed IS NULL").unwrap();
    assert_eq!(df.column("n").unwrap().get(0).unwrap().extract::<u32>(), Some(1));
}

fn files_named(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

#[test]
fn a_crashed_writer_leaves_nothing_that_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let bench_dir = BenchDir::new(dir.path());
    bench_dir.append("done", &rows_for(&EVALUATIONS, 3), None).unwrap();

    // A writer that dies mid-file (the process is killed: no footer, no rename, no clean-up).
    let mut writer = bench_dir.part_writer("crashed", &EVALUATIONS, None).unwrap();
    writer.write(&rows_for(&EVALUATIONS, 3)).unwrap();
    let temp = writer.temp_path().to_path_buf();
    std::mem::forget(writer);
    assert!(temp.exists(), "the crashed writer's temp file should be on disk");
    assert!(!dir.path().join("evaluations/crashed.parquet").exists(), "no file under the final name");
    let bench = Bench::open(dir.path()).unwrap();
    assert_eq!(bench.files("evaluations").len(), 1, "only the finished part is read");
    assert_eq!(bench.read("evaluations").unwrap().height(), 3);

    // A writer dropped before finishing (an error path) removes its temp file.
    let mut dropped =
        PartWriter::create(&dir.path().join("evaluations/dropped.parquet"), &EVALUATIONS, None).unwrap();
    dropped.write(&rows_for(&EVALUATIONS, 2)).unwrap();
    let dropped_temp = dropped.temp_path().to_path_buf();
    drop(dropped);
    assert!(!dropped_temp.exists());

    // A final file cut short (a disk that lied, a copy interrupted) is an error naming the file.
    let good = dir.path().join("evaluations/done.parquet");
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("evaluations/cut.parquet");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = Bench::open(dir.path()).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("cut.parquet") && err.to_string().contains("truncated"), "{err}");
    let out = nasrob(&["query", "sql", "SELECT * FROM evaluations", "--bench", dir.path().to_str().unwrap()]);
    assert_bad_input(&out, "cut.parquet");
    assert_eq!(files_named(&dir.path().join("evaluations"), ".tmp-").len(), 1);
}

/// Writes `evaluations`-shaped rows with the arrow/parquet crates and the given metadata.
fn write_foreign(path: &Path, metadata: Option<Vec<KeyValue>>) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("index", ArrowType::Int32, false),
        Field::new("dataset", ArrowType::Utf8, false),
        Field::new("accuracy", ArrowType::Float64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(vec![1, 2])),
        Arc::new(StringArray::from(vec!["cifar10", "cifar10"])),
        Arc::new(Float64Array::from(vec![0.5, 0.6])),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let props = WriterProperties::builder().set_key_value_metadata(metadata).build();
    let mut writer = ArrowWriter::try_new(File::create(path).unwrap(), schema, Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

fn bench_with(files: &[(&str, Option<Vec<KeyValue>>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, metadata) in files {
        write_foreign(&dir.path().join(name), metadata.clone());
    }
    dir
}

fn kv(table: &str, version: &str) -> Option<Vec<KeyValue>> {
    Some(vec![
        KeyValue::new(META_TABLE.to_string(), table.to_string()),
        KeyValue::new(META_SCHEMA_VERSION.to_string(), version.to_string()),
    ])
}

#[test]
fn foreign_wrong_version_and_truncated_files_exit_2() {
    let sql =
        |dir: &Path| nasrob(&["query", "sql", "SELECT * FROM evaluations", "--bench", dir.to_str().unwrap()]);
    let foreign = bench_with(&[("evaluations/other.parquet", None)]);
    assert_bad_input(&sql(foreign.path()), "did not write");
    let future = bench_with(&[("evaluations/new.parquet", kv("evaluations", "999"))]);
    let out = sql(future.path());
    assert_bad_input(&out, "schema version '999'");
    assert!(stderr(&out).contains("new.parquet"));
    let misplaced = bench_with(&[("proxies/p.parquet", kv("evaluations", &SCHEMA_VERSION.to_string()))]);
    assert_bad_input(&sql(misplaced.path()), "lies in the folder of 'proxies'");
    let truncated = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(truncated.path().join("costs")).unwrap();
    std::fs::write(truncated.path().join("costs/c.parquet"), b"PAR1\x00\x01").unwrap();
    assert_bad_input(&sql(truncated.path()), "c.parquet");
    let lookup = nasrob(&["query", "lookup", "5", "--bench", truncated.path().to_str().unwrap()]);
    assert_bad_input(&lookup, "c.parquet");
    let missing = nasrob(&["query", "sql", "SELECT 1", "--bench", "/nonexistent/bench"]);
    assert_bad_input(&missing, "benchmark folder not found");
}

#[test]
fn sql_errors_exit_2_and_results_print_as_table_csv_json() {
    let dir = tempfile::tempdir().unwrap();
    BenchDir::new(dir.path()).append("a", &rows_for(&EVALUATIONS, 3), None).unwrap();
    let bench = dir.path().to_str().unwrap();
    let out = nasrob(&["query", "sql", "SELECT * FROM evaluationz", "--bench", bench]);
    assert_bad_input(&out, "unknown table 'evaluationz'");
    assert!(stderr(&out).contains("evaluations"), "the message lists the tables");
    assert_bad_input(&nasrob(&["query", "sql", "SELEC oops", "--bench", bench]), "SQL");
    // Tables without files are empty, not unknown.
    let out = nasrob(&["query", "sql", "SELECT count(*) AS n FROM training_runs", "--bench", bench]);
    assert!(out.status.success(), "{}", stderr(&out));
    let q = "SELECT source, count(*) AS n FROM evaluations GROUP BY source ORDER BY source";
    let text = crate::common::stdout(&nasrob(&["query", "sql", q, "--bench", bench]));
    assert!(text.contains("source") && text.contains("(3 rows)"), "{text}");
    let csv = crate::common::stdout(&nasrob(&["query", "sql", q, "--bench", bench, "--csv"]));
    assert_eq!(csv.lines().next(), Some("source,n"));
    assert_eq!(csv.lines().count(), 4);
    let json: serde_json::Value =
        serde_json::from_slice(&nasrob(&["query", "sql", q, "--bench", bench, "--json"]).stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
    assert_eq!(json[0]["n"], 1);
}

#[test]
fn version_1_evaluations_open_and_their_ladder_rows_are_explained() {
    use arrow::array::new_null_array;
    let dir = tempfile::tempdir().unwrap();
    let columns: Vec<_> = EVALUATIONS.columns.iter().filter(|c| c.name != "scoring_set").collect();
    let schema = Arc::new(Schema::new(
        columns.iter().map(|c| Field::new(c.name, c.kind.arrow(), c.nullable)).collect::<Vec<_>>(),
    ));
    let strings = |a: &str, b: &str| -> ArrayRef { Arc::new(StringArray::from(vec![a, b])) };
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .map(|c| match c.name {
            "source" => strings("nasrob", "nasrob"),
            "dataset" => strings("fashion-mini", "fashion-mini"),
            "split" => strings("test", "test"),
            "kind" => strings("clean", "adversarial"),
            "condition" => strings("clean", "fgsm"),
            "ladder_mode" => Arc::new(StringArray::from(vec![None, Some("ladder")])),
            "index" => Arc::new(Int32Array::from(vec![9930, 9930])),
            "eps_255" => Arc::new(Float64Array::from(vec![None, Some(1.0)])),
            "accuracy" => Arc::new(Float64Array::from(vec![0.8, 0.5])),
            _ => new_null_array(&c.kind.arrow(), 2),
        })
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays).unwrap();
    let path = dir.path().join("evaluations/old.parquet");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let props = WriterProperties::builder().set_key_value_metadata(kv("evaluations", "1")).build();
    let mut writer = ArrowWriter::try_new(File::create(&path).unwrap(), schema, Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    let bench = Bench::open(dir.path()).unwrap();
    let df = bench.read("evaluations").unwrap();
    assert_eq!(df.column("scoring_set").unwrap().null_count(), 2);
    let lookup = nasrob::query::Lookup::open(dir.path(), nasrob::dataset::Dataset::FashionMini).unwrap();
    assert_eq!(lookup.lookup(9930, "fgsm@1").unwrap(), Some(0.5));
    let out =
        nasrob(&["query", "summary", "--bench", dir.path().to_str().unwrap(), "--dataset", "fashion-mini"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = crate::common::stdout(&out);
    assert!(text.contains("1 adversarial rows were measured in ladder mode"), "{text}");
}
