//! Listing search: cross-script search keys (`translit`, `synonyms`), the search documents
//! (`document`), the search-sync projection that keeps them (`projection`), and the
//! `SearchIndex` served by PostgreSQL (`pg`, the default) or Meilisearch (`meili`).

pub mod document;
pub mod index;
pub mod meili;
pub mod pg;
pub mod projection;
pub mod synonyms;
pub mod translit;

pub use index::{SearchError, SearchIndex};
pub use projection::SearchProjection;
