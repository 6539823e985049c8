//! Random search: every query a fresh random architecture.

use super::search::{Search, Strategy};

pub(super) struct RandomSearch;

impl Strategy for RandomSearch {
    fn step(&mut self, search: &mut Search<'_>) {
        let arch = search.sample();
        search.query(&arch);
    }
}
