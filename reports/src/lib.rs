//! HTML reports and SVG plots of stored runs (DESIGN.md §9): a run's `report.html` and the
//! store's `index.html`, rendered from the stored files alone (the cluster is long gone).
//!
//! - [`data`]: a run directory read into operations and fault windows.
//! - [`html`]: escaping for everything rendered by hand.
//! - [`page`]: a run's `report.html`; [`index`]: the store's `index.html`, with each test's
//!   [`trends`] and a page per campaign ([`campaign_page`]).
//! - [`junit`]: JUnit XML of a campaign for CI systems.
//! - [`timeline`]: a window of the history, operations per process over time, with faults.
//! - [`counterexample`]: a non-linearizable verdict drawn around the op that cannot be placed.
//! - [`txn`]: the isolation checker's verdict, a card per anomaly with its cycle drawn, and the
//!   models ruled out.
//! - [`plots`]: inline SVG plots of latency, its quantiles and throughput, faults shaded.

pub mod campaign_page;
pub mod counterexample;
pub mod data;
pub mod html;
pub mod index;
pub mod junit;
pub mod page;
pub mod plots;
pub mod timeline;
pub mod trends;
pub mod txn;
