//! Multi-objective views of a benchmark: the Pareto front over two or three metrics, its exact
//! hypervolume, and where given architectures (NAS incumbents) sit relative to the front.
//!
//! Each metric is maximised or minimised as its [`Direction`] says; internally a minimised metric
//! is negated so that larger is always better. A point dominates another when it is at least as
//! good in every metric and better in one; equal points do not dominate each other, so
//! duplicates on the front are all kept. Rows with a missing (or NaN) value in any metric are
//! left out of the point set.

use std::cmp::Ordering;

use super::error::QueryError;
use super::tau::ColumnRef;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Direction {
    Maximize,
    Minimize,
}

impl Direction {
    fn orient(self, value: f64) -> f64 {
        match self {
            Direction::Maximize => value,
            Direction::Minimize => -value,
        }
    }
}

/// The complete rows of 2 or 3 metric columns.
#[derive(Clone, Debug)]
pub struct PointSet {
    names: Vec<String>,
    directions: Vec<Direction>,
    /// Ascending.
    rows: Vec<usize>,
    /// Oriented values, row-major, `dims` per point.
    coords: Vec<f64>,
}

/// Where one row sits relative to the front.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Placement {
    pub row: usize,
    /// The row's metric values, in the columns' units; `None` if the row is not in the set.
    pub values: Option<Vec<f64>>,
    pub on_front: bool,
    /// Points of the set that dominate this one.
    pub dominated_by: Option<usize>,
    /// Euclidean distance to the nearest front point after scaling each metric by its range over
    /// the set (so 1.0 spans a metric's whole range); 0 on the front.
    pub distance: Option<f64>,
}

impl PointSet {
    /// Builds the set from 2 or 3 equally long columns (row i of each describes the same
    /// architecture) and one direction per column.
    pub fn from_columns(columns: &[ColumnRef<'_>], directions: &[Direction]) -> Result<PointSet, QueryError> {
        if !(2..=3).contains(&columns.len()) {
            return Err(QueryError::InvalidSetting(format!(
                "a Pareto front needs 2 or 3 metrics, got {}",
                columns.len()
            )));
        }
        if directions.len() != columns.len() {
            return Err(QueryError::InvalidSetting(format!(
                "{} directions for {} metrics",
                directions.len(),
                columns.len()
            )));
        }
        let len = columns[0].values.len();
        for column in columns {
            if column.values.len() != len {
                return Err(QueryError::LengthMismatch {
                    what: format!("column '{}'", column.name),
                    expected: len,
                    found: column.values.len(),
                });
            }
            if !column.values.iter().any(|v| v.is_some_and(|v| !v.is_nan())) {
                return Err(QueryError::NoValues(column.name.to_string()));
            }
        }
        let mut rows = Vec::new();
        let mut coords = Vec::new();
        for row in 0..len {
            let point: Option<Vec<f64>> = columns
                .iter()
                .zip(directions)
                .map(|(c, d)| c.values[row].filter(|v| !v.is_nan()).map(|v| d.orient(v) + 0.0))
                .collect();
            if let Some(point) = point {
                rows.push(row);
                coords.extend(point);
            }
        }
        if rows.is_empty() {
            return Err(QueryError::EmptySelection("no row has a value for every metric".into()));
        }
        Ok(PointSet {
            names: columns.iter().map(|c| c.name.to_string()).collect(),
            directions: directions.to_vec(),
            rows,
            coords,
        })
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn dims(&self) -> usize {
        self.directions.len()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows in the set, ascending.
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }

    /// The values of a row in the columns' units, if the row is in the set.
    pub fn values(&self, row: usize) -> Option<Vec<f64>> {
        let i = self.rows.binary_search(&row).ok()?;
        Some(self.point(i).iter().zip(&self.directions).map(|(v, d)| d.orient(*v) + 0.0).collect())
    }

    fn point(&self, i: usize) -> &[f64] {
        let d = self.dims();
        &self.coords[i * d..(i + 1) * d]
    }

    /// The rows on the Pareto front, ascending. O(n log n) for 2 metrics; for 3, each point is
    /// checked against the front found so far.
    pub fn front(&self) -> Vec<usize> {
        let mut rows: Vec<usize> = self.front_positions().into_iter().map(|i| self.rows[i]).collect();
        rows.sort_unstable();
        rows
    }

    fn front_positions(&self) -> Vec<usize> {
        // In descending lexicographic order no point can dominate one before it, and a dominated
        // point is dominated by some front point (dominance is transitive).
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_unstable_by(|&a, &b| lex_desc(self.point(a), self.point(b)));
        let mut front: Vec<usize> = Vec::new();
        if self.dims() == 2 {
            // Groups of equal x come in descending y; a group's top points are on the front
            // unless a point with larger x reaches at least their y.
            let mut best_y = f64::NEG_INFINITY;
            let mut start = 0;
            while start < order.len() {
                let x = self.point(order[start])[0];
                let top_y = self.point(order[start])[1];
                let mut end = start;
                while end < order.len() && self.point(order[end])[0] == x {
                    if top_y > best_y && self.point(order[end])[1] == top_y {
                        front.push(order[end]);
                    }
                    end += 1;
                }
                best_y = best_y.max(top_y);
                start = end;
            }
        } else {
            for &i in &order {
                let p = self.point(i);
                if !front.iter().any(|&f| dominates(self.point(f), p)) {
                    front.push(i);
                }
            }
        }
        front
    }

    /// The exact hypervolume dominated by the set and bounded by `reference` (in the columns'
    /// units, one value per metric). Points not strictly better than the reference in every
    /// metric add nothing.
    pub fn hypervolume(&self, reference: &[f64]) -> Result<f64, QueryError> {
        if reference.len() != self.dims() {
            return Err(QueryError::InvalidSetting(format!(
                "the reference point has {} values for {} metrics",
                reference.len(),
                self.dims()
            )));
        }
        let r: Vec<f64> = reference.iter().zip(&self.directions).map(|(v, d)| d.orient(*v)).collect();
        let mut points: Vec<&[f64]> = self
            .front_positions()
            .into_iter()
            .map(|i| self.point(i))
            .filter(|p| p.iter().zip(&r).all(|(a, b)| a > b))
            .collect();
        if self.dims() == 2 {
            points.sort_unstable_by(|a, b| b[0].total_cmp(&a[0]));
            return Ok(area(points.iter().map(|p| (p[0], p[1])), (r[0], r[1])));
        }
        // Slices along the third metric, best first: between consecutive levels the cross-section
        // is the 2-metric area of the points at or above the upper level.
        points.sort_unstable_by(|a, b| b[2].total_cmp(&a[2]));
        let mut slice: Vec<(f64, f64)> = Vec::with_capacity(points.len());
        let mut volume = 0.0;
        for (k, p) in points.iter().enumerate() {
            let at = slice.partition_point(|q| q.0 > p[0]);
            slice.insert(at, (p[0], p[1]));
            let next = points.get(k + 1).map_or(r[2], |q| q[2]);
            if p[2] > next {
                volume += area(slice.iter().copied(), (r[0], r[1])) * (p[2] - next);
            }
        }
        Ok(volume)
    }

    /// For each row: its values, whether it is on the front, how many points dominate it and its
    /// scaled distance to the front. Rows not in the set get `None`s.
    pub fn place(&self, rows: &[usize]) -> Vec<Placement> {
        let dims = self.dims();
        let front = self.front_positions();
        let scale: Vec<f64> = (0..dims)
            .map(|k| {
                let (lo, hi) = (0..self.len())
                    .map(|i| self.point(i)[k])
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
                if hi > lo { hi - lo } else { 1.0 }
            })
            .collect();
        rows.iter()
            .map(|&row| {
                let Ok(i) = self.rows.binary_search(&row) else {
                    return Placement {
                        row,
                        values: None,
                        on_front: false,
                        dominated_by: None,
                        distance: None,
                    };
                };
                let p = self.point(i);
                let dominated_by = (0..self.len()).filter(|&j| dominates(self.point(j), p)).count();
                let distance = front
                    .iter()
                    .map(|&f| {
                        let q = self.point(f);
                        (0..dims).map(|k| ((q[k] - p[k]) / scale[k]).powi(2)).sum::<f64>().sqrt()
                    })
                    .fold(f64::INFINITY, f64::min);
                Placement {
                    row,
                    values: self.values(row),
                    on_front: dominated_by == 0,
                    dominated_by: Some(dominated_by),
                    distance: Some(if dominated_by == 0 { 0.0 } else { distance }),
                }
            })
            .collect()
    }
}

fn lex_desc(a: &[f64], b: &[f64]) -> Ordering {
    a.iter().zip(b).map(|(x, y)| y.total_cmp(x)).find(|o| o.is_ne()).unwrap_or(Ordering::Equal)
}

fn dominates(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).all(|(x, y)| x >= y) && a.iter().zip(b).any(|(x, y)| x > y)
}

/// Area of the union of the boxes [r, p] for points given in descending first coordinate: each
/// point reaching higher than all before it adds the strip between the previous height and its
/// own, as wide as its first coordinate allows.
fn area(points: impl Iterator<Item = (f64, f64)>, r: (f64, f64)) -> f64 {
    let mut height = r.1;
    let mut total = 0.0;
    for (x, y) in points {
        if y > height {
            total += (x - r.0) * (y - height);
            height = y;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn set(points: &[&[f64]], directions: &[Direction]) -> PointSet {
        let columns: Vec<Vec<Option<f64>>> =
            (0..directions.len()).map(|k| points.iter().map(|p| Some(p[k])).collect()).collect();
        let names = ["a", "b", "c"];
        let refs: Vec<ColumnRef<'_>> =
            columns.iter().enumerate().map(|(k, c)| ColumnRef { name: names[k], values: c }).collect();
        PointSet::from_columns(&refs, directions).unwrap()
    }

    const MAX2: [Direction; 2] = [Direction::Maximize; 2];
    const MAX3: [Direction; 3] = [Direction::Maximize; 3];

    #[test]
    fn two_metric_front_and_hypervolume() {
        // Rows: 0 (1,5) 1 (2,4) 2 (3,3) 3 (2,2) 4 (1,1) 5 (3,3) 6 (0,6) 7 (3,1).
        // (2,2), (1,1) and (3,1) are dominated by (3,3); the duplicate (3,3) stays.
        let s = set(
            &[&[1., 5.], &[2., 4.], &[3., 3.], &[2., 2.], &[1., 1.], &[3., 3.], &[0., 6.], &[3., 1.]],
            &MAX2,
        );
        assert_eq!(s.front(), vec![0, 1, 2, 5, 6]);
        // Reference (0, 0): (0,6) adds nothing (not beyond the reference in x). Strips from the
        // right: [0,3]×[0,3] = 9, [0,2]×[3,4] = 2, [0,1]×[4,5] = 1; total 12.
        assert_eq!(s.hypervolume(&[0.0, 0.0]).unwrap(), 12.0);
        // Reference (-1, 0): every strip is one wider and (0,6) adds [-1,0]×[5,6]:
        // 4·3 + 3·1 + 2·1 + 1·1 = 18.
        assert_eq!(s.hypervolume(&[-1.0, 0.0]).unwrap(), 18.0);
        assert_eq!(s.hypervolume(&[10.0, 10.0]).unwrap(), 0.0);
        assert!(matches!(s.hypervolume(&[0.0]), Err(QueryError::InvalidSetting(_))));
    }

    #[test]
    fn minimised_metric() {
        // (accuracy ↑, params ↓): (80, 0.6) is dominated by (85, 0.5).
        let s = set(
            &[&[90., 1.0], &[85., 0.5], &[80., 0.6], &[95., 2.0]],
            &[Direction::Maximize, Direction::Minimize],
        );
        assert_eq!(s.front(), vec![0, 1, 3]);
        // Reference (80 %, 2.5 M): boxes (95-80)·(2.5-2.0) = 7.5, then (90-80)·(2.0-1.0) = 10,
        // then (85-80)·(1.0-0.5) = 2.5; total 20.
        assert!((s.hypervolume(&[80.0, 2.5]).unwrap() - 20.0).abs() < 1e-12);
        assert_eq!(s.values(2), Some(vec![80.0, 0.6]));
    }

    #[test]
    fn three_metric_front_and_hypervolume() {
        // Unit-cube corners: (2,1,1), (1,2,1), (1,1,2) each hold volume 2 over the origin;
        // pairwise overlaps are the unit cube (1 each), the triple overlap too:
        // 6 - 3 + 1 = 4. (1,1,1) is dominated and adds nothing.
        let s = set(&[&[2., 1., 1.], &[1., 2., 1.], &[1., 1., 2.], &[1., 1., 1.]], &MAX3);
        assert_eq!(s.front(), vec![0, 1, 2]);
        assert_eq!(s.hypervolume(&[0.0, 0.0, 0.0]).unwrap(), 4.0);
        let single = set(&[&[3., 2., 5.], &[3., 2., 5.]], &MAX3);
        assert_eq!(single.front(), vec![0, 1]);
        assert_eq!(single.hypervolume(&[1.0, 1.0, 1.0]).unwrap(), 2.0 * 1.0 * 4.0);
    }

    /// Unit cells [i, i+1]^d of an integer grid covered by some box [0, p].
    fn grid_volume(points: &[Vec<f64>], dims: usize, side: usize) -> f64 {
        let mut count = 0;
        let cells = side.pow(dims as u32);
        for cell in 0..cells {
            let c: Vec<f64> = (0..dims).map(|k| ((cell / side.pow(k as u32)) % side) as f64).collect();
            if points.iter().any(|p| p.iter().zip(&c).all(|(a, b)| *a >= b + 1.0)) {
                count += 1;
            }
        }
        count as f64
    }

    #[test]
    fn random_sets_match_brute_force() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for dims in [2, 3] {
            for n in [1, 2, 5, 30, 200] {
                let points: Vec<Vec<f64>> =
                    (0..n).map(|_| (0..dims).map(|_| rng.random_range(0..8) as f64).collect()).collect();
                let refs: Vec<&[f64]> = points.iter().map(|p| p.as_slice()).collect();
                let s = set(&refs, &vec![Direction::Maximize; dims]);
                let naive: Vec<usize> =
                    (0..n).filter(|&i| !(0..n).any(|j| dominates(&points[j], &points[i]))).collect();
                assert_eq!(s.front(), naive, "dims {dims} n {n}");
                let origin = vec![0.0; dims];
                assert_eq!(
                    s.hypervolume(&origin).unwrap(),
                    grid_volume(&points, dims, 8),
                    "dims {dims} n {n}"
                );
            }
        }
    }

    #[test]
    fn placements() {
        // (3,3) and (1,5) are on the front; (2,2) is dominated by (3,3) only: (2,4) is not in
        // this set. (1,1) is dominated by all three others.
        let s = set(&[&[3., 3.], &[1., 5.], &[2., 2.], &[1., 1.]], &MAX2);
        let p = s.place(&[0, 2, 3, 99]);
        assert!(p[0].on_front && p[0].dominated_by == Some(0) && p[0].distance == Some(0.0));
        assert_eq!(p[1].dominated_by, Some(1));
        assert!(!p[1].on_front);
        // Ranges: x spans 1..3 (2), y spans 1..5 (4). Nearest front point of (2,2) is (3,3):
        // sqrt((1/2)² + (1/4)²) = sqrt(5)/4.
        assert!((p[1].distance.unwrap() - 5f64.sqrt() / 4.0).abs() < 1e-15);
        assert_eq!(p[2].dominated_by, Some(3));
        assert_eq!(
            p[3],
            Placement { row: 99, values: None, on_front: false, dominated_by: None, distance: None }
        );
    }

    #[test]
    fn missing_rows_and_errors() {
        let a = vec![Some(1.0), None, Some(3.0), Some(f64::NAN)];
        let b = vec![Some(2.0), Some(1.0), Some(1.0), Some(1.0)];
        let s = PointSet::from_columns(
            &[ColumnRef { name: "a", values: &a }, ColumnRef { name: "b", values: &b }],
            &MAX2,
        )
        .unwrap();
        assert_eq!(s.rows(), &[0, 2]);
        assert_eq!(s.front(), vec![0, 2]);
        let one = [ColumnRef { name: "a", values: &a }];
        assert!(matches!(
            PointSet::from_columns(&one, &[Direction::Maximize]),
            Err(QueryError::InvalidSetting(_))
        ));
        let none = vec![None; 4];
        let cols = [ColumnRef { name: "a", values: &a }, ColumnRef { name: "gone", values: &none }];
        assert_eq!(PointSet::from_columns(&cols, &MAX2).unwrap_err(), QueryError::NoValues("gone".into()));
        let short = vec![Some(1.0)];
        let cols = [ColumnRef { name: "a", values: &a }, ColumnRef { name: "short", values: &short }];
        assert!(matches!(PointSet::from_columns(&cols, &MAX2), Err(QueryError::LengthMismatch { .. })));
        let disjoint = vec![None, Some(1.0), None, None];
        let cols = [ColumnRef { name: "a", values: &a }, ColumnRef { name: "d", values: &disjoint }];
        assert!(matches!(PointSet::from_columns(&cols, &MAX2), Err(QueryError::EmptySelection(_))));
    }

    #[test]
    fn full_space_is_fast_enough() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let cols: Vec<Vec<Option<f64>>> =
            (0..3).map(|_| (0..15_625).map(|_| Some(rng.random_range(0.0..1.0))).collect()).collect();
        let refs: Vec<ColumnRef<'_>> = cols.iter().map(|c| ColumnRef { name: "m", values: c }).collect();
        let s2 = PointSet::from_columns(&refs[..2], &MAX2).unwrap();
        let s3 = PointSet::from_columns(&refs, &MAX3).unwrap();
        let start = std::time::Instant::now();
        assert!(!s2.front().is_empty());
        assert!(s2.hypervolume(&[0.0, 0.0]).unwrap() > 0.9);
        assert!(!s3.front().is_empty());
        assert!(s3.hypervolume(&[0.0, 0.0, 0.0]).unwrap() > 0.8);
        assert!(start.elapsed().as_secs_f64() < 20.0);
    }
}
