//! HTML reports and SVG plots of stored runs (DESIGN.md §9). Empty until the reports issue lands.
