//! Every projection this binary runs: the PostgreSQL read models (`bozor_projections::all`)
//! and search-sync's projection, which lives in its own crate (it builds on the read side).

use std::sync::Arc;

use bozor_projections::Projection;

/// The read models and the search projection.
pub fn all() -> Vec<Arc<dyn Projection>> {
    let mut all = bozor_projections::all();
    all.push(Arc::new(bozor_search_sync::SearchProjection));
    all
}

/// The projection called `name`, search included.
pub fn by_name(name: &str) -> Option<Arc<dyn Projection>> {
    all().into_iter().find(|p| p.name() == name)
}
