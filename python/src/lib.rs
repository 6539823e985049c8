//! `nasrob._native`: the query layer of nasrob for Python (lookups, the search space, Kendall-tau
//! matrices and tabular NAS), built without libtorch. The package `nasrob` (next to this crate)
//! re-exports it and turns column dictionaries into DataFrames; this crate only converts between
//! Python and the library, and maps the library's errors onto Python's exceptions.

use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use pyo3::exceptions::{
    PyBufferError, PyFileNotFoundError, PyIndexError, PyKeyError, PyOSError, PyRuntimeError, PyTypeError,
    PyValueError,
};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use nasrob::Error;
use nasrob::dataset::Dataset;
use nasrob::query::analysis::{
    NasRequest, RowSet, correlation_rows, nas_table, tau_request, trajectory_rows,
};
use nasrob::query::{Lookup as RustLookup, MetricId, QueryError};
use nasrob::space::{NUM_ARCHS, NUM_UNIQUE, NetworkShape, SearchSpace, SpaceError, network_cost};
use nasrob::store::{Rows, Value};

/// The Python exception for a library error, with the message the CLI prints for it.
fn python_error(error: Error) -> PyErr {
    let message = error.to_string();
    match &error {
        Error::Space(SpaceError::IndexOutOfRange { .. })
        | Error::Query(QueryError::Space(SpaceError::IndexOutOfRange { .. })) => {
            PyIndexError::new_err(message)
        }
        Error::Query(QueryError::UnknownMetric(_)) => PyKeyError::new_err(message),
        Error::InputFile { path, .. } if !path.exists() => PyFileNotFoundError::new_err(message),
        Error::Write { .. } => PyOSError::new_err(message),
        Error::Internal(_) | Error::Environment(_) | Error::Interrupted(_) => {
            PyRuntimeError::new_err(message)
        }
        _ => PyValueError::new_err(message),
    }
}

fn parse_dataset(name: &str) -> PyResult<Dataset> {
    name.parse::<Dataset>().map_err(|e| python_error(e.into()))
}

/// One dataset of a benchmark folder, held in memory: every metric aligned by NB201 index, with
/// isomorphic architectures answering with their class's value.
///
/// >>> lookup = nasrob.Lookup("bench", "cifar10")
/// >>> lookup.get("pgd@1", 13714)
/// 0.438
#[pyclass(frozen, module = "nasrob")]
struct Lookup {
    inner: Arc<RustLookup>,
    bench: PathBuf,
    /// Names already resolved, so that a loop calling `get` with a name hashes once per call
    /// and never re-parses it.
    resolved: RwLock<HashMap<String, MetricId>>,
}

impl Lookup {
    /// The id of a metric given as its name or as the id [`Lookup::resolve`] returned.
    fn id(&self, metric: &Bound<'_, PyAny>) -> PyResult<MetricId> {
        if let Ok(name) = metric.cast::<PyString>() {
            return self.id_of_name(name.to_str()?);
        }
        let position: usize = metric.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "a metric is a name such as 'pgd@1' or an id from Lookup.resolve, not {}",
                metric.get_type().name().map(|n| n.to_string()).unwrap_or_default()
            ))
        })?;
        self.inner.metric_at(position).ok_or_else(|| {
            PyKeyError::new_err(format!("no metric has id {position}: ids come from Lookup.resolve"))
        })
    }

    fn id_of_name(&self, name: &str) -> PyResult<MetricId> {
        if let Some(&id) = self.resolved.read().ok().as_ref().and_then(|m| m.get(name)) {
            return Ok(id);
        }
        let id = self.inner.resolve(name).map_err(python_error)?;
        if let Ok(mut cache) = self.resolved.write() {
            cache.insert(name.to_string(), id);
        }
        Ok(id)
    }
}

fn check_index(index: i64) -> PyResult<usize> {
    match usize::try_from(index) {
        Ok(i) if i < NUM_ARCHS => Ok(i),
        _ => Err(python_error(Error::Space(SpaceError::IndexOutOfRange { index: index.to_string() }))),
    }
}

#[pymethods]
impl Lookup {
    /// Opens `dataset` (cifar10, cifar100, imagenet16-120, ...) of the benchmark folder `bench`,
    /// from its lookup index when that is fresh, else by scanning its tables.
    #[new]
    #[pyo3(signature = (bench, dataset = "cifar10"))]
    fn new(py: Python<'_>, bench: PathBuf, dataset: &str) -> PyResult<Lookup> {
        let dataset = parse_dataset(dataset)?;
        let root = bench.clone();
        let inner = py.detach(move || RustLookup::open(&root, dataset)).map_err(python_error)?;
        Ok(Lookup { inner: Arc::new(inner), bench, resolved: RwLock::new(HashMap::new()) })
    }

    /// The value of `metric` (a name such as "pgd@1" or "jung2023:clean", or an id from
    /// `resolve`) at NB201 index `index`; None when neither the index nor its isomorphism class
    /// has one.
    ///
    /// >>> lookup.get("clean", 13714)
    /// 0.946
    fn get(&self, metric: &Bound<'_, PyAny>, index: i64) -> PyResult<Option<f64>> {
        let id = self.id(metric)?;
        Ok(self.inner.get(id, check_index(index)?))
    }

    /// `get` with the index first, as `nasrob query lookup` takes them.
    ///
    /// >>> lookup.lookup(13714, "fgsm@1")
    /// 0.65
    fn lookup(&self, index: i64, metric: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
        self.get(metric, index)
    }

    /// The value and the index it was measured on (the asked index, or a member of its
    /// isomorphism class), or None.
    ///
    /// >>> lookup.answer("clean", 13714)
    /// (0.946, 13714)
    fn answer(&self, metric: &Bound<'_, PyAny>, index: i64) -> PyResult<Option<(f64, usize)>> {
        let id = self.id(metric)?;
        Ok(self.inner.answer(id, check_index(index)?).map(|a| (a.value, a.from_index)))
    }

    /// The metric's id, for loops that call `get` millions of times.
    ///
    /// >>> pgd = lookup.resolve("pgd@1"); lookup.get(pgd, 13714)
    /// 0.438
    fn resolve(&self, metric: &str) -> PyResult<u32> {
        let id = self.id_of_name(metric)?;
        Ok(id.position() as u32)
    }

    /// The whole column of `metric` as a read-only float64 numpy array of 15,625 values (NaN
    /// where an index has no value) that shares the lookup's memory.
    ///
    /// >>> lookup.column("clean")[13714]
    /// 0.946
    fn column<'py>(slf: &Bound<'py, Self>, metric: &Bound<'_, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let this = slf.get();
        let id = this.id(metric)?;
        let buffer =
            Column { lookup: this.inner.clone(), metric: id, shape: [NUM_ARCHS as isize], strides: [8] };
        let numpy = slf.py().import("numpy")?;
        numpy.call_method1("frombuffer", (Bound::new(slf.py(), buffer)?, "float64"))
    }

    /// Every metric as a dict (the keys of `nasrob query metrics --json`): metric, source,
    /// qualified name, family, and how many indices have a
    /// value of their own (`measured`) or their class's (`answerable`).
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for info in self.inner.metrics() {
            let entry = PyDict::new(py);
            entry.set_item("metric", &info.name)?;
            entry.set_item("source", &info.source)?;
            entry.set_item("qualified", info.qualified())?;
            entry.set_item("family", info.family.name())?;
            entry.set_item("measured", info.measured)?;
            entry.set_item("answerable", info.answerable)?;
            list.append(entry)?;
        }
        Ok(list)
    }

    /// The smallest index of the isomorphism class of `index`.
    fn representative(&self, index: i64) -> PyResult<usize> {
        SearchSpace::nb201().representative(check_index(index)?).map_err(space_error)
    }

    /// The dataset's name.
    #[getter]
    fn dataset(&self) -> &'static str {
        self.inner.dataset().name()
    }

    /// The benchmark folder.
    #[getter]
    fn bench(&self) -> PathBuf {
        self.bench.clone()
    }

    /// Whether this lookup was read from the benchmark's lookup index rather than its tables.
    #[getter(from_index)]
    fn read_from_index(&self) -> bool {
        self.inner.read_from_index()
    }

    fn __len__(&self) -> usize {
        NUM_ARCHS
    }

    fn __repr__(&self) -> String {
        format!(
            "nasrob.Lookup({:?}, {:?}): {} metrics",
            self.bench.display().to_string(),
            self.inner.dataset().name(),
            self.inner.metrics().len()
        )
    }
}

/// One column of a lookup, exported through Python's buffer protocol so that numpy shares it.
#[pyclass(frozen, module = "nasrob")]
struct Column {
    lookup: Arc<RustLookup>,
    metric: MetricId,
    shape: [isize; 1],
    strides: [isize; 1],
}

#[pymethods]
impl Column {
    /// # Safety
    /// Python passes a writable `Py_buffer`; the data it points to lives in `lookup`, which this
    /// object keeps alive, and the view holds a reference to this object.
    unsafe fn __getbuffer__(slf: Bound<'_, Self>, view: *mut ffi::Py_buffer, flags: c_int) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("no buffer view to fill"));
        }
        if flags & ffi::PyBUF_WRITABLE == ffi::PyBUF_WRITABLE {
            return Err(PyBufferError::new_err("a lookup's columns are read-only; copy one to change it"));
        }
        let this = slf.get();
        let values = this.lookup.column_by_id(this.metric);
        unsafe {
            (*view).buf = values.as_ptr() as *mut c_void;
            (*view).len = std::mem::size_of_val(values) as isize;
            (*view).readonly = 1;
            (*view).itemsize = 8;
            (*view).format = if flags & ffi::PyBUF_FORMAT == ffi::PyBUF_FORMAT {
                c"d".as_ptr() as *mut _
            } else {
                std::ptr::null_mut()
            };
            (*view).ndim = 1;
            (*view).shape = if flags & ffi::PyBUF_ND == ffi::PyBUF_ND {
                this.shape.as_ptr() as *mut isize
            } else {
                std::ptr::null_mut()
            };
            (*view).strides = if flags & ffi::PyBUF_STRIDES == ffi::PyBUF_STRIDES {
                this.strides.as_ptr() as *mut isize
            } else {
                std::ptr::null_mut()
            };
            (*view).suboffsets = std::ptr::null_mut();
            (*view).internal = std::ptr::null_mut();
            (*view).obj = slf.into_any().into_ptr();
        }
        Ok(())
    }
}

/// Table rows as a dict of column name to list, in the schema's column order.
fn rows_to_columns<'py>(py: Python<'py>, rows: &Rows) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for (position, column) in rows.schema().columns.iter().enumerate() {
        let list = PyList::empty(py);
        for value in rows.column(position) {
            match value {
                Value::Null => list.append(py.None())?,
                Value::Int(v) => list.append(v)?,
                Value::Float(v) => list.append(v)?,
                Value::Bool(v) => list.append(v)?,
                Value::Str(v) => list.append(v)?,
                Value::Bytes(v) => list.append(pyo3::types::PyBytes::new(py, v))?,
            }
        }
        out.set_item(column.name, list)?;
    }
    Ok(out)
}

/// Kendall's tau-b, Spearman's rho and Pearson's r of every x metric with every y metric, as
/// columns (those of `nasrob tau --parquet`, and the noise ceilings of x and y where the benchmark
/// has several seeds).
#[pyfunction]
#[pyo3(signature = (bench, dataset = "cifar10", x = vec!["clean/*".to_string()], y = Vec::new(), cross_dataset = None, rows = "unique"))]
fn tau_columns<'py>(
    py: Python<'py>,
    bench: PathBuf,
    dataset: &str,
    x: Vec<String>,
    y: Vec<String>,
    cross_dataset: Option<&str>,
    rows: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let dataset = parse_dataset(dataset)?;
    let other = cross_dataset.map(parse_dataset).transpose()?;
    let rows = RowSet::parse(rows).map_err(python_error)?;
    let computed = py.detach(move || {
        let lookup = RustLookup::open(&bench, dataset)?;
        let other = other.map(|d| RustLookup::open(&bench, d)).transpose()?;
        let tau = tau_request(&lookup, &x, &y, other.as_ref(), rows)?;
        let ceiling = |name: &str| tau.noise_ceilings.get(name).map(|c| c.kendall_tau_b);
        let ceilings: Option<(Vec<_>, Vec<_>)> = (!tau.noise_ceilings.is_empty())
            .then(|| tau.cells.iter().map(|c| (ceiling(&c.x), ceiling(&c.y))).unzip());
        Ok::<_, Error>((correlation_rows(&tau.cells, rows)?, ceilings))
    });
    let (rows, ceilings) = computed.map_err(python_error)?;
    let columns = rows_to_columns(py, &rows)?;
    if let Some((x, y)) = ceilings {
        columns.set_item("x_noise_ceiling", x)?;
        columns.set_item("y_noise_ceiling", y)?;
    }
    Ok(columns)
}

/// Every query of every run of tabular NAS, as columns (those of `nasrob nas --out`).
#[pyfunction]
#[pyo3(signature = (bench, dataset = "cifar10", algo = vec!["all".to_string()], objective = "clean", budget = 200, runs = 100, seed = 0, constraints = Vec::new(), report = None))]
#[allow(clippy::too_many_arguments)]
fn nas_columns<'py>(
    py: Python<'py>,
    bench: PathBuf,
    dataset: &str,
    algo: Vec<String>,
    objective: &str,
    budget: usize,
    runs: usize,
    seed: u64,
    constraints: Vec<String>,
    report: Option<Vec<String>>,
) -> PyResult<Bound<'py, PyDict>> {
    let dataset = parse_dataset(dataset)?;
    let objective = objective.to_string();
    let computed = py.detach(move || {
        let lookup = RustLookup::open(&bench, dataset)?;
        let request = NasRequest::parse(
            &lookup,
            &algo,
            &objective,
            &constraints,
            report.as_deref(),
            budget,
            runs,
            seed,
        )?;
        trajectory_rows(&nas_table(&lookup, &request)?)
    });
    rows_to_columns(py, &computed.map_err(python_error)?)
}

fn space_error(error: SpaceError) -> PyErr {
    python_error(error.into())
}

/// NB201's arch string of `index`.
#[pyfunction]
fn arch_string(index: i64) -> PyResult<String> {
    Ok(SearchSpace::nb201().arch(check_index(index)?).map_err(space_error)?.to_nb201_string())
}

/// The NB201 index of an arch string (or of an index given as a string).
#[pyfunction]
fn index_of(arch: &str) -> PyResult<usize> {
    SearchSpace::nb201().resolve(arch).map_err(space_error)
}

/// The smallest index of the isomorphism class of `index`.
#[pyfunction]
fn representative(index: i64) -> PyResult<usize> {
    SearchSpace::nb201().representative(check_index(index)?).map_err(space_error)
}

/// Whether `index` is the smallest of its isomorphism class.
#[pyfunction]
fn is_representative(index: i64) -> PyResult<bool> {
    SearchSpace::nb201().is_representative(check_index(index)?).map_err(space_error)
}

/// Indices of the 24 architectures that differ from `index` in one edge's operation.
#[pyfunction]
fn neighbours(index: i64) -> PyResult<Vec<usize>> {
    SearchSpace::nb201().neighbours(check_index(index)?).map_err(space_error)
}

/// NB201's network (C=16, N=5) on `dataset`: millions of parameters and of multiply-adds.
#[pyfunction]
#[pyo3(signature = (index, dataset = "cifar10"))]
fn cost<'py>(py: Python<'py>, index: i64, dataset: &str) -> PyResult<Bound<'py, PyDict>> {
    let dataset = parse_dataset(dataset)?;
    let arch = SearchSpace::nb201().arch(check_index(index)?).map_err(space_error)?;
    let cost = network_cost(&arch, &NetworkShape::nb201(dataset.cost_dataset()));
    let out = PyDict::new(py);
    out.set_item("params_m", cost.params_m())?;
    out.set_item("flops_m", cost.flops_m())?;
    Ok(out)
}

#[pymodule]
fn _native(py: Python<'_>, module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add_class::<Lookup>()?;
    module.add_class::<Column>()?;
    module.add_function(wrap_pyfunction!(tau_columns, module)?)?;
    module.add_function(wrap_pyfunction!(nas_columns, module)?)?;
    let space = PyModule::new(py, "space")?;
    space.add("NUM_ARCHS", NUM_ARCHS)?;
    space.add("NUM_UNIQUE", NUM_UNIQUE)?;
    space.add_function(wrap_pyfunction!(arch_string, &space)?)?;
    space.add_function(wrap_pyfunction!(index_of, &space)?)?;
    space.add_function(wrap_pyfunction!(representative, &space)?)?;
    space.add_function(wrap_pyfunction!(is_representative, &space)?)?;
    space.add_function(wrap_pyfunction!(neighbours, &space)?)?;
    space.add_function(wrap_pyfunction!(cost, &space)?)?;
    module.add_submodule(&space)?;
    Ok(())
}
