//! Listing search: the cross-script search keys (`translit`). The search-sync projection, the
//! `SearchIndex` backends (Meilisearch and PostgreSQL) and the search API come with the search
//! issue's later steps.

pub mod translit;
