//! HTML reports and SVG plots of stored runs (DESIGN.md §9): a run's `report.html` and the
//! store's `index.html`, rendered from the stored files alone (the cluster is long gone).
//!
//! - [`data`]: a run directory read into operations and fault windows.
//! - [`html`]: escaping for everything rendered by hand.

pub mod data;
pub mod html;
