//! Every projection this binary runs: the PostgreSQL read models (`bozor_projections::all`),
//! search-sync's projection, which lives in its own crate (it builds on the read side), and
//! the scheduler's timers.

use std::sync::Arc;

use bozor_projections::Projection;

/// The read models, the search projection and the timers.
pub fn all() -> Vec<Arc<dyn Projection>> {
    let mut all = bozor_projections::all();
    all.push(Arc::new(bozor_search_sync::SearchProjection));
    all.push(Arc::new(bozor_projections::timers::TimersProjection));
    all
}

/// The projection called `name`, search included.
pub fn by_name(name: &str) -> Option<Arc<dyn Projection>> {
    all().into_iter().find(|p| p.name() == name)
}
