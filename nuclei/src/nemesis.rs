//! Fault schedules (being written).
