//! Node control for Fissure: remote execution, fault injection and fault schedules.
//!
//! Empty until the fault issues land (DESIGN.md §5); it exists so the workspace has its final shape
//! and dependents can be wired without churn.
